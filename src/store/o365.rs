//! Queries on `o365_actions` (the user actions of audit records that became an event, so the
//! records of one action that arrive in a later request fold into it) and `o365_arrivals` (how
//! many records of each tenant arrived, by hour and outcome, for the Tenants page).

use std::collections::HashMap;

use diesel::prelude::*;

use super::schema::{o365_actions, o365_arrivals};
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
