//! Group and suppression state (SPEC section 16), in the database so it outlives a restart and
//! is shared by every instance: joining a group or opening a suppression window when an event is
//! stored ([`Noise`], used by `events::ingest`), flushing due groups into notifications
//! ([`flush_due`]), closing or cancelling groups when their rule or channel changes, and reading
//! it, without a lock or a write, for the rule preview ([`noise_state`]).
//!
//! Concurrency (PostgreSQL, several instances): an ingesting transaction takes the suppression
//! windows it needs FOR UPDATE and the groups it joins FOR SHARE, each kind in key order, before
//! it decides anything (so two ingestions never wait on each other in a circle); a flush takes a
//! due group FOR UPDATE SKIP LOCKED. A flush therefore waits for every joining transaction to
//! commit and then sees all their events, and two instances never flush one group together:
//! every event lands in exactly one notification. SQLite's single writer runs one at a time.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use diesel::prelude::*;
use serde_json::Value;

use super::models::{DeliveryRow, EventRow, GroupRow, SuppressionRow};
use super::schema::{alert_groups, deliveries, events, rules, suppression_windows};
use super::{write, Conn, StoreError};
use crate::domain::delivery::DeliveryStatus;
use crate::domain::ids;
use crate::domain::noise::GroupSpec;
use crate::domain::notification::{Collected, Notification, MAX_LISTED};
use crate::domain::routing::{Joining, NoiseState, OpenGroup, Suppression, Window};
use crate::domain::severity::Severity;

/// Id prefix of a group.
pub const GROUP: &str = "agrp";
/// Id prefix of a notification's event.
pub const NOTIFICATION: &str = "grp";

/// The windows and groups one ingestion needs, locked, in key order.
#[derive(Default)]
pub struct Noise {
    windows: HashMap<(String, String, String), SuppressionRow>,
    /// Windows opened or reopened by this ingestion, to write back.
    changed: BTreeSet<(String, String, String)>,
    groups: HashMap<(String, String, String), (String, i64)>,
    /// Groups opened by this ingestion: their flush times.
    pub opened: Vec<i64>,
}

type Key = (String, String, String);

impl Noise {
    /// Locks (or creates) every window and group the pairs of one ingestion may touch.
    /// `pairs`: `(rule, channel, suppression, joining)`.
    pub fn lock<'a>(conn: &mut Conn, pairs: impl Iterator<Item = (&'a str, &'a str, Option<&'a Suppression>, Option<&'a Joining>)>, now: i64) -> Result<Self, StoreError> {
        let mut windows: BTreeSet<Key> = BTreeSet::new();
        let mut groups: BTreeMap<Key, &Joining> = BTreeMap::new();
        for (rule, channel, suppress, join) in pairs {
            if let Some(s) = suppress {
                windows.insert((rule.to_string(), channel.to_string(), s.key.clone()));
            }
            if let Some(j) = join {
                groups.entry((rule.to_string(), channel.to_string(), j.key_hash.clone())).or_insert(j);
            }
        }
        let mut noise = Noise::default();
        for key in windows {
            // A window not open yet is created closed (until 0), so there is a row to lock.
            let placeholder = SuppressionRow {
                rule_id: key.0.clone(),
                channel_id: key.1.clone(),
                window_key: key.2.clone(),
                delivery_id: String::new(),
                severity: Severity::Low.as_str().into(),
                opened_at: 0,
                until: 0,
            };
            each_backend!(conn, c => diesel::insert_into(suppression_windows::table).values(&placeholder).on_conflict_do_nothing().execute(c))?;
            let row = super::lock_window(conn, &key.0, &key.1, &key.2)?;
            noise.windows.insert(key, row);
        }
        for (key, joining) in groups {
            let found = open_group(conn, &key, joining, now, &mut noise.opened)?;
            noise.groups.insert(key, found);
        }
        Ok(noise)
    }

    /// The delivery that opened the window a repeat of `severity` falls in, if one is open.
    pub fn suppressed_by(&self, rule: &str, channel: &str, suppress: &Suppression, severity: Severity, now: i64) -> Option<String> {
        let window = self.windows.get(&(rule.to_string(), channel.to_string(), suppress.key.clone()))?;
        let opened_by = Severity::parse("severity", &window.severity).unwrap_or(Severity::Critical);
        // The rule's `for` as it is now: an edit applies to windows already open.
        let open = !window.delivery_id.is_empty() && window.opened_at + suppress.window_ms > now;
        (open && severity <= opened_by).then(|| window.delivery_id.clone())
    }

    /// Opens (or reopens) the window for a pair that is sent or grouped as `delivery_id`.
    pub fn open_window(&mut self, rule: &str, channel: &str, suppress: &Suppression, delivery_id: &str, severity: Severity, now: i64) {
        let key = (rule.to_string(), channel.to_string(), suppress.key.clone());
        if let Some(window) = self.windows.get_mut(&key) {
            window.delivery_id = delivery_id.to_string();
            window.severity = severity.as_str().into();
            window.opened_at = now;
            window.until = now + suppress.window_ms;
            self.changed.insert(key);
        }
    }

    /// The group a pair joins: its id.
    pub fn group_of(&self, rule: &str, channel: &str, join: &Joining) -> Option<String> {
        self.groups.get(&(rule.to_string(), channel.to_string(), join.key_hash.clone())).map(|(id, _)| id.clone())
    }

    /// Writes back the windows this ingestion opened.
    pub fn save(&self, conn: &mut Conn) -> Result<(), StoreError> {
        for key in &self.changed {
            let w = &self.windows[key];
            diesel::update(suppression_windows::table.find((&w.rule_id, &w.channel_id, &w.window_key)))
                .set((
                    suppression_windows::delivery_id.eq(&w.delivery_id),
                    suppression_windows::severity.eq(&w.severity),
                    suppression_windows::opened_at.eq(w.opened_at),
                    suppression_windows::until.eq(w.until),
                ))
                .execute(conn)?;
        }
        Ok(())
    }
}

