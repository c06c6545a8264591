//! Ingestion: events and their deliveries, written in one transaction. An event id already
//! stored (or repeated within the batch) is a duplicate and gets no deliveries.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;

use super::models::{DeliveryRow, EventRow, TenantRow};
use super::schema::deliveries;
use super::{write, Conn, StoreError};
use crate::domain::event::{NewEvent, TenantRef};
use crate::domain::ids;
use crate::domain::payload;
use crate::domain::tenant::Tenant;
use crate::domain::delivery::DeliveryStatus;
use crate::domain::routing::{Decision, Fate};
use crate::domain::Invalid;
use super::groups::Noise;

/// An event and what routing decided for each channel its matching rules name.
#[derive(Debug, Clone)]
pub struct MatchedEvent {
    pub event: NewEvent,
    pub routes: Vec<Decision>,
}

/// What became of one ingested event.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub event_id: String,
    pub duplicate: bool,
    /// `(delivery id, channel id)` for each delivery created pending (to send now).
    pub deliveries: Vec<(String, String)>,
    /// `(delivery id, channel id, status)` of each delivery noise control decided (grouped,
    /// suppressed, silenced): recorded, not sent.
    pub decided: Vec<(String, String, DeliveryStatus)>,
    /// The payload to send, when deliveries were created.
    pub payload: Option<String>,
    /// Flush times of the groups this ingestion opened.
    pub opened_groups: Vec<i64>,
}

/// Stores a batch of events and their deliveries, all or nothing. `batch` names fields
/// `events[i].…` in errors, as the client sent them. The new deliveries are leased to `owner`,
/// this instance when the store is shared (it sends them at once; other instances leave them
/// alone; see `Store::ingest`).
pub fn ingest(conn: &mut Conn, batch: &[MatchedEvent], is_batch: bool, now: i64, owner: Option<&str>) -> Result<Vec<Ingested>, StoreError> {
    let field = |i: usize, name: &str| if is_batch { format!("events[{i}].{name}") } else { name.to_string() };
    write(conn, |conn| {
        let tenants = resolve_tenants(conn, batch, now, &field)?;

        let ids: Vec<&str> = batch.iter().map(|m| m.event.id.as_str()).collect();
        let stored = super::stored_event_ids(conn, &ids)?;
        let mut seen: HashSet<String> = stored.into_iter().collect();

        let wanted: Vec<&str> = {
            let mut all: Vec<&str> = batch.iter().flat_map(|m| m.routes.iter().map(|r| r.channel_id.as_str())).collect();
            all.sort_unstable();
            all.dedup();
            all
        };
        // The channels deliveries are made for, with the `incident_by` of those keeping incidents.
        let live: HashMap<String, Option<Vec<String>>> = super::channels::deliverable_kinds(conn, &wanted)?;

        // The events not stored yet (nor repeated earlier in the batch), with their payloads.
        let mut fresh: Vec<usize> = Vec::new();
        let mut event_rows: Vec<EventRow> = Vec::new();
        for (i, matched) in batch.iter().enumerate() {
            let event = &matched.event;
            if seen.insert(event.id.clone()) {
                fresh.push(i);
                event_rows.push(EventRow {
                    id: event.id.clone(),
                    event_type: event.event_type.as_str().to_string(),
                    severity: event.severity.as_str(),
                    tenant_id: event.tenant.id().to_string(),
                    occurred_at: event.occurred_at,
                    payload: payload::render(event, tenants.get(event.tenant.id())),
                    received_at: now,
                });
            }
        }
        // Another instance may store one of them first; then it is a duplicate here.
        let inserted = super::insert_events(conn, &event_rows)?;
        let mut payloads: HashMap<usize, String> =
            fresh.into_iter().zip(event_rows).filter(|(_, row)| inserted.contains(&row.id)).map(|(i, row)| (i, row.payload)).collect();
        // Suppression windows and groups the fresh events' pairs touch, locked in key order.
        let noisy = batch.iter().enumerate().filter(|(i, _)| payloads.contains_key(i)).flat_map(|(_, m)| {
            m.routes.iter().filter(|r| live.contains_key(&r.channel_id)).filter_map(|r| match &r.fate {
                Fate::Send { suppress, group } if suppress.is_some() || group.is_some() => {
                    Some((r.rule_id.as_str(), r.channel_id.as_str(), suppress.as_ref(), group.as_ref()))
                }
                _ => None,
            })
        });
        let mut noisy = noisy.peekable();
        let (now, mut noise) = match noisy.peek() {
            None => (now, Noise::default()),
            Some(_) => {
                let now = super::database_now(conn, now)?;
                (now, Noise::lock(conn, noisy, now)?)
            }
        };
        let mut results = Vec::with_capacity(batch.len());
        let mut new_deliveries: Vec<DeliveryRow> = Vec::new();
        for (i, matched) in batch.iter().enumerate() {
            let event = &matched.event;
            let Some(body) = payloads.remove(&i) else {
                results.push(Ingested { event_id: event.id.clone(), duplicate: true, deliveries: vec![], decided: vec![], payload: None, opened_groups: vec![] });
                continue;
            };
            let mut created = Vec::new();
            let mut decided = Vec::new();
            // Parsed only for a channel that keeps incidents, once per event.
            let mut parsed: Option<serde_json::Value> = None;
            for route in matched.routes.iter().filter(|r| live.contains_key(&r.channel_id)) {
                let id = ids::new_id(ids::DELIVERY);
                let mut row = DeliveryRow::pending(
                    id.clone(),
                    event.id.clone(),
                    route.channel_id.clone(),
                    event.tenant.id().to_string(),
                    event.event_type.as_str().to_string(),
                    event.severity.as_str().to_string(),
                    route.rule_id.clone(),
                    now,
                    owner,
                );
                let status = match &route.fate {
                    Fate::Silenced { silence_id } => {
                        row.silence_id = Some(silence_id.clone());
                        DeliveryStatus::Silenced
                    }
                    Fate::Send { suppress, group } => {
                        let suppressed_by = suppress.as_ref().and_then(|s| noise.suppressed_by(&route.rule_id, &route.channel_id, s, event.severity, now));
                        match (suppressed_by, group) {
                            (Some(by), _) => {
                                row.suppressed_by = Some(by);
                                DeliveryStatus::Suppressed
                            }
                            (None, group) => {
                                if let Some(s) = suppress {
                                    noise.open_window(&route.rule_id, &route.channel_id, s, &id, event.severity, now);
                                }
                                match group.as_ref().and_then(|g| noise.group_of(&route.rule_id, &route.channel_id, g)) {
                                    Some(group_id) => {
                                        row.group_id = Some(group_id);
                                        DeliveryStatus::Grouped
                                    }
                                    None => DeliveryStatus::Pending,
                                }
                            }
                        }
                    }
                };
                if status == DeliveryStatus::Pending {
                    if let Some(Some(by)) = live.get(&route.channel_id) {
                        let payload = parsed.get_or_insert_with(|| serde_json::from_str(&body).unwrap_or_default());
                        row.incident_hash = Some(crate::domain::incident::IncidentKey::of_payload(payload, by).hash);
                    }
                    created.push((id, route.channel_id.clone()));
                    new_deliveries.push(row);
                } else {
                    row.status = status.as_str().into();
                    row.next_attempt_at = None;
                    row.lease_owner = None;
                    decided.push((id, route.channel_id.clone(), status));
                    new_deliveries.push(row);
                }
            }
            results.push(Ingested { event_id: event.id.clone(), duplicate: false, deliveries: created, decided, payload: Some(body), opened_groups: vec![] });
        }
        noise.save(conn)?;
        if let Some(first) = results.first_mut() {
            first.opened_groups = std::mem::take(&mut noise.opened);
        }
        insert_rows!(new_deliveries, |head| each_backend!(conn, c => diesel::insert_into(deliveries::table).values(head).execute(c))?);
        Ok(results)
    })
}

