//! The database going away while the router runs (PostgreSQL, through a proxy the test cuts),
//! and a PostgreSQL server that cannot be reached at start.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

/// A TCP proxy in front of PostgreSQL that the test can cut (every connection closed, new ones
/// refused) and mend.
struct DbProxy {
    port: u16,
    upstream: String,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl DbProxy {
    fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Self { port, upstream: upstream.to_string(), cut: Arc::new(AtomicBool::new(false)), open: Arc::default() };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let (upstream, cut, open) = (self.upstream.clone(), self.cut.clone(), self.open.clone());
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !cut.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                open.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)] {
                    std::thread::spawn(move || {
                        let mut buffer = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buffer) {
                            if n == 0 || to.write_all(&buffer[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
            // Dropping the listener refuses new connections.
        });
    }

    /// The database "goes away": open connections are closed, new ones refused.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        // Wait until the port refuses.
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "the proxy did not stop listening");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The database is back, on the same address.
    fn mend(&self) {
        self.cut.store(false, Ordering::SeqCst);
        self.serve(TcpListener::bind(("127.0.0.1", self.port)).unwrap());
    }

    /// `url` with its host and port replaced by the proxy's.
    fn url_for(&self, url: &str) -> String {
        let mut url = url::Url::parse(url).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(self.port)).unwrap();
        url.to_string()
    }
}

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
