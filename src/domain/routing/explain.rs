//! The rule preview (SPEC section 16, `POST /rules/preview`): for every rule, whether it matches
//! an event and, if not, the first reason in words; for each channel of a matching rule, the rule
//! that decides the (event, channel) pair and what would happen to it at `at`: silenced, then
//! suppressed, then grouped, else sent — the order ingestion follows.
//!
//! Pure: the caller runs [`decide`](super::decide), reads the suppression windows and open groups
//! those decisions touch into a [`NoiseState`] ([`NoiseState::wanted`] says which), then calls
//! [`explain`]. Nothing is written, so a preview opens no group and no window.

use std::collections::HashMap;

use super::{Decision, EventView, Fate, Miss, RoutingRule};
use crate::domain::severity::Severity;
use crate::domain::time::{rfc3339, Millis};

/// `(rule id, channel id, key text)`: what a suppression window or a group belongs to.
pub type PairKey = (String, String, String);

/// A suppression window as stored (it may have ended: it lasts the rule's current `for` from
/// `opened_at`; none was opened yet when `delivery_id` is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The delivery that opened it (sent, or grouped).
    pub delivery_id: String,
    /// The severity of the event that opened it: a repeat above it is sent.
    pub severity: Severity,
    pub opened_at: Millis,
}

impl Window {
    /// When the window ends under the rule's `for` (as it is now: an edit applies to windows
    /// already open), if one was opened.
    pub fn until(&self, window_ms: i64) -> Option<Millis> {
        (!self.delivery_id.is_empty()).then(|| self.opened_at + window_ms)
    }
}

/// An open group (not closing) as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenGroup {
    pub id: String,
    pub flush_at: Millis,
}

/// The stored group and suppression state a preview reads.
#[derive(Debug, Clone, Default)]
pub struct NoiseState {
    pub windows: HashMap<PairKey, Window>,
    pub groups: HashMap<PairKey, OpenGroup>,
}

impl NoiseState {
    /// The windows and the groups the decisions would touch: `(windows, groups)`.
    pub fn wanted(decisions: &[Decision]) -> (Vec<PairKey>, Vec<PairKey>) {
        let (mut windows, mut groups) = (Vec::new(), Vec::new());
        for decision in decisions {
            if let Fate::Send { suppress, group } = &decision.fate {
                let pair = |key: &str| (decision.rule_id.clone(), decision.channel_id.clone(), key.to_string());
                windows.extend(suppress.as_ref().map(|s| pair(&s.key)));
                groups.extend(group.as_ref().map(|g| pair(&g.key_hash)));
            }
        }
        (windows, groups)
    }
}

/// What the preview says of one rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub rule_id: String,
    pub name: String,
    /// Why it does not match; `None`: it matches.
    pub reason: Option<Reason>,
    /// A matching rule's channels, in its order; none for a rule that does not match.
    pub channels: Vec<ChannelOutcome>,
}

/// The first reason a rule does not match, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// Its kind; a condition names the failing node (`conditions.any[1]`).
    pub miss: Miss,
    pub detail: String,
}

/// One channel of a matching rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelOutcome {
    pub channel_id: String,
    /// The rule deciding the pair (this one, or a matching rule of lower priority); `None` for a
    /// channel that gets nothing: disabled, or deleted.
    pub decided_by: Option<String>,
    /// What the deciding rule does with the pair; `None` when `decided_by` is.
    pub outcome: Option<Outcome>,
}

/// What would happen to an (event, channel) pair now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Sent at once.
    Send,
    /// Joins the open group (`group_id`), or opens one (`None`); sent at `send_at`.
    Group { group_id: Option<String>, send_at: Millis },
    /// A repeat within the window opened by delivery `by`, which lasts until `until`.
    Suppressed { by: String, until: Millis },
    /// Held by a silence.
    Silenced { silence_id: String },
}