/// The open group of a key, locked against a flush until the transaction ends, or a new one
/// (flushing `wait` from now).
fn open_group(conn: &mut Conn, key: &Key, joining: &Joining, now: i64, opened: &mut Vec<i64>) -> Result<(String, i64), StoreError> {
    let (key_text, settings) = (&joining.key_text, &joining.settings);
    for _ in 0..3 {
        if let Some(found) = super::lock_open_group(conn, &key.0, &key.1, &key.2)? {
            return Ok(found);
        }
        let flush_at = now + settings.wait.as_millis() as i64;
        let row = GroupRow {
            id: ids::new_id(GROUP),
            rule_id: key.0.clone(),
            channel_id: key.1.clone(),
            group_key: key_text.to_string(),
            key_hash: key.2.clone(),
            settings: settings.to_json().to_string(),
            opened_at: now,
            flush_at,
            last_flush_at: None,
            notifications: 0,
            earlier: 0,
            max_severity: None,
            closing: false,
            rule_name: Some(joining.rule_name.clone()),
        };
        // Another instance may open it first (the unique index on open groups); then it is
        // joined instead.
        let inserted = each_backend!(conn, c => diesel::insert_into(alert_groups::table).values(&row).on_conflict_do_nothing().execute(c))?;
        if inserted == 1 {
            opened.push(flush_at);
            return Ok((row.id, flush_at));
        }
    }
    Err(StoreError::Task(format!("could not open or join the group of rule {} and channel {}", key.0, key.1)))
}

/// A rule changed (its grouping, conditions or channels), was disabled or deleted (`deleted`:
/// its name, which its notifications still give): its open groups close. Each still sends what
/// it collected at its flush time. The groups are locked in key order first, as ingestion locks
/// them, so the two never wait on each other in a circle.
pub fn close_for_rule(conn: &mut Conn, rule_id: &str, deleted: Option<&str>) -> Result<(), StoreError> {
    // Only the groups locked here (changing one an ingestion is opening would wait on it while
    // it waits on these).
    let groups = super::lock_groups(conn, super::GroupsOf::Rule(rule_id))?;
    let ids: Vec<&str> = groups.iter().map(String::as_str).collect();
    for chunk in ids.chunks(super::deliveries::ROWS_PER_STATEMENT) {
        diesel::update(alert_groups::table.filter(alert_groups::id.eq_any(chunk)).filter(alert_groups::closing.eq(false)))
            .set(alert_groups::closing.eq(true))
            .execute(conn)?;
        if let Some(name) = deleted {
            diesel::update(alert_groups::table.filter(alert_groups::id.eq_any(chunk))).set(alert_groups::rule_name.eq(name)).execute(conn)?;
        }
    }
    Ok(())
}

