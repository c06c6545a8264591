//! `/api/v1/channels`: list, create (a webhook's answer carries the signing secret, the only time
//! it is shown), read, change, delete, and `POST …/test` to send a sample payload right now.
//! The URL of a Slack or Teams channel is its credential: every answer shows it masked
//! (`https://hooks.slack.com/••••Xy12`), and a change that sends the masked form back keeps it.

use std::collections::HashMap;

use actix_web::web::Bytes;
use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::ApiResult;
use crate::actors::rule_matcher::target_of;
use crate::domain::breaker::Health;
use crate::channels::ChannelKind;
use crate::domain::channel::{self, ChannelUrl, CustomHeaders, RateLimit, SigningSecret};
use crate::domain::time::now_ms;
use crate::domain::{ids, Invalid};
use crate::handle::RouterHandle;
use crate::channels::Item;
use crate::dispatch;
use crate::outbound::Outbound;
use super::ApiConfig;
use crate::store::channels::{self, ChannelChange, ChannelStats, NewChannel};
use crate::store::models::ChannelRow;
use crate::store::StoreError;
use crate::channels::MASK;

mod probe;
mod sample;
mod shapes;

pub use probe::{__path_probe, probe};

pub use shapes::{ChannelInput, ChannelPatch, ChannelView};
use sample::Sample;
pub use sample::TestInput;
use shapes::Channels;

/// The URL as sent: `url`, or the field the type calls it by (Sentinel's `endpoint`), taken out
/// of the settings.
fn url_given(kind: ChannelKind, url: Option<String>, settings: &mut serde_json::Map<String, serde_json::Value>) -> Result<Option<String>, Invalid> {
    let field = kind.channel_type().url_field();
    if field == "url" {
        return Ok(url);
    }
    if url.is_some() {
        return Err(Invalid::new("url", format!("{} channels name their URL `{field}`; send it as `{field}`", kind.as_str())));
    }
    match settings.remove(field) {
        None => Ok(None),
        Some(serde_json::Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(Invalid::new(field, "must be a URL, as text")),
    }
}

/// Every channel, with its deliveries of the last 24 hours and its circuit.
#[utoipa::path(get, path = "/api/v1/channels", tag = "channels", responses((status = 200, description = "The channels", body = Channels)))]
pub async fn list(router: web::Data<RouterHandle>) -> ApiResult<HttpResponse> {
    let (rows, mut stats, mut health) = router
        .store()
        .read(|conn| {
            let rows = channels::list(conn)?;
            let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
            let stats = channels::stats(conn, &ids, now_ms())?;
            let health = channels::health(conn, &ids)?;
            Ok((rows, stats, health))
        })
        .await?;
    let items: Vec<ChannelView> = rows
        .into_iter()
        .map(|row| {
            let (s, h) = (stats.remove(&row.id), health.remove(&row.id));
            ChannelView::of(row, s, h, false)
        })
        .collect();
    Ok(HttpResponse::Ok().json(Channels { items }))
}

/// Creates a channel. A webhook's answer carries its signing secret, the only time it is shown.
#[utoipa::path(
    post,
    path = "/api/v1/channels",
    tag = "channels",
    request_body = ChannelInput,
    responses((status = 201, description = "Created", body = ChannelView, headers(("Location" = String, description = "The channel's address")))),
)]
pub async fn create(router: web::Data<RouterHandle>, api: web::Data<ApiConfig>, body: crate::routes::extract::Json<ChannelInput>) -> ApiResult<HttpResponse> {
    let mut input = body.into_inner();
    let limits = router.limits();
    let kind = ChannelKind::parse("type", input.kind.as_deref().unwrap_or("webhook"))?;
    let url_field = kind.channel_type().url_field();
    let url = url_given(kind, input.url.take(), &mut input.settings)?
        .or_else(|| kind.channel_type().default_url().map(str::to_string))
        .ok_or_else(|| Invalid::new(url_field, format!("is required for {} channels", kind.as_str())))?;
    let url = channel_address(kind.channel_type().address_is_host(), &url, limits).map_err(|e| Invalid::new(url_field, e.message))?;
    url.check_target(&api.targets).map_err(|e| Invalid::new(url_field, e.message))?;
    let config = crate::channels::configure(kind, input.settings, None)?;
    check_token_endpoint(kind, &config, &api)?;
    let rate_limit = match input.rate_limit_per_second {
        None => kind.default_rate_limit(),
        Some(given) => given.filter(|v| !v.is_null()).as_ref().map(RateLimit::parse).transpose()?,
    };
    let channel = NewChannel {
        id: ids::new_id(ids::CHANNEL),
        name: channel::parse_name(&input.name, limits)?,
        kind,
        url,
        enabled: input.enabled.unwrap_or(true),
        headers: CustomHeaders::parse(input.headers.unwrap_or_default(), limits)?,
        secret: SigningSecret::generate(),
        rate_limit,
        config,
    };
    let row = router.change(move |conn| channels::create(conn, &channel, now_ms())).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/channels/{}", row.id)))
        .json(ChannelView::of(row, None, None, true)))
}

