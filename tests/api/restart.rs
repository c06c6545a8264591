//! Crash safety with the real binary: SIGKILL while deliveries are pending, restart on the same
//! database, and every acknowledged event is still delivered.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

struct RouterProcess {
    child: Child,
    api: Api,
}

/// Starts `spscan-router` on a free port with the given database; returns once it listens.
fn start_router(database: &str) -> RouterProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spscan-router"))
        .env("DATABASE_URL", database)
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("RETRY_SCHEDULE", vec!["200ms"; 40].join(","))
        .env("RUST_LOG", "info")
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("INGEST_TOKEN", INGEST_TOKEN)
        .env("ALLOWED_TARGET_NETWORKS", "127.0.0.1/32")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the router binary starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_string());
            }
        }
    });
    let base = rx.recv_timeout(Duration::from_secs(30)).expect("the router reports its address");
    RouterProcess { child, api: Api::new(base) }
}

#[actix_web::test]
async fn a_router_killed_with_sigkill_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("router.db").to_string_lossy().into_owned();
    let failing = Receiver::start().await;
    failing.reply_with(Reply::Status(503));
    let hanging = Receiver::start().await;
    hanging.reply_with(Reply::Hang);

    let mut first = start_router(&database);
    let api = &first.api;
    api.create_tenant("contoso").await;
    let a = api.create_channel("Failing", &failing.url("/")).await;
    let b = api.create_channel("Hanging", &hanging.url("/")).await;
    api.route_everything_to(&[a["id"].as_str().unwrap(), b["id"].as_str().unwrap()]).await;

    let mut acknowledged = Vec::new();
    for i in 0..10 {
        let mut event = permission_event("contoso", "permission.external_share_created", "high");
        event["event_id"] = json!(format!("single-{i}"));
        let answer = api.ingest(event).await;
        assert_eq!(answer.status, 202);
        acknowledged.push(answer.body["event_id"].as_str().unwrap().to_string());
    }
    let batch: Vec<_> = (0..20)
        .map(|i| {
            let mut event = permission_event("contoso", "permission.anonymous_link_created", "critical");
            event["event_id"] = json!(format!("batch-{i}"));
            event
        })
        .collect();
    let answer = api.ingest(json!({ "events": batch })).await;
    assert_eq!(answer.status, 202);
    acknowledged.extend(answer.body["results"].as_array().unwrap().iter().map(|r| r["event_id"].as_str().unwrap().to_string()));
    assert_eq!(acknowledged.len(), 30);

    // Deliveries are in flight or waiting for a retry when the process dies.
    failing.wait_for(30, None, Duration::from_secs(20)).await;
    hanging.wait_for(1, None, Duration::from_secs(20)).await;
    first.child.kill().expect("SIGKILL");
    first.child.wait().unwrap();

    failing.reply_with(Reply::Status(200));
    hanging.reply_with(Reply::Status(200));
    let mut second = start_router(&database);

    for receiver in [&failing, &hanging] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut delivered: Vec<String> = receiver
                .received()
                .iter()
                .filter(|c| c.answered == Some(200))
                .map(|c| c.json()["event_id"].as_str().unwrap().to_string())
                .collect();
            delivered.sort();
            delivered.dedup();
            if delivered.len() == acknowledged.len() {
                break;
            }
            assert!(Instant::now() < deadline, "only {} of 30 events delivered after the restart", delivered.len());
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pending = second.api.get("/api/v1/deliveries?status=pending&limit=500").await;
        if pending.body["items"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "deliveries still pending: {}", pending.body);
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let succeeded = second.api.get("/api/v1/deliveries?status=succeeded&limit=500").await;
    assert_eq!(succeeded.body["items"].as_array().unwrap().len(), 60, "30 events x 2 channels");
    second.child.kill().unwrap();
    second.child.wait().unwrap();
}

#[test]
fn a_bad_setting_stops_the_start_with_one_line_naming_it() {
    for (variable, value) in [("RETRY_SCHEDULE", "30s,soon"), ("BIND_ADDR", "localhost"), ("DELIVERY_TIMEOUT", "forever")] {
        let output = Command::new(env!("CARGO_BIN_EXE_spscan-router"))
            .env(variable, value)
            .env("DATABASE_URL", ":memory:")
            .output()
            .expect("the binary runs");
        assert_eq!(output.status.code(), Some(2), "{variable}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(variable) && stderr.contains(value), "{stderr}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_spscan-router")).arg("--no-such-flag").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(String::from_utf8(output.stderr).unwrap().trim_end().lines().count(), 1);
}
