//! `email`: one mail message per event, or per grouped notification, handed to the channel's
//! SMTP server (SPEC section 17). The channel's address is the server's `host` (guarded like
//! any URL's host); its settings say the port, the encryption (`starttls` by default,
//! `implicit`, or `none` only to hosts `ALLOWED_TARGET_NETWORKS` allows), the sign-in (`plain`
//! with `username` and `password`, or `xoauth2` with an app registration's client credentials,
//! as Exchange Online requires: the access token is the XOAUTH2 password), `from` and `to`.
//!
//! A message is multipart/alternative: plain text and HTML, no remote image and no link (event
//! data is hostile: see [`message`]). Its subject is
//! `[SPScan] <SEVERITY>: <title> (<tenant display name>)` (`[SPScan TEST]` for **Test**); its
//! `Message-ID` is `<{delivery id}@{from domain}>`, so every attempt of a delivery sends the same
//! message. A delivery of an incident whose thread has begun replies to the thread's first
//! message (`In-Reply-To`, `References`) with `Re: ` and that message's subject; mail clients
//! also thread by subject, so a later severity is said in the body.
//!
//! Answers are SMTP replies: `2xx` delivered; `535` (sign-in refused) final, naming what to
//! check; other `5xx` final; `4xx` retried. The transport (`crate::outbound`'s `smtp`) counts a
//! message as accepted when any recipient is.

use std::sync::Arc;

use serde_json::Value;

use super::settings::{self, client_credentials, INCIDENT_SETTINGS};
use super::text::group::is_notification;
use super::{parse_payload, ChannelType, ClientCredentials, Config, IncidentSettings, Item, Mail, MailAuth, MailServer, MailTls, Prepared, Presentation, Request, Sending, Setting, Target, Transport, Verdict, Wrote};
use crate::domain::incident::MailThread;
use crate::domain::Invalid;
pub use message::{render, render_group, Rendered};

pub mod message;

/// The scope of an Exchange Online SMTP token (client credentials).
pub const SCOPE: &str = "https://outlook.office365.com/.default";
/// Most recipients of one channel.
pub const MAX_RECIPIENTS: usize = 50;

pub struct Email;

const SETTINGS: &[Setting] = &[
    Setting::text("port", "Port").number().placeholder("587").help("587 for STARTTLS (the default), 465 for implicit TLS, 25 without TLS."),
    Setting::text("tls", "Encryption").placeholder("starttls").help("`starttls` (default), `implicit`, or `none` (only to hosts ALLOWED_TARGET_NETWORKS allows)."),
    Setting::text("auth", "Sign-in").placeholder("plain").help("`plain` (username and password) or `xoauth2` (Exchange Online: an app registration’s client credentials)."),
    Setting::text("username", "Username").help("The mailbox that sends (for xoauth2, the mailbox the app may send as)."),
    Setting::text("password", "Password").secret().help("Write-only: shown as ••••last4. Not used with xoauth2."),
    Setting::text("from", "From").required().placeholder("spscan-alerts@contoso.com"),
    Setting::text("to", "To").required().placeholder("soc@contoso.com, oncall@contoso.com").help("One address or several, separated by commas."),
    Setting::text("directory_id", "Directory (tenant) ID").moves_credentials().help("xoauth2 only: the Entra tenant of the app registration."),
    Setting::text("client_id", "Application (client) ID").help("xoauth2 only."),
    Setting::text("client_secret", "Client secret").secret().help("xoauth2 only. Write-only: shown as ••••last4."),
    Setting::text("authority", "Authority").moves_credentials().help("xoauth2 only, for sovereign clouds."),
    INCIDENT_SETTINGS[0],
    INCIDENT_SETTINGS[1],
];

impl ChannelType for Email {
    fn presentation(&self) -> Presentation {
        Presentation {
            name: "email",
            label: "Email (SMTP)",
            help: "The SMTP server that sends the alerts, such as smtp.office365.com.",
            url_label: "SMTP server",
            url_placeholder: "smtp.office365.com",
            headers_in_form: false,
        }
    }

    /// Mail servers throttle senders (Exchange Online: 30 messages a minute per mailbox).
    fn default_rate_limit(&self) -> Option<u32> {
        Some(1)
    }

