//! Scenarios measuring what a bad receiver costs: one that never answers or one that fails every
//! request beside nine healthy channels (the share of their rate kept), and a backlog built while
//! the only receiver is down (memory, then the drain).

use std::net::TcpListener;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{check_row, drive, healthy_check, receiver, wait_until, INGEST_CONCURRENCY};
use crate::receiver::{black_hole, Receiver};
use crate::router::{batch_json, RouterProcess};
use crate::{Measure, Plan};

/// Scenario 4: ten channels; then the same with one of them pointing at an endpoint that never
/// answers.
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

/// Scenario 5: a backlog built while the receiver is down: peak memory, then the drain rate.
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
