//! The soak (issue 31; not in the default set, `--minutes N`, default 30): a steady load at 40 %
//! of what one instance delivers (or `--rate` events/s), through faults on a schedule, reported
//! minute by minute.
//!
//! On PostgreSQL two instances share the load behind a TCP proxy to the server; on SQLite one
//! instance runs. The faults:
//! - `kill -9` of an instance every 3 minutes (on PostgreSQL the two in turn), restarted 5 s
//!   later with the same `INSTANCE_ID`;
//! - the receiver answering `503` with `Retry-After` for one minute;
//! - the database connection cut for 30 s once (PostgreSQL: the proxy closes every connection
//!   and closes new ones as soon as it accepts them);
//! - one receiver that never answers, for the whole run: a second channel whose rule takes one
//!   event in a thousand.
//!
//! The load generator acts as SPScan does: each batch of 10 events is sent until an instance
//! acknowledges it (another instance, or the same later, when one is killed or answers `503`), so
//! every event is acknowledged in the end and every one must reach the healthy channel. Its
//! latency runs from the send of the request that was acknowledged to the first arrival.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{receiver, wait_until};
use crate::db_proxy::DbProxy;
use crate::receiver::black_hole;
use crate::router::{BenchDatabase, RouterProcess};
use crate::{Measure, Plan};

/// Events per ingestion request.
const BATCH: u64 = 10;
/// Requests in flight at most (a batch waits in the queue beyond that).
const SENDERS: usize = 32;
const KILL_EVERY: Duration = Duration::from_secs(180);
const RESTART_AFTER: Duration = Duration::from_secs(5);
/// `RETENTION` and `FAILED_RETENTION`: short, so the database levels off within the run.
const RETENTION: &str = "2m";

/// One event of the soak: as the benchmark's, with a path of its own, so a rule can take one
/// in a thousand (`…000.xlsx`) for the receiver that hangs.
fn soak_event(seq: u64) -> String {
    format!(
        r#"{{"event_id":"e{seq}","event":"permission.external_share_created","severity":"high","tenant_id":"bench","data":{{"site_url":"https://contoso.sharepoint.com/sites/Finance","resource_path":"Shared Documents/report {seq}.xlsx","permission_type":"specific_people_link","principal":"outsider@example.net","access_level":"edit"}}}}"#
    )
}

