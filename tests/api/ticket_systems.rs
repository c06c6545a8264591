//! Local stand-ins for the ticketing systems (SPEC section 17), answering as each documented API
//! does: status codes, ids, error bodies. One store of tickets ([`Tickets`]) behind every
//! system's routes, with what a test needs to make it misbehave: tickets closed or deleted by a
//! person, a search index that lags behind creates, and faults on the next call of an operation
//! (a status, a create that is made but answered 500, a create that is made and never answered).

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::helpers::serve;

/// One ticket as the system holds it.
#[derive(Debug, Clone)]
pub struct Ticket {
    /// The system's id (`10001`, a `sys_id`, …) and the key people use (`SOC-1`).
    pub id: String,
    pub key: String,
    /// The create request's body.
    pub created: Value,
    /// The marker it carries (a label, `correlation_id`, `externalXRef`, a title's end).
    pub marker: String,
    pub open: bool,
    pub deleted: bool,
    pub at: Instant,
    /// The notes' bodies, in order.
    pub notes: Vec<Value>,
}

/// An operation of a ticketing API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Read,
    Note,
    Search,
    Check,
}

/// What the next call of an operation does instead of its normal answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answers this status and body; nothing happens.
    Status(u16, &'static str),
    /// Answers this status with `Retry-After: <seconds>`; nothing happens.
    RetryAfter(u16, &'static str),
    /// Makes the ticket, then answers `500` (the router cannot know it was made).
    MadeThen500,
    /// Makes the ticket, then never answers.
    MadeThenHang,
}

/// Everything one system holds and was asked.
#[derive(Default)]
pub struct State {
    pub tickets: Vec<Ticket>,
    /// `(method, path, body)` of every request, in order.
    pub requests: Vec<(String, String, Value)>,
    faults: VecDeque<(Op, Fault)>,
    /// A search leaves out tickets younger than this.
    search_lag: Duration,
}

/// A ticketing system on 127.0.0.1.
#[derive(Clone)]
pub struct Tickets {
    pub base: String,
    pub state: Arc<Mutex<State>>,
}

impl Tickets {
    /// A system serving `routes` (which reach the [`State`] as `web::Data<Mutex<State>>`).
    pub fn start(routes: fn(&mut web::ServiceConfig)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = web::Data::from(state.clone());
        serve(listener, move |cfg| {
            cfg.app_data(shared.clone());
            routes(cfg);
        });
        Self { base, state }
    }

    /// The next call of `op` does `fault`.
    pub fn fault(&self, op: Op, fault: Fault) {
        self.state.lock().unwrap().faults.push_back((op, fault));
    }

    /// Searches leave out tickets younger than `lag` (an index that lags behind creates).
    pub fn search_lag(&self, lag: Duration) {
        self.state.lock().unwrap().search_lag = lag;
    }

    pub fn tickets(&self) -> Vec<Ticket> {
        self.state.lock().unwrap().tickets.clone()
    }

    /// What a person does: closes (or deletes) the ticket.
    pub fn close(&self, id: &str) {
        self.with_ticket(id, |t| t.open = false);
    }

    pub fn delete(&self, id: &str) {
        self.with_ticket(id, |t| t.deleted = true);
    }

    fn with_ticket(&self, id: &str, change: impl FnOnce(&mut Ticket)) {
        let mut state = self.state.lock().unwrap();
        change(state.tickets.iter_mut().find(|t| t.id == id).expect("the ticket exists"));
    }

    pub fn requests(&self) -> Vec<(String, String, Value)> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Waits until the system holds `tickets` tickets and `notes` notes in all.
    pub async fn wait_for(&self, tickets: usize, notes: usize, within: Duration) -> Vec<Ticket> {
        let deadline = Instant::now() + within;
        loop {
            let held = self.tickets();
            let noted: usize = held.iter().map(|t| t.notes.len()).sum();
            if held.len() >= tickets && noted >= notes {
                return held;
            }
            assert!(Instant::now() < deadline, "expected {tickets} tickets and {notes} notes within {within:?}; the system holds {} and {noted}: {:?}", held.len(), self.requests());
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// How one request goes: its fault (if one is due for `op`) taken off the list, the request kept.
pub fn arrive(state: &web::Data<Mutex<State>>, req: &HttpRequest, body: &[u8], op: Op) -> Option<Fault> {
    let mut state = state.lock().unwrap();
    let parsed = serde_json::from_slice(body).unwrap_or(Value::Null);
    state.requests.push((req.method().to_string(), req.uri().to_string(), parsed));
    let at = state.faults.iter().position(|(o, _)| *o == op)?;
    state.faults.remove(at).map(|(_, f)| f)
}

/// A fault's answer, when it is one that answers at once without making anything.
pub fn answered(fault: &Fault) -> Option<HttpResponse> {
    match fault {
        Fault::Status(code, body) => Some(HttpResponse::build(awc::http::StatusCode::from_u16(*code).unwrap()).content_type("application/json").body(*body)),
        Fault::RetryAfter(code, wait) => Some(HttpResponse::build(awc::http::StatusCode::from_u16(*code).unwrap()).insert_header(("Retry-After", *wait)).body("{}")),
        _ => None,
    }
}

/// Makes a ticket (applying a create fault) and answers with `answer` of it.
pub async fn create(state: web::Data<Mutex<State>>, fault: Option<Fault>, created: Value, marker: String, key_prefix: &str, answer: impl Fn(&Ticket) -> HttpResponse) -> HttpResponse {
    if let Some(response) = fault.as_ref().and_then(answered) {
        return response;
    }
    let ticket = {
        let mut state = state.lock().unwrap();
        let n = state.tickets.len() + 1;
        let ticket = Ticket { id: format!("{}", 10_000 + n), key: format!("{key_prefix}-{n}"), created, marker, open: true, deleted: false, at: Instant::now(), notes: Vec::new() };
        state.tickets.push(ticket.clone());
        ticket
    };
    match fault {
        Some(Fault::MadeThen500) => HttpResponse::InternalServerError().body("upstream timeout"),
        Some(Fault::MadeThenHang) => {
            actix_web::rt::time::sleep(Duration::from_secs(3600)).await;
            HttpResponse::InternalServerError().finish()
        }
        _ => answer(&ticket),
    }
}

/// The tickets a search for `marker` finds: not deleted, and older than the index's lag.
pub fn search(state: &web::Data<Mutex<State>>, marker: &str) -> Vec<Ticket> {
    let state = state.lock().unwrap();
    state.tickets.iter().filter(|t| !t.deleted && t.marker == marker && t.at.elapsed() >= state.search_lag).cloned().collect()
}

/// The ticket `id` unless deleted.
pub fn ticket(state: &web::Data<Mutex<State>>, id: &str) -> Option<Ticket> {
    state.lock().unwrap().tickets.iter().find(|t| t.id == id && !t.deleted).cloned()
}

/// Adds a note to the ticket `id`, if it is there.
pub fn note(state: &web::Data<Mutex<State>>, id: &str, body: Value) -> bool {
    let mut state = state.lock().unwrap();
    match state.tickets.iter_mut().find(|t| t.id == id && !t.deleted) {
        Some(ticket) => {
            ticket.notes.push(body);
            true
        }
        None => false,
    }
}

// ---- Jira Cloud (REST v3) ----

pub const JIRA_EMAIL: &str = "spscan@contoso.com";
pub const JIRA_TOKEN: &str = "ATATT3xFfGF0-jira-api-token-4f2a";

fn jira_signed_in(req: &HttpRequest) -> bool {
    use base64::Engine;
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{JIRA_EMAIL}:{JIRA_TOKEN}")));
    req.headers().get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

fn jira_error(code: u16, message: &str) -> HttpResponse {
    HttpResponse::build(awc::http::StatusCode::from_u16(code).unwrap()).json(json!({"errorMessages": [message], "errors": {}}))
}

fn jira_issue(ticket: &Ticket, base: &str) -> Value {
    json!({"id": ticket.id, "key": ticket.key, "self": format!("{base}/rest/api/3/issue/{}", ticket.id)})
}

/// A Jira Cloud site with project `SOC` (issue types Task and Bug).
pub fn start_jira() -> Tickets {
    Tickets::start(|cfg| {
        cfg.route("/rest/api/3/issue", web::post().to(|req: HttpRequest, body: web::Bytes, state: web::Data<Mutex<State>>| async move {
            let fault = arrive(&state, &req, &body, Op::Create);
            if !jira_signed_in(&req) {
                return jira_error(401, "Client must be authenticated to access this resource.");
            }
            let created: Value = serde_json::from_slice(&body).unwrap_or_default();
            let fields = &created["fields"];
            if fields["project"]["key"] != "SOC" {
                return jira_error(404, "Project does not exist.");
            }
            if fields["summary"].as_str().is_none_or(|s| s.is_empty() || s.chars().count() > 255) {
                return HttpResponse::BadRequest().json(json!({"errorMessages": [], "errors": {"summary": "Summary must be less than 255 characters."}}));
            }
            let marker = fields["labels"][0].as_str().unwrap_or_default().to_string();
            let base = format!("http://{}", req.connection_info().host());
            create(state, fault, created, marker, "SOC", move |t| HttpResponse::Created().json(jira_issue(t, &base))).await
        }))
        .route("/rest/api/3/issue/{id}", web::get().to(|req: HttpRequest, id: web::Path<String>, state: web::Data<Mutex<State>>| async move {
            if let Some(response) = arrive(&state, &req, b"", Op::Read).as_ref().and_then(answered) {
                return response;
            }
            if !jira_signed_in(&req) {
                return jira_error(401, "Client must be authenticated to access this resource.");
            }
            match ticket(&state, &id) {
                None => jira_error(404, "Issue does not exist or you do not have permission to see it."),
                Some(t) => {
                    let category = if t.open { "indeterminate" } else { "done" };
                    HttpResponse::Ok().json(json!({"id": t.id, "key": t.key, "fields": {"status": {"name": if t.open { "In Progress" } else { "Done" }, "statusCategory": {"key": category}}}}))
                }
            }
        }))
        .route("/rest/api/3/issue/{id}/comment", web::post().to(|req: HttpRequest, id: web::Path<String>, body: web::Bytes, state: web::Data<Mutex<State>>| async move {
            if let Some(response) = arrive(&state, &req, &body, Op::Note).as_ref().and_then(answered) {
                return response;
            }
            if !jira_signed_in(&req) {
                return jira_error(401, "Client must be authenticated to access this resource.");
            }
            if note(&state, &id, serde_json::from_slice(&body).unwrap_or_default()) {
                HttpResponse::Created().json(json!({"id": "10100"}))
            } else {
                jira_error(404, "Issue does not exist or you do not have permission to see it.")
            }
        }))
        .route("/rest/api/3/search/jql", web::post().to(|req: HttpRequest, body: web::Bytes, state: web::Data<Mutex<State>>| async move {
            if let Some(response) = arrive(&state, &req, &body, Op::Search).as_ref().and_then(answered) {
                return response;
            }
            if !jira_signed_in(&req) {
                return jira_error(401, "Client must be authenticated to access this resource.");
            }
            let asked: Value = serde_json::from_slice(&body).unwrap_or_default();
            let jql = asked["jql"].as_str().unwrap_or_default();
            let Some(marker) = jql.split("labels = \"").nth(1).and_then(|rest| rest.split('"').next()) else {
                return HttpResponse::BadRequest().json(json!({"errorMessages": ["Error in the JQL Query"], "errors": {}}));
            };
            let base = format!("http://{}", req.connection_info().host());
            let issues: Vec<Value> = search(&state, marker).iter().map(|t| jira_issue(t, &base)).collect();
            HttpResponse::Ok().json(json!({"issues": issues, "isLast": true}))
        }))
        .route("/rest/api/3/myself", web::get().to(|req: HttpRequest, state: web::Data<Mutex<State>>| async move {
            arrive(&state, &req, b"", Op::Check);
            if !jira_signed_in(&req) {
                return jira_error(401, "Client must be authenticated to access this resource.");
            }
            HttpResponse::Ok().json(json!({"accountId": "5b10a2844c20165700ede21g", "emailAddress": JIRA_EMAIL}))
        }))
        .route("/rest/api/3/project/{key}", web::get().to(|req: HttpRequest, key: web::Path<String>, state: web::Data<Mutex<State>>| async move {
            arrive(&state, &req, b"", Op::Check);
            if !jira_signed_in(&req) {
                return jira_error(401, "Client must be authenticated to access this resource.");
            }
            if *key != "SOC" {
                return jira_error(404, &format!("No project could be found with key '{key}'."));
            }
            HttpResponse::Ok().json(json!({"id": "10000", "key": "SOC", "name": "Security operations"}))
        }))
        .route("/rest/api/3/issue/createmeta/{key}/issuetypes", web::get().to(|req: HttpRequest, key: web::Path<String>, state: web::Data<Mutex<State>>| async move {
            arrive(&state, &req, b"", Op::Check);
            if *key != "SOC" {
                return jira_error(404, &format!("No project could be found with key '{key}'."));
            }
            HttpResponse::Ok().json(json!({"issueTypes": [{"id": "10001", "name": "Task"}, {"id": "10004", "name": "Bug"}], "total": 2}))
        }));
    })
}

// ---- ServiceNow (Table API) ----

pub const SN_USER: &str = "spscan.integration";
pub const SN_PASSWORD: &str = "Sn0w-integration-pass-9c1e";
pub const SN_CLIENT_ID: &str = "8f2b6c1d0e9a4b7c8d6e5f4a3b2c1d0e";
pub const SN_CLIENT_SECRET: &str = "sn-oauth-client-secret-77aa";
/// The access token the instance's `/oauth_token.do` grants.
pub const SN_ACCESS_TOKEN: &str = "sn-access-token-from-client-credentials";
/// The one assignment group the instance has (`sys_user_group`).
pub const SN_GROUP: &str = "287ebd7da9fe198100f92cc8d1d2154e";

/// The record's `sys_id` as the instance shows it (32 hex digits) for a stand-in ticket.
pub fn sn_sys_id(ticket: &Ticket) -> String {
    format!("46d44a5fa9fe198100{:0>14}", ticket.id)
}

/// The record's `number` (`INC0010001`).
pub fn sn_number(ticket: &Ticket) -> String {
    format!("INC00{}", ticket.id)
}

/// The stand-in ticket id of a `sys_id` in a path.
fn sn_ticket_id(sys_id: &str) -> String {
    sys_id.strip_prefix("46d44a5fa9fe198100").map(|rest| rest.trim_start_matches('0').to_string()).unwrap_or_default()
}

fn sn_signed_in(req: &HttpRequest) -> bool {
    use base64::Engine;
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{SN_USER}:{SN_PASSWORD}")));
    let given = req.headers().get("authorization").and_then(|v| v.to_str().ok());
    given == Some(basic.as_str()) || given == Some(format!("Bearer {SN_ACCESS_TOKEN}").as_str())
}

fn sn_error(code: u16, message: &str, detail: Option<&str>) -> HttpResponse {
    HttpResponse::build(awc::http::StatusCode::from_u16(code).unwrap()).json(json!({"error": {"message": message, "detail": detail}, "status": "failure"}))
}

fn sn_unauthenticated() -> HttpResponse {
    sn_error(401, "User Not Authenticated", Some("Required to provide Auth information"))
}

fn sn_record(ticket: &Ticket) -> Value {
    json!({"sys_id": sn_sys_id(ticket), "number": sn_number(ticket), "active": if ticket.open { "true" } else { "false" }})
}

/// The value of `name` in a query string.
fn sn_param(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// A ServiceNow instance with the table `incident`, one assignment group ([`SN_GROUP`]), a user
/// for Basic auth and an OAuth application registry entry for client credentials.
pub fn start_servicenow() -> Tickets {
    Tickets::start(|cfg| {
        cfg.route("/oauth_token.do", web::post().to(|req: HttpRequest, body: web::Bytes, state: web::Data<Mutex<State>>| async move {
            arrive(&state, &req, b"", Op::Check);
            let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
            state.lock().unwrap().requests.last_mut().unwrap().2 = json!(form.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>());
            let given = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
            if given("grant_type") != Some("client_credentials") || given("client_id") != Some(SN_CLIENT_ID) || given("client_secret") != Some(SN_CLIENT_SECRET) {
                return HttpResponse::Unauthorized().json(json!({"error_description": "access_denied", "error": "server_error"}));
            }
            HttpResponse::Ok().json(json!({"access_token": SN_ACCESS_TOKEN, "scope": "useraccount", "token_type": "Bearer", "expires_in": 1799}))
        }))
        .route("/api/now/table/{table}", web::post().to(|req: HttpRequest, table: web::Path<String>, body: web::Bytes, state: web::Data<Mutex<State>>| async move {
            let fault = arrive(&state, &req, &body, Op::Create);
            if !sn_signed_in(&req) {
                return sn_unauthenticated();
            }
            if *table != "incident" {
                return sn_error(400, &format!("Invalid table {table}"), None);
            }
            let created: Value = serde_json::from_slice(&body).unwrap_or_default();
            if created["short_description"].as_str().is_none_or(|s| s.chars().count() > 160) {
                return sn_error(400, "Operation Failed", Some("short_description is longer than 160 characters"));
            }
            let marker = created["correlation_id"].as_str().unwrap_or_default().to_string();
            create(state, fault, created, marker, "INC", |t| HttpResponse::Created().json(json!({"result": sn_record(t)}))).await
        }))
        .route("/api/now/table/{table}", web::get().to(|req: HttpRequest, table: web::Path<String>, state: web::Data<Mutex<State>>| async move {
            let query = sn_param(&req, "sysparm_query").unwrap_or_default();
            let op = if query.starts_with("correlation_id=") { Op::Search } else { Op::Check };
            if let Some(response) = arrive(&state, &req, b"", op).as_ref().and_then(answered) {
                return response;
            }
            if !sn_signed_in(&req) {
                return sn_unauthenticated();
            }
            let result: Vec<Value> = match table.as_str() {
                "incident" => match query.strip_prefix("correlation_id=") {
                    Some(marker) => search(&state, marker).iter().map(sn_record).collect(),
                    None => state.lock().unwrap().tickets.iter().filter(|t| !t.deleted).take(1).map(sn_record).collect(),
                },
                "sys_user_group" if query == format!("sys_id={SN_GROUP}") => vec![json!({"sys_id": SN_GROUP, "name": "Security Operations"})],
                "sys_user_group" | "sys_user" => Vec::new(),
                other => return sn_error(400, &format!("Invalid table {other}"), None),
            };
            HttpResponse::Ok().json(json!({"result": result}))
        }))
        .route("/api/now/table/{table}/{sys_id}", web::get().to(|req: HttpRequest, path: web::Path<(String, String)>, state: web::Data<Mutex<State>>| async move {
            if let Some(response) = arrive(&state, &req, b"", Op::Read).as_ref().and_then(answered) {
                return response;
            }
            if !sn_signed_in(&req) {
                return sn_unauthenticated();
            }
            match ticket(&state, &sn_ticket_id(&path.1)) {
                Some(t) if path.0 == "incident" => HttpResponse::Ok().json(json!({"result": sn_record(&t)})),
                _ => sn_error(404, "No Record found", Some("Record doesn't exist or ACL restricts the record retrieval")),
            }
        }))
        .route("/api/now/table/{table}/{sys_id}", web::patch().to(|req: HttpRequest, path: web::Path<(String, String)>, body: web::Bytes, state: web::Data<Mutex<State>>| async move {
            if let Some(response) = arrive(&state, &req, &body, Op::Note).as_ref().and_then(answered) {
                return response;
            }
            if !sn_signed_in(&req) {
                return sn_unauthenticated();
            }
            let id = sn_ticket_id(&path.1);
            if path.0 == "incident" && note(&state, &id, serde_json::from_slice(&body).unwrap_or_default()) {
                HttpResponse::Ok().json(json!({"result": sn_record(&ticket(&state, &id).unwrap())}))
            } else {
                sn_error(404, "No Record found", Some("Record doesn't exist or ACL restricts the record retrieval"))
            }
        }));
    })
}
