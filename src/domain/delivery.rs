//! A delivery's status and the one pure function that moves it on after an attempt: status,
//! trigger, outcome and retry policy in; the next status and when the next attempt is due out.
//! The store applies it when it records attempts; nothing else decides a delivery's status
//! after an attempt.

use super::attempt::{AttemptOutcome, Trigger, Verdict};
use super::retry::RetryPolicy;
use super::time::Millis;

/// Where a delivery stands (SPEC section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Waiting for an attempt: new, retrying, behind an open circuit or a disabled channel, or
    /// queued again by a bulk redelivery.
    Pending,
    Succeeded,
    /// Retries exhausted, or an answer no retry can change.
    Failed,
    /// Its channel was deleted before it was sent.
    Cancelled,
    /// Joined a group: sent in the group's notification (`notification_id`). Final.
    Grouped,
    /// A repeat within a suppression window (`suppressed_by`): not sent. Final.
    Suppressed,
    /// Held by a silence (`silence_id`): not sent. Final.
    Silenced,
}

impl DeliveryStatus {
    /// Every status, in the order people read them.
    pub const ALL: [DeliveryStatus; 7] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Succeeded,
        DeliveryStatus::Failed,
        DeliveryStatus::Cancelled,
        DeliveryStatus::Grouped,
        DeliveryStatus::Suppressed,
        DeliveryStatus::Silenced,
    ];

    /// Decided by noise control rather than by an attempt.
    pub const fn is_noise(self) -> bool {
        matches!(self, DeliveryStatus::Grouped | DeliveryStatus::Suppressed | DeliveryStatus::Silenced)
    }

    /// The name in the API, the database and the metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Cancelled => "cancelled",
            DeliveryStatus::Grouped => "grouped",
            DeliveryStatus::Suppressed => "suppressed",
            DeliveryStatus::Silenced => "silenced",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// What the store knows of a delivery when an attempt of it is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<Millis>,
    /// A bulk redelivery queued it: the status it goes back to if that manual attempt fails.
    pub redeliver_from: Option<DeliveryStatus>,
    /// Scheduled attempts made, the one just finished included (the retry schedule's position).
    pub scheduled_attempts: u32,
}

