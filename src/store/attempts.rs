//! Recording attempts: one `attempts` row per attempt, and each delivery moved on by it (its
//! status by the pure transition of `domain::delivery`, its counts, its next attempt), a whole
//! group in one transaction. The deliveries a group moves on are locked first, in id order
//! ([`progress_of`]), the order every transaction that locks deliveries keeps.

use std::collections::HashMap;

use diesel::prelude::*;

use super::models::{AttemptRow, SentRequestRow};
use super::schema::{attempts, deliveries, sent_requests};
use super::{write, Conn, IdIn, StoreError};
use crate::domain::attempt::{AttemptOutcome, Trigger};
use crate::domain::delivery::{self, DeliveryStatus};
use crate::domain::retry::RetryPolicy;

use super::deliveries::ROWS_PER_STATEMENT;

/// One attempt to write down.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub delivery_id: String,
    pub trigger: Trigger,
    pub outcome: AttemptOutcome,
    /// The request this attempt shared with other deliveries (batching types): its id and how
    /// many deliveries it carried.
    pub request: Option<SharedRequest>,
    /// The request as sent, credentials masked (`None`: nothing was sent).
    pub sent: Option<std::sync::Arc<crate::outbound::SentRequest>>,
    /// What a delivered attempt wrote to its incident (SPEC section 17), kept with the attempt.
    pub incident: Option<crate::domain::incident::IncidentWrite>,
}

/// The `sent_requests` id of an attempt's request: the shared request's id, or
/// `<delivery_id>#<number>` for a request of its own.
pub fn sent_request_id(delivery_id: &str, number: i32, request_id: Option<&str>) -> String {
    match request_id {
        Some(shared) => shared.to_string(),
        None => format!("{delivery_id}#{number}"),
    }
}

/// The row that keeps `sent`, under `id`.
fn sent_row(id: String, sent: &crate::outbound::SentRequest) -> SentRequestRow {
    let json = |pairs: &[(String, String)]| serde_json::to_string(pairs).expect("pairs of strings always serialise");
    SentRequestRow {
        id,
        method: sent.method.to_string(),
        url: sent.url.clone(),
        headers: json(&sent.headers),
        body: sent.body.clone(),
        body_bytes: sent.body_bytes as i64,
        answer_headers: sent.answer_headers.as_deref().map(json),
    }
}

/// Where a retry falls in the jitter band (`-1.0..=1.0`): random, but the same for every delivery
/// of one request, so a batch that failed together is retried together.
fn jitter_roll(request: Option<&SharedRequest>) -> f64 {
    match request {
        None => rand::Rng::gen_range(&mut rand::thread_rng(), -1.0..=1.0),
        Some(request) => {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            request.id.hash(&mut hasher);
            (hasher.finish() as f64 / u64::MAX as f64) * 2.0 - 1.0
        }
    }
}

/// One request that carried several deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedRequest {
    pub id: std::sync::Arc<str>,
    pub size: usize,
}

/// Every column a recorded attempt sets on its delivery.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DeliveryState {
    status: String,
    attempt_count: i32,
    scheduled_attempt_count: i32,
    next_attempt_at: Option<i64>,
    last_status_code: Option<i32>,
    last_error_kind: Option<&'static str>,
    last_error: Option<String>,
    redeliver_from: Option<String>,
}

/// Where a delivery stands while a group of attempts is recorded: status, attempts, scheduled
/// attempts, next attempt, and the status a bulk redelivery goes back to.
pub(super) type Progress = (String, i32, i32, Option<i64>, Option<String>);

/// The read that starts recording a group of attempts: each delivery's [`Progress`], by id.
/// Each backend runs it its own way (`store::load_progress`).
#[diesel::dsl::auto_type]
pub(super) fn progress_of<'a>(ids: &'a [&'a str]) -> _ {
    let ids: IdIn<'a> = super::id_in("id", ids);
    // In id order: every transaction that locks deliveries locks them in this one order, so
    // two of them (an attempt being recorded, a bulk redelivery) never wait for each other in a
    // circle (PostgreSQL would end one with a deadlock error).
    deliveries::table
        .filter(ids)
        .select((
            deliveries::id,
            (deliveries::status, deliveries::attempt_count, deliveries::scheduled_attempt_count, deliveries::next_attempt_at, deliveries::redeliver_from),
        ))
        .order(deliveries::id.asc())
}

/// The state a delivery is left in by a recorded attempt.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub delivery_id: String,
    pub status: String,
    pub next_attempt_at: Option<i64>,
    /// The status changed with this attempt (for the metrics: deliveries that entered it).
    pub changed: bool,
}

/// The attempt row of `record`, numbered `number`.
fn attempt_row(record: &AttemptRecord, number: i32) -> AttemptRow {
    let outcome = &record.outcome;
    AttemptRow {
        delivery_id: record.delivery_id.clone(),
        number,
        triggered_by: record.trigger.as_str().to_string(),
        started_at: outcome.started_at,
        duration_ms: outcome.duration_ms,
        status_code: outcome.status_code.map(i32::from),
        error_kind: outcome.error_kind.map(|k| k.as_str().to_string()),
        error: outcome.error.clone(),
        response_excerpt: outcome.response_excerpt.clone(),
        request_id: record.request.as_ref().map(|r| r.id.to_string()),
        request_size: record.request.as_ref().map(|r| r.size as i32),
    }
}

