//! `autotask`: Autotask PSA's REST API (SPEC section 17), one ticket per incident, filed under
//! the company the event's tenant maps to (`companies`, with a `default`). Every request carries
//! the API user's `UserName`, `Secret` and the `ApiIntegrationCode` (tracking identifier).
//!
//! An Autotask database lives in one zone (`webservices14.autotask.net`, …): before its first
//! request a channel asks `GET {url}/v1.0/zoneInformation?user={username}` where (`url`, default
//! [`ZONE_DISCOVERY_URL`]) and keeps the answer's `url` (requests go to `{zone}V1.0/…`) and
//! `webUrl` (ticket links) for as long as the channel is loaded.
//!
//! A create is `POST {zone}V1.0/Tickets`: `companyID`, `title` (at most [`TITLE_MAX`]
//! characters, ending in ` [<marker>]`), `description` (plain text, at most [`DESCRIPTION_MAX`]),
//! `status` (default New), `priority` by severity, `queueID`, and the marker in the user-defined
//! field `marker_udf` when there is one. A later event of the incident is an internal note
//! (`POST {zone}V1.0/Tickets/{id}/Notes`, publish [`DEFAULT_NOTE_PUBLISH`]) while the ticket's
//! status is not Complete ([`STATUS_COMPLETE`]); the marker is searched for with
//! `POST {zone}V1.0/Tickets/query` (`eq` on the UDF, else `contains` on the title: technicians
//! may edit titles, which is why the UDF is better).
//!
//! Event data goes only into plain-text fields (`title`, `description`, a note's), made
//! [`safe`](super::ticket::safe) on the way. A create refused because of the company is final
//! with error kind `mapping`. A Test checks the credentials, the queue and every mapped company.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::settings::{self, INCIDENT_SETTINGS};
use super::text::cut;
use super::ticket::{marker_lines, one_tenant, said_of, with_marker, Check, Companies, Step, TicketSystem};
use super::{json_body, parse_payload, ChannelType, Config, HttpPost, IncidentSettings, Item, Method, Prepared, Presentation, Request, Sending, Setting, Target};
use crate::domain::incident::{Company, IncidentView, Ticket};
use crate::domain::retry::ErrorKind;
use crate::domain::Invalid;

/// Where zones are discovered unless the channel says otherwise.
pub const ZONE_DISCOVERY_URL: &str = "https://webservices.autotask.net/atservicesrest";
/// Autotask's limit on a ticket's title.
pub const TITLE_MAX: usize = 255;
/// Autotask's limit on a ticket's description (and a note's).
pub const DESCRIPTION_MAX: usize = 8000;
/// A ticket note's title limit.
pub const NOTE_TITLE_MAX: usize = 250;
/// The ticket status a new ticket gets unless the channel names one: New.
pub const DEFAULT_STATUS: u64 = 1;
/// The ticket status that means closed: Complete.
pub const STATUS_COMPLETE: u64 = 5;
/// A note's type unless the channel names one (the first of the ticket note types a database
/// comes with; note types can be renamed and added, so it is a setting).
pub const DEFAULT_NOTE_TYPE: u64 = 1;
/// A note's `publish` unless the channel names one: Internal Only (1 is All Autotask Users).
pub const DEFAULT_NOTE_PUBLISH: u64 = 2;
/// Autotask's priority for each severity unless the channel says otherwise (Autotask's own
/// priorities: 1 High, 2 Medium, 3 Low, 4 Critical).
pub const DEFAULT_PRIORITY: [(&str, u64); 4] = [("critical", 4), ("high", 1), ("medium", 2), ("low", 3)];

pub struct Autotask;

