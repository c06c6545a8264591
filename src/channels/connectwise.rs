//! `connectwise`: ConnectWise PSA's REST API 3.0 (SPEC section 17), one service ticket per
//! incident, each filed under the company the incident's tenant maps to. The channel's `url`
//! is the API (`https://api-na.myconnectwise.net/v4_6_release/apis/3.0`); requests sign in with
//! an API member's keys (`Basic base64(company_id+public_key:private_key)`) and carry the
//! integration's `clientId` header. A create is `POST /service/tickets` on `board` for the
//! company (`companies`: tenant → company identifier, with a `default`): the summary (at most 100
//! characters), a plain-text initial description, and the incident's marker in `externalXRef`.
//! A later event is an internal note (`POST /service/tickets/{id}/notes` with
//! `internalAnalysisFlag`) while the ticket is not `closedFlag`; the marker is searched for with
//! `GET /service/tickets?conditions=externalXRef="…"`.
//!
//! Each incident belongs to one tenant (its key always holds `/tenant/id`): one customer per
//! ticket. A create refused for its company is final with error kind `mapping`. Event data is
//! plain text made [`safe`](super::ticket::safe). A Test checks the credentials
//! (`/system/info`), the board and every company the map names.

use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Value};

use super::settings::{self, INCIDENT_SETTINGS};
use super::ticket::{marker_lines, one_tenant, said_of, test_request, with_marker, Check, Companies, Step, TicketSystem};
use super::{json_body, parse_payload, ChannelType, Config, HttpPost, IncidentSettings, Item, Method, Prepared, Presentation, Request, Sending, Setting, Target};
use crate::domain::incident::{Company, IncidentView, Ticket};
use crate::domain::retry::ErrorKind;
use crate::domain::Invalid;

/// ConnectWise's limit on a ticket's summary.
pub const SUMMARY_MAX: usize = 100;
/// The longest initial description or note the router writes, in characters. ConnectWise
/// documents no limit on these texts; this keeps a ticket readable and well under what its
/// database takes.
pub const TEXT_MAX: usize = 30_000;
/// ConnectWise's limit on a company identifier.
pub const IDENTIFIER_MAX: usize = 30;
/// ConnectWise's limit on a board's name.
pub const BOARD_MAX: usize = 50;

pub struct ConnectWise;

