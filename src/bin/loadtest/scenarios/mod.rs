//! The benchmark's scenarios. Each starts a fresh router and receiver, drives them, checks that
//! nothing was lost or duplicated (per event id and channel), and returns its measurements.
//!
//! The scenarios are grouped by what they measure: `rate.rs` how much gets through (ceiling,
//! throughput, splunk, o365, two instances), `timing.rs` how soon it arrives (latency, fan-out),
//! `faults.rs` what a bad receiver costs the others (isolation, failing channel, backlog),
//! `retention.rs` what purging costs under load, `rules.rs` and `grouping.rs` what noise control
//! (issue 28) costs: matching 1,000 rules, and grouping events into notifications. What they
//! share (the ingestion drivers, the waits and the loss checks) is here.

mod faults;
mod grouping;
mod rate;
mod retention;
mod rules;
mod scale;
mod soak;
mod timing;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::receiver::{Check, Receiver};
use crate::router::{batch_json, event_json, RouterProcess};
use crate::Measure;

pub use faults::{backlog, failing_channel, isolation};
pub use grouping::grouping;
pub use rate::{ceiling, o365, splunk, throughput, two_instances};
pub use retention::retention;
pub use rules::rules;
pub use scale::scale_out;
pub use soak::soak;
pub use timing::{fan_out, latency};

/// Connections the router opens per channel (its `DELIVERY_CONCURRENCY` default).
pub const ROUTER_CONNECTIONS: usize = 16;
/// Ingestion requests in flight at once.
const INGEST_CONCURRENCY: usize = 8;
/// Most acknowledged-but-undelivered events the drivers allow before pausing.
const MAX_BACKLOG: u64 = 50_000;

/// A fresh receiver on a port of its own.
fn receiver() -> Receiver {
    Receiver::start(("127.0.0.1", 0))
}

/// Waits until `done`, failing the run after `within`; answers when it was seen done.
async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        if done() {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Lost and duplicated summed over the healthy ones of ten channels (channel 0 is the bad one
/// when `one_bad`).
fn healthy_check(receiver: &Receiver, one_bad: bool, acked: u64) -> Check {
    (usize::from(one_bad)..10).map(|c| receiver.check(c, acked)).fold(Check::default(), |sum, c| Check {
        delivered: sum.delivered + c.delivered,
        lost: sum.lost + c.lost,
        duplicated: sum.duplicated + c.duplicated,
    })
}

/// The row saying whether anything was lost or duplicated.
fn check_row(name: &str, check: Check) -> Measure {
    Measure::new(name, "lost/duplicated", format!("{}/{}", check.lost, check.duplicated), "", check.lost == 0 && check.duplicated == 0)
}

/// Drives batched (or single-event) ingestion for `duration`, keeping at most
/// `MAX_BACKLOG` events ahead of the receiver: `INGEST_CONCURRENCY` requests in flight, or 64
/// of single events. Returns how many events were acknowledged.
async fn drive(router: &Rc<RouterProcess>, receiver: &Receiver, channels: u64, batch: u64, duration: Duration) -> u64 {
    let concurrency = if batch == 1 { 64 } else { INGEST_CONCURRENCY };
    drive_all(std::slice::from_ref(router), receiver, channels, batch, duration, concurrency).await
}

/// As [`drive`] with `concurrency` requests in flight, spread over several instances in turn.
async fn drive_all(routers: &[Rc<RouterProcess>], receiver: &Receiver, channels: u64, batch: u64, duration: Duration, concurrency: usize) -> u64 {
    let next = Rc::new(Cell::new(0u64));
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let (router, next, receiver) = (routers[task % routers.len()].clone(), next.clone(), receiver.clone());
        tasks.push(actix_web::rt::spawn(async move {
            while Instant::now() < deadline {
                if next.get().saturating_sub(receiver.total() / channels) > MAX_BACKLOG {
                    actix_web::rt::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                let first = next.get();
                next.set(first + batch);
                let body = if batch == 1 { event_json(first).into_bytes() } else { batch_json(first, batch) };
                let (status, answer) = router.post_raw("/events", body).await;
                assert_eq!(status, 202, "ingestion failed: {answer}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    next.get()
}