/// One channel.
#[utoipa::path(get, path = "/api/v1/channels/{id}", tag = "channels", params(("id" = String, Path)), responses((status = 200, description = "The channel", body = ChannelView)))]
pub async fn get(router: web::Data<RouterHandle>, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let (row, mut stats, mut health): (ChannelRow, HashMap<String, ChannelStats>, HashMap<String, Health>) = router
        .store()
        .read(move |conn| {
            let row = channels::get(conn, &id)?;
            let ids = std::slice::from_ref(&row.id);
            let stats = channels::stats(conn, ids, now_ms())?;
            let health = channels::health(conn, ids)?;
            Ok((row, stats, health))
        })
        .await?;
    let (s, h) = (stats.remove(&row.id), health.remove(&row.id));
    Ok(HttpResponse::Ok().json(ChannelView::of(row, s, h, false)))
}

/// Changes a channel; enabling it again resumes its pending deliveries.
#[utoipa::path(
    patch,
    path = "/api/v1/channels/{id}",
    tag = "channels",
    params(("id" = String, Path)),
    request_body = ChannelPatch,
    responses((status = 200, description = "Changed", body = ChannelView)),
)]
pub async fn update(
    router: web::Data<RouterHandle>,
    api: web::Data<ApiConfig>,
    id: web::Path<String>,
    body: crate::routes::extract::Json<ChannelPatch>,
) -> ApiResult<HttpResponse> {
    let mut patch = body.into_inner();
    let (name, kind, url, enabled) = (super::given("name", patch.name)?, super::given("type", patch.kind)?, super::given("url", patch.url.take())?, super::given("enabled", patch.enabled)?);
    if let Some(kind) = kind.as_deref() {
        ChannelKind::parse("type", kind)?;
    }
    // Sentinel calls its URL `endpoint`; which name fits is checked against the channel below.
    // Email's address is its SMTP server's `host`.
    let mut addresses = Vec::new();
    for field in ["endpoint", "host"] {
        match patch.settings.remove(field) {
            None => {}
            Some(serde_json::Value::String(text)) => addresses.push((field, text)),
            Some(_) => return Err(Invalid::new(field, if field == "host" { "must be a host name, as text" } else { "must be a URL, as text" }).into()),
        }
    }
    let (url_field, url_text) = match (url, addresses.pop()) {
        (Some(_), Some(_)) => return Err(Invalid::new("url", "send the channel's URL once, as `url` (or `endpoint` for Sentinel, `host` for email)").into()),
        (None, Some(_)) if !addresses.is_empty() => return Err(Invalid::new("host", "send the channel's address once").into()),
        (Some(url), None) => ("url", Some(url)),
        (None, Some((field, text))) => (field, Some(text)),
        (None, None) => ("url", None),
    };
    let url = url_text
        .as_deref()
        .filter(|u| !u.contains(MASK))
        .map(|u| channel_address(url_field == "host", u, router.limits()).and_then(|url| url.check_target(&api.targets).map(|()| url)))
        .transpose()
        .map_err(|e| Invalid::new(url_field, e.message))?;
    let settings = std::mem::take(&mut patch.settings);
    let change = ChannelChange {
        name: name.as_deref().map(|n| channel::parse_name(n, router.limits())).transpose()?,
        // A masked URL sent back (a read, edited and sent whole) is no new URL: checked below.
        url,
        enabled,
        // Checked below, once the current values that masked ones stand for are known.
        headers: None,
        rate_limit: patch
            .rate_limit_per_second
            .map(|r| r.filter(|v| !v.is_null()).as_ref().map(RateLimit::parse).transpose())
            .transpose()?,
        settings: Some(settings.clone()),
    };
    let id = id.into_inner();
    let masked = url_text.filter(|u| u.contains(MASK));
    let api = api.into_inner();
    let given_headers = patch.headers.map(Option::unwrap_or_default);
    let headers_resent = given_headers.as_ref().is_some_and(|given| given.values().all(|v| !v.contains(MASK)));
    let limits = router.limits().clone();
    let mut change = change;
    let row = router.change(move |conn| {
            let current = channels::get(conn, &id)?;
            let current_kind = ChannelKind::from_stored(&current.kind).map_err(|unknown| Invalid::new("type", unknown.to_string()))?;
            if kind.is_some_and(|k| k != current.kind) {
                return Err(Invalid::new("type", "a channel's type cannot change; create a new channel instead").into());
            }
            let expected = current_kind.channel_type().url_field();
            if (change.url.is_some() || masked.is_some()) && url_field != expected {
                return Err(Invalid::new(url_field, format!("{} channels name their URL `{expected}`; send it as `{expected}`", current_kind.as_str())).into());
            }
            if masked.is_some_and(|m| !current_kind.url_is_secret() || m != channel::masked_url(&current.url)) {
                return Err(Invalid::new(url_field, "holds `••••`, the mask reads show; send the whole new URL, or leave it out to keep the current one").into());
            }
            let current_headers = current.custom_headers();
            if let Some(given) = given_headers {
                change.headers = Some(CustomHeaders::parse(CustomHeaders::unmask(given, &current_headers)?, &limits)?);
            }
            let stored = current.settings();
            let merged = if settings.is_empty() { stored.clone() } else { crate::channels::configure(current_kind, settings.clone(), Some(&stored))? };
            if !settings.is_empty() {
                check_token_endpoint(current_kind, &merged, &api)?;
            }
            // A write-only credential only goes where it was given for: moving the channel
            // elsewhere takes the credential again.
            let moved = change.url.as_ref().is_some_and(|u| u.as_str() != current.url)
                || current_kind.channel_type().settings().iter().filter(|s| s.moves_credentials).any(|s| merged.get(s.name) != stored.get(s.name));
            if moved && !current_headers.is_empty() && !headers_resent {
                return Err(Invalid::new(
                    "headers",
                    "must be sent again, whole, when the channel's URL changes: header values are credentials and only go where they were given for (`null` drops them)",
                )
                .into());
            }
            if moved {
                let type_settings = current_kind.channel_type().settings();
                let places: String = type_settings.iter().filter(|s| s.moves_credentials).map(|s| format!(", `{}`", s.name)).collect();
                // Only the credentials the channel holds (an email channel signing in with a
                // password has no `client_secret` to send again).
                for secret in type_settings.iter().filter(|s| s.secret && stored.contains_key(s.name)) {
                    let given = settings.get(secret.name).and_then(|v| v.as_str()).is_some_and(|v| !v.contains(MASK));
                    if !given {
                        return Err(Invalid::new(
                            secret.name,
                            format!("must be sent again when the channel's URL{places} changes: a credential only goes where it was given for"),
                        )
                        .into());
                    }
                }
            }
            let row = channels::update(conn, &id, change, now_ms())?;
            let health = channels::health(conn, std::slice::from_ref(&row.id))?.remove(&row.id);
            Ok((row, health))
        })
        .await?;
    let (row, health) = row;
    Ok(HttpResponse::Ok().json(ChannelView::of(row, None, health, false)))
}