/// A channel is being deleted: its groups end, and their events not yet in a notification are
/// cancelled with it. Runs before the channel row changes: groups, then the channel, in every
/// transaction that takes both (a flush checks the channel under its group's lock).
pub fn cancel_for_channel(conn: &mut Conn, channel_id: &str, now: i64) -> Result<(), StoreError> {
    // Only the groups locked here: one an ingestion opens meanwhile is cancelled by its flush,
    // which finds the channel deleted (changing it here would wait on that flush, which waits
    // on this delete's changes).
    let groups = super::lock_groups(conn, super::GroupsOf::Channel(channel_id))?;
    let ids: Vec<&str> = groups.iter().map(String::as_str).collect();
    for chunk in ids.chunks(super::deliveries::ROWS_PER_STATEMENT) {
        diesel::update(
            deliveries::table
                .filter(deliveries::group_id.eq_any(chunk))
                .filter(deliveries::status.eq(DeliveryStatus::Grouped.as_str()))
                .filter(deliveries::notification_id.is_null()),
        )
        .set((deliveries::status.eq(DeliveryStatus::Cancelled.as_str()), deliveries::updated_at.eq(now)))
        .execute(conn)?;
        diesel::delete(alert_groups::table.filter(alert_groups::id.eq_any(chunk))).execute(conn)?;
    }
    // Its suppression windows end with retention (no event is routed to it any more).
    Ok(())
}

/// The suppression window of a `(rule, channel, key)` as stored, open or not (read without a
/// lock: the preview).
pub fn window(conn: &mut Conn, rule_id: &str, channel_id: &str, key: &str) -> Result<Option<SuppressionRow>, StoreError> {
    Ok(suppression_windows::table.find((rule_id, channel_id, key)).select(SuppressionRow::as_select()).first(conn).optional()?)
}

/// The open group (not closing) of a `(rule, channel, key)`: `(id, flush_at)` (read without a
/// lock: the preview).
pub fn find_open_group(conn: &mut Conn, rule_id: &str, channel_id: &str, key: &str) -> Result<Option<(String, i64)>, StoreError> {
    Ok(alert_groups::table
        .filter(alert_groups::rule_id.eq(rule_id))
        .filter(alert_groups::channel_id.eq(channel_id))
        .filter(alert_groups::key_hash.eq(key))
        .filter(alert_groups::closing.eq(false))
        .select((alert_groups::id, alert_groups::flush_at))
        .first(conn)
        .optional()?)
}

/// The windows and open groups routing's decisions would touch, for the preview
/// (`routing::explain`). Reads only.
pub fn noise_state(conn: &mut Conn, decisions: &[crate::domain::routing::Decision]) -> Result<NoiseState, StoreError> {
    let (windows, groups) = NoiseState::wanted(decisions);
    let mut state = NoiseState::default();
    for key in windows {
        if let Some(row) = window(conn, &key.0, &key.1, &key.2)? {
            // A window written by this release always parses; anything else counts as the most
            // severe, as ingestion reads it (`Noise::suppressed_by`).
            let severity = Severity::parse("severity", &row.severity).unwrap_or(Severity::Critical);
            state.windows.insert(key, Window { delivery_id: row.delivery_id, severity, opened_at: row.opened_at });
        }
    }
    for key in groups {
        if let Some((id, flush_at)) = find_open_group(conn, &key.0, &key.1, &key.2)? {
            state.groups.insert(key, OpenGroup { id, flush_at });
        }
    }
    Ok(state)
}

/// The earliest flush time of any group (every instance's), if there is one.
pub fn next_flush_at(conn: &mut Conn) -> Result<Option<i64>, StoreError> {
    Ok(alert_groups::table.select(diesel::dsl::min(alert_groups::flush_at)).first::<Option<i64>>(conn)?)
}

/// What one flush did.
#[derive(Debug, Default)]
pub struct Flushed {
    /// `(delivery id, channel id)` of each notification made (pending, leased to this instance).
    pub notifications: Vec<(String, String)>,
    /// Channels of grouped deliveries a silence took at the flush, one entry each.
    pub silenced: Vec<String>,
    /// Those deliveries: the suppression windows they opened are let go (a silenced event opens
    /// no window).
    pub silenced_ids: Vec<String>,
    /// Repeats sent after all, their window's delivery silenced at this flush (`Released`):
    /// `(delivery id, channel id)`, pending now.
    pub revived: Vec<(String, String)>,
    /// Groups closed (nothing new since their last flush, or their rule changed).
    pub closed: usize,
    /// The earliest flush time left.
    pub next_at: Option<i64>,
}

