//! Office 365 audit records in (SPEC section 14, issue 14): records of the Management Activity
//! API's `Audit.SharePoint` content, read leniently (`record`), mapped to router events by the
//! table of `docs/o365-mapping.md` (`mapping`), and the records of one user action folded
//! into one event (`fold`).
//!
//! `ingest` reads, maps and folds the records of one request (`POST /api/v1/sources/o365/audit`)
//! or content blob and ingests the events through the same path as `POST /api/v1/events`.
//! Actions that became events are remembered (`store::o365`), so records of the same action in a
//! later request fold into that event. The Management Activity API's side (`feed`: what its
//! notifications and listings say; `fetcher`: the actor that lists and fetches content blobs)
//! feeds `ingest` too.

pub mod feed;
pub mod fetcher;
pub mod fold;
pub mod ingest;
pub mod mapping;
pub mod record;

/// The prefix of an event id made from an audit record's `Id`: `o365_` + the `Id`, lowercase, so
/// a record seen twice is a duplicate.
pub const EVENT_ID_PREFIX: &str = "o365_";

/// The event id of a record's own event.
pub fn event_id_of(audit_id: &str) -> String {
    format!("{EVENT_ID_PREFIX}{}", audit_id.to_lowercase())
}
