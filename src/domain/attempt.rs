//! One HTTP attempt at a delivery: its outcome, and what follows from it.

use super::retry::{classify, ErrorKind, RetryPolicy, Retryability};
use super::time::Millis;

/// Most bytes of a receiver's answer kept with an attempt.
pub const EXCERPT_BYTES: usize = 1024;

/// A receiver's answer as kept with an attempt: its first [`EXCERPT_BYTES`] bytes as UTF-8
/// (invalid bytes become U+FFFD), cut on a character boundary to at most [`EXCERPT_BYTES`].
pub fn excerpt_of(answer: &[u8]) -> String {
    let head = &answer[..answer.len().min(EXCERPT_BYTES)];
    let mut text = String::from_utf8_lossy(head).into_owned();
    let mut cut = text.len().min(EXCERPT_BYTES);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text
}

/// Who asked for an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The first attempt or a retry on the schedule.
    Scheduled,
    /// A person pressed Redeliver (or called the API); no retries follow it.
    Manual,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Scheduled => "scheduled",
            Trigger::Manual => "manual",
        }
    }
}

/// What a failed attempt means beyond its error class, as the channel's type judged the answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Consequence {
    /// Retried on the schedule (or nothing more, for a success).
    #[default]
    Retry,
    /// No later attempt can succeed (e.g. Slack's `400 invalid_payload`): the delivery fails now.
    Final,
    /// The receiver is gone (`410 Gone`, Slack's `404`): the channel is disabled for this reason.
    DisableChannel(String),
    /// The request was too large (`413`): a batch is split and sent again; a single delivery
    /// that is too large alone fails now.
    TooLarge,
}

/// What happened when the router POSTed to a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    pub started_at: Millis,
    pub duration_ms: i64,
    /// The HTTP status, when the receiver answered.
    pub status_code: Option<u16>,
    /// Why it failed; `None` for a 2xx answer.
    pub error_kind: Option<ErrorKind>,
    /// A short explanation of the failure, for people.
    pub error: Option<String>,
    /// The first [`EXCERPT_BYTES`] of the answer, lossily decoded as UTF-8.
    pub response_excerpt: Option<String>,
    /// How long the receiver asked the router to wait (`Retry-After` on a `429` or `503`).
    pub retry_after: Option<std::time::Duration>,
    pub consequence: Consequence,
}

impl AttemptOutcome {
    pub fn succeeded(&self) -> bool {
        self.error_kind.is_none()
    }
}

/// Where a delivery goes after a scheduled attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Succeeded,
    RetryAt(Millis),
    Failed,
}

/// The retry policy applied: `attempts_made` counts the attempt just finished; `roll`
/// (`-1.0..=1.0`) places the delay in the policy's jitter band.
pub fn next_step(policy: &RetryPolicy, attempts_made: u32, outcome: &AttemptOutcome, now: Millis, roll: f64) -> NextStep {
    let Some(kind) = outcome.error_kind else {
        return NextStep::Succeeded;
    };
    if classify(kind) == Retryability::Final || matches!(outcome.consequence, Consequence::Final | Consequence::TooLarge) {
        return NextStep::Failed;
    }
    match policy.delay_after(attempts_made, outcome.retry_after, roll) {
        Some(delay) => NextStep::RetryAt(now + delay.as_millis() as i64),
        None => NextStep::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(kind: ErrorKind) -> AttemptOutcome {
        AttemptOutcome {
            started_at: 0,
            duration_ms: 1,
            status_code: Some(500),
            error_kind: Some(kind),
            error: Some("HTTP 500".into()),
            response_excerpt: None,
            retry_after: None,
            consequence: Consequence::Retry,
        }
    }

    #[test]
    fn excerpts_are_at_most_1_kib_of_valid_text_whatever_the_answer() {
        assert_eq!(excerpt_of(b"ok"), "ok");
        let binary = excerpt_of(&[0xff; 4096]);
        assert!(binary.len() <= EXCERPT_BYTES && binary.starts_with('\u{fffd}'));
        let accents = "é".repeat(1000);
        let cut = excerpt_of(accents.as_bytes());
        assert!(cut.len() <= EXCERPT_BYTES && cut.chars().all(|c| c == 'é' || c == '\u{fffd}'));
        assert_eq!(excerpt_of(&"x".repeat(5000).into_bytes()).len(), EXCERPT_BYTES);
    }

    #[test]
    fn failures_follow_the_schedule_then_fail() {
        let policy = RetryPolicy::default();
        let outcome = failed(ErrorKind::HttpStatus);
        assert_eq!(next_step(&policy, 1, &outcome, 1_000, 0.0), NextStep::RetryAt(31_000));
        assert_eq!(next_step(&policy, 2, &outcome, 1_000, 0.0), NextStep::RetryAt(121_000));
        assert_eq!(next_step(&policy, 3, &outcome, 1_000, 0.0), NextStep::RetryAt(601_000));
        assert_eq!(next_step(&policy, 4, &outcome, 1_000, 0.0), NextStep::Failed);
        // ±10 % by default.
        assert_eq!(next_step(&policy, 1, &outcome, 1_000, -1.0), NextStep::RetryAt(28_000));
        assert_eq!(next_step(&policy, 1, &outcome, 1_000, 1.0), NextStep::RetryAt(34_000));
        let asked = AttemptOutcome { status_code: Some(429), retry_after: Some(std::time::Duration::from_secs(300)), ..outcome };
        assert_eq!(next_step(&policy, 1, &asked, 1_000, 0.0), NextStep::RetryAt(301_000));
    }

    #[test]
    fn success_and_final_errors_end_the_delivery_at_once() {
        let policy = RetryPolicy::default();
        let ok = AttemptOutcome { error_kind: None, status_code: Some(204), error: None, ..failed(ErrorKind::HttpStatus) };
        assert_eq!(next_step(&policy, 1, &ok, 0, 0.0), NextStep::Succeeded);
        assert_eq!(next_step(&policy, 1, &failed(ErrorKind::BlockedTarget), 0, 0.0), NextStep::Failed);
        let refused = AttemptOutcome { consequence: Consequence::Final, ..failed(ErrorKind::HttpStatus) };
        assert_eq!(next_step(&policy, 1, &refused, 0, 0.0), NextStep::Failed);
        // A channel disabled for a gone receiver keeps the delivery pending for when it is enabled.
        let gone = AttemptOutcome { consequence: Consequence::DisableChannel("gone".into()), ..failed(ErrorKind::HttpStatus) };
        assert_eq!(next_step(&policy, 1, &gone, 0, 0.0), NextStep::RetryAt(30_000));
    }
}
