//! The DeliveryActor's pacing: when a request may start, by the channel's circuit breaker and its
//! rate limit, and when the channel should be given up.
//!
//! Invariants:
//! - The circuit breaker ([`Health`]) lives here: every finished attempt updates it (a person's
//!   Redeliver or Test too, through `ManualAttempt`); while it is open nothing is sent (queued
//!   and due deliveries wait, using up no retries) and a timer pumps again when the cooldown
//!   ends; half-open, one probe goes, alone.
//! - A channel's `rate_limit_per_second` spaces the starts of its requests evenly (no burst:
//!   time not used is not saved up): the actor claims each request's slot from the channel's
//!   pace, which the store keeps (`Store::claim_send_slot`: shared by all instances when several
//!   share the database, so together they keep the limit). A slot is never used sooner than one
//!   interval after this actor's own last request, and a slot not used before the next one
//!   begins is given up, never used late.
//! - A channel whose receiver is gone (its type's verdict: `410 Gone`, Slack's `404`), or that
//!   fails without a success for `DISABLE_AFTER`, is to be disabled ([`DeliveryActor::reason_to_disable`]).

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::timers::Timer;
use super::DeliveryActor;
use crate::domain::attempt::Verdict;
use crate::domain::breaker::{Health, Permit};
use crate::domain::channel::RateLimit;
use crate::domain::time::now_ms;

/// A request slot claimed from a channel's shared pace: usable from `at` until the next slot
/// may begin (`at` + the interval), and not after.
#[derive(Debug, Clone, Copy)]
struct Slot {
    at: Instant,
    until: Instant,
}

/// The breaker's state and the rate limit's.
pub struct Pacing {
    /// The channel's circuit breaker.
    pub health: Health,
    /// The half-open probe is in flight.
    pub probing: bool,
    /// Earliest start of the next request, by the channel's rate limit.
    next_send_at: Option<Instant>,
    /// The slot claimed for the next request, and whether a claim is under way.
    slot: Option<Slot>,
    claiming: bool,
}

impl Pacing {
    pub fn new(health: Health) -> Self {
        Pacing { health, probing: false, next_send_at: None, slot: None, claiming: false }
    }

    /// Retiring: a claimed slot is given up.
    pub fn give_up_slot(&mut self) {
        self.slot = None;
    }
}

impl DeliveryActor {
    /// How many more attempts may start now, by the circuit breaker; while it is open, a timer
    /// pumps again when the cooldown ends.
    pub(super) fn permitted(&mut self, ctx: &mut Context<Self>) -> usize {
        let now = now_ms();
        match self.pacing.health.permit(now) {
            Permit::Send => self.policy.max_in_flight,
            // The probe goes alone, once what was in flight has finished.
            Permit::Probe if self.pacing.probing || self.in_flight > 0 => 0,
            Permit::Probe => 1,
            Permit::WaitUntil(until) => {
                let wait = Duration::from_millis(until.saturating_sub(now).max(0) as u64);
                self.timers.reset(Timer::Cooldown, wait, ctx, Self::pump);
                0
            }
        }
    }

    /// A request is starting: if the circuit is half-open, it is the probe.
    pub(super) fn starting(&mut self) {
        if self.pacing.health.permit(now_ms()) == Permit::Probe {
            self.pacing.probing = true;
        }
    }

    /// An attempt finished (`succeeded` or not, started at `started_at`): the breaker counts it.
    /// Answers whether the health changed (and so must be stored).
    pub(super) fn count_in_health(&mut self, succeeded: bool, started_at: i64) -> bool {
        let health = self.pacing.health.after(&self.policy.breaker, succeeded, started_at, now_ms());
        let changed = health != self.pacing.health;
        self.pacing.health = health;
        changed
    }

    /// Why the channel should be disabled after this attempt, if it should.
    pub(super) fn reason_to_disable(&self, verdict: &Verdict, now: i64) -> Option<String> {
        if let Verdict::Disable(reason) = verdict {
            return Some(reason.clone());
        }
        let health = &self.pacing.health;
        let since = health.failing_since?;
        (health.consecutive_failures > 0 && now - since >= self.policy.disable_after.as_millis() as i64).then(|| {
            format!(
                "failing without a success since {} (DISABLE_AFTER {})",
                crate::domain::time::rfc3339(since),
                humantime::format_duration(self.policy.disable_after)
            )
        })
    }

    /// Whether the channel's rate limit lets a request start now; if so, the next one is spaced
    /// one interval later. If not, a timer pumps again when it does.
    pub(super) fn rate_allows(&mut self, ctx: &mut Context<Self>) -> bool {
        let Some(limit) = self.target.rate_limit else { return true };
        self.slot_allows(limit, ctx)
    }

    /// The channel's pace: whether the slot claimed for this request has come. Without a slot,
    /// one is claimed from the store and a timer pumps again when it comes; a slot whose time
    /// has passed (the next slot may have begun) is given up and another claimed.
    fn slot_allows(&mut self, limit: RateLimit, ctx: &mut Context<Self>) -> bool {
        let now = Instant::now();
        match self.pacing.slot {
            Some(slot) if slot.at > now => {
                self.wake_at(slot.at, ctx);
                return false;
            }
            Some(slot) if now < slot.until => {
                self.pacing.slot = None;
                self.pacing.next_send_at = Some(now + limit.interval());
                return true;
            }
            _ => self.pacing.slot = None,
        }
        if self.pacing.claiming || self.timers.is_set(Timer::ClaimRetry) {
            return false;
        }
        self.pacing.claiming = true;
        let interval = limit.interval();
        let (store, channel_id) = (self.store.clone(), self.target.channel_id.clone());
        let claim = async move { store.claim_send_slot(channel_id, interval).await };
        ctx.spawn(claim.into_actor(self).map(move |claimed, act, ctx| {
            act.pacing.claiming = false;
            match claimed {
                Ok(wait) => {
                    // The slot as the store measured it, and never sooner than one interval
                    // after this actor's own last request: how long the answer took to come
                    // back varies, and must not bring two requests closer.
                    let claimed = Instant::now() + wait;
                    let at = act.pacing.next_send_at.map_or(claimed, |floor| claimed.max(floor));
                    act.pacing.slot = Some(Slot { at, until: claimed + interval });
                    act.pump(ctx);
                }
                Err(err) => {
                    log::warn!("channel {}: claiming a request slot of its rate limit failed, trying again in 1 s: {err}", act.target.channel_id);
                    if act.phase.is_retiring() {
                        act.pump(ctx);
                    } else {
                        act.timers.set(Timer::ClaimRetry, Duration::from_secs(1), ctx, Self::pump);
                    }
                }
            }
        }));
        false
    }

    /// Pumps again at `at`, unless a timer for that is set already.
    fn wake_at(&mut self, at: Instant, ctx: &mut Context<Self>) {
        self.timers.set(Timer::Rate, at.saturating_duration_since(Instant::now()), ctx, Self::pump);
    }
}
