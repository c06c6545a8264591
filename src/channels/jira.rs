//! `jira`: Jira Cloud's REST API v3 (SPEC section 17), one issue per incident. The channel's
//! `url` is the site (`https://your-domain.atlassian.net`); requests sign in with Basic auth as
//! `email` with an Atlassian `api_token`. A create is `POST /rest/api/3/issue` in `project_key`
//! as `issue_type` (default `Task`): the summary (at most 255 characters), a description in
//! Atlassian Document Format, and `labels` with the incident's marker first. A later event of
//! the incident is an internal comment (`POST /rest/api/3/issue/{id}/comment`, marked internal
//! for Jira Service Management) while the issue's status category is not `done`; the marker is
//! searched for with `POST /rest/api/3/search/jql`.
//!
//! Event data goes only into ADF text nodes, which Jira shows as text: never a link, a mention
//! or markup. A Test checks the credentials (`/myself`), the project and the issue type.

use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Value};

use super::settings::{self, INCIDENT_SETTINGS};
use super::text::cut;
use super::ticket::{marker_lines, said_of, test_title, with_marker, Check, TicketSystem};
use super::{parse_payload, ChannelType, Config, HttpPost, IncidentSettings, Item, Method, Prepared, Presentation, Request, Sending, Setting, Target};
use crate::domain::incident::{IncidentView, Ticket};
use crate::domain::Invalid;

/// Jira's limit on a summary.
pub const SUMMARY_MAX: usize = 255;
/// Jira's limit on a text field (a description, a comment), in characters.
pub const TEXT_MAX: usize = 32_767;
/// The issue type unless the channel names one.
pub const DEFAULT_ISSUE_TYPE: &str = "Task";

pub struct Jira;

const SETTINGS: &[Setting] = &[
    Setting::text("email", "Account email").required().placeholder("spscan@contoso.com").help("The Atlassian account the router signs in as."),
    Setting::text("api_token", "API token")
        .secret()
        .required()
        .help("An API token of that account (id.atlassian.com → Security → API tokens). Write-only: shown as ••••last4."),
    Setting::text("project_key", "Project key").required().placeholder("SOC"),
    Setting::text("issue_type", "Issue type").placeholder(DEFAULT_ISSUE_TYPE),
    Setting::text("labels", "Labels").placeholder("spscan, m365").help("Added to every issue besides the incident's marker (comma-separated, no spaces within a label)."),
    INCIDENT_SETTINGS[0],
    INCIDENT_SETTINGS[1],
];

impl ChannelType for Jira {
    fn presentation(&self) -> Presentation {
        Presentation {
            name: "jira",
            label: "Jira",
            help: "Your Jira Cloud site; one issue per incident, later events as internal comments.",
            url_label: "Jira site URL",
            url_placeholder: "https://your-domain.atlassian.net",
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
        Ok(Arc::new(JiraChannel::parse(config)?))
    }
}

/// A Jira channel's settings, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JiraChannel {
    /// `Basic base64(email:api_token)`.
    authorization: String,
    project_key: String,
    issue_type: String,
    labels: Vec<String>,
    incidents: IncidentSettings,
}

impl JiraChannel {
    /// Parses the settings, the defaults filled in; `Err` names the one to fix.
    pub fn parse(config: &Config) -> Result<Self, Invalid> {
        let email = settings::text(config, "email", 254)?.filter(|e| e.contains('@')).ok_or_else(|| Invalid::new("email", "must be the email address of the Atlassian account the router signs in as"))?;
        let token = settings::text(config, "api_token", 1024)?.ok_or_else(|| Invalid::new("api_token", "is required: an API token of that Atlassian account"))?;
        let project_key = settings::text(config, "project_key", 30)?.unwrap_or_default();
        let key_shape = project_key.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && project_key.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !key_shape {
            return Err(Invalid::new("project_key", "must be a Jira project key: capital letters, digits and _, starting with a letter (SOC)"));
        }
        let issue_type = settings::text(config, "issue_type", 60)?.unwrap_or_else(|| DEFAULT_ISSUE_TYPE.to_string());
        let labels = settings::list(config, "labels")?.unwrap_or_default();
        if labels.len() > 10 {
            return Err(Invalid::new("labels", "must hold at most 10 labels"));
        }
        if let Some(bad) = labels.iter().find(|l| l.chars().count() > 255 || l.chars().any(|c| c.is_whitespace() || c.is_control())) {
            return Err(Invalid::new("labels", format!("`{}` is not a Jira label: a label has no spaces and at most 255 characters", cut(bad, 40))));
        }
        let authorization = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{email}:{token}")));
        Ok(Self { authorization, project_key, issue_type, labels, incidents: settings::incidents(config)? })
    }

    fn call(&self, target: &Target, method: Method, path: &str, body: Option<Value>) -> HttpPost {
        super::ticket::on_site(target, method, path, body, vec![("authorization", self.authorization.clone())])
    }

    /// The issue's fields for `item` in `incident`.
    pub fn fields(&self, item: &Item<'_>, incident: &IncidentView) -> Value {
        let said = said_of(&parse_payload(item.payload));
        let title = test_title(item, &said);
        let mut labels = vec![incident.marker.clone()];
        labels.extend(self.labels.iter().cloned());
        json!({
            "project": {"key": self.project_key},
            "issuetype": {"name": self.issue_type},
            "summary": with_marker(&title, None, SUMMARY_MAX),
            "description": adf(&said.title, &said.lines, &marker_lines(incident)),
            "labels": labels,
        })
    }
}

