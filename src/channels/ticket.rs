//! Ticketing systems (SPEC section 17: Jira, ServiceNow, ConnectWise, Autotask): what a type
//! says of its system ([`TicketSystem`]: the requests that read, note, create and search, and
//! how their answers read), and the conversation one attempt holds with it, as a pure state
//! machine ([`first_step`], [`next`]) that `dispatch` drives, storing what must be stored
//! between two requests.
//!
//! One attempt of a delivery whose incident has a ticket reads the ticket; an open one gets an
//! internal note, a closed or deleted one (or a note refused with 403, 404 or 409) a new ticket
//! that links it. An incident without a ticket gets a create, marked on the incident before it
//! goes. After a create whose outcome is unknown (a timeout, a 5xx, a crash) the next attempt
//! waits until `CREATE_SETTLE` has passed since it went, then searches for the incident's
//! marker: the ticket found is the incident's, and a create is sent again only if none is.
//!
//! None of these systems takes an idempotency key: the marker in each ticket, and one attempt
//! at a time per incident across instances (`deliveries::first_of_its_incident`), are what keep
//! an incident to one ticket.

use std::sync::Arc;

use serde_json::Value;

use super::text::group::{group_summary, is_notification};
use super::text::{cut, facts, plain, printable, summary};
use super::{HttpPost, Item, Sending, Target, Verdict};
use crate::domain::incident::{Company, IncidentKey, IncidentView, Ticket};
use crate::domain::retry::ErrorKind;

/// A ticketing system, as its channel type speaks to it. Requests are built from the channel's
/// parsed settings; answers are read as JSON (at most `ANSWER_BYTES` of them).
pub trait TicketSystem: Send + Sync {
    /// The request that reads `ticket`'s state.
    fn read(&self, target: &Target, ticket: &Ticket) -> HttpPost;

    /// Whether a ticket read (a 2xx answer) is still open.
    fn is_open(&self, answer: &Value) -> bool;

    /// The request that adds `item` to `ticket` as an internal note.
    fn note(&self, target: &Target, ticket: &Ticket, item: &Item<'_>, sending: Sending<'_>) -> HttpPost;

    /// The request that opens a ticket for `item`, carrying `incident`'s marker and linking
    /// `incident.previous` if there is one. A Test's create has a marker of its own and no
    /// earlier ticket.
    fn create(&self, target: &Target, item: &Item<'_>, incident: &IncidentView, sending: Sending<'_>) -> HttpPost;

    /// The ticket a create's 2xx answer names (`None`: the answer names none).
    fn created(&self, target: &Target, answer: &Value) -> Option<Ticket>;

    /// The request that searches for the tickets carrying `marker` (`item`: the delivery the
    /// search is made for).
    fn search(&self, target: &Target, marker: &str, item: &Item<'_>) -> HttpPost;

    /// The ticket a search's 2xx answer found, if any.
    fn found(&self, target: &Target, answer: &Value) -> Option<Ticket>;

    /// What a Test checks, creating nothing: each request with what it checks (a 2xx passes).
    fn checks(&self, target: &Target) -> Vec<Check>;

    /// A request to make before any other, when the system's address must be discovered first
    /// (Autotask's zone); `None`: nothing to discover (or it is known already).
    fn discovery(&self, target: &Target) -> Option<HttpPost> {
        let _ = target;
        None
    }

    /// Reads a discovery's 2xx answer and keeps what it found for the next requests; `Err` says
    /// what is wrong with the answer.
    fn discovered(&self, answer: &Value) -> Result<(), String> {
        let _ = answer;
        Ok(())
    }

    /// The error class of a refusal when it is not `http_status`: a create refused for an
    /// unknown company is `mapping` (ConnectWise, Autotask).
    fn refusal_kind(&self, step: &Step, status: u16, body: &str) -> Option<ErrorKind> {
        let _ = (step, status, body);
        None
    }

    /// The company `item` is filed under (ConnectWise, Autotask), recorded with the delivery.
    fn company(&self, item: &Item<'_>) -> Option<Company> {
        let _ = item;
        None
    }

    /// The system's own words in an error answer's body (empty: none).
    fn said(&self, body: &str) -> String;

    /// The settings to check when the system refuses the credentials (`email` and `api_token`).
    fn credential_settings(&self) -> &'static str;

    /// What a 404 on a create means: the project, table, board or queue is not there.
    fn create_not_found(&self) -> String;
}

/// One check of a Test: a request, passed by a 2xx answer that `expect` (if any) accepts.
#[derive(Clone)]
pub struct Check {
    /// What it checks, for people: "the credentials", "project SOC".
    pub what: String,
    pub request: HttpPost,
    pub expect: Option<Arc<dyn Fn(&Value) -> bool + Send + Sync>>,
}

impl Check {
    pub fn new(what: impl Into<String>, request: HttpPost) -> Self {
        Self { what: what.into(), request, expect: None }
    }

