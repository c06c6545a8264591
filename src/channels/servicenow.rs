//! `servicenow`: ServiceNow's Table API (SPEC section 17), one incident record per incident.
//! The channel's `url` is the instance (`https://{instance}.service-now.com`); requests sign in
//! either with Basic auth as `username`/`password` (a user with the `itil` role) or with a bearer
//! token from the OAuth 2.0 client-credentials grant of `client_id`/`client_secret` at the
//! instance's `/oauth_token.do` (fetched and cached by the outbound exchange): exactly one of the
//! two. A create is `POST /api/now/table/{table}` (default `incident`): `short_description` (at
//! most 160 characters), a plain-text `description` ending with the marker, `urgency` and `impact`
//! from the severity, `correlation_id` = the marker, and the optional `assignment_group` and
//! `caller_id` (sys_ids: the Table API stores a reference as given, so a name would be stored as
//! a broken reference). A later event is an internal work note (`PATCH …/{sys_id}` with
//! `work_notes`) while a read shows the record `active`; the marker is searched for on
//! `correlation_id`.
//!
//! Work notes are journal fields, where ServiceNow renders `[code]…[/code]` as HTML: every line
//! of event data goes through `ticket::safe`, which breaks those tags (and `@[` mentions). A Test
//! checks the credentials and the table, and the assignment group and caller when set.

use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Value};

use super::settings::{self, INCIDENT_SETTINGS};
use super::text::cut;
use super::ticket::{marker_lines, said_of, test_title, Check, TicketSystem};
use super::{parse_payload, ChannelType, ClientCredentials, Config, HttpPost, IncidentSettings, Item, Method, Prepared, Presentation, Request, Sending, Setting, Target};
use crate::domain::incident::{IncidentView, Ticket};
use crate::domain::Invalid;

/// ServiceNow's limit on `short_description`.
pub const SHORT_DESCRIPTION_MAX: usize = 160;
/// The default length of `description` and of a journal entry (`work_notes`), in characters.
pub const TEXT_MAX: usize = 4000;
/// The table unless the channel names one.
pub const DEFAULT_TABLE: &str = "incident";
/// Where an instance issues OAuth tokens: a path on the channel's URL.
pub const TOKEN_PATH: &str = "/oauth_token.do";

pub struct ServiceNow;

const SETTINGS: &[Setting] = &[
    Setting::text("username", "User name").placeholder("spscan.integration").help("Basic auth: a ServiceNow user with the itil role (or leave empty and use OAuth below)."),
    Setting::text("password", "Password").secret().help("Basic auth: that user's password. Write-only: shown as ••••last4."),
    Setting::text("client_id", "OAuth client ID").help("OAuth client credentials instead of a user: the Client ID of an OAuth API endpoint entry (System OAuth → Application Registry)."),
    Setting::text("client_secret", "OAuth client secret").secret().help("Its Client Secret. Write-only: shown as ••••last4."),
    Setting::text("table", "Table").placeholder(DEFAULT_TABLE).help("The table records are created in: incident, or one extending Task (sn_si_incident for Security Incident Response)."),
    Setting::text("assignment_group", "Assignment group").placeholder("sys_id of the group").help("Optional: the sys_id (32 hex digits) of the group new records are assigned to."),
    Setting::text("caller_id", "Caller").placeholder("sys_id of the user").help("Optional: the sys_id (32 hex digits) of the user new records name as caller."),
    INCIDENT_SETTINGS[0],
    INCIDENT_SETTINGS[1],
];

impl ChannelType for ServiceNow {
    fn presentation(&self) -> Presentation {
        Presentation {
            name: "servicenow",
            label: "ServiceNow",
            help: "Your ServiceNow instance; one incident per incident, later events as work notes.",
            url_label: "Instance URL",
            url_placeholder: "https://your-instance.service-now.com",
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

    /// Its limits are shared with the MSP's other tools.
    fn default_rate_limit(&self) -> Option<u32> {
        Some(1)
    }

    fn prepare(&self, config: &Config) -> Result<Arc<dyn Prepared>, Invalid> {
        Ok(Arc::new(ServiceNowChannel::parse(config)?))
    }
}

/// How requests sign in: exactly one way.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SignIn {
    /// `Basic base64(username:password)`.
    Basic(String),
    /// A bearer token of this grant (the exchange adds it).
    OAuth(ClientCredentials),
}

/// A ServiceNow channel's settings, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNowChannel {
    sign_in: SignIn,
    table: String,
    assignment_group: Option<String>,
    caller_id: Option<String>,
    incidents: IncidentSettings,
}

/// A record's `sys_id`: 32 hex digits.
pub fn is_sys_id(s: &str) -> bool {
    s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit())
}