const SETTINGS: &[Setting] = &[
    Setting::text("company_id", "Company ID").required().placeholder("contoso_msp").help("The company you sign in to ConnectWise PSA with."),
    Setting::text("public_key", "Public key").required().help("The public key of an API member (System → Members → API Members → API Keys)."),
    Setting::text("private_key", "Private key").secret().required().help("That key's private key. Write-only: shown as ••••last4."),
    Setting::text("client_id", "Client ID")
        .required()
        .placeholder("00000000-0000-0000-0000-000000000000")
        .help("The clientId of your integration, from developer.connectwise.com (sent as the clientId header)."),
    Setting::text("board", "Service board").required().placeholder("Security").help("The service board tickets are opened on."),
    Setting::text("companies", "Companies")
        .required()
        .placeholder(r#"{"contoso": "ContosoLtd", "default": "MSP-Internal"}"#)
        .help(r#"JSON: SPScan tenant id → ConnectWise company identifier, with a "default" for every other tenant. One customer per ticket."#),
    INCIDENT_SETTINGS[0],
    INCIDENT_SETTINGS[1],
];

impl ChannelType for ConnectWise {
    fn presentation(&self) -> Presentation {
        Presentation {
            name: "connectwise",
            label: "ConnectWise PSA",
            help: "Your ConnectWise PSA API; one service ticket per incident under the tenant's company, later events as internal notes.",
            url_label: "ConnectWise API URL",
            url_placeholder: "https://api-na.myconnectwise.net/v4_6_release/apis/3.0",
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

    /// Its limits are shared with the MSP's other tools.
    fn default_rate_limit(&self) -> Option<u32> {
        Some(1)
    }

    fn prepare(&self, config: &Config) -> Result<Arc<dyn Prepared>, Invalid> {
        Ok(Arc::new(ConnectWiseChannel::parse(config)?))
    }
}

/// A ConnectWise channel's settings, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectWiseChannel {
    /// The PSA login company, also in the links people open.
    company_id: String,
    /// `Basic base64(company_id+public_key:private_key)`.
    authorization: String,
    client_id: String,
    board: String,
    companies: Companies,
    incidents: IncidentSettings,
}

impl ConnectWiseChannel {
    /// Parses the settings, the defaults filled in; `Err` names the one to fix.
    pub fn parse(config: &Config) -> Result<Self, Invalid> {
        // A `+` or `:` would change what the Basic credentials say.
        let key_part = |name: &str, what: &str| -> Result<String, Invalid> {
            settings::text(config, name, 100)?
                .filter(|v| !v.contains([':', '+']) && !v.chars().any(char::is_whitespace))
                .ok_or_else(|| Invalid::new(name, format!("must be {what}, without spaces, `+` or `:`")))
        };
        let company_id = key_part("company_id", "the company you sign in to ConnectWise PSA with")?;
        let public_key = key_part("public_key", "the public key of an API member")?;
        let private_key = key_part("private_key", "the private key of that API member's key")?;
        let client_id = settings::text(config, "client_id", 36)?
            .filter(|id| is_guid(id))
            .ok_or_else(|| Invalid::new("client_id", "must be your integration's clientId from developer.connectwise.com, a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"))?;
        let board = settings::text(config, "board", BOARD_MAX)?.ok_or_else(|| Invalid::new("board", "is required: the name of the service board tickets are opened on"))?;
        let companies = Companies::parse(config, |company| {
            let fits = company.chars().count() <= IDENTIFIER_MAX && !company.chars().any(|c| c.is_control() || c == '"' || c == '\\');
            fits.then_some(()).ok_or_else(|| format!("must be a ConnectWise company identifier (at most {IDENTIFIER_MAX} characters, no quotes)"))
        })?;
        let authorization = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{company_id}+{public_key}:{private_key}")));
        let incidents = one_tenant(settings::incidents(config)?);
        Ok(Self { company_id, authorization, client_id, board, companies, incidents })
    }

    fn call(&self, target: &Target, method: Method, path: &str, body: Option<Value>) -> HttpPost {
        let url = format!("{}{path}", target.url.trim_end_matches('/'));
        let headers = vec![("authorization", self.authorization.clone()), ("clientId", self.client_id.clone())];
        HttpPost::call(method, url, body.map(|b| json_body(&b)).unwrap_or_default(), headers)
    }

    /// A `GET` of `path` with `conditions` `field="value"` and the `fields` the answer needs.
    fn lookup(&self, target: &Target, path: &str, field: &str, value: &str, fields: &str) -> HttpPost {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("conditions", &format!("{field}=\"{escaped}\""))
            .append_pair("fields", fields)
            .append_pair("orderBy", "id asc")
            .append_pair("pageSize", "1")
            .finish();
        self.call(target, Method::Get, &format!("{path}?{query}"), None)
    }

    /// The ticket's fields for `item` in `incident`.
    pub fn ticket(&self, item: &Item<'_>, incident: &IncidentView) -> Value {
        let said = said_of(&parse_payload(item.payload));
        let test = item.incident.is_none();
        let title = if test { format!("[SPScan TEST] {}", said.title) } else { said.title.clone() };
        json!({
            "summary": with_marker(&title, None, SUMMARY_MAX),
            "company": {"identifier": self.companies.of(&parse_payload(item.payload)).id},
            "board": {"name": self.board},
            "initialDescription": text(&said.title, &said.lines, &marker_lines(incident)),
            "externalXRef": incident.marker,
        })
    }
}

/// `8-4-4-4-12` hex digits.
fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12]) && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A plain-text description: the title, the lines as a list, then the `closing` lines kept whole,
/// within [`TEXT_MAX`].
fn text(title: &str, lines: &[String], closing: &[String]) -> String {
    let mut body = vec![title.to_string()];
    body.extend(lines.iter().map(|l| format!("- {l}")));
    let closing = closing.join("\n");
    let room = TEXT_MAX.saturating_sub(closing.chars().count() + 2);
    let body = super::text::cut(&body.join("\n"), room);
    if closing.is_empty() {
        body
    } else {
        format!("{body}\n\n{closing}")
    }
}

impl Prepared for ConnectWiseChannel {
    fn request(&self, target: &Target, items: &[Item<'_>], sending: Sending<'_>) -> Request {
        test_request(self, target, &items[0], sending)
    }

    fn incidents(&self) -> Option<IncidentSettings> {
        Some(self.incidents.clone())
    }

    fn tickets(&self) -> Option<&dyn TicketSystem> {
        Some(self)
    }

    fn filled_in(&self) -> Config {
        let mut stored = settings::incidents_stored(&self.incidents);
        // Stored as an object whichever way it was given (the admin form sends JSON text).
        stored.insert("companies".into(), self.companies.stored());
        stored
    }
}

impl TicketSystem for ConnectWiseChannel {
    fn read(&self, target: &Target, ticket: &Ticket) -> HttpPost {
        self.call(target, Method::Get, &format!("/service/tickets/{}?fields=id,closedFlag,status", ticket.id), None)
    }

    /// Open unless `closedFlag`.
    fn is_open(&self, answer: &Value) -> bool {
        answer["closedFlag"].as_bool() != Some(true)
    }

    fn note(&self, target: &Target, ticket: &Ticket, item: &Item<'_>, _sending: Sending<'_>) -> HttpPost {
        let said = said_of(&parse_payload(item.payload));
        let body = json!({
            "text": text(&said.title, &said.lines, &[]),
            // Shown to the MSP's members only ("Internal analysis"), never to the customer.
            "internalAnalysisFlag": true,
            "detailDescriptionFlag": false,
            "resolutionFlag": false,
        });
        self.call(target, Method::Post, &format!("/service/tickets/{}/notes", ticket.id), Some(body))
    }

    fn create(&self, target: &Target, item: &Item<'_>, incident: &IncidentView, _sending: Sending<'_>) -> HttpPost {
        self.call(target, Method::Post, "/service/tickets", Some(self.ticket(item, incident)))
    }

    /// The ticket, `{"id":123,"summary":…}`.
    fn created(&self, target: &Target, answer: &Value) -> Option<Ticket> {
        self.service_ticket(target, answer)
    }

    fn search(&self, target: &Target, marker: &str, _item: &Item<'_>) -> HttpPost {
        self.lookup(target, "/service/tickets", "externalXRef", marker, "id,closedFlag")
    }

    /// An array of tickets, oldest first.
    fn found(&self, target: &Target, answer: &Value) -> Option<Ticket> {
        self.service_ticket(target, answer.get(0)?)
    }

    fn checks(&self, target: &Target) -> Vec<Check> {
        let any = |answer: &Value| answer.as_array().is_some_and(|found| !found.is_empty());
        let mut checks = vec![
            Check::new("the credentials", self.call(target, Method::Get, "/system/info", None)),
            Check::new(format!("board {}", self.board), self.lookup(target, "/service/boards", "name", &self.board, "id,name")).expecting(any),
        ];
        for company in self.companies.all() {
            checks.push(Check::new(format!("company {company}"), self.lookup(target, "/company/companies", "identifier", company, "id,identifier")).expecting(any));
        }
        checks
    }

    /// A create refused for its company (not in ConnectWise, or not one tickets may be opened
    /// for) is the `companies` map's doing.
    fn refusal_kind(&self, step: &Step, status: u16, body: &str) -> Option<ErrorKind> {
        let answer: Value = serde_json::from_str(body).unwrap_or_default();
        let company = answer["errors"].as_array().into_iter().flatten().any(|e| {
            let said = |key: &str| e[key].as_str().unwrap_or_default().to_ascii_lowercase();
            said("field").starts_with("company") || said("code").contains("company")
        });
        (*step == Step::Create && (400..500).contains(&status) && company).then_some(ErrorKind::Mapping)
    }

    fn company(&self, item: &Item<'_>) -> Option<Company> {
        Some(self.companies.of(&parse_payload(item.payload)))
    }

    /// `{"code":"InvalidObject","message":"ticket object is invalid","errors":[{"field":…,"message":…}]}`.
    fn said(&self, body: &str) -> String {
        let answer: Value = serde_json::from_str(body).unwrap_or_default();
        let mut said: Vec<String> = answer["message"].as_str().map(str::to_string).into_iter().collect();
        said.extend(answer["errors"].as_array().into_iter().flatten().map(|e| {
            let message = super::text::plain(&e["message"]);
            match e["field"].as_str() {
                Some(field) => format!("{field}: {message}"),
                None => message,
            }
        }));
        if said.is_empty() {
            return String::new();
        }
        format!("ConnectWise: {}", said.join("; "))
    }

    fn credential_settings(&self) -> &'static str {
        "`company_id`, `public_key` and `private_key` (an API member's keys, allowed to add service tickets) and `client_id`"
    }

    fn create_not_found(&self) -> String {
        "ConnectWise has no such API here: check `url` (it ends in /v4_6_release/apis/3.0)".into()
    }
}

impl ConnectWiseChannel {
    /// A service ticket as ConnectWise names it (`id`), its key as people say it (`#123`), and the
    /// link they open in the PSA.
    fn service_ticket(&self, target: &Target, answer: &Value) -> Option<Ticket> {
        let id = answer["id"].as_u64()?.to_string();
        Some(Ticket::new(id.clone(), Some(format!("#{id}")), self.link(target, &id)))
    }

    /// The ticket's page in the PSA: the API's host without its `api-` (`api-na.myconnectwise.net`
    /// is the API of `na.myconnectwise.net`), the release path before `/apis/3.0`.
    fn link(&self, target: &Target, id: &str) -> Option<String> {
        let mut url = url::Url::parse(&target.url).ok()?;
        let release = url.path().trim_end_matches('/').strip_suffix("/apis/3.0")?.to_string();
        if let Some(host) = url.host_str().and_then(|h| h.strip_prefix("api-")).map(str::to_string) {
            url.set_host(Some(&host)).ok()?;
        }
        url.set_path(&format!("{release}/services/system_io/Service/fv_sr100_request.rsp"));
        url.query_pairs_mut().clear().append_pair("companyName", &self.company_id).append_pair("service_recid", id);
        Some(url.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: Value) -> Config {
        let mut config = json!({
            "company_id": "contoso_msp", "public_key": "pUbLiCkEy123", "private_key": "pRiVaTeKeY456",
            "client_id": "3f1c2b7e-9a4d-4c1e-8f2a-6b5d4e3c2a10", "board": "Security",
            "companies": {"contoso": "ContosoLtd", "default": "MSP-Internal"},
        });
        config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        config.as_object().unwrap().clone()
    }

    #[test]
    fn the_keys_sign_in_as_company_plus_public_key_and_the_client_id_goes_along() {
        let channel = ConnectWiseChannel::parse(&config(json!({}))).unwrap();
        let expected = base64::engine::general_purpose::STANDARD.encode("contoso_msp+pUbLiCkEy123:pRiVaTeKeY456");
        assert_eq!(channel.authorization, format!("Basic {expected}"));
        assert_eq!(channel.client_id, "3f1c2b7e-9a4d-4c1e-8f2a-6b5d4e3c2a10");
        assert_eq!(channel.incidents.by[0], "/tenant/id", "one customer per ticket");
    }

    #[test]
    fn settings_that_cannot_work_name_the_field() {
        for (given, field) in [
            (json!({"client_id": "my-client"}), "client_id"),
            (json!({"public_key": "a:b"}), "public_key"),
            (json!({"companies": {"contoso": "ContosoLtd"}}), "companies"),
            (json!({"companies": {"contoso": "Contoso \"Ltd\"", "default": "MSP"}}), "companies.contoso"),
            (json!({"board": ""}), "board"),
        ] {
            let err = ConnectWiseChannel::parse(&config(given.clone())).unwrap_err();
            assert_eq!(err.field, field, "{given}: {err:?}");
        }
    }

    #[test]
    fn a_ticket_link_is_the_psa_page_of_the_api_host() {
        let channel = ConnectWiseChannel::parse(&config(json!({}))).unwrap();
        let kind = crate::channels::ChannelKind::parse("type", "connectwise").unwrap();
        let url = "https://api-na.myconnectwise.net/v4_6_release/apis/3.0".to_string();
        let target = Target::new("ch_1".into(), kind, url, Default::default(), Vec::new(), config(json!({}))).unwrap();
        assert_eq!(
            channel.link(&target, "123").as_deref(),
            Some("https://na.myconnectwise.net/v4_6_release/services/system_io/Service/fv_sr100_request.rsp?companyName=contoso_msp&service_recid=123")
        );
    }

    #[test]
    fn a_description_keeps_its_marker_lines_whole_when_cut() {
        let closing = vec!["SPScan incident marker: spscan-0123456789abcdef0123".to_string()];
        let long = text("title", &["x".repeat(TEXT_MAX)], &closing);
        assert_eq!(long.chars().count(), TEXT_MAX);
        assert!(long.ends_with(&closing[0]));
    }
}