const SETTINGS: &[Setting] = &[
    Setting::text("username", "API user").required().placeholder("spscan@contoso.example").help("The username of the API-only resource the router signs in as (Admin → Resources/Users → API user)."),
    Setting::text("api_secret", "API secret").secret().required().help("That API user's secret (password). Write-only: shown as ••••last4."),
    Setting::text("integration_code", "Integration code")
        .secret()
        .required()
        .help("The tracking identifier chosen for the API user (a custom integration's, or a vendor's). Write-only: shown as ••••last4."),
    Setting::text("queue_id", "Queue id").number().required().placeholder("29683482").help("The service desk queue new tickets go to (its id: Admin → Service Desk → Queues)."),
    Setting::text("companies", "Companies")
        .required()
        .placeholder(r#"{"contoso": 174, "default": 0}"#)
        .help("SPScan tenant id → Autotask company id (a number), as JSON, with a \"default\" for every other tenant (0 is your own company)."),
    Setting::text("status", "Status").number().placeholder("1").help("The status new tickets get (1 New)."),
    Setting::text("priority", "Priority by severity")
        .placeholder(r#"{"critical": 4, "high": 1, "medium": 2, "low": 3}"#)
        .help("Autotask priority for each severity, as JSON (1 High, 2 Medium, 3 Low, 4 Critical); the severities left out keep these defaults."),
    Setting::text("marker_udf", "Marker field").placeholder("SPScan marker").help("A ticket user-defined field (text) that holds the incident's marker; searched instead of the title, which technicians may edit."),
    Setting::text("note_type", "Note type").number().placeholder("1").help("The note type of later events' notes."),
    Setting::text("note_publish", "Note publish").number().placeholder("2").help("Who sees later events' notes: 2 Internal Only (1 is All Autotask Users)."),
    INCIDENT_SETTINGS[0],
    INCIDENT_SETTINGS[1],
];

impl ChannelType for Autotask {
    fn presentation(&self) -> Presentation {
        Presentation {
            name: "autotask",
            label: "Autotask",
            help: "Where Autotask zones are discovered; leave it empty for the default. One ticket per incident in the tenant's company, later events as internal notes.",
            url_label: "Zone discovery URL",
            url_placeholder: ZONE_DISCOVERY_URL,
            headers_in_form: false,
        }
    }

    fn settings(&self) -> &'static [Setting] {
        SETTINGS
    }

    fn keeps_incidents(&self) -> bool {
        true
    }

    fn opens_tickets(&self) -> bool {
        true
    }

    fn one_tenant_per_incident(&self) -> bool {
        true
    }

    fn default_url(&self) -> Option<&'static str> {
        Some(ZONE_DISCOVERY_URL)
    }

    /// Its limits are shared with the MSP's other tools (Autotask counts requests per database).
    fn default_rate_limit(&self) -> Option<u32> {
        Some(1)
    }

    fn prepare(&self, config: &Config) -> Result<Arc<dyn Prepared>, Invalid> {
        Ok(Arc::new(AutotaskChannel::parse(config)?))
    }
}

/// Where the channel's Autotask database answers, as discovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// The REST base, `https://webservices14.autotask.net/ATServicesRest/`, without its `/`.
    pub api: String,
    /// The web interface, `https://ww14.autotask.net/`, for ticket links.
    pub web: Option<String>,
}

/// An Autotask channel's settings, parsed, and the zone once discovered.
#[derive(Debug)]
pub struct AutotaskChannel {
    username: String,
    secret: String,
    integration_code: String,
    queue_id: u64,
    status: u64,
    /// Priority by severity: critical, high, medium, low.
    priority: [(&'static str, u64); 4],
    companies: Companies,
    marker_udf: Option<String>,
    note_type: u64,
    note_publish: u64,
    incidents: IncidentSettings,
    /// Discovered before the first request, kept while the channel is loaded.
    zone: Mutex<Option<Zone>>,
}

/// A whole-number setting: absent, a number, or a text of digits (what the form sends).
fn number(config: &Config, name: &str) -> Result<Option<u64>, Invalid> {
    match config.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) if n.is_u64() => Ok(n.as_u64()),
        Some(Value::String(s)) if s.trim().parse::<u64>().is_ok() => Ok(s.trim().parse().ok()),
        Some(_) => Err(Invalid::new(name, "must be a whole number (an Autotask id)")),
    }
}

