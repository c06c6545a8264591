//! Audit records to events: reads, maps and folds the records of one request or content blob
//! and ingests the events through the same durable path as `POST /api/v1/events`, with one
//! outcome per record, in order (SPEC section 14). One bad record never refuses the others.
//! Used by `POST /api/v1/sources/o365/audit` and by the fetcher of the Management Activity API's
//! content blobs alike.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{json, Value};

use super::event_id_of;
use super::fold::{action_key, fold, is_anchor, Plan};
use super::mapping::{map, Mapped};
use super::record::AuditRecord;
use crate::domain::event::EventInput;
use crate::domain::time::{now_ms, rfc3339};
use crate::handle::{IngestError, RouterHandle};
use crate::store::{o365, tenants};

/// What became of one record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordOutcome {
    /// The record's `Id`.
    pub audit_id: Option<String>,
    /// `ingested`, `duplicate`, `folded`, `ignored`, `unknown_tenant` or `invalid`.
    pub outcome: &'static str,
    pub event_id: Option<String>,
    pub event: Option<String>,
    pub severity: Option<String>,
    pub detail: Option<String>,
}

impl RecordOutcome {
    fn bare(audit_id: Option<String>, outcome: &'static str, detail: String) -> Self {
        Self { audit_id, outcome, event_id: None, event: None, severity: None, detail: Some(detail) }
    }
}

