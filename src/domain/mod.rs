//! Pure domain types and rules, no I/O. Everything here is parsed at the edge (the HTTP
//! routes, the in-process handle, or a source such as Office 365) so the rest of the router
//! never re-checks a value. Nothing here depends on another module of the crate.

pub mod active_hours;
pub mod attempt;
pub mod breaker;
pub mod channel;
pub mod condition;
pub mod content;
pub mod delivery;
pub mod event;
pub mod ids;
pub mod incident;
pub mod limits;
pub mod noise;
pub mod notification;
pub mod network;
pub mod payload;
pub mod retry;
pub mod routing;
pub mod rule;
pub mod severity;
pub mod silence;
pub mod signature;
pub mod tenant;
pub mod token;
pub mod time;

/// A value that failed to parse, with the field it came from and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// The offending field, as the client named it (`url`, `events[2].severity`).
    pub field: String,
    /// What is wrong and what is accepted, in words a person can act on.
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }

    /// The same problem, reported under a parent field (`events[3]` + `severity`).
    pub fn within(self, parent: &str) -> Self {
        let field = if self.field.is_empty() {
            parent.to_string()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        Self { field, ..self }
    }
}

/// Checks that a free-text string is present, not blank and not longer than `max` characters.
pub fn bounded_text(field: &str, value: &str, max: usize) -> Result<String, Invalid> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(Invalid::new(field, format!("must be at most {max} characters")));
    }
    if trimmed.chars().any(|c| c.is_control()) {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(trimmed.to_string())
}
