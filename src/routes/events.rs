//! `POST /api/v1/events`: one event, or `{"events": [...]}` for a batch, read at the edge into
//! `EventInput`s (an error names the field at fault: `events[2].tenant.microsoft_tenant_id`)
//! and handed to the router handle; and the API error for a refused ingestion, which the
//! Office 365 route shares.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ApiResult;
use crate::domain::event::EventInput;
use crate::domain::Invalid;
use crate::error::ApiError;
use crate::handle::{IngestError, IngestResult, RouterHandle};

/// A batch of events.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    /// At most MAX_BATCH_EVENTS (1,000) events.
    #[allow(dead_code)]
    events: Vec<EventInput>,
}

/// What the events endpoint reads: one event, or a batch.
// Only the OpenAPI document reads this type (the handler tells the two apart itself, to name the
// field at fault), so its `///` is the schema's description. The event is boxed (clippy's
// `large_enum_variant`): unboxed, every value would be ten times the size a batch needs.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[schema(example = crate::domain::event::example)]
#[allow(dead_code)]
pub enum EventsBody {
    One(Box<EventInput>),
    Batch(EventBatch),
}

/// What became of each event of a batch, in order.
#[derive(Serialize, utoipa::ToSchema)]
pub struct IngestResults {
    results: Vec<IngestResult>,
}

/// What became of one event, or of every event of a batch.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum IngestAnswer {
    One(IngestResult),
    Batch(IngestResults),
}

/// Ingests one event or a batch. The answer comes only after the events and their deliveries
/// are committed; a batch is stored whole or not at all.
#[utoipa::path(
    post,
    path = "/api/v1/events",
    tag = "events",
    request_body = EventsBody,
    responses(
        (status = 202, description = "Stored and matched: `IngestResult` for one event, `IngestResults` for a batch (a known `event_id` in a batch has `duplicate: true`)", body = IngestAnswer),
        (status = 200, description = "One event whose `event_id` was already known: nothing stored or delivered again", body = IngestResult),
    ),
)]
pub async fn ingest(router: web::Data<RouterHandle>, body: web::Json<Value>) -> ApiResult<HttpResponse> {
    match body.into_inner() {
        Value::Object(mut map) if map.contains_key("events") => {
            if map.len() > 1 {
                let other = map.keys().find(|k| *k != "events").cloned().unwrap_or_default();
                return Err(Invalid::new(other, "a batch holds only `events`; put each event's fields inside it").into());
            }
            let Some(Value::Array(items)) = map.remove("events") else {
                return Err(Invalid::new("events", "must be an array of events").into());
            };
            let max = router.limits().max_batch_events;
            if items.len() > max {
                return Err(Invalid::new(
                    "events",
                    format!("holds {} events; the limit is {max} per request (MAX_BATCH_EVENTS)", items.len()),
                )
                .into());
            }
            let inputs = items
                .into_iter()
                .enumerate()
                .map(|(i, item)| event_input(item, &format!("events[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            let results = router.ingest_batch(inputs).await.map_err(api_error)?;
            Ok(HttpResponse::Accepted().json(IngestResults { results }))
        }
        value => {
            let input = event_input(value, "")?;
            let result = router.ingest_one(input).await.map_err(api_error)?;
            let status = if result.duplicate { HttpResponse::Ok() } else { HttpResponse::Accepted() };
            Ok({ status }.json(result))
        }
    }
}

/// Reads one event object, naming `at` (e.g. `events[2]`) in the error.
pub(super) fn event_input(value: Value, at: &str) -> Result<EventInput, ApiError> {
    if !value.is_object() {
        let field = if at.is_empty() { "event" } else { at };
        return Err(Invalid::new(field, "must be a JSON object describing one event (see the README)").into());
    }
    // The path of the value at fault (`tenant.microsoft_tenant_id`), not only the event's.
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = match (at.is_empty(), super::extract::field_of(&e)) {
            (true, None) => "event".to_string(),
            (true, Some(inner)) => inner,
            (false, None) => at.to_string(),
            (false, Some(inner)) => format!("{at}.{inner}"),
        };
        Invalid::new(field, e.inner().to_string()).into()
    })
}

/// The API error for a refused ingestion.
pub fn api_error(err: IngestError) -> ApiError {
    match err {
        IngestError::Invalid(invalid) => ApiError::Invalid(invalid),
        IngestError::Store(store) => store.into(),
        IngestError::Stopped => ApiError::Unavailable("the router is shutting down; retry the request".into()),
    }
}
