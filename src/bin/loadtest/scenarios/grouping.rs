//! Scenario `grouping` (issue 28): events of 100 sites into one rule grouping by
//! `/data/site_url` (`wait` 1 s, `interval` 2 s) and a webhook channel. Checked: every event in
//! exactly one notification; each group's notifications as its timers say; measured: the
//! delivered rate (events from the first ingestion to the last notification received) against
//! a plain `throughput` run in the same run (target: at least 0.8 of it).
//!
//! Every event in exactly one notification: a notification lists at most 100 of its events (the
//! rest `"truncated"`), and at full speed a group collects thousands per window, so the
//! receiver's own view is the notification's `count`, not its list. The proof joins both sides:
//! the receiver sums `count` over the notifications it got (each once, by its `event_id`) and
//! checks the listed events are distinct; the database says each acknowledged event has exactly
//! one `grouped` delivery, linked to a notification (`notification_id`) whose event the receiver
//! got with the same `count`. (Small bursts that fit in 100 per window would make the list
//! alone enough, but would hold ingestion to 5,000 events/s.)
//!
//! The timers: each group opens with its first event and sends `wait` later, then every
//! `interval` after its previous flush while new events came, then closes. Checked for each
//! group on the arrivals (a flush's notification arrives a few ms after it): the first not
//! before `wait` after the group's first event, each next not before `interval` after the
//! previous, and each but the last flush before the group's last event was acknowledged (the
//! last notification was needed, and no flush came after it with nothing to send). The
//! expected number is then one per `interval` tick while events kept arriving; the drift-free
//! count `1 + ⌈(last event − first event − wait) / interval⌉` is reported beside it (late
//! timers can only make fewer).

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use diesel::prelude::*;
use serde_json::{json, Value};

use spscan_router::domain::time::{now_ms, parse_rfc3339};

use super::{wait_until, INGEST_CONCURRENCY};
use crate::router::{BenchDatabase, RouterProcess};
use crate::{Measure, Plan};

const SITES: u64 = 100;
const WAIT: Duration = Duration::from_secs(1);
const INTERVAL: Duration = Duration::from_secs(2);
const TARGET_RATIO: f64 = 0.8;

/// One notification as the receiver got it.
struct Notification {
    event_id: String,
    group_id: String,
    count: u64,
    earlier: u64,
    /// Sequence numbers of the events it lists.
    listed: Vec<u64>,
    /// When the group flushed it (its `timestamp`), in ms.
    flushed_ms: i64,
    /// When it arrived, and the same in ms.
    at: Instant,
    arrived_ms: i64,
}

#[derive(Default)]
struct Got {
    notifications: Vec<Notification>,
    /// Events counted so far (`count` summed).
    events: u64,
}

/// A receiver of `alert.group` notifications: answers 200 and keeps what each carried.
fn notification_receiver() -> (String, Arc<Mutex<Got>>) {
    let got = Arc::new(Mutex::new(Got::default()));
    let shared = web::Data::from(got.clone());
    let server = HttpServer::new(move || App::new().app_data(shared.clone()).default_service(web::to(receive)))
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("a free port");
    let url = format!("http://127.0.0.1:{}/groups", server.addrs()[0].port());
    actix_web::rt::spawn(server.run());
    (url, got)
}

async fn receive(body: web::Bytes, got: web::Data<Mutex<Got>>) -> HttpResponse {
    let at = Instant::now();
    let Ok(body) = serde_json::from_slice::<Value>(&body) else { return HttpResponse::BadRequest().finish() };
    let seq = |e: &Value| e["event_id"].as_str().and_then(|id| id.strip_prefix('g')).and_then(|n| n.parse().ok());
    let notification = Notification {
        event_id: body["event_id"].as_str().unwrap_or_default().to_string(),
        group_id: body["group"]["id"].as_str().unwrap_or_default().to_string(),
        count: body["group"]["count"].as_u64().unwrap_or(0),
        earlier: body["group"]["earlier"].as_u64().unwrap_or(0),
        listed: body["events"].as_array().map(|events| events.iter().filter_map(seq).collect()).unwrap_or_default(),
        flushed_ms: body["timestamp"].as_str().and_then(parse_rfc3339).unwrap_or(0),
        at,
        arrived_ms: now_ms(),
    };
    let mut got = got.lock().unwrap();
    got.events += notification.count;
    got.notifications.push(notification);
    HttpResponse::Ok().finish()
}

/// Event `g<seq>` of site `seq % 100`, as SPScan sends it.
fn event_json(seq: u64) -> String {
    format!(
        r#"{{"event_id":"g{seq}","event":"permission.external_share_created","severity":"high","tenant_id":"bench","data":{{"site_url":"https://contoso.sharepoint.com/sites/Site{:02}","resource_path":"Shared Documents/Q3 forecast.xlsx","permission_type":"specific_people_link","principal":"outsider@example.net","access_level":"edit"}}}}"#,
        seq % SITES
    )
}

/// When ingestion ran: the first request sent, the last acknowledged (and the same in ms, on
/// the clock the router stamps flushes with).
struct Span {
    first_sent: Instant,
    last_acked: Instant,
    first_sent_ms: i64,
    last_acked_ms: i64,
}