    /// The same check, passed only by an answer `expect` accepts.
    pub fn expecting(self, expect: impl Fn(&Value) -> bool + Send + Sync + 'static) -> Self {
        Self { expect: Some(Arc::new(expect)), ..self }
    }
}

/// A request of a ticketing conversation: `method` to `path` on the channel's URL (the site or
/// instance), with `body` as JSON if it has one.
pub fn on_site(target: &Target, method: super::Method, path: &str, body: Option<Value>, headers: Vec<(&'static str, String)>) -> HttpPost {
    let url = format!("{}{path}", target.url.trim_end_matches('/'));
    HttpPost::call(method, url, body.map(|b| super::json_body(&b)).unwrap_or_default(), headers)
}

/// The incident of a Test's create: outside the incident map (nothing is stored), with a marker
/// of its own.
pub fn test_incident(item: &Item<'_>) -> IncidentView {
    let key = IncidentKey::from_value(&serde_json::json!({ "test": item.delivery_id }));
    let marker = crate::domain::incident::marker("test", &key, 0);
    IncidentView::new(key, marker, 0)
}

/// The one request a ticketing type's [`Prepared::request`](super::Prepared::request) sends on
/// its own, for a Test: a create outside any incident, with a marker of its own (`dispatch`
/// holds the conversation of every delivery).
pub fn test_request(system: &dyn TicketSystem, target: &Target, item: &Item<'_>, sending: Sending<'_>) -> super::Request {
    let post = system.create(target, item, &test_incident(item), sending);
    super::Request { transport: super::Transport::Http(post), carries: 1 }
}

/// The next request of an attempt's conversation with the ticketing system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Read the incident's ticket: is it open?
    Read(Ticket),
    /// Add the delivery to this open ticket as a note.
    Note(Ticket),
    /// Search for the incident's marker (an earlier create's outcome is unknown).
    Search,
    /// Open a ticket (marked on the incident first).
    Create,
}

/// Where an attempt starts: the incident's ticket is read if it has one; a pending create is
/// searched for once `settle_ms` has passed since it went (`Err`: not before this time, Unix
/// ms); otherwise a ticket is opened.
pub fn first_step(incident: &IncidentView, now: i64, settle_ms: i64) -> Result<Step, i64> {
    match (&incident.ticket, &incident.create) {
        (Some(ticket), _) => Ok(Step::Read(ticket.clone())),
        (None, Some(pending)) if now < pending.started_at + settle_ms => Err(pending.started_at + settle_ms),
        (None, Some(_)) => Ok(Step::Search),
        (None, None) => Ok(Step::Create),
    }
}

/// What comes after an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Another request.
    Go(Step),
    /// The ticket is closed or gone: open a new one (new marker) that links it.
    Reopen,
    /// The attempt is over: judged so, having written to `ticket` (when delivered); `settles`:
    /// a pending create is settled (a ticket is known, or the system refused the create).
    Done { verdict: Verdict, ticket: Option<Ticket>, settles: bool },
}

