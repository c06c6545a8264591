//! The outbound HTTP exchange: send the request a channel's type built (adding the router's
//! headers, the channel's custom headers and any access token) with awc, and turn whatever
//! happens into an [`AttemptOutcome`] with an error class.
//!
//! One exchange is bounded by the delivery timeout as a whole (connect, send, answer, excerpt).
//! The status line decides the outcome: once it has arrived, reading the excerpt only gets the
//! time that is left, and a body that stalls or breaks never turns the answer into a failure.
//! Redirects are never followed: a 3xx is a failure of kind `redirect`.
//!
//! Outbound targets are guarded (SPEC section 9): a host name is resolved by [`GuardedResolver`],
//! which refuses the name if the [`TargetPolicy`] refuses any address it resolves to (see
//! [`guard`]), and hands the checked addresses straight to the TCP connector, so what was checked
//! is what is connected to (no second lookup, no DNS rebinding). An IP literal is checked before
//! anything is sent.

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use awc::error::{ConnectError, SendRequestError};
use awc::http::header::{CONTENT_TYPE, USER_AGENT};
use awc::http::StatusCode;
use actix_web::HttpMessage;
use futures_util::StreamExt;

use crate::channels::token::{self, TokenCache};
use crate::channels::{ClientCredentials, Item, Request, Sending, Verdict};
use crate::channels::Target;
use crate::domain::attempt::{excerpt_of, AttemptOutcome, Consequence, EXCERPT_BYTES};
use crate::domain::network::TargetPolicy;
use crate::domain::retry::{parse_retry_after, ErrorKind};
use crate::domain::time::now_ms;

/// `User-Agent` of every request.
pub const USER_AGENT_VALUE: &str = concat!("SPScan-Alert-Router/", env!("CARGO_PKG_VERSION"));

/// Most bytes of an answer read (to keep the connection reusable); the rest is dropped.
const DRAIN_BYTES: usize = 64 * 1024;


/// A name whose addresses the target policy refuses.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BlockedTarget(pub String);

/// Turns a host name into addresses. The system resolver in production; tests and embedding
/// programs may put their own in [`crate::settings::Settings::names`].
pub trait NameLookup: Send + Sync {
    /// Blocking: runs on the blocking pool.
    fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
}

/// The operating system's resolver (`getaddrinfo`).
#[derive(Debug, Default)]
pub struct SystemNames;

impl NameLookup for SystemNames {
    fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).map(Iterator::collect)
    }
}

/// A fixed table of names (tests; programs that pin their receivers' addresses). A name not in
/// it does not resolve.
#[derive(Debug, Default, Clone)]
pub struct FixedNames(pub std::collections::HashMap<String, Vec<IpAddr>>);

impl NameLookup for FixedNames {
    fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        match self.0.get(host) {
            Some(ips) => Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect()),
            None => Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{host} is not a known name"))),
        }
    }
}

/// The resolver deliveries use: cheap to clone, shared by every channel.
#[derive(Clone)]
pub struct Names(pub Arc<dyn NameLookup>);

impl Default for Names {
    fn default() -> Self {
        Self(Arc::new(SystemNames))
    }
}

impl std::fmt::Debug for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Names")
    }
}

/// Whether a name may be connected to: only if the policy allows every address it resolves to.
/// A name with one refused address among allowed ones is refused as a whole, so which address
/// the connection ends up on can never decide whether a refused network is reached.
pub fn guard(host: &str, addrs: Vec<SocketAddr>, targets: &TargetPolicy) -> Result<Vec<SocketAddr>, BlockedTarget> {
    if let Some((addr, reason)) = addrs.iter().find_map(|addr| targets.check(addr.ip()).err().map(|r| (addr, r))) {
        return Err(BlockedTarget(format!(
            "{host} resolves to {}, which {}; not allowed by ALLOWED_TARGET_NETWORKS",
            addr.ip(),
            reason.0
        )));
    }
    Ok(addrs)
}

/// Resolves host names and refuses those that reach a blocked address.
pub struct GuardedResolver {
    targets: Arc<TargetPolicy>,
    names: Names,
}

impl actix_tls::connect::Resolve for GuardedResolver {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> futures_util::future::LocalBoxFuture<'a, Result<Vec<SocketAddr>, Box<dyn StdError>>> {
        Box::pin(async move {
            let names = self.names.clone();
            let name = host.to_string();
            let addrs = actix_web::rt::task::spawn_blocking(move || names.0.lookup(&name, port))
                .await
                .map_err(|e| Box::new(e) as Box<dyn StdError>)??;
            guard(host, addrs, &self.targets).map_err(|e| Box::new(e) as Box<dyn StdError>)
        })
    }
}

