//! Test harness: `spawn_app()` starts the real router in-process on port 0 on a fresh database
//! of the test's backend (a temp SQLite file, or a PostgreSQL database of its own: see
//! [`Backend`]); `Receiver` is a real HTTP server on 127.0.0.1 that captures what it gets and
//! answers as the test scripts it (status codes, or hanging).

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use futures_util::StreamExt;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use spscan_router::domain::network::TargetPolicy;
use spscan_router::domain::retry::RetrySchedule;
use spscan_router::handle::RouterHandle;
use spscan_router::settings::Settings;
use spscan_router::startup::Application;
use tempfile::TempDir;

/// The retry schedule tests run with: the default's shape, in milliseconds.
pub const TEST_SCHEDULE: [u64; 3] = [100, 200, 400];

/// A router under test, running in this process.
pub struct TestApp {
    pub api: Api,
    pub handle: RouterHandle,
    _database: TestDatabase,
}

impl TestApp {
    /// The database this router runs on (a SQLite file, or a PostgreSQL URL).
    pub fn database_url(&self) -> &str {
        &self._database.url
    }
}

impl std::ops::Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// A client of a router's HTTP API, in-process or a separate binary, presenting a token.
pub struct Api {
    pub base: String,
    client: awc::Client,
    token: Option<String>,
}

impl Api {
    /// A client presenting the admin token.
    pub fn new(base: String) -> Self {
        Self { base, client: http_client(), token: Some(ADMIN_TOKEN.into()) }
    }

