//! Queries on `o365_actions`: the user actions of audit records that became an event, so the
//! records of one action that arrive in a later request fold into it.

use std::collections::HashMap;

use diesel::prelude::*;

use super::schema::o365_actions;
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
