//! Queries on `api_tokens`: the hashes of tokens the router generated on its first start.

use diesel::prelude::*;

use super::schema::api_tokens;
use super::{Conn, StoreError};

/// The stored hash for `role`, if a token was generated for it.
pub fn hash_of(conn: &mut Conn, role: &str) -> Result<Option<String>, StoreError> {
    Ok(api_tokens::table.find(role).select(api_tokens::token_hash).first(conn).optional()?)
}

/// Keeps the hash of a generated token, unless one is already stored (two instances starting
/// at once); returns the hash that is in force.
pub fn keep_hash(conn: &mut Conn, role: &str, hash: &str, now: i64) -> Result<String, StoreError> {
    // Instances starting together may each generate one: the first kept wins for all of them.
    each_backend!(conn, c => diesel::insert_into(api_tokens::table)
        .values((api_tokens::role.eq(role), api_tokens::token_hash.eq(hash), api_tokens::created_at.eq(now)))
        .on_conflict_do_nothing()
        .execute(c))?;
    hash_of(conn, role)?.ok_or(StoreError::NotFound("token hash"))
}
