//! The retention scenario: what purging old deliveries costs a router under steady and under
//! full-speed load, and whether the database's size levels off.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{check_row, drive, receiver, wait_until};
use crate::receiver::Check;
use crate::router::{batch_json, RouterProcess};
use crate::{Measure, Plan};

/// Events per second of the retention scenario's steady load: about 40 % of what this machine
/// delivers at most, so the run measures what retention costs a router that keeps up.
const STEADY_RATE: u64 = 10_000;

/// Ingests `rate` events per second in batches of 100 for `duration`, open loop (each request is
/// sent at its time whatever the others do); answers the events acknowledged.
async fn drive_steady(router: &Rc<RouterProcess>, rate: u64, duration: Duration) -> u64 {
    const BATCH: u64 = 100;
    let total = rate * duration.as_secs().max(1) / BATCH;
    let started = Instant::now();
    let mut tick = actix_web::rt::time::interval(Duration::from_millis(1));
    let (mut sent, mut tasks) = (0u64, Vec::new());
    while sent < total {
        tick.tick().await;
        let due = ((started.elapsed().as_secs_f64() * (rate / BATCH) as f64) as u64).min(total);
        while sent < due {
            let router = router.clone();
            let first = sent * BATCH;
            tasks.push(actix_web::rt::spawn(async move {
                let (status, answer) = router.post_raw("/events", batch_json(first, BATCH)).await;
                assert_eq!(status, 202, "ingestion failed: {answer}");
            }));
            sent += 1;
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    total * BATCH
}

/// Scenario 11, retention: a steady load ([`STEADY_RATE`] events/s in batches of 100) for twelve
/// times the scenario duration (two minutes; 36 s with `--quick`), once without retention and
/// once with `RETENTION`/`FAILED_RETENTION` of 5 s; the database's size on disk every tenth of
/// the run (SQLite: file + WAL), and delivered/s of both (events / time to the last record).
/// With retention the file's size must level off (its last three samples within 10 % of each
/// other) and the rate stay within 5 % of the run without. Then the same at full speed (the
/// throughput scenario's closed loop), where retention's deletes share the one writer with
/// everything else.
pub async fn retention(plan: &Plan) -> Vec<Measure> {
    let duration = plan.duration * 12;
    let mut rows = Vec::new();
    for steady in [true, false] {
        let mut runs = Vec::new();
        for keep in [None, Some("5s")] {
            runs.push(retention_run(plan, duration, steady, keep).await);
        }
        let load = if steady { format!("steady {STEADY_RATE}/s") } else { "full speed".to_string() };
        let shown = |sizes: &[(u64, (u64, u64))]| {
            sizes.iter().map(|(at, (db, wal))| format!("{at}s {:.0}+{:.0} MB", *db as f64 / 1e6, *wal as f64 / 1e6)).collect::<Vec<_>>().join(", ")
        };
        let mut runs = runs.into_iter();
        let (without, sizes_without, acked_without, check_without) = runs.next().unwrap();
        let (with, sizes_with, acked_with, check_with) = runs.next().unwrap();
        // The database file levels off; the WAL beside it goes up and down with the checkpoints,
        // so it is reported, not judged.
        let last: Vec<f64> = sizes_with.iter().rev().take(3).map(|(_, (db, _))| *db as f64).collect();
        let level = last.len() == 3 && last.iter().cloned().fold(f64::MIN, f64::max) <= 1.10 * last.iter().cloned().fold(f64::MAX, f64::min);
        let ratio = with / without;
        let name = if steady { "retention" } else { "retention-full-speed" };
        rows.push(Measure::new(name, "delivered/s without", format!("{without:.0}"), &format!("{load}, {acked_without} events; size (file+WAL): {}", shown(&sizes_without)), true).value(without));
        rows.push(Measure::new(name, "delivered/s, RETENTION=5s", format!("{with:.0}"), &format!("{load}, {acked_with} events; size (file+WAL): {}", shown(&sizes_with)), true).value(with));
        rows.push(Measure::new(name, "rate ratio with/without", format!("{ratio:.3}"), if steady { "target: at least 0.95" } else { "reported" }, !steady || ratio >= 0.95).value(ratio));
        rows.push(Measure::new(name, "size levels off", if level { "yes".into() } else { "no".into() }, "the file's last three samples within 10 %", if steady { level } else { true }));
        rows.push(check_row(&format!("{name} (without)"), check_without));
        rows.push(check_row(name, check_with));
    }
    rows
}

/// One run of the retention scenario: steady or full-speed load for `duration`, with `keep` as
/// `RETENTION`/`FAILED_RETENTION` (or none). Answers delivered/s (events / time to the last
/// record), the (seconds, (file, WAL) bytes) samples, the events acknowledged and the check.
async fn retention_run(plan: &Plan, duration: Duration, steady: bool, keep: Option<&str>) -> (f64, Vec<(u64, (u64, u64))>, u64, Check) {
    let receiver = receiver();
    let env: Vec<(&str, String)> = keep.map(|k| vec![("RETENTION", k.to_string()), ("FAILED_RETENTION", k.to_string())]).unwrap_or_default();
    let router = Rc::new(RouterProcess::start(plan, &env));
    router.setup(&[receiver.url(0)]).await;
    let sizes = Rc::new(RefCell::new(Vec::new()));
    let started = Instant::now();
    let sampler = {
        let (sizes, database) = (sizes.clone(), router.database.clone());
        actix_web::rt::spawn(async move {
            loop {
                actix_web::rt::time::sleep(duration / 10).await;
                sizes.borrow_mut().push((started.elapsed().as_secs(), database.size_bytes()));
            }
        })
    };
    let acked = if steady { drive_steady(&router, STEADY_RATE, duration).await } else { drive(&router, &receiver, 1, 100, duration).await };
    sampler.abort();
    wait_until("every delivery to arrive", Duration::from_secs(600), || receiver.total() >= acked).await;
    let recorded = wait_until("every attempt to be recorded", Duration::from_secs(120), || router.pending() == 0).await;
    let rate = acked as f64 / (recorded - started).as_secs_f64();
    let check = receiver.check(0, acked);
    let sizes = sizes.borrow().clone();
    (rate, sizes, acked, check)
}
