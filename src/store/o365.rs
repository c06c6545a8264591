//! Queries on `o365_actions` (the user actions of audit records that became an event, so the
//! records of one action that arrive in a later request fold into it) and `o365_arrivals` (how
//! many records of each tenant arrived, by hour and outcome, for the Tenants page),
//! `o365_contents` (the Management Activity API's content blobs: fetched once, retried until
//! they expire) and `o365_listings` (how far the catch-up listing of each tenant got).

use std::collections::HashMap;

use diesel::prelude::*;

use super::schema::{o365_actions, o365_arrivals, o365_contents, o365_listings};
use crate::domain::content::ContentRef;
use super::{Conn, StoreError};

/// The event each of these actions became, with its time: `key → (event_id, occurred_at)`.
pub fn find(conn: &mut Conn, keys: &[String]) -> Result<HashMap<String, (String, i64)>, StoreError> {
    let mut found = HashMap::new();
    for chunk in keys.chunks(500) {
        let rows: Vec<(String, String, i64)> = o365_actions::table
            .filter(o365_actions::action_key.eq_any(chunk))
            .select((o365_actions::action_key, o365_actions::event_id, o365_actions::occurred_at))
            .load(conn)?;
        found.extend(rows.into_iter().map(|(key, event_id, at)| (key, (event_id, at))));
    }
    Ok(found)
}

