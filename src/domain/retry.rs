//! Retry policy as data: the schedule of delays between attempts, their jitter and how long a
//! receiver may ask the router to wait. Whether a failed attempt is retried at all is its
//! verdict's to say (`super::attempt::Verdict`); [`ErrorKind`] is the class of a failure shown
//! to people.

use std::time::Duration;

use serde::Serialize;

/// Why an attempt failed, as recorded in the alert logs (`error_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No answer within the delivery timeout (connect, send, or the response).
    Timeout,
    /// The connection was refused or reset before a response.
    Connect,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// The receiver answered with a status outside 2xx other than a redirect.
    HttpStatus,
    /// The receiver answered 3xx; redirects are never followed.
    Redirect,
    /// The receiver's answer was not valid HTTP.
    Protocol,
    /// The target address is not allowed (SPEC section 9).
    BlockedTarget,
    /// No access token: the token endpoint refused the credentials or could not be reached.
    Token,
    /// The delivery's incident (SPEC section 17) could not be opened in the router's database:
    /// nothing was sent.
    Incident,
    /// The mail server replied with a refusal (SMTP 4xx or 5xx).
    SmtpReply,
    /// A PSA refused the company the delivery's tenant maps to (ConnectWise, Autotask): the
    /// channel's `companies` map (or its `default`) names one the system does not have.
    Mapping,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Dns => "dns",
            ErrorKind::Tls => "tls",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::Redirect => "redirect",
            ErrorKind::Protocol => "protocol",
            ErrorKind::BlockedTarget => "blocked_target",
            ErrorKind::Token => "token",
            ErrorKind::Incident => "incident",
            ErrorKind::SmtpReply => "smtp_reply",
            ErrorKind::Mapping => "mapping",
        }
    }
}

/// Delays before each retry: the default `30s,2m,10m` means four attempts in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

/// Most retries a schedule may hold.
pub const MAX_RETRIES: usize = 50;
/// Longest single delay accepted.
pub const MAX_DELAY: Duration = Duration::from_secs(7 * 24 * 3600);

impl Default for RetrySchedule {
    fn default() -> Self {
        Self(vec![Duration::from_secs(30), Duration::from_secs(120), Duration::from_secs(600)])
    }
}

impl RetrySchedule {
    pub fn new(delays: Vec<Duration>) -> Self {
        Self(delays)
    }

    /// Parses `30s,2m,10m` (humantime units: ms, s, m, h, d). An empty string means no retries.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self(Vec::new()));
        }
        let delays = text
            .split(',')
            .map(|part| {
                let part = part.trim();
                let delay = humantime::parse_duration(part).map_err(|_| format!("`{part}` is not a duration"))?;
                if delay > MAX_DELAY {
                    return Err(format!("`{part}` is longer than 7 days"));
                }
                Ok(delay)
            })
            .collect::<Result<Vec<_>, String>>()?;
        if delays.len() > MAX_RETRIES {
            return Err(format!("has {} delays; the limit is {MAX_RETRIES}", delays.len()));
        }
        Ok(Self(delays))
    }

    /// The delay before the next attempt after `attempts_made` scheduled attempts failed, or
    /// `None` when the schedule is used up.
    pub fn delay_after(&self, attempts_made: u32) -> Option<Duration> {
        let index = usize::try_from(attempts_made).ok()?.checked_sub(1)?;
        self.0.get(index).copied()
    }

    /// Attempts in all: the first plus one per delay.
    pub fn max_attempts(&self) -> u32 {
        self.0.len() as u32 + 1
    }

    pub fn delays(&self) -> &[Duration] {
        &self.0
    }
}

/// Longest `MAX_RETRY_AFTER` accepted (and its default is one hour).
pub const MAX_RETRY_AFTER_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);
/// Largest `RETRY_JITTER` accepted: a delay may then vary by half either way.
pub const MAX_JITTER: f64 = 0.5;

