//! The HTTP transport: one keep-alive awc client per [`super::Outbound`] (up to `connections`
//! connections, no redirects, names resolved under the guard by [`GuardedResolver`]) that POSTs
//! what a channel's type built ([`HttpPost`]), fetches access tokens (the client-credentials
//! grant) and makes the router's own guarded GETs; and the reading of what came back: the status
//! line, the start of the body, `Retry-After`, and the error class of what went wrong.
//!
//! The status line decides an answer: once it has arrived, reading the excerpt only gets the
//! time left before the deadline, and a body that stalls or breaks never turns the answer into a
//! failure. Redirects are never followed: a 3xx is a failure of kind `redirect`. An IP literal is
//! checked against the guard before anything is sent to it.

use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use actix_web::HttpMessage;
use awc::error::{ConnectError, SendRequestError};
use awc::http::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use awc::http::StatusCode;
use futures_util::StreamExt;

use super::names::{literal_ip, BlockedTarget, GuardedResolver, Names};
use super::token;
use super::shown::{self, SentRequest};
use super::{failure, left, Answer};
use crate::channels::{ClientCredentials, HttpPost, Method, Target, ANSWER_BYTES};
use crate::domain::attempt::{excerpt_of, AttemptOutcome, EXCERPT_BYTES};
use crate::domain::network::TargetPolicy;
use crate::domain::retry::{parse_retry_after, ErrorKind};
use crate::domain::time::now_ms;

/// `User-Agent` of every request.
pub const USER_AGENT_VALUE: &str = concat!("SPScan-Alert-Router/", env!("CARGO_PKG_VERSION"));

/// Most bytes of an answer read (to keep the connection reusable); the rest is dropped.
const DRAIN_BYTES: usize = 64 * 1024;

/// The HTTP client of one [`super::Outbound`], and the guard and timeout it applies.
#[derive(Clone)]
pub struct Http {
    client: awc::Client,
    targets: Arc<TargetPolicy>,
    timeout: Duration,
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

impl Http {
    pub fn new(timeout: Duration, connections: usize, targets: Arc<TargetPolicy>, names: Names) -> Self {
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
        Self { client, targets, timeout }
    }