/// A grouped event's delivery waiting for its group's flush; its event's payload is read only
/// where it is needed (a silence to judge, or listed in the notification).
struct Member {
    id: String,
    severity: String,
    tenant_id: String,
    payload: Option<String>,
}

/// Flushes up to `limit` groups due at `now`: each group's events not yet sent become one
/// notification (an `alert.group` event and a pending delivery of it to the group's channel),
/// unless a silence now holds them; a group with nothing new, or whose rule changed, closes.
pub fn flush_due(conn: &mut Conn, now: i64, limit: i64, owner: Option<&str>) -> Result<Flushed, StoreError> {
    write(conn, |conn| {
        let now = super::database_now(conn, now)?;
        let due = super::lock_due_groups(conn, now, limit)?;
        let silences = if due.is_empty() { Vec::new() } else { super::silences::current(conn, now)? };
        let mut flushed = Flushed::default();
        for group in due {
            if super::channel_deleted(conn, &group.channel_id)? {
                // Deleted while the group was open (an ingestion that began before the delete
                // opened or joined it): nothing is sent; its events are cancelled with it.
                diesel::update(deliveries::table.filter(deliveries::group_id.eq(&group.id)).filter(deliveries::status.eq(DeliveryStatus::Grouped.as_str())).filter(deliveries::notification_id.is_null()))
                    .set((deliveries::status.eq(DeliveryStatus::Cancelled.as_str()), deliveries::updated_at.eq(now)))
                    .execute(conn)?;
                diesel::delete(alert_groups::table.find(&group.id)).execute(conn)?;
                flushed.closed += 1;
                continue;
            }
            let waiting = deliveries::table
                .filter(deliveries::group_id.eq(&group.id))
                .filter(deliveries::status.eq(DeliveryStatus::Grouped.as_str()))
                .filter(deliveries::notification_id.is_null())
                .order(deliveries::id.asc());
            let members: Vec<Member> = if silences.is_empty() {
                let rows: Vec<(String, String, String)> = waiting.select((deliveries::id, deliveries::severity, deliveries::tenant_id)).load(conn)?;
                rows.into_iter().map(|(id, severity, tenant_id)| Member { id, severity, tenant_id, payload: None }).collect()
            } else {
                let rows: Vec<(String, String, String, String)> =
                    waiting.inner_join(events::table).select((deliveries::id, deliveries::severity, deliveries::tenant_id, events::payload)).load(conn)?;
                rows.into_iter().map(|(id, severity, tenant_id, payload)| Member { id, severity, tenant_id, payload: Some(payload) }).collect()
            };
            let mut sent: Vec<Member> = Vec::with_capacity(members.len());
            for member in members {
                let silence = match &member.payload {
                    None => None,
                    Some(payload) => {
                        let payload: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
                        silences.iter().find(|s| s.holds(now, &group.rule_id, &group.channel_id, false, &payload))
                    }
                };
                match silence {
                    Some(silence) => {
                        diesel::update(deliveries::table.find(&member.id))
                            .set((
                                deliveries::status.eq(DeliveryStatus::Silenced.as_str()),
                                deliveries::silence_id.eq(&silence.id),
                                deliveries::updated_at.eq(now),
                            ))
                            .execute(conn)?;
                        flushed.silenced.push(group.channel_id.clone());
                        flushed.silenced_ids.push(member.id.clone());
                    }
                    None => sent.push(member),
                }
            }
            if sent.is_empty() || group.closing {
                if !sent.is_empty() {
                    flushed.notifications.push(notify(conn, &group, &sent, now, owner)?);
                }
                diesel::delete(alert_groups::table.find(&group.id)).execute(conn)?;
                flushed.closed += 1;
                continue;
            }
            let notification = notify(conn, &group, &sent, now, owner)?;
            let interval = serde_json::from_str::<Value>(&group.settings)
                .ok()
                .and_then(|v| GroupSpec::parse(&v, "group").ok())
                .map_or(crate::domain::noise::DEFAULT_INTERVAL, |s| s.interval);
            let max = sent.iter().filter_map(|m| Severity::parse("severity", &m.severity).ok()).chain(group.max_severity.as_deref().and_then(|s| Severity::parse("severity", s).ok())).max();
            diesel::update(alert_groups::table.find(&group.id))
                .set((
                    alert_groups::earlier.eq(group.earlier + sent.len() as i32),
                    alert_groups::notifications.eq(group.notifications + 1),
                    alert_groups::max_severity.eq(max.map(Severity::as_str)),
                    alert_groups::last_flush_at.eq(now),
                    alert_groups::flush_at.eq(now + interval.as_millis() as i64),
                ))
                .execute(conn)?;
            flushed.notifications.push(notification);
        }
        flushed.next_at = next_flush_at(conn)?;
        Ok(flushed)
    })
}

