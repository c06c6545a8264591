//! An Office 365 content blob as the router knows it (SPEC section 14): which blob, whose, where,
//! and until when it can be fetched. Read and checked by `sources::o365::feed`, kept by the store.

use super::time::Millis;

/// One content blob, as a notification or the content listing describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentRef {
    pub content_id: String,
    /// The Microsoft tenant id, lowercase.
    pub organization_id: String,
    pub content_uri: String,
    pub content_created: Millis,
    pub content_expiration: Millis,
}
