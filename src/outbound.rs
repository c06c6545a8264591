//! The outbound HTTP exchange: build the signed request for a channel, send it with awc, and
//! turn whatever happens into an [`AttemptOutcome`] with an error class.
//!
//! One exchange is bounded by the delivery timeout as a whole (connect, send, answer, excerpt).
//! Redirects are never followed: a 3xx is a failure of kind `redirect`.

use std::sync::Once;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use awc::error::{ConnectError, SendRequestError};
use awc::http::header::{CONTENT_TYPE, USER_AGENT};
use actix_web::HttpMessage;
use futures_util::StreamExt;

use crate::domain::attempt::{AttemptOutcome, EXCERPT_BYTES};
use crate::domain::channel::{CustomHeaders, SigningSecret};
use crate::domain::retry::ErrorKind;
use crate::domain::signature;
use crate::domain::time::now_ms;

/// `User-Agent` of every request.
pub const USER_AGENT_VALUE: &str = concat!("SPScan-Alert-Router/", env!("CARGO_PKG_VERSION"));

/// Most bytes of an answer read (to keep the connection reusable); the rest is dropped.
const DRAIN_BYTES: usize = 64 * 1024;

/// Where and how a channel delivers.
#[derive(Debug, Clone)]
pub struct Target {
    pub channel_id: String,
    pub url: String,
    pub headers: CustomHeaders,
    /// Secrets that sign each request; more than one during a rotation.
    pub secrets: Vec<SigningSecret>,
}

/// An HTTP client for one channel: keep-alive connections up to `connections`, no redirects.
pub fn client(timeout: Duration, connections: usize) -> awc::Client {
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| {
        // Fails only if another provider was installed first, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    let connector = awc::Connector::new().timeout(timeout).limit(connections.max(1));
    awc::Client::builder()
        .connector(connector)
        .disable_redirects()
        .disable_timeout()
        .no_default_headers()
        .finish()
}

/// POSTs `body` to the target once, signed for `msg_id`, and reports what happened.
pub async fn send(client: &awc::Client, target: &Target, msg_id: &str, body: Bytes, timeout: Duration) -> AttemptOutcome {
    let started_at = now_ms();
    let clock = Instant::now();
    let timestamp = started_at / 1000;
    let secrets: Vec<&SigningSecret> = target.secrets.iter().collect();
    let mut request = client
        .post(&target.url)
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((USER_AGENT, USER_AGENT_VALUE))
        .insert_header(("webhook-id", msg_id))
        .insert_header(("webhook-timestamp", timestamp.to_string()))
        .insert_header(("webhook-signature", signature::sign(&secrets, msg_id, timestamp, &body)));
    for (name, value) in target.headers.iter() {
        request = request.insert_header((name.as_str(), value.as_str()));
    }
    let exchange = async move {
        let mut response = request.send_body(body).await?;
        let status = response.status();
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        let excerpt = read_excerpt(response.take_payload()).await;
        Ok::<_, SendRequestError>((status, location, excerpt))
    };
    let result = actix_web::rt::time::timeout(timeout, exchange).await;
    let duration_ms = clock.elapsed().as_millis() as i64;
    let outcome = |status_code, error_kind, error, response_excerpt| AttemptOutcome {
        started_at,
        duration_ms,
        status_code,
        error_kind,
        error,
        response_excerpt,
    };
    match result {
        Err(_) => outcome(None, Some(ErrorKind::Timeout), Some(format!("no answer within {}", humantime::format_duration(timeout))), None),
        Ok(Err(err)) => {
            let (kind, message) = classify(&err);
            outcome(None, Some(kind), Some(message), None)
        }
        Ok(Ok((status, location, excerpt))) => {
            let code = Some(status.as_u16());
            if status.is_success() {
                outcome(code, None, None, excerpt)
            } else if status.is_redirection() {
                let to = location.map(|l| format!(" to {l}")).unwrap_or_default();
                outcome(code, Some(ErrorKind::Redirect), Some(format!("HTTP {status}: redirected{to}; redirects are not followed")), excerpt)
            } else {
                outcome(code, Some(ErrorKind::HttpStatus), Some(format!("HTTP {status}")), excerpt)
            }
        }
    }
}

/// Reads the first [`EXCERPT_BYTES`] of an answer, and drains a little more so the
/// connection can be reused.
async fn read_excerpt<S>(mut payload: S) -> Option<String>
where
    S: futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin,
{
    let mut excerpt = Vec::new();
    let mut read = 0usize;
    while let Some(Ok(chunk)) = payload.next().await {
        if excerpt.len() < EXCERPT_BYTES {
            let take = (EXCERPT_BYTES - excerpt.len()).min(chunk.len());
            excerpt.extend_from_slice(&chunk[..take]);
        }
        read += chunk.len();
        if read >= DRAIN_BYTES {
            break;
        }
    }
    if excerpt.is_empty() {
        return None;
    }
    let mut text = String::from_utf8_lossy(&excerpt).into_owned();
    // A cut in the middle of a multi-byte character shows as U+FFFD; keep it, it is honest.
    text.truncate(text.len().min(EXCERPT_BYTES + 3));
    Some(text)
}

/// The error class of a failed exchange, and a message for people.
fn classify(err: &SendRequestError) -> (ErrorKind, String) {
    let kind = match err {
        SendRequestError::Timeout => ErrorKind::Timeout,
        SendRequestError::Connect(connect) => match connect {
            ConnectError::Timeout => ErrorKind::Timeout,
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