/// Deletes a channel; its pending deliveries are cancelled, its log stays.
#[utoipa::path(delete, path = "/api/v1/channels/{id}", tag = "channels", params(("id" = String, Path)), responses((status = 204, description = "Deleted")))]
pub async fn delete(router: web::Data<RouterHandle>, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let channel_id = id.clone();
    let cancelled = router.change(move |conn| channels::delete(conn, &id, now_ms())).await?;
    router.metrics().deliveries.with_label_values(&[channel_id.as_str(), crate::domain::delivery::DeliveryStatus::Cancelled.as_str()]).inc_by(cancelled as u64);
    router.metrics().forget_channels(std::slice::from_ref(&channel_id));
    if cancelled > 0 {
        log::info!("channel deleted; {cancelled} pending deliveries cancelled");
    }
    Ok(HttpResponse::NoContent().finish())
}

/// What a Test press did.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TestOutcome {
    /// The receiver took it.
    ok: bool,
    /// The receiver's status code; `null`: no answer.
    status_code: Option<u16>,
    duration_ms: i64,
    /// `timeout`, `connect`, `dns`, `tls`, `http_status`, `redirect`, `protocol`,
    /// `blocked_target`, `token`, `smtp_reply` or `mapping`; `null` on success.
    error_kind: Option<&'static str>,
    error: Option<String>,
    /// The start of the receiver's answer.
    response_excerpt: Option<String>,
    /// The sample's id: the event's (`evt_…`), or the notification's (`grp_…`).
    event_id: String,
    /// Ticketing channels: what was checked and passed, in order ("the credentials",
    /// "project SOC", …). Absent for other types.
    #[serde(skip_serializing_if = "Option::is_none")]
    checked: Option<Vec<String>>,
    /// Ticketing channels, with `"create": true`: the `[SPScan TEST]` ticket opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::routes::deliveries::TicketView>)]
    ticket: Option<crate::domain::incident::Ticket>,
}

