//! Queries on `channels`. A deleted channel keeps its row (`deleted_at` set) so the alert log
//! can still name it; every read here leaves deleted channels out.

use std::collections::HashMap;

use diesel::dsl::count_star;
use diesel::prelude::*;

use super::models::{ChannelRow, HealthRow};
use super::schema::{channel_health, channels, deliveries, rule_channels, rules};
use super::{write, Conn, StoreError};
use crate::domain::breaker::Health;
use crate::domain::delivery::DeliveryStatus;
use crate::channels::ChannelKind;
use crate::domain::channel::{ChannelUrl, CustomHeaders, RateLimit, SigningSecret};

/// A new channel, already parsed.
pub struct NewChannel {
    pub id: String,
    pub name: String,
    pub kind: ChannelKind,
    pub url: ChannelUrl,
    pub enabled: bool,
    pub headers: CustomHeaders,
    pub secret: SigningSecret,
    pub rate_limit: Option<RateLimit>,
    /// The settings of its type, checked.
    pub config: crate::channels::Config,
}

/// A change to a channel; `None` leaves the field as it is.
#[derive(Default)]
pub struct ChannelChange {
    pub name: Option<String>,
    pub url: Option<ChannelUrl>,
    pub enabled: Option<bool>,
    pub headers: Option<CustomHeaders>,
    /// `Some(None)` removes the limit.
    pub rate_limit: Option<Option<RateLimit>>,
    /// Settings of the channel's type as given, merged into the stored ones and checked here,
    /// under the row's lock.
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Delivery health of one channel.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ChannelStats {
    /// Deliveries created in the last 24 hours, by their current status.
    pub succeeded_24h: i64,
    pub failed_24h: i64,
    pub pending_24h: i64,
    /// Deliveries created in the last 24 hours that noise control held back (SPEC section 16):
    /// not failures, and never retried.
    pub grouped_24h: i64,
    pub suppressed_24h: i64,
    pub silenced_24h: i64,
    /// Deliveries waiting for an attempt, of any age.
    pub pending: i64,
    /// The most recent failed attempt's error, if any delivery has one.
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
}

const DAY_MS: i64 = 24 * 3600 * 1000;

pub fn create(conn: &mut Conn, channel: &NewChannel, now: i64) -> Result<ChannelRow, StoreError> {
    let row = ChannelRow {
        id: channel.id.clone(),
        name: channel.name.clone(),
        kind: channel.kind.as_str().to_string(),
        url: channel.url.as_str().to_string(),
        enabled: channel.enabled,
        headers: serde_json::to_string(&channel.headers).expect("headers serialise"),
        secret: channel.secret.expose().to_string(),
        created_at: now,
        updated_at: now,
        deleted_at: None,
        previous_secret: None,
        previous_secret_expires_at: None,
        rate_limit_per_second: channel.rate_limit.map(|r| r.per_second() as i32),
        disabled_reason: None,
        disabled_at: None,
        disabled_told_at: None,
        config: serde_json::to_string(&channel.config).expect("settings serialise"),
    };
    write(conn, |conn| {
        diesel::insert_into(channels::table).values(&row).execute(conn)?;
        Ok(())
    })?;
    Ok(row)
}

pub fn list(conn: &mut Conn) -> Result<Vec<ChannelRow>, StoreError> {
    Ok(channels::table
        .filter(channels::deleted_at.is_null())
        .order(channels::id.asc())
        .select(ChannelRow::as_select())
        .load(conn)?)
}

pub fn get(conn: &mut Conn, id: &str) -> Result<ChannelRow, StoreError> {
    channels::table
        .find(id)
        .filter(channels::deleted_at.is_null())
        .select(ChannelRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("channel"))
}

/// The ids among `ids` that name live channels.
pub fn existing(conn: &mut Conn, ids: &[String]) -> Result<Vec<String>, StoreError> {
    Ok(channels::table
        .filter(channels::id.eq_any(ids))
        .filter(channels::deleted_at.is_null())
        .select(channels::id)
        .load(conn)?)
}

/// Of the channels `ids`, those deliveries are made for (enabled, not deleted), each with the
/// `incident_by` paths of a type that keeps incidents (`None` for the others).
pub fn deliverable_kinds(conn: &mut Conn, ids: &[&str]) -> Result<HashMap<String, Option<Vec<String>>>, StoreError> {
    let rows: Vec<(String, String)> = channels::table
        .filter(super::id_in("id", ids))
        .filter(channels::deleted_at.is_null())
        .filter(channels::enabled.eq(true))
        .select((channels::id, channels::kind))
        .load(conn)?;
    let keeping: Vec<&str> = rows.iter().filter(|(_, kind)| ChannelKind::from_stored(kind).is_ok_and(ChannelKind::keeps_incidents)).map(|(id, _)| id.as_str()).collect();
    let mut paths: HashMap<String, Vec<String>> = HashMap::new();
    if !keeping.is_empty() {
        let settings: Vec<(String, String)> = channels::table.filter(super::id_in("id", &keeping)).select((channels::id, channels::config)).load(conn)?;
        for (id, stored) in settings {
            let config: crate::channels::Config = serde_json::from_str(&stored).unwrap_or_default();
            // Stored settings parsed when saved; should they no longer, the defaults hold.
            let by = crate::channels::settings::incidents(&config).map(|s| s.by).unwrap_or_else(|_| crate::domain::incident::DEFAULT_INCIDENT_BY.iter().map(|p| p.to_string()).collect());
            paths.insert(id, by);
        }
    }
    Ok(rows.into_iter().map(|(id, _)| {
        let by = paths.remove(&id);
        (id, by)
    }).collect())
}

pub fn update(conn: &mut Conn, id: &str, change: ChannelChange, now: i64) -> Result<ChannelRow, StoreError> {
    write(conn, |conn| {
        super::lock_for_change(conn, super::Changeable::Channel, id)?;
        let mut row = get(conn, id)?;
        if let Some(name) = change.name {
            row.name = name;
        }
        if let Some(url) = change.url {
            row.url = url.as_str().to_string();
        }
        if let Some(enabled) = change.enabled {
            if enabled && !row.enabled {
                // Enabled again: the reason it was disabled is history, and its circuit starts
                // closed, so its backlog flows at once.
                row.disabled_reason = None;
                row.disabled_at = None;
                row.disabled_told_at = None;
                diesel::delete(channel_health::table.find(id)).execute(conn)?;
            }
            row.enabled = enabled;
        }
        if let Some(headers) = change.headers {
            row.headers = serde_json::to_string(&headers).expect("headers serialise");
        }
        if let Some(rate_limit) = change.rate_limit {
            row.rate_limit_per_second = rate_limit.map(|r| r.per_second() as i32);
        }
        if let Some(given) = change.settings.filter(|given| !given.is_empty()) {
            let kind = ChannelKind::from_stored(&row.kind).map_err(|unknown| crate::domain::Invalid::new("type", unknown.to_string()))?;
            let config = crate::channels::configure(kind, given, Some(&row.settings()))?;
            row.config = serde_json::to_string(&config).expect("settings serialise");
        }
        row.updated_at = now;
        diesel::update(channels::table.find(id))
            .set((
                channels::name.eq(&row.name),
                channels::url.eq(&row.url),
                channels::enabled.eq(row.enabled),
                channels::headers.eq(&row.headers),
                channels::rate_limit_per_second.eq(row.rate_limit_per_second),
                channels::config.eq(&row.config),
                channels::disabled_reason.eq(&row.disabled_reason),
                channels::disabled_at.eq(row.disabled_at),
                channels::disabled_told_at.eq(row.disabled_told_at),
                channels::updated_at.eq(now),
            ))
            .execute(conn)?;
        Ok(row)
    })
}

/// Replaces a channel's signing secret; the old one keeps signing until `now + grace_ms`.
pub fn rotate_secret(conn: &mut Conn, id: &str, secret: &SigningSecret, now: i64, grace_ms: i64) -> Result<ChannelRow, StoreError> {
    write(conn, |conn| {
        super::lock_for_change(conn, super::Changeable::Channel, id)?;
        let mut row = get(conn, id)?;
        row.previous_secret = Some(std::mem::replace(&mut row.secret, secret.expose().to_string()));
        row.previous_secret_expires_at = Some(now + grace_ms);
        row.updated_at = now;
        diesel::update(channels::table.find(id))
            .set((
                channels::secret.eq(&row.secret),
                channels::previous_secret.eq(&row.previous_secret),
                channels::previous_secret_expires_at.eq(row.previous_secret_expires_at),
                channels::updated_at.eq(now),
            ))
            .execute(conn)?;
        Ok(row)
    })
}

/// Deletes a channel: it leaves every rule, and its pending deliveries become `cancelled`.
/// Returns how many deliveries were cancelled.
pub fn delete(conn: &mut Conn, id: &str, now: i64) -> Result<usize, StoreError> {
    write(conn, |conn| {
        get(conn, id)?;
        // Its groups end first: groups before the channel row, as a flush takes them.
        super::groups::cancel_for_channel(conn, id, now)?;
        diesel::update(channels::table.find(id))
            .set((channels::deleted_at.eq(now), channels::enabled.eq(false), channels::updated_at.eq(now)))
            .execute(conn)?;
        diesel::delete(rule_channels::table.filter(rule_channels::channel_id.eq(id))).execute(conn)?;
        // A rule left without channels routes nothing: it is disabled, and kept for editing.
        let without_channels =
            diesel::dsl::not(diesel::dsl::exists(rule_channels::table.filter(rule_channels::rule_id.eq(rules::id))));
        diesel::update(rules::table.filter(rules::enabled.eq(true)).filter(without_channels))
            .set((rules::enabled.eq(false), rules::updated_at.eq(now)))
            .execute(conn)?;
        let cancelled = diesel::update(
            deliveries::table.filter(deliveries::channel_id.eq(id)).filter(super::deliveries::is_pending()),
        )
        .set((
            deliveries::status.eq(DeliveryStatus::Cancelled.as_str()),
            deliveries::next_attempt_at.eq(None::<i64>),
            deliveries::updated_at.eq(now),
        ))
        .execute(conn)?;
        Ok(cancelled)
    })
}

/// Delivery health for the given channels.
pub fn stats(conn: &mut Conn, ids: &[String], now: i64) -> Result<HashMap<String, ChannelStats>, StoreError> {
    let mut stats: HashMap<String, ChannelStats> = ids.iter().map(|id| (id.clone(), ChannelStats::default())).collect();
    // One row per channel with a count per status, grouped in the order the channel index
    // already reads them (grouping by channel and status would sort the whole day's rows).
    let count = |status: &'static str| diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!("SUM(CASE WHEN deliveries.status = '{status}' THEN 1 ELSE 0 END)"));
    let recent: Vec<(String, i64, i64, i64, i64, i64, i64)> = deliveries::table
        .filter(deliveries::channel_id.eq_any(ids))
        .filter(deliveries::created_at.ge(now - DAY_MS))
        // The same day as a range of ids (a minute wider: an id's time and `created_at` are
        // read apart), so only the day's deliveries of each channel are read.
        .filter(deliveries::id.ge(super::deliveries::first_id_created_at(now - DAY_MS - 60_000)))
        .group_by(deliveries::channel_id)
        .select((
            deliveries::channel_id,
            count("succeeded"),
            count("failed"),
            count("pending"),
            count("grouped"),
            count("suppressed"),
            count("silenced"),
        ))
        .load(conn)?;
    for (channel_id, succeeded, failed, pending, grouped, suppressed, silenced) in recent {
        if let Some(s) = stats.get_mut(&channel_id) {
            (s.succeeded_24h, s.failed_24h, s.pending_24h) = (succeeded, failed, pending);
            (s.grouped_24h, s.suppressed_24h, s.silenced_24h) = (grouped, suppressed, silenced);
        }
    }
    let pending: Vec<(String, i64)> = deliveries::table
        .filter(deliveries::channel_id.eq_any(ids))
        .filter(super::deliveries::is_pending())
        .group_by(deliveries::channel_id)
        .select((deliveries::channel_id, count_star()))
        .load(conn)?;
    for (channel_id, count) in pending {
        if let Some(s) = stats.get_mut(&channel_id) {
            s.pending = count;
        }
    }
    for id in ids {
        let last: Option<(Option<String>, i64)> = deliveries::table
            .filter(deliveries::channel_id.eq(id))
            .filter(deliveries::last_error.is_not_null())
            .order(deliveries::updated_at.desc())
            .select((deliveries::last_error, deliveries::updated_at))
            .first(conn)
            .optional()?;
        if let (Some(s), Some((error, at))) = (stats.get_mut(id), last) {
            s.last_error = error;
            s.last_error_at = Some(at);
        }
    }
    Ok(stats)
}

/// Disables a channel the router gave up on, with the reason; answers its name, or `None` if it
/// was already disabled or deleted (then nothing changes and nobody needs telling).
pub fn disable_automatically(conn: &mut Conn, id: &str, reason: &str, now: i64) -> Result<Option<String>, StoreError> {
    write(conn, |conn| {
        super::lock_for_change(conn, super::Changeable::Channel, id)?;
        let disabled = diesel::update(
            channels::table.find(id).filter(channels::enabled.eq(true)).filter(channels::deleted_at.is_null()),
        )
        .set((
            channels::enabled.eq(false),
            channels::disabled_reason.eq(reason),
            channels::disabled_at.eq(now),
            channels::updated_at.eq(now),
        ))
        .execute(conn)?;
        if disabled == 0 {
            return Ok(None);
        }
        super::instances::bump_routing_version(conn)?;
        Ok(Some(channels::table.find(id).select(channels::name).first(conn)?))
    })
}

/// Channels the router disabled whose `router.channel_disabled` event is not stored yet:
/// `(id, name, reason)`.
pub fn untold_disabled(conn: &mut Conn) -> Result<Vec<(String, String, String)>, StoreError> {
    let rows: Vec<(String, String, Option<String>)> = channels::table
        .filter(channels::enabled.eq(false))
        .filter(channels::deleted_at.is_null())
        .filter(channels::disabled_reason.is_not_null())
        .filter(channels::disabled_told_at.is_null())
        .select((channels::id, channels::name, channels::disabled_reason))
        .load(conn)?;
    Ok(rows.into_iter().map(|(id, name, reason)| (id, name, reason.unwrap_or_default())).collect())
}

/// Marks the channel's `router.channel_disabled` event as stored (in the transaction that stores
/// it); `false` if it already was (by another instance, or before a restart), or the channel was
/// enabled again meanwhile: then the event must not be stored.
pub fn mark_disable_told(conn: &mut Conn, id: &str, now: i64) -> Result<bool, StoreError> {
    let marked = diesel::update(
        channels::table
            .find(id)
            .filter(channels::enabled.eq(false))
            .filter(channels::disabled_reason.is_not_null())
            .filter(channels::disabled_told_at.is_null()),
    )
    .set(channels::disabled_told_at.eq(now))
    .execute(conn)?;
    Ok(marked == 1)
}

/// The stored circuit-breaker health of the given channels; a channel without a row is healthy.
pub fn health(conn: &mut Conn, ids: &[String]) -> Result<HashMap<String, Health>, StoreError> {
    let rows: Vec<HealthRow> = channel_health::table.filter(channel_health::channel_id.eq_any(ids)).select(HealthRow::as_select()).load(conn)?;
    Ok(rows.into_iter().map(|r| (r.channel_id.clone(), r.to_health())).collect())
}

/// Stores a channel's health (with the attempts that changed it).
pub fn save_health(conn: &mut Conn, channel_id: &str, health: &Health, now: i64) -> Result<(), StoreError> {
    let row = HealthRow::of(channel_id, health, now);
    each_backend!(conn, c => diesel::insert_into(channel_health::table)
        .values(&row)
        .on_conflict(channel_health::channel_id)
        .do_update()
        .set(&row)
        .execute(c))?;
    Ok(())
}

impl ChannelRow {
    pub fn custom_headers(&self) -> CustomHeaders {
        serde_json::from_str(&self.headers).unwrap_or_default()
    }