fn soak_batch(first: u64) -> Vec<u8> {
    let events: Vec<String> = (first..first + BATCH).map(soak_event).collect();
    format!(r#"{{"events":[{}]}}"#, events.join(",")).into_bytes()
}

/// The instances, by slot; a slot is empty while its instance is down.
type Instances = Rc<RefCell<Vec<Option<Rc<RouterProcess>>>>>;

/// What happened when: the faults, for the minute rows and for explaining duplicates.
#[derive(Default)]
struct Faults {
    /// (when, slot) of each `kill -9`.
    kills: Vec<(Instant, usize)>,
    unavailable: Option<(Instant, Instant)>,
    cut: Option<(Instant, Instant)>,
}

pub async fn soak(plan: &Plan, minutes: u64, fixed_rate: Option<f64>) -> Vec<Measure> {
    let postgres = plan.database.is_some();
    let run = Duration::from_secs(minutes.max(1) * 60);
    // 40 % of what one instance delivers, measured first on a database of its own with the
    // soak's own load shape (batches of 10, as many requests in flight): batches of 100 cost far
    // less per event on PostgreSQL, and 40 % of their rate would be the whole of this one's.
    // `--rate` gives the load instead (two builds held to the same load).
    let (rate, whence) = match fixed_rate {
        Some(rate) => {
            eprintln!("  soak: ingests {rate:.0} events/s (--rate) for {minutes} min");
            (rate.max(1.0), "--rate".to_string())
        }
        None => {
            let one = super::throughput(plan, "soak-calibration", BATCH, SENDERS).await;
            let one_rate = one[0].value.expect("the calibration's rate");
            let rate = (0.4 * one_rate).max(100.0);
            eprintln!("  soak: one instance delivered {one_rate:.0}/s; the soak ingests {rate:.0} events/s for {minutes} min");
            (rate, format!("40 % of one instance's {one_rate:.0}/s"))
        }
    };

    let receiver = receiver();
    let hole = black_hole();
    let database = BenchDatabase::fresh(plan);
    let proxy = plan.database.as_ref().map(|_| {
        let url = url::Url::parse(database.url()).expect("the database URL");
        DbProxy::start(&format!("{}:{}", url.host_str().unwrap_or("127.0.0.1"), url.port().unwrap_or(5432)))
    });
    let mut env = vec![("RETENTION", RETENTION.to_string()), ("FAILED_RETENTION", RETENTION.to_string())];
    if let Some(proxy) = &proxy {
        env.push(("DATABASE_URL", proxy.url_for(database.url())));
    }
    let slots = if postgres { 2 } else { 1 };
    let start_instance = |slot: usize| Rc::new(RouterProcess::start_on(plan, &env, database.clone(), &format!("soak-{slot}")));
    let instances: Instances = Rc::new(RefCell::new((0..slots).map(|slot| Some(start_instance(slot))).collect()));
    let first = instances.borrow()[0].clone().unwrap();
    first.setup_channels(&[json!({"url": receiver.url(0)})]).await;
    let (status, hanging) = first.post("/channels", &json!({"name": "hangs", "url": format!("http://127.0.0.1:{hole}/1")})).await;
    assert_eq!(status, 201, "{hanging}");
    let hanging = hanging["id"].as_str().unwrap().to_string();
    let (status, body) = first
        .post(
            "/rules",
            &json!({"name": "one in a thousand", "event_types": ["*"], "min_severity": "low", "channel_ids": [hanging],
                    "conditions": {"path": "/data/resource_path", "op": "suffix", "value": "000.xlsx"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    drop(first);
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;

    let capacity = (rate * run.as_secs_f64() * 1.05) as usize + 1000;
    receiver.stamp_arrivals(capacity);
    let sent_at: Rc<RefCell<Vec<Option<Instant>>>> = Rc::new(RefCell::new(vec![None; capacity / BATCH as usize + 1]));
    let queue: Rc<RefCell<VecDeque<u64>>> = Rc::default();
    let started = Instant::now();
    let stop = started + run;

    // The producer: a batch number into the queue at the steady rate, until the end.
    let producer = {
        let queue = queue.clone();
        actix_web::rt::spawn(async move {
            let mut tick = actix_web::rt::time::interval(Duration::from_millis(5));
            let mut batches = 0u64;
            while Instant::now() < stop {
                tick.tick().await;
                let due = (started.elapsed().as_secs_f64() * rate / BATCH as f64) as u64;
                while batches < due {
                    queue.borrow_mut().push_back(batches);
                    batches += 1;
                }
            }
            batches
        })
    };
    // The senders: each batch until acknowledged.
    let mut senders = Vec::new();
    for sender in 0..SENDERS {
        let (queue, instances, sent_at) = (queue.clone(), instances.clone(), sent_at.clone());
        senders.push(actix_web::rt::spawn(async move {
            let mut turn = sender;
            let mut retried = 0u64;
            loop {
                let Some(batch) = queue.borrow_mut().pop_front() else {
                    if Instant::now() >= stop + Duration::from_millis(50) && queue.borrow().is_empty() {
                        return retried;
                    }
                    actix_web::rt::time::sleep(Duration::from_millis(2)).await;
                    continue;
                };
                let body = soak_batch(batch * BATCH);
                loop {
                    turn += 1;
                    let instance = {
                        let slots = instances.borrow();
                        slots[turn % slots.len()].clone().or_else(|| slots.iter().flatten().next().cloned())
                    };
                    let sent = Instant::now();
                    let answer = match instance {
                        Some(instance) => instance.try_post_raw("/events", body.clone()).await,
                        None => Err("no instance is up".into()),
                    };
                    match answer {
                        Ok((202, _)) => {
                            sent_at.borrow_mut()[batch as usize] = Some(sent);
                            break;
                        }
                        Ok((503, _)) | Err(_) => {
                            retried += 1;
                            actix_web::rt::time::sleep(Duration::from_millis(500)).await;
                        }
                        Ok((status, answer)) => panic!("ingestion answered {status}: {answer}"),
                    }
                }
            }
        }));
    }

    // The schedule, checked every second; a row every minute.
    // The 503 minute as the middle third begins (minute 10 of 30: the first ten minutes, which
    // the last ten are held against, see only kills), the cut four minutes later (14: not when
    // the circuit's probes go, one and three minutes after the 503 began), so what they leave
    // waiting has the rest of the middle third to drain. Neither before minute 4: a short run sees
    // its first kill on a quiet router. A fault that would not end before the run does is left out.
    let unavailable_at = Duration::from_secs((minutes / 3).max(4) * 60);
    let cut_at = unavailable_at + Duration::from_secs(4 * 60);
    let mut faults = Faults::default();
    let mut kills = 0usize;
    let mut restart: Option<(Instant, usize)> = None;
    let mut rows = Vec::new();
    let mut minute_rows: Vec<MinuteRow> = Vec::new();
    let headings: Vec<String> = COLUMNS.iter().map(|(heading, _)| heading.to_string()).collect();
    eprintln!("  {}", padded(&headings));
    let mut next_minute = started + Duration::from_secs(60);
    let mut minute_faults: Vec<String> = Vec::new();
    while Instant::now() < stop {
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
        let now = Instant::now();
        let elapsed = now - started;
        // kill -9 every 3 minutes, the instances in turn; restart 5 s later.
        if elapsed >= KILL_EVERY * (kills as u32 + 1) {
            let slot = kills % slots;
            kills += 1;
            let killed = instances.borrow_mut()[slot].take();
            // SIGKILL at once, though senders may still hold the instance for a request in
            // flight; the kill's time is when the process is gone.
            if let Some(killed) = killed {
                killed.kill();
            }
            faults.kills.push((Instant::now(), slot));
            minute_faults.push(format!("kill -9 of instance {slot}"));
            restart = Some((now + RESTART_AFTER, slot));
        }
        if let Some((when, slot)) = restart {
            if now >= when {
                instances.borrow_mut()[slot] = Some(start_instance(slot));
                restart = None;
            }
        }
        if faults.unavailable.is_none() && elapsed >= unavailable_at && unavailable_at + Duration::from_secs(60) <= run {
            receiver.set_unavailable(true);
            faults.unavailable = Some((now, now + Duration::from_secs(60)));
            minute_faults.push("receiver answers 503 + Retry-After".into());
        }
        if let Some((_, until)) = faults.unavailable {
            if now >= until && receiver.is_unavailable() {
                receiver.set_unavailable(false);
            }
        }
        if let Some(proxy) = &proxy {
            if faults.cut.is_none() && elapsed >= cut_at && cut_at + Duration::from_secs(30) <= run {
                proxy.cut();
                faults.cut = Some((now, now + Duration::from_secs(30)));
                minute_faults.push("database cut for 30 s".into());
            } else if let Some((_, until)) = faults.cut {
                if now >= until && proxy.is_cut() {
                    proxy.mend();
                }
            }
        }
        if now >= next_minute {
            let row = MinuteRow::take(minute_rows.len() + 1, next_minute, &receiver, &sent_at.borrow(), &database, &hanging, &instances, queue.borrow().len(), std::mem::take(&mut minute_faults));
            eprintln!("  {}", padded(&row.cells()));
            minute_rows.push(row);
            next_minute += Duration::from_secs(60);
        }
    }
    // The end: the load stops; every acknowledged event must reach the healthy channel.
    if let Some(proxy) = &proxy {
        if proxy.is_cut() {
            proxy.mend();
        }
    }
    receiver.set_unavailable(false);
    if let Some((_, slot)) = restart {
        instances.borrow_mut()[slot] = Some(start_instance(slot));
    }
    let batches = producer.await.unwrap();
    let mut retried = 0;
    for sender in senders {
        retried += sender.await.unwrap();
    }
    let acked = batches * BATCH;
    let drained = Instant::now();
    // A delivery a killed instance held waits for its restart (at once) or, at worst, for its
    // lease to run out (DELIVERY_TIMEOUT + 30 s); a 503'd one for its retry.
    let all_in = wait_until("every acknowledged event at the healthy channel", Duration::from_secs(900), || receiver.delivered(0) >= acked && receiver.check(0, acked).lost == 0).await;
    let check = receiver.check(0, acked);
    let duplicates = receiver.duplicates(0, acked);
    let explained = explain(&duplicates, &faults, started);

    // First ten minutes against the last ten (or halves, for a shorter run).
    let window = (minute_rows.len() / 2).clamp(1, 10);
    let p99_of = |rows: &[MinuteRow]| {
        let from = rows.first().map(|r| r.from).unwrap_or(started);
        let to = rows.last().map(|r| r.to).unwrap_or(started);
        p99(&latencies(&receiver, &sent_at.borrow(), from, to))
    };
    let rss_of = |range: std::ops::Range<usize>| {
        let per_minute = rows_rss(&minute_rows[range]);
        per_minute.iter().sum::<f64>() / per_minute.len().max(1) as f64
    };
    let count = minute_rows.len();
    let (first_p99, last_p99) = (p99_of(&minute_rows[..window.min(count)]), p99_of(&minute_rows[count.saturating_sub(window)..]));
    let (first_rss, last_rss) = (rss_of(0..window.min(count)), rss_of(count.saturating_sub(window)..count));
    let backend = if postgres { "PostgreSQL, two instances" } else { "SQLite, one instance" };
    println!("{}", markdown(&headings));
    println!("{}", markdown(&vec!["---".to_string(); COLUMNS.len()]));
    for row in &minute_rows {
        println!("{}", markdown(&row.cells()));
    }
    rows.push(Measure::new("soak", "ingested/s", format!("{rate:.0}"), &format!("{backend}; {whence}; {minutes} min; {retried} requests sent again"), true).value(rate));
    rows.push(Measure::new("soak", "acknowledged", acked.to_string(), &format!("all at the healthy channel {:.0} s after the load stopped", (all_in - drained).as_secs_f64()), true));
    rows.push(Measure::new("soak", "lost", check.lost.to_string(), "acknowledged, never at the healthy channel", check.lost == 0).value(check.lost as f64));
    rows.push(Measure::new("soak", "duplicated", check.duplicated.to_string(), &explained.summary, explained.unexplained == 0).value(check.duplicated as f64));
    let p99_ok = last_p99 <= first_p99 * 1.2;
    rows.push(Measure::new("soak", "p99 ms first/last", format!("{first_p99:.1}/{last_p99:.1}"), &format!("{window} min each; last within 20 % of first"), p99_ok).value(last_p99 / first_p99.max(0.001)));
    let rss_ok = last_rss <= first_rss * 1.2;
    rows.push(Measure::new("soak", "RSS MiB first/last", format!("{first_rss:.0}/{last_rss:.0}"), &format!("mean of each minute's largest instance, {window} min each; last within 20 % of first"), rss_ok).value(last_rss / first_rss.max(0.001)));
    let at = |fault: Option<(Instant, Instant)>| fault.map_or("not in a run this short".to_string(), |(from, _)| format!("from {} s", (from - started).as_secs()));
    let unavailable = format!("503 for a minute {} ({} requests refused)", at(faults.unavailable), receiver.refused());
    let cut = if postgres { format!("database cut for 30 s {}", at(faults.cut)) } else { "no database cut (SQLite)".into() };
    rows.push(Measure::new("soak", "faults", format!("{}", faults.kills.len()), &format!("kill -9 and restart; {unavailable}; {cut}"), true));
    rows
}

/// One minute of the soak.
struct MinuteRow {
    minute: usize,
    from: Instant,
    to: Instant,
    delivered_per_second: f64,
    /// Arrivals of events already received.
    repeats: usize,
    p99_ms: f64,
    acked: u64,
    rss_mib: Vec<Option<f64>>,
    pending: (i64, i64),
    db_mib: f64,
    behind: usize,
    faults: Vec<String>,
}

impl MinuteRow {
    #[allow(clippy::too_many_arguments)]
    fn take(
        minute: usize,
        to: Instant,
        receiver: &crate::receiver::Receiver,
        sent_at: &[Option<Instant>],
        database: &BenchDatabase,
        hanging: &str,
        instances: &Instances,
        behind: usize,
        faults: Vec<String>,
    ) -> Self {
        let from = to - Duration::from_secs(60);
        let latencies = latencies(receiver, sent_at, from, to);
        let (size, wal) = database.size_bytes();
        Self {
            minute,
            from,
            to,
            delivered_per_second: latencies.len() as f64 / 60.0,
            repeats: receiver.repeats_between(from, to),
            p99_ms: p99(&latencies),
            acked: sent_at.iter().filter(|s| s.is_some()).count() as u64 * BATCH,
            rss_mib: instances.borrow().iter().map(|i| i.as_ref().map(|i| i.memory_kib().0 as f64 / 1024.0)).collect(),
            pending: database.pending_apart(hanging),
            db_mib: (size + wal) as f64 / (1024.0 * 1024.0),
            behind,
            faults,
        }
    }

    fn rss(&self) -> String {
        self.rss_mib.iter().map(|r| r.map_or("down".to_string(), |r| format!("{r:.0}"))).collect::<Vec<_>>().join(" / ")
    }

    /// The row's cells, in the order of [`COLUMNS`].
    fn cells(&self) -> Vec<String> {
        vec![
            self.minute.to_string(),
            format!("{:.0}", self.delivered_per_second),
            self.repeats.to_string(),
            format!("{:.1}", self.p99_ms),
            self.acked.to_string(),
            self.rss(),
            format!("{} ({})", self.pending.0, self.pending.1),
            format!("{:.1}", self.db_mib),
            self.behind.to_string(),
            self.faults.join("; "),
        ]
    }
}

/// The minute table's columns: heading and width when printed as it runs (the last unpadded).
const COLUMNS: [(&str, usize); 10] = [
    ("min", 3),
    ("delivered/s", 11),
    ("again", 7),
    ("p99 ms", 9),
    ("acked", 9),
    ("RSS MiB per instance", 22),
    ("pending (hangs)", 17),
    ("DB MiB", 9),
    ("behind", 9),
    ("faults", 0),
];

/// Cells as a line of the table printed while the soak runs.
fn padded(cells: &[String]) -> String {
    cells.iter().zip(COLUMNS).map(|(cell, (_, width))| format!("{cell:>width$}")).collect::<Vec<_>>().join(" ")
}

/// Cells as a row of a Markdown table.
fn markdown(cells: &[String]) -> String {
    format!("| {} |", cells.join(" | "))
}

/// Each minute's largest instance RSS (MiB).
fn rows_rss(rows: &[MinuteRow]) -> Vec<f64> {
    rows.iter().filter_map(|r| r.rss_mib.iter().flatten().copied().reduce(f64::max)).collect()
}

/// Ingest-to-arrival (ms) of the events whose first delivery arrived in `from..to`.
fn latencies(receiver: &crate::receiver::Receiver, sent_at: &[Option<Instant>], from: Instant, to: Instant) -> Vec<f64> {
    let mut latencies: Vec<f64> = receiver
        .arrived_between(from, to)
        .into_iter()
        .filter_map(|(seq, at)| Some(at.saturating_duration_since((*sent_at.get(seq / BATCH as usize)?)?).as_secs_f64() * 1000.0))
        .collect();
    latencies.sort_by(f64::total_cmp);
    latencies
}

/// The 99th percentile; NaN when nothing arrived (a window with no arrival is not a good one).
fn p99(sorted: &[f64]) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * 0.99) as usize).min(sorted.len() - 1)]
}

/// How long after a `kill -9` the receiver may still read a request the process wrote before it
/// died: the receiver's own backlog (one worker thread), well under this at the soak's rates.
const READ_AFTER_DEATH: Duration = Duration::from_secs(2);

/// The duplicates, each put down to the fault it followed.
struct Explained {
    summary: String,
    unexplained: usize,
}

/// A delivery received again is explained by a `kill -9` if it first arrived at most
/// `DELIVERY_TIMEOUT` (30 s) before the kill, or within [`READ_AFTER_DEATH`] after it, and again
/// after it: the attempt was in flight, or made and not yet recorded, when the process died, and
/// the restarted instance made it again. (A request the process wrote just before it died is
/// still read, from the socket, by a receiver with a backlog.)
/// Likewise by the database cut: an attempt made while its record could not be written (from 30 s
/// before the cut to 30 s after it) is made again once the database is back. Any other is
/// unexplained: the minutes (from the start) of their repeated arrivals are listed.
fn explain(duplicates: &[(usize, Option<Instant>, Instant)], faults: &Faults, started: Instant) -> Explained {
    let window = Duration::from_secs(30);
    let (mut by_kill, mut by_cut) = (0, 0);
    // Repeats whose first arrival was read after the process was gone, and the latest of them.
    let mut read_late = (0usize, Duration::ZERO);
    let mut unexplained: Vec<(usize, Instant)> = Vec::new();
    for (seq, first, again) in duplicates {
        let after_kill = |first: Instant| faults.kills.iter().any(|(kill, _)| first <= *kill + READ_AFTER_DEATH && first + window >= *kill && *again >= *kill);
        let around_cut = |first: Instant| faults.cut.is_some_and(|(from, until)| first + window >= from && first <= until + window);
        match first {
            Some(first) if after_kill(*first) => {
                by_kill += 1;
                if let Some(late) = faults.kills.iter().filter(|(kill, _)| *first > *kill).map(|(kill, _)| *first - *kill).min().filter(|late| *late <= READ_AFTER_DEATH) {
                    read_late.0 += 1;
                    read_late.1 = read_late.1.max(late);
                }
            }
            Some(first) if around_cut(*first) => by_cut += 1,
            _ => unexplained.push((*seq, *again)),
        }
    }
    let mut summary = format!(
        "{by_kill} sent before a kill -9 and again after it (attempt in flight or not yet recorded; {} of them read by the receiver after the process was gone, at most {} ms after), {by_cut} around the database cut",
        read_late.0,
        read_late.1.as_millis()
    );
    if !unexplained.is_empty() {
        let mut by_minute: std::collections::BTreeMap<u64, usize> = std::collections::BTreeMap::new();
        for (_, again) in &unexplained {
            *by_minute.entry((*again - started).as_secs() / 60 + 1).or_default() += 1;
        }
        let minutes: Vec<String> = by_minute.iter().map(|(m, n)| format!("minute {m}: {n}")).collect();
        // Each example with its arrivals relative to the kill nearest its repeat.
        let relative = |at: Instant, kill: Instant| if at >= kill { format!("+{:.2}s", (at - kill).as_secs_f64()) } else { format!("-{:.2}s", (kill - at).as_secs_f64()) };
        let shown: Vec<String> = unexplained
            .iter()
            .take(5)
            .map(|(seq, again)| {
                let first = duplicates.iter().find(|(s, _, _)| s == seq).and_then(|(_, first, _)| *first);
                match (first, faults.kills.iter().map(|(k, _)| *k).min_by_key(|k| if *again >= *k { *again - *k } else { *k - *again })) {
                    (Some(first), Some(kill)) => format!("e{seq} (first {}, again {} from a kill)", relative(first, kill), relative(*again, kill)),
                    _ => format!("e{seq}"),
                }
            })
            .collect();
        summary.push_str(&format!("; {} unexplained ({}), for example {}", unexplained.len(), minutes.join(", "), shown.join(", ")));
    }
    Explained { summary, unexplained: unexplained.len() }
}