/// Sends the sample payload now, once, even to a disabled channel (so it can be checked before
/// it is switched on), and answers with what happened. `{"sample":"group"}` sends a sample
/// notification instead (`sample`). Nothing is recorded in the log, no group is touched; the
/// outcome counts in the channel's circuit breaker (a success closes an open circuit).
#[utoipa::path(
    post,
    path = "/api/v1/channels/{id}/test",
    tag = "channels",
    params(("id" = String, Path)),
    request_body(content = Option<TestInput>, description = "Optional: `{\"sample\":\"group\"}` sends a sample notification (SPEC section 16) instead of the sample event"),
    responses((status = 200, description = "Sent (or tried): `ok` says whether the receiver took it", body = TestOutcome)),
)]
pub async fn test(router: web::Data<RouterHandle>, outbound: web::Data<Outbound>, id: web::Path<String>, body: Bytes) -> ApiResult<HttpResponse> {
    let (sample, create) = Sample::asked(&body)?;
    let id = id.into_inner();
    let row = router.store().read(move |conn| channels::get(conn, &id)).await?;
    let (event_id, body) = sample.render();
    let target = target_of(&row).map_err(|unknown| crate::error::ApiError::Conflict(unknown.to_string()))?;
    // A Test is no delivery of the log, but has an id of its own (an email's Message-ID is made of it).
    let test_id = crate::domain::ids::new_id("dlv_test");
    let item = Item::new(&event_id, &test_id, &body);
    let (outcome, checked, ticket) = match target.tickets() {
        Some(system) => {
            let tested = dispatch::test_tickets(&outbound, &target, system, item, create).await;
            (tested.outcome, Some(tested.checked), tested.ticket)
        }
        None if create => return Err(Invalid::new("create", "only a ticketing channel's Test creates a ticket").into()),
        None => (dispatch::deliver_once(&outbound, &target, &[item]).await.outcome, None, None),
    };
    // A person's attempt counts in the channel's health: a Test that succeeds closes its circuit.
    router.manual_attempt(&row.id, outcome.succeeded(), outcome.started_at);
    Ok(HttpResponse::Ok().json(TestOutcome {
        ok: outcome.succeeded(),
        status_code: outcome.status_code,
        duration_ms: outcome.duration_ms,
        error_kind: outcome.error_kind.map(|k| k.as_str()),
        error: outcome.error,
        response_excerpt: outcome.response_excerpt,
        event_id,
        checked,
        ticket,
    }))
}

/// Refuses settings whose token endpoint (Sentinel's `authority`) is an address the outbound
/// guard refuses, as a channel URL would be.
/// A channel's address as given: a URL, or for the types whose address is a server's host
/// (email) a host name or IP address.
fn channel_address(is_host: bool, text: &str, limits: &crate::domain::limits::Limits) -> Result<ChannelUrl, Invalid> {
    if is_host {
        ChannelUrl::host(text)
    } else {
        ChannelUrl::parse(text, limits)
    }
}

fn check_token_endpoint(kind: ChannelKind, config: &crate::channels::Config, api: &ApiConfig) -> Result<(), Invalid> {
    let Some(credentials) = kind.channel_type().prepare(config)?.credentials() else { return Ok(()) };
    if credentials.token_url.starts_with('/') {
        // On the channel's own URL, which is checked as the channel's.
        return Ok(());
    }
    ChannelUrl::parse(&credentials.token_url, &crate::domain::limits::Limits::default())
        .and_then(|url| url.check_target(&api.targets))
        .map_err(|e| Invalid::new("authority", e.message))
}

/// How long a rotated-out secret keeps signing beside the new one.
pub const ROTATION_GRACE_MS: i64 = 24 * 3600 * 1000;

/// A new signing secret, shown in this answer only; the old one keeps signing for 24 h.
#[utoipa::path(
    post,
    path = "/api/v1/channels/{id}/rotate-secret",
    tag = "channels",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "The channel with its new `secret`", body = ChannelView),
        (status = 409, description = "The channel's type is not signed (only webhooks are)"),
    ),
)]
pub async fn rotate_secret(router: web::Data<RouterHandle>, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let secret = SigningSecret::generate();
    // Checked inside the change: a client that goes away right after asking still gets it done.
    let row = router.change(move |conn| {
            let kind = ChannelKind::from_stored(&channels::get(conn, &id)?.kind).map_err(|unknown| Invalid::new("type", unknown.to_string()))?;
            if !kind.is_signed() {
                return Err(StoreError::Conflict(format!(
                    "{} channels are not signed (the receiver does not check signatures); only webhook channels have a secret to rotate",
                    kind.as_str()
                )));
            }
            channels::rotate_secret(conn, &id, &secret, now_ms(), ROTATION_GRACE_MS)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ChannelView::of(row, None, None, true)))
}
