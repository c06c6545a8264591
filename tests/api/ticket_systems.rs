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

use crate::helpers::{ms, serve};

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

/// How long a ticketing test waits for a delivery to settle.
pub const WITHIN: Duration = Duration::from_secs(15);

/// A router whose retries come after 1 s and whose searches wait `settle` after an unknown create.
pub async fn ticketing_router(settle: Duration) -> crate::helpers::TestApp {
    crate::helpers::spawn_app_with(move |s| {
        s.retry_schedule = spscan_router::domain::retry::RetrySchedule::parse("1s,1s,1s,1s").unwrap();
        s.create_settle = settle;
    })
    .await
}

/// Ingests `event` and waits until its delivery is `status`.
pub async fn deliver(app: &crate::helpers::TestApp, event: Value, status: &str) -> Value {
    let answer = app.ingest(event).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    app.wait_for_status(answer.body["deliveries"][0]["id"].as_str().unwrap(), status, WITHIN).await
}

/// A create answered `429` with `Retry-After: 2` goes again after the wait, and makes one ticket
/// (no search was needed: a 429 made nothing). The delivery of `event`.
pub async fn a_throttled_create_waits_as_asked(app: &crate::helpers::TestApp, system: &Tickets, event: Value) -> Value {
    system.fault(Op::Create, Fault::RetryAfter(429, "2"));
    let answer = app.ingest(event).await;
    let id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
    let throttled = app.wait_for_attempts(&id, 1, WITHIN).await;
    assert_eq!(throttled["attempts"][0]["status_code"], 429);
    let made = app.wait_for_status(&id, "succeeded", WITHIN).await;
    let (first, second) = (&made["attempts"][0]["started_at"], &made["attempts"][1]["started_at"]);
    assert!(ms(second) - ms(first) >= 1_900, "waited as asked: {first} → {second}");
    assert_eq!(system.tickets().len(), 1, "one ticket: {:?}", system.requests());
    made
}

/// A create made but answered `500`, with a `later` event of its incident waiting behind it: the
/// next attempt waits `CREATE_SETTLE` (2 s in these tests) and finds the ticket by its marker, and
/// the later event is its note. One ticket; the deliveries of `first` and `later`.
pub async fn a_create_answered_500_is_found_not_made_twice(app: &crate::helpers::TestApp, system: &Tickets, first: Value, later: Value) -> (Value, Value) {
    system.fault(Op::Create, Fault::MadeThen500);
    let id = app.ingest(first).await.body["deliveries"][0]["id"].as_str().unwrap().to_string();
    let later = app.ingest(later).await.body["deliveries"][0]["id"].as_str().unwrap().to_string();
    let delivered = app.wait_for_status(&id, "succeeded", WITHIN).await;
    let noted = app.wait_for_status(&later, "succeeded", WITHIN).await;
    let tickets = system.tickets();
    assert_eq!(tickets.len(), 1, "one ticket: {:?}", system.requests());
    assert_eq!(tickets[0].notes.len(), 1, "the later event is its note");
    assert_eq!(delivered["ticket"]["id"], json!(tickets[0].id));
    let attempts = delivered["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{delivered}");
    assert!(ms(&attempts[1]["started_at"]) - ms(&attempts[0]["started_at"]) >= 1_900, "the search waited CREATE_SETTLE: {delivered}");
    (delivered, noted)
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

// ---- ConnectWise PSA (REST API 3.0) ----

pub const CW_COMPANY_ID: &str = "contoso_msp";
pub const CW_PUBLIC_KEY: &str = "pUbLiCkEy123";
pub const CW_PRIVATE_KEY: &str = "pRiVaTeKeY-cw-4f2a";
pub const CW_CLIENT_ID: &str = "3f1c2b7e-9a4d-4c1e-8f2a-6b5d4e3c2a10";
/// The API's path on the site (the channel's `url` is the stand-in's base and this).
pub const CW_API: &str = "/v4_6_release/apis/3.0";
/// The companies the PSA holds (by identifier) and its one service board.
pub const CW_COMPANIES: &[&str] = &["ContosoLtd", "FabrikamInc", "MSP-Internal"];
pub const CW_BOARD: &str = "Security";

/// Signed in as an API member of `contoso_msp`, with the integration's clientId.
fn cw_signed_in(req: &HttpRequest) -> bool {
    use base64::Engine;
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{CW_COMPANY_ID}+{CW_PUBLIC_KEY}:{CW_PRIVATE_KEY}")));
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    header("authorization").as_deref() == Some(expected.as_str()) && header("clientid").as_deref() == Some(CW_CLIENT_ID)
}

fn cw_error(code: u16, name: &str, message: &str) -> HttpResponse {
    HttpResponse::build(awc::http::StatusCode::from_u16(code).unwrap()).json(json!({"code": name, "message": message}))
}

fn cw_unauthorized() -> HttpResponse {
    cw_error(401, "Unauthorized", "The public and private key pair is not valid for this company.")
}

/// A create refused as ConnectWise refuses an invalid ticket.
fn cw_invalid(field: &str, code: &str, message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"code": "InvalidObject", "message": "ticket object is invalid", "errors": [{"code": code, "message": message, "resource": "ticket", "field": field}]}))
}

fn cw_ticket(ticket: &Ticket) -> Value {
    let created = &ticket.created;
    json!({
        "id": ticket.id.parse::<u64>().unwrap(),
        "summary": created["summary"],
        "board": {"id": 1, "name": created["board"]["name"]},
        "company": {"id": 250, "identifier": created["company"]["identifier"]},
        "status": {"id": 16, "name": if ticket.open { "New" } else { ">Closed" }},
        "closedFlag": !ticket.open,
        "externalXRef": ticket.marker,
        "_info": {"lastUpdated": "2026-12-05T23:40:00Z", "updatedBy": CW_COMPANY_ID},
    })
}

