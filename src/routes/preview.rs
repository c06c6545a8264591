//! `POST /api/v1/rules/preview` (SPEC section 16): what the rules would do with an event, without
//! doing it. The body is an event exactly as `POST /events` takes one, plus an optional `at`
//! (RFC 3339; default now, on PostgreSQL the database's clock, as ingestion uses), the instant
//! active hours, silences, suppression windows and group timers are judged at. Nothing is
//! written: no event, no delivery, no tenant registered (a full `tenant` object is used as
//! given), no group or suppression window opened.
//!
//! The answer lists every rule, enabled and disabled, in decision order (lowest `priority`, then
//! the oldest). A rule that does not match has `channels: []`. A matching rule lists each of its
//! channels with the rule that decides it and that rule's outcome; a disabled channel (which
//! gets nothing) has `decided_by` and `outcome` null. Deleted channels are no longer a rule's.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::schema::{Object, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::{at, ApiResult};
use crate::channels::ChannelKind;
use crate::domain::event::{EventInput, NewEvent, TenantRef};
use crate::domain::routing::{self, ChannelFacts, EventView, Explanation, Miss, Outcome, RoutingRule};
use crate::domain::time::{now_ms, parse_rfc3339, Millis};
use crate::domain::Invalid;
use crate::handle::RouterHandle;
use crate::store::rules::RuleWithChannels;
use crate::store::{channels, groups, rules, silences, tenants, Conn, StoreError};

/// What the preview reads: one event as for `POST /events`, and optionally `at`.
// Documentation only (the handler reads the body itself, to name the field at fault): the
// event's schema with `at` added, so it stays the event's.
pub struct PreviewInput;

impl PartialSchema for PreviewInput {
    fn schema() -> RefOr<Schema> {
        let mut schema = <EventInput as PartialSchema>::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            let mut at = Object::with_type(SchemaType::from_iter([Type::String, Type::Null]));
            at.description = Some("When to judge active hours, silences, suppression windows and group timers (RFC 3339); absent or `null`: now.".into());
            at.format = Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime));
            object.properties.insert("at".into(), at.into());
            object.description = Some("An event exactly as `POST /events` takes one, and optionally `at`.".into());
            let mut example = crate::domain::event::example();
            example["at"] = Value::String("2026-11-28T15:36:08Z".into());
            object.example = None;
            object.examples = vec![example];
        }
        schema
    }
}

impl ToSchema for PreviewInput {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <EventInput as ToSchema>::schemas(schemas);
    }
}

/// What every rule would do with the event.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Preview {
    /// Every rule, enabled and disabled, in decision order.
    rules: Vec<RulePreview>,
}

/// One rule: whether it matches, and if so what happens on each of its channels.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RulePreview {
    rule_id: String,
    name: String,
    matched: bool,
    /// Why it does not match (the first reason); `null` when it matches.
    reason: Option<PreviewReason>,
    /// A matching rule's channels, in its order; `[]` when it does not match.
    channels: Vec<ChannelPreview>,
}

/// The first reason a rule does not match.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PreviewReason {
    kind: ReasonKind,
    /// In words: "the event's severity low is below the rule's minimum high"; for a condition,
    /// what the payload holds at the failing leaf and what the leaf wants.
    detail: String,
    /// The failing condition node (`conditions.any[1]`); `null` for other kinds.
    path: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReasonKind {
    Disabled,
    EventType,
    Severity,
    Tenant,
    Condition,
    ActiveHours,
}

/// One channel of a matching rule. Fields that do not apply are `null`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChannelPreview {
    channel_id: String,
    /// The rule deciding this (event, channel) pair: this one, or a matching rule of lower
    /// `priority` naming the same channel. `null`: the channel is disabled and gets nothing.
    decided_by: Option<String>,
    /// What the deciding rule would do now; `null` with `decided_by`.
    outcome: Option<PreviewOutcome>,
    /// `group`: the open group it would join; `null` if it would open one.
    group_id: Option<String>,
    /// `group`: when the group sends (RFC 3339).
    send_at: Option<String>,
    /// `suppressed`: the delivery that opened the suppression window.
    suppressed_by: Option<String>,
    /// `suppressed`: when the window ends (RFC 3339).
    until: Option<String>,
    /// `silenced`: the silence holding it.
    silence_id: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PreviewOutcome {
    /// Sent at once.
    Send,
    /// Joins (or opens) a group, sent at `send_at`.
    Group,
    /// Not sent: a repeat within `suppressed_by`'s window.
    Suppressed,
    /// Not sent: a silence holds it.
    Silenced,
}

