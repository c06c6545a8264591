//! The SMTP transport (the `email` type's [`Mail`]): the server's name is resolved under the
//! outbound guard and the connection is made to the addresses checked (no second lookup), with
//! TLS verifying the host name the channel gave (`STARTTLS`, or TLS from the first byte); a
//! channel without TLS is only sent to hosts `ALLOWED_TARGET_NETWORKS` names. The router signs
//! in with `PLAIN` (or `LOGIN`) or `XOAUTH2` (the access token the exchange fetched), then sends
//! one transaction per message, its recipients one by one: the message is accepted when any
//! recipient is. Connections are kept for the next message to the same server as the same
//! user (checked with `NOOP` before reuse), at most [`IDLE_MAX`] each, for [`IDLE_FOR`].
//!
//! What the server replied is an [`Answer`] (code, and the reply after the command it answered,
//! `RCPT TO: 550 5.1.1 …`) that the channel's type judges; a connection, TLS or name failure is
//! a failed attempt like HTTP's. The message is built here (`lettre`), so the delivery page can
//! show exactly what was sent ([`Smtp::shown`]).
//!
//! Test certificates: an embedding program or a test may add roots the SMTP transport trusts
//! besides the public ones ([`trust_root`], process-wide); the router itself never does.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Mail as MailCommand, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::Error as SmtpError;

use super::names::{guard, Names};
use super::shown::{self, SentRequest};
use super::{failure, left, Answer, USER_AGENT_VALUE};
use crate::channels::{Mail, MailAuth, MailTls, MASK};
use crate::domain::attempt::{excerpt_of, AttemptOutcome};
use crate::domain::network::TargetPolicy;
use crate::domain::retry::ErrorKind;

/// Most idle connections kept per server and user.
pub const IDLE_MAX: usize = 2;
/// How long an idle connection is kept.
pub const IDLE_FOR: Duration = Duration::from_secs(60);

/// How long closing a connection (`QUIT`) or checking an idle one (`NOOP`) may take.
const CLOSE_WITHIN: Duration = Duration::from_secs(2);

/// Ends a connection politely (`QUIT`), without waiting long for a server that stopped answering.
async fn close(mut connection: AsyncSmtpConnection) {
    let _ = actix_web::rt::time::timeout(CLOSE_WITHIN, connection.abort()).await;
}

/// Roots trusted besides the public ones (PEM), for every SMTP connection of this process.
static EXTRA_ROOTS: RwLock<Vec<Vec<u8>>> = RwLock::new(Vec::new());

/// Trusts a root certificate (PEM) for SMTP servers, besides the public roots: for tests, and
/// programs embedding the router with a private mail server. `Err`: it is not a certificate.
pub fn trust_root(pem: &[u8]) -> Result<(), String> {
    Certificate::from_pem(pem).map_err(|e| format!("not a PEM certificate: {e}"))?;
    EXTRA_ROOTS.write().unwrap_or_else(|p| p.into_inner()).push(pem.to_vec());
    Ok(())
}

/// Idle connections by server, user and credential.
type Idle = Rc<RefCell<HashMap<String, Vec<(Instant, AsyncSmtpConnection)>>>>;

/// The SMTP client of one [`super::Outbound`].
#[derive(Clone)]
pub struct Smtp {
    targets: Arc<TargetPolicy>,
    names: Names,
    timeout: Duration,
    idle: Idle,
}

impl Smtp {
    pub fn new(timeout: Duration, targets: Arc<TargetPolicy>, names: Names) -> Self {
        Self { targets, names, timeout, idle: Idle::default() }
    }

