//! The in-process handle ([`RouterHandle`]): what the HTTP routes use, and what another Rust
//! program embedding the router uses, with the same semantics. Ingestion (`ingest_one`,
//! `ingest_batch`, `ingest_valid`) returns `Ok` only after the events and all their deliveries
//! are committed; a change to channels or rules (`change`) is committed and routing reloaded
//! before it returns; a person's attempt at a channel reaches its health (`manual_attempt`);
//! `drain` stops delivering at shutdown.

use std::sync::Arc;

use actix::Addr;
use serde::Serialize;

use crate::actors::messages::{Ingest, ManualAttempt, ProbeNow, Reload, WakeChannels};
use crate::actors::rule_matcher::RuleMatcher;
use crate::domain::event::{EventInput, NewEvent};
use crate::domain::limits::Limits;
use crate::domain::Invalid;
use crate::store::events::Ingested;
use crate::instance::Instance;
use crate::store::{Conn, Store, StoreError};

/// What became of one event, as the API answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IngestResult {
    pub event_id: String,
    /// The event id was known: nothing was stored or delivered again.
    pub duplicate: bool,
    /// The deliveries it made, one per channel of every rule it triggered.
    pub deliveries: Vec<DeliveryRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeliveryRef {
    pub id: String,
    pub channel_id: String,
    /// `pending` (to be sent now), or what noise control decided: `grouped`, `suppressed`,
    /// `silenced` (recorded, not sent).
    pub status: &'static str,
}

/// Why events were not ingested. Nothing of the request was stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the router is shutting down")]
    Stopped,
}

/// A cheap, cloneable, thread-safe handle to a running router.
#[derive(Clone)]
pub struct RouterHandle {
    store: Store,
    matcher: Addr<RuleMatcher>,
    limits: Arc<Limits>,
    instance: Instance,
    metrics: Arc<crate::metrics::Metrics>,
}

impl RouterHandle {
    pub fn new(store: Store, matcher: Addr<RuleMatcher>, limits: Arc<Limits>, instance: Instance, metrics: Arc<crate::metrics::Metrics>) -> Self {
        Self { store, matcher, limits, instance, metrics }
    }

    /// The router's metrics.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// This router instance.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// Ingests one event.
    pub async fn ingest_one(&self, event: EventInput) -> Result<IngestResult, IngestError> {
        let event = NewEvent::parse(event, &self.limits)?;
        Ok(self.ingest_parsed(vec![event], false).await?.remove(0))
    }

