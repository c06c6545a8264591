//! The benchmark's receiver: keep-alive HTTP on 127.0.0.1, answers 200 at once, counts every
//! (channel, event) it gets and stamps arrival times. Channels are the first path segment
//! (`/3`), events are `webhook-id` values of the form `e<number>`. Requests to `/fail` are
//! answered `500` and only counted (a receiver that fails every request). Requests to
//! `/services/collector/event` play a Splunk HEC: each concatenated envelope's `event.event_id`
//! counts as one delivery to channel 0, and the answer is `{"text":"Success","code":0}`. While
//! set unavailable (the soak's fault), channel requests are answered `503` with `Retry-After`.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

#[derive(Default)]
pub struct Tally {
    /// `counts[channel][event]`: deliveries received.
    counts: Vec<Vec<u8>>,
    /// Arrival of each event's first delivery, when stamping is on.
    arrivals: Vec<Option<Instant>>,
    /// The same first arrivals in the order they came: (event, when). Stamped under the tally's
    /// lock, so the times only grow and a window is found by binary search.
    arrival_log: Vec<(usize, Instant)>,
    pub total: u64,
    /// Requests to `/fail`.
    pub failed: u64,
    /// While set, channel requests are answered `503` with `Retry-After: 20` and not counted.
    unavailable: bool,
    /// Requests answered `503` while unavailable.
    pub refused: u64,
    /// Every arrival of an event already received on its channel: (channel, event, when), in
    /// the order they came.
    repeats: Vec<(usize, usize, Instant)>,
}

#[derive(Clone)]
pub struct Receiver {
    pub port: u16,
    tally: Arc<Mutex<Tally>>,
}

/// Counts of one channel's deliveries against the events that were acknowledged.
#[derive(Debug, Default, Clone, Copy)]
pub struct Check {
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
}

impl Receiver {
    /// Starts on `addr` (port 0: any free port) with one worker thread and a deep accept queue.
    pub fn start(addr: (&str, u16)) -> Self {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let shared = web::Data::from(tally.clone());
        let server = HttpServer::new(move || App::new().app_data(shared.clone()).default_service(web::to(receive)))
            .workers(1)
            .backlog(4096)
            .max_connections(100_000)
            .disable_signals()
            .bind(addr)
            .expect("the receiver's port is free");
        let port = server.addrs()[0].port();
        let server = server.run();
        actix_web::rt::spawn(server);
        Self { port, tally }
    }

    pub fn url(&self, channel: usize) -> String {
        format!("http://127.0.0.1:{}/{channel}", self.port)
    }

    pub fn total(&self) -> u64 {
        self.tally.lock().unwrap().total
    }

    /// The base URL of the HEC this receiver plays.
    pub fn hec_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The URL of a channel whose every request is answered `500`.
    pub fn failing_url(&self) -> String {
        format!("http://127.0.0.1:{}/fail", self.port)
    }

    /// Requests answered `500` so far.
    pub fn failed(&self) -> u64 {
        self.tally.lock().unwrap().failed
    }

    /// Deliveries to one channel so far.
    pub fn delivered(&self, channel: usize) -> u64 {
        let tally = self.tally.lock().unwrap();
        tally.counts.get(channel).map_or(0, |c| c.iter().map(|n| u64::from(*n)).sum())
    }

    /// Stamp the arrival time of each event from now on.
    pub fn stamp_arrivals(&self, events: usize) {
        let mut tally = self.tally.lock().unwrap();
        tally.arrivals = vec![None; events];
        // Room for all of them now: growing it later would copy it under the lock.
        tally.arrival_log = Vec::with_capacity(events);
    }

    pub fn arrivals(&self) -> Vec<Option<Instant>> {
        self.tally.lock().unwrap().arrivals.clone()
    }

    /// The events (by sequence number) whose first delivery arrived in `from..to`, with when.
    pub fn arrived_between(&self, from: Instant, to: Instant) -> Vec<(usize, Instant)> {
        let tally = self.tally.lock().unwrap();
        let log = &tally.arrival_log;
        log[log.partition_point(|(_, at)| *at < from)..log.partition_point(|(_, at)| *at < to)].to_vec()
    }