    /// Sends one message: the server's reply that decides it, or why none came.
    pub async fn send(&self, mail: &Mail, bearer: Option<&str>, deadline: Instant) -> Result<Answer, AttemptOutcome> {
        let message = build(mail).map_err(|why| failure(ErrorKind::Protocol, format!("the message could not be built: {why}")))?;
        let key = pool_key(mail, bearer);
        let mut connection = match self.take_idle(&key, deadline).await {
            Some(connection) => connection,
            None => match actix_web::rt::time::timeout(left(deadline), self.connect(mail, bearer)).await {
                Err(_) => return Err(self.timed_out()),
                Ok(Err(Stop::Failed(failed))) => return Err(failed),
                Ok(Err(Stop::Replied(answer))) => return Ok(answer),
                Ok(Ok(connection)) => connection,
            },
        };
        let sent = actix_web::rt::time::timeout(left(deadline), transaction(&mut connection, &message)).await;
        match sent {
            Err(_) => {
                close(connection).await;
                Err(self.timed_out())
            }
            Ok(Ok(answer)) => {
                self.keep(key, connection);
                Ok(answer)
            }
            Ok(Err(Stop::Replied(answer))) => {
                // The transaction ended in a refusal: start the next one clean.
                close(connection).await;
                Ok(answer)
            }
            Ok(Err(Stop::Failed(failed))) => {
                close(connection).await;
                Err(failed)
            }
        }
    }

    fn timed_out(&self) -> AttemptOutcome {
        failure(ErrorKind::Timeout, format!("the mail server did not answer within {}", humantime::format_duration(self.timeout)))
    }

    /// An idle connection to the same server as the same user that still answers `NOOP`.
    async fn take_idle(&self, key: &str, deadline: Instant) -> Option<AsyncSmtpConnection> {
        loop {
            let (since, mut connection) = self.idle.borrow_mut().get_mut(key)?.pop()?;
            let fresh = since.elapsed() < IDLE_FOR && !connection.has_broken();
            if fresh && actix_web::rt::time::timeout(left(deadline).min(CLOSE_WITHIN), connection.test_connected()).await.unwrap_or(false) {
                return Some(connection);
            }
            close(connection).await;
        }
    }

