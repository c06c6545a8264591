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
    /// Waits this many milliseconds, then makes the ticket and answers as usual.
    SlowMade(u64),
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
    if let Some(Fault::SlowMade(ms)) = fault {
        actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
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
