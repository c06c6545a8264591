//! A channel's circuit breaker, as data: its health after each attempt, and what that allows.
//!
//! `BREAKER_FAILURES` consecutive failed attempts open the circuit: nothing is sent for
//! `BREAKER_COOLDOWN`; then it is half-open and one probe goes. A success closes it (the backlog
//! flows again); a failure reopens it with the cooldown doubled, up to [`MAX_COOLDOWN`]. The
//! health is plain data so the channel's actor can keep it, store it with the attempts it records
//! and start again from it after a restart.

use std::time::Duration;

use serde::Serialize;

use super::time::Millis;

/// Longest a circuit stays open between two probes.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(600);

/// When circuits open and how long they stay open (`BREAKER_FAILURES`, `BREAKER_COOLDOWN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    pub failures: u32,
    pub cooldown: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self { failures: 10, cooldown: Duration::from_secs(60) }
    }
}

/// The state a channel's reads show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Attempts go as usual.
    Closed,
    /// Nothing is sent until the cooldown is over.
    Open,
    /// The cooldown is over: one probe goes (or is going).
    HalfOpen,
}

/// What a channel's actor may send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// As many attempts as its concurrency allows.
    Send,
    /// Exactly one attempt, the probe.
    Probe,
    /// Nothing before this moment.
    WaitUntil(Millis),
}

/// A channel's health after its last recorded attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub consecutive_failures: u32,
    /// When the current run of failures began; `None` while the last attempt succeeded.
    pub failing_since: Option<Millis>,
    /// While the circuit is open or half-open: no attempt before this. `None`: closed.
    pub open_until: Option<Millis>,
    /// The cooldown the circuit last opened for (it doubles after each failed probe).
    pub cooldown_ms: i64,
}

impl Health {
    pub fn state(&self, now: Millis) -> CircuitState {
        match self.open_until {
            None => CircuitState::Closed,
            Some(until) if now < until => CircuitState::Open,
            Some(_) => CircuitState::HalfOpen,
        }
    }

    pub fn permit(&self, now: Millis) -> Permit {
        match (self.state(now), self.open_until) {
            (CircuitState::Open, Some(until)) => Permit::WaitUntil(until),
            (CircuitState::HalfOpen, _) => Permit::Probe,
            _ => Permit::Send,
        }
    }

    /// A person asked for the probe now (**Probe now**): an open circuit's cooldown ends at
    /// `now`, so it is half-open and the next attempt is its probe. Closed or half-open already:
    /// unchanged.
    pub fn probe_now(&self, now: Millis) -> Health {
        match self.state(now) {
            CircuitState::Open => Health { open_until: Some(now), ..self.clone() },
            _ => self.clone(),
        }
    }

    /// The health after an attempt that started at `started_at` and finished `now`.
    pub fn after(&self, policy: &BreakerPolicy, succeeded: bool, started_at: Millis, now: Millis) -> Health {
        if succeeded {
            return Health::default();
        }
        let mut next = Health {
            consecutive_failures: self.consecutive_failures.saturating_add(1),
            failing_since: Some(self.failing_since.unwrap_or(started_at)),
            ..self.clone()
        };
        let base = policy.cooldown.as_millis() as i64;
        match self.state(now) {
            // The probe failed: open again, for twice as long.
            CircuitState::HalfOpen => {
                let cooldown = (self.cooldown_ms.max(base) * 2).min(MAX_COOLDOWN.as_millis() as i64);
                next.open_until = Some(now + cooldown);
                next.cooldown_ms = cooldown;
            }
            CircuitState::Closed if next.consecutive_failures >= policy.failures => {
                next.open_until = Some(now + base);
                next.cooldown_ms = base;
            }
            // Closed below the threshold, or an attempt sent before the circuit opened.
            _ => {}
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: BreakerPolicy = BreakerPolicy { failures: 3, cooldown: Duration::from_secs(60) };

    fn fail(h: &Health, now: Millis) -> Health {
        h.after(&POLICY, false, now - 10, now)
    }

    #[test]
    fn failures_in_a_row_open_the_circuit_and_a_success_closes_it() {
        let mut h = Health::default();
        for i in 1..3 {
            h = fail(&h, 1_000 * i);
            assert_eq!(h.state(1_000 * i), CircuitState::Closed);
            assert_eq!(h.permit(1_000 * i), Permit::Send);
        }
        assert_eq!(h.failing_since, Some(990));
        h = fail(&h, 3_000);
        assert_eq!(h.consecutive_failures, 3);
        assert_eq!(h.state(3_000), CircuitState::Open);
        assert_eq!(h.permit(3_000), Permit::WaitUntil(63_000));
        assert_eq!(h.permit(63_000), Permit::Probe);
        let closed = h.after(&POLICY, true, 63_000, 63_100);
        assert_eq!(closed, Health::default());
        assert_eq!(closed.permit(63_100), Permit::Send);
    }

    #[test]
    fn a_failed_probe_doubles_the_cooldown_up_to_ten_minutes() {
        let mut h = Health::default();
        for i in 1..=3 {
            h = fail(&h, i);
        }
        let mut now = h.open_until.unwrap();
        let mut cooldowns = Vec::new();
        for _ in 0..6 {
            assert_eq!(h.permit(now), Permit::Probe);
            h = fail(&h, now);
            cooldowns.push(h.cooldown_ms / 1000);
            now = h.open_until.unwrap();
        }
        assert_eq!(cooldowns, vec![120, 240, 480, 600, 600, 600]);
    }

    #[test]
    fn probe_now_ends_the_cooldown_and_a_failed_probe_doubles_it_as_usual() {
        let mut h = Health::default();
        assert_eq!(h.probe_now(5), h, "a closed circuit has nothing to probe");
        for i in 1..=3 {
            h = fail(&h, i);
        }
        assert_eq!(h.state(10), CircuitState::Open);
        let asked = h.probe_now(10);
        assert_eq!((asked.state(10), asked.permit(10)), (CircuitState::HalfOpen, Permit::Probe));
        assert_eq!(asked.consecutive_failures, 3, "its failures in a row stay");
        assert_eq!(asked.probe_now(11), asked, "half-open already");
        let failed = fail(&asked, 20);
        assert_eq!((failed.open_until, failed.cooldown_ms), (Some(20 + 120_000), 120_000));
        assert_eq!(asked.after(&POLICY, true, 10, 20), Health::default());
    }

    #[test]
    fn attempts_that_were_in_flight_when_it_opened_do_not_reopen_it() {
        let mut h = Health::default();
        for i in 1..=3 {
            h = fail(&h, i);
        }
        let until = h.open_until;
        h = fail(&h, 10);
        assert_eq!((h.open_until, h.consecutive_failures), (until, 4));
    }
}
