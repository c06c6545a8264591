//! Prometheus metrics (SPEC section 15), one registry per router: counters and histograms updated
//! where things happen (after their commit, so they count what the database holds), and gauges
//! read from the database when `/metrics` is scraped. The hot path never takes a lock: the
//! channel actors keep their own handles to their series ([`ChannelMetrics`]); only the first use
//! of a series looks it up. A deleted channel's series are dropped ([`Metrics::forget_channels`]):
//! by the instance that deletes it, and by every instance at its next scrape, so series never
//! pile up for channels that are gone.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use prometheus::{Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::domain::attempt::AttemptOutcome;
use crate::store::retention::Purged;

/// Bucket bounds for durations, in seconds: 1 ms to 30 s (the default delivery timeout).
const SECONDS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

pub struct Metrics {
    registry: Registry,
    pub events_ingested: IntCounter,
    pub deliveries: IntCounterVec,
    pub attempts: IntCounterVec,
    pub attempt_duration: HistogramVec,
    pub ingest_duration: Histogram,
    pub store_commit_duration: Histogram,
    pub purged: IntCounterVec,
    /// Channels deleted: their series are dropped, and are not made again by a late attempt.
    forgotten: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// What the gauges show, read from the database at scrape time: per channel, its pending
/// deliveries and whether its circuit is open.
#[derive(Debug, Default)]
pub struct ChannelGauges {
    pub channels: Vec<(String, i64, bool)>,
    /// Channels deleted (through any instance): their series are dropped at the scrape.
    pub deleted: Vec<String>,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let registry = Registry::new();
        let seconds = |name: &str, help: &str| HistogramOpts::new(name, help).buckets(SECONDS.to_vec());
        let metrics = Self {
            events_ingested: IntCounter::new("spscan_events_ingested_total", "Events stored (duplicates not counted).").unwrap(),
            deliveries: IntCounterVec::new(
                Opts::new("spscan_deliveries_total", "Deliveries that entered each status: pending when created, then succeeded, failed or cancelled; or, decided by noise control when created, grouped, suppressed or silenced (grouped events are sent in a notification, itself a pending delivery)."),
                &["channel_id", "status"],
            )
            .unwrap(),
            attempts: IntCounterVec::new(
                Opts::new("spscan_attempts_total", "Delivery attempts recorded, by outcome: success, or the error kind (http_status, timeout, connect, …)."),
                &["channel_id", "outcome"],
            )
            .unwrap(),
            attempt_duration: HistogramVec::new(seconds("spscan_attempt_duration_seconds", "How long delivery attempts took, connect to answer."), &["channel_id"]).unwrap(),
            ingest_duration: Histogram::with_opts(seconds("spscan_ingest_duration_seconds", "How long ingestion took, from the request's events to their commit.")).unwrap(),
            store_commit_duration: Histogram::with_opts(seconds("spscan_store_commit_duration_seconds", "How long database write transactions took (SQLite: one group commit).")).unwrap(),
            purged: IntCounterVec::new(Opts::new("spscan_purged_total", "Rows deleted by retention, by kind (deliveries, attempts, events)."), &["kind"]).unwrap(),
            registry,
            forgotten: Mutex::new(HashSet::new()),
        };
        for collector in [
            Box::new(metrics.events_ingested.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.deliveries.clone()),
            Box::new(metrics.attempts.clone()),
            Box::new(metrics.attempt_duration.clone()),
            Box::new(metrics.ingest_duration.clone()),
            Box::new(metrics.store_commit_duration.clone()),
            Box::new(metrics.purged.clone()),
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ] {
            metrics.registry.register(collector).expect("each metric is registered once");
        }
        Arc::new(metrics)
    }

    /// Counts what a retention run purged.
    pub fn count_purged(&self, purged: Purged) {
        for (kind, n) in [("deliveries", purged.deliveries), ("attempts", purged.attempts), ("events", purged.events)] {
            self.purged.with_label_values(&[kind]).inc_by(n as u64);
        }
    }

    /// Drops every series of these channels (deleted ones), and keeps them from being made
    /// again by an attempt that was in flight when the channel went. Whatever a deletion counted
    /// (its cancelled deliveries) is counted before this, so the last scrape before it saw it.
    pub fn forget_channels(&self, channel_ids: &[String]) {
        let mut forgotten = self.forgotten.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let new: HashSet<&str> = channel_ids.iter().map(String::as_str).filter(|id| !forgotten.contains(*id)).collect();
        if new.is_empty() {
            return;
        }
        forgotten.extend(new.iter().map(|id| id.to_string()));
        drop(forgotten);
        drop_series(&self.deliveries, &new);
        drop_series(&self.attempts, &new);
        drop_series(&self.attempt_duration, &new);
    }