    /// Ingests a batch, all or nothing: one bad event refuses the whole batch.
    pub async fn ingest_batch(&self, events: Vec<EventInput>) -> Result<Vec<IngestResult>, IngestError> {
        if events.is_empty() {
            return Err(Invalid::new("events", "must hold at least one event").into());
        }
        if events.len() > self.limits.max_batch_events {
            return Err(Invalid::new(
                "events",
                format!("holds {} events; the limit is {} per request (MAX_BATCH_EVENTS)", events.len(), self.limits.max_batch_events),
            )
            .into());
        }
        let parsed = events
            .into_iter()
            .enumerate()
            .map(|(i, input)| NewEvent::parse(input, &self.limits).map_err(|e| e.within(&format!("events[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?;
        self.ingest_parsed(parsed, true).await
    }

    /// Ingests every event that parses, in one transaction, and reports each in order: an event
    /// that does not parse is left out with why (the others are not refused for it).
    pub async fn ingest_valid(&self, events: Vec<EventInput>) -> Result<Vec<Result<IngestResult, Invalid>>, IngestError> {
        let parsed: Vec<Result<NewEvent, Invalid>> = events.into_iter().map(|input| NewEvent::parse(input, &self.limits)).collect();
        let valid: Vec<NewEvent> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
        let mut ingested = if valid.is_empty() { Vec::new() } else { self.ingest_parsed(valid, true).await? }.into_iter();
        Ok(parsed.into_iter().map(|p| p.map(|_| ingested.next().expect("one result per valid event"))).collect())
    }

    async fn ingest_parsed(&self, events: Vec<NewEvent>, is_batch: bool) -> Result<Vec<IngestResult>, IngestError> {
        let started = std::time::Instant::now();
        let ingested = self.matcher.send(Ingest { events, is_batch }).await.map_err(|_| IngestError::Stopped)??;
        self.metrics.ingest_duration.observe(started.elapsed().as_secs_f64());
        Ok(ingested.into_iter().map(result_of).collect())
    }

    /// Commits a change to channels or rules, then reloads routing, before the change is
    /// acknowledged. Both run as a task of their own: a client that resets its connection after
    /// sending cannot leave a committed change without its reload.
    pub async fn change<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> Result<T, StoreError> + Send + 'static,
    {
        let router = self.clone();
        detached(async move {
            // The routing version tells other instances sharing the database to reload.
            let result = router
                .store
                .write(move |conn| {
                    let changed = f(conn)?;
                    crate::store::instances::bump_routing_version(conn)?;
                    Ok(changed)
                })
                .await;
            if result.is_ok() {
                router.reload().await;
            }
            result
        })
        .await?
    }

    /// Reloads rules and channels after a committed change. A reload that fails is logged and
    /// retried by the RuleMatcher until it succeeds; the change itself is durable either way,
    /// so the caller acknowledges it.
    pub async fn reload(&self) {
        match self.matcher.send(Reload).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => log::error!("routing not yet updated after a change (retrying): {err}"),
            Err(_) => log::error!("the rule matcher stopped; routing not updated"),
        }
    }

    /// A person's attempt (Redeliver, Test) at a channel ended: it counts in the channel's health.
    pub fn manual_attempt(&self, channel_id: &str, succeeded: bool, started_at: i64) {
        self.matcher.do_send(ManualAttempt { channel_id: channel_id.to_string(), succeeded, started_at });
    }

    /// **Probe now**: the channel's open circuit goes half-open at once on this instance, and its
    /// next due delivery is the probe. Answers whether an actor of this instance serves the
    /// channel (it does whenever the channel is enabled).
    pub async fn probe_now(&self, channel_id: &str) -> bool {
        self.matcher.send(ProbeNow(channel_id.to_string())).await.unwrap_or(false)
    }

    /// Tells the channels' actors that deliveries of theirs are due now (after a bulk
    /// redelivery); other instances find them within their sweep.
    pub fn wake_channels(&self, channel_ids: Vec<String>) {
        self.matcher.do_send(WakeChannels(channel_ids));
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops delivering: no new attempts; those in flight finish and are recorded until
    /// `deadline`. Answers how many channels were still busy at the deadline (0: all recorded).
    pub async fn drain(&self, deadline: std::time::Instant) -> usize {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match actix_web::rt::time::timeout(left, self.matcher.send(crate::actors::messages::Shutdown { deadline })).await {
            Ok(answer) => answer.unwrap_or(0),
            // The matcher did not even answer in time (a reload holding it): whatever was in
            // flight is sent again at the next start.
            Err(_) => 1,
        }
    }

    /// The size limits requests are held to.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

/// Runs `work` to its end as a task of its own, whatever becomes of the caller: actix-web drops a
/// handler's future when its client resets the connection, and work that must follow a commit
/// (a reload, recording an attempt) must not go with it.
pub async fn detached<T: 'static>(work: impl std::future::Future<Output = T> + 'static) -> Result<T, StoreError> {
    actix_web::rt::spawn(work).await.map_err(|e| StoreError::Task(format!("a detached task failed: {e}")))
}

fn result_of(ingested: Ingested) -> IngestResult {
    IngestResult {
        event_id: ingested.event_id,
        duplicate: ingested.duplicate,
        deliveries: ingested
            .deliveries
            .into_iter()
            .map(|(id, channel_id)| DeliveryRef { id, channel_id, status: crate::domain::delivery::DeliveryStatus::Pending.as_str() })
            .chain(ingested.decided.into_iter().map(|(id, channel_id, status)| DeliveryRef { id, channel_id, status: status.as_str() }))
            .collect(),
    }
}