    /// From now on answer every channel request `503` with `Retry-After: 20` (`true`), or as
    /// before (`false`).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.tally.lock().unwrap().unavailable = unavailable;
    }

    pub fn is_unavailable(&self) -> bool {
        self.tally.lock().unwrap().unavailable
    }

    /// Requests answered `503` so far.
    pub fn refused(&self) -> u64 {
        self.tally.lock().unwrap().refused
    }

    /// Repeated arrivals (an event already received on its channel) in `from..to`.
    pub fn repeats_between(&self, from: Instant, to: Instant) -> usize {
        let tally = self.tally.lock().unwrap();
        tally.repeats.partition_point(|(_, _, at)| *at < to) - tally.repeats.partition_point(|(_, _, at)| *at < from)
    }

    /// Each repeated arrival at `channel` of an event in `0..events`: the event, when it first
    /// arrived (when stamped) and when it arrived again.
    pub fn duplicates(&self, channel: usize, events: u64) -> Vec<(usize, Option<Instant>, Instant)> {
        let tally = self.tally.lock().unwrap();
        tally
            .repeats
            .iter()
            .filter(|(c, seq, _)| *c == channel && (*seq as u64) < events)
            .map(|(_, seq, again)| (*seq, tally.arrivals.get(*seq).copied().flatten(), *again))
            .collect()
    }

    /// Every event in `0..events` against what `channel` received.
    pub fn check(&self, channel: usize, events: u64) -> Check {
        let tally = self.tally.lock().unwrap();
        let counts = tally.counts.get(channel).map(Vec::as_slice).unwrap_or(&[]);
        let mut check = Check::default();
        for seq in 0..events as usize {
            match counts.get(seq).copied().unwrap_or(0) {
                0 => check.lost += 1,
                1 => check.delivered += 1,
                n => {
                    check.delivered += 1;
                    check.duplicated += u64::from(n) - 1;
                }
            }
        }
        check
    }
}

/// The sequence number of an event id `e<number>`.
fn seq_of(event_id: &str) -> Option<usize> {
    event_id.strip_prefix('e').and_then(|n| n.parse().ok())
}

impl Tally {
    /// One delivery of event `seq` to `channel`, arrived at `now`.
    fn count(&mut self, channel: usize, seq: usize, now: Instant) {
        if self.counts.len() <= channel {
            self.counts.resize_with(channel + 1, Vec::new);
        }
        let counts = &mut self.counts[channel];
        if counts.len() <= seq {
            counts.resize((seq + 1).max(counts.len() * 2), 0);
        }
        counts[seq] = counts[seq].saturating_add(1);
        if counts[seq] > 1 {
            self.repeats.push((channel, seq, now));
        }
        if let Some(slot @ None) = self.arrivals.get_mut(seq) {
            *slot = Some(now);
            self.arrival_log.push((seq, now));
        }
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, tally: web::Data<Mutex<Tally>>) -> HttpResponse {
    if req.path() == "/fail" {
        tally.lock().unwrap().failed += 1;
        return HttpResponse::InternalServerError().finish();
    }
    if req.path() == "/services/collector/event" {
        let seqs: Vec<usize> = serde_json::Deserializer::from_slice(&body)
            .into_iter::<serde_json::Value>()
            .filter_map(|envelope| envelope.ok()?["event"]["event_id"].as_str().and_then(seq_of))
            .collect();
        let mut tally = tally.lock().unwrap();
        let now = Instant::now();
        tally.total += seqs.len() as u64;
        for seq in seqs {
            tally.count(0, seq, now);
        }
        return HttpResponse::Ok().content_type("application/json").body(r#"{"text":"Success","code":0}"#);
    }
    let channel: usize = req.path().trim_start_matches('/').parse().unwrap_or(0);
    let seq = req.headers().get("webhook-id").and_then(|v| v.to_str().ok()).and_then(seq_of);
    let mut tally = tally.lock().unwrap();
    // Stamped under the lock, so the logs' times only grow.
    let now = Instant::now();
    if tally.unavailable {
        tally.refused += 1;
        return HttpResponse::ServiceUnavailable().insert_header(("retry-after", "20")).finish();
    }
    tally.total += 1;
    if let Some(seq) = seq {
        tally.count(channel, seq, now);
    }
    HttpResponse::Ok().finish()
}

/// An endpoint that accepts connections and never answers.
pub fn black_hole() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}