    /// The settings of the channel's type.
    pub fn settings(&self) -> crate::channels::Config {
        serde_json::from_str(&self.config).unwrap_or_default()
    }
}

/// The ids of deleted channels (their rows stay for the alert log).
pub fn deleted_ids(conn: &mut Conn) -> Result<Vec<String>, StoreError> {
    Ok(channels::table.filter(channels::deleted_at.is_not_null()).select(channels::id).load(conn)?)
}

/// Per channel (not deleted): its pending deliveries and its stored circuit health, for the
/// metrics' gauges.
pub fn gauges(conn: &mut Conn) -> Result<Vec<(String, i64, Health)>, StoreError> {
    let ids: Vec<String> = channels::table.filter(channels::deleted_at.is_null()).select(channels::id).order(channels::id).load(conn)?;
    let pending: Vec<(String, i64)> = deliveries::table
        .filter(super::deliveries::is_pending())
        .group_by(deliveries::channel_id)
        .select((deliveries::channel_id, diesel::dsl::count_star()))
        .load(conn)?;
    let pending: HashMap<String, i64> = pending.into_iter().collect();
    let mut health = self::health(conn, &ids)?;
    Ok(ids
        .into_iter()
        .map(|id| {
            let (waiting, circuit) = (pending.get(&id).copied().unwrap_or(0), health.remove(&id).unwrap_or_default());
            (id, waiting, circuit)
        })
        .collect())
}
