//! Office 365 audit records in (SPEC section 14, issue 14): records of the Management Activity
//! API's `Audit.SharePoint` content, read leniently (`record`), mapped to router events by the
//! table of `../shared/O365-MAPPING.md` (`mapping`), and the records of one user action folded
//! into one event (`fold`).
//!
//! Progress on issue 14: the reading, the mapping and the folding within one request are built
//! and unit-tested here; the ingestion route (`POST /api/v1/sources/o365/audit`), folding across
//! requests, the Management Activity webhook and catch-up come next.

pub mod fold;
pub mod mapping;
pub mod record;