/// The whole retry policy, as data: the schedule, how much each delay varies, and the longest
/// wait a receiver's `Retry-After` can ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub schedule: RetrySchedule,
    /// Each scheduled delay varies by up to this share either way (`0.1` is ±10 %), so retries
    /// of deliveries that failed together do not all come back at the same instant.
    pub jitter: f64,
    /// A receiver's `Retry-After` is honoured up to this long.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { schedule: RetrySchedule::default(), jitter: 0.1, max_retry_after: Duration::from_secs(3600) }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt after `attempts_made` scheduled attempts failed, or
    /// `None` when the schedule is used up (a `Retry-After` never adds attempts). `roll`, in
    /// `-1.0..=1.0`, picks where in the jitter band the delay falls; the receiver's `asked`
    /// wait (capped by `max_retry_after`) is a floor under the result.
    pub fn delay_after(&self, attempts_made: u32, asked: Option<Duration>, roll: f64) -> Option<Duration> {
        let base = self.schedule.delay_after(attempts_made)?;
        let factor = 1.0 + self.jitter * roll.clamp(-1.0, 1.0);
        let jittered = base.mul_f64(factor.max(0.0));
        let floor = asked.map(|a| a.min(self.max_retry_after)).unwrap_or_default();
        Some(jittered.max(floor))
    }
}

/// Reads a `Retry-After` value: whole seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2026 07:28:00 GMT`), as a wait from `now`, at most [`MAX_RETRY_AFTER_LIMIT`]. A
/// date in the past is no wait; anything else unreadable is ignored (`None`).
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        httpdate::parse_http_date(value).ok()?.duration_since(now).unwrap_or_default()
    };
    Some(wait.min(MAX_RETRY_AFTER_LIMIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_an_http_date() {
        let now = httpdate::parse_http_date("Sun, 29 Nov 2026 04:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Sun, 29 Nov 2026 04:00:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Sun, 29 Nov 2026 03:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("99999999999999999999999", now), Some(MAX_RETRY_AFTER_LIMIT));
        for nonsense in ["", "-5", "1.5", "soon", "Sun, 99 Nov 2026 04:00:30 GMT"] {
            assert_eq!(parse_retry_after(nonsense, now), None, "{nonsense:?}");
        }
    }

    #[test]
    fn jitter_spreads_delays_within_its_band_and_retry_after_is_a_capped_floor() {
        let policy = RetryPolicy { schedule: RetrySchedule::parse("10s").unwrap(), jitter: 0.1, max_retry_after: Duration::from_secs(60) };
        assert_eq!(policy.delay_after(1, None, -1.0), Some(Duration::from_secs(9)));
        assert_eq!(policy.delay_after(1, None, 1.0), Some(Duration::from_secs(11)));
        assert_eq!(policy.delay_after(1, None, 0.0), Some(Duration::from_secs(10)));
        assert_eq!(policy.delay_after(2, Some(Duration::from_secs(30)), 0.0), None, "Retry-After adds no attempt");
        assert_eq!(policy.delay_after(1, Some(Duration::from_secs(30)), 1.0), Some(Duration::from_secs(30)));
        assert_eq!(policy.delay_after(1, Some(Duration::from_secs(3)), 0.0), Some(Duration::from_secs(10)), "a short ask changes nothing");
        assert_eq!(policy.delay_after(1, Some(Duration::from_secs(86_400)), 0.0), Some(Duration::from_secs(60)), "capped");
        let off = RetryPolicy { jitter: 0.0, ..policy };
        assert_eq!(off.delay_after(1, None, 1.0), Some(Duration::from_secs(10)));
    }

    #[test]
    fn the_default_schedule_is_30s_2m_10m() {
        let schedule = RetrySchedule::default();
        assert_eq!(RetrySchedule::parse("30s,2m,10m").unwrap(), schedule);
        assert_eq!(schedule.delay_after(1), Some(Duration::from_secs(30)));
        assert_eq!(schedule.delay_after(2), Some(Duration::from_secs(120)));
        assert_eq!(schedule.delay_after(3), Some(Duration::from_secs(600)));
        assert_eq!(schedule.delay_after(4), None);
        assert_eq!(schedule.max_attempts(), 4);
    }

    #[test]
    fn schedules_parse_milliseconds_and_refuse_nonsense() {
        assert_eq!(RetrySchedule::parse("10ms, 20ms").unwrap().delays(), &[Duration::from_millis(10), Duration::from_millis(20)]);
        assert_eq!(RetrySchedule::parse("").unwrap().max_attempts(), 1);
        assert!(RetrySchedule::parse("30s,soon").is_err());
        assert!(RetrySchedule::parse("30d").is_err());
    }
}
