//! Queries on `silences`: create, read, list, end now, and the silences not ended yet
//! ([`current`]) that matching and group flushes judge pairs against.
//!
//! Every change to a silence is made through `RouterHandle::change`, which bumps the routing
//! version in the same transaction and reloads routing, so every instance (each polls the
//! version) holds a new or ended silence within its poll. A silence is never deleted here: an
//! ended one stays listed for [`LISTED_AFTER_END`] (retention may purge it later).

use diesel::prelude::*;
use serde_json::Value;

use super::models::SilenceRow;
use super::schema::{rules, silences};
use super::{write, Conn, StoreError};
use crate::domain::condition::Condition;
use crate::domain::silence::{NewSilence, Silence, LISTED_AFTER_END};
use crate::domain::time::Millis;
use crate::domain::Invalid;

/// Stores a new silence; the channels and rules it names must exist (422 naming the id).
pub fn create(conn: &mut Conn, id: &str, new: &NewSilence, now: Millis) -> Result<SilenceRow, StoreError> {
    write(conn, |conn| {
        if let Some(channel_ids) = &new.channel_ids {
            let existing = super::channels::existing(conn, channel_ids)?;
            check_found("channel_ids", "channel", channel_ids, &existing)?;
        }
        if let Some(rule_ids) = &new.rule_ids {
            let existing: Vec<String> = rules::table.filter(rules::id.eq_any(rule_ids)).select(rules::id).load(conn)?;
            check_found("rule_ids", "rule", rule_ids, &existing)?;
        }
        let row = SilenceRow {
            id: id.to_string(),
            matchers: new.matchers_json.to_string(),
            starts_at: new.starts_at,
            ends_at: new.ends_at,
            comment: new.comment.clone(),
            created_by: new.created_by.clone(),
            channel_ids: new.channel_ids.as_ref().map(|ids| json_list(ids)),
            rule_ids: new.rule_ids.as_ref().map(|ids| json_list(ids)),
            created_at: now,
            updated_at: now,
        };
        diesel::insert_into(silences::table).values(&row).execute(conn)?;
        Ok(row)
    })
}

pub fn get(conn: &mut Conn, id: &str) -> Result<SilenceRow, StoreError> {
    silences::table
        .find(id)
        .select(SilenceRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("silence"))
}

/// Active and pending silences, and those ended less than [`LISTED_AFTER_END`] before `now`,
/// newest first.
pub fn list(conn: &mut Conn, now: Millis) -> Result<Vec<SilenceRow>, StoreError> {
    let since = now - LISTED_AFTER_END.as_millis() as Millis;
    Ok(silences::table
        .filter(silences::ends_at.gt(since))
        .order((silences::created_at.desc(), silences::id.desc()))
        .select(SilenceRow::as_select())
        .load(conn)?)
}

/// Ends a silence now: `ends_at` becomes `now` if it was later (a pending one also starts now,
/// so its window is empty). Ending an ended silence changes nothing. It stays listed.
pub fn end_now(conn: &mut Conn, id: &str, now: Millis) -> Result<SilenceRow, StoreError> {
    write(conn, |conn| {
        get(conn, id)?;
        let running = || silences::table.filter(silences::id.eq(id)).filter(silences::ends_at.gt(now));
        diesel::update(running().filter(silences::starts_at.gt(now))).set(silences::starts_at.eq(now)).execute(conn)?;
        diesel::update(running()).set((silences::ends_at.eq(now), silences::updated_at.eq(now))).execute(conn)?;
        get(conn, id)
    })
}

/// Every silence not ended at `now` (active or pending), parsed, for matching.
pub fn current(conn: &mut Conn, now: Millis) -> Result<Vec<Silence>, StoreError> {
    let rows: Vec<SilenceRow> = silences::table
        .filter(silences::ends_at.gt(now))
        .order(silences::id.asc())
        .select(SilenceRow::as_select())
        .load(conn)?;
    Ok(rows.iter().filter_map(parsed).collect())
}

/// A stored silence as matching uses it; `None` (logged) only for a row that no longer parses,
/// which the API never writes.
pub fn parsed(row: &SilenceRow) -> Option<Silence> {
    let matchers = serde_json::from_str::<Value>(&row.matchers)
        .map_err(|e| e.to_string())
        .and_then(|tree| Condition::parse(&tree, "matchers").map_err(|e| e.to_string()));
    let matchers = match matchers {
        Ok(matchers) => matchers,
        Err(why) => {
            log::error!("silence {} is ignored: its stored matchers do not parse ({why})", row.id);
            return None;
        }
    };
    Some(Silence {
        id: row.id.clone(),
        matchers,
        starts_at: row.starts_at,
        ends_at: row.ends_at,
        channel_ids: ids_of(row.channel_ids.as_deref()),
        rule_ids: ids_of(row.rule_ids.as_deref()),
    })
}

/// A stored id list (`channel_ids`, `rule_ids`): `None` for any.
pub fn ids_of(stored: Option<&str>) -> Option<Vec<String>> {
    stored.map(|text| serde_json::from_str(text).unwrap_or_default())
}

fn json_list(ids: &[String]) -> String {
    serde_json::to_string(ids).expect("strings serialise")
}

/// Refuses the first id of `wanted` that is not in `found`, naming it.
fn check_found(field: &str, what: &str, wanted: &[String], found: &[String]) -> Result<(), StoreError> {
    match wanted.iter().find(|id| !found.contains(id)) {
        Some(missing) => Err(Invalid::new(field, format!("no {what} `{}`", crate::domain::tenant::clip(missing))).into()),
        None => Ok(()),
    }
}
