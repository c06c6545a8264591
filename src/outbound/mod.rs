//! Sending deliveries: [`Outbound`] takes the request a channel's type built
//! (`crate::channels`), hands it to its transport, has the type judge the answer, and turns
//! whatever happened into an [`AttemptOutcome`] carrying its verdict and, for a failure, its
//! error class. What applies to every transport is here: the outbound guard on the channel's
//! address (SPEC section 9), the access token a type asks for (one new token and one more try
//! when it is refused), and one deadline, the delivery timeout, over the whole attempt, token and
//! all.
//!
//! Each transport is one file: `http` (awc) and `smtp` (lettre, the `email` type). A new one is
//! one more file, one more variant of `channels::Transport` and one more arm in
//! `Outbound::exchange`, answering with the same `Answer`. Host names are resolved under the
//! guard (`names`); tokens are fetched and cached per grant (`token`; an XOAUTH2 sign-in uses
//! one as its password).

use std::sync::Arc;
use std::time::{Duration, Instant};


use crate::channels::{Item, Sending, Target, Transport, Verdict};
use crate::domain::attempt::AttemptOutcome;
use crate::domain::network::TargetPolicy;
use crate::domain::retry::ErrorKind;
use crate::domain::time::now_ms;
pub use http::{install_crypto_provider, Fetched, USER_AGENT_VALUE};
pub use names::{guard, BlockedTarget, FixedNames, NameLookup, Names, SystemNames};
pub use shown::SentRequest;
pub use smtp::{formatted as formatted_mail, trust_root as trust_mail_root};

mod http;
mod names;
pub mod shown;
mod smtp;
mod token;

/// Sends deliveries: one client per transport (HTTP's keeps up to `connections` connections
/// alive), and the guard and timeout every attempt is held to.
#[derive(Clone)]
pub struct Outbound {
    http: http::Http,
    smtp: smtp::Smtp,
    targets: Arc<TargetPolicy>,
    timeout: Duration,
    /// This router instance's id (Splunk's `host`).
    host: Arc<str>,
    tokens: token::TokenCache,
    /// `CREATE_SETTLE` (SPEC section 17).
    create_settle: Duration,
}

/// `CREATE_SETTLE` unless set: how long after a create of unknown outcome a ticketing system's
/// search is trusted to show the ticket.
pub const DEFAULT_CREATE_SETTLE: Duration = Duration::from_secs(120);

/// What one request did: its outcome, how many of the deliveries offered it carried, and the
/// request as sent, credentials masked (`None`: nothing was sent, the guard or the token
/// endpoint stopped it first).
#[derive(Debug, Clone)]
pub struct Sent {
    pub outcome: AttemptOutcome,
    pub carried: usize,
    pub request: Option<Arc<SentRequest>>,
    /// What a delivered request wrote to its delivery's incident (types that keep incidents).
    pub incident: Option<crate::domain::incident::IncidentWrite>,
    /// Other deliveries of the incident the request carried too (a ticketing note that took
    /// in those waiting behind it): recorded with the same outcome.
    pub also: Vec<String>,
}

impl Outbound {
    pub fn new(timeout: Duration, connections: usize, targets: Arc<TargetPolicy>, names: Names, host: &str) -> Self {
        let http = http::Http::new(timeout, connections, Arc::clone(&targets), names.clone());
        let smtp = smtp::Smtp::new(timeout, Arc::clone(&targets), names);
        Self { http, smtp, targets, timeout, host: Arc::from(host), tokens: token::TokenCache::default(), create_settle: DEFAULT_CREATE_SETTLE }
    }

    /// The same exchange, with `CREATE_SETTLE` set.
    pub fn with_create_settle(self, create_settle: Duration) -> Self {
        Self { create_settle, ..self }
    }

    pub fn create_settle(&self) -> Duration {
        self.create_settle
    }