/// Writes one notification of `group` holding `sent`: its event and its pending delivery, and
/// links each grouped delivery to it. Answers `(delivery id, channel id)`.
fn notify(conn: &mut Conn, group: &GroupRow, sent: &[Member], now: i64, owner: Option<&str>) -> Result<(String, String), StoreError> {
    let rule_name: String = match rules::table.find(&group.rule_id).select(rules::name).first(conn).optional()? {
        Some(name) => name,
        None => group.rule_name.clone().unwrap_or_else(|| "(deleted rule)".into()),
    };
    let key: serde_json::Map<String, Value> = serde_json::from_str(&group.group_key).unwrap_or_default();
    let earlier_max = group.max_severity.as_deref().and_then(|s| Severity::parse("severity", s).ok());
    // The payloads the body shows: the oldest listed, and the newest (its tenant object).
    let listed = &sent[..sent.len().min(MAX_LISTED)];
    let newest = sent.last().expect("a notification has events");
    let wanted: Vec<&str> = listed.iter().chain(std::iter::once(newest)).filter(|m| m.payload.is_none()).map(|m| m.id.as_str()).collect();
    let mut read: HashMap<String, String> = HashMap::with_capacity(wanted.len());
    for chunk in wanted.chunks(super::deliveries::ROWS_PER_STATEMENT) {
        let rows: Vec<(String, String)> =
            deliveries::table.inner_join(events::table).filter(deliveries::id.eq_any(chunk)).select((deliveries::id, events::payload)).load(conn)?;
        read.extend(rows);
    }
    let payload_of = |m: &'_ Member| -> String { m.payload.clone().or_else(|| read.get(&m.id).cloned()).unwrap_or_else(|| "null".into()) };
    let listed_payloads: Vec<String> = listed.iter().map(payload_of).collect();
    let newest_payload = payload_of(newest);
    let event_id = ids::new_id(NOTIFICATION);
    let severity = sent.iter().filter_map(|m| Severity::parse("severity", &m.severity).ok()).max().unwrap_or(Severity::Low);
    let one_tenant = sent.iter().all(|m| m.tenant_id == sent[0].tenant_id);
    let listed_payloads: Vec<&str> = listed_payloads.iter().map(String::as_str).collect();
    let notification = Notification {
        event_id: &event_id,
        timestamp_ms: now,
        rule_id: &group.rule_id,
        rule_name: &rule_name,
        group_id: &group.id,
        key: &key,
        earlier: group.earlier.max(0) as u64,
        max_severity: earlier_max.map_or(severity, |m| m.max(severity)),
        listed: &listed_payloads,
        all: Collected { count: sent.len() as u64, severity, newest_of_one_tenant: one_tenant.then_some(newest_payload.as_str()) },
    };
    let tenant_id = if one_tenant { sent[0].tenant_id.clone() } else { String::new() };
    let event = EventRow {
        id: event_id.clone(),
        event_type: crate::domain::notification::NOTIFICATION_EVENT.into(),
        severity: severity.as_str(),
        tenant_id: tenant_id.clone(),
        occurred_at: now,
        payload: notification.body(),
        received_at: now,
    };
    each_backend!(conn, c => diesel::insert_into(events::table).values(&event).execute(c))?;
    let delivery_id = ids::new_id(ids::DELIVERY);
    let mut delivery = DeliveryRow::pending(
        delivery_id.clone(),
        event_id,
        group.channel_id.clone(),
        tenant_id,
        crate::domain::notification::NOTIFICATION_EVENT.into(),
        severity.as_str().into(),
        group.rule_id.clone(),
        now,
        owner,
    );
    delivery.group_id = Some(group.id.clone());
    // A notification's incident is its rule and group key, whatever the channel: only a channel that
    // keeps incidents reads it (`IncidentKey::of_payload` says the same of the payload).
    delivery.incident_hash = Some(crate::domain::incident::IncidentKey::of_group(&group.rule_id, &serde_json::Value::Object(key.clone())).hash);
    each_backend!(conn, c => diesel::insert_into(deliveries::table).values(&delivery).execute(c))?;
    let ids: Vec<&str> = sent.iter().map(|m| m.id.as_str()).collect();
    for chunk in ids.chunks(super::deliveries::ROWS_PER_STATEMENT) {
        diesel::update(deliveries::table.filter(super::id_in("id", chunk)))
            .set((deliveries::notification_id.eq(&delivery_id), deliveries::updated_at.eq(now)))
            .execute(conn)?;
    }
    Ok((delivery_id, group.channel_id.clone()))
}