impl ServiceNowChannel {
    /// Parses the settings, the defaults filled in; `Err` names the one to fix.
    pub fn parse(config: &Config) -> Result<Self, Invalid> {
        let either = "give either `username` and `password` (Basic auth) or `client_id` and `client_secret` (OAuth client credentials)";
        let (username, password) = (settings::text(config, "username", 100)?, settings::text(config, "password", 1024)?);
        let (client_id, client_secret) = (settings::text(config, "client_id", 100)?, settings::text(config, "client_secret", 1024)?);
        let basic = username.is_some() || password.is_some();
        let oauth = client_id.is_some() || client_secret.is_some();
        let sign_in = match (basic, oauth) {
            (true, true) => return Err(Invalid::new("client_id", format!("cannot be given beside `username`/`password`: {either}, not both (send the other pair as null)"))),
            (false, false) => return Err(Invalid::new("username", format!("is required unless OAuth is used: {either}"))),
            (true, false) => {
                let username = username.ok_or_else(|| Invalid::new("username", "is required with `password`: the ServiceNow user the router signs in as"))?;
                if username.contains(':') {
                    return Err(Invalid::new("username", "must be a ServiceNow user name (without `:`)"));
                }
                let password = password.ok_or_else(|| Invalid::new("password", "is required with `username`: that user's password"))?;
                SignIn::Basic(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))))
            }
            (false, true) => {
                let client_id = client_id.ok_or_else(|| Invalid::new("client_id", "is required with `client_secret`: the Client ID of the OAuth application registry entry"))?;
                let client_secret = client_secret.ok_or_else(|| Invalid::new("client_secret", "is required with `client_id`: the Client Secret of that entry"))?;
                // ServiceNow grants its default scope when none is asked for.
                SignIn::OAuth(ClientCredentials { token_url: TOKEN_PATH.into(), client_id, client_secret, scope: String::new() })
            }
        };
        let table = settings::text(config, "table", 80)?.unwrap_or_else(|| DEFAULT_TABLE.to_string());
        let table_shape = table.chars().next().is_some_and(|c| c.is_ascii_lowercase()) && table.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !table_shape {
            return Err(Invalid::new("table", "must be a ServiceNow table name: lower-case letters, digits and _ (incident, sn_si_incident, u_spscan_alert)"));
        }
        let sys_id = |name: &'static str, what: &str| -> Result<Option<String>, Invalid> {
            match settings::text(config, name, 32)? {
                Some(id) if is_sys_id(&id) => Ok(Some(id.to_ascii_lowercase())),
                Some(_) => Err(Invalid::new(name, format!("must be the sys_id of the {what} (32 hex digits; open the record and use Copy sys_id): the Table API stores a reference as given, so a name would not match"))),
                None => Ok(None),
            }
        };
        let assignment_group = sys_id("assignment_group", "group (sys_user_group)")?;
        let caller_id = sys_id("caller_id", "user (sys_user)")?;
        Ok(Self { sign_in, table, assignment_group, caller_id, incidents: settings::incidents(config)? })
    }

    /// A request signed with Basic auth; with OAuth the exchange adds the bearer token.
    fn call(&self, target: &Target, method: Method, path: &str, body: Option<Value>) -> HttpPost {
        let headers = match &self.sign_in {
            SignIn::Basic(authorization) => vec![("authorization", authorization.clone())],
            SignIn::OAuth(_) => Vec::new(),
        };
        super::ticket::on_site(target, method, path, body, headers)
    }

    fn record_path(&self, sys_id: &str) -> String {
        format!("/api/now/table/{}/{sys_id}", self.table)
    }

    /// The new record's fields for `item` in `incident`.
    pub fn fields(&self, item: &Item<'_>, incident: &IncidentView) -> Value {
        let payload = parse_payload(item.payload);
        let said = said_of(&payload);
        let (urgency, impact) = urgency_and_impact(payload["severity"].as_str().unwrap_or_default());
        let mut fields = json!({
            "short_description": cut(&test_title(item, &said), SHORT_DESCRIPTION_MAX),
            "description": plain_text(&said.title, &said.lines, &marker_lines(incident)),
            "urgency": urgency,
            "impact": impact,
            "correlation_id": incident.marker,
            "correlation_display": "SPScan",
        });
        if let Some(group) = &self.assignment_group {
            fields["assignment_group"] = json!(group);
        }
        if let Some(caller) = &self.caller_id {
            fields["caller_id"] = json!(caller);
        }
        fields
    }
}

