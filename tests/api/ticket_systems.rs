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

// ---- Autotask PSA (REST v1.0) ----

pub const AUTOTASK_USER: &str = "spscan-api@contoso.example";
pub const AUTOTASK_SECRET: &str = "Zx8$autotask-secret-9c1e";
pub const AUTOTASK_CODE: &str = "SPSCANTRACKINGID7b3d";
/// The queue new tickets go to, and the companies the database has (0 is the MSP itself).
pub const AUTOTASK_QUEUE: u64 = 8;
pub const AUTOTASK_COMPANIES: [u64; 3] = [0, 174, 175];

fn autotask_signed_in(req: &HttpRequest) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    header("UserName") == AUTOTASK_USER && header("Secret") == AUTOTASK_SECRET && header("ApiIntegrationCode") == AUTOTASK_CODE
}

fn autotask_error(code: u16, message: &str) -> HttpResponse {
    HttpResponse::build(awc::http::StatusCode::from_u16(code).unwrap()).json(json!({"errors": [message]}))
}

fn autotask_unauthorized() -> HttpResponse {
    // Autotask answers a refused sign-in with 401 and no words.
    HttpResponse::Unauthorized().finish()
}

fn autotask_item(ticket: &Ticket) -> Value {
    json!({"id": ticket.id.parse::<u64>().unwrap(), "ticketNumber": ticket.key, "title": ticket.created["title"], "companyID": ticket.created["companyID"], "status": if ticket.open { 1 } else { 5 }})
}

/// The marker of a ticket as created: its marker UDF's value, else the end of its title.
fn autotask_marker(created: &Value) -> String {
    let udf = created["userDefinedFields"].as_array().and_then(|fields| fields.iter().find_map(|f| f["value"].as_str()));
    let title = created["title"].as_str().unwrap_or_default();
    let from_title = title.rsplit_once(" [").map(|(_, m)| m.trim_end_matches(']')).unwrap_or_default();
    udf.unwrap_or(from_title).to_string()
}