    /// The same router, presenting `token` (or none).
    pub fn with_token(&self, token: Option<&str>) -> Api {
        Api { base: self.base.clone(), client: self.client.clone(), token: token.map(str::to_string) }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let database = TestDatabase::new();
    let mut settings = Settings::with_database(&database.url);
    settings.bind_addr = "127.0.0.1:0".into();
    settings.retry_schedule = RetrySchedule::new(TEST_SCHEDULE.iter().map(|ms| Duration::from_millis(*ms)).collect());
    // Tests that time retries against the schedule want it exact; jitter has tests of its own.
    settings.retry_jitter = 0.0;
    settings.delivery_timeout = Duration::from_secs(5);
    settings.admin_token = Some(ADMIN_TOKEN.into());
    settings.ingest_token = Some(INGEST_TOKEN.into());
    settings.targets = TargetPolicy::parse("127.0.0.0/8").unwrap();
    configure(&mut settings);
    let app = Application::build(settings).await.expect("the router starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp { api: Api::new(base), handle, _database: database }
}

pub fn http_client() -> awc::Client {
    spscan_router::outbound::install_crypto_provider();
    awc::Client::builder()
        .connector(awc::Connector::new().limit(64))
        .timeout(Duration::from_secs(30))
        .disable_redirects()
        .finish()
}

/// The tokens test routers run with.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const INGEST_TOKEN: &str = "test-ingest-token-0123456789";

/// An answer from the router: status, content type and JSON body (`Null` when empty).
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Api {
    pub async fn request(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Answer {
        let url = format!("{}{}", self.base, path);
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, url).insert_header(("Content-Type", "application/json"));
        if let Some(token) = &self.token {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        let mut response = match body {
            Some(bytes) => request.send_body(bytes).await,
            None => request.send().await,
        }
        .expect("the router answers");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = response.body().limit(16 * 1024 * 1024).await.expect("a body");
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        Answer { status, content_type, body }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.request("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.request("POST", path, Some(serde_json::to_vec(&body).unwrap())).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.request("PATCH", path, Some(serde_json::to_vec(&body).unwrap())).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.request("DELETE", path, None).await
    }

    pub async fn create_tenant(&self, id: &str) -> Value {
        let answer = self
            .post(
                "/api/v1/tenants",
                json!({"id": id, "display_name": format!("{id} Ltd"), "microsoft_tenant_id": "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd"}),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.body
    }

    /// Creates a webhook channel; the answer carries its secret.
    pub async fn create_channel(&self, name: &str, url: &str) -> Value {
        let answer = self.post("/api/v1/channels", json!({"name": name, "type": "webhook", "url": url})).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.body
    }

    pub async fn create_rule(&self, rule: Value) -> Value {
        let answer = self.post("/api/v1/rules", rule).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.body
    }

    /// A rule sending every event of every tenant to the channels.
    pub async fn route_everything_to(&self, channel_ids: &[&str]) -> Value {
        self.create_rule(json!({"name": "Everything", "event_types": ["*"], "min_severity": "low", "channel_ids": channel_ids}))
            .await
    }

    /// The usual setup: tenant `contoso`, a channel "SOC" at the receiver, and a rule sending
    /// every event there. Returns the channel (with its secret).
    pub async fn soc_channel_for_contoso(&self, receiver: &Receiver) -> Value {
        let channel = self.create_channel("SOC", &receiver.url("/")).await;
        self.route_everything_to(&[channel["id"].as_str().unwrap()]).await;
        self.create_tenant("contoso").await;
        channel
    }

    pub async fn ingest(&self, event: Value) -> Answer {
        self.post("/api/v1/events", event).await
    }

    pub async fn delivery(&self, id: &str) -> Value {
        let answer = self.get(&format!("/api/v1/deliveries/{id}")).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body
    }

    /// Waits until `count` attempts of the delivery are recorded (a receiver seeing a request
    /// comes before the router writes the attempt down).
    pub async fn wait_for_attempts(&self, id: &str, count: usize, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let delivery = self.delivery(id).await;
            if delivery["attempts"].as_array().map_or(0, Vec::len) >= count {
                return delivery;
            }
            assert!(Instant::now() < deadline, "delivery {id} did not have {count} attempt(s) recorded within {within:?}: {delivery:#}");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the delivery reaches `status` (and has no attempt being recorded).
    pub async fn wait_for_status(&self, id: &str, status: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let delivery = self.delivery(id).await;
            if delivery["status"] == status {
                return delivery;
            }
            assert!(Instant::now() < deadline, "delivery {id} did not become {status} within {within:?}: {delivery:#}");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// An instant the API shows (RFC 3339, such as an attempt's `started_at`) as Unix ms.
pub fn ms(at: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(at.as_str().unwrap()).unwrap().timestamp_millis()
}

/// Asserts that requests arriving at `times` kept a channel's pace of one per `interval`. Each
/// request goes in a slot of its own, one interval wide, anywhere in it, so of the requests in
/// arrival order the `j`-th comes at least `j - i - 1` intervals after the `i`-th; an arrival may
/// be up to `late` behind its request (the network, a busy scheduler on a loaded machine), which
/// only the bound allows for, never the count: too many requests in too little time still fail.
pub fn assert_paced(times: &[Instant], interval: Duration, late: Duration) {
    let mut times = times.to_vec();
    times.sort();
    for (i, first) in times.iter().enumerate() {
        for (j, later) in times.iter().enumerate().skip(i + 2) {
            let least = interval * (j - i - 1) as u32;
            assert!(
                *later - *first + late >= least,
                "requests {i} and {j} arrived {:?} apart: faster than one every {interval:?} allows ({least:?} at least, {late:?} of lateness allowed)",
                *later - *first
            );
        }
    }
}

/// `count` external-share events of tenant `contoso`, with ids `{prefix}-0`, `{prefix}-1`, ….
pub fn contoso_shares(prefix: &str, count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let mut event = permission_event("contoso", "permission.external_share_created", "high");
            event["event_id"] = json!(format!("{prefix}-{i}"));
            event
        })
        .collect()
}

/// A `permission.*` event for a registered tenant.
pub fn permission_event(tenant_id: &str, event: &str, severity: &str) -> Value {
    json!({
        "event": event,
        "severity": severity,
        "tenant_id": tenant_id,
        "data": {
            "site_url": "https://contoso.sharepoint.com/sites/Finance",
            "resource_path": "Shared Documents/Q3 forecast.xlsx",
            "permission_type": "specific_people_link",
            "principal": "outsider@example.net",
            "access_level": "edit"
        }
    })
}

/// Checks a Standard Webhooks signature the way a receiver library does.
pub fn signature_is_valid(secret: &str, request: &Captured) -> bool {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let id = &request.headers["webhook-id"];
    let timestamp = &request.headers["webhook-timestamp"];
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&request.body);
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    request.headers["webhook-signature"].split(' ').any(|s| s == expected)
}

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    Status(u16),
    /// Never answers.
    Hang,
    /// Answers with this status and 4 KiB of bytes that are not UTF-8.
    Binary(u16),
    /// Answers 301 pointing at the receiver on this port.
    RedirectTo(u16),
    /// Waits this many milliseconds, then answers with this status.
    Slow(u64, u16),
    /// Answers 200 announcing a 100-byte body, sends 7 bytes of it, and stalls.
    StallBody,
    /// Answers this status with this `Retry-After` header.
    RetryAfter(u16, &'static str),
    /// Answers this status with this body (a vendor's words: Slack's `ok`, `channel_is_archived`).
    Said(u16, &'static str),
}

/// What a format-checking receiver demands of every body: `Err` names the violation.
pub type FormatCheck = fn(&[u8]) -> Result<(), String>;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Captured {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
    /// The status it was answered with (`None` if it hung).
    pub answered: Option<u16>,
}

impl Captured {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            // Says which request it was (a flaky run once saw an empty body here).
            panic!("the payload is JSON: {err}; request to {} with headers {:?}, body {:?}", self.path, self.headers, String::from_utf8_lossy(&self.body))
        })
    }
}

struct ReceiverState {
    script: VecDeque<Reply>,
    default: Reply,
    captured: Vec<Captured>,
    /// When set, a body that fails it is answered `400` with the violation, and kept.
    check: Option<FormatCheck>,
    violations: Vec<String>,
}

/// Serves `routes` on `listener` (one worker, in this test's actix system) until the test ends.
pub fn serve(listener: TcpListener, routes: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static) {
    let server = HttpServer::new(move || App::new().configure(routes.clone())).workers(1).disable_signals().listen(listener).unwrap().run();
    actix_web::rt::spawn(server);
}

/// A webhook receiver on 127.0.0.1 with a port of its own.
#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    /// A receiver answering 200 to everything.
    pub async fn start() -> Self {
        Self::start_on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    pub fn start_on(listener: TcpListener) -> Self {
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(ReceiverState {
            script: VecDeque::new(),
            default: Reply::Status(200),
            captured: Vec::new(),
            check: None,
            violations: Vec::new(),
        }));
        let shared = web::Data::from(state.clone());
        serve(listener, move |cfg| {
            cfg.app_data(shared.clone()).default_service(web::to(receive));
        });
        Self { base, state }
    }

    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Answer everything (after any scripted replies) this way from now on.
    pub fn reply_with(&self, reply: Reply) {
        self.state.lock().unwrap().default = reply;
    }

    /// Answer the next requests with these replies, in order.
    pub fn script(&self, replies: &[Reply]) {
        self.state.lock().unwrap().script.extend(replies.iter().copied());
    }

    /// Checks every body from now on the way the vendor would: one that fails is answered `400`
    /// and its violation kept (see [`Receiver::violations`]).
    pub fn check_format(&self, check: FormatCheck) {
        self.state.lock().unwrap().check = Some(check);
    }

    /// The violations a format check found, one per refused body.
    pub fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }

    pub fn received(&self) -> Vec<Captured> {
        self.state.lock().unwrap().captured.clone()
    }

    /// Waits until `count` requests arrived (optionally only at `path`) and returns them.
    pub async fn wait_for(&self, count: usize, path: Option<&str>, within: Duration) -> Vec<Captured> {
        let deadline = Instant::now() + within;
        loop {
            let got: Vec<Captured> = self.received().into_iter().filter(|c| path.is_none_or(|p| c.path == p)).collect();
            if got.len() >= count {
                return got;
            }
            assert!(Instant::now() < deadline, "expected {count} requests within {within:?}, got {}", got.len());
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, state: web::Data<Mutex<ReceiverState>>) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let reply = {
        let mut state = state.lock().unwrap();
        let mut reply = state.script.pop_front().unwrap_or(state.default);
        if let Some(Err(violation)) = state.check.map(|check| check(&body)) {
            state.violations.push(violation);
            reply = Reply::Said(400, "invalid_payload");
        }
        state.captured.push(Captured {
            path: req.path().to_string(),
            headers,
            body: body.to_vec(),
            at: Instant::now(),
            answered: match reply {
                Reply::Status(code) | Reply::Binary(code) | Reply::Slow(_, code) | Reply::RetryAfter(code, _) | Reply::Said(code, _) => {
                    Some(code)
                }
                Reply::RedirectTo(_) => Some(301),
                Reply::StallBody => Some(200),
                Reply::Hang => None,
            },
        });
        reply
    };
    match reply {
        Reply::Status(code) => HttpResponse::build(awc::http::StatusCode::from_u16(code).unwrap()).body(format!("answer {code}")),
        Reply::RedirectTo(port) => HttpResponse::MovedPermanently()
            .insert_header(("Location", format!("http://127.0.0.1:{port}/elsewhere")))
            .finish(),
        Reply::RetryAfter(code, wait) => HttpResponse::build(awc::http::StatusCode::from_u16(code).unwrap())
            .insert_header(("Retry-After", wait))
            .body("slow down"),
        Reply::Said(code, words) => HttpResponse::build(awc::http::StatusCode::from_u16(code).unwrap()).body(words),
        Reply::Binary(code) => HttpResponse::build(awc::http::StatusCode::from_u16(code).unwrap()).body(vec![0xffu8; 4096]),
        Reply::Hang => {
            actix_web::rt::time::sleep(Duration::from_secs(3600)).await;
            HttpResponse::Ok().finish()
        }
        Reply::Slow(ms, code) => {
            actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
            HttpResponse::build(awc::http::StatusCode::from_u16(code).unwrap()).body(format!("answer {code}"))
        }
        Reply::StallBody => {
            let first = futures_util::stream::once(async { Ok::<_, actix_web::Error>(web::Bytes::from_static(b"partial")) });
            HttpResponse::Ok().no_chunking(100).streaming(first.chain(futures_util::stream::pending()))
        }
    }
}

/// The real `spscan-router` binary, running.
pub struct RouterProcess {
    pub child: Child,
    pub api: Api,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl RouterProcess {
    /// Kills the process and waits until everything it wrote has been read.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

/// Starts `spscan-router` on a free port with the given database; returns once it listens.
pub fn start_router(database: &str) -> RouterProcess {
    start_router_with(database, &[("ADMIN_TOKEN", ADMIN_TOKEN), ("INGEST_TOKEN", INGEST_TOKEN), ("RUST_LOG", "info")]).0
}

/// Everything a database holds, as bytes to search: the SQLite file (and its WAL), or every row
/// of every table of a PostgreSQL database as JSON.
pub fn everything_stored(database: &str) -> Vec<u8> {
    if !database.starts_with("postgres") {
        let mut bytes = std::fs::read(database).unwrap();
        bytes.extend(std::fs::read(format!("{database}-wal")).unwrap_or_default());
        return bytes;
    }
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Text {
        #[diesel(sql_type = diesel::sql_types::Text)]
        text: String,
    }
    let mut conn = diesel::PgConnection::establish(database).unwrap();
    let tables: Vec<Text> = diesel::sql_query("SELECT table_name AS text FROM information_schema.tables WHERE table_schema = 'public'")
        .load(&mut conn)
        .unwrap();
    let mut bytes = Vec::new();
    for table in tables {
        let rows: Vec<Text> = diesel::sql_query(format!("SELECT row_to_json(t)::text AS text FROM {} t", table.text)).load(&mut conn).unwrap();
        for row in rows {
            bytes.extend(row.text.into_bytes());
        }
    }
    assert!(!bytes.is_empty(), "the database holds rows");
    bytes
}

/// Starts the binary with `env`; also returns everything it logs (stderr) and prints (stdout).
pub fn start_router_with(database: &str, env: &[(&str, &str)]) -> (RouterProcess, Arc<Mutex<String>>, Arc<Mutex<String>>) {
    spawn_router(database, env).ready()
}

/// A router process started but perhaps not listening yet (to start several at the same moment).
pub struct StartingRouter {
    child: Child,
    address: mpsc::Receiver<String>,
    readers: Vec<std::thread::JoinHandle<()>>,
    log: Arc<Mutex<String>>,
    printed: Arc<Mutex<String>>,
}

impl StartingRouter {
    /// Waits until it listens; also returns everything it logs (stderr) and prints (stdout).
    pub fn ready(self) -> (RouterProcess, Arc<Mutex<String>>, Arc<Mutex<String>>) {
        let base = match self.address.recv_timeout(Duration::from_secs(30)) {
            Ok(base) => base,
            Err(_) => panic!("the router did not report its address; it logged:\n{}", self.log.lock().unwrap()),
        };
        (RouterProcess { child: self.child, api: Api::new(base), readers: self.readers }, self.log, self.printed)
    }
}

/// Starts the binary with `env` without waiting for it.
pub fn spawn_router(database: &str, env: &[(&str, &str)]) -> StartingRouter {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spscan-router"));
    command
        .env("DATABASE_URL", database)
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("RETRY_SCHEDULE", vec!["200ms"; 40].join(","))
        // Tests of other things keep failing receivers busy; the breaker's tests set their own.
        .env("BREAKER_FAILURES", "10000")
        .env("ALLOWED_TARGET_NETWORKS", "127.0.0.1/32")
        // One id for every start on this database: a restart takes its own leases back at once.
        .env("INSTANCE_ID", "test-router")
        .env_remove("ADMIN_TOKEN")
        .env_remove("INGEST_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("the router binary starts");
    let (log, printed) = (Arc::new(Mutex::new(String::new())), Arc::new(Mutex::new(String::new())));
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    let log_reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_string());
            }
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let stdout = child.stdout.take().unwrap();
    let sink = printed.clone();
    let print_reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    StartingRouter { child, address: rx, readers: vec![log_reader, print_reader], log, printed }
}

impl Drop for RouterProcess {
    fn drop(&mut self) {
        self.stop();
    }
}


/// Sends one raw HTTP/1.1 request to the router, waits `after`, then resets the connection
/// (`SO_LINGER` 0: the close sends RST), as a client that crashes or times out does.
pub async fn send_and_reset(base: &str, method: &str, path: &str, body: &serde_json::Value, after: Duration) {
    use std::io::Write;
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let stream = std::net::TcpStream::connect(addr).unwrap();
    let body = body.to_string();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    (&stream).write_all(request.as_bytes()).unwrap();
    actix_web::rt::time::sleep(after).await;
    socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO)).unwrap();
    drop(stream);
}

/// The backend a test runs on. `on_both_backends!` runs each test once per backend; the
/// PostgreSQL half finds its server through `TEST_DATABASE_URL` (default: the local server,
/// user `postgres`). Without a server it is skipped, said loudly once, unless
/// `REQUIRE_POSTGRES=1` (as `.ci/run` sets), which makes it fail instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

thread_local! {
    static BACKEND: std::cell::Cell<Backend> = const { std::cell::Cell::new(Backend::Sqlite) };
}

/// The PostgreSQL server tests use (its maintenance database).
pub fn test_database_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn postgres_answers() -> bool {
    use diesel::Connection;
    static ANSWERS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ANSWERS.get_or_init(|| {
        let result = diesel::PgConnection::establish(&test_database_url());
        if let Err(err) = &result {
            let required = std::env::var("REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
            assert!(!required, "REQUIRE_POSTGRES=1 but PostgreSQL at {} does not answer: {err}", test_database_url());
            // Straight to the terminal: the test harness would swallow a print.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** The PostgreSQL half of the test suite DID NOT RUN: {} does not answer ({}). \
                 Start PostgreSQL or set TEST_DATABASE_URL. ***\n",
                test_database_url(),
                err.to_string().trim()
            );
        }
        result.is_ok()
    })
}

impl Backend {
    /// The backend of the test running on this thread.
    pub fn current() -> Backend {
        BACKEND.with(|b| b.get())
    }