    fn keep(&self, key: String, connection: AsyncSmtpConnection) {
        if connection.has_broken() {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        let kept = idle.entry(key).or_default();
        if kept.len() < IDLE_MAX {
            kept.push((Instant::now(), connection));
        }
    }

    /// A new connection, encrypted and signed in as the channel says.
    async fn connect(&self, mail: &Mail, bearer: Option<&str>) -> Result<AsyncSmtpConnection, Stop> {
        let server = &mail.server;
        let names = self.names.clone();
        let host = server.host.clone();
        let port = server.port;
        let resolved = actix_web::rt::task::spawn_blocking(move || names.0.lookup(&host, port))
            .await
            .map_err(|e| Stop::Failed(failure(ErrorKind::Dns, format!("{} could not be resolved: {e}", server.host))))?
            .map_err(|e| Stop::Failed(failure(ErrorKind::Dns, format!("{} could not be resolved: {e}", server.host))))?;
        let addrs: Vec<SocketAddr> = guard(&server.host, resolved, &self.targets).map_err(|e| Stop::Failed(failure(ErrorKind::BlockedTarget, e.0)))?;
        if addrs.is_empty() {
            return Err(Stop::Failed(failure(ErrorKind::Dns, format!("{} has no address", server.host))));
        }
        if server.tls == MailTls::None {
            if let Some(addr) = addrs.iter().find(|a| !self.targets.lists(a.ip())) {
                return Err(Stop::Failed(failure(
                    ErrorKind::BlockedTarget,
                    format!("{} resolves to {}, which ALLOWED_TARGET_NETWORKS does not name: mail without TLS (`tls: none`) only goes to networks it names", server.host, addr.ip()),
                )));
            }
        }
        let tls = || -> Result<TlsParameters, Stop> {
            let mut builder = TlsParameters::builder(server.host.clone());
            for pem in EXTRA_ROOTS.read().unwrap_or_else(|p| p.into_inner()).iter() {
                if let Ok(root) = Certificate::from_pem(pem) {
                    builder = builder.add_root_certificate(root);
                }
            }
            builder.build_rustls().map_err(|e| Stop::Failed(failure(ErrorKind::Tls, format!("TLS could not be set up: {e}"))))
        };
        let hello = ClientId::Domain("spscan-router".into());
        let implicit = if server.tls == MailTls::Implicit { Some(tls()?) } else { None };
        let mut connection = AsyncSmtpConnection::connect_tokio1(&addrs[..], Some(self.timeout), &hello, implicit, None)
            .await
            .map_err(|e| connect_failure(&server.host, server.port, e))?;
        if server.tls == MailTls::StartTls {
            if !connection.can_starttls() {
                close(connection).await;
                return Err(Stop::Failed(failure(
                    ErrorKind::Tls,
                    format!("{} does not offer STARTTLS; set `tls` to `implicit` (port 465) if it takes TLS from the start", server.host),
                )));
            }
            connection.starttls(tls()?, &hello).await.map_err(|e| connect_failure(&server.host, server.port, e))?;
        }
        let (mechanisms, credentials, said) = match &server.auth {
            MailAuth::None => return Ok(connection),
            MailAuth::Password { username, password } => (vec![Mechanism::Plain, Mechanism::Login], Credentials::new(username.clone(), password.clone()), "AUTH PLAIN"),
            MailAuth::XOAuth2 { username } => (vec![Mechanism::Xoauth2], Credentials::new(username.clone(), bearer.unwrap_or_default().to_string()), "AUTH XOAUTH2"),
        };
        match connection.auth(&mechanisms, &credentials).await {
            Ok(_) => Ok(connection),
            Err(e) => {
                close(connection).await;
                Err(match refused(said, e) {
                    Ok(stop) | Err(stop) => stop,
                })
            }
        }
    }

    /// The message as the delivery page shows it: the server, the headers and the message as
    /// sent (its parts encoded as they went out), with no credential (the password and the token
    /// only ever travel in `AUTH`, which is not shown).
    pub fn shown(mail: &Mail) -> SentRequest {
        let scheme = if mail.server.tls == MailTls::Implicit { "smtps" } else { "smtp" };
        let mut headers = vec![
            ("From".to_string(), mail.from.clone()),
            ("To".to_string(), mail.to.join(", ")),
            ("Subject".to_string(), mail.subject.clone()),
            ("Message-ID".to_string(), mail.message_id.clone()),
        ];
        if let Some(parent) = &mail.in_reply_to {
            headers.push(("In-Reply-To".to_string(), parent.clone()));
            headers.push(("References".to_string(), parent.clone()));
        }
        let (user, how) = match &mail.server.auth {
            MailAuth::None => (None, "none"),
            MailAuth::Password { username, .. } => (Some(username), "PLAIN"),
            MailAuth::XOAuth2 { username } => (Some(username), "XOAUTH2"),
        };
        let tls = match mail.server.tls {
            MailTls::StartTls => "STARTTLS",
            MailTls::Implicit => "TLS",
            MailTls::None => "none",
        };
        headers.push(("X-SMTP-Encryption".to_string(), tls.to_string()));
        headers.push(("X-SMTP-Auth".to_string(), user.map(|u| format!("{how} as {u} (credential {MASK})")).unwrap_or_else(|| how.to_string())));
        let body = formatted(mail);
        SentRequest {
            method: "SMTP",
            url: format!("{scheme}://{}:{}", mail.server.host, mail.server.port),
            headers,
            body: Some(shown::head(&String::from_utf8_lossy(&body), shown::BODY_KEPT).to_string()),
            body_bytes: body.len(),
            answer_headers: None,
        }
    }
}

/// Why a connection or a transaction stopped: a reply to judge, or a failure.
enum Stop {
    Replied(Answer),
    Failed(AttemptOutcome),
}

/// The key of a connection that may be reused: the server, how it is reached and as whom (with
/// a hash of the credential, so a changed password or a new token opens a new connection).
fn pool_key(mail: &Mail, bearer: Option<&str>) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let user = match &mail.server.auth {
        MailAuth::None => String::new(),
        MailAuth::Password { username, password } => {
            password.hash(&mut hasher);
            username.clone()
        }
        MailAuth::XOAuth2 { username } => {
            bearer.hash(&mut hasher);
            username.clone()
        }
    };
    format!("{}:{}:{:?}:{user}:{:x}", mail.server.host, mail.server.port, mail.server.tls, hasher.finish())
}

