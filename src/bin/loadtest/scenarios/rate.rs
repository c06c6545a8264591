//! Scenarios measuring how much gets through: the loopback ceiling, sustained delivery (batched
//! and single-event), a Splunk channel's batches, Office 365 audit records, and two instances on
//! one PostgreSQL database.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{check_row, drive, drive_all, receiver, wait_until, INGEST_CONCURRENCY, ROUTER_CONNECTIONS};
use crate::router::{audit_records_json, event_json, RouterProcess};
use crate::{Measure, Plan};

/// Scenario 1, the ceiling: the loopback limit, the same payload POSTed straight at the receiver.
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

/// Scenario 2: sustained end-to-end delivery, ingested in batches of `batch` (1 = one event per
/// request), `concurrency` requests in flight.
pub async fn throughput(plan: &Plan, name: &str, batch: u64, concurrency: usize) -> Vec<Measure> {
    let receiver = receiver();
    let router = Rc::new(RouterProcess::start(plan, &[]));
    router.setup(&[receiver.url(0)]).await;
    let started = Instant::now();
    let acked = drive_all(std::slice::from_ref(&router), &receiver, 1, batch, plan.duration, concurrency).await;
    wait_until("every delivery to arrive", Duration::from_secs(600), || receiver.total() >= acked).await;
    let recorded = wait_until("every attempt to be recorded", Duration::from_secs(120), || router.pending() == 0).await;
    let rate = acked as f64 / (recorded - started).as_secs_f64();
    vec![
        Measure::new(name, "delivered/s", format!("{rate:.0}"), &format!("{acked} events, {batch} per request, {concurrency} in flight, ingested for {:?}", plan.duration), true)
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

/// Scenario 7: two instances on one PostgreSQL database, ingestion spread over both, one
/// channel: the delivered rate (compared with one instance in `throughput`), and not one
/// duplicate.
pub async fn two_instances(plan: &Plan, batch: u64) -> Vec<Measure> {
    let receiver = receiver();
    let database = crate::router::BenchDatabase::fresh(plan);
    let a = Rc::new(RouterProcess::start_on(plan, &[], database.clone(), "bench-a"));
    let b = Rc::new(RouterProcess::start_on(plan, &[], database.clone(), "bench-b"));
    a.setup(&[receiver.url(0)]).await;
    // The setup made through a is in force on b within a second (its routing watch).
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let acked = drive_all(&[a.clone(), b.clone()], &receiver, 1, batch, plan.duration, INGEST_CONCURRENCY).await;
    wait_until("every delivery to arrive", Duration::from_secs(600), || receiver.total() >= acked).await;
    let recorded = wait_until("every attempt to be recorded", Duration::from_secs(120), || a.pending() == 0).await;
    let rate = acked as f64 / (recorded - started).as_secs_f64();
    vec![
        Measure::new("two-instances", "delivered/s", format!("{rate:.0}"), &format!("{acked} events, {batch} per request, through both"), true)
            .value(rate),
        check_row("two-instances", receiver.check(0, acked)),
    ]
}