/// What letting go of silenced deliveries' windows did ([`release_windows`]).
#[derive(Debug, Default)]
pub struct Released {
    pub windows: usize,
    /// Deliveries that had been suppressed as repeats of a delivery silenced at its group's
    /// flush, now pending (each window's first such repeat no silence holds): `(id, channel)`.
    pub revived: Vec<(String, String)>,
    /// Channels of those repeats that a silence now holds, one entry each.
    pub silenced: Vec<String>,
}

/// Lets go of the suppression windows `deliveries` opened (silenced at their group's flush: a
/// silenced event opens no window). A repeat suppressed behind one of them would otherwise never
/// be sent although nothing silenced it: the first repeat of each window that no silence holds
/// is sent on its own (pending now) and opens the window in its place, with the later repeats
/// suppressed by it. Its own transaction, after the flush: windows are locked (in key order)
/// before deliveries, as ingestion locks them.
pub fn release_windows(conn: &mut Conn, deliveries: &[String], now: i64) -> Result<Released, StoreError> {
    let mut released = Released::default();
    let silences = super::silences::current(conn, now)?;
    for chunk in deliveries.chunks(super::deliveries::ROWS_PER_STATEMENT) {
        let mut keys: Vec<(String, String, String)> = suppression_windows::table
            .filter(suppression_windows::delivery_id.eq_any(chunk))
            .select((suppression_windows::rule_id, suppression_windows::channel_id, suppression_windows::window_key))
            .load(conn)?;
        keys.sort();
        for key in keys {
            let window = super::lock_window(conn, &key.0, &key.1, &key.2)?;
            released.windows += 1;
            let repeats: Vec<(String, String, i64, String)> = deliveries::table
                .inner_join(events::table)
                .filter(deliveries::suppressed_by.eq(&window.delivery_id))
                .filter(deliveries::status.eq(DeliveryStatus::Suppressed.as_str()))
                .order(deliveries::id.asc())
                .select((deliveries::id, deliveries::severity, deliveries::created_at, events::payload))
                .load(conn)?;
            let mut opener: Option<(String, String, i64)> = None;
            for (id, severity, created_at, payload) in repeats {
                if let Some((opener_id, _, _)) = &opener {
                    diesel::update(deliveries::table.find(&id)).set((deliveries::suppressed_by.eq(opener_id), deliveries::updated_at.eq(now))).execute(conn)?;
                    continue;
                }
                let payload: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
                match silences.iter().find(|s| s.holds(now, &key.0, &key.1, false, &payload)) {
                    Some(silence) => {
                        diesel::update(deliveries::table.find(&id))
                            .set((
                                deliveries::status.eq(DeliveryStatus::Silenced.as_str()),
                                deliveries::silence_id.eq(&silence.id),
                                deliveries::suppressed_by.eq(None::<String>),
                                deliveries::updated_at.eq(now),
                            ))
                            .execute(conn)?;
                        released.silenced.push(key.1.clone());
                    }
                    None => {
                        diesel::update(deliveries::table.find(&id))
                            .set((
                                deliveries::status.eq(DeliveryStatus::Pending.as_str()),
                                deliveries::suppressed_by.eq(None::<String>),
                                deliveries::next_attempt_at.eq(Some(now)),
                                deliveries::updated_at.eq(now),
                            ))
                            .execute(conn)?;
                        released.revived.push((id.clone(), key.1.clone()));
                        opener = Some((id, severity, created_at));
                    }
                }
            }
            let table = suppression_windows::table.find((&key.0, &key.1, &key.2));
            match opener {
                // The window as the repeat would have opened it, as long as the first one was.
                Some((id, severity, opened_at)) => {
                    diesel::update(table)
                        .set((
                            suppression_windows::delivery_id.eq(id),
                            suppression_windows::severity.eq(severity),
                            suppression_windows::opened_at.eq(opened_at),
                            suppression_windows::until.eq(opened_at + (window.until - window.opened_at)),
                        ))
                        .execute(conn)?;
                }
                None => {
                    diesel::delete(table).execute(conn)?;
                }
            }
        }
    }
    Ok(released)
}
