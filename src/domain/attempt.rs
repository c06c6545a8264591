//! One attempt at a delivery: its outcome, and the one [`Verdict`] on it that everything after
//! reads (the DeliveryActor splitting a batch or disabling the channel, the delivery's next
//! status in `super::delivery`). A channel's type gives the verdict on an answer
//! (`crate::channels::ChannelType::judge`); a failure that got no answer to judge gets
//! [`Verdict::of_failure`]. [`ErrorKind`] is only the class of a failure shown to people.

use super::retry::ErrorKind;
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

/// What an attempt's result means: the one judgement of it. The text some variants carry is what
/// the receiver's answer said, as the channel's type read it (often empty); the attempt's
/// `error` tells people the whole failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered.
    Delivered,
    /// Not delivered; another attempt may succeed, so it follows the retry schedule.
    Retry(String),
    /// Not delivered, and no later attempt can succeed (e.g. Slack's `400 invalid_payload`): the
    /// delivery fails now.
    Final(String),
    /// The receiver is gone for good (`410 Gone`, Slack's `404`): the channel is disabled for
    /// this reason (SPEC section 13) and the delivery waits, pending, until a person enables the
    /// channel again.
    Disable(String),
    /// The request was too large (`413`): a batch is split in two and both halves are sent at
    /// once; a single delivery that is still too large fails now.
    TooLarge,
    /// The access token was refused (`401`): a new one is fetched, once, and the request sent
    /// again (types with credentials only); as an attempt's verdict it is retried.
    Unauthorized,
}

impl Verdict {
    /// The classifier of failures that got no answer to judge. Every failure is retried (like
    /// Stripe and Svix, a refusal may be a receiver misconfiguration fixed within the schedule)
    /// except a target the router refuses to reach, which no amount of waiting changes.
    pub fn of_failure(kind: ErrorKind) -> Verdict {
        match kind {
            ErrorKind::BlockedTarget => Verdict::Final(String::new()),
            _ => Verdict::Retry(String::new()),
        }
    }
}

/// What happened when the router sent a request to a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    pub started_at: Millis,
    pub duration_ms: i64,
    /// The receiver's status code (HTTP's), when it answered.
    pub status_code: Option<u16>,
    /// Why it failed; `None` when it was delivered.
    pub error_kind: Option<ErrorKind>,
    /// A short explanation of the failure, for people.
    pub error: Option<String>,
    /// The first [`EXCERPT_BYTES`] of the answer, lossily decoded as UTF-8.
    pub response_excerpt: Option<String>,
    /// How long the receiver asked the router to wait (`Retry-After` on a `429` or `503`).
    pub retry_after: Option<std::time::Duration>,
    pub verdict: Verdict,
}

impl AttemptOutcome {
    pub fn succeeded(&self) -> bool {
        self.verdict == Verdict::Delivered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn only_a_blocked_target_is_final() {
        assert!(matches!(Verdict::of_failure(ErrorKind::HttpStatus), Verdict::Retry(_)));
        assert!(matches!(Verdict::of_failure(ErrorKind::Timeout), Verdict::Retry(_)));
        assert!(matches!(Verdict::of_failure(ErrorKind::BlockedTarget), Verdict::Final(_)));
    }
}