/// Ingests `total` events in batches of 100 (each batch every site once), 8 requests in flight.
async fn ingest(router: &Rc<RouterProcess>, total: u64) -> Span {
    let next = Rc::new(Cell::new(0u64));
    let (first_sent, first_sent_ms) = (Instant::now(), now_ms());
    let last_acked = Rc::new(Cell::new(first_sent));
    let mut tasks = Vec::new();
    for _ in 0..INGEST_CONCURRENCY {
        let (router, next, last_acked) = (router.clone(), next.clone(), last_acked.clone());
        tasks.push(actix_web::rt::spawn(async move {
            while next.get() < total {
                let first = next.get();
                next.set(first + SITES);
                let mut body = String::from(r#"{"events":["#);
                body.push_str(&(first..first + SITES).map(event_json).collect::<Vec<_>>().join(","));
                body.push_str("]}");
                let (status, answer) = router.post_raw("/events", body.into_bytes()).await;
                assert_eq!(status, 202, "ingestion failed: {answer}");
                last_acked.set(last_acked.get().max(Instant::now()));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let last_acked_ms = now_ms();
    Span { first_sent, last_acked: last_acked.get(), first_sent_ms, last_acked_ms }
}

/// From the database: grouped deliveries per notification event id, and those in none.
fn grouped_in_database(database: &BenchDatabase) -> (HashMap<String, u64>, u64, u64) {
    #[derive(QueryableByName)]
    struct PerNotification {
        #[diesel(sql_type = diesel::sql_types::Text)]
        notification: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    #[derive(QueryableByName)]
    struct Counts {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        unlinked: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        distinct_events: i64,
    }
    let per = "SELECT n.event_id AS notification, COUNT(*) AS n FROM deliveries g JOIN deliveries n ON n.id = g.notification_id \
               WHERE g.status = 'grouped' GROUP BY n.event_id";
    let counts = "SELECT COUNT(*) - COUNT(notification_id) AS unlinked, COUNT(DISTINCT event_id) AS distinct_events FROM deliveries WHERE status = 'grouped'";
    let (per, counts): (Vec<PerNotification>, Counts) = match database {
        BenchDatabase::Sqlite { path, .. } => {
            let mut conn = SqliteConnection::establish(path).expect("open the database");
            diesel::sql_query("PRAGMA busy_timeout = 10000").execute(&mut conn).ok();
            (diesel::sql_query(per).load(&mut conn).expect("grouped per notification"), diesel::sql_query(counts).get_result(&mut conn).expect("grouped counts"))
        }
        BenchDatabase::Postgres { url, .. } => {
            let mut conn = PgConnection::establish(url).expect("connect to the database");
            (diesel::sql_query(per).load(&mut conn).expect("grouped per notification"), diesel::sql_query(counts).get_result(&mut conn).expect("grouped counts"))
        }
    };
    (per.into_iter().map(|p| (p.notification, p.n as u64)).collect(), counts.unlinked as u64, counts.distinct_events as u64)
}

/// Each group's notifications against its timers, on their flush times: `(notifications,
/// drift-free expected, timer faults, latest follow-up flush after its timer in ms)`.
fn timers(notifications: &[Notification], span: &Span) -> (usize, usize, Vec<String>, i64) {
    let mut groups: HashMap<&str, Vec<&Notification>> = HashMap::new();
    for n in notifications {
        groups.entry(&n.group_id).or_default().push(n);
    }
    let (wait, interval) = (WAIT.as_millis() as i64, INTERVAL.as_millis() as i64);
    let ingesting = (span.last_acked_ms - span.first_sent_ms - wait).max(0);
    let per_group = 1 + (ingesting + interval - 1) / interval;
    let (mut faults, mut latest) = (Vec::new(), 0);
    for (group, mut sent) in groups.clone() {
        sent.sort_by_key(|n| n.flushed_ms);
        // The group opened with its first event, not before the first request was sent.
        let mut due = span.first_sent_ms + wait;
        let mut earlier = 0;
        for (k, n) in sent.iter().enumerate() {
            if n.flushed_ms < due {
                faults.push(format!("{group}: notification {k} flushed {} ms before its timer", due - n.flushed_ms));
            }
            if k > 0 {
                latest = latest.max(n.flushed_ms - due);
            }
            if n.count == 0 {
                faults.push(format!("{group}: notification {k} carries no event"));
            }
            if n.earlier != earlier {
                faults.push(format!("{group}: notification {k} says {} earlier, {earlier} were sent", n.earlier));
            }
            earlier += n.count;
            // Counted from the flush.
            due = n.flushed_ms + interval;
        }
    }
    (notifications.len(), groups.len() * per_group as usize, faults, latest)
}

/// The scenario: a plain throughput run, then the grouped one.
pub async fn grouping(plan: &Plan) -> Vec<Measure> {
    let total = plan.grouped_events;
    let plain = super::throughput(plan, "throughput", 100, 8).await;
    let plain_rate = plain[0].value.expect("throughput measures a rate");
    let mut rows = vec![Measure::new("grouping", "plain delivered/s", plain[0].shown.clone(), &format!("the throughput scenario: {}", plain[0].note), plain[1].ok).value(plain_rate)];

    let (url, got) = notification_receiver();
    let router = Rc::new(RouterProcess::start(plan, &[]));
    let (status, body) = router.post("/tenants", &json!({"id": "bench", "display_name": "Bench", "microsoft_tenant_id": "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd"})).await;
    assert_eq!(status, 201, "{body}");
    let (status, channel) = router.post("/channels", &json!({"name": "groups", "url": url})).await;
    assert_eq!(status, 201, "{channel}");
    let group = json!({"by": ["/data/site_url"], "wait": format!("{}s", WAIT.as_secs()), "interval": format!("{}s", INTERVAL.as_secs())});
    let rule = json!({"name": "one message per site", "event_types": ["*"], "min_severity": "low", "channel_ids": [channel["id"]], "group": group});
    let (status, body) = router.post("/rules", &rule).await;
    assert_eq!(status, 201, "{body}");

    let span = ingest(&router, total).await;
    let within = Duration::from_secs(120) + INTERVAL * 2;
    wait_until("every event to arrive in a notification", within, || got.lock().unwrap().events >= total).await;
    // The groups close one interval after their last notification; then nothing is pending.
    wait_until("every notification to be recorded", Duration::from_secs(120), || router.pending() == 0).await;
    let got = got.lock().unwrap();
    let last = got.notifications.iter().map(|n| n.at).max().expect("notifications arrived");
    let rate = total as f64 / (last - span.first_sent).as_secs_f64();
    let ingesting = (span.last_acked - span.first_sent).as_secs_f64();
    // The last events wait for their group's next flush: the first tick of the drift-free timers
    // after ingestion ended is the soonest the last notification can be sent.
    let (wait, interval) = (WAIT.as_secs_f64(), INTERVAL.as_secs_f64());
    let last_tick = wait + interval * ((ingesting - wait).max(0.0) / interval).ceil();
    rows.push(
        Measure::new("grouping", "delivered/s", format!("{rate:.0}"), &format!("{total} events, first ingestion to last notification; the timers allow at most {:.0}/s (last flush due at {last_tick:.0} s)", total as f64 / last_tick), true)
            .value(rate),
    );
    let ingest_rate = total as f64 / ingesting;
    rows.push(
        Measure::new("grouping", "ingested/s", format!("{ingest_rate:.0}"), &format!("into the groups, {:.2} of plain; no target", ingest_rate / plain_rate), true)
            .value(ingest_rate),
    );

    // Every event in exactly one notification.
    let mut seen: HashSet<&str> = HashSet::new();
    let twice = got.notifications.iter().filter(|n| !seen.insert(&n.event_id)).count();
    let mut listed: HashSet<u64> = HashSet::new();
    let listed_twice = got.notifications.iter().flat_map(|n| &n.listed).filter(|s| !listed.insert(**s)).count();
    let listed_unknown = listed.iter().filter(|s| **s >= total).count();
    let short_lists = got.notifications.iter().filter(|n| n.listed.len() as u64 != n.count.min(100)).count();
    let (in_database, unlinked, distinct) = grouped_in_database(&router.database);
    let disagree = got.notifications.iter().filter(|n| in_database.get(&n.event_id) != Some(&n.count)).count() + in_database.len().abs_diff(seen.len());
    let exact = got.events == total && twice == 0 && listed_twice == 0 && listed_unknown == 0 && short_lists == 0 && unlinked == 0 && distinct == total && disagree == 0;
    rows.push(Measure::new(
        "grouping",
        "events in one notification",
        format!("{}/{total}", got.events),
        &format!("{twice} received twice, {listed_twice} listed twice, {short_lists} short lists; database: {distinct} grouped, {unlinked} in none, {disagree} counts differing"),
        exact,
    ));

    let (notifications, drift_free, faults, latest) = timers(&got.notifications, &span);
    let groups = got.notifications.iter().map(|n| n.group_id.as_str()).collect::<HashSet<_>>().len();
    // From the flush's start to the arrival: the flush's write, then the delivery.
    let slowest = got.notifications.iter().map(|n| n.arrived_ms - n.flushed_ms).max().unwrap_or(0);
    for fault in faults.iter().take(5) {
        eprintln!("  grouping: {fault}");
    }
    rows.push(Measure::new(
        "grouping",
        "notifications",
        notifications.to_string(),
        &format!("{groups} groups; drift-free timers say at most {drift_free}; {} timer faults; follow-ups flushed up to {latest} ms after their timer, arrived up to {slowest} ms after their flush", faults.len()),
        faults.is_empty() && groups as u64 == SITES && notifications <= drift_free,
    ));
    let ratio = rate / plain_rate;
    rows.push(Measure::new("grouping", "ratio to plain", format!("{ratio:.3}"), &format!("target at least {TARGET_RATIO}"), ratio >= TARGET_RATIO).value(ratio));
    rows
}