/// The message as it goes out (headers and both parts, encoded), or why it cannot be built.
pub fn formatted(mail: &Mail) -> Vec<u8> {
    build(mail).map(|m| m.formatted()).unwrap_or_else(|why| format!("the message could not be built: {why}").into_bytes())
}

/// The message as `lettre` formats it: multipart/alternative, plain text then HTML. It is built
/// the same way each time from the same [`Mail`] (its `Date` and its boundary come from the
/// mail), so what the delivery page shows is byte for byte what was sent. The boundary cannot
/// be forged by event data: every value is on one line after its label.
fn build(mail: &Mail) -> Result<lettre::Message, String> {
    use sha2::Digest;
    let from: Mailbox = mail.from.parse().map_err(|e| format!("from: {e}"))?;
    let mut builder = lettre::Message::builder()
        .from(from)
        .subject(mail.subject.clone())
        .message_id(Some(mail.message_id.clone()))
        .user_agent(USER_AGENT_VALUE.to_string())
        .date(std::time::UNIX_EPOCH + Duration::from_millis(mail.date_ms.max(0) as u64));
    for to in &mail.to {
        builder = builder.to(to.parse().map_err(|e| format!("to: {e}"))?);
    }
    if let Some(parent) = &mail.in_reply_to {
        builder = builder.in_reply_to(parent.clone()).references(parent.clone());
    }
    let digest = sha2::Sha256::digest(mail.message_id.as_bytes());
    let boundary: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    let parts = MultiPart::alternative()
        .boundary(format!("spscan-{boundary}"))
        .singlepart(SinglePart::plain(mail.text.clone()))
        .singlepart(SinglePart::html(mail.html.clone()));
    builder.multipart(parts).map_err(|e| e.to_string())
}

/// One transaction: `MAIL FROM`, a `RCPT TO` per recipient (the message goes on when any is
/// accepted), `DATA` and the message.
async fn transaction(connection: &mut AsyncSmtpConnection, message: &lettre::Message) -> Result<Answer, Stop> {
    let envelope = message.envelope();
    let mail_from = connection.command(MailCommand::new(envelope.from().cloned(), Vec::new())).await;
    mail_from.map_err(|e| refused_or_failed("MAIL FROM", e))?;
    let mut refusals: Vec<(String, Answer)> = Vec::new();
    let mut accepted = 0;
    for to in envelope.to() {
        match connection.command(Rcpt::new(to.clone(), Vec::new())).await {
            Ok(_) => accepted += 1,
            Err(e) => match refused(&format!("RCPT TO <{to}>"), e) {
                Ok(Stop::Replied(answer)) => refusals.push((to.to_string(), answer)),
                Ok(stop) | Err(stop) => return Err(stop),
            },
        }
    }
    if accepted == 0 {
        // Every recipient refused: a temporary refusal decides (it may pass later), else the first.
        let index = refusals.iter().position(|(_, a)| (400..500).contains(&a.code)).unwrap_or(0);
        return Err(Stop::Replied(refusals.swap_remove(index).1));
    }
    connection.command(lettre::transport::smtp::commands::Data).await.map_err(|e| refused_or_failed("DATA", e))?;
    let reply = connection.message(&message.formatted()).await.map_err(|e| refused_or_failed("end of DATA", e))?;
    let code = u16::from(reply.code());
    let mut said = format!("end of DATA: {code} {}", reply.message().collect::<Vec<_>>().join(" "));
    if !refusals.is_empty() {
        let refused: Vec<String> = refusals.iter().map(|(to, a)| format!("{to} ({})", a.status)).collect();
        said.push_str(&format!("; refused: {}", refused.join(", ")));
    }
    Ok(reply_answer(code, said))
}

/// A refusal the server replied with, as an answer to judge; anything else as a failure.
fn refused_or_failed(command: &str, e: SmtpError) -> Stop {
    match refused(command, e) {
        Ok(stop) | Err(stop) => stop,
    }
}