/// An Autotask database in a zone of its own on the same server: zone discovery at
/// `/atservicesrest/v1.0/zoneInformation` names `{base}/ATServicesRest/` and `{base}/` (web).
pub fn start_autotask() -> Tickets {
    Tickets::start(|cfg| {
        cfg.route("/atservicesrest/v1.0/zoneInformation", web::get().to(|req: HttpRequest, state: web::Data<Mutex<State>>| async move {
            arrive(&state, &req, b"", Op::Check);
            let user = url::form_urlencoded::parse(req.query_string().as_bytes()).find(|(k, _)| k == "user").map(|(_, v)| v.into_owned()).unwrap_or_default();
            if user != AUTOTASK_USER {
                return autotask_error(404, "Zone information could not be determined");
            }
            let base = format!("http://{}", req.connection_info().host());
            HttpResponse::Ok().json(json!({"zoneName": "America East 3", "url": format!("{base}/ATServicesRest/"), "webUrl": format!("{base}/"), "ci": 1}))
        }))
        .route("/ATServicesRest/V1.0/Tickets", web::post().to(|req: HttpRequest, body: web::Bytes, state: web::Data<Mutex<State>>| async move {
            let fault = arrive(&state, &req, &body, Op::Create);
            if !autotask_signed_in(&req) {
                return autotask_unauthorized();
            }
            let created: Value = serde_json::from_slice(&body).unwrap_or_default();
            if !created["companyID"].as_u64().is_some_and(|c| AUTOTASK_COMPANIES.contains(&c)) {
                return autotask_error(400, &format!("Reference value on field: companyID of type: Company does not exist or is invalid. Value: {}", created["companyID"]));
            }
            if created["queueID"].as_u64() != Some(AUTOTASK_QUEUE) {
                return autotask_error(400, "Reference value on field: queueID does not exist or is invalid.");
            }
            if created["title"].as_str().is_none_or(|t| t.is_empty() || t.chars().count() > 255) || created["description"].as_str().is_some_and(|d| d.chars().count() > 8000) {
                return autotask_error(500, "Value of field title exceeds its maximum length of 255");
            }
            let marker = autotask_marker(&created);
            create(state, fault, created, marker, "T20261205", |t| HttpResponse::Ok().json(json!({"itemId": t.id.parse::<u64>().unwrap()}))).await
        }))
        .route("/ATServicesRest/V1.0/Tickets/query", web::post().to(|req: HttpRequest, body: web::Bytes, state: web::Data<Mutex<State>>| async move {
            if let Some(response) = arrive(&state, &req, &body, Op::Search).as_ref().and_then(answered) {
                return response;
            }
            if !autotask_signed_in(&req) {
                return autotask_unauthorized();
            }
            let asked: Value = serde_json::from_slice(&body).unwrap_or_default();
            let filter = &asked["filter"][0];
            let value = filter["value"].as_str().unwrap_or_default().to_string();
            let matches = |t: &Ticket| match (filter["op"].as_str(), filter["field"].as_str(), filter["udf"].as_bool().unwrap_or(false)) {
                (Some("eq"), Some(_), true) => t.created["userDefinedFields"][0]["value"] == json!(value),
                (Some("contains"), Some("title"), false) => t.created["title"].as_str().unwrap_or_default().contains(&value),
                _ => false,
            };
            let items: Vec<Value> = search(&state, &value).iter().filter(|t| matches(t)).map(autotask_item).collect();
            HttpResponse::Ok().json(json!({"items": items, "pageDetails": {"count": items.len(), "requestCount": 500, "prevPageUrl": null, "nextPageUrl": null}}))
        }))
        .route("/ATServicesRest/V1.0/Tickets/entityInformation/fields", web::get().to(|req: HttpRequest, state: web::Data<Mutex<State>>| async move {
            arrive(&state, &req, b"", Op::Check);
            if !autotask_signed_in(&req) {
                return autotask_unauthorized();
            }
            let queue = |id: u64, label: &str| json!({"value": id.to_string(), "label": label, "isDefaultValue": false, "isActive": true});
            HttpResponse::Ok().json(json!({"fields": [
                {"name": "id", "dataType": "long", "isPickList": false},
                {"name": "queueID", "dataType": "integer", "isPickList": true, "picklistValues": [queue(5, "Client Portal"), queue(AUTOTASK_QUEUE, "Security Alerts")]},
            ]}))
        }))
        .route("/ATServicesRest/V1.0/Tickets/{id}", web::get().to(|req: HttpRequest, id: web::Path<String>, state: web::Data<Mutex<State>>| async move {
            if let Some(response) = arrive(&state, &req, b"", Op::Read).as_ref().and_then(answered) {
                return response;
            }
            if !autotask_signed_in(&req) {
                return autotask_unauthorized();
            }
            // A ticket that is not there (deleted) is answered with no item.
            HttpResponse::Ok().json(json!({"item": ticket(&state, &id).as_ref().map(autotask_item)}))
        }))
        .route("/ATServicesRest/V1.0/Tickets/{id}/Notes", web::post().to(|req: HttpRequest, id: web::Path<String>, body: web::Bytes, state: web::Data<Mutex<State>>| async move {
            if let Some(response) = arrive(&state, &req, &body, Op::Note).as_ref().and_then(answered) {
                return response;
            }
            if !autotask_signed_in(&req) {
                return autotask_unauthorized();
            }
            if note(&state, &id, serde_json::from_slice(&body).unwrap_or_default()) {
                HttpResponse::Ok().json(json!({"itemId": 30_777_658}))
            } else {
                autotask_error(404, "Parent entity with id could not be found")
            }
        }))
        .route("/ATServicesRest/V1.0/ThresholdInformation", web::get().to(|req: HttpRequest, state: web::Data<Mutex<State>>| async move {
            arrive(&state, &req, b"", Op::Check);
            if !autotask_signed_in(&req) {
                return autotask_unauthorized();
            }
            HttpResponse::Ok().json(json!({"externalRequestThreshold": 10_000, "requestThresholdTimeframe": 60, "currentTimeframeRequestCount": 3}))
        }))
        .route("/ATServicesRest/V1.0/Companies/{id}", web::get().to(|req: HttpRequest, id: web::Path<u64>, state: web::Data<Mutex<State>>| async move {
            arrive(&state, &req, b"", Op::Check);
            if !autotask_signed_in(&req) {
                return autotask_unauthorized();
            }
            let item = AUTOTASK_COMPANIES.contains(&id).then(|| json!({"id": *id, "companyName": format!("Company {id}"), "isActive": true}));
            HttpResponse::Ok().json(json!({"item": item}))
        }));
    })
}
