//! The actor on its own, with a real SQLite store and a real receiver on 127.0.0.1: what a
//! retired actor leaves behind.

use std::io::{Read, Write as _};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use actix_web::web::Bytes;

use super::*;
use crate::channels::ChannelKind;
use crate::domain::attempt::Trigger;
use crate::domain::channel::{CustomHeaders, RateLimit, SigningSecret};
use crate::store::Database;

/// A receiver that counts the requests it reads and answers each `200` only when told to.
struct StallingReceiver {
    url: String,
    requests: Arc<AtomicUsize>,
    release: mpsc::Sender<()>,
}

fn stalling_receiver() -> StallingReceiver {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let (release, released) = mpsc::channel::<()>();
    let counted = Arc::clone(&requests);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 65536];
            let _ = stream.read(&mut buf);
            counted.fetch_add(1, Ordering::SeqCst);
            if released.recv().is_err() {
                return;
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    StallingReceiver { url, requests, release }
}

/// Takes `ChannelDisabled` and forgets it.
struct Deaf;

impl Actor for Deaf {
    type Context = Context<Self>;
}

impl Handler<ChannelDisabled> for Deaf {
    type Result = ();
    fn handle(&mut self, _: ChannelDisabled, _: &mut Context<Self>) {}
}

/// An actor on a SQLite store in `dir`; `paced`: one request a second (a rate limit).
fn actor(url: &str, health: Health, dir: &std::path::Path, paced: bool, queue_capacity: usize) -> DeliveryActor {
    let instance = Instance::new("test".into());
    let store = Store::open(&Database::Sqlite(dir.join("router.db").display().to_string()), 2, instance.holder(Duration::from_secs(10))).unwrap();
    let policy = DeliveryPolicy {
        retry: Arc::new(RetryPolicy::default()),
        timeout: Duration::from_secs(10),
        create_settle: Duration::from_secs(120),
        max_in_flight: 4,
        queue_capacity,
        targets: Arc::new(TargetPolicy::parse("127.0.0.1/32").unwrap()),
        names: Names::default(),
        instance,
        breaker: BreakerPolicy::default(),
        disable_after: Duration::from_secs(3600),
        metrics: crate::metrics::Metrics::new(),
        max_writes: 1,
    };
    let target = Target::new("ch_1".into(), ChannelKind::WEBHOOK, url.into(), CustomHeaders::default(), vec![(SigningSecret::generate(), None)], Default::default()).unwrap()
        .with_rate_limit(paced.then(|| RateLimit::from_stored(1)));
    let supervisor = RetrySupervisor::new(store.due_sweep()).start();
    DeliveryActor::new(target, store, policy, supervisor, Claims::default(), health, Deaf.start().recipient())
}

fn envelope(n: u32) -> Envelope {
    Envelope { delivery_id: format!("dlv_{n}"), event_id: format!("evt_{n}"), payload: Bytes::from_static(b"{}"), trigger: Trigger::Scheduled }
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < give_up, "waited 10 s for {what}");
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
}

#[actix_web::test]
async fn while_writes_fall_behind_no_request_starts_beyond_a_queue_of_finished_attempts() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let dir = tempfile::tempdir().unwrap();
    let receiver = stalling_receiver();
    for _ in 0..9 {
        receiver.release.send(()).unwrap();
    }
    // A queue of three: three deliveries wait in memory at most, and no request starts while
    // three finished attempts wait to be written.
    let addr = actor(&receiver.url, Health::default(), dir.path(), false, 3).start();
    // Another connection holds the database's write lock: the actor's writes wait behind it.
    let mut lock = diesel::SqliteConnection::establish(&dir.path().join("router.db").display().to_string()).unwrap();
    lock.batch_execute("BEGIN IMMEDIATE").unwrap();
    // Delivers three and waits until nothing is in flight: (sent, attempts unwritten, queued).
    let deliver = |first: u32| {
        let addr = addr.clone();
        let requests = Arc::clone(&receiver.requests);
        async move {
            addr.do_send(Deliver((first..first + 3).map(envelope).collect()));
            let give_up = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let (in_flight, unwritten, queued) = addr.send(Backlog).await.unwrap();
                let sent = requests.load(Ordering::SeqCst);
                if in_flight == 0 && (sent == first as usize + 2 || queued) {
                    return (sent, unwritten, queued);
                }
                assert!(std::time::Instant::now() < give_up, "waited 10 s: {sent} sent, {in_flight} in flight");
                actix_web::rt::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    // The first attempt's write waits for the lock; the next two wait to be written.
    assert_eq!(deliver(1).await, (3, 2, false));
    // Two waiting, under three: the next three go (all at once, four may be in flight).
    assert_eq!(deliver(4).await, (6, 5, false));
    // Five waiting: nothing starts; the three wait in the queue.
    assert_eq!(deliver(7).await, (6, 5, true));
    // Once the lock goes, the writes go through and the rest is sent.
    lock.batch_execute("ROLLBACK").unwrap();
    until("every delivery sent", || receiver.requests.load(Ordering::SeqCst) == 9).await;
}

#[actix_web::test]
async fn a_retired_actor_cancels_its_timers_finishes_what_is_in_flight_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = stalling_receiver();
    let addr = actor(&receiver.url, Health::default(), dir.path(), true, 100).start();
    addr.do_send(Deliver(vec![envelope(1), envelope(2)]));
    // The first request is at the receiver, held; the second waits for its rate-limit slot.
    until("the first request", || receiver.requests.load(Ordering::SeqCst) == 1).await;
    let mut live = addr.send(LiveTimers).await.unwrap();
    for _ in 0..200 {
        if live.contains(&Timer::Rate) {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        live = addr.send(LiveTimers).await.unwrap();
    }
    assert!(live.contains(&Timer::Rate), "the second delivery waits on the rate limit: {live:?}");

    addr.do_send(Retire);
    // Still finishing the request in flight, and holding no timer that could start another.
    assert_eq!(addr.send(LiveTimers).await.unwrap(), Vec::<Timer>::new());
    receiver.release.send(()).unwrap();
    until("the retired actor to stop", || !addr.connected()).await;
    assert_eq!(receiver.requests.load(Ordering::SeqCst), 1, "nothing was sent after Retire");
}

#[actix_web::test]
async fn a_retired_actor_waiting_out_an_open_circuit_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = stalling_receiver();
    // Open for another ten minutes.
    let open = Health { consecutive_failures: 10, failing_since: Some(now_ms() - 1_000), open_until: Some(now_ms() + 600_000), cooldown_ms: 600_000 };
    let addr = actor(&receiver.url, open, dir.path(), true, 100).start();
    addr.do_send(Deliver(vec![envelope(1)]));
    let mut live = addr.send(LiveTimers).await.unwrap();
    for _ in 0..200 {
        if live.contains(&Timer::Cooldown) {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        live = addr.send(LiveTimers).await.unwrap();
    }
    assert_eq!(live, vec![Timer::Cooldown], "the delivery waits out the cooldown");
    addr.do_send(Retire);
    until("the retired actor to stop", || !addr.connected()).await;
    assert_eq!(receiver.requests.load(Ordering::SeqCst), 0);
}