/// Remembers actions that became events: `(key, event_id, occurred_at)`. The first kept wins.
pub fn remember(conn: &mut Conn, actions: &[(String, String, i64)], now: i64) -> Result<(), StoreError> {
    for (key, event_id, at) in actions {
        each_backend!(conn, c => diesel::insert_into(o365_actions::table)
            .values((
                o365_actions::action_key.eq(key),
                o365_actions::event_id.eq(event_id),
                o365_actions::occurred_at.eq(at),
                o365_actions::created_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
    }
    Ok(())
}

const HOUR_MS: i64 = 3_600_000;

/// Counts records that arrived now: `(organization_id, outcome, records)`.
pub fn count_arrivals(conn: &mut Conn, counts: &[(String, &'static str, i64)], now: i64) -> Result<(), StoreError> {
    let hour = now - now.rem_euclid(HOUR_MS);
    // In one order everywhere: two writes counting arrivals of the same tenants never deadlock.
    let mut counts: Vec<&(String, &'static str, i64)> = counts.iter().collect();
    counts.sort_unstable_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    for (organization_id, outcome, records) in counts {
        each_backend!(conn, c => diesel::insert_into(o365_arrivals::table)
            .values((
                o365_arrivals::organization_id.eq(organization_id),
                o365_arrivals::hour.eq(hour),
                o365_arrivals::outcome.eq(outcome),
                o365_arrivals::records.eq(records),
                o365_arrivals::last_at.eq(now),
            ))
            .on_conflict((o365_arrivals::organization_id, o365_arrivals::hour, o365_arrivals::outcome))
            .do_update()
            .set((o365_arrivals::records.eq(o365_arrivals::records + records), o365_arrivals::last_at.eq(now)))
            .execute(c))?;
    }
    Ok(())
}

/// What arrived from one Microsoft tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Arrivals {
    /// When the last record arrived (ever).
    pub last_at: Option<i64>,
    /// Records by outcome in the hours since `since` (the current hour included).
    pub by_outcome: std::collections::BTreeMap<String, i64>,
}

/// Arrivals by Microsoft tenant id (lowercase).
pub fn arrivals(conn: &mut Conn, since: i64) -> Result<HashMap<String, Arrivals>, StoreError> {
    let since_hour = since - since.rem_euclid(HOUR_MS);
    let last: Vec<(String, Option<i64>)> = o365_arrivals::table
        .group_by(o365_arrivals::organization_id)
        .select((o365_arrivals::organization_id, diesel::dsl::max(o365_arrivals::last_at)))
        .load(conn)?;
    let mut found: HashMap<String, Arrivals> =
        last.into_iter().map(|(org, at)| (org, Arrivals { last_at: at, ..Arrivals::default() })).collect();
    let recent: Vec<(String, String, i64)> = o365_arrivals::table
        .filter(o365_arrivals::hour.ge(since_hour))
        .select((o365_arrivals::organization_id, o365_arrivals::outcome, o365_arrivals::records))
        .load(conn)?;
    for (org, outcome, records) in recent {
        *found.entry(org).or_default().by_outcome.entry(outcome).or_default() += records;
    }
    Ok(found)
}

/// A content blob to fetch, as stored.
#[derive(Debug, Clone, Queryable, PartialEq, Eq)]
pub struct ContentRow {
    pub content_id: String,
    pub organization_id: String,
    pub content_uri: String,
    pub content_created: i64,
    pub content_expiration: i64,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<i64>,
    pub last_error: Option<String>,
    pub records: Option<i32>,
    pub fetched_at: Option<i64>,
    pub created_at: i64,
}

impl ContentRow {
    /// The blob as the API described it.
    pub fn content(&self) -> ContentRef {
        ContentRef {
            content_id: self.content_id.clone(),
            organization_id: self.organization_id.clone(),
            content_uri: self.content_uri.clone(),
            content_created: self.content_created,
            content_expiration: self.content_expiration,
        }
    }
}

/// Keeps content blobs to fetch, due now; a blob already known (notified or listed before) is
/// left as it is, so each is fetched once. Returns the ids that are new.
pub fn enqueue(conn: &mut Conn, contents: &[ContentRef], now: i64) -> Result<Vec<String>, StoreError> {
    let mut added = Vec::new();
    // In one order everywhere: two instances keeping the same blobs never deadlock.
    let mut contents: Vec<&ContentRef> = contents.iter().collect();
    contents.sort_by(|a, b| a.content_id.cmp(&b.content_id));
    for content in contents {
        let inserted = each_backend!(conn, c => diesel::insert_into(o365_contents::table)
            .values((
                o365_contents::content_id.eq(&content.content_id),
                o365_contents::organization_id.eq(&content.organization_id),
                o365_contents::content_uri.eq(&content.content_uri),
                o365_contents::content_created.eq(content.content_created),
                o365_contents::content_expiration.eq(content.content_expiration),
                o365_contents::status.eq(PENDING),
                o365_contents::attempts.eq(0),
                o365_contents::next_attempt_at.eq(now),
                o365_contents::created_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
        if inserted > 0 {
            added.push(content.content_id.clone());
        }
    }
    Ok(added)
}

pub const PENDING: &str = "pending";
pub const DONE: &str = "done";
pub const EXPIRED: &str = "expired";

/// Pending blobs due at `now` and not held by a fetch in progress, oldest first.
pub fn due(conn: &mut Conn, now: i64, limit: i64) -> Result<Vec<ContentRow>, StoreError> {
    Ok(o365_contents::table
        .filter(o365_contents::status.eq(PENDING))
        .filter(o365_contents::next_attempt_at.le(now))
        .filter(o365_contents::claimed_until.is_null().or(o365_contents::claimed_until.lt(now)))
        .order(o365_contents::next_attempt_at.asc())
        .limit(limit)
        .load(conn)?)
}

/// When the next pending blob can be fetched (for the fetcher's timer): the earliest due time of
/// the blobs nobody holds, or the end of a claim held now.
pub fn next_due(conn: &mut Conn, now: i64) -> Result<Option<i64>, StoreError> {
    let pending = o365_contents::table.filter(o365_contents::status.eq(PENDING));
    let free: Option<i64> = pending
        .filter(o365_contents::claimed_until.is_null().or(o365_contents::claimed_until.lt(now)))
        .select(diesel::dsl::min(o365_contents::next_attempt_at))
        .first(conn)?;
    let held: Option<i64> = pending.filter(o365_contents::claimed_until.ge(now)).select(diesel::dsl::min(o365_contents::claimed_until)).first(conn)?;
    Ok(free.into_iter().chain(held.map(|until| until + 1)).min())
}

/// Extends a fetch's claim while it is still working (a large blob's ingestion).
pub fn renew(conn: &mut Conn, content_id: &str, holder: &str, until: i64) -> Result<bool, StoreError> {
    let renewed = diesel::update(
        o365_contents::table
            .filter(o365_contents::content_id.eq(content_id))
            .filter(o365_contents::claimed_by.eq(holder))
            .filter(o365_contents::status.eq(PENDING)),
    )
    .set(o365_contents::claimed_until.eq(until))
    .execute(conn)?;
    Ok(renewed == 1)
}

/// Takes a due blob for one fetch by `holder` until `until`; `false` when it is done, not due,
/// or held by another fetch (another instance's, or an earlier one of this instance).
pub fn claim(conn: &mut Conn, content_id: &str, holder: &str, until: i64, now: i64) -> Result<bool, StoreError> {
    let taken = diesel::update(
        o365_contents::table
            .filter(o365_contents::content_id.eq(content_id))
            .filter(o365_contents::status.eq(PENDING))
            .filter(o365_contents::next_attempt_at.le(now))
            .filter(o365_contents::claimed_until.is_null().or(o365_contents::claimed_until.lt(now))),
    )
    .set((o365_contents::claimed_by.eq(holder), o365_contents::claimed_until.eq(until)))
    .execute(conn)?;
    Ok(taken == 1)
}

/// Gives back the claims of fetches a restarted router no longer runs: those of `holder` (this
/// instance, under its id), or every claim when no other instance shares the database.
pub fn release_claims(conn: &mut Conn, holder: Option<&str>) -> Result<usize, StoreError> {
    let release = (o365_contents::claimed_by.eq(None::<String>), o365_contents::claimed_until.eq(None::<i64>));
    let claimed = o365_contents::table.filter(o365_contents::claimed_by.is_not_null());
    Ok(match holder {
        Some(holder) => diesel::update(claimed.filter(o365_contents::claimed_by.eq(holder))).set(release).execute(conn)?,
        None => diesel::update(claimed).set(release).execute(conn)?,
    })
}

/// A fetch's end, by the fetch that holds the claim (a fetch whose claim ran out and was taken
/// changes nothing): `Ok(records)` when the blob's records were ingested (done); `Err((error,
/// next))` when it failed, to be tried again at `next`, or expired when `next` is `None`.
pub fn finish(conn: &mut Conn, content_id: &str, holder: &str, result: Result<i32, (String, Option<i64>)>, now: i64) -> Result<(), StoreError> {
    let row = o365_contents::table
        .filter(o365_contents::content_id.eq(content_id))
        .filter(o365_contents::claimed_by.eq(holder))
        .filter(o365_contents::status.eq(PENDING));
    let release = (o365_contents::claimed_by.eq(None::<String>), o365_contents::claimed_until.eq(None::<i64>));
    match result {
        Ok(records) => diesel::update(row)
            .set((
                o365_contents::status.eq(DONE),
                o365_contents::attempts.eq(o365_contents::attempts + 1),
                o365_contents::records.eq(records),
                o365_contents::fetched_at.eq(now),
                o365_contents::last_error.eq(None::<String>),
                release,
            ))
            .execute(conn)?,
        Err((error, next)) => diesel::update(row)
            .set((
                o365_contents::status.eq(if next.is_some() { PENDING } else { EXPIRED }),
                o365_contents::attempts.eq(o365_contents::attempts + 1),
                o365_contents::next_attempt_at.eq(next.unwrap_or(now)),
                o365_contents::last_error.eq(error),
                release,
            ))
            .execute(conn)?,
    };
    Ok(())
}

/// One blob, by id.
pub fn content(conn: &mut Conn, content_id: &str) -> Result<Option<ContentRow>, StoreError> {
    Ok(o365_contents::table.filter(o365_contents::content_id.eq(content_id)).first(conn).optional()?)
}

/// Blobs, newest first, optionally of one status and one Microsoft tenant.
pub fn contents(conn: &mut Conn, status: Option<&str>, organization_id: Option<&str>, limit: i64) -> Result<Vec<ContentRow>, StoreError> {
    let mut query = o365_contents::table.into_boxed();
    if let Some(status) = status {
        query = query.filter(o365_contents::status.eq(status.to_string()));
    }
    if let Some(org) = organization_id {
        query = query.filter(o365_contents::organization_id.eq(org.to_lowercase()));
    }
    Ok(query.order((o365_contents::created_at.desc(), o365_contents::content_id.desc())).limit(limit).load(conn)?)
}

/// Blobs by Microsoft tenant and status: `org → status → count`.
pub fn content_counts(conn: &mut Conn) -> Result<HashMap<String, std::collections::BTreeMap<String, i64>>, StoreError> {
    let rows: Vec<(String, String, i64)> = o365_contents::table
        .group_by((o365_contents::organization_id, o365_contents::status))
        .select((o365_contents::organization_id, o365_contents::status, diesel::dsl::count_star()))
        .load(conn)?;
    let mut found: HashMap<String, std::collections::BTreeMap<String, i64>> = HashMap::new();
    for (org, status, n) in rows {
        found.entry(org).or_default().insert(status, n);
    }
    Ok(found)
}

/// The catch-up listing of one Microsoft tenant: how far it got, and its last error.
#[derive(Debug, Clone, Queryable, PartialEq, Eq)]
pub struct ListingRow {
    pub organization_id: String,
    pub listed_until: i64,
    pub listed_at: i64,
    pub last_error: Option<String>,
}

pub fn listings(conn: &mut Conn) -> Result<HashMap<String, ListingRow>, StoreError> {
    let rows: Vec<ListingRow> = o365_listings::table.load(conn)?;
    Ok(rows.into_iter().map(|row| (row.organization_id.clone(), row)).collect())
}

/// Records a listing: `Ok(until)` when everything up to `until` was listed (and its blobs
/// kept), `Err(error)` when it stopped; an earlier `listed_until` never moves back.
pub fn listed(conn: &mut Conn, organization_id: &str, result: Result<i64, String>, now: i64) -> Result<(), StoreError> {
    let (until, error) = match result {
        Ok(until) => (until, None),
        Err(error) => (0, Some(error)),
    };
    each_backend!(conn, c => diesel::insert_into(o365_listings::table)
        .values((
            o365_listings::organization_id.eq(organization_id),
            o365_listings::listed_until.eq(until),
            o365_listings::listed_at.eq(now),
            o365_listings::last_error.eq(&error),
        ))
        .on_conflict(o365_listings::organization_id)
        .do_update()
        .set((o365_listings::listed_at.eq(now), o365_listings::last_error.eq(&error)))
        .execute(c))?;
    if error.is_none() {
        diesel::update(o365_listings::table.filter(o365_listings::organization_id.eq(organization_id)).filter(o365_listings::listed_until.lt(until)))
            .set(o365_listings::listed_until.eq(until))
            .execute(conn)?;
    }
    Ok(())
}