    /// POSTs a built request once: the answer's status line and excerpt, or why none came (a
    /// redirect is a failure).
    pub async fn post(&self, target: &Target, built: &HttpPost, bearer: Option<&str>, deadline: Instant) -> Result<Answer, AttemptOutcome> {
        let request = || {
            let url = built.url.as_deref().unwrap_or(&target.url);
            let mut request = match built.method {
                Method::Post => self.client.post(url),
                Method::Get => self.client.get(url),
                Method::Patch => self.client.patch(url),
            };
            if !built.body.is_empty() || built.method != Method::Get {
                request = request.insert_header((CONTENT_TYPE, "application/json"));
            }
            request = request.insert_header((USER_AGENT, USER_AGENT_VALUE));
            if built.reads_answer {
                request = request.insert_header((ACCEPT, "application/json"));
            }
            for (name, value) in &built.headers {
                request = request.insert_header((*name, value.as_str()));
            }
            if let Some(token) = bearer {
                request = request.insert_header(("authorization", format!("Bearer {token}")));
            }
            for (name, value) in target.headers.iter() {
                request = request.insert_header((name.as_str(), value.as_str()));
            }
            if built.method == Method::Get && built.body.is_empty() {
                request.send()
            } else {
                request.send_body(built.body.clone())
            }
        };
        // The status line must arrive within the timeout; the body then gets what is left of it. A
        // body that is slow or cut short never turns an answer that arrived into a failure.
        let mut response = match send(deadline, request, !built.once).await {
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
        let keep = if built.reads_answer { ANSWER_BYTES } else { EXCERPT_BYTES };
        let _ = actix_web::rt::time::timeout(left(deadline), read_excerpt(response.take_payload(), &mut read, keep)).await;
        let excerpt = (!read.is_empty()).then(|| excerpt_of(&read));
        let body = built.reads_answer.then(|| Bytes::from(read));
        if status.is_redirection() {
            let to = location.map(|l| format!(" to {l}")).unwrap_or_default();
            return Err(AttemptOutcome {
                status_code: Some(status.as_u16()),
                response_excerpt: excerpt,
                ..failure(ErrorKind::Redirect, format!("HTTP {status}: redirected{to}; redirects are not followed"))
            });
        }
        let headers = super::shown::answer_headers(response.headers());
        Ok(Answer { code: status.as_u16(), status: format!("HTTP {status}"), refused: ErrorKind::HttpStatus, retry_after, excerpt, headers, body })
    }

    /// The request [`Http::post`] sends for `built`, as the delivery page shows it: the headers
    /// in the order they are put, each credential masked (the bearer token, a type's
    /// `Authorization`, every custom header value of the channel), the URL masked
    /// (`shown::shown_url`), and the body unless it is `payload` itself.
    pub fn shown(target: &Target, built: &HttpPost, bearer: bool, payload: Option<&Bytes>) -> SentRequest {
        let url = built.url.as_deref().unwrap_or(&target.url);
        let mut headers = Vec::with_capacity(8);
        if !built.body.is_empty() || built.method != Method::Get {
            shown::put(&mut headers, CONTENT_TYPE.as_str(), "application/json".into());
        }
        shown::put(&mut headers, USER_AGENT.as_str(), USER_AGENT_VALUE.into());
        if built.reads_answer {
            shown::put(&mut headers, ACCEPT.as_str(), "application/json".into());
        }
        for (name, value) in &built.headers {
            let value = if name.eq_ignore_ascii_case("authorization") {
                shown::shown_authorization(value)
            } else if is_credential_header(name) {
                crate::channels::masked(value)
            } else {
                value.clone()
            };
            shown::put(&mut headers, name, value);
        }
        if bearer {
            shown::put(&mut headers, "authorization", format!("Bearer {}", crate::channels::MASK));
        }
        for (name, value) in target.headers.iter() {
            shown::put(&mut headers, name, crate::channels::masked(value));
        }
        SentRequest {
            method: built.method.as_str(),
            url: shown::shown_url(url, target.kind.url_is_secret()),
            headers,
            body: shown::kept_body(built.shown_body.as_ref().unwrap_or(&built.body), payload),
            body_bytes: built.body.len(),
            answer_headers: None,
        }
    }

    /// One guarded GET with a bearer token, within the timeout: the answer's status, its
    /// `NextPageUri` header and up to `max_bytes` of its body (more is an error).
    pub async fn get(&self, url: &str, bearer: &str, max_bytes: usize) -> Result<Fetched, String> {
        let deadline = Instant::now() + self.timeout;
        if let Some((ip, reason)) = literal_ip(url).and_then(|ip| self.targets.check(ip).err().map(|r| (ip, r))) {
            return Err(format!("{ip} {}; not allowed by ALLOWED_TARGET_NETWORKS", reason.0));
        }
        let request = || self.client.get(url).insert_header((USER_AGENT, USER_AGENT_VALUE)).insert_header(("authorization", format!("Bearer {bearer}"))).send();
        let mut response = match send(deadline, request, true).await {
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

    /// One client-credentials request to the token endpoint (which passes the guard like any URL).
    pub async fn grant(&self, credentials: &ClientCredentials, deadline: Instant) -> Result<token::Token, AttemptOutcome> {
        let no_token = |why: String| failure(ErrorKind::Token, why);
        if let Some((ip, reason)) = literal_ip(&credentials.token_url).and_then(|ip| self.targets.check(ip).err().map(|r| (ip, r))) {
            return Err(failure(ErrorKind::BlockedTarget, format!("the token endpoint {ip} {}; not allowed by ALLOWED_TARGET_NETWORKS", reason.0)));
        }
        let form = token::form(credentials);
        let request = || self.client.post(&credentials.token_url).insert_header((USER_AGENT, USER_AGENT_VALUE)).send_form(&form);
        let mut response = match send(deadline, request, true).await {
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
}

/// A type's own header that carries a credential (Autotask's `Secret` and `ApiIntegrationCode`),
/// shown masked; a signature (`webhook-signature`) is no credential and is shown as sent.
fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["secret", "password", "token", "integrationcode", "apikey", "api-key"].iter().any(|w| name.contains(w))
}

/// Sends what `request` starts before `deadline` (`Err`: no answer in time), and starts it once
/// more if the server closed a kept-alive connection before answering. A server that closes
/// after each answer without saying so (Python's `http.server`, any HTTP/1.0 server answering
/// with a `Content-Length`) leaves awc a pooled connection that looks alive until the next
/// request is written into it: without this, the request after a token fetch, or the second of
/// two deliveries in a row, failed with "connector has been disconnected" and waited for its
/// retry. Sending again is what that retry would do, at once; delivery is at least once either way.
/// Without `resend`, only a pooled connection found closed before anything was written is
/// replaced (a ticket's create that may have reached the system is never sent twice).
async fn send<F, Fut>(deadline: Instant, request: F, resend: bool) -> Result<Result<awc::ClientResponse, SendRequestError>, tokio::time::error::Elapsed>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<awc::ClientResponse, SendRequestError>>,
{
    actix_web::rt::time::timeout(left(deadline), async {
        match request().await {
            Err(err) if closed_before_answer(&err) && (resend || matches!(err, SendRequestError::Connect(ConnectError::Disconnected))) => {
                log::debug!("the server closed a kept-alive connection before answering ({err}); sending again on a new one");
                request().await
            }
            other => other,
        }
    })
    .await
}

/// Whether the connection was closed or reset by the server before any answer arrived.
fn closed_before_answer(err: &SendRequestError) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    match err {
        SendRequestError::Connect(ConnectError::Disconnected) => true,
        SendRequestError::Send(io) | SendRequestError::Response(actix_web::error::ParseError::Io(io)) => {
            matches!(io.kind(), ConnectionReset | BrokenPipe | ConnectionAborted | UnexpectedEof)
        }
        _ => false,
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
        if read >= DRAIN_BYTES.max(keep) {
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