impl AutotaskChannel {
    /// Parses the settings, the defaults filled in; `Err` names the one to fix.
    pub fn parse(config: &Config) -> Result<Self, Invalid> {
        let username = settings::text(config, "username", 254)?.ok_or_else(|| Invalid::new("username", "is required: the API user's username"))?;
        let secret = settings::text(config, "api_secret", 1024)?.ok_or_else(|| Invalid::new("api_secret", "is required: the API user's secret"))?;
        let integration_code = settings::text(config, "integration_code", 200)?.ok_or_else(|| Invalid::new("integration_code", "is required: the API user's tracking identifier"))?;
        let queue_id = number(config, "queue_id")?.ok_or_else(|| Invalid::new("queue_id", "is required: the id of the queue new tickets go to"))?;
        let status = number(config, "status")?.unwrap_or(DEFAULT_STATUS);
        let mut priority = DEFAULT_PRIORITY;
        if let Some(given) = settings::object(config, "priority")? {
            for (severity, value) in &given {
                let Some(slot) = priority.iter_mut().find(|(s, _)| *s == severity.as_str()) else {
                    return Err(Invalid::new("priority", format!("`{}` is not a severity: use critical, high, medium and low", crate::domain::tenant::clip(severity))));
                };
                slot.1 = value.as_u64().filter(|p| *p > 0).ok_or_else(|| Invalid::new(format!("priority.{severity}"), "must be an Autotask priority id (1 High, 2 Medium, 3 Low, 4 Critical)"))?;
            }
        }
        let companies = Companies::parse(config, |company| match company.parse::<u64>() {
            Ok(_) => Ok(()),
            Err(_) => Err("must be an Autotask company id, a number (0 is your own company)".into()),
        })?;
        let marker_udf = settings::text(config, "marker_udf", 100)?;
        let note_type = number(config, "note_type")?.unwrap_or(DEFAULT_NOTE_TYPE);
        let note_publish = number(config, "note_publish")?.unwrap_or(DEFAULT_NOTE_PUBLISH);
        let incidents = one_tenant(settings::incidents(config)?);
        Ok(Self { username, secret, integration_code, queue_id, status, priority, companies, marker_udf, note_type, note_publish, incidents, zone: Mutex::new(None) })
    }

    /// The zone discovered, if it is.
    pub fn zone(&self) -> Option<Zone> {
        self.zone.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![("ApiIntegrationCode", self.integration_code.clone()), ("UserName", self.username.clone()), ("Secret", self.secret.clone())]
    }

    /// A request to `{zone}V1.0/{path}` (the zone discovered; the discovery URL until it is).
    fn call(&self, target: &Target, method: Method, path: &str, body: Option<Value>) -> HttpPost {
        let base = self.zone().map(|z| z.api).unwrap_or_else(|| target.url.trim_end_matches('/').to_string());
        HttpPost::call(method, format!("{base}/V1.0/{path}"), body.map(|b| json_body(&b)).unwrap_or_default(), self.headers())
    }

    /// The priority of an event's severity (a notification's is its group's).
    fn priority_of(&self, payload: &Value) -> u64 {
        let severity = payload["severity"].as_str().unwrap_or("medium");
        self.priority.iter().find(|(s, _)| *s == severity).map_or(self.priority[2].1, |(_, p)| *p)
    }

    /// The ticket's fields for `item` in `incident`.
    pub fn fields(&self, item: &Item<'_>, incident: &IncidentView) -> Value {
        let payload = parse_payload(item.payload);
        let said = said_of(&payload);
        let title = if item.incident.is_none() { format!("[SPScan TEST] {}", said.title) } else { said.title.clone() };
        let mut lines = said.lines.clone();
        lines.push(String::new());
        lines.extend(marker_lines(incident));
        let mut fields = json!({
            "companyID": self.companies.of(&payload).id.parse::<u64>().unwrap_or_default(),
            "queueID": self.queue_id,
            "status": self.status,
            "priority": self.priority_of(&payload),
            "title": with_marker(&title, Some(&incident.marker), TITLE_MAX),
            "description": cut(&lines.join("\n"), DESCRIPTION_MAX),
        });
        if let Some(udf) = &self.marker_udf {
            fields["userDefinedFields"] = json!([{"name": udf, "value": incident.marker}]);
        }
        fields
    }

    /// A ticket as Autotask names it (`id`, `ticketNumber`), with the link people open.
    fn ticket(&self, id: &Value, number: Option<&str>) -> Option<Ticket> {
        let id = match id {
            Value::Number(n) if n.is_u64() => n.to_string(),
            // Ids go into later URLs: only digits are taken.
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.clone(),
            _ => return None,
        };
        let url = self.zone().and_then(|z| z.web).map(|web| format!("{}/Autotask/AutotaskExtend/ExecuteCommand.aspx?Code=OpenTicketDetail&TicketID={id}", web.trim_end_matches('/')));
        Some(Ticket::new(id, number.map(str::to_string), url))
    }
}