    /// The counter of these labels in `vec`, or, for a deleted channel, one counted nowhere (a
    /// series looked up again would be made again).
    fn counter(&self, vec: &IntCounterVec, channel_id: &str, labels: &[&str]) -> IntCounter {
        if self.is_forgotten(channel_id) {
            return IntCounter::new("spscan_unlisted", "A deleted channel's late count, exposed nowhere.").expect("a valid name");
        }
        vec.with_label_values(labels)
    }

    /// Whether a channel's series were dropped (it was deleted).
    fn is_forgotten(&self, channel_id: &str) -> bool {
        self.forgotten.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).contains(channel_id)
    }

    /// The text exposition of every metric. The gauges are this scrape's own (two scrapes at once
    /// never see each other's half-set gauges); `None` when the database did not answer: then only
    /// `spscan_store_up 0` stands for them.
    pub fn render(&self, gauges: Option<&ChannelGauges>) -> String {
        if let Some(gauges) = gauges {
            self.forget_channels(&gauges.deleted);
        }
        let scrape = Registry::new();
        let up = prometheus::IntGauge::new("spscan_store_up", "1 when the database answered this scrape.").unwrap();
        up.set(i64::from(gauges.is_some()));
        let pending = IntGaugeVec::new(Opts::new("spscan_pending_deliveries", "Deliveries waiting to be sent (in the database, all instances)."), &["channel_id"]).unwrap();
        let open = IntGaugeVec::new(Opts::new("spscan_channel_circuit_open", "1 while the channel's circuit breaker is open or half open (sending only a probe)."), &["channel_id"]).unwrap();
        for (channel_id, waiting, is_open) in gauges.map(|g| g.channels.as_slice()).unwrap_or_default() {
            pending.with_label_values(&[channel_id]).set(*waiting);
            open.with_label_values(&[channel_id]).set(i64::from(*is_open));
        }
        for collector in [Box::new(up) as Box<dyn prometheus::core::Collector>, Box::new(pending), Box::new(open)] {
            scrape.register(collector).expect("each gauge is registered once");
        }
        let mut families = self.registry.gather();
        families.extend(scrape.gather());
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut text = Vec::new();
        // Encoding our own families into memory cannot fail.
        let _ = TextEncoder::new().encode(&families, &mut text);
        String::from_utf8(text).unwrap_or_default()
    }

    /// The series of one channel, for its actor.
    pub fn channel(self: &Arc<Self>, channel_id: &str) -> ChannelMetrics {
        ChannelMetrics {
            duration: self.attempt_duration.with_label_values(&[channel_id]),
            metrics: Arc::clone(self),
            channel_id: channel_id.to_string(),
            attempts: HashMap::new(),
            deliveries: HashMap::new(),
        }
    }
}

/// One channel's series, held by its actor: a lookup the first time each is used, none after.
pub struct ChannelMetrics {
    metrics: Arc<Metrics>,
    channel_id: String,
    duration: Histogram,
    attempts: HashMap<&'static str, IntCounter>,
    deliveries: HashMap<String, IntCounter>,
}

impl ChannelMetrics {
    /// An attempt was recorded.
    pub fn attempt(&mut self, outcome: &AttemptOutcome) {
        let label = outcome.error_kind.map(|kind| kind.as_str()).unwrap_or("success");
        let (metrics, channel_id) = (&self.metrics, &self.channel_id);
        if !self.attempts.contains_key(label) {
            self.attempts.insert(label, metrics.counter(&metrics.attempts, channel_id, &[channel_id, label]));
        }
        self.attempts[label].inc();
        self.duration.observe(outcome.duration_ms.max(0) as f64 / 1000.0);
    }

    /// A delivery entered `status`.
    pub fn delivery(&mut self, status: &str) {
        let (metrics, channel_id) = (&self.metrics, &self.channel_id);
        if !self.deliveries.contains_key(status) {
            self.deliveries.insert(status.to_string(), metrics.counter(&metrics.deliveries, channel_id, &[channel_id, status]));
        }
        self.deliveries[status].inc();
    }
}

/// Removes every series of `vec` whose `channel_id` is one of `channels` (its label values read
/// from the collector itself).
fn drop_series<B: prometheus::core::MetricVecBuilder>(vec: &prometheus::core::MetricVec<B>, channels: &HashSet<&str>) {
    use prometheus::core::Collector;
    let found: Vec<Vec<String>> = vec
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .filter(|metric| metric.get_label().iter().any(|l| l.name() == "channel_id" && channels.contains(l.value())))
        .map(|metric| metric.get_label().iter().map(|l| l.value().to_string()).collect())
        .collect();
    for labels in found {
        let _ = vec.remove_label_values(&labels.iter().map(String::as_str).collect::<Vec<_>>());
    }
}