/// What the rules would do with an event now (or at `at`), without storing or sending anything.
///
/// The body is one event exactly as `POST /events` takes it, with an optional `at` (RFC 3339).
/// Every rule is listed, enabled and disabled, in decision order: matched, or the first reason it
/// does not (`disabled`, `event_type`, `severity`, `tenant`, `condition` with the failing node in
/// `path`, `active_hours`). A matching rule lists its channels, each with the rule that decides
/// it and what that rule would do: `send`, `group` (the open group it joins, or `null` for a new
/// one, and when it is sent), `suppressed` (by which delivery, until when) or `silenced` (by which
/// silence); a disabled channel has `decided_by` and `outcome` null. No event, delivery, tenant,
/// group or suppression window is written.
#[utoipa::path(
    post,
    path = "/api/v1/rules/preview",
    tag = "rules",
    request_body = PreviewInput,
    responses((status = 200, description = "Every rule, in decision order: matched or why not, and each channel's outcome", body = Preview)),
)]
pub async fn try_event(router: web::Data<RouterHandle>, body: web::Json<Value>) -> ApiResult<HttpResponse> {
    let (event, at) = parse(body.into_inner(), &router)?;
    let explained = router.store().read(move |conn| read_and_explain(conn, &event, at)).await?;
    Ok(HttpResponse::Ok().json(Preview { rules: explained.into_iter().map(RulePreview::from).collect() }))
}

/// The event and `at`, read as `POST /events` reads one event.
fn parse(body: Value, router: &RouterHandle) -> Result<(NewEvent, Option<Millis>), Invalid> {
    let mut body = body;
    let at = match body.as_object_mut() {
        Some(object) if object.contains_key("events") => {
            return Err(Invalid::new("events", "the preview takes one event, not a batch: send the event's own fields (and an optional `at`)"));
        }
        Some(object) => match object.remove("at") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => {
                Some(parse_rfc3339(&text).ok_or_else(|| Invalid::new("at", "is not an RFC 3339 time such as 2026-11-28T15:36:08Z"))?)
            }
            Some(_) => return Err(Invalid::new("at", "must be an RFC 3339 time, as a string, such as 2026-11-28T15:36:08Z")),
        },
        None => None,
    };
    let input = super::events::event_input(body, "").map_err(|err| match err {
        crate::error::ApiError::Invalid(invalid) => invalid,
        other => Invalid::new("event", other.to_string()),
    })?;
    Ok((NewEvent::parse(input, router.limits())?, at))
}

/// Reads what routing needs (every rule, the enabled channels, the silences, the tenant, the
/// state the decisions touch) in one go and explains the event at `at` (default: now).
fn read_and_explain(conn: &mut Conn, event: &NewEvent, at: Option<Millis>) -> Result<Vec<Explanation>, StoreError> {
    let at = match at {
        Some(at) => at,
        None => crate::store::database_now(conn, now_ms())?,
    };
    let registered = match &event.tenant {
        TenantRef::Registered(id) => match tenants::find_many(conn, &[id.as_str()])?.first() {
            Some(row) => Some(row.to_tenant()),
            None => return Err(crate::store::events::unknown_tenant("tenant_id".into(), id).into()),
        },
        _ => None,
    };
    let mut rules: Vec<RoutingRule> = rules::list(conn)?.iter().filter_map(RuleWithChannels::routing).collect();
    routing::sort(&mut rules);
    let enabled: std::collections::HashMap<String, ChannelFacts> = channels::list(conn)?
        .into_iter()
        .filter(|row| row.enabled)
        .map(|row| {
            let siem = ChannelKind::from_stored(&row.kind).is_ok_and(ChannelKind::is_siem);
            (row.id, ChannelFacts { siem })
        })
        .collect();
    let silences = silences::current(conn, at)?;
    let view = EventView::new(event, registered.as_ref());
    let decisions = routing::decide(&rules, &silences, &|id| enabled.get(id).copied(), &view, at);
    let state = groups::noise_state(conn, &decisions)?;
    Ok(routing::explain(&rules, &decisions, &state, &view, at))
}

impl From<Explanation> for RulePreview {
    fn from(explained: Explanation) -> Self {
        let reason = explained.reason.map(|reason| {
            let (kind, path) = match reason.miss {
                Miss::Disabled => (ReasonKind::Disabled, None),
                Miss::EventType => (ReasonKind::EventType, None),
                Miss::Severity => (ReasonKind::Severity, None),
                Miss::Tenant => (ReasonKind::Tenant, None),
                Miss::Condition(path) => (ReasonKind::Condition, Some(path)),
                Miss::ActiveHours => (ReasonKind::ActiveHours, None),
            };
            PreviewReason { kind, detail: reason.detail, path }
        });
        let channels = explained
            .channels
            .into_iter()
            .map(|channel| {
                let mut view = ChannelPreview {
                    channel_id: channel.channel_id,
                    decided_by: channel.decided_by,
                    outcome: None,
                    group_id: None,
                    send_at: None,
                    suppressed_by: None,
                    until: None,
                    silence_id: None,
                };
                view.outcome = match channel.outcome {
                    None => None,
                    Some(Outcome::Send) => Some(PreviewOutcome::Send),
                    Some(Outcome::Group { group_id, send_at }) => {
                        (view.group_id, view.send_at) = (group_id, Some(at(send_at)));
                        Some(PreviewOutcome::Group)
                    }
                    Some(Outcome::Suppressed { by, until }) => {
                        (view.suppressed_by, view.until) = (Some(by), Some(at(until)));
                        Some(PreviewOutcome::Suppressed)
                    }
                    Some(Outcome::Silenced { silence_id }) => {
                        view.silence_id = Some(silence_id);
                        Some(PreviewOutcome::Silenced)
                    }
                };
                view
            })
            .collect();
        Self { rule_id: explained.rule_id, name: explained.name, matched: reason.is_none(), reason, channels }
    }
}
