//! Office 365 audit records in (SPEC section 14, issue 14): records of the Management Activity
//! API's `Audit.SharePoint` content, read leniently (`record`), mapped to router events by the
//! table of `../shared/O365-MAPPING.md` (`mapping`), and the records of one user action folded
//! into one event (`fold`).
//!
//! The route `POST /api/v1/sources/o365/audit` (`routes::sources`) reads, maps and folds the
//! records of one request and ingests the events through the same path as `POST /api/v1/events`.
//! Progress on issue 14: folding across requests, the Management Activity webhook, catch-up, the
//! Tenants page's counts and the benchmark come next.

pub mod fold;
pub mod mapping;
pub mod record;
