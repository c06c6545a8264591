//! This router instance among those sharing a database: its id, its heartbeat (the instance
//! registry behind `GET /api/v1/instances`) and the terms of the leases it holds.
//!
//! Leases (taken by the store when several instances share it): a delivery an instance ingests
//! or fetches carries the instance's id (`lease_owner`), and no other instance takes it while
//! that instance's heartbeat (every [`HEARTBEAT`]) is fresh. An instance not seen for the
//! delivery timeout plus [`LEASE_MARGIN`] (an attempt in flight has ended by then) is dead: the
//! next sweep of another instance takes its deliveries over, within `DELIVERY_TIMEOUT` + 30 s of
//! the death. The store gets these terms when it opens ([`Instance::holder`]).

use std::time::Duration;

use crate::domain::time::now_ms;
use crate::store::models::InstanceRow;
use crate::store::{self, Holder, Store};

/// How often an instance records that it is alive and renews its leases.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How much longer than the delivery timeout an instance may go unseen before its deliveries are
/// taken over: room for missed heartbeats.
pub const LEASE_MARGIN: Duration = Duration::from_secs(20);

/// Who this instance is.
#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub started_at: i64,
}

impl Instance {
    pub fn new(id: String) -> Self {
        Self { id, started_at: now_ms() }
    }

    /// This instance as the holder of leases, for the store to open with: an instance unseen
    /// for `delivery_timeout` plus [`LEASE_MARGIN`] loses what it holds.
    pub fn holder(&self, delivery_timeout: Duration) -> Holder {
        Holder { id: self.id.clone(), takeover_after: delivery_timeout + LEASE_MARGIN }
    }

    fn row(&self) -> InstanceRow {
        InstanceRow { id: self.id.clone(), version: env!("CARGO_PKG_VERSION").into(), started_at: self.started_at, last_seen_at: now_ms() }
    }

    /// Records one heartbeat (which keeps this instance's leases).
    pub async fn beat(&self, store: &Store) -> Result<(), store::StoreError> {
        let row = self.row();
        store.write(move |conn| store::instances::heartbeat(conn, &row)).await
    }

    /// Beats every [`HEARTBEAT`] for as long as the process runs; a failed beat is logged and
    /// the next one tries again (the database may be away for a while).
    pub async fn keep_beating(self, store: Store) {
        let mut ticks = actix_web::rt::time::interval(HEARTBEAT);
        // The first tick is immediate, and the start has just beaten (`Application::build`).
        ticks.tick().await;
        loop {
            ticks.tick().await;
            if let Err(err) = self.beat(&store).await {
                log::warn!("instance {}: heartbeat failed (will keep trying): {err}", self.id);
            }
        }
    }
}

/// The default instance id: host name and process id.
pub fn default_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "router".into());
    format!("{host}-{}", std::process::id())
}