/// The refusal of an event naming by id a tenant that is not registered.
pub fn unknown_tenant(field: String, id: &str) -> Invalid {
    Invalid::new(field, format!("no tenant `{id}`; register it with POST /api/v1/tenants or send a full `tenant` object"))
}

/// Registers or renames the tenants given in full, and looks up those given by id.
fn resolve_tenants(
    conn: &mut Conn,
    batch: &[MatchedEvent],
    now: i64,
    field: &dyn Fn(usize, &str) -> String,
) -> Result<HashMap<String, Tenant>, StoreError> {
    let mut tenants: HashMap<String, Tenant> = HashMap::new();
    for matched in batch {
        if let TenantRef::Full(tenant) = &matched.event.tenant {
            tenants.insert(tenant.id.clone(), tenant.clone());
        }
    }
    for tenant in tenants.values() {
        super::tenants::upsert(conn, tenant, now)?;
    }
    let by_id: Vec<&str> = batch
        .iter()
        .filter_map(|m| match &m.event.tenant {
            TenantRef::Registered(id) if !tenants.contains_key(id) => Some(id.as_str()),
            _ => None,
        })
        .collect();
    if !by_id.is_empty() {
        for row in super::tenants::find_many(conn, &by_id)? {
            tenants.insert(row.id.clone(), TenantRow::to_tenant(&row));
        }
    }
    for (i, matched) in batch.iter().enumerate() {
        let id = matched.event.tenant.id();
        if matched.event.tenant != TenantRef::Router && !tenants.contains_key(id) {
            return Err(unknown_tenant(field(i, "tenant_id"), id).into());
        }
    }
    Ok(tenants)
}
