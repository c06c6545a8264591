//! The router under test: the real router (this executable re-run as `spscan-router`, see
//! `main`) on a fresh database (SQLite, or PostgreSQL with `--database-url`), and a small API
//! client to set it up and drive it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use std::rc::Rc;

use diesel::prelude::*;
use serde_json::{json, Value};

use crate::Plan;

/// The admin token the benchmark's router runs with.
const BENCH_TOKEN: &str = "loadtest-admin-token-0123456789";

/// A fresh database for one scenario: a SQLite file beside the router binary (under target/, so
/// on the checkout's disk, never a tmpfs), or a database of its own on the PostgreSQL server
/// given with `--database-url` (dropped afterwards).
pub enum BenchDatabase {
    Sqlite { path: String, _dir: tempfile::TempDir },
    Postgres { server: String, name: String, url: String },
}

impl BenchDatabase {
    pub fn fresh(plan: &Plan) -> Rc<Self> {
        Rc::new(match &plan.database {
            None => {
                let here = std::path::Path::new(&plan.router[0]).parent().map(std::path::Path::to_path_buf).unwrap_or_default();
                let dir = tempfile::tempdir_in(here).expect("temp dir beside the router binary");
                let path = dir.path().join("bench.db").to_string_lossy().into_owned();
                Self::Sqlite { path, _dir: dir }
            }
            Some(server) => {
                use diesel::connection::SimpleConnection;
                let name = format!("spscan_bench_{}", ulid::Ulid::new().to_string().to_lowercase());
                let mut admin = PgConnection::establish(server).unwrap_or_else(|e| panic!("connecting to {server}: {e}"));
                admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("creating the benchmark database");
                let mut url = url::Url::parse(server).expect("--database-url is a URL");
                url.set_path(&name);
                Self::Postgres { server: server.clone(), name, url: url.to_string() }
            }
        })
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite { path, .. } => path,
            Self::Postgres { url, .. } => url,
        }
    }

    /// The database's size on disk, in bytes: (the file, its WAL) on SQLite, (all, 0) on PostgreSQL.
    pub fn size_bytes(&self) -> (u64, u64) {
        #[derive(QueryableByName)]
        struct Size {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        match self {
            Self::Sqlite { path, .. } => {
                let size = |p: &str| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                (size(path), size(&format!("{path}-wal")))
            }
            Self::Postgres { url, name, .. } => {
                let mut conn = PgConnection::establish(url).expect("connect to the database");
                (diesel::sql_query(format!("SELECT pg_database_size('{name}') AS n")).get_result::<Size>(&mut conn).map(|s| s.n as u64).unwrap_or(0), 0)
            }
        }
    }

    /// Deliveries not yet final: (to channels other than `apart`, to `apart`).
    pub fn pending_apart(&self, apart: &str) -> (i64, i64) {
        #[derive(QueryableByName)]
        struct Counts {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            others: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            apart: i64,
        }
        let query = diesel::sql_query(
            "SELECT CAST(COALESCE(SUM(CASE WHEN channel_id = $1 THEN 0 ELSE 1 END), 0) AS BIGINT) AS others, \
             CAST(COALESCE(SUM(CASE WHEN channel_id = $1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS apart FROM deliveries WHERE status = 'pending'",
        );
        let answer = match self {
            Self::Sqlite { path, .. } => SqliteConnection::establish(path).ok().and_then(|mut conn| {
                diesel::sql_query("PRAGMA busy_timeout = 10000").execute(&mut conn).ok();
                query.bind::<diesel::sql_types::Text, _>(apart).get_result::<Counts>(&mut conn).ok()
            }),
            Self::Postgres { url, .. } => PgConnection::establish(url).ok().and_then(|mut conn| query.bind::<diesel::sql_types::Text, _>(apart).get_result::<Counts>(&mut conn).ok()),
        };
        answer.map_or((-1, -1), |c| (c.others, c.apart))
    }

    /// Deliveries not yet final.
    pub fn pending(&self) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let query = diesel::sql_query("SELECT COUNT(*) AS n FROM deliveries WHERE status = 'pending'");
        match self {
            Self::Sqlite { path, .. } => {
                let mut conn = SqliteConnection::establish(path).expect("open the database");
                diesel::sql_query("PRAGMA busy_timeout = 10000").execute(&mut conn).ok();
                query.get_result::<Count>(&mut conn).map(|c| c.n).unwrap_or(-1)
            }
            Self::Postgres { url, .. } => {
                let mut conn = PgConnection::establish(url).expect("connect to the database");
                query.get_result::<Count>(&mut conn).map(|c| c.n).unwrap_or(-1)
            }
        }
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        if let Self::Postgres { server, name, .. } = self {
            use diesel::connection::SimpleConnection;
            if let Ok(mut admin) = PgConnection::establish(server) {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

pub struct RouterProcess {
    /// The process; `kill` needs it mutable while senders share the instance.
    child: std::cell::RefCell<Child>,
    pub base: String,
    pub database: Rc<BenchDatabase>,
    client: awc::Client,
}

impl RouterProcess {
    /// Starts the router with `env` on a fresh database.
    pub fn start(plan: &Plan, env: &[(&str, String)]) -> Self {
        Self::start_on(plan, env, BenchDatabase::fresh(plan), "bench")
    }

    /// Starts the router (the plan's command line) with `env` on `database`, as instance `id`.
    pub fn start_on(plan: &Plan, env: &[(&str, String)], database: Rc<BenchDatabase>, id: &str) -> Self {
        let binary = &plan.router[0];
        let mut command = Command::new(binary);
        command
            .args(&plan.router[1..])
            .env("DATABASE_URL", database.url())
            .env("INSTANCE_ID", id)
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "warn,spscan_router=info")
            .env("ADMIN_TOKEN", BENCH_TOKEN)
            .env("ALLOWED_TARGET_NETWORKS", "127.0.0.1/32")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(size) = plan.pool_size {
            command.env("DATABASE_POOL_SIZE", size.to_string());
        }
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap_or_else(|e| panic!("starting {binary}: {e}"));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_string());
                } else if line.contains("ERROR") || line.contains("WARN") {
                    eprintln!("router: {line}");
                }
            }
        });
        let base = rx.recv_timeout(Duration::from_secs(60)).expect("the router starts");
        let client = crate::http_client(Duration::from_secs(120), 256);
        Self { child: std::cell::RefCell::new(child), base, database, client }
    }

    pub fn pid(&self) -> u32 {
        self.child.borrow().id()
    }

    /// Resident memory now and at its peak, in KiB (from /proc).
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, serde_json::to_vec(body).unwrap()).await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        self.try_post_raw(path, body).await.expect("the router answers")
    }

    /// As [`Self::post_raw`], answering why when no answer came (the router killed, say).
    pub async fn try_post_raw(&self, path: &str, body: Vec<u8>) -> Result<(u16, Value), String> {
        let mut response = self
            .client
            .post(format!("{}/api/v1{path}", self.base))
            .insert_header(("content-type", "application/json"))
            .insert_header(("authorization", format!("Bearer {BENCH_TOKEN}")))
            .send_body(body)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = response.body().limit(64 << 20).await.map_err(|e| e.to_string())?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    /// Registers the `bench` tenant, one channel per URL and rules sending every event to all.
    pub async fn setup(&self, urls: &[String]) -> Vec<String> {
        let channels: Vec<serde_json::Value> = urls.iter().map(|url| json!({"url": url})).collect();
        self.setup_channels(&channels).await
    }

    /// Tenant `bench`, a channel for each input (`name` added) and rules sending every event to all of them.
    pub async fn setup_channels(&self, inputs: &[serde_json::Value]) -> Vec<String> {
        let (status, _) = self
            .post("/tenants", &json!({"id": "bench", "display_name": "Bench", "microsoft_tenant_id": "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd"}))
            .await;
        assert_eq!(status, 201);
        let mut ids = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            let mut input = input.clone();
            input["name"] = json!(format!("bench-{i}"));
            let (status, body) = self.post("/channels", &input).await;
            assert_eq!(status, 201, "{body}");
            ids.push(body["id"].as_str().unwrap().to_string());
        }
        for chunk in ids.chunks(100) {
            let (status, body) = self
                .post("/rules", &json!({"name": "bench", "event_types": ["*"], "min_severity": "low", "channel_ids": chunk}))
                .await;
            assert_eq!(status, 201, "{body}");
        }
        ids
    }

    /// Deliveries not yet final.
    pub fn pending(&self) -> i64 {
        self.database.pending()
    }
}