    fn settings(&self) -> &'static [Setting] {
        SETTINGS
    }

    fn url_field(&self) -> &'static str {
        "host"
    }

    fn address_is_host(&self) -> bool {
        true
    }

    /// One mail thread per incident: later messages reply to its first.
    fn keeps_incidents(&self) -> bool {
        true
    }

    fn prepare(&self, config: &Config) -> Result<Arc<dyn Prepared>, Invalid> {
        Ok(Arc::new(EmailChannel::parse(config)?))
    }

    /// `body` is the server's reply, after the command it answered (`AUTH XOAUTH2: 535 …`).
    fn judge(&self, status: u16, body: &str) -> Verdict {
        match status {
            200..=399 => Verdict::Delivered,
            535 if body.contains("XOAUTH2") => Verdict::Final(
                "the server refused the app's token: check `username` (a mailbox the app may send as), and that the app registration has SMTP.SendAsApp and a service principal added in Exchange Online; not retried".into(),
            ),
            535 => Verdict::Final("the server refused the sign-in: check `username` and `password` (and that SMTP AUTH is enabled for the mailbox); not retried".into()),
            400..=499 => Verdict::Retry(String::new()),
            500..=599 => Verdict::Final("not retried".into()),
            _ => Verdict::Retry(String::new()),
        }
    }
}

/// An email channel's settings, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailChannel {
    port: u16,
    tls: MailTls,
    auth: MailAuth,
    from: String,
    /// The part of `from` after its `@`: the right side of every `Message-ID`.
    from_domain: String,
    to: Vec<String>,
    credentials: Option<ClientCredentials>,
    authority: Option<String>,
    incidents: IncidentSettings,
}

/// An email address as `lettre` reads it; `Err` names the field.
fn address(field: &str, text: &str) -> Result<lettre::Address, Invalid> {
    text.trim().parse::<lettre::Address>().map_err(|e| Invalid::new(field, format!("`{}` is not an email address ({e})", crate::domain::tenant::clip(text))))
}

/// `to` as given: a JSON array of addresses, or one text of addresses separated by commas or
/// semicolons (what the admin page's form sends).
fn recipients(config: &Config) -> Result<Vec<String>, Invalid> {
    let given = settings::list(config, "to")?
        .ok_or_else(|| Invalid::new("to", "must be a list of email addresses (or one text of addresses separated by commas)"))?;
    if given.is_empty() || given.len() > MAX_RECIPIENTS {
        return Err(Invalid::new("to", format!("must hold 1 to {MAX_RECIPIENTS} email addresses")));
    }
    given.iter().map(|a| address("to", a).map(|a| a.to_string())).collect()
}

impl EmailChannel {
    /// Parses the settings, the defaults filled in; `Err` names the one to fix.
    pub fn parse(config: &Config) -> Result<Self, Invalid> {
        let tls = match settings::text(config, "tls", 20)?.as_deref() {
            None | Some("starttls") => MailTls::StartTls,
            Some("implicit") => MailTls::Implicit,
            Some("none") => MailTls::None,
            Some(_) => return Err(Invalid::new("tls", "must be `starttls`, `implicit` or `none`")),
        };
        let port = match config.get("port") {
            None => match tls {
                MailTls::StartTls => 587,
                MailTls::Implicit => 465,
                MailTls::None => 25,
            },
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .filter(|p| (1..=65535).contains(p))
                .ok_or_else(|| Invalid::new("port", format!("must be a port number from 1 to 65535; got {v}")))? as u16,
        };
        let from = settings::text(config, "from", 320)?.unwrap_or_default();
        let from = address("from", &from)?;
        let from_domain = from.domain().to_string();
        let to = recipients(config)?;
        let username = settings::text(config, "username", 320)?;
        let password = settings::text(config, "password", 1024)?;
        let (auth, credentials, authority) = match settings::text(config, "auth", 20)?.as_deref() {
            None | Some("plain") => {
                let auth = match (username, password) {
                    (Some(username), Some(password)) => MailAuth::Password { username, password },
                    (None, None) => MailAuth::None,
                    (Some(_), None) => return Err(Invalid::new("password", "is required with `username` (or leave both out for a relay without sign-in)")),
                    (None, Some(_)) => return Err(Invalid::new("username", "is required with `password`")),
                };
                (auth, None, None)
            }
            Some("xoauth2") => {
                let username = username.ok_or_else(|| Invalid::new("username", "is required with `auth: xoauth2`: the mailbox the app sends as"))?;
                let (credentials, authority) = client_credentials(config, SCOPE)?;
                (MailAuth::XOAuth2 { username }, Some(credentials), Some(authority))
            }
            Some(_) => return Err(Invalid::new("auth", "must be `plain` or `xoauth2`")),
        };
        Ok(Self { port, tls, auth, from: from.to_string(), from_domain, to, credentials, authority, incidents: settings::incidents(config)? })
    }
}