    /// Runs a test body on this backend (or skips it: see [`Backend`]).
    pub async fn run(self, body: impl std::future::Future<Output = ()>) {
        if self == Backend::Postgres && !postgres_answers() {
            return;
        }
        BACKEND.with(|b| b.set(self));
        body.await;
    }
}

/// A fresh, empty database for one test, on the current backend: a SQLite file in a temp dir,
/// or a PostgreSQL database of its own (dropped when the test ends), so tests run in parallel.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<TempDir>,
    postgres_name: Option<String>,
}

impl TestDatabase {
    pub fn new() -> Self {
        Self::on(Backend::current())
    }

    pub fn on(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = dir.path().join("router.db").to_string_lossy().into_owned();
                Self { url, _dir: Some(dir), postgres_name: None }
            }
            Backend::Postgres => {
                use diesel::connection::SimpleConnection;
                use diesel::Connection;
                let name = format!("spscan_test_{}", ulid::Ulid::new().to_string().to_lowercase());
                let mut admin = diesel::PgConnection::establish(&test_database_url()).expect("PostgreSQL answers");
                admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("a test database is created");
                let mut url = url::Url::parse(&test_database_url()).expect("TEST_DATABASE_URL is a URL");
                url.set_path(&name);
                Self { url: url.to_string(), _dir: None, postgres_name: Some(name) }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(name) = &self.postgres_name {
            use diesel::connection::SimpleConnection;
            use diesel::Connection;
            if let Ok(mut admin) = diesel::PgConnection::establish(&test_database_url()) {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// A receiver that speaks HTTP/1.0 as Python's `http.server` does: it answers `200` with a
/// `Content-Length`, says nothing about the connection, and closes it a moment later without
/// reading anything more. `answer` gives the status and body for a request line (`POST /path
/// HTTP/1.1`). Each connection gets a thread. Returns the base URL and the requests answered.
pub fn closing_http10_receiver(answer: fn(&str) -> (u16, String)) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let answered = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = answered.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut read = Vec::new();
                let mut buf = [0u8; 4096];
                // The head, then as many body bytes as Content-Length says.
                loop {
                    let Ok(n) = stream.read(&mut buf) else { return };
                    if n == 0 {
                        return;
                    }
                    read.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&read).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                            .unwrap_or(0);
                        if read.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let text = String::from_utf8_lossy(&read).to_string();
                let (status, body) = answer(text.lines().next().unwrap_or_default());
                let _ = stream.write_all(format!("HTTP/1.0 {status} Answered\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
                counter.fetch_add(1, Ordering::SeqCst);
                // Long enough that the router takes the connection for its next request first.
                std::thread::sleep(std::time::Duration::from_millis(300));
            });
        }
    });
    (url, answered)
}