/// An Atlassian Document Format document: a paragraph, a bullet list of `lines`, then the
/// `closing` paragraphs; every piece of text a text node (shown as text), within [`TEXT_MAX`].
fn adf(title: &str, lines: &[String], closing: &[String]) -> Value {
    let mut left = TEXT_MAX;
    let mut text = |t: &str| {
        let t = cut(t, left.max(1));
        left = left.saturating_sub(t.chars().count());
        json!({"type": "paragraph", "content": [{"type": "text", "text": t}]})
    };
    let mut content = vec![text(title)];
    let items: Vec<Value> = lines.iter().map(|l| json!({"type": "listItem", "content": [text(l)]})).collect();
    if !items.is_empty() {
        content.push(json!({"type": "bulletList", "content": items}));
    }
    content.extend(closing.iter().map(|l| text(l)));
    json!({"type": "doc", "version": 1, "content": content})
}

impl Prepared for JiraChannel {
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
        stored.insert("issue_type".into(), Value::from(self.issue_type.clone()));
        stored
    }
}

impl TicketSystem for JiraChannel {
    fn read(&self, target: &Target, ticket: &Ticket) -> HttpPost {
        self.call(target, Method::Get, &format!("/rest/api/3/issue/{}?fields=status", ticket.id), None)
    }

    /// Open unless its status category is `done`.
    fn is_open(&self, answer: &Value) -> bool {
        answer.pointer("/fields/status/statusCategory/key").and_then(Value::as_str) != Some("done")
    }

    fn note(&self, target: &Target, ticket: &Ticket, item: &Item<'_>, _sending: Sending<'_>) -> HttpPost {
        let said = said_of(&parse_payload(item.payload));
        let body = json!({
            "body": adf(&said.title, &said.lines, &[]),
            // Jira Service Management shows it to agents only.
            "properties": [{"key": "sd.public.comment", "value": {"internal": true}}],
        });
        self.call(target, Method::Post, &format!("/rest/api/3/issue/{}/comment", ticket.id), Some(body))
    }

    fn create(&self, target: &Target, item: &Item<'_>, incident: &IncidentView, _sending: Sending<'_>) -> HttpPost {
        self.call(target, Method::Post, "/rest/api/3/issue", Some(json!({ "fields": self.fields(item, incident) })))
    }

    /// `{"id":"10000","key":"SOC-24","self":"…"}`; people open `{site}/browse/{key}`.
    fn created(&self, target: &Target, answer: &Value) -> Option<Ticket> {
        issue(target, answer)
    }

    fn search(&self, target: &Target, marker: &str, _item: &Item<'_>) -> HttpPost {
        let jql = format!("project = \"{}\" AND labels = \"{marker}\" ORDER BY created ASC", self.project_key);
        self.call(target, Method::Post, "/rest/api/3/search/jql", Some(json!({"jql": jql, "fields": ["status"], "maxResults": 1})))
    }

    fn found(&self, target: &Target, answer: &Value) -> Option<Ticket> {
        issue(target, answer.pointer("/issues/0")?)
    }

    fn checks(&self, target: &Target) -> Vec<Check> {
        let key = &self.project_key;
        vec![
            Check::new("the credentials", self.call(target, Method::Get, "/rest/api/3/myself", None)),
            Check::new(format!("project {key}"), self.call(target, Method::Get, &format!("/rest/api/3/project/{key}"), None)),
            Check::new(format!("issue type {} in {key}", self.issue_type), self.call(target, Method::Get, &format!("/rest/api/3/issue/createmeta/{key}/issuetypes"), None)).expecting({
                let name = self.issue_type.clone();
                move |answer: &Value| {
                    let types = answer["issueTypes"].as_array().or(answer["values"].as_array()).cloned().unwrap_or_default();
                    types.iter().any(|t| t["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(&name)))
                }
            }),
        ]
    }

    /// `{"errorMessages":[…],"errors":{"field":"…"}}`.
    fn said(&self, body: &str) -> String {
        let answer: Value = serde_json::from_str(body).unwrap_or_default();
        let mut said: Vec<String> = answer["errorMessages"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
        said.extend(answer["errors"].as_object().into_iter().flatten().map(|(field, message)| format!("{field}: {}", super::text::plain(message))));
        if said.is_empty() {
            return String::new();
        }
        format!("Jira: {}", said.join("; "))
    }

    fn credential_settings(&self) -> &'static str {
        "`email` and `api_token` (an API token of that Atlassian account, allowed to create issues in the project)"
    }

    fn create_not_found(&self) -> String {
        format!("Jira has no project `{}` (or the account cannot see it): check `project_key`", self.project_key)
    }
}

/// An issue as Jira names it (`id`, `key`), with the link people open.
fn issue(target: &Target, answer: &Value) -> Option<Ticket> {
    // Ids go into later URLs: only digits are taken (Jira's issue ids are numbers).
    let id = match &answer["id"] {
        Value::String(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => id.clone(),
        Value::Number(id) if id.is_u64() => id.to_string(),
        _ => return None,
    };
    let key = answer["key"].as_str().map(str::to_string);
    let url = key.as_ref().map(|k| format!("{}/browse/{k}", target.url.trim_end_matches('/')));
    Some(Ticket::new(id, key, url))
}
