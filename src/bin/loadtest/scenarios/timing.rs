//! Scenarios measuring how soon an event arrives: latency at a fixed rate of single-event
//! requests, and one event fanned out to many channels.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{check_row, receiver, wait_until};
use crate::router::{event_json, RouterProcess};
use crate::{Measure, Plan};

/// Scenario 3: ingestion-to-arrival latency at a fixed rate of single-event requests.
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
        Measure::new("latency", "p99 ms", format!("{:.2}", at(0.99)), &note, at(0.99) < crate::targets(plan.database.is_some()).p99_ms).value(at(0.99)),
        Measure::new("latency", "p99.9 ms", format!("{:.2}", at(0.999)), &note, true).value(at(0.999)),
        Measure::new("latency", "max ms", format!("{:.2}", latencies.last().copied().unwrap_or(0.0)), &note, true),
        check_row("latency", receiver.check(0, total)),
    ]
}

/// Scenario 6: one event to many channels, time until the last arrival.
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
