//! The benchmark's scenarios. Each starts a fresh router and receiver, drives them, checks that
//! nothing was lost or duplicated (per event id and channel), and returns its measurements.

use std::cell::{Cell, RefCell};
use std::net::TcpListener;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::receiver::{black_hole, Check, Receiver};
use serde_json::json;

use crate::router::{audit_records_json, batch_json, event_json, RouterProcess};
use crate::{Measure, Plan};

/// Connections the router opens per channel (its `DELIVERY_CONCURRENCY` default).
pub const ROUTER_CONNECTIONS: usize = 16;
/// Ingestion requests in flight at once.
const INGEST_CONCURRENCY: usize = 8;
/// Most acknowledged-but-undelivered events the drivers allow before pausing.
const MAX_BACKLOG: u64 = 50_000;

fn receiver() -> Receiver {
    Receiver::start(("127.0.0.1", 0))
}

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

fn check_row(name: &str, check: Check) -> Measure {
    Measure::new(name, "lost/duplicated", format!("{}/{}", check.lost, check.duplicated), "", check.lost == 0 && check.duplicated == 0)
}

/// 1. The loopback limit: the same payload POSTed straight at the receiver.
pub async fn ceiling(plan: &Plan) -> Vec<Measure> {
    let receiver = receiver();
    let client = crate::http_client(Duration::from_secs(30), ROUTER_CONNECTIONS);
    let body = actix_web::web::Bytes::from(event_json(0));
    let url = receiver.url(0);
    let next = Rc::new(Cell::new(0u64));
    let deadline = Instant::now() + plan.duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..ROUTER_CONNECTIONS {
        let (client, body, url, next) = (client.clone(), body.clone(), url.clone(), next.clone());
        tasks.push(actix_web::rt::spawn(async move {
            while Instant::now() < deadline {
                let seq = next.get();
                next.set(seq + 1);
                let response = client
                    .post(&url)
                    .insert_header(("content-type", "application/json"))
                    .insert_header(("webhook-id", format!("e{seq}")))
                    .send_body(body.clone())
                    .await;
                assert!(response.is_ok_and(|r| r.status().is_success()), "the receiver failed");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let sent = next.get();
    let rate = sent as f64 / elapsed;
    vec![
        Measure::new("ceiling", "requests/s", format!("{rate:.0}"), &format!("{ROUTER_CONNECTIONS} connections, {sent} requests"), true)
            .value(rate),
        check_row("ceiling", receiver.check(0, sent)),
    ]
}

/// Drives batched (or single-event) ingestion for the plan's duration, keeping at most
/// `MAX_BACKLOG` events ahead of the receiver. Returns how many events were acknowledged.
async fn drive(router: &Rc<RouterProcess>, receiver: &Receiver, channels: u64, batch: u64, duration: Duration) -> u64 {
    drive_all(std::slice::from_ref(router), receiver, channels, batch, duration).await
}

/// As [`drive`], spreading the ingestion requests over several instances in turn.
async fn drive_all(routers: &[Rc<RouterProcess>], receiver: &Receiver, channels: u64, batch: u64, duration: Duration) -> u64 {
    let next = Rc::new(Cell::new(0u64));
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    let concurrency = if batch == 1 { 64 } else { INGEST_CONCURRENCY };
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

/// 2. Sustained end-to-end delivery, ingested in batches of `batch` (1 = one event per request).
pub async fn throughput(plan: &Plan, batch: u64) -> Vec<Measure> {
    let name = if batch == 1 { "throughput-single" } else { "throughput" };
    let receiver = receiver();
    let router = Rc::new(RouterProcess::start(plan, &[]));
    router.setup(&[receiver.url(0)]).await;
    let started = Instant::now();
    let acked = drive(&router, &receiver, 1, batch, plan.duration).await;
    wait_until("every delivery to arrive", Duration::from_secs(600), || receiver.total() >= acked).await;
    let recorded = wait_until("every attempt to be recorded", Duration::from_secs(120), || router.pending() == 0).await;
    let rate = acked as f64 / (recorded - started).as_secs_f64();
    vec![
        Measure::new(name, "delivered/s", format!("{rate:.0}"), &format!("{acked} events, {batch} per request, ingested for {:?}", plan.duration), true)
            .value(rate),
        check_row(name, receiver.check(0, acked)),
    ]
}

/// Scenario 9: batched ingestion to one `splunk` channel (`batch_size` 100) against a
/// HEC-like receiver; events delivered per second, many to a request.
pub async fn splunk(plan: &Plan) -> Vec<Measure> {
    let receiver = receiver();
    let router = Rc::new(RouterProcess::start(plan, &[]));
    let channel = json!({"type": "splunk", "url": receiver.hec_url(), "token": "bench-hec-token", "batch_size": 100});
    router.setup_channels(&[channel]).await;
    let started = Instant::now();
    let acked = drive(&router, &receiver, 1, 100, plan.duration).await;
    wait_until("every event to arrive", Duration::from_secs(600), || receiver.total() >= acked).await;
    let recorded = wait_until("every attempt to be recorded", Duration::from_secs(120), || router.pending() == 0).await;
    let rate = acked as f64 / (recorded - started).as_secs_f64();
    vec![
        Measure::new("splunk", "delivered/s", format!("{rate:.0}"), &format!("{acked} events to one Splunk channel, batch_size 100"), true).value(rate),
        check_row("splunk", receiver.check(0, acked)),
    ]
}

/// Scenario 10: Office 365 audit records, arrays of 996 (166 "anyone" link clicks of six
/// records each, one alert per click) posted by 8 clients for the run's duration; records
/// read, mapped, folded and stored per second.
pub async fn o365(plan: &Plan) -> Vec<Measure> {
    const CLICKS: u64 = 166;
    let router = Rc::new(RouterProcess::start(plan, &[]));
    router.setup_channels(&[]).await;
    let next = Rc::new(Cell::new(0u64));
    let deadline = Instant::now() + plan.duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..INGEST_CONCURRENCY {
        let (router, next) = (router.clone(), next.clone());
        tasks.push(actix_web::rt::spawn(async move {
            let mut records = 0u64;
            while Instant::now() < deadline {
                let first = next.get();
                next.set(first + CLICKS);
                let (status, answer) = router.post_raw("/sources/o365/audit", audit_records_json(first, CLICKS)).await;
                assert_eq!(status, 202, "audit ingestion failed: {answer}");
                let results = answer["results"].as_array().map_or(0, Vec::len) as u64;
                let events = answer["results"].as_array().map_or(0, |r| r.iter().filter(|r| r["outcome"] == "ingested").count()) as u64;
                assert_eq!((results, events), (CLICKS * 6, CLICKS), "every record answered, one event per click");
                records += results;
            }
            records
        }));
    }
    let mut records = 0;
    for task in tasks {
        records += task.await.unwrap();
    }
    let rate = records as f64 / started.elapsed().as_secs_f64();
    vec![Measure::new("o365", "records/s", format!("{rate:.0}"), &format!("{records} audit records, 996 per request, one event per six"), true).value(rate)]
}

/// 3. Ingestion-to-arrival latency at a fixed rate of single-event requests.
pub async fn latency(plan: &Plan, per_second: u64) -> Vec<Measure> {
    let receiver = receiver();
    let router = Rc::new(RouterProcess::start(plan, &[]));
    router.setup(&[receiver.url(0)]).await;
    let total = per_second * plan.duration.as_secs().max(1);
    receiver.stamp_arrivals(total as usize);
    let sent_at: Rc<RefCell<Vec<Option<Instant>>>> = Rc::new(RefCell::new(vec![None; total as usize]));
    let started = Instant::now();
    let mut tick = actix_web::rt::time::interval(Duration::from_millis(1));
    let mut seq = 0u64;
    let mut tasks = Vec::with_capacity(total as usize);
    while seq < total {
        tick.tick().await;
        let due = ((started.elapsed().as_secs_f64() * per_second as f64) as u64).min(total);
        while seq < due {
            let (router, sent_at) = (router.clone(), sent_at.clone());
            let this = seq;
            tasks.push(actix_web::rt::spawn(async move {
                sent_at.borrow_mut()[this as usize] = Some(Instant::now());
                let (status, answer) = router.post_raw("/events", event_json(this).into_bytes()).await;
                assert_eq!(status, 202, "ingestion failed: {answer}");
            }));
            seq += 1;
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    wait_until("every delivery to arrive", Duration::from_secs(120), || receiver.total() >= total).await;
    let arrivals = receiver.arrivals();
    let sent = sent_at.borrow();
    let mut latencies: Vec<f64> = (0..total as usize)
        .filter_map(|i| Some((arrivals[i]? - sent[i]?).as_secs_f64() * 1000.0))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let note = format!("{per_second} events/s for {:?}, {} events", plan.duration, latencies.len());
    vec![
        Measure::new("latency", "p50 ms", format!("{:.2}", at(0.50)), &note, true).value(at(0.50)),
        Measure::new("latency", "p99 ms", format!("{:.2}", at(0.99)), &note, at(0.99) < crate::targets(plan.database.is_some()).2).value(at(0.99)),
        Measure::new("latency", "p99.9 ms", format!("{:.2}", at(0.999)), &note, true).value(at(0.999)),
        Measure::new("latency", "max ms", format!("{:.2}", latencies.last().copied().unwrap_or(0.0)), &note, true),
        check_row("latency", receiver.check(0, total)),
    ]
}

/// 4. Ten channels; then the same with one of them pointing at an endpoint that never answers.
pub async fn isolation(plan: &Plan) -> Vec<Measure> {
    let mut rates = Vec::new();
    let mut rows = Vec::new();
    for stuck in [false, true] {
        let receiver = receiver();
        let router = Rc::new(RouterProcess::start(plan, &[]));
        let hole = black_hole();
        let urls: Vec<String> = (0..10)
            .map(|i| if stuck && i == 0 { format!("http://127.0.0.1:{hole}/0") } else { receiver.url(i) })
            .collect();
        router.setup(&urls).await;
        let started = Instant::now();
        let acked = drive(&router, &receiver, if stuck { 9 } else { 10 }, 100, plan.duration).await;
        let done = wait_until("the healthy channels to receive everything", Duration::from_secs(600), || {
            (usize::from(stuck)..10).all(|c| receiver.delivered(c) >= acked)
        })
        .await;
        let rate = 9.0 * acked as f64 / (done - started).as_secs_f64();
        rates.push(rate);
        let label = if stuck { "one channel never answers" } else { "all ten healthy" };
        rows.push(Measure::new("isolation", "nine channels delivered/s", format!("{rate:.0}"), label, true).value(rate));
        rows.push(check_row("isolation", healthy_check(&receiver, stuck, acked)));
    }
    let share = rates[1] / rates[0];
    rows.push(Measure::new("isolation", "share kept", format!("{:.1}%", share * 100.0), "stuck / healthy", share >= 0.95).value(share));
    rows
}

/// Scenario 8: one channel's receiver failing every request (`500`), beside nine healthy ones:
/// the nine channels' rate and the requests the failing receiver gets per minute, with the
/// circuit breaker as good as off (`BREAKER_FAILURES=10000`, its highest) and on (the defaults:
/// ten failures, then one probe per cooldown), against all ten healthy in the same run.
pub async fn failing_channel(plan: &Plan) -> Vec<Measure> {
    let mut rows = Vec::new();
    let mut rates = Vec::new();
    for (label, failing, env) in [
        ("all ten healthy", false, vec![]),
        ("one fails, breaker off", true, vec![("BREAKER_FAILURES", "10000".to_string())]),
        ("one fails, breaker on", true, vec![]),
    ] {
        let receiver = receiver();
        let router = Rc::new(RouterProcess::start(plan, &env));
        let urls: Vec<String> = (0..10).map(|i| if failing && i == 0 { receiver.failing_url() } else { receiver.url(i) }).collect();
        router.setup(&urls).await;
        let started = Instant::now();
        let acked = drive(&router, &receiver, if failing { 9 } else { 10 }, 100, plan.duration).await;
        let done = wait_until("the healthy channels to receive everything", Duration::from_secs(600), || {
            (usize::from(failing)..10).all(|c| receiver.delivered(c) >= acked)
        })
        .await;
        let elapsed = (done - started).as_secs_f64();
        let rate = 9.0 * acked as f64 / elapsed;
        rates.push(rate);
        rows.push(Measure::new("failing-channel", "nine channels delivered/s", format!("{rate:.0}"), label, true).value(rate));
        if failing {
            let per_minute = receiver.failed() as f64 / elapsed * 60.0;
            rows.push(
                Measure::new("failing-channel", "failing receiver requests/min", format!("{per_minute:.0}"), &format!("{label}; {} requests in {elapsed:.1} s, {acked} events", receiver.failed()), true)
                    .value(per_minute),
            );
        }
        rows.push(check_row("failing-channel", healthy_check(&receiver, failing, acked)));
    }
    let share = rates[2] / rates[0];
    rows.push(Measure::new("failing-channel", "share kept", format!("{:.1}%", share * 100.0), "breaker on / all healthy", share >= 0.95).value(share));
    rows
}

/// 5. A backlog built while the receiver is down: peak memory, then the drain rate.
pub async fn backlog(plan: &Plan) -> Vec<Measure> {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // Retries every second while the receiver is down, so the whole backlog is due when it returns
    // and the drain measures the router, not the retry schedule.
    let schedule = vec!["1s"; 50].join(",");
    // The circuit opens while the receiver is down; the drain starts with its first probe after
    // the return (a cooldown of 1 s, doubled after each failed probe), reported apart.
    let router = Rc::new(RouterProcess::start(plan, &[("RETRY_SCHEDULE", schedule), ("BREAKER_COOLDOWN", "1s".to_string())]));
    router.setup(&[format!("http://127.0.0.1:{port}/0")]).await;
    let total = plan.backlog;
    let started = Instant::now();
    let mut next = 0u64;
    let mut tasks = Vec::new();
    for _ in 0..INGEST_CONCURRENCY {
        let router = router.clone();
        let mine: Vec<u64> = (0..total / 100).skip(tasks.len()).step_by(INGEST_CONCURRENCY).collect();
        next += mine.len() as u64 * 100;
        tasks.push(actix_web::rt::spawn(async move {
            for chunk in mine {
                let (status, answer) = router.post_raw("/events", batch_json(chunk * 100, 100)).await;
                assert_eq!(status, 202, "ingestion failed: {answer}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    let (_, peak_while_down) = router.memory_kib();
    let receiver = Receiver::start(("127.0.0.1", port));
    let back = Instant::now();
    let probed = wait_until("the circuit's probe after the return", Duration::from_secs(900), || receiver.delivered(0) >= 1).await;
    let done = wait_until("the backlog to drain", Duration::from_secs(900), || receiver.delivered(0) >= next).await;
    let drain = next as f64 / (done - probed).as_secs_f64();
    let (_, peak) = router.memory_kib();
    vec![
        Measure::new("backlog", "ingested/s while down", format!("{:.0}", next as f64 / ingest_secs), &format!("{next} events"), true),
        Measure::new("backlog", "peak RSS MiB (down)", format!("{:.0}", peak_while_down as f64 / 1024.0), &format!("{next} pending"), peak_while_down < 256 * 1024)
            .value(peak_while_down as f64 / 1024.0),
        Measure::new("backlog", "peak RSS MiB (overall)", format!("{:.0}", peak as f64 / 1024.0), "", peak < 256 * 1024).value(peak as f64 / 1024.0),
        Measure::new("backlog", "first probe s", format!("{:.1}", (probed - back).as_secs_f64()), "after the receiver's return (open circuit)", true),
        Measure::new("backlog", "drain delivered/s", format!("{drain:.0}"), "from the first arrival", true).value(drain),
        check_row("backlog", receiver.check(0, next)),
    ]
}

/// 6. One event to many channels: time until the last arrival.
pub async fn fan_out(plan: &Plan) -> Vec<Measure> {
    let receiver = receiver();
    let router = Rc::new(RouterProcess::start(plan, &[]));
    let urls: Vec<String> = (0..plan.fan_out).map(|i| receiver.url(i)).collect();
    router.setup(&urls).await;
    let started = Instant::now();
    let (status, answer) = router.post_raw("/events", event_json(0).into_bytes()).await;
    assert_eq!(status, 202, "{answer}");
    let acked = Instant::now();
    let done = wait_until("every channel to receive the event", Duration::from_secs(120), || receiver.total() >= plan.fan_out as u64).await;
    let mut rows = vec![
        Measure::new("fan-out", "ack ms", format!("{:.1}", (acked - started).as_secs_f64() * 1000.0), &format!("{} deliveries in one transaction", plan.fan_out), true),
        Measure::new("fan-out", "last arrival ms", format!("{:.1}", (done - started).as_secs_f64() * 1000.0), &format!("{} channels", plan.fan_out), true)
            .value((done - started).as_secs_f64() * 1000.0),
    ];
    let lost = (0..plan.fan_out).filter(|c| receiver.check(*c, 1).lost > 0).count();
    let duplicated: u64 = (0..plan.fan_out).map(|c| receiver.check(c, 1).duplicated).sum();
    rows.push(Measure::new("fan-out", "lost/duplicated", format!("{lost}/{duplicated}"), "", lost == 0 && duplicated == 0));
    rows
}

/// Scenario 7: Two instances on one PostgreSQL database, ingestion spread over both, one channel: the
/// delivered rate (compared with one instance in `throughput`), and not one duplicate.
pub async fn two_instances(plan: &Plan, batch: u64) -> Vec<Measure> {
    let receiver = receiver();
    let database = crate::router::BenchDatabase::fresh(plan);
    let a = Rc::new(RouterProcess::start_on(plan, &[], database.clone(), "bench-a"));
    let b = Rc::new(RouterProcess::start_on(plan, &[], database.clone(), "bench-b"));
    a.setup(&[receiver.url(0)]).await;
    // The setup made through a is in force on b within a second (its routing watch).
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let acked = drive_all(&[a.clone(), b.clone()], &receiver, 1, batch, plan.duration).await;
    wait_until("every delivery to arrive", Duration::from_secs(600), || receiver.total() >= acked).await;
    let recorded = wait_until("every attempt to be recorded", Duration::from_secs(120), || a.pending() == 0).await;
    let rate = acked as f64 / (recorded - started).as_secs_f64();
    vec![
        Measure::new("two-instances", "delivered/s", format!("{rate:.0}"), &format!("{acked} events, {batch} per request, through both"), true)
            .value(rate),
        check_row("two-instances", receiver.check(0, acked)),
    ]
}

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

/// 11. Retention: a steady load ([`STEADY_RATE`] events/s in batches of 100) for twelve times the
/// scenario duration (two minutes; 36 s with `--quick`), once without retention and once with
/// `RETENTION`/`FAILED_RETENTION` of 5 s; the database's size on disk every tenth of the run
/// (SQLite: file + WAL), and delivered/s of both (events / time to the last record). With
/// retention the file's size must level off (its last three samples within 10 % of each other)
/// and the rate stay within 5 % of the run without. Then the same at full speed (the throughput
/// scenario's closed loop), where retention's deletes share the one writer with everything else.
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