/// The one `field="value"` of a `conditions` query, when it is on `field`.
fn cw_condition(query: &std::collections::HashMap<String, String>, field: &str) -> Option<String> {
    let conditions = query.get("conditions")?;
    let value = conditions.strip_prefix(&format!("{field}=\""))?.strip_suffix('"')?;
    Some(value.replace("\\\"", "\"").replace("\\\\", "\\"))
}

type CwQuery = web::Query<std::collections::HashMap<String, String>>;

/// A ConnectWise PSA site's API at `{base}/v4_6_release/apis/3.0`, holding the companies
/// [`CW_COMPANIES`] and the board [`CW_BOARD`].
pub fn start_connectwise() -> Tickets {
    Tickets::start(|cfg| {
        cfg.service(
            web::scope(CW_API)
                .route("/service/tickets", web::post().to(|req: HttpRequest, body: web::Bytes, state: web::Data<Mutex<State>>| async move {
                    let fault = arrive(&state, &req, &body, Op::Create);
                    if !cw_signed_in(&req) {
                        return cw_unauthorized();
                    }
                    let created: Value = serde_json::from_slice(&body).unwrap_or_default();
                    let company = created["company"]["identifier"].as_str().unwrap_or_default();
                    if !CW_COMPANIES.contains(&company) {
                        return cw_invalid("company", "InvalidCompany", &format!("Company '{company}' was not found."));
                    }
                    if created["board"]["name"] != CW_BOARD {
                        return cw_invalid("board", "InvalidField", "The board is invalid or you do not have access to it.");
                    }
                    if created["summary"].as_str().is_none_or(|s| s.is_empty() || s.chars().count() > 100) {
                        return cw_invalid("summary", "InvalidField", "summary must be between 1 and 100 characters.");
                    }
                    let marker = created["externalXRef"].as_str().unwrap_or_default().to_string();
                    create(state, fault, created, marker, "", |t| HttpResponse::Created().json(cw_ticket(t))).await
                }))
                .route("/service/tickets", web::get().to(|req: HttpRequest, query: CwQuery, state: web::Data<Mutex<State>>| async move {
                    if let Some(response) = arrive(&state, &req, b"", Op::Search).as_ref().and_then(answered) {
                        return response;
                    }
                    if !cw_signed_in(&req) {
                        return cw_unauthorized();
                    }
                    let Some(marker) = cw_condition(&query, "externalXRef") else {
                        return cw_error(400, "InvalidConditions", "The conditions could not be parsed.");
                    };
                    let found: Vec<Value> = search(&state, &marker).iter().map(cw_ticket).collect();
                    HttpResponse::Ok().json(found)
                }))
                .route("/service/tickets/{id}", web::get().to(|req: HttpRequest, id: web::Path<String>, state: web::Data<Mutex<State>>| async move {
                    if let Some(response) = arrive(&state, &req, b"", Op::Read).as_ref().and_then(answered) {
                        return response;
                    }
                    if !cw_signed_in(&req) {
                        return cw_unauthorized();
                    }
                    match ticket(&state, &id) {
                        Some(t) => HttpResponse::Ok().json(cw_ticket(&t)),
                        None => cw_error(404, "NotFound", &format!("Ticket with id {id} not found")),
                    }
                }))
                .route("/service/tickets/{id}/notes", web::post().to(|req: HttpRequest, id: web::Path<String>, body: web::Bytes, state: web::Data<Mutex<State>>| async move {
                    if let Some(response) = arrive(&state, &req, &body, Op::Note).as_ref().and_then(answered) {
                        return response;
                    }
                    if !cw_signed_in(&req) {
                        return cw_unauthorized();
                    }
                    let given: Value = serde_json::from_slice(&body).unwrap_or_default();
                    if note(&state, &id, given.clone()) {
                        HttpResponse::Created().json(json!({"id": 77, "ticketId": id.parse::<u64>().unwrap_or_default(), "text": given["text"], "internalAnalysisFlag": given["internalAnalysisFlag"]}))
                    } else {
                        cw_error(404, "NotFound", &format!("Ticket with id {id} not found"))
                    }
                }))
                .route("/system/info", web::get().to(|req: HttpRequest, state: web::Data<Mutex<State>>| async move {
                    arrive(&state, &req, b"", Op::Check);
                    if !cw_signed_in(&req) {
                        return cw_unauthorized();
                    }
                    HttpResponse::Ok().json(json!({"version": "v2025.1.12345", "isCloud": true, "serverTimeZone": "Eastern Standard Time", "cloudRegion": "NA"}))
                }))
                .route("/service/boards", web::get().to(|req: HttpRequest, query: CwQuery, state: web::Data<Mutex<State>>| async move {
                    arrive(&state, &req, b"", Op::Check);
                    if !cw_signed_in(&req) {
                        return cw_unauthorized();
                    }
                    let boards: Vec<Value> = cw_condition(&query, "name").filter(|n| n == CW_BOARD).map(|n| json!({"id": 1, "name": n})).into_iter().collect();
                    HttpResponse::Ok().json(boards)
                }))
                .route("/company/companies", web::get().to(|req: HttpRequest, query: CwQuery, state: web::Data<Mutex<State>>| async move {
                    arrive(&state, &req, b"", Op::Check);
                    if !cw_signed_in(&req) {
                        return cw_unauthorized();
                    }
                    let found = cw_condition(&query, "identifier").filter(|i| CW_COMPANIES.contains(&i.as_str()));
                    HttpResponse::Ok().json(found.map(|i| json!({"id": 250, "identifier": i})).into_iter().collect::<Vec<_>>())
                })),
        );
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