impl RouterProcess {
    /// `kill -9` now, and wait until the process is gone, whoever else still holds it (a request
    /// in flight to it then fails as it would against a dead process).
    pub fn kill(&self) {
        let mut child = self.child.borrow_mut();
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for RouterProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One event, `e<seq>`, as SPScan sends it.
pub fn event_json(seq: u64) -> String {
    format!(
        r#"{{"event_id":"e{seq}","event":"permission.external_share_created","severity":"high","tenant_id":"bench","data":{{"site_url":"https://contoso.sharepoint.com/sites/Finance","resource_path":"Shared Documents/Q3 forecast.xlsx","permission_type":"specific_people_link","principal":"outsider@example.net","access_level":"edit"}}}}"#
    )
}

/// A batch `{"events":[…]}` of the events `first..first+count`.
pub fn batch_json(first: u64, count: u64) -> Vec<u8> {
    let mut body = String::with_capacity(count as usize * 320 + 16);
    body.push_str(r#"{"events":["#);
    for seq in first..first + count {
        if seq > first {
            body.push(',');
        }
        body.push_str(&event_json(seq));
    }
    body.push_str("]}");
    body.into_bytes()
}

/// `clicks` "anyone" link clicks written as Office 365 audit records, six records each (as a
/// real click writes them), numbered from `first`: `{"Id": …}` arrays for
/// `POST /sources/o365/audit`.
pub fn audit_records_json(first: u64, clicks: u64) -> Vec<u8> {
    let mut records = Vec::with_capacity(clicks as usize * 6);
    for click in first..first + clicks {
        let correlation = format!("00000000-0000-4000-8000-{click:012x}");
        for (n, (operation, target, extra)) in [
            ("SharingSet", "SharingLinks.4f2a.AnonymousEdit.77e1", "<Permissions granted>Contribute</Permissions granted>"),
            ("SharingSet", "Limited Access System Group", "<Permissions granted>Limited Access</Permissions granted>"),
            ("SharingSet", "SHAREPOINT\\a1b2c3d4e5f6", ""),
            ("SharingInheritanceBroken", "", ""),
            ("GroupAdded", "SharingLinks.4f2a.AnonymousEdit.77e1", ""),
            ("AnonymousLinkCreated", "", "<Type>Edit</Type>"),
        ]
        .into_iter()
        .enumerate()
        {
            records.push(json!({
                "Id": format!("{click:08x}-0000-4000-8000-{n:012x}"), "RecordType": 14, "CreationTime": "2026-11-28T15:36:08",
                "Operation": operation, "OrganizationId": "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd", "UserId": "alice@contoso.com",
                "UserType": 0, "Workload": "SharePoint", "SiteUrl": "https://contoso.sharepoint.com/sites/Finance/",
                "SourceRelativeUrl": "Shared Documents", "SourceFileName": format!("Report {click}.xlsx"),
                "TargetUserOrGroupName": target, "TargetUserOrGroupType": "SharePointGroup", "EventData": extra,
                "CorrelationId": correlation, "ClientIP": "203.0.113.7"
            }));
        }
    }
    serde_json::to_vec(&records).expect("records serialise")
}