    /// When and from where a request built now is sent.
    pub fn sending(&self, now: i64) -> Sending<'_> {
        Sending { now, host: &self.host }
    }

    /// Delivers as many of `items` as the target's type puts in one request (at least the first)
    /// and reports what happened to that request.
    pub async fn send_batch(&self, target: &Target, items: &[Item<'_>]) -> Sent {
        let started_at = now_ms();
        let clock = Instant::now();
        // One attempt, token and all, within the delivery timeout.
        let deadline = clock + self.timeout;
        let request = target.request(items, Sending { now: started_at, host: &self.host });
        let carried = request.carries.clamp(1, items.len());
        let done = |outcome: AttemptOutcome| Sent {
            outcome: AttemptOutcome { started_at, duration_ms: clock.elapsed().as_millis() as i64, ..outcome },
            carried,
            request: None,
            incident: None,
            also: Vec::new(),
        };
        // What the delivery page shows: the request as sent (a lone delivery's payload sent as it
        // is, a webhook's, is not kept twice) and the answer's headers.
        let payload = (carried == 1).then_some(items[0].payload);
        let shown = |transport: &Transport, bearer: bool, answer: Option<&Answer>| {
            let mut request = match transport {
                Transport::Http(post) => http::Http::shown(target, post, bearer, payload),
                Transport::Email(mail) => smtp::Smtp::shown(mail),
            };
            request.answer_headers = answer.map(|a| a.headers.clone());
            Some(Arc::new(request))
        };
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
        let mut answer = match self.exchange(target, &request.transport, bearer.as_deref(), deadline).await {
            Ok(answer) => answer,
            Err(failed) => return Sent { request: shown(&request.transport, bearer.is_some(), None), ..done(failed) },
        };
        let channel_type = target.kind.channel_type();
        let mut verdict = channel_type.judge(answer.code, answer.excerpt.as_deref().unwrap_or_default());
        if let (Verdict::Unauthorized, Some(credentials)) = (&verdict, &target.credentials) {
            // The token was refused: one new token (shared with every request it was refused to),
            // one more try.
            let token = match self.token(credentials, bearer.as_deref(), deadline).await {
                Ok(token) => token,
                Err(failed) => return done(failed),
            };
            answer = match self.exchange(target, &request.transport, Some(&token), deadline).await {
                Ok(answer) => answer,
                Err(failed) => return Sent { request: shown(&request.transport, true, None), ..done(failed) },
            };
            verdict = match channel_type.judge(answer.code, answer.excerpt.as_deref().unwrap_or_default()) {
                Verdict::Unauthorized => Verdict::Retry("the receiver refused a freshly issued token too".into()),
                other => other,
            };
        }
        let incident = (verdict == Verdict::Delivered).then(|| target.wrote(&items[0], &request.transport).for_item(&target.channel_id, &items[0])).flatten();
        let shown = shown(&request.transport, target.credentials.is_some(), Some(&answer));
        Sent { request: shown, incident, ..done(answer.outcome(verdict)) }
    }

    /// Sends a built request once, by its transport: the receiver's answer, or why none came.
    async fn exchange(&self, target: &Target, transport: &Transport, bearer: Option<&str>, deadline: Instant) -> Result<Answer, AttemptOutcome> {
        match transport {
            Transport::Http(post) => self.http.post(target, post, bearer, deadline).await,
            Transport::Email(mail) => self.smtp.send(mail, bearer, deadline).await,
        }
    }

    /// When an attempt starting now must be over: the delivery timeout from now.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// One request of a ticketing conversation (`channels::ticket`), before `deadline` (one
    /// delivery timeout for the whole conversation, so an attempt never outlives its lease):
    /// the guard on its URL (a zone's URL may have a host of its own), the channel's access
    /// token if it has one (a new one and one more try if it is refused), and the answer, read
    /// whole up to `channels::ANSWER_BYTES`; with the request as the delivery page shows it.
    pub async fn call(&self, target: &Target, post: &crate::channels::HttpPost, deadline: Instant) -> Called {
        let started_at = now_ms();
        let clock = Instant::now();
        let timed = |outcome: AttemptOutcome| AttemptOutcome { started_at, duration_ms: clock.elapsed().as_millis() as i64, ..outcome };
        let shown = |bearer: bool, answer: Option<&Answer>| {
            let mut request = http::Http::shown(target, post, bearer, None);
            request.answer_headers = answer.map(|a| a.headers.clone());
            Arc::new(request)
        };
        let url = post.url.as_deref().unwrap_or(&target.url);
        if let Some((ip, reason)) = names::literal_ip(url).and_then(|ip| self.targets.check(ip).err().map(|r| (ip, r))) {
            let why = format!("{ip} {}; not allowed by ALLOWED_TARGET_NETWORKS", reason.0);
            return Called { answer: Err(timed(failure(ErrorKind::BlockedTarget, why))), shown: None };
        }
        let mut bearer = None;
        if let Some(credentials) = &target.credentials {
            match self.token(credentials, None, deadline).await {
                Ok(token) => bearer = Some(token),
                Err(failed) => return Called { answer: Err(timed(failed)), shown: None },
            }
        }
        let mut answer = self.http.post(target, post, bearer.as_deref(), deadline).await;
        if let (Ok(Answer { code: 401, .. }), Some(credentials)) = (&answer, &target.credentials) {
            match self.token(credentials, bearer.as_deref(), deadline).await {
                Ok(token) => answer = self.http.post(target, post, Some(&token), deadline).await,
                Err(failed) => return Called { answer: Err(timed(failed)), shown: None },
            }
        }
        let shown = Some(shown(bearer.is_some(), answer.as_ref().ok()));
        Called { answer: answer.map(|answer| Reply { answer, started_at, duration_ms: clock.elapsed().as_millis() as i64 }).map_err(timed), shown }
    }

    /// One guarded GET with a bearer token, within the timeout, for requests the router makes on
    /// its own behalf (the Office 365 content fetcher): the answer's status, its `NextPageUri`
    /// header and up to `max_bytes` of its body (more is an error).
    pub async fn get(&self, url: &str, bearer: &str, max_bytes: usize) -> Result<Fetched, String> {
        self.http.get(url, bearer, max_bytes).await
    }
}