impl Prepared for AutotaskChannel {
    /// Only a Test sends one request on its own (`ticket::test_request`).
    fn request(&self, target: &Target, items: &[Item<'_>], sending: Sending<'_>) -> Request {
        super::ticket::test_request(self, target, &items[0], sending)
    }

    fn incidents(&self) -> Option<IncidentSettings> {
        Some(self.incidents.clone())
    }

    fn tickets(&self) -> Option<&dyn TicketSystem> {
        Some(self)
    }

    fn filled_in(&self) -> Config {
        let mut stored = settings::incidents_stored(&self.incidents);
        stored.insert("companies".into(), self.companies.stored());
        stored.insert("queue_id".into(), Value::from(self.queue_id));
        stored.insert("status".into(), Value::from(self.status));
        stored.insert("priority".into(), Value::Object(self.priority.iter().map(|(s, p)| (s.to_string(), Value::from(*p))).collect()));
        stored.insert("note_type".into(), Value::from(self.note_type));
        stored.insert("note_publish".into(), Value::from(self.note_publish));
        stored
    }
}

impl TicketSystem for AutotaskChannel {
    /// The zone, until it is known.
    fn discovery(&self, target: &Target) -> Option<HttpPost> {
        if self.zone().is_some() {
            return None;
        }
        let mut url = url::Url::parse(&format!("{}/v1.0/zoneInformation", target.url.trim_end_matches('/'))).ok()?;
        url.query_pairs_mut().append_pair("user", &self.username);
        Some(HttpPost::call(Method::Get, url.to_string(), Default::default(), self.headers()))
    }

    /// `{"zoneName":"America East 3","url":"https://webservices14.autotask.net/ATServicesRest/","webUrl":"https://ww14.autotask.net/","ci":…}`.
    fn discovered(&self, answer: &Value) -> Result<(), String> {
        let api = answer["url"].as_str().filter(|u| u.starts_with("https://") || u.starts_with("http://")).filter(|u| url::Url::parse(u).is_ok());
        let Some(api) = api else {
            return Err(format!("Autotask's zone information names no zone URL for user `{}` (is `username` an API user of this database?)", cut(&self.username, 80)));
        };
        let web = answer["webUrl"].as_str().filter(|u| u.starts_with("https://") || u.starts_with("http://")).map(str::to_string);
        *self.zone.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Zone { api: api.trim_end_matches('/').to_string(), web });
        Ok(())
    }

    fn read(&self, target: &Target, ticket: &Ticket) -> HttpPost {
        self.call(target, Method::Get, &format!("Tickets/{}", ticket.id), None)
    }

    /// Open unless deleted (`item: null`) or Complete.
    fn is_open(&self, answer: &Value) -> bool {
        let item = &answer["item"];
        item.is_object() && item["status"].as_u64() != Some(STATUS_COMPLETE)
    }

    fn note(&self, target: &Target, ticket: &Ticket, item: &Item<'_>, _sending: Sending<'_>) -> HttpPost {
        let said = said_of(&parse_payload(item.payload));
        let body = json!({
            "ticketID": ticket.id.parse::<u64>().ok(),
            "title": cut(&said.title, NOTE_TITLE_MAX),
            "description": cut(&said.lines.join("\n"), DESCRIPTION_MAX),
            "noteType": self.note_type,
            "publish": self.note_publish,
        });
        self.call(target, Method::Post, &format!("Tickets/{}/Notes", ticket.id), Some(body))
    }

    fn create(&self, target: &Target, item: &Item<'_>, incident: &IncidentView, _sending: Sending<'_>) -> HttpPost {
        self.call(target, Method::Post, "Tickets", Some(self.fields(item, incident)))
    }

    /// `{"itemId": 12345}`.
    fn created(&self, _target: &Target, answer: &Value) -> Option<Ticket> {
        self.ticket(&answer["itemId"], None)
    }

    fn search(&self, target: &Target, marker: &str, _item: &Item<'_>) -> HttpPost {
        let filter = match &self.marker_udf {
            Some(udf) => json!({"op": "eq", "field": udf, "udf": true, "value": marker}),
            None => json!({"op": "contains", "field": "title", "value": marker}),
        };
        self.call(target, Method::Post, "Tickets/query", Some(json!({"MaxRecords": 1, "IncludeFields": ["id", "ticketNumber", "status"], "filter": [filter]})))
    }

    fn found(&self, _target: &Target, answer: &Value) -> Option<Ticket> {
        let item = answer.pointer("/items/0")?;
        self.ticket(&item["id"], item["ticketNumber"].as_str())
    }

