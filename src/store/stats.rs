//! Delivery statistics for the Overview and the Channels page: deliveries per hour by status,
//! p50/p95 attempt time per channel, what waits, and each channel's last attempted delivery.
//!
//! Every query is bounded by the window it is asked for (at most [`MAX_HOURS`]) and reads through
//! an existing index: deliveries by their id, whose body is the time they were made (a range of
//! the primary key, as `channels::stats` does), attempts by their delivery id (the first column of
//! their primary key), pending deliveries through the due index. The statements are the same on
//! SQLite and PostgreSQL: integer division, window functions (`ROW_NUMBER`, `COUNT(*) OVER`),
//! and instants written in as numbers (never text from a request).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::deliveries::first_id_created_at;
use super::schema::deliveries;
use super::{Conn, StoreError};

/// One hour, in milliseconds: the width of a bucket.
pub const HOUR_MS: i64 = 3_600_000;

/// The longest window asked for: a week of hourly buckets.
pub const MAX_HOURS: i64 = 168;

/// How many deliveries of a channel were made in one hour and now have one status.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct HourCount {
    #[diesel(sql_type = Text)]
    pub channel_id: String,
    /// The hour, as hours since the Unix epoch (UTC).
    #[diesel(sql_type = BigInt)]
    pub hour: i64,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// Deliveries made since `since` (Unix ms), counted per channel, hour and status they have now.
pub fn deliveries_by_hour(conn: &mut Conn, since: i64) -> Result<Vec<HourCount>, StoreError> {
    // The id range (a minute wider: an id's time and `created_at` are read apart) keeps the read
    // to the window's deliveries; `created_at` decides which are in it.
    let sql = format!(
        "SELECT channel_id, created_at / {HOUR_MS} AS hour, status, COUNT(*) AS count FROM deliveries \
         WHERE id >= '{first}' AND created_at >= {since} \
         GROUP BY channel_id, created_at / {HOUR_MS}, status",
        first = first_id_created_at(since - 60_000),
    );
    Ok(each_backend!(conn, c => diesel::sql_query(&sql).load::<HourCount>(c))?)
}

/// A channel's attempt times over a window: how many attempts, and the nearest-rank p50 and p95
/// of their durations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptTimes {
    pub attempts: i64,
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
}

#[derive(QueryableByName)]
struct Ranked {
    #[diesel(sql_type = Text)]
    channel_id: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    rn: i64,
    #[diesel(sql_type = BigInt)]
    duration_ms: i64,
}

/// Nearest rank of percentile `p` among `n` values (1-based), as the SQL computes it.
fn rank(p: i64, n: i64) -> i64 {
    (p * n + 99) / 100
}

/// Per channel, the attempts of the deliveries made since `since` that started since then, with
/// their p50 and p95 duration (nearest rank, computed in SQL: only two rows per channel come back).
pub fn attempt_times(conn: &mut Conn, since: i64) -> Result<Vec<(String, AttemptTimes)>, StoreError> {
    let sql = format!(
        "SELECT channel_id, n, rn, duration_ms FROM ( \
           SELECT d.channel_id AS channel_id, a.duration_ms AS duration_ms, \
                  ROW_NUMBER() OVER (PARTITION BY d.channel_id ORDER BY a.duration_ms) AS rn, \
                  COUNT(*) OVER (PARTITION BY d.channel_id) AS n \
           FROM attempts a JOIN deliveries d ON d.id = a.delivery_id \
           WHERE a.delivery_id >= '{first}' AND d.created_at >= {since} AND a.started_at >= {since} \
         ) ranked \
         WHERE rn = (50 * n + 99) / 100 OR rn = (95 * n + 99) / 100",
        first = first_id_created_at(since - 60_000),
    );
    let rows = each_backend!(conn, c => diesel::sql_query(&sql).load::<Ranked>(c))?;
    let mut times: Vec<(String, AttemptTimes)> = Vec::new();
    for row in rows {
        let at = match times.iter().position(|(id, _)| *id == row.channel_id) {
            Some(at) => at,
            None => {
                times.push((row.channel_id.clone(), AttemptTimes { attempts: row.n, ..AttemptTimes::default() }));
                times.len() - 1
            }
        };
        let entry = &mut times[at].1;
        // With one attempt both ranks are the same row.
        if row.rn == rank(50, row.n) {
            entry.p50_ms = Some(row.duration_ms);
        }
        if row.rn == rank(95, row.n) {
            entry.p95_ms = Some(row.duration_ms);
        }
    }
    Ok(times)
}

/// What waits for a channel: pending deliveries of any age, those made before `stuck_before`,
/// and when the oldest pending one was made.
#[derive(Debug, Clone, Default, PartialEq, Eq, QueryableByName)]
pub struct Waiting {
    #[diesel(sql_type = Text)]
    pub channel_id: String,
    #[diesel(sql_type = BigInt)]
    pub pending: i64,
    #[diesel(sql_type = BigInt)]
    pub stuck: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub oldest_at: Option<i64>,
}

/// Per channel with pending deliveries: how many wait, how many were made before `stuck_before`.
pub fn waiting(conn: &mut Conn, stuck_before: i64) -> Result<Vec<Waiting>, StoreError> {
    // `status = 'pending'` as SQLite's partial due index is written, so it reads only that index.
    let sql = format!(
        "SELECT channel_id, COUNT(*) AS pending, \
                SUM(CASE WHEN created_at < {stuck_before} THEN 1 ELSE 0 END) AS stuck, \
                MIN(created_at) AS oldest_at \
         FROM deliveries WHERE status = 'pending' GROUP BY channel_id"
    );
    Ok(each_backend!(conn, c => diesel::sql_query(&sql).load::<Waiting>(c))?)
}

/// How many of a channel's deliveries are pending.
pub fn waiting_of(conn: &mut Conn, channel_id: &str) -> Result<i64, StoreError> {
    Ok(deliveries::table
        .filter(deliveries::channel_id.eq(channel_id))
        .filter(super::deliveries::is_pending())
        .count()
        .get_result(conn)?)
}

/// A channel's newest delivery that has been attempted: its id, status now, when it last
/// changed, and its last answer.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct LastDelivery {
    pub id: String,
    pub status: String,
    pub updated_at: i64,
    pub status_code: Option<i32>,
    pub error_kind: Option<String>,
}

/// The newest attempted delivery of each channel in `ids` (walking its deliveries newest first
/// through `deliveries_by_channel`, past those not attempted yet).
pub fn last_deliveries(conn: &mut Conn, ids: &[String]) -> Result<Vec<(String, LastDelivery)>, StoreError> {
    let mut last = Vec::new();
    for id in ids {
        let found: Option<LastDelivery> = deliveries::table
            .filter(deliveries::channel_id.eq(id))
            .filter(deliveries::attempt_count.gt(0))
            .order(deliveries::id.desc())
            .select((deliveries::id, deliveries::status, deliveries::updated_at, deliveries::last_status_code, deliveries::last_error_kind))
            .first(conn)
            .optional()?;
        if let Some(found) = found {
            last.push((id.clone(), found));
        }
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::rank;

    #[test]
    fn nearest_ranks_are_the_ones_a_person_expects() {
        assert_eq!((rank(50, 1), rank(95, 1)), (1, 1));
        assert_eq!((rank(50, 4), rank(95, 4)), (2, 4));
        assert_eq!((rank(50, 20), rank(95, 20)), (10, 19));
        assert_eq!((rank(50, 101), rank(95, 101)), (51, 96));
    }
}