/// Sends deliveries: one keep-alive HTTP client (up to `connections` connections, no
/// redirects, guarded resolution) and the policy and timeout it applies.
#[derive(Clone)]
pub struct Outbound {
    client: awc::Client,
    targets: Arc<TargetPolicy>,
    timeout: Duration,
    /// This router instance's id (Splunk's `host`).
    host: Arc<str>,
    tokens: TokenCache,
}

/// What one request did: its outcome, and how many of the deliveries offered it carried.
#[derive(Debug, Clone)]
pub struct Sent {
    pub outcome: AttemptOutcome,
    pub carried: usize,
}

impl Outbound {
    pub fn new(timeout: Duration, connections: usize, targets: Arc<TargetPolicy>, names: Names, host: &str) -> Self {
        install_crypto_provider();
        let resolver = actix_tls::connect::Resolver::custom(GuardedResolver { targets: Arc::clone(&targets), names });
        let tcp = actix_tls::connect::Connector::new(resolver).service();
        let connector = awc::Connector::new().connector(tcp).timeout(timeout).limit(connections.max(1));
        let client = awc::Client::builder()
            .connector(connector)
            .disable_redirects()
            .disable_timeout()
            .no_default_headers()
            .finish();
        Self { client, targets, timeout, host: Arc::from(host), tokens: TokenCache::default() }
    }

    /// Delivers `payload` (an event's section 4 payload) to the target once, as the target's
    /// channel type builds it for message id `msg_id`, and reports what happened.
    pub async fn send(&self, target: &Target, msg_id: &str, payload: Bytes) -> AttemptOutcome {
        self.send_batch(target, &[Item { msg_id, payload: &payload }]).await.outcome
    }