    fn checks(&self, target: &Target) -> Vec<Check> {
        let mut checks = vec![
            Check::new("the credentials", self.call(target, Method::Get, "ThresholdInformation", None)),
            Check::new(format!("queue {}", self.queue_id), self.call(target, Method::Get, "Tickets/entityInformation/fields", None)).expecting({
                let queue = self.queue_id.to_string();
                move |answer: &Value| {
                    let fields = answer["fields"].as_array().cloned().unwrap_or_default();
                    let queues = fields.iter().find(|f| f["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case("queueID")));
                    queues.and_then(|f| f["picklistValues"].as_array()).is_some_and(|values| values.iter().any(|v| v["value"].as_str() == Some(&queue) && v["isActive"] != false))
                }
            }),
        ];
        for company in self.companies.all() {
            let check = Check::new(format!("company {company}"), self.call(target, Method::Get, &format!("Companies/{company}"), None));
            checks.push(check.expecting(|answer: &Value| answer["item"].is_object()));
        }
        checks
    }

    /// A create refused because of its company: the `companies` map names one Autotask does
    /// not have (or the API user may not see).
    fn refusal_kind(&self, step: &Step, status: u16, body: &str) -> Option<ErrorKind> {
        let about_company = self.said(body).to_ascii_lowercase().contains("company");
        (*step == Step::Create && (400..500).contains(&status) && status != 401 && status != 403 && about_company).then_some(ErrorKind::Mapping)
    }

    fn company(&self, item: &Item<'_>) -> Option<Company> {
        Some(self.companies.of(&parse_payload(item.payload)))
    }

    /// `{"errors":["…"]}`.
    fn said(&self, body: &str) -> String {
        let answer: Value = serde_json::from_str(body).unwrap_or_default();
        let said: Vec<&str> = answer["errors"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if said.is_empty() {
            return String::new();
        }
        format!("Autotask: {}", said.join("; "))
    }

    fn credential_settings(&self) -> &'static str {
        "`username`, `api_secret` and `integration_code` (an API-only user of this Autotask database, whose security level may create tickets and notes)"
    }

    fn create_not_found(&self) -> String {
        "Autotask has no Tickets entity at the zone discovered: check the channel's URL (where zones are discovered)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(value: Value) -> Config {
        value.as_object().cloned().unwrap()
    }

    fn minimal() -> Value {
        json!({"username": "api@contoso.example", "api_secret": "s3cr3t", "integration_code": "ABCDEF", "queue_id": 8, "companies": {"contoso": 174, "default": 0}})
    }

    #[test]
    fn settings_parse_with_autotasks_defaults_and_the_forms_texts() {
        let parsed = AutotaskChannel::parse(&config(minimal())).unwrap();
        assert_eq!((parsed.status, parsed.note_type, parsed.note_publish), (1, 1, 2));
        assert_eq!(parsed.priority, DEFAULT_PRIORITY);
        assert_eq!(parsed.incidents.by[0], "/tenant/id");
        // The admin page's form sends texts.
        let mut form = minimal();
        form["companies"] = json!(r#"{"contoso": "174", "default": 0}"#);
        form["priority"] = json!(r#"{"low": 2}"#);
        form["queue_id"] = json!("8");
        let parsed = AutotaskChannel::parse(&config(form)).unwrap();
        assert_eq!(parsed.companies.map["contoso"], "174");
        assert_eq!(parsed.priority[3], ("low", 2));
        assert_eq!(parsed.queue_id, 8);
        for (field, bad) in [("companies.contoso", json!({"contoso": "Contoso", "default": 0})), ("companies", json!({"contoso": 174}))] {
            let mut given = minimal();
            given["companies"] = bad;
            assert_eq!(AutotaskChannel::parse(&config(given)).unwrap_err().field, field);
        }
        let mut given = minimal();
        given["priority"] = json!({"urgent": 4});
        assert_eq!(AutotaskChannel::parse(&config(given)).unwrap_err().field, "priority");
    }

    #[test]
    fn a_zone_answer_without_a_url_is_refused_and_one_with_it_is_kept_without_its_slash() {
        let channel = AutotaskChannel::parse(&config(minimal())).unwrap();
        assert!(channel.discovered(&json!({"zoneName": "x"})).is_err());
        channel.discovered(&json!({"url": "https://webservices14.autotask.net/ATServicesRest/", "webUrl": "https://ww14.autotask.net/"})).unwrap();
        assert_eq!(channel.zone().unwrap().api, "https://webservices14.autotask.net/ATServicesRest");
    }
}