/// What one request of a ticketing conversation did.
pub struct Called {
    /// The answer, or the failed attempt's outcome when none came.
    pub answer: Result<Reply, AttemptOutcome>,
    /// The request as sent, credentials masked (`None`: nothing was sent).
    pub shown: Option<Arc<SentRequest>>,
}

/// An answer to one request of a ticketing conversation.
pub struct Reply {
    answer: Answer,
    started_at: i64,
    duration_ms: i64,
}

impl Reply {
    pub fn status(&self) -> u16 {
        self.answer.code
    }

    /// The body as read (up to `channels::ANSWER_BYTES`).
    pub fn body(&self) -> &[u8] {
        self.answer.body.as_deref().unwrap_or_default()
    }

    /// The attempt's outcome, if this answer ends it so.
    pub fn outcome(self, verdict: Verdict) -> AttemptOutcome {
        let (started_at, duration_ms) = (self.started_at, self.duration_ms);
        AttemptOutcome { started_at, duration_ms, ..self.answer.outcome(verdict) }
    }
}

/// What a receiver answered, whatever the transport: what its type judges, and what the
/// attempt keeps.
struct Answer {
    /// The status code (HTTP's for HTTP).
    code: u16,
    /// The status as people read it in an error: `HTTP 503 Service Unavailable`.
    status: String,
    /// The error class of an answer that did not deliver (`http_status` for HTTP, `smtp_reply`
    /// for SMTP).
    refused: ErrorKind,
    /// How long the receiver asked the router to wait.
    retry_after: Option<Duration>,
    /// The start of the body, as text.
    excerpt: Option<String>,
    /// Its headers as kept (`shown::answer_headers`).
    headers: Vec<(String, String)>,
    /// The body, up to `channels::ANSWER_BYTES`, when the type reads it (`HttpPost::reads_answer`).
    body: Option<actix_web::web::Bytes>,
}

impl Answer {
    /// The attempt's outcome, as the channel type judged the answer.
    fn outcome(self, verdict: Verdict) -> AttemptOutcome {
        let Answer { code, status, refused, retry_after, excerpt, .. } = self;
        let wait = retry_after.map(|d| format!("; asked to wait {}", humantime::format_duration(d))).unwrap_or_default();
        let error = |why: &str| if why.is_empty() { format!("{status}{wait}") } else { format!("{status}: {why}{wait}") };
        let error = match &verdict {
            Verdict::Delivered => None,
            Verdict::Retry(why) | Verdict::Final(why) => Some(error(why)),
            // The reason is told with the disabled channel; the attempt keeps the status.
            Verdict::Disable(_) => Some(error("")),
            Verdict::TooLarge => Some(error("the receiver refused the request as too large")),
            // Only types without credentials get here (the others fetched a new token): retried.
            Verdict::Unauthorized => Some(error("")),
        };
        let failed = error.is_some();
        AttemptOutcome {
            started_at: 0,
            duration_ms: 0,
            status_code: Some(code),
            error_kind: failed.then_some(refused),
            error,
            response_excerpt: excerpt,
            retry_after: retry_after.filter(|_| failed),
            verdict,
        }
    }
}

/// The time left until `deadline`.
fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// A failed attempt of this kind that got no answer to judge, for people: `why`. Start and
/// duration are set by the caller.
pub fn failure(kind: ErrorKind, why: String) -> AttemptOutcome {
    AttemptOutcome {
        started_at: 0,
        duration_ms: 0,
        status_code: None,
        error_kind: Some(kind),
        error: Some(why),
        response_excerpt: None,
        retry_after: None,
        verdict: Verdict::of_failure(kind),
    }
}
