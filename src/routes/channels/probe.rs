//! `POST /api/v1/channels/{id}/probe`: **Probe now**. A channel whose circuit is open waits for
//! `open_until` before its probe; a person who has fixed the receiver asks for the probe now.
//!
//! The probe goes the way a cooldown's end sends it: the channel's DeliveryActor on this instance
//! makes its circuit half-open and sends its next due delivery as the one probe (the store first
//! makes the delivery due first due now, if none is due yet). A success closes the circuit and
//! the backlog flows; a failure opens it again with the cooldown doubled, as any failed probe.
//!
//! Several instances: every instance runs an actor for each enabled channel, with a circuit of
//! its own. The instance that takes the request probes, with the deliveries it holds or nobody
//! holds; those another instance holds wait for that instance's own probe (at its `open_until`,
//! at most `BREAKER_COOLDOWN` doubled up to 10 minutes), which then finds the receiver back.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::super::ApiResult;
use crate::domain::breaker::CircuitState;
use crate::domain::time::now_ms;
use crate::error::ApiError;
use crate::handle::RouterHandle;
use crate::store::{channels, deliveries};

/// What **Probe now** did.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProbeOutcome {
    channel_id: String,
    /// The circuit's state now: `half_open` (the probe goes now), or `closed` (nothing to
    /// probe: deliveries go as usual). `open` only when no actor on this instance could take the
    /// probe (`probing: false`): it goes at the end of the cooldown.
    state: CircuitState,
    /// A probe was asked for; follow its outcome in the channel's `health` and the alert log.
    probing: bool,
    /// The channel's pending deliveries (the first of them carries the probe).
    pending: i64,
}

/// Sends an open circuit's probe now instead of at `open_until`: the next waiting delivery goes
/// as the probe (a success closes the circuit and the backlog flows). `202` when a probe goes;
/// `200` with `probing: false` when the circuit is closed; `409` for a disabled channel.
#[utoipa::path(
    post,
    path = "/api/v1/channels/{id}/probe",
    tag = "channels",
    params(("id" = String, Path)),
    responses(
        (status = 202, description = "The probe goes now: its outcome shows in the channel's `health`", body = ProbeOutcome),
        (status = 200, description = "The circuit is closed: nothing to probe", body = ProbeOutcome),
        (status = 409, description = "The channel is disabled: enable it (its circuit starts closed)"),
    ),
)]
pub async fn probe(router: web::Data<RouterHandle>, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let channel_id = id.clone();
    let (row, health) = router
        .store()
        .read(move |conn| {
            let row = channels::get(conn, &channel_id)?;
            let health = channels::health(conn, std::slice::from_ref(&row.id))?.remove(&row.id).unwrap_or_default();
            Ok((row, health))
        })
        .await?;
    if !row.enabled {
        return Err(ApiError::Conflict(format!(
            "channel {} is disabled: nothing is sent to it, so there is nothing to probe; enable it (its circuit starts closed and its waiting deliveries go at once)",
            row.name
        )));
    }
    let state = health.state(now_ms());
    if state == CircuitState::Closed {
        let channel_id = row.id.clone();
        let pending = router.store().read(move |conn| crate::store::stats::waiting_of(conn, &channel_id)).await?;
        return Ok(HttpResponse::Ok().json(ProbeOutcome { channel_id: row.id, state, probing: false, pending }));
    }
    let (channel_id, holder) = (row.id.clone(), router.instance().id.clone());
    let pending = router.store().write(move |conn| deliveries::ready_probe(conn, &channel_id, &holder, now_ms())).await?;
    let probing = router.probe_now(&row.id).await;
    let state = if probing { CircuitState::HalfOpen } else { state };
    Ok(HttpResponse::Accepted().json(ProbeOutcome { channel_id: row.id, state, probing, pending }))
}
