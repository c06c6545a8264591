//! The DeliveryActor's timers: every one it sets is kept here by what it waits for, so none is
//! set twice and each can be cancelled.
//!
//! Invariant: a timer that has fired is forgotten before its work runs ([`Timers::fired`]), so
//! [`Timers::live`] counts exactly the timers still to come. [`Timers::cancel_for_retire`]
//! cancels every timer that would start new work (a batch, a rate slot, a cooldown, a fetch or a
//! slot claim tried again); only the retry of a failed attempt-recording write survives it, as
//! that finishes what was already sent, and the actor stops once it has.

use actix::prelude::*;

/// What a timer waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The oldest queued delivery has waited `batch_wait`.
    Batch,
    /// The rate limit lets the next request start.
    Rate,
    /// The circuit's cooldown has ended.
    Cooldown,
    /// A failed fetch of due deliveries is tried again.
    FetchRetry,
    /// A failed claim of a shared rate-limit slot is tried again.
    ClaimRetry,
    /// A failed attempt-recording write is tried again.
    WriteRetry,
}

const ALL: [Timer; 6] = [Timer::Batch, Timer::Rate, Timer::Cooldown, Timer::FetchRetry, Timer::ClaimRetry, Timer::WriteRetry];

/// The handles of the timers set and not yet fired.
#[derive(Default)]
pub struct Timers([Option<SpawnHandle>; ALL.len()]);

impl Timers {
    fn slot(&mut self, timer: Timer) -> &mut Option<SpawnHandle> {
        &mut self.0[timer as usize]
    }

    /// Whether `timer` is set and has not fired.
    pub fn is_set(&self, timer: Timer) -> bool {
        self.0[timer as usize].is_some()
    }

    /// Runs `then` after `wait`, unless `timer` is set already (the earlier one stands).
    pub fn set<A>(&mut self, timer: Timer, wait: std::time::Duration, ctx: &mut Context<A>, then: fn(&mut A, &mut Context<A>))
    where
        A: Actor<Context = Context<A>> + HasTimers,
    {
        if self.is_set(timer) {
            return;
        }
        let handle = ctx.run_later(wait, move |act, ctx| {
            act.timers().fired(timer);
            then(act, ctx);
        });
        *self.slot(timer) = Some(handle);
    }

    /// Sets `timer` anew: an earlier one is cancelled.
    pub fn reset<A>(&mut self, timer: Timer, wait: std::time::Duration, ctx: &mut Context<A>, then: fn(&mut A, &mut Context<A>))
    where
        A: Actor<Context = Context<A>> + HasTimers,
    {
        self.cancel(timer, ctx);
        self.set(timer, wait, ctx, then);
    }

    /// `timer` has fired: it is no longer set.
    fn fired(&mut self, timer: Timer) {
        *self.slot(timer) = None;
    }

    pub fn cancel<A: Actor<Context = Context<A>>>(&mut self, timer: Timer, ctx: &mut Context<A>) {
        if let Some(handle) = self.slot(timer).take() {
            ctx.cancel_future(handle);
        }
    }

    /// The channel is retiring: every timer that would start new work is cancelled.
    pub fn cancel_for_retire<A: Actor<Context = Context<A>>>(&mut self, ctx: &mut Context<A>) {
        for timer in ALL.into_iter().filter(|t| *t != Timer::WriteRetry) {
            self.cancel(timer, ctx);
        }
    }

    /// The timers still to come.
    pub fn live(&self) -> Vec<Timer> {
        ALL.into_iter().filter(|t| self.is_set(*t)).collect()
    }
}

/// An actor that keeps its timers in a [`Timers`].
pub trait HasTimers {
    fn timers(&mut self) -> &mut Timers;
}