/// How an answer moves the conversation on from `step`: its status and body. `this_delivery`
/// says whether the pending create (if any) was sent by the delivery now attempted.
pub fn next(system: &dyn TicketSystem, target: &Target, step: &Step, status: u16, body: &[u8], this_delivery: bool) -> Next {
    let text = String::from_utf8_lossy(body);
    let json = || serde_json::from_slice::<Value>(body).unwrap_or_default();
    let refused = |settles| Next::Done { verdict: verdict(system, step, status, &text), ticket: None, settles };
    // A 2xx that is not JSON (a proxy's sign-in or maintenance page, a body cut short) says
    // nothing about the ticket: never read as "closed" or "not found".
    let unreadable = (200..300).contains(&status) && matches!(step, Step::Read(_) | Step::Search) && serde_json::from_slice::<Value>(body).is_err();
    if unreadable {
        let why = format!("the system answered {status} with something other than JSON ({}); tried again", cut(&text, 120));
        return Next::Done { verdict: Verdict::Retry(why), ticket: None, settles: false };
    }
    match step {
        Step::Read(ticket) => match status {
            200..=299 if system.is_open(&json()) => Next::Go(Step::Note(ticket.clone())),
            200..=299 | 404 | 410 => Next::Reopen,
            _ => refused(false),
        },
        Step::Note(ticket) => match status {
            200..=299 => Next::Done { verdict: Verdict::Delivered, ticket: Some(ticket.clone()), settles: false },
            // A ticket closed (or taken away) since it was read.
            403 | 404 | 409 | 410 => Next::Reopen,
            _ => refused(false),
        },
        Step::Search => match status {
            200..=299 => match system.found(target, &json()) {
                // The earlier create went through: it carried this delivery, or an earlier one
                // this delivery now adds to.
                Some(ticket) if this_delivery => Next::Done { verdict: Verdict::Delivered, ticket: Some(ticket), settles: true },
                Some(ticket) => Next::Go(Step::Note(ticket)),
                None => Next::Go(Step::Create),
            },
            _ => refused(false),
        },
        Step::Create => match status {
            200..=299 => match system.created(target, &json()) {
                Some(ticket) => Next::Done { verdict: Verdict::Delivered, ticket: Some(ticket), settles: true },
                // Made, but the answer does not say which: the search finds it.
                None => Next::Done { verdict: Verdict::Retry(format!("the answer names no ticket ({}); the next attempt searches for it", cut(&text, 200))), ticket: None, settles: false },
            },
            // Refused: nothing was made (a 5xx may have made it, and stays pending).
            400..=499 => refused(true),
            _ => refused(false),
        },
    }
}

/// The verdict on an answer that did not move the conversation on (SPEC section 17): `401`
/// and `403` final naming the credentials, `400` and `422` final with the system's words, `404`
/// on a create final (the project, table or board), `429` and 5xx retried.
pub fn verdict(system: &dyn TicketSystem, step: &Step, status: u16, body: &str) -> Verdict {
    let said = cut(&system.said(body), 300);
    let with_said = |what: String| if said.is_empty() { what } else { format!("{said}; {what}") };
    match status {
        200..=299 => Verdict::Delivered,
        401 | 403 => Verdict::Final(format!("the system refused the credentials: check {}; not retried", system.credential_settings())),
        400 | 422 => Verdict::Final(with_said("refused as invalid; not retried".into())),
        404 if *step == Step::Create => Verdict::Final(with_said(format!("{}; not retried", system.create_not_found()))),
        _ => Verdict::Retry(said),
    }
}

/// The text of a ticket as the systems take it: `max` characters at most, cut with an ellipsis,
/// and the marker kept whole at its end when there is one.
pub fn with_marker(text: &str, marker: Option<&str>, max: usize) -> String {
    match marker {
        Some(marker) => {
            let tail = format!(" [{marker}]");
            format!("{}{tail}", cut(text, max.saturating_sub(tail.chars().count())))
        }
        None => cut(text, max),
    }
}

/// A PSA channel's `companies` setting (ConnectWise, Autotask): SPScan tenant id → the system's
/// company, and the `default` for every other tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Companies {
    pub map: std::collections::BTreeMap<String, String>,
    pub default: String,
}

/// Most tenants a `companies` map names.
pub const MAX_COMPANIES: usize = 1000;