/// The preview of an event at `at`: every rule of `rules` (sorted, enabled and disabled), given
/// the `decisions` [`decide`](super::decide) made for the event at `at` and the stored `state`
/// they touch.
pub fn explain(rules: &[RoutingRule], decisions: &[Decision], state: &NoiseState, view: &EventView<'_>, at: Millis) -> Vec<Explanation> {
    rules
        .iter()
        .map(|rule| {
            let reason = rule.check(view, at).err().map(|miss| Reason { detail: why(rule, &miss, view, at), miss });
            let channels = match reason {
                Some(_) => Vec::new(),
                None => rule
                    .channel_ids
                    .iter()
                    .map(|channel_id| match decisions.iter().find(|d| &d.channel_id == channel_id) {
                        Some(decision) => ChannelOutcome {
                            channel_id: channel_id.clone(),
                            decided_by: Some(decision.rule_id.clone()),
                            outcome: Some(outcome(decision, state, view, at)),
                        },
                        None => ChannelOutcome { channel_id: channel_id.clone(), decided_by: None, outcome: None },
                    })
                    .collect(),
            };
            Explanation { rule_id: rule.id.clone(), name: rule.name.clone(), reason, channels }
        })
        .collect()
}

/// The deciding rule's outcome for a pair: silenced, suppressed (a window open at `at` opened by
/// an event at least as severe, as `groups::Noise::suppressed_by` judges at ingestion), grouped,
/// or sent.
fn outcome(decision: &Decision, state: &NoiseState, view: &EventView<'_>, at: Millis) -> Outcome {
    let (suppress, group) = match &decision.fate {
        Fate::Silenced { silence_id } => return Outcome::Silenced { silence_id: silence_id.clone() },
        Fate::Send { suppress, group } => (suppress, group),
    };
    let pair = |key: &str| (decision.rule_id.clone(), decision.channel_id.clone(), key.to_string());
    let open_window = suppress
        .as_ref()
        .and_then(|s| state.windows.get(&pair(&s.key)).zip(Some(s.window_ms)))
        .and_then(|(w, window_ms)| Some((w, w.until(window_ms)?)))
        .filter(|(w, until)| *until > at && view.event().severity <= w.severity);
    if let Some((window, until)) = open_window {
        return Outcome::Suppressed { by: window.delivery_id.clone(), until };
    }
    match group {
        // An open group whose next flush comes after `at` takes the event; past its flush the
        // preview cannot know whether it will still be open (it closes if nothing new arrives),
        // so it answers as a new group would.
        Some(joining) => match state.groups.get(&pair(&joining.key_hash)).filter(|open| open.flush_at > at) {
            Some(open) => Outcome::Group { group_id: Some(open.id.clone()), send_at: open.flush_at },
            None => Outcome::Group { group_id: None, send_at: at + joining.settings.wait.as_millis() as Millis },
        },
        None => Outcome::Send,
    }
}

/// Why the rule does not match, in words.
fn why(rule: &RoutingRule, miss: &Miss, view: &EventView<'_>, at: Millis) -> String {
    let event = view.event();
    match miss {
        Miss::Disabled => "the rule is disabled".into(),
        Miss::EventType => {
            let patterns: Vec<String> = rule.filter.event_types.iter().map(|p| p.to_text()).collect();
            format!("the event type {} is not among the rule's event types ({})", event.event_type.as_str(), patterns.join(", "))
        }
        Miss::Severity => format!("the event's severity {} is below the rule's minimum {}", event.severity, rule.filter.min_severity),
        Miss::Tenant => format!(
            "the event's tenant {} is not the rule's tenant {}",
            event.tenant.id(),
            rule.filter.tenant_id.as_deref().unwrap_or_default()
        ),
        Miss::Condition(node) => rule
            .noise
            .conditions
            .as_ref()
            .and_then(|c| c.explain_failure(view.payload()))
            .map_or_else(|| format!("the condition {node} does not hold"), |failure| failure.detail),
        Miss::ActiveHours => {
            let hours = rule.noise.active_hours.as_ref().map(|h| h.describe()).filter(|d| !d.is_empty());
            match hours {
                Some(hours) => format!("at {} the rule is outside its active hours ({hours})", rfc3339(at)),
                None => format!("at {} the rule is outside its active hours", rfc3339(at)),
            }
        }
    }
}

#[cfg(test)]
mod tests;
