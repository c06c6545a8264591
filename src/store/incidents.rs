//! Queries on `incidents` (SPEC section 17): per (channel, incident key) the marker, the ticket
//! the router opened and the first message of a mail thread, shared by every instance. An
//! attempt opens (or finds) its incident before anything is sent, so the marker is stored before
//! the first create; a delivered attempt records what it wrote in the same transaction as the
//! attempt itself (`attempts::record`).

use diesel::prelude::*;

use super::schema::{deliveries, incidents};
use super::{write, Conn, StoreError};
use crate::domain::incident::{marker, IncidentKey, IncidentView, IncidentWrite, MailThread, PendingCreate, Ticket};

/// The columns an [`IncidentView`] is read from.
/// The row of the channel's incident of a key hash.
macro_rules! this {
    ($channel_id:expr, $key_hash:expr) => {
        incidents::table.filter(incidents::channel_id.eq($channel_id)).filter(incidents::key_hash.eq($key_hash))
    };
}

type Row = (String, i64, i64, Option<String>, Option<String>, Option<String>, Option<String>, Option<String>, Option<i64>, Option<String>, Option<String>);

/// The channel's incident of `key` as of `now`: the one it has if the router wrote to it less
/// than `reopen_window_ms` ago (or a create of it is pending), else a new one (a new marker, no
/// ticket, no thread) in its place. Two instances opening the same key at once get the same row.
pub fn open(conn: &mut Conn, channel_id: &str, key: &IncidentKey, now: i64, reopen_window_ms: i64) -> Result<IncidentView, StoreError> {
    write(conn, |conn| {
        let fresh_marker = marker(channel_id, key, now);
        each_backend!(conn, c => diesel::insert_into(incidents::table)
            .values((
                incidents::channel_id.eq(channel_id),
                incidents::key_hash.eq(&key.hash),
                incidents::key_text.eq(&key.text),
                incidents::marker.eq(&fresh_marker),
                incidents::opened_at.eq(now),
                incidents::written_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
        let (stored, written_at) = read(conn, channel_id, key)?;
        if written_at + reopen_window_ms <= now && stored.create.is_none() {
            // Quiet for the whole window: the next event opens a new incident. Only the first
            // of two instances replaces it (the marker it read is the one it replaces).
            let replaced = diesel::update(this!(channel_id, &key.hash).filter(incidents::marker.eq(&stored.marker)).filter(incidents::create_started_at.is_null()))
                .set((
                    incidents::marker.eq(&fresh_marker),
                    incidents::opened_at.eq(now),
                    incidents::written_at.eq(now),
                    incidents::ticket_id.eq(None::<String>),
                    incidents::ticket_key.eq(None::<String>),
                    incidents::ticket_url.eq(None::<String>),
                    incidents::thread_message_id.eq(None::<String>),
                    incidents::thread_subject.eq(None::<String>),
                    incidents::previous_ticket.eq(None::<String>),
                ))
                .execute(conn)?;
            if replaced == 1 {
                return Ok(IncidentView::new(key.clone(), fresh_marker, now));
            }
            return open(conn, channel_id, key, now, reopen_window_ms);
        }
        Ok(stored)
    })
}


/// The channel's incident of `key` as stored, and when it was last written to.
fn read(conn: &mut Conn, channel_id: &str, key: &IncidentKey) -> Result<(IncidentView, i64), StoreError> {
    let row: Row = this!(channel_id, &key.hash)
        .select((
            incidents::marker,
            incidents::opened_at,
            incidents::written_at,
            incidents::ticket_id,
            incidents::ticket_key,
            incidents::ticket_url,
            incidents::thread_message_id,
            incidents::thread_subject,
            incidents::create_started_at,
            incidents::create_delivery_id,
            incidents::previous_ticket,
        ))
        .first(conn)?;
    let (marker, opened_at, written_at, ticket_id, ticket_key, ticket_url, thread_id, thread_subject, create_at, create_by, previous) = row;
    let view = IncidentView {
        key: key.clone(),
        marker,
        opened_at,
        ticket: ticket_id.map(|id| Ticket::new(id, ticket_key, ticket_url)),
        thread: match (thread_id, thread_subject) {
            (Some(message_id), Some(subject)) => Some(MailThread { message_id, subject }),
            _ => None,
        },
        create: match (create_at, create_by) {
            (Some(started_at), Some(delivery_id)) => Some(PendingCreate { started_at, delivery_id }),
            _ => None,
        },
        previous: previous.and_then(|text| serde_json::from_str(&text).ok()),
    };
    Ok((view, written_at))
}

/// Marks that a create of the incident is about to be sent by `delivery_id`'s attempt, as of
/// `now`, if the incident still has `marker` and the pending create the attempt saw (`seen`:
/// when it started, `None` for none) — else another attempt moved it on or is opening the
/// ticket right now (a person's Redeliver beside a scheduled attempt): `Ok(false)`, nothing is
/// sent. Committed before the request goes, so a crash after it leaves the create pending and
/// the next attempt searches for the marker first.
pub fn create_starting(conn: &mut Conn, channel_id: &str, key_hash: &str, marker: &str, seen: Option<i64>, delivery_id: &str, now: i64) -> Result<bool, StoreError> {
    let incident = this!(channel_id, key_hash).filter(incidents::marker.eq(marker));
    let set = (incidents::create_started_at.eq(now), incidents::create_delivery_id.eq(delivery_id));
    let marked = match seen {
        None => diesel::update(incident.filter(incidents::create_started_at.is_null())).set(set).execute(conn)?,
        Some(at) => diesel::update(incident.filter(incidents::create_started_at.eq(at))).set(set).execute(conn)?,
    };
    Ok(marked == 1)
}

/// The incident's ticket was closed or deleted: a new ticket is to be opened, with a new marker
/// (as of `now`), linking the old one. Only the first of two attempts replaces it (guarded by
/// the marker it read); either way the incident as it now stands is answered.
pub fn ticket_closed(conn: &mut Conn, channel_id: &str, key: &IncidentKey, old: &IncidentView, now: i64) -> Result<IncidentView, StoreError> {
    write(conn, |conn| {
        let previous = old.ticket.as_ref().map(|t| serde_json::to_string(t).expect("a ticket serialises"));
        diesel::update(this!(channel_id, &key.hash).filter(incidents::marker.eq(&old.marker)))
            .set((
                incidents::marker.eq(marker(channel_id, key, now)),
                incidents::opened_at.eq(now),
                incidents::written_at.eq(now),
                incidents::ticket_id.eq(None::<String>),
                incidents::ticket_key.eq(None::<String>),
                incidents::ticket_url.eq(None::<String>),
                incidents::create_started_at.eq(None::<i64>),
                incidents::create_delivery_id.eq(None::<String>),
                incidents::previous_ticket.eq(previous),
            ))
            .execute(conn)?;
        Ok(read(conn, channel_id, key)?.0)
    })
}

/// Records what an attempt of `delivery_id` wrote: if it `delivered`, the incident was written
/// to `now` (which slides its reopen window), keeps the ticket and a thread's first message (a
/// thread is never replaced once started), and the delivery names the ticket; whether or not it
/// delivered, a create it settled is no longer pending.
pub fn written(conn: &mut Conn, delivery_id: &str, write: &IncidentWrite, delivered: bool, now: i64) -> Result<(), StoreError> {
    let marker = write.marker.as_str();
    let this = || this!(&write.channel_id, &write.key_hash).filter(incidents::marker.eq(marker));
    if write.settles_create {
        diesel::update(this()).set((incidents::create_started_at.eq(None::<i64>), incidents::create_delivery_id.eq(None::<String>))).execute(conn)?;
    }
    if !delivered {
        return Ok(());
    }
    diesel::update(this()).set(incidents::written_at.eq(now)).execute(conn)?;
    if let Some(ticket) = &write.ticket {
        diesel::update(this())
            .set((incidents::ticket_id.eq(&ticket.id), incidents::ticket_key.eq(&ticket.key), incidents::ticket_url.eq(&ticket.url)))
            .execute(conn)?;
        let shown = serde_json::to_string(ticket).expect("a ticket serialises");
        diesel::update(deliveries::table.find(delivery_id)).set(deliveries::ticket.eq(shown)).execute(conn)?;
    }
    if let Some(thread) = &write.thread {
        diesel::update(this().filter(incidents::thread_message_id.is_null()))
            .set((incidents::thread_message_id.eq(&thread.message_id), incidents::thread_subject.eq(&thread.subject)))
            .execute(conn)?;
    }
    Ok(())
}

/// Purges every incident not written to since `before` (retention); answers how many.
pub fn purge_quiet_since(conn: &mut Conn, before: i64) -> Result<usize, StoreError> {
    Ok(diesel::delete(incidents::table.filter(incidents::written_at.lt(before))).execute(conn)?)
}

#[cfg(test)]
mod tests {
    use diesel_migrations::MigrationHarness;
    use serde_json::json;

    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn an_incident_keeps_its_marker_while_written_to_and_a_quiet_one_opens_anew() {
        let dir = tempfile::tempdir().unwrap();
        let mut sqlite = super::super::sqlite::connect(dir.path().join("t.db").to_str().unwrap()).unwrap();
        sqlite.run_pending_migrations(super::super::sqlite::MIGRATIONS).unwrap();
        let mut conn = super::super::AnyConnection::Sqlite(sqlite);
        let key = IncidentKey::from_value(&json!({"/tenant/id": "contoso", "/event": "permission.x"}));
        let other = IncidentKey::from_value(&json!({"/tenant/id": "fabrikam", "/event": "permission.x"}));
        let window = 24 * HOUR;
        let first = open(&mut conn, "ch_1", &key, 0, window).unwrap();
        assert_eq!(first.marker, marker("ch_1", &key, 0));
        // Written to at 20 h: the window slides; still the same incident at 43 h.
        let page = Ticket::new(first.marker.clone(), None, None);
        let write = IncidentWrite { channel_id: "ch_1".into(), key_hash: key.hash.clone(), marker: first.marker.clone(), ticket: Some(page.clone()), thread: Some(MailThread { message_id: "<a@x>".into(), subject: "S".into() }), settles_create: false };
        written(&mut conn, "dlv_1", &write, true, 20 * HOUR).unwrap();
        let later = open(&mut conn, "ch_1", &key, 43 * HOUR, window).unwrap();
        assert_eq!((&later.marker, later.opened_at, &later.ticket), (&first.marker, 0, &Some(page)));
        assert_eq!(later.thread.unwrap().message_id, "<a@x>");
        // Another key, another channel: incidents of their own.
        assert_ne!(open(&mut conn, "ch_1", &other, 43 * HOUR, window).unwrap().marker, first.marker);
        assert_ne!(open(&mut conn, "ch_2", &key, 43 * HOUR, window).unwrap().marker, first.marker);
        // Quiet from 20 h to 44 h: a new incident, nothing of the old one kept.
        let anew = open(&mut conn, "ch_1", &key, 44 * HOUR, window).unwrap();
        assert_eq!((anew.marker.clone(), anew.opened_at, anew.ticket, anew.thread), (marker("ch_1", &key, 44 * HOUR), 44 * HOUR, None, None));
        assert_eq!(purge_quiet_since(&mut conn, 44 * HOUR).unwrap(), 2, "the other key and the other channel's, quiet since 43 h");
        assert_eq!(open(&mut conn, "ch_1", &key, 44 * HOUR, window).unwrap().marker, anew.marker, "the one written to at 44 h stays");
    }
}