    /// Delivers as many of `items` as the target's type puts in one request (at least the first)
    /// and reports what happened to that request.
    pub async fn send_batch(&self, target: &Target, items: &[Item<'_>]) -> Sent {
        let started_at = now_ms();
        let clock = Instant::now();
        // One attempt, token and all, within the delivery timeout.
        let deadline = clock + self.timeout;
        let channel_type = target.kind.channel_type();
        let request = channel_type.request(target, items, Sending { now: started_at, host: &self.host });
        let carried = request.carries.clamp(1, items.len());
        let done = |outcome: AttemptOutcome| Sent { outcome: AttemptOutcome { started_at, duration_ms: clock.elapsed().as_millis() as i64, ..outcome }, carried };
        if let Some(refusal) = target.host_ip.and_then(|ip| self.targets.check(ip).err().map(|r| (ip, r))) {
            let why = format!("{} {}; not allowed by ALLOWED_TARGET_NETWORKS", refusal.0, refusal.1 .0);
            return done(failure(ErrorKind::BlockedTarget, why));
        }
        let mut bearer = None;
        if let Some(credentials) = &target.credentials {
            match self.token(credentials, None, deadline).await {
                Ok(token) => bearer = Some(token),
                Err(failed) => return done(failed),
            }
        }
        let mut answer = match self.exchange(target, &request, bearer.as_deref(), deadline).await {
            Ok(answer) => answer,
            Err(failed) => return done(failed),
        };
        let mut verdict = channel_type.judge(answer.status.as_u16(), answer.excerpt.as_deref().unwrap_or_default());
        if let (Verdict::Unauthorized, Some(credentials)) = (&verdict, &target.credentials) {
            // The token was refused: one new token (shared with every request it was refused to),
            // one more try.
            let token = match self.token(credentials, bearer.as_deref(), deadline).await {
                Ok(token) => token,
                Err(failed) => return done(failed),
            };
            answer = match self.exchange(target, &request, Some(&token), deadline).await {
                Ok(answer) => answer,
                Err(failed) => return done(failed),
            };
            verdict = match channel_type.judge(answer.status.as_u16(), answer.excerpt.as_deref().unwrap_or_default()) {
                Verdict::Unauthorized => Verdict::Retry("the receiver refused a freshly issued token too".into()),
                other => other,
            };
        }
        done(answer.outcome(verdict))
    }

    /// A token for the grant: the cached one unless it is the one just `refused`, or a new one
    /// from the token endpoint (which passes the outbound guard like any URL). One fetch at a
    /// time per grant; the others wait for it.
    async fn token(&self, credentials: &ClientCredentials, refused: Option<&str>, deadline: Instant) -> Result<String, AttemptOutcome> {
        let asked_at = now_ms();
        let slot = self.tokens.slot(credentials);
        let Ok(mut held) = actix_web::rt::time::timeout(left(deadline), slot.lock()).await else {
            return Err(failure(ErrorKind::Token, format!("no access token within {}", humantime::format_duration(self.timeout))));
        };
        if let Some(token) = token::usable(&held.token, now_ms(), refused) {
            return Ok(token.access_token.clone());
        }
        if let Some((_, failure)) = held.failed.as_ref().filter(|(at, _)| *at >= asked_at) {
            return Err(failure.clone());
        }
        let fetched = self.fetch_token(credentials, deadline).await;
        match &fetched {
            Ok(token) => {
                held.token = Some(token.clone());
                held.failed = None;
            }
            Err(failure) => held.failed = Some((now_ms(), failure.clone())),
        }
        fetched.map(|token| token.access_token)
    }

    /// A bearer token for a grant (cached; one fetch at a time per grant), for requests the
    /// router makes on its own behalf (the Office 365 content fetcher). `refused`: the token the
    /// API just refused, to be replaced.
    pub async fn bearer(&self, credentials: &ClientCredentials, refused: Option<&str>) -> Result<String, String> {
        let deadline = Instant::now() + self.timeout;
        self.token(credentials, refused, deadline).await.map_err(|failed| failed.error.unwrap_or_else(|| "no access token".into()))
    }

    /// One guarded GET with a bearer token, within the timeout: the answer's status, its
    /// `NextPageUri` header and up to `max_bytes` of its body (more is an error).
    pub async fn get(&self, url: &str, bearer: &str, max_bytes: usize) -> Result<Fetched, String> {
        let deadline = Instant::now() + self.timeout;
        if let Some((ip, reason)) = literal_ip(url).and_then(|ip| self.targets.check(ip).err().map(|r| (ip, r))) {
            return Err(format!("{ip} {}; not allowed by ALLOWED_TARGET_NETWORKS", reason.0));
        }
        let request = self
            .client
            .get(url)
            .insert_header((USER_AGENT, USER_AGENT_VALUE))
            .insert_header(("authorization", format!("Bearer {bearer}")))
            .send();
        let mut response = match actix_web::rt::time::timeout(left(deadline), request).await {
            Err(_) => return Err(format!("no answer within {}", humantime::format_duration(self.timeout))),
            Ok(Err(err)) => return Err(classify(&err).1),
            Ok(Ok(response)) => response,
        };
        let next_page = response.headers().get("nextpageuri").and_then(|v| v.to_str().ok()).map(str::to_string);
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        let body = match actix_web::rt::time::timeout(left(deadline), response.body().limit(max_bytes)).await {
            Err(_) => return Err(format!("the body did not arrive within {}", humantime::format_duration(self.timeout))),
            Ok(Err(err)) => return Err(format!("the body could not be read: {err}")),
            Ok(Ok(body)) => body,
        };
        Ok(Fetched { status: response.status().as_u16(), next_page, retry_after, body })
    }

    /// One client-credentials request to the token endpoint.
    async fn fetch_token(&self, credentials: &ClientCredentials, deadline: Instant) -> Result<token::Token, AttemptOutcome> {
        let no_token = |why: String| failure(ErrorKind::Token, why);
        if let Some((ip, reason)) = literal_ip(&credentials.token_url).and_then(|ip| self.targets.check(ip).err().map(|r| (ip, r))) {
            return Err(failure(ErrorKind::BlockedTarget, format!("the token endpoint {ip} {}; not allowed by ALLOWED_TARGET_NETWORKS", reason.0)));
        }
        let request = self
            .client
            .post(&credentials.token_url)
            .insert_header((USER_AGENT, USER_AGENT_VALUE))
            .send_form(&token::form(credentials));
        let mut response = match actix_web::rt::time::timeout(left(deadline), request).await {
            Err(_) => return Err(no_token(format!("the token endpoint did not answer within {}", humantime::format_duration(self.timeout)))),
            Ok(Err(err)) => {
                let (kind, message) = classify(&err);
                let kind = if kind == ErrorKind::BlockedTarget { kind } else { ErrorKind::Token };
                return Err(failure(kind, format!("the token endpoint could not be reached: {message}")));
            }
            Ok(Ok(response)) => response,
        };
        let mut body = Vec::new();
        let _ = actix_web::rt::time::timeout(left(deadline), read_excerpt(response.take_payload(), &mut body, DRAIN_BYTES)).await;
        token::read_answer(response.status().as_u16(), &body, now_ms()).map_err(no_token)
    }

    /// Sends a built request once: the answer's status line and excerpt, or why none came.
    async fn exchange(&self, target: &Target, built: &Request, bearer: Option<&str>, deadline: Instant) -> Result<Answer, AttemptOutcome> {
        let mut request = self
            .client
            .post(built.url.as_deref().unwrap_or(&target.url))
            .insert_header((CONTENT_TYPE, "application/json"))
            .insert_header((USER_AGENT, USER_AGENT_VALUE));
        for (name, value) in &built.headers {
            request = request.insert_header((*name, value.as_str()));
        }
        if let Some(token) = bearer {
            request = request.insert_header(("authorization", format!("Bearer {token}")));
        }
        for (name, value) in target.headers.iter() {
            request = request.insert_header((name.as_str(), value.as_str()));
        }
        // The status line must arrive within the timeout; the body then gets what is left of it. A
        // body that is slow or cut short never turns an answer that arrived into a failure.
        let mut response = match actix_web::rt::time::timeout(left(deadline), request.send_body(built.body.clone())).await {
            Err(_) => return Err(failure(ErrorKind::Timeout, format!("no answer within {}", humantime::format_duration(self.timeout)))),
            Ok(Err(err)) => {
                let (kind, message) = classify(&err);
                return Err(failure(kind, message));
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        // Only a receiver that is throttling (429) or unavailable (503) is asked how long to wait.
        let retry_after = [StatusCode::TOO_MANY_REQUESTS, StatusCode::SERVICE_UNAVAILABLE]
            .contains(&status)
            .then(|| response.headers().get("retry-after").and_then(|v| v.to_str().ok()))
            .flatten()
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        let mut read = Vec::new();
        let remaining = deadline.saturating_duration_since(Instant::now());
        let _ = actix_web::rt::time::timeout(remaining, read_excerpt(response.take_payload(), &mut read, EXCERPT_BYTES)).await;
        let excerpt = (!read.is_empty()).then(|| excerpt_of(&read));
        Ok(Answer { status, location, retry_after, excerpt })
    }
}

/// The IP address a URL names literally, if it does (such a host is never resolved, so the guard
/// checks it before anything is sent).
fn literal_ip(url: &str) -> Option<IpAddr> {
    url::Url::parse(url).ok().and_then(|u| match u.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// What a GET of the router's own (`Outbound::get`) answered.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    /// The `NextPageUri` header (the Management Activity API's paging).
    pub next_page: Option<String>,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

/// What a receiver answered: the status line, and the start of the body.
struct Answer {
    status: StatusCode,
    location: Option<String>,
    retry_after: Option<Duration>,
    excerpt: Option<String>,
}

impl Answer {
    /// The attempt's outcome, as the channel type judged the answer.
    fn outcome(self, verdict: Verdict) -> AttemptOutcome {
        let Answer { status, location, retry_after, excerpt } = self;
        let code = Some(status.as_u16());
        let base = AttemptOutcome { status_code: code, response_excerpt: excerpt, ..failure(ErrorKind::HttpStatus, String::new()) };
        if status.is_redirection() {
            let to = location.map(|l| format!(" to {l}")).unwrap_or_default();
            return AttemptOutcome { error_kind: Some(ErrorKind::Redirect), error: Some(format!("HTTP {status}: redirected{to}; redirects are not followed")), ..base };
        }
        let wait = retry_after.map(|d| format!("; asked to wait {}", humantime::format_duration(d))).unwrap_or_default();
        let failed = |why: String, consequence| {
            let error = if why.is_empty() { format!("HTTP {status}{wait}") } else { format!("HTTP {status}: {why}{wait}") };
            AttemptOutcome { retry_after, consequence, error: Some(error), ..base.clone() }
        };
        match verdict {
            Verdict::Delivered => AttemptOutcome { error_kind: None, error: None, ..base },
            Verdict::Retry(why) => failed(why, Consequence::Retry),
            Verdict::Final(why) => failed(why, Consequence::Final),
            // The reason is told with the disabled channel; the attempt keeps the status.
            Verdict::Disable(why) => failed(String::new(), Consequence::DisableChannel(why)),
            Verdict::TooLarge => failed("the receiver refused the request as too large".into(), Consequence::TooLarge),
            // Only types without credentials get here (the others fetched a new token): retried.
            Verdict::Unauthorized => failed(String::new(), Consequence::Retry),
        }
    }
}

/// The time left until `deadline`.
fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// A failed attempt of this kind, for people: `why`. Start and duration are set by the caller.
fn failure(kind: ErrorKind, why: String) -> AttemptOutcome {
    AttemptOutcome {
        started_at: 0,
        duration_ms: 0,
        status_code: None,
        error_kind: Some(kind),
        error: Some(why),
        response_excerpt: None,
        retry_after: None,
        consequence: Consequence::Retry,
    }
}

/// Installs rustls' ring provider for the process (awc's TLS needs one). Idempotent.
pub fn install_crypto_provider() {
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| {
        // Fails only if another provider was installed first, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Reads the first `keep` bytes of an answer into `excerpt`, and drains a little more so the
/// connection can be reused. What was read stays in `excerpt` if this is cut short.
async fn read_excerpt<S>(mut payload: S, excerpt: &mut Vec<u8>, keep: usize)
where
    S: futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin,
{
    let mut read = 0usize;
    while let Some(Ok(chunk)) = payload.next().await {
        if excerpt.len() < keep {
            let take = (keep - excerpt.len()).min(chunk.len());
            excerpt.extend_from_slice(&chunk[..take]);
        }
        read += chunk.len();
        if read >= DRAIN_BYTES {
            break;
        }
    }
}

/// The error class of a failed exchange, and a message for people.
fn classify(err: &SendRequestError) -> (ErrorKind, String) {
    let kind = match err {
        SendRequestError::Timeout => ErrorKind::Timeout,
        SendRequestError::Connect(connect) => match connect {
            ConnectError::Timeout => ErrorKind::Timeout,
            ConnectError::Resolver(e) if e.downcast_ref::<BlockedTarget>().is_some() => {
                return (ErrorKind::BlockedTarget, e.to_string());
            }
            ConnectError::Resolver(_) | ConnectError::NoRecords | ConnectError::Unresolved => ErrorKind::Dns,
            ConnectError::SslIsNotSupported => ErrorKind::Tls,
            ConnectError::Io(io) if is_tls(io) => ErrorKind::Tls,
            _ => ErrorKind::Connect,
        },
        SendRequestError::Send(io) if is_tls(io) => ErrorKind::Tls,
        SendRequestError::Send(_) => ErrorKind::Connect,
        SendRequestError::Response(_) | SendRequestError::Http(_) | SendRequestError::H2(_) => ErrorKind::Protocol,
        _ => ErrorKind::Connect,
    };
    (kind, err.to_string())
}

fn is_tls(io: &std::io::Error) -> bool {
    io.get_ref().is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::ChannelKind;
    use crate::domain::channel::{CustomHeaders, SigningSecret};

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| SocketAddr::new(a.parse().unwrap(), 443)).collect()
    }

    #[test]
    fn a_name_with_any_refused_address_is_refused_whole() {
        let policy = TargetPolicy::parse("127.0.0.1/32").unwrap();
        let mixed = guard("mixed.example", addrs(&["93.184.216.34", "10.0.0.5"]), &policy).unwrap_err();
        assert!(mixed.0.contains("10.0.0.5") && mixed.0.contains("private"), "{mixed}");
        assert!(guard("m.example", addrs(&["127.0.0.1", "127.0.0.2"]), &policy).is_err(), "one outside the allowlist");
        assert_eq!(guard("ok.example", addrs(&["93.184.216.34", "127.0.0.1"]), &policy).unwrap().len(), 2);
    }

    #[test]
    fn a_rotated_out_secret_signs_until_it_expires() {
        let current = SigningSecret::generate();
        let previous = SigningSecret::generate();
        let target = Target::new(
            "ch_1".into(),
            ChannelKind::WEBHOOK,
            "https://[::1]:8443/hook".into(),
            CustomHeaders::default(),
            vec![(current.clone(), None), (previous.clone(), Some(1_000))],
        );
        assert_eq!(target.host_ip, Some("::1".parse().unwrap()));
        assert_eq!(target.signing_secrets(999), vec![&current, &previous]);
        assert_eq!(target.signing_secrets(1_000), vec![&current]);
    }
}