/// ServiceNow's `urgency` and `impact` (1 high, 2 medium, 3 low) for an event's severity.
pub fn urgency_and_impact(severity: &str) -> (&'static str, &'static str) {
    match severity {
        "critical" => ("1", "1"),
        "high" => ("1", "2"),
        "low" => ("3", "3"),
        _ => ("2", "2"),
    }
}

/// Plain text: the title, the lines as a list, then the `closing` lines whole; the title and
/// lines cut so that the whole stays within [`TEXT_MAX`].
fn plain_text(title: &str, lines: &[String], closing: &[String]) -> String {
    let tail: String = closing.iter().map(|l| format!("\n\n{l}")).collect();
    let mut body = title.to_string();
    for line in lines {
        body.push_str("\n- ");
        body.push_str(line);
    }
    format!("{}{tail}", cut(&body, TEXT_MAX.saturating_sub(tail.chars().count())))
}

impl Prepared for ServiceNowChannel {
    fn request(&self, target: &Target, items: &[Item<'_>], sending: Sending<'_>) -> Request {
        super::ticket::test_request(self, target, &items[0], sending)
    }

    fn credentials(&self) -> Option<ClientCredentials> {
        match &self.sign_in {
            SignIn::OAuth(credentials) => Some(credentials.clone()),
            SignIn::Basic(_) => None,
        }
    }

    fn incidents(&self) -> Option<IncidentSettings> {
        Some(self.incidents.clone())
    }

    fn tickets(&self) -> Option<&dyn TicketSystem> {
        Some(self)
    }

    fn filled_in(&self) -> Config {
        let mut stored = settings::incidents_stored(&self.incidents);
        stored.insert("table".into(), Value::from(self.table.clone()));
        stored
    }
}

impl TicketSystem for ServiceNowChannel {
    fn read(&self, target: &Target, ticket: &Ticket) -> HttpPost {
        self.call(target, Method::Get, &format!("{}?sysparm_fields=active,number,sys_id", self.record_path(&ticket.id)), None)
    }

    /// Open while `active` (a string, `"true"`, as the Table API returns every field).
    fn is_open(&self, answer: &Value) -> bool {
        matches!(answer.pointer("/result/active"), Some(Value::String(s)) if s == "true") || answer.pointer("/result/active") == Some(&Value::Bool(true))
    }

    fn note(&self, target: &Target, ticket: &Ticket, item: &Item<'_>, _sending: Sending<'_>) -> HttpPost {
        let said = said_of(&parse_payload(item.payload));
        let body = json!({ "work_notes": plain_text(&said.title, &said.lines, &[]) });
        self.call(target, Method::Patch, &format!("{}?sysparm_fields=sys_id,number", self.record_path(&ticket.id)), Some(body))
    }

    fn create(&self, target: &Target, item: &Item<'_>, incident: &IncidentView, _sending: Sending<'_>) -> HttpPost {
        let path = format!("/api/now/table/{}?sysparm_fields=sys_id,number,active", self.table);
        self.call(target, Method::Post, &path, Some(self.fields(item, incident)))
    }

    /// `201 {"result":{"sys_id":"…","number":"INC0010001",…}}`.
    fn created(&self, target: &Target, answer: &Value) -> Option<Ticket> {
        record(target, &self.table, &answer["result"])
    }

    fn search(&self, target: &Target, marker: &str, _item: &Item<'_>) -> HttpPost {
        let path = format!("/api/now/table/{}?sysparm_query=correlation_id={marker}&sysparm_fields=sys_id,number,active&sysparm_limit=1", self.table);
        self.call(target, Method::Get, &path, None)
    }

    fn found(&self, target: &Target, answer: &Value) -> Option<Ticket> {
        record(target, &self.table, answer.pointer("/result/0")?)
    }

    fn checks(&self, target: &Target) -> Vec<Check> {
        let table = &self.table;
        let mut checks = vec![Check::new(format!("the credentials and table {table}"), self.call(target, Method::Get, &format!("/api/now/table/{table}?sysparm_limit=1&sysparm_fields=sys_id"), None))];
        let exists = |answer: &Value| answer["result"].as_array().is_some_and(|found| !found.is_empty());
        if let Some(group) = &self.assignment_group {
            let path = format!("/api/now/table/sys_user_group?sysparm_query=sys_id={group}&sysparm_fields=sys_id,name&sysparm_limit=1");
            checks.push(Check::new(format!("assignment group {group}"), self.call(target, Method::Get, &path, None)).expecting(exists));
        }
        if let Some(caller) = &self.caller_id {
            let path = format!("/api/now/table/sys_user?sysparm_query=sys_id={caller}&sysparm_fields=sys_id,name&sysparm_limit=1");
            checks.push(Check::new(format!("caller {caller}"), self.call(target, Method::Get, &path, None)).expecting(exists));
        }
        checks
    }