impl Prepared for EmailChannel {
    fn request(&self, target: &Target, items: &[Item<'_>], sending: Sending<'_>) -> Request {
        let item = &items[0];
        let payload = parse_payload(item.payload);
        let message = if is_notification(&payload) { render_group(&payload) } else { render(&payload) };
        let thread = item.incident.and_then(|incident| incident.thread.as_ref());
        let subject = match thread {
            Some(thread) => format!("Re: {}", thread.subject),
            None => message.subject,
        };
        let mail = Mail {
            server: MailServer { host: target.url.clone(), port: self.port, tls: self.tls, auth: self.auth.clone() },
            message_id: format!("<{}@{}>", item.delivery_id, self.from_domain),
            subject,
            from: self.from.clone(),
            to: self.to.clone(),
            in_reply_to: thread.map(|t| t.message_id.clone()),
            date_ms: sending.now,
            text: message.text,
            html: message.html,
        };
        Request { transport: Transport::Email(mail), carries: 1 }
    }

    fn credentials(&self) -> Option<ClientCredentials> {
        self.credentials.clone()
    }

    fn incidents(&self) -> Option<IncidentSettings> {
        Some(self.incidents.clone())
    }

    /// The first message sent for an incident starts its thread.
    fn wrote(&self, item: &Item<'_>, transport: &Transport) -> Wrote {
        let thread = match (item.incident, transport) {
            (Some(incident), Transport::Email(mail)) if incident.thread.is_none() => Some(MailThread { message_id: mail.message_id.clone(), subject: mail.subject.clone() }),
            _ => None,
        };
        Wrote { ticket: None, thread }
    }

    fn filled_in(&self) -> Config {
        let mut filled = settings::incidents_stored(&self.incidents);
        filled.insert("port".into(), Value::from(self.port));
        let tls = match self.tls {
            MailTls::StartTls => "starttls",
            MailTls::Implicit => "implicit",
            MailTls::None => "none",
        };
        filled.insert("tls".into(), Value::from(tls));
        let auth = if matches!(self.auth, MailAuth::XOAuth2 { .. }) { "xoauth2" } else { "plain" };
        filled.insert("auth".into(), Value::from(auth));
        filled.insert("to".into(), Value::from(self.to.clone()));
        if let Some(authority) = &self.authority {
            filled.insert("authority".into(), Value::from(authority.clone()));
        }
        filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::ChannelKind;
    use crate::domain::channel::CustomHeaders;
    use crate::domain::incident::{IncidentKey, IncidentView, MailThread};
    use serde_json::json;

    fn config(value: Value) -> Config {
        value.as_object().cloned().unwrap()
    }

    fn target(settings: Value) -> Target {
        let kind = ChannelKind::parse("type", "email").unwrap();
        Target::new("ch_1".into(), kind, "smtp.contoso.com".into(), CustomHeaders::default(), Vec::new(), config(settings)).unwrap()
    }

    fn mail(target: &Target, payload: &str, incident: Option<&IncidentView>) -> Mail {
        let payload = actix_web::web::Bytes::from(payload.to_string());
        let item = Item { msg_id: "evt_1", delivery_id: "dlv_01ABC", payload: &payload, incident };
        match target.request(&[item], Sending { now: 0, host: "here" }).transport {
            Transport::Email(mail) => mail,
            other => panic!("not a mail: {other:?}"),
        }
    }

    #[test]
    fn settings_are_parsed_with_their_defaults_and_refused_by_name() {
        let parsed = EmailChannel::parse(&config(json!({"from": "alerts@contoso.com", "to": "soc@contoso.com; Ops <ops@contoso.com>"})));
        let parsed = parsed.unwrap_err();
        assert_eq!(parsed.field, "to", "a display name is not an address: {parsed:?}");
        let parsed = EmailChannel::parse(&config(json!({"from": "alerts@contoso.com", "to": "soc@contoso.com, ops@contoso.com", "username": "alerts@contoso.com", "password": "pw"}))).unwrap();
        assert_eq!((parsed.port, parsed.tls), (587, MailTls::StartTls));
        assert_eq!(parsed.to, ["soc@contoso.com", "ops@contoso.com"]);
        let implicit = EmailChannel::parse(&config(json!({"from": "a@b.example", "to": ["c@d.example"], "tls": "implicit"}))).unwrap();
        assert_eq!((implicit.port, implicit.auth.clone()), (465, MailAuth::None));
        for (bad, field) in [
            (json!({"from": "not an address", "to": ["c@d.example"]}), "from"),
            (json!({"from": "a@b.example", "to": []}), "to"),
            (json!({"from": "a@b.example", "to": ["c@d.example", 3]}), "to[1]"),
            (json!({"from": "a@b.example", "to": ["c@d.example"], "tls": "ssl"}), "tls"),
            (json!({"from": "a@b.example", "to": ["c@d.example"], "port": 70000}), "port"),
            (json!({"from": "a@b.example", "to": ["c@d.example"], "username": "u"}), "password"),
            (json!({"from": "a@b.example", "to": ["c@d.example"], "auth": "xoauth2", "username": "a@b.example"}), "directory_id"),
            (json!({"from": "a@b.example", "to": ["c@d.example"], "auth": "cram"}), "auth"),
        ] {
            assert_eq!(EmailChannel::parse(&config(bad.clone())).unwrap_err().field, field, "{bad}");
        }
        let xoauth2 = EmailChannel::parse(&config(json!({"from": "a@b.example", "to": ["c@d.example"], "auth": "xoauth2", "username": "a@b.example",
            "directory_id": "contoso.onmicrosoft.com", "client_id": "00000000-0000-0000-0000-000000000001", "client_secret": "s3cret"}))).unwrap();
        let credentials = xoauth2.credentials.unwrap();
        assert_eq!(credentials.token_url, "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
        assert_eq!(credentials.scope, SCOPE);
    }

    #[test]
    fn a_first_message_has_its_own_subject_and_a_message_id_from_the_delivery() {
        let target = target(json!({"from": "alerts@contoso.com", "to": ["soc@contoso.com"]}));
        let mail = mail(&target, &crate::domain::payload::render_test("evt_1"), None);
        assert_eq!(mail.message_id, "<dlv_01ABC@contoso.com>");
        assert_eq!(mail.subject, "[SPScan TEST] HIGH: External share created (SPScan test tenant)");
        assert_eq!(mail.in_reply_to, None);
        assert_eq!((mail.server.host.as_str(), mail.server.port), ("smtp.contoso.com", 587));
        assert!(mail.text.contains("Principal: outsider@example.net"), "{}", mail.text);
        assert!(mail.html.contains("<th style=\"text-align:left;padding:2px 12px 2px 0;vertical-align:top\">Principal</th>"), "{}", mail.html);
    }

    #[test]
    fn a_later_message_of_an_incident_replies_to_its_first() {
        let target = target(json!({"from": "alerts@contoso.com", "to": ["soc@contoso.com"]}));
        let incident = IncidentView {
            thread: Some(MailThread { message_id: "<dlv_first@contoso.com>".into(), subject: "[SPScan] MEDIUM: External share created (Contoso)".into() }),
            ..IncidentView::new(IncidentKey::from_value(&json!({"/tenant/id": "contoso"})), "spscan-0123456789abcdef0123".into(), 0)
        };
        let mail = mail(&target, &crate::domain::payload::render_test("evt_2"), Some(&incident));
        assert_eq!(mail.in_reply_to.as_deref(), Some("<dlv_first@contoso.com>"));
        assert_eq!(mail.subject, "Re: [SPScan] MEDIUM: External share created (Contoso)");
        assert_eq!(mail.message_id, "<dlv_01ABC@contoso.com>", "its own id");
        assert!(mail.text.starts_with("HIGH: External share created"), "the severity now is in the body: {}", mail.text);
    }

    #[test]
    fn smtp_replies_are_judged_as_specified() {
        assert_eq!(Email.judge(250, "DATA: 250 2.0.0 OK"), Verdict::Delivered);
        assert!(matches!(Email.judge(451, "DATA: 451 4.7.1 try later"), Verdict::Retry(_)));
        assert!(matches!(Email.judge(421, "RCPT TO: 421 closing"), Verdict::Retry(_)));
        assert!(matches!(Email.judge(550, "RCPT TO: 550 5.1.1 no such user"), Verdict::Final(_)));
        assert!(matches!(Email.judge(535, "AUTH PLAIN: 535 5.7.8 bad"), Verdict::Final(m) if m.contains("`username` and `password`")));
        assert!(matches!(Email.judge(535, "AUTH XOAUTH2: 535 5.7.3"), Verdict::Final(m) if m.contains("SMTP.SendAsApp")));
    }
}