/// The status and next due time after an attempt. `roll` (`-1.0..=1.0`) places a retry in the
/// policy's jitter band.
///
/// - A scheduled attempt of a pending delivery follows its verdict: delivered, it succeeded; a
///   final verdict (or a delivery too large alone) fails it now; otherwise the retry policy
///   schedules the next attempt ([`RetryPolicy::delay_after`]) until it is used up.
/// - A manual attempt never schedules retries: a success ends any delivery as `succeeded`; a
///   failure leaves a pending delivery's schedule as it was, sends a bulk-redelivered one back to
///   the status it had, and changes nothing else.
/// - A cancelled delivery was in flight when its channel was deleted: if the receiver took it,
///   it `succeeded`; otherwise it stays cancelled (no retry follows).
pub fn after_attempt(progress: &Progress, trigger: Trigger, outcome: &AttemptOutcome, policy: &RetryPolicy, now: Millis, roll: f64) -> (DeliveryStatus, Option<Millis>) {
    use DeliveryStatus::*;
    match (progress.status, trigger) {
        (Cancelled, _) if outcome.succeeded() => (Succeeded, None),
        (Cancelled, _) => (Cancelled, None),
        (Pending, Trigger::Manual) if progress.redeliver_from.is_some() => match outcome.succeeded() {
            true => (Succeeded, None),
            false => (progress.redeliver_from.unwrap_or(Failed), None),
        },
        (Pending, Trigger::Scheduled) => match &outcome.verdict {
            Verdict::Delivered => (Succeeded, None),
            Verdict::Final(_) | Verdict::TooLarge => (Failed, None),
            Verdict::Retry(_) | Verdict::Disable(_) | Verdict::Unauthorized => match policy.delay_after(progress.scheduled_attempts, outcome.retry_after, roll) {
                Some(delay) => (Pending, Some(now + delay.as_millis() as i64)),
                None => (Failed, None),
            },
        },
        (_, Trigger::Manual) if outcome.succeeded() => (Succeeded, None),
        // A failed manual attempt leaves the schedule as it was.
        (Pending, Trigger::Manual) => (Pending, progress.next_attempt_at),
        (status, _) => (status, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::retry::ErrorKind;
    use DeliveryStatus::*;

    fn outcome(kind: Option<ErrorKind>, verdict: Verdict) -> AttemptOutcome {
        AttemptOutcome {
            started_at: 0,
            duration_ms: 1,
            status_code: Some(if kind.is_none() { 200 } else { 500 }),
            error_kind: kind,
            error: kind.map(|_| "failed".to_string()),
            response_excerpt: None,
            retry_after: None,
            verdict,
        }
    }

    /// A failed scheduled attempt of a pending delivery, `attempts_made` counting it.
    fn scheduled(attempts_made: u32) -> Progress {
        Progress { status: Pending, next_attempt_at: None, redeliver_from: None, scheduled_attempts: attempts_made }
    }

    #[test]
    fn failures_follow_the_schedule_then_fail() {
        let policy = RetryPolicy::default();
        let outcome = outcome(Some(ErrorKind::HttpStatus), Verdict::Retry(String::new()));
        let after = |attempts_made, outcome: &AttemptOutcome, roll| after_attempt(&scheduled(attempts_made), Trigger::Scheduled, outcome, &policy, 1_000, roll);
        assert_eq!(after(1, &outcome, 0.0), (Pending, Some(31_000)));
        assert_eq!(after(2, &outcome, 0.0), (Pending, Some(121_000)));
        assert_eq!(after(3, &outcome, 0.0), (Pending, Some(601_000)));
        assert_eq!(after(4, &outcome, 0.0), (Failed, None));
        // ±10 % by default.
        assert_eq!(after(1, &outcome, -1.0), (Pending, Some(28_000)));
        assert_eq!(after(1, &outcome, 1.0), (Pending, Some(34_000)));
        let asked = AttemptOutcome { status_code: Some(429), retry_after: Some(std::time::Duration::from_secs(300)), ..outcome.clone() };
        assert_eq!(after(1, &asked, 0.0), (Pending, Some(301_000)));
    }

    #[test]
    fn success_and_final_errors_end_the_delivery_at_once() {
        let policy = RetryPolicy::default();
        let after = |outcome: &AttemptOutcome| after_attempt(&scheduled(1), Trigger::Scheduled, outcome, &policy, 0, 0.0);
        assert_eq!(after(&outcome(None, Verdict::Delivered)), (Succeeded, None));
        assert_eq!(after(&outcome(Some(ErrorKind::BlockedTarget), Verdict::of_failure(ErrorKind::BlockedTarget))), (Failed, None));
        assert_eq!(after(&outcome(Some(ErrorKind::HttpStatus), Verdict::Final(String::new()))), (Failed, None));
        assert_eq!(after(&outcome(Some(ErrorKind::HttpStatus), Verdict::TooLarge)), (Failed, None));
        // A channel disabled for a gone receiver keeps the delivery pending for when it is enabled.
        assert_eq!(after(&outcome(Some(ErrorKind::HttpStatus), Verdict::Disable("gone".into()))), (Pending, Some(30_000)));
    }

    #[test]
    fn statuses_read_back_as_written() {
        for status in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(DeliveryStatus::parse("lost"), None);
    }

    /// Every status, trigger, bulk-redelivery mark, outcome and place in the schedule, against
    /// the rules written out once more by hand.
    #[test]
    fn every_combination_moves_as_the_rules_say() {
        let policy = RetryPolicy::default();
        let now = 1_000;
        let outcomes = [
            ("success", outcome(None, Verdict::Delivered)),
            ("retryable", outcome(Some(ErrorKind::HttpStatus), Verdict::Retry(String::new()))),
            ("final verdict", outcome(Some(ErrorKind::HttpStatus), Verdict::Final(String::new()))),
            ("refused target", outcome(Some(ErrorKind::BlockedTarget), Verdict::of_failure(ErrorKind::BlockedTarget))),
            ("gone", outcome(Some(ErrorKind::HttpStatus), Verdict::Disable("gone".into()))),
        ];
        let mut cases = 0;
        for status in DeliveryStatus::ALL {
            for trigger in [Trigger::Scheduled, Trigger::Manual] {
                for redeliver_from in [None, Some(Failed), Some(Succeeded)] {
                    for scheduled_attempts in [1, 3, 4] {
                        for (what, outcome) in &outcomes {
                            let progress = Progress { status, next_attempt_at: Some(5_000), redeliver_from, scheduled_attempts };
                            let got = after_attempt(&progress, trigger, outcome, &policy, now, 0.0);
                            let ok = outcome.succeeded();
                            let retryable = matches!(*what, "retryable" | "gone");
                            let expected = match (status, trigger) {
                                (Cancelled, _) => (if ok { Succeeded } else { Cancelled }, None),
                                (Pending, Trigger::Manual) => match (ok, redeliver_from) {
                                    (true, _) => (Succeeded, None),
                                    (false, Some(from)) => (from, None),
                                    (false, None) => (Pending, Some(5_000)),
                                },
                                (Pending, Trigger::Scheduled) if ok => (Succeeded, None),
                                // The default schedule: three retries after the first attempt.
                                (Pending, Trigger::Scheduled) if retryable && scheduled_attempts < 4 => {
                                    let delay = [30_000, 120_000, 600_000][scheduled_attempts as usize - 1];
                                    (Pending, Some(now + delay))
                                }
                                (Pending, Trigger::Scheduled) => (Failed, None),
                                (_, Trigger::Manual) if ok => (Succeeded, None),
                                (other, _) => (other, None),
                            };
                            assert_eq!(got, expected, "{status:?} {trigger:?} from {redeliver_from:?} after {scheduled_attempts}: {what}");
                            cases += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 7 * 2 * 3 * 3 * 5);
    }
}
