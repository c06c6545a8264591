//! `POST /api/v1/channel-types/{type}/preview`: the exact body a channel of a type would send for
//! an event, before any channel exists (the admin page shows it while a Slack or Teams channel is
//! being added). The body is built by the type itself, through the same [`Target::request`] every
//! delivery goes through, so the preview cannot differ from what a receiver gets: for the sample
//! event, what **Test** sends (its `event_id` and `timestamp` are new each time); for an event
//! given as `POST /events` takes one, what a delivery of it sends. Nothing is stored or sent; no
//! tenant is registered (a full `tenant` object is used as given).

use actix_web::web::Bytes;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ApiResult;
use crate::channels::{ChannelKind, Config, Item, Sending, Target, Transport};
use crate::domain::channel::{CustomHeaders, SigningSecret};
use crate::domain::event::{EventInput, NewEvent, TenantRef};
use crate::domain::time::now_ms;
use crate::domain::{ids, payload, Invalid};
use crate::error::ApiError;
use crate::handle::RouterHandle;
use crate::store::{events, tenants};

/// What the preview reads; the body may be empty (the sample event, no settings).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"event": crate::domain::event::example()}))]
#[allow(dead_code)]
#[schema(as = ChannelMessagePreviewInput)]
pub struct ChannelPreviewInput {
    /// An event exactly as `POST /events` takes one; absent or `null`: the sample event **Test**
    /// sends (`"test": true`).
    event: Option<EventInput>,
    /// The type's own settings, as `POST /channels` takes them (Splunk's `token`, …); only the
    /// types whose body depends on them need them.
    settings: Option<Map<String, Value>>,
}

/// The request body a channel of the type would send.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ChannelMessagePreview)]
pub struct ChannelPreviewView {
    /// The channel type.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The event's id (the sample's is new each time).
    event_id: String,
    content_type: &'static str,
    /// The body, parsed: Slack's Block Kit message, Teams' Adaptive Card message, the webhook
    /// payload, … (text, if a type's body is not one JSON value).
    #[schema(value_type = Object)]
    body: Value,
    /// The body byte for byte, as text.
    body_text: String,
}

/// What a channel of the type would send for the event (default: Test's sample), built by the
/// type as a delivery is. Nothing is stored or sent.
#[utoipa::path(
    post,
    path = "/api/v1/channel-types/{type}/preview",
    tag = "channels",
    params(("type" = String, Path, description = "A channel type, as `GET /channel-types` lists them (`slack`, `teams`, …)")),
    request_body(content = Option<ChannelPreviewInput>, description = "Optional: an event (default: the sample event Test sends) and the type's settings"),
    responses((status = 200, description = "The exact body the channel would send", body = ChannelPreviewView)),
)]
pub async fn render(router: web::Data<RouterHandle>, kind: web::Path<String>, body: Bytes) -> ApiResult<HttpResponse> {
    let kind = ChannelKind::parse("type", &kind).map_err(|invalid| ApiError::NotFound(invalid.message))?;
    let (event, settings) = read(&body)?;
    let config = crate::channels::configure(kind, settings, None).map_err(|e| Invalid::new(format!("settings.{}", e.field), e.message))?;
    let (event_id, payload) = match event {
        None => {
            let event_id = ids::new_id(ids::EVENT);
            let payload = payload::render_test(&event_id);
            (event_id, payload)
        }
        Some(input) => {
            let event = NewEvent::parse(input, router.limits()).map_err(|e| e.within("event"))?;
            let tenant = match &event.tenant {
                TenantRef::Full(tenant) => Some(tenant.clone()),
                TenantRef::Router => None,
                TenantRef::Registered(id) => {
                    let id = id.clone();
                    let found = router.store().read(move |conn| tenants::find_many(conn, &[id.as_str()])).await?;
                    match found.first() {
                        Some(row) => Some(row.to_tenant()),
                        None => return Err(events::unknown_tenant("event.tenant_id".into(), event.tenant.id()).into()),
                    }
                }
            };
            let payload = payload::render(&event, tenant.as_ref());
            (event.id, payload)
        }
    };
    let target = Target::new(
        "ch_preview".into(),
        kind,
        "https://receiver.invalid/".into(),
        CustomHeaders::default(),
        vec![(SigningSecret::generate(), None)],
        config,
    )
    .map_err(|e| Invalid::new(format!("settings.{}", e.field), e.message))?;
    let payload = Bytes::from(payload);
    let request = target.request(&[Item::new(&event_id, "dlv_preview", &payload)], Sending { now: now_ms(), host: &router.instance().id });
    let (content_type, sent) = match request.transport {
        Transport::Http(post) => ("application/json", post.shown_body.as_ref().unwrap_or(&post.body).to_vec()),
        // The message as it would go out, headers and both parts.
        Transport::Email(mail) => ("message/rfc822", crate::outbound::formatted_mail(&mail)),
    };
    let body_text = String::from_utf8_lossy(&sent).into_owned();
    let body = serde_json::from_slice(&sent).unwrap_or_else(|_| Value::String(body_text.clone()));
    Ok(HttpResponse::Ok().json(ChannelPreviewView { kind: kind.as_str(), event_id, content_type, body, body_text }))
}

/// The event (if one is given) and the settings, each refused naming its field.
fn read(body: &[u8]) -> Result<(Option<EventInput>, Config), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((None, Config::new()));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(mut fields) = value else {
        return Err(Invalid::new("body", "must be a JSON object such as {\"event\": {…}}, or empty").into());
    };
    if let Some(unknown) = fields.keys().find(|k| !["event", "settings"].contains(&k.as_str())) {
        return Err(Invalid::new(crate::domain::tenant::clip(unknown), "is not a field of a preview; it takes `event` and `settings`").into());
    }
    let event = match fields.remove("event") {
        None | Some(Value::Null) => None,
        Some(event) => Some(super::events::event_input(event, "event")?),
    };
    let settings = match fields.remove("settings") {
        None | Some(Value::Null) => Config::new(),
        Some(Value::Object(settings)) => settings,
        Some(_) => return Err(Invalid::new("settings", "must be an object of the type's settings, as POST /channels takes them").into()),
    };
    Ok((event, settings))
}