impl Companies {
    /// Parses `companies`: a JSON object (or its JSON text) of tenant id → company (a text, or a whole number for
    /// the systems whose ids are numbers), with a `default` entry. `valid` says whether a
    /// company is one the system could have (`Err`: what it must be).
    pub fn parse(config: &super::Config, valid: impl Fn(&str) -> Result<(), String>) -> Result<Self, crate::domain::Invalid> {
        use crate::domain::Invalid;
        let example = r#"an object of SPScan tenant id → company, with a "default": {"contoso": "ContosoLtd", "default": "MSP-Internal"}"#;
        // The admin page's form sends the object as JSON text.
        let Ok(Some(given)) = super::settings::object(config, "companies") else {
            return Err(Invalid::new("companies", format!("must be {example}")));
        };
        if given.len() > MAX_COMPANIES + 1 {
            return Err(Invalid::new("companies", format!("names at most {MAX_COMPANIES} tenants")));
        }
        let mut map = std::collections::BTreeMap::new();
        for (tenant, company) in &given {
            let company = match company {
                serde_json::Value::String(s) if !s.trim().is_empty() => s.trim().to_string(),
                serde_json::Value::Number(n) if n.is_u64() => n.to_string(),
                _ => return Err(Invalid::new(format!("companies.{}", crate::domain::tenant::clip(tenant)), "must be the company's identifier (a text, or a number)")),
            };
            valid(&company).map_err(|why| Invalid::new(format!("companies.{}", crate::domain::tenant::clip(tenant)), why))?;
            map.insert(tenant.clone(), company);
        }
        let default = map.remove("default").ok_or_else(|| Invalid::new("companies", format!("needs a \"default\" for the tenants it does not name: {example}")))?;
        Ok(Self { map, default })
    }

    /// The company of the delivery's tenant, and where it came from.
    pub fn of(&self, payload: &Value) -> Company {
        let tenant = payload["tenant"]["id"].as_str().unwrap_or_default();
        match self.map.get(tenant) {
            Some(id) => Company { id: id.clone(), source: "map".into() },
            None => Company { id: self.default.clone(), source: "default".into() },
        }
    }

    /// Every company it names, the default first (a Test checks each).
    pub fn all(&self) -> Vec<&str> {
        let mut all = vec![self.default.as_str()];
        for company in self.map.values() {
            if !all.contains(&company.as_str()) {
                all.push(company);
            }
        }
        all
    }

    /// As stored (the `default` among the tenants).
    pub fn stored(&self) -> Value {
        let mut stored: serde_json::Map<String, Value> = self.map.iter().map(|(t, c)| (t.clone(), Value::from(c.clone()))).collect();
        stored.insert("default".into(), Value::from(self.default.clone()));
        Value::Object(stored)
    }
}

/// The incident settings of a PSA channel: `incident_by` always holds `/tenant/id` (one
/// customer per ticket), added first when it was left out.
pub fn one_tenant(mut settings: super::IncidentSettings) -> super::IncidentSettings {
    if !settings.by.iter().any(|p| p == "/tenant/id") {
        settings.by.insert(0, "/tenant/id".into());
    }
    settings
}

/// One note for several events of an incident (the one attempted and those waiting behind it):
/// shaped as a notification (`alert.group`) of the incident's key, so every type renders it as
/// a grouped summary: a headline with the count, then one line per event.
pub fn together(key: &IncidentKey, payloads: &[Value]) -> Value {
    let rank = |s: &Value| ["low", "medium", "high", "critical"].iter().position(|r| s.as_str() == Some(*r)).unwrap_or(0);
    let severity = payloads.iter().map(|p| &p["severity"]).max_by_key(|s| rank(s)).cloned().unwrap_or(Value::Null);
    serde_json::json!({
        "event": crate::domain::notification::NOTIFICATION_EVENT,
        "severity": severity,
        "tenant": payloads.first().map(|p| p["tenant"].clone()).unwrap_or(Value::Null),
        "group": {"key": serde_json::from_str::<Value>(&key.text).unwrap_or(Value::Null), "count": payloads.len(), "earlier": 0},
        "events": payloads,
    })
}

/// What a ticket or a note says of a delivery, as plain text: a title (an event's one-line
/// summary, a notification's headline) and lines (an event's facts and identity, a
/// notification's events). Event data is made [`safe`] for systems that show plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    pub title: String,
    pub lines: Vec<String>,
}