/// Ingests `records` (at most `MAX_BATCH_EVENTS`; the caller checks): one outcome per record, in
/// order. Answers once the events are committed.
pub async fn ingest(router: &RouterHandle, records: &[Value]) -> Result<Vec<RecordOutcome>, IngestError> {
    // Tenants by their Microsoft tenant id, matched case-insensitively.
    let tenants: HashMap<String, String> = router
        .store()
        .read(tenants::list)
        .await?
        .into_iter()
        .map(|t| (t.microsoft_tenant_id.to_lowercase(), t.id))
        .collect();
    let mut outcomes: Vec<Option<RecordOutcome>> = Vec::with_capacity(records.len());
    let mut known: Vec<(usize, AuditRecord, Mapped, String)> = Vec::new();
    for (i, value) in records.iter().enumerate() {
        let audit_id = value.get("Id").and_then(Value::as_str).map(str::to_lowercase);
        match AuditRecord::parse(value) {
            Err(why) => outcomes.push(Some(RecordOutcome::bare(audit_id, "invalid", why))),
            Ok(record) => match tenants.get(&record.organization_id) {
                None => outcomes.push(Some(RecordOutcome::bare(
                    audit_id,
                    "unknown_tenant",
                    format!("no tenant has microsoft_tenant_id {}; register it first", record.organization_id),
                ))),
                Some(tenant_id) => {
                    outcomes.push(None);
                    let mapped = map(&record);
                    known.push((i, record, mapped, tenant_id.clone()));
                }
            },
        }
    }
    let pairs: Vec<(AuditRecord, Mapped)> = known.iter().map(|(_, r, m, _)| (r.clone(), m.clone())).collect();
    // The actions earlier requests made events of, for the records of this one.
    let keys: Vec<String> = pairs.iter().filter_map(|(r, _)| action_key(r)).collect();
    let earlier = if keys.is_empty() { HashMap::new() } else { router.store().read(move |conn| o365::find(conn, &keys)).await? };
    let plans = fold(&pairs, &earlier);
    // The events to ingest, and which record each stands for.
    let mut inputs = Vec::new();
    let mut standing: Vec<usize> = Vec::new();
    for (k, plan) in plans.iter().enumerate() {
        let (i, record, _, tenant_id) = &known[k];
        match plan {
            Plan::Event(Mapped::Event { event, severity, data, .. }) => {
                let input = json!({"event_id": event_id_of(&record.id), "event": event, "timestamp": rfc3339(record.creation_time),
                    "severity": severity.as_str(), "tenant_id": tenant_id, "data": data});
                match serde_json::from_value::<EventInput>(input) {
                    Ok(input) => {
                        inputs.push(input);
                        standing.push(k);
                    }
                    Err(e) => outcomes[*i] = Some(RecordOutcome::bare(Some(record.id.clone()), "invalid", e.to_string())),
                }
            }
            Plan::Ignored(why) | Plan::Event(Mapped::Ignored(why)) => {
                outcomes[*i] = Some(RecordOutcome::bare(Some(record.id.clone()), "ignored", why.clone()));
            }
            Plan::FoldedInto(_) | Plan::FoldedIntoEvent(_) => {}
        }
    }
    let results = router.ingest_valid(inputs).await?;
    let mut actions = Vec::new();
    let mut event_of: HashMap<usize, (String, String, String)> = HashMap::new();
    for (k, result) in standing.into_iter().zip(results) {
        let (i, record, mapped, _) = &known[k];
        let Mapped::Event { event, severity, .. } = mapped else { continue };
        outcomes[*i] = Some(match result {
            Ok(result) => {
                event_of.insert(k, (result.event_id.clone(), event.to_string(), severity.as_str().to_string()));
                if let Some(key) = action_key(record).filter(|_| is_anchor(record, mapped)) {
                    actions.push((key, result.event_id.clone(), record.creation_time));
                }
                RecordOutcome {
                    audit_id: Some(record.id.clone()),
                    outcome: if result.duplicate { "duplicate" } else { "ingested" },
                    event_id: Some(result.event_id),
                    event: Some(event.to_string()),
                    severity: Some(severity.as_str().to_string()),
                    detail: None,
                }
            }
            Err(invalid) => RecordOutcome::bare(Some(record.id.clone()), "invalid", invalid.to_string()),
        });
    }
    if !actions.is_empty() {
        // After the events' commit: should this write be lost, a later record of the action
        // becomes an alert of its own (a second alert, never a lost one).
        router.store().write(move |conn| o365::remember(conn, &actions, now_ms())).await?;
    }
    for (k, plan) in plans.iter().enumerate() {
        if let Plan::FoldedIntoEvent(event_id) = plan {
            let (i, record, _, _) = &known[k];
            outcomes[*i] = Some(RecordOutcome {
                audit_id: Some(record.id.clone()),
                outcome: "folded",
                event_id: Some(event_id.clone()),
                event: None,
                severity: None,
                detail: Some("part of an action an earlier request already alerted on".into()),
            });
        }
        if let Plan::FoldedInto(anchor) = plan {
            let (i, record, _, _) = &known[k];
            let into = event_of.get(anchor).cloned();
            outcomes[*i] = Some(RecordOutcome {
                audit_id: Some(record.id.clone()),
                outcome: "folded",
                event_id: into.as_ref().map(|(id, _, _)| id.clone()),
                event: into.as_ref().map(|(_, event, _)| event.clone()),
                severity: into.as_ref().map(|(_, _, severity)| severity.clone()),
                detail: Some(format!("part of the action of audit record {}", known[*anchor].1.id)),
            });
        }
    }
    let results: Vec<RecordOutcome> = outcomes.into_iter().map(|o| o.expect("every record has an outcome")).collect();
    // For the Tenants page: what arrived from each Microsoft tenant. Counting is not worth
    // failing the answer for: the events are committed already.
    let mut counts: HashMap<(String, &'static str), i64> = HashMap::new();
    for (value, result) in records.iter().zip(&results) {
        if let Some(org) = value.get("OrganizationId").and_then(Value::as_str).map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty()) {
            *counts.entry((org, result.outcome)).or_default() += 1;
        }
    }
    let counts: Vec<(String, &'static str, i64)> = counts.into_iter().map(|((org, outcome), n)| (org, outcome, n)).collect();
    if let Err(err) = router.store().write(move |conn| o365::count_arrivals(conn, &counts, now_ms())).await {
        log::warn!("counting audit records for the Tenants page failed: {err}");
    }
    Ok(results)
}