/// Records a group of attempts in one transaction and moves each delivery on: a scheduled
/// attempt follows the retry schedule (only while the delivery is still `pending`); a manual
/// one marks success but never schedules retries or changes a failure's status.
pub fn record(conn: &mut Conn, records: &[AttemptRecord], policy: &RetryPolicy, now: i64) -> Result<Vec<Recorded>, StoreError> {
    write(conn, |conn| {
        // One read for the whole group: (status, attempts, scheduled attempts, next attempt).
        let mut state: HashMap<String, Progress> = HashMap::with_capacity(records.len());
        let mut ids: Vec<&str> = records.iter().map(|r| r.delivery_id.as_str()).collect();
        // Locked in id order, chunk after chunk (see `progress_of`).
        ids.sort_unstable();
        ids.dedup();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            // Kept from other transactions recording attempts of the same deliveries (a manual
            // redelivery beside a scheduled attempt) until the commit, so attempts are numbered
            // one after the other.
            let rows = super::load_progress(conn, progress_of(chunk))?;
            state.extend(rows);
        }
        let mut recorded = Vec::with_capacity(records.len());
        let mut final_state: HashMap<&str, DeliveryState> = HashMap::with_capacity(records.len());
        let mut attempt_rows = Vec::with_capacity(records.len());
        // One row per request sent, however many deliveries it carried.
        let mut sent_rows: Vec<SentRequestRow> = Vec::new();
        let mut shared_kept: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for record in records {
            let Some((status, count, scheduled, next, redeliver_from)) = state.get_mut(&record.delivery_id) else {
                continue;
            };
            *count += 1;
            *scheduled += i32::from(record.trigger == Trigger::Scheduled);
            let outcome = &record.outcome;
            attempt_rows.push(attempt_row(record, *count));
            if let Some(sent) = &record.sent {
                let shared = record.request.as_ref().map(|r| &*r.id);
                if shared.is_none_or(|id| shared_kept.insert(id)) {
                    sent_rows.push(sent_row(sent_request_id(&record.delivery_id, *count, shared), sent));
                }
            }
            let before = status.clone();
            // A status the code does not know (none is stored) is left as it is.
            let (new_status, new_next) = match DeliveryStatus::parse(status) {
                Some(current) => {
                    let progress = delivery::Progress {
                        status: current,
                        next_attempt_at: *next,
                        redeliver_from: redeliver_from.as_deref().and_then(DeliveryStatus::parse),
                        scheduled_attempts: *scheduled as u32,
                    };
                    let (new_status, new_next) = delivery::after_attempt(&progress, record.trigger, outcome, policy, now, jitter_roll(record.request.as_ref()));
                    (new_status.as_str().to_string(), new_next)
                }
                None => (status.clone(), None),
            };
            *status = new_status.clone();
            *next = new_next;
            if record.trigger == Trigger::Manual {
                *redeliver_from = None;
            }
            // Absolute values, so only a delivery's last state in the group matters.
            let state = DeliveryState {
                status: new_status.clone(),
                attempt_count: *count,
                scheduled_attempt_count: *scheduled,
                next_attempt_at: new_next,
                last_status_code: outcome.status_code.map(i32::from),
                last_error_kind: outcome.error_kind.map(|k| k.as_str()),
                last_error: outcome.error.clone(),
                redeliver_from: redeliver_from.clone(),
            };
            final_state.insert(record.delivery_id.as_str(), state);
            let changed = new_status != before;
            recorded.push(Recorded { delivery_id: record.delivery_id.clone(), status: new_status, next_attempt_at: new_next, changed });
        }
        // One UPDATE per distinct new state (a group of successes is one statement), not one per
        // delivery: a round trip each counts on a networked database.
        let mut by_state: HashMap<DeliveryState, Vec<&str>> = HashMap::new();
        for (id, state) in final_state {
            by_state.entry(state).or_default().push(id);
        }
        for (state, ids) in by_state {
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                let changes = (
                    deliveries::status.eq(&state.status),
                    deliveries::attempt_count.eq(state.attempt_count),
                    deliveries::scheduled_attempt_count.eq(state.scheduled_attempt_count),
                    deliveries::next_attempt_at.eq(state.next_attempt_at),
                    deliveries::last_status_code.eq(state.last_status_code),
                    deliveries::last_error_kind.eq(state.last_error_kind),
                    deliveries::last_error.eq(&state.last_error),
                    deliveries::redeliver_from.eq(&state.redeliver_from),
                    deliveries::updated_at.eq(now),
                    // The attempt is over: whoever finds the delivery due next may take it.
                    deliveries::lease_owner.eq(None::<String>),
                );
                diesel::update(deliveries::table.filter(super::id_in("id", chunk))).set(changes).execute(conn)?;
            }
        }
        insert_rows!(attempt_rows, |head| each_backend!(conn, c => diesel::insert_into(attempts::table).values(head).execute(c))?);
        insert_rows!(sent_rows, |head| each_backend!(conn, c => diesel::insert_into(sent_requests::table).values(head).execute(c))?);
        for record in records {
            if let Some(incident) = &record.incident {
                super::incidents::written(conn, &record.delivery_id, incident, record.outcome.succeeded(), now)?;
            }
        }
        Ok(recorded)
    })
}