/// [`Said`] of a stored payload.
pub fn said_of(payload: &Value) -> Said {
    if is_notification(payload) {
        let group = group_summary(payload);
        let severity = payload["severity"].as_str().unwrap_or("unknown").to_uppercase();
        // Each event listed with its id, so the ticket says which events it holds.
        let events = payload["events"].as_array().map(Vec::as_slice).unwrap_or_default();
        let mut lines: Vec<String> = group.items.iter().zip(events).map(|(line, event)| safe(&format!("{line} [{}]", plain(&event["event_id"])))).collect();
        lines.extend(group.more.map(|m| safe(&m)));
        return Said { title: safe(&format!("{severity}: {}", group.headline)), lines };
    }
    let mut lines: Vec<String> = facts(payload).into_iter().map(|f| safe(&format!("{}: {}", f.label, f.value))).collect();
    let id = |v: &Value| plain(v);
    lines.push(safe(&format!("Event: {} ({}) at {}", id(&payload["event"]), id(&payload["event_id"]), id(&payload["timestamp"]))));
    Said { title: safe(&summary(payload)), lines }
}

/// The title a ticket is opened with: [`Said::title`], marked `[SPScan TEST]` for a Test's
/// (an item outside any incident).
pub fn test_title(item: &Item<'_>, said: &Said) -> String {
    if item.incident.is_none() {
        format!("[SPScan TEST] {}", said.title)
    } else {
        said.title.clone()
    }
}

/// The lines a ticket's description ends with: the marker (how the router finds the ticket
/// again), and the closed or deleted ticket this one follows.
pub fn marker_lines(incident: &IncidentView) -> Vec<String> {
    let mut lines = vec![format!("SPScan incident marker: {} (the router finds this ticket by it: leave it in place)", incident.marker)];
    if let Some(previous) = &incident.previous {
        let name = previous.key.as_deref().unwrap_or(&previous.id);
        let at = previous.url.as_deref().map(|u| format!(" ({u})")).unwrap_or_default();
        lines.push(format!("Follows {name}{at}, which was closed or deleted."));
    }
    lines
}

/// Event data as a ticketing system may show it: on one line, without control or
/// bidirectional-override characters, and without what systems read as markup in plain text
/// (ServiceNow's `[code]` in journal fields, its `@[` mentions).
pub fn safe(text: &str) -> String {
    let line = printable(text);
    let mut out = String::with_capacity(line.len());
    let mut rest = line.as_str();
    while let Some(at) = rest.find('[') {
        out.push_str(&rest[..at]);
        let after = rest[at + 1..].trim_start_matches('/');
        let tag = after.get(..4).is_some_and(|w| w.eq_ignore_ascii_case("code"));
        out.push(if tag || out.ends_with('@') { '(' } else { '[' });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::incident::{IncidentKey, PendingCreate};

    fn incident() -> IncidentView {
        IncidentView::new(IncidentKey::from_value(&serde_json::json!({"k": 1})), "spscan-0123456789abcdef0123".into(), 0)
    }

    #[test]
    fn an_attempt_reads_a_ticket_waits_out_a_pending_create_then_searches_else_creates() {
        let ticket = Ticket::new("1", Some("SOC-1".into()), None);
        assert_eq!(first_step(&IncidentView { ticket: Some(ticket.clone()), ..incident() }, 0, 120_000), Ok(Step::Read(ticket)));
        let pending = IncidentView { create: Some(PendingCreate { started_at: 1_000, delivery_id: "dlv_1".into() }), ..incident() };
        assert_eq!(first_step(&pending, 100_000, 120_000), Err(121_000));
        assert_eq!(first_step(&pending, 121_000, 120_000), Ok(Step::Search));
        assert_eq!(first_step(&incident(), 0, 120_000), Ok(Step::Create));
    }

    #[test]
    fn event_data_in_a_ticket_is_one_line_of_text_without_markup() {
        assert_eq!(safe("a\nb\u{202E}c"), "a b c");
        assert_eq!(safe("[code]<img src=x onerror=alert(1)>[/CODE]"), "(code]<img src=x onerror=alert(1)>(/CODE]");
        assert_eq!(safe("@[6816f79cc0a8016401c5a33be04be441:Abel Tuter] [SOC-1]"), "@(6816f79cc0a8016401c5a33be04be441:Abel Tuter] [SOC-1]");
    }

    #[test]
    fn a_marker_stays_whole_when_a_text_is_cut() {
        let marker = "spscan-0123456789abcdef0123";
        let title = with_marker(&"x".repeat(400), Some(marker), 255);
        assert_eq!(title.chars().count(), 255);
        assert!(title.ends_with(" [spscan-0123456789abcdef0123]"), "{title}");
        assert_eq!(with_marker("short", Some(marker), 255), "short [spscan-0123456789abcdef0123]");
    }
}
