//! Ways events come in besides the plain API, one module each; each ends in the same
//! `RouterHandle` ingestion as `POST /api/v1/events`.

pub mod o365;
