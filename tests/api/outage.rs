//! The database going away while the router runs (PostgreSQL, through a proxy the test cuts),
//! and a PostgreSQL server that cannot be reached at start.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

#[path = "../../src/bin/loadtest/db_proxy.rs"]
mod db_proxy;
use db_proxy::DbProxy;

#[actix_web::test]
async fn while_postgresql_is_away_ingestion_answers_503_and_everything_resumes_when_it_is_back() {
    Backend::Postgres
        .run(async {
            let database = TestDatabase::new();
            let upstream = url::Url::parse(&database.url).unwrap();
            let proxy = DbProxy::start(&format!("{}:{}", upstream.host_str().unwrap(), upstream.port().unwrap_or(5432)));
            let through_proxy = proxy.url_for(&database.url);
            let app = spawn_app_with(|s| {
                s.database = spscan_router::store::Database::parse(&through_proxy).unwrap();
                s.retry_schedule = spscan_router::domain::retry::RetrySchedule::parse(&vec!["300ms"; 40].join(",")).unwrap();
            })
            .await;
            let receiver = Receiver::start().await;
            receiver.reply_with(Reply::Status(500));
            app.soc_channel_for_contoso(&receiver).await;
            let mut before = permission_event("contoso", "permission.external_share_created", "high");
            before["event_id"] = json!("before-outage");
            assert_eq!(app.ingest(before).await.status, 202);
            receiver.wait_for(2, None, Duration::from_secs(5)).await;

            proxy.cut();
            let mut during = permission_event("contoso", "permission.external_share_created", "high");
            during["event_id"] = json!("during-outage");
            let answer = app.ingest(during.clone()).await;
            assert_eq!(answer.status, 503, "{}", answer.body);
            assert_eq!(answer.content_type, "application/problem+json");
            assert!(answer.body["detail"].as_str().unwrap().contains("retry"), "{}", answer.body);
            let health = app.get("/healthz").await;
            assert_eq!((health.status, health.body["database"].as_str()), (503, Some("unreachable")));

            // Back: the router answers again without a restart, and what was refused can be sent again.
            receiver.reply_with(Reply::Status(200));
            proxy.mend();
            let deadline = Instant::now() + Duration::from_secs(15);
            let answer = loop {
                let answer = app.ingest(during.clone()).await;
                if answer.status != 503 {
                    break answer;
                }
                assert!(Instant::now() < deadline, "the router did not come back with the database");
                actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            };
            assert_eq!(answer.status, 202, "nothing of the refused request was stored: {}", answer.body);
            for event_id in ["before-outage", "during-outage"] {
                let deadline = Instant::now() + Duration::from_secs(15);
                while !receiver.received().iter().any(|c| c.answered == Some(200) && c.headers["webhook-id"] == event_id) {
                    assert!(Instant::now() < deadline, "{event_id} was not delivered after the outage");
                    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                }
            }
            // And both are recorded as succeeded (the record follows the receiver's answer).
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let log = app.get("/api/v1/deliveries?status=succeeded").await.body;
                if log["items"].as_array().unwrap().len() == 2 {
                    break;
                }
                assert!(Instant::now() < deadline, "not both recorded as succeeded: {log:#}");
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
}

#[test]
fn a_postgresql_server_that_cannot_be_reached_stops_the_start_with_one_line() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let output = Command::new(env!("CARGO_BIN_EXE_spscan-router"))
        .env("DATABASE_URL", format!("postgres://postgres:hunter2@127.0.0.1:{closed}/spscan"))
        .env("BIND_ADDR", "127.0.0.1:0")
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{closed}")) && stderr.contains("refused"), "names the host and the cause: {stderr}");
    assert!(!stderr.contains("hunter2"), "never the password: {stderr}");
}