    /// `{"error":{"message":"…","detail":"…"},"status":"failure"}`.
    fn said(&self, body: &str) -> String {
        let answer: Value = serde_json::from_str(body).unwrap_or_default();
        let words = |v: &Value| v.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        let said: Vec<String> = [words(&answer["error"]["message"]), words(&answer["error"]["detail"])].into_iter().flatten().collect();
        if said.is_empty() {
            return String::new();
        }
        format!("ServiceNow: {}", said.join(": "))
    }

    fn credential_settings(&self) -> &'static str {
        match self.sign_in {
            SignIn::Basic(_) => "`username` and `password` (a ServiceNow user with the itil role, allowed to create records in the table)",
            SignIn::OAuth(_) => "`client_id` and `client_secret` (the OAuth application registry entry, and the user its tokens act as)",
        }
    }

    fn create_not_found(&self) -> String {
        format!("ServiceNow has no table `{}` (or the account cannot see it): check `table`", self.table)
    }
}

/// A record as ServiceNow names it (`sys_id`, `number`), with the link people open.
fn record(target: &Target, table: &str, result: &Value) -> Option<Ticket> {
    // It goes into the paths of later requests: only a sys_id's letters.
    let id = result["sys_id"].as_str().filter(|id| !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric()))?;
    let key = result["number"].as_str().filter(|n| !n.is_empty()).map(str::to_string);
    let url = format!("{}/nav_to.do?uri={table}.do?sys_id={id}", target.url.trim_end_matches('/'));
    Some(Ticket::new(id.to_string(), key, Some(url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(value: Value) -> Config {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn exactly_one_way_of_signing_in_is_taken() {
        let both = ServiceNowChannel::parse(&config(json!({"username": "a", "password": "b", "client_id": "c", "client_secret": "d"}))).unwrap_err();
        assert_eq!(both.field, "client_id");
        let neither = ServiceNowChannel::parse(&config(json!({}))).unwrap_err();
        assert_eq!(neither.field, "username");
        assert_eq!(ServiceNowChannel::parse(&config(json!({"username": "a"}))).unwrap_err().field, "password");
        assert_eq!(ServiceNowChannel::parse(&config(json!({"client_id": "c"}))).unwrap_err().field, "client_secret");
        let oauth = ServiceNowChannel::parse(&config(json!({"client_id": "c", "client_secret": "d"}))).unwrap();
        assert_eq!(oauth.credentials().unwrap().token_url, TOKEN_PATH);
        let basic = ServiceNowChannel::parse(&config(json!({"username": "a", "password": "b", "assignment_group": "287EBD7DA9FE198100F92CC8D1D2154E"}))).unwrap();
        assert_eq!((basic.credentials(), basic.table.as_str(), basic.assignment_group.as_deref()), (None, "incident", Some("287ebd7da9fe198100f92cc8d1d2154e")));
        assert_eq!(ServiceNowChannel::parse(&config(json!({"username": "a", "password": "b", "caller_id": "Abel Tuter"}))).unwrap_err().field, "caller_id");
        assert_eq!(ServiceNowChannel::parse(&config(json!({"username": "a", "password": "b", "table": "incident?x=1"}))).unwrap_err().field, "table");
    }

    #[test]
    fn severity_sets_urgency_and_impact() {
        assert_eq!(urgency_and_impact("critical"), ("1", "1"));
        assert_eq!(urgency_and_impact("high"), ("1", "2"));
        assert_eq!(urgency_and_impact("medium"), ("2", "2"));
        assert_eq!(urgency_and_impact("low"), ("3", "3"));
    }

    #[test]
    fn a_long_description_keeps_its_marker_lines_whole() {
        let text = plain_text(&"t".repeat(5000), &["a".into()], &["SPScan incident marker: spscan-0123".into()]);
        assert_eq!(text.chars().count(), TEXT_MAX);
        assert!(text.ends_with("…\n\nSPScan incident marker: spscan-0123"), "{}", &text[text.len() - 60..]);
    }

    #[test]
    fn servicenows_error_words_are_read() {
        let channel = ServiceNowChannel::parse(&config(json!({"username": "a", "password": "b"}))).unwrap();
        let body = r#"{"error":{"message":"Invalid table incidnt","detail":null},"status":"failure"}"#;
        assert_eq!(channel.said(body), "ServiceNow: Invalid table incidnt");
        let body = r#"{"error":{"message":"Operation Failed","detail":"Data Policy Exception: Category is mandatory"},"status":"failure"}"#;
        assert_eq!(channel.said(body), "ServiceNow: Operation Failed: Data Policy Exception: Category is mandatory");
        assert_eq!(channel.said("<html>"), "");
    }
}