/// `Ok(Stop::Replied)` when the server replied with a refusal (4xx, 5xx) to `command`;
/// `Err(Stop::Failed)` for a connection or protocol failure.
fn refused(command: &str, e: SmtpError) -> Result<Stop, Stop> {
    match e.status() {
        Some(code) => {
            let code = u16::from(code);
            let text = e.to_string();
            // `permanent error (550): 5.1.1 no such user` → the reply's text.
            let text = text.split_once("): ").map(|(_, t)| t.to_string()).unwrap_or(text);
            Ok(Stop::Replied(reply_answer(code, format!("{command}: {code} {text}"))))
        }
        None if e.is_timeout() => Err(Stop::Failed(failure(ErrorKind::Timeout, format!("{command}: the mail server stopped answering ({e})")))),
        None if e.is_tls() => Err(Stop::Failed(failure(ErrorKind::Tls, format!("{command}: {e}")))),
        None => Err(Stop::Failed(failure(ErrorKind::Connect, format!("{command}: {e}")))),
    }
}

/// A server's reply as an answer: `SMTP 550`, and what it said after the command it answered.
fn reply_answer(code: u16, said: String) -> Answer {
    Answer { code, status: format!("SMTP {code}"), refused: ErrorKind::SmtpReply, retry_after: None, excerpt: Some(excerpt_of(said.as_bytes())), headers: Vec::new(), body: None }
}

/// The TLS error somewhere in `e`'s chain of causes (lettre reports a refused certificate as a
/// connection error wrapping it).
fn tls_error(e: &SmtpError) -> Option<String> {
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(tls) = inner.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).and_then(|i| i.downcast_ref::<rustls::Error>()) {
            return Some(tls.to_string());
        }
        source = inner.source();
    }
    None
}

/// A failure to connect, encrypt or greet.
fn connect_failure(host: &str, port: u16, e: SmtpError) -> Stop {
    if e.status().is_some() {
        return refused_or_failed("greeting", e);
    }
    if let Some(tls) = tls_error(&e) {
        return Stop::Failed(failure(ErrorKind::Tls, format!("{host}:{port}: TLS failed ({tls}); the server's certificate must be valid for {host}")));
    }
    if e.is_tls() {
        return Stop::Failed(failure(ErrorKind::Tls, format!("{host}:{port}: {e}")));
    }
    let kind = if e.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Connect };
    let why = e.to_string();
    Stop::Failed(failure(kind, format!("{host}:{port}: {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::MailServer;

    fn mail(auth: MailAuth, in_reply_to: Option<&str>) -> Mail {
        Mail {
            server: MailServer { host: "smtp.contoso.com".into(), port: 587, tls: MailTls::StartTls, auth },
            message_id: "<dlv_1@contoso.com>".into(),
            subject: "[SPScan] HIGH: External share created (Contoso)".into(),
            from: "alerts@contoso.com".into(),
            to: vec!["soc@contoso.com".into(), "ops@contoso.com".into()],
            in_reply_to: in_reply_to.map(str::to_string),
            date_ms: 1_764_950_000_000,
            text: "HIGH: External share created".into(),
            html: "<p>HIGH</p>".into(),
        }
    }

    #[test]
    fn a_message_is_multipart_with_its_threading_headers() {
        let formatted = String::from_utf8(build(&mail(MailAuth::None, Some("<dlv_0@contoso.com>"))).unwrap().formatted()).unwrap();
        for header in ["Message-ID: <dlv_1@contoso.com>", "In-Reply-To: <dlv_0@contoso.com>", "References: <dlv_0@contoso.com>", "multipart/alternative", "text/plain", "text/html"] {
            assert!(formatted.contains(header), "{header} in {formatted}");
        }
    }

    #[test]
    fn what_is_shown_never_holds_a_credential() {
        let shown = Smtp::shown(&mail(MailAuth::Password { username: "alerts@contoso.com".into(), password: "hunter2-secret".into() }, None));
        let all = format!("{shown:?}");
        assert!(!all.contains("hunter2"), "{all}");
        assert_eq!(shown.url, "smtp://smtp.contoso.com:587");
        assert!(shown.headers.contains(&("Subject".into(), "[SPScan] HIGH: External share created (Contoso)".into())));
        assert!(shown.body.unwrap().contains("Message-ID: <dlv_1@contoso.com>"));
    }
}
