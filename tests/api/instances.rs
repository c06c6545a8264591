//! Several router instances on one PostgreSQL database, as real processes: the work is shared
//! without duplicates while all are healthy, a killed instance's deliveries are taken over, a
//! change made through one instance is in force on the other within 2 s, and an event id sent
//! to both at once is stored and delivered once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::*;

/// Two instances of the binary on one fresh PostgreSQL database, with extra settings.
fn two_instances(database: &TestDatabase, env: &[(&str, &str)]) -> (RouterProcess, RouterProcess) {
    let start = |id: &str| {
        let mut all = vec![("ADMIN_TOKEN", ADMIN_TOKEN), ("INGEST_TOKEN", INGEST_TOKEN), ("RUST_LOG", "info"), ("INSTANCE_ID", id)];
        all.extend_from_slice(env);
        start_router_with(&database.url, &all).0
    };
    (start("instance-a"), start("instance-b"))
}

/// How many requests with each `webhook-id` the receiver got that it answered with `status`.
fn counts(receiver: &Receiver, status: u16) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in receiver.received().iter().filter(|c| c.answered == Some(status)) {
        *counts.entry(request.headers["webhook-id"].clone()).or_insert(0) += 1;
    }
    counts
}

/// Sets up a tenant, a channel at `receiver` and a rule, through instance `a`; returns the channel id.
async fn route_to(a: &RouterProcess, receiver: &Receiver) -> String {
    a.api.create_tenant("contoso").await;
    let channel = a.api.create_channel("SOC", &receiver.url("/")).await;
    let id = channel["id"].as_str().unwrap().to_string();
    a.api.route_everything_to(&[&id]).await;
    id
}

/// Waits until every instance routes to the channel (a change is in force everywhere within 2 s).
async fn wait_until_routed(instances: &[&RouterProcess]) {
    for instance in instances {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let mut probe = permission_event("contoso", "permission.external_share_created", "low");
            probe["event_id"] = json!(format!("probe-{}", ulid::Ulid::new()));
            // A probe is judged by when it was sent, not by when a busy machine answered it.
            let sent = Instant::now();
            let answer = instance.api.ingest(probe).await;
            if !answer.body["deliveries"].as_array().unwrap().is_empty() {
                break;
            }
            assert!(sent < deadline, "an instance did not pick up a change made through the other within 2 s");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[actix_web::test]
async fn two_instances_share_the_work_and_deliver_every_event_exactly_once() {
    Backend::Postgres
        .run(async {
            let database = TestDatabase::new();
            let receiver = Receiver::start().await;
            // Every third answer fails, so retries (found by either instance) happen too.
            receiver.script(&[Reply::Status(500), Reply::Status(200), Reply::Status(200)].repeat(40));
            // Pools of two, as on a small server: each channel then records with one write at a time.
            let (a, b) = two_instances(&database, &[("RETRY_SCHEDULE", "300ms,300ms,300ms,300ms,300ms"), ("DATABASE_POOL_SIZE", "2")]);
            route_to(&a, &receiver).await;
            wait_until_routed(&[&a, &b]).await;

            let mut sent = Vec::new();
            for round in 0..10 {
                for (name, instance) in [("a", &a), ("b", &b)] {
                    let batch = contoso_shares(&format!("{name}-{round}"), 10);
                    let answer = instance.api.ingest(json!({ "events": batch })).await;
                    assert_eq!(answer.status, 202, "{}", answer.body);
                    sent.extend(answer.body["results"].as_array().unwrap().iter().map(|r| r["event_id"].as_str().unwrap().to_string()));
                }
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let delivered = counts(&receiver, 200);
                if sent.iter().all(|id| delivered.contains_key(id)) {
                    let twice: Vec<_> = delivered.iter().filter(|(_, n)| **n > 1).collect();
                    assert!(twice.is_empty(), "delivered more than once while both instances were healthy: {twice:?}");
                    break;
                }
                assert!(Instant::now() < deadline, "{} of {} events delivered", delivered.len(), sent.len());
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
            // Both instances are listed, and each names itself in /healthz.
            let listed = a.api.get("/api/v1/instances").await.body;
            let mut ids: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
            ids.sort();
            assert_eq!(ids, ["instance-a", "instance-b"]);
            assert_eq!(b.api.get("/healthz").await.body["instance_id"], "instance-b");
        })
        .await;
}

#[actix_web::test]
async fn a_killed_instances_deliveries_are_taken_over_by_the_other() {
    Backend::Postgres
        .run(async {
            let database = TestDatabase::new();
            let receiver = Receiver::start().await;
            receiver.reply_with(Reply::Slow(400, 200));
            // A 2 s delivery timeout: leases run out 22 s after the last heartbeat.
            let (mut a, b) = two_instances(&database, &[("DELIVERY_TIMEOUT", "2s"), ("DELIVERY_CONCURRENCY", "2")]);
            route_to(&a, &receiver).await;
            wait_until_routed(&[&a, &b]).await;
            let before = receiver.received().len();

            let batch: Vec<_> = (0..40)
                .map(|i| {
                    let mut event = permission_event("contoso", "permission.external_share_created", "high");
                    event["event_id"] = json!(format!("kill-{i}"));
                    event
                })
                .collect();
            let answer = a.api.ingest(json!({ "events": batch })).await;
            assert_eq!(answer.status, 202);
            // Instance a is sending them (two at a time, 400 ms each) when it is killed.
            receiver.wait_for(before + 2, None, Duration::from_secs(5)).await;
            a.child.kill().expect("SIGKILL");
            a.child.wait().unwrap();
            let killed_at = Instant::now();

            // Taken over (attempted again) within DELIVERY_TIMEOUT + 30 s of the kill; then the
            // rest drains at the channel's pace (2 at a time, 400 ms each).
            let after_kill = receiver.received().len();
            let deadline = killed_at + Duration::from_secs(2 + 30);
            while receiver.received().len() == after_kill {
                assert!(Instant::now() < deadline, "nothing was taken over within DELIVERY_TIMEOUT + 30 s");
                actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            }
            let taken_over = killed_at.elapsed();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let delivered = counts(&receiver, 200);
                let missing: Vec<_> = (0..40).map(|i| format!("kill-{i}")).filter(|id| !delivered.contains_key(id)).collect();
                if missing.is_empty() {
                    break;
                }
                assert!(Instant::now() < deadline, "taken over after {taken_over:?} but not all delivered: {missing:?}");
                actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            }
            // Only what instance a had sent before its death may be sent again: an attempt in
            // flight at the kill (two at most), or one answered whose outcome was still being
            // written (a kill landing in the milliseconds of that write). Nothing b sends, and
            // nothing a had recorded, reaches the receiver twice.
            let mut first_sent_by_a: HashMap<String, Instant> = HashMap::new();
            for request in receiver.received().iter().filter(|c| c.at < killed_at) {
                first_sent_by_a.entry(request.headers["webhook-id"].clone()).or_insert(request.at);
            }
            let delivered = counts(&receiver, 200);
            let thrice: Vec<_> = delivered.iter().filter(|(_, n)| **n > 2).collect();
            assert!(thrice.is_empty(), "sent more than twice: {thrice:?}");
            let answer_time = Duration::from_millis(400);
            let mut in_flight_at_kill = 0;
            for id in delivered.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id) {
                let Some(sent) = first_sent_by_a.get(id) else { panic!("{id} sent twice though instance a never sent it") };
                if *sent + answer_time > killed_at {
                    in_flight_at_kill += 1;
                } else {
                    let answered_before_kill = killed_at - (*sent + answer_time);
                    assert!(
                        answered_before_kill < Duration::from_secs(2),
                        "{id} was answered {answered_before_kill:?} before the kill and sent again: its outcome was never written"
                    );
                }
            }
            assert!(in_flight_at_kill <= 2, "{in_flight_at_kill} sent twice as in flight at the kill; at most two are at a time");
            // Every delivery ends recorded as succeeded, and instance b says so.
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let log = b.api.get("/api/v1/deliveries?status=succeeded&limit=500").await.body;
                let done: Vec<&Value> = log["items"].as_array().unwrap().iter().filter(|d| d["event_id"].as_str().unwrap().starts_with("kill-")).collect();
                // What a sent but never recorded counts only b's attempt.
                let recorded_twice: Vec<&&Value> = done.iter().filter(|d| d["attempt_count"] != 1).collect();
                assert!(recorded_twice.is_empty(), "deliveries with other than one attempt recorded: {recorded_twice:?}");
                let done = done.len();
                if done == 40 {
                    break;
                }
                assert!(Instant::now() < deadline, "{done} of 40 deliveries recorded as succeeded");
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
}

#[actix_web::test]
async fn a_channel_disabled_through_one_instance_stops_receiving_from_the_other_within_two_seconds() {
    Backend::Postgres
        .run(async {
            let database = TestDatabase::new();
            let receiver = Receiver::start().await;
            receiver.reply_with(Reply::Status(500));
            let retries = vec!["100ms"; 40].join(",");
            let (a, b) = two_instances(&database, &[("RETRY_SCHEDULE", retries.as_str())]);
            let channel_id = route_to(&a, &receiver).await;
            wait_until_routed(&[&a, &b]).await;
            // Deliveries ingested through b keep failing and being retried.
            for i in 0..5 {
                let mut event = permission_event("contoso", "permission.external_share_created", "high");
                event["event_id"] = json!(format!("retried-{i}"));
                assert_eq!(b.api.ingest(event).await.status, 202);
            }
            receiver.wait_for(30, None, Duration::from_secs(10)).await;

            let off = a.api.patch(&format!("/api/v1/channels/{channel_id}"), json!({"enabled": false})).await;
            assert_eq!(off.status, 200);
            actix_web::rt::time::sleep(Duration::from_secs(2)).await;
            let after_two_seconds = receiver.received().len();
            let mut late = permission_event("contoso", "permission.external_share_created", "high");
            late["event_id"] = json!("after-disable");
            assert_eq!(b.api.ingest(late).await.body["deliveries"], json!([]), "b no longer routes to it");
            actix_web::rt::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(receiver.received().len(), after_two_seconds, "b kept sending to a channel disabled through a");
        })
        .await;
}

#[actix_web::test]
async fn the_same_event_id_sent_to_both_instances_at_once_is_stored_and_delivered_once() {
    Backend::Postgres
        .run(async {
            let database = TestDatabase::new();
            let receiver = Receiver::start().await;
            let (a, b) = two_instances(&database, &[]);
            route_to(&a, &receiver).await;
            wait_until_routed(&[&a, &b]).await;
            for i in 0..20 {
                let mut event = permission_event("contoso", "permission.external_share_created", "high");
                event["event_id"] = json!(format!("twice-{i}"));
                let (first, second) = futures_util::future::join(a.api.ingest(event.clone()), b.api.ingest(event)).await;
                let mut statuses = [first.status, second.status];
                statuses.sort();
                assert_eq!(statuses, [200, 202], "one stores it, the other answers duplicate");
                assert_ne!(first.body["duplicate"], second.body["duplicate"]);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let delivered = counts(&receiver, 200);
                let ours: Vec<_> = delivered.iter().filter(|(id, _)| id.starts_with("twice-")).collect();
                if ours.len() == 20 {
                    assert!(ours.iter().all(|(_, n)| **n == 1), "{ours:?}");
                    break;
                }
                assert!(Instant::now() < deadline, "{} of 20 delivered", ours.len());
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
            // Settle: nothing arrives twice later either.
            actix_web::rt::time::sleep(Duration::from_millis(500)).await;
            assert!(counts(&receiver, 200).iter().filter(|(id, _)| id.starts_with("twice-")).all(|(_, n)| *n == 1));
        })
        .await;
}

#[actix_web::test]
async fn instances_starting_together_on_a_new_database_all_come_up() {
    Backend::Postgres
        .run(async {
            let database = TestDatabase::new();
            let ids = ["together-a", "together-b", "together-c"];
            // All three migrate the empty database at the same moment (they take turns on a lock).
            let starting: Vec<StartingRouter> = ids
                .iter()
                .map(|id| spawn_router(&database.url, &[("ADMIN_TOKEN", ADMIN_TOKEN), ("INGEST_TOKEN", INGEST_TOKEN), ("INSTANCE_ID", id)]))
                .collect();
            let routers: Vec<RouterProcess> = starting.into_iter().map(|s| s.ready().0).collect();
            for router in &routers {
                assert_eq!(router.api.get("/healthz").await.status, 200);
            }
            let listed = routers[0].api.get("/api/v1/instances").await.body;
            assert_eq!(listed["items"].as_array().unwrap().len(), 3, "{listed}");
            let receiver = Receiver::start().await;
            route_to(&routers[1], &receiver).await;
            wait_until_routed(&[&routers[0], &routers[1], &routers[2]]).await;
        })
        .await;
}

#[actix_web::test]
async fn two_instances_fetch_each_office_365_blob_once_whichever_is_notified_and_both_list() {
    use crate::o365::CONTOSO_GUID;
    use crate::o365_feed::*;
    Backend::Postgres
        .run(async {
            let database = TestDatabase::new();
            let receiver = Receiver::start().await;
            let feed = ManagementApi::start();
            let mut env: Vec<(&str, String)> = vec![("O365_POLL_INTERVAL", "1s".into())];
            env.extend(feed.env());
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (a, b) = two_instances(&database, &env);
            let tenant = a.api.post("/api/v1/tenants", json!({"id": "contoso", "display_name": "Contoso Ltd", "microsoft_tenant_id": CONTOSO_GUID})).await;
            assert_eq!(tenant.status, 201, "{}", tenant.body);
            let channel = a.api.create_channel("SOC", &receiver.url("/")).await;
            a.api.route_everything_to(&[channel["id"].as_str().unwrap()]).await;
            wait_until_routed(&[&a, &b]).await;
            let delivered = |receiver: &Receiver| -> Vec<String> { delivered(receiver).into_iter().filter(|id| id.starts_with("o365_")).collect() };
            // Both instances list every second; each notification goes to both at once.
            for n in 1..=10 {
                let notification = feed.publish(&format!("c-shared-{n}"), click(n));
                let (first, second) = futures_util::future::join(notify(&a.api, Some(AUTH_ID), json!([notification])), notify(&b.api, Some(AUTH_ID), json!([notification]))).await;
                assert_eq!((first.status, second.status), (200, 200));
                assert_eq!(first.body["kept"].as_i64().unwrap() + second.body["kept"].as_i64().unwrap(), 1, "kept once: {} {}", first.body, second.body);
            }
            for n in 1..=10 {
                wait_for_content(&b.api, &format!("c-shared-{n}"), "done").await;
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while delivered(&receiver).len() < 10 {
                assert!(Instant::now() < deadline, "{:?}", delivered(&receiver));
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
            // Let both list again: nothing is fetched or alerted twice.
            let listings = feed.with(|p| p.listings.len());
            while feed.with(|p| p.listings.len()) < listings + 4 {
                assert!(Instant::now() < deadline + Duration::from_secs(10), "both instances keep listing");
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
            let mut got = delivered(&receiver);
            got.sort();
            assert_eq!(got, (1..=10).map(click_event).collect::<Vec<_>>());
            assert!((1..=10).all(|n| feed.fetches(&format!("c-shared-{n}")) == 1), "{:?}", feed.with(|p| p.fetches.clone()));
        })
        .await;
}

#[actix_web::test]
async fn an_instance_stopped_with_sigterm_lets_go_of_its_deliveries_for_the_others_at_once() {
    Backend::Postgres
        .run(async {
            let database = TestDatabase::new();
            let receiver = Receiver::start().await;
            // One request at a time, half a second each: what a ingests waits in its queue, leased to a.
            let (mut a, b) = two_instances(&database, &[("SHUTDOWN_GRACE", "3s"), ("DELIVERY_CONCURRENCY", "1")]);
            route_to(&a, &receiver).await;
            wait_until_routed(&[&a, &b]).await;
            receiver.reply_with(Reply::Slow(500, 200));
            for i in 0..20 {
                let mut event = permission_event("contoso", "permission.external_share_created", "high");
                event["event_id"] = json!(format!("handover-{i}"));
                assert_eq!(a.api.ingest(event).await.status, 202);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while !receiver.received().iter().any(|c| c.json()["event_id"].as_str().unwrap().starts_with("handover-")) {
                assert!(Instant::now() < deadline, "a sends its deliveries");
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
            let killed = std::process::Command::new("kill").args(["-TERM", &a.child.id().to_string()]).status().unwrap();
            assert!(killed.success());
            assert!(a.child.wait().unwrap().success());
            let stopped = Instant::now();
            receiver.reply_with(Reply::Status(200));
            let sent_by_a = receiver.received().iter().filter(|c| c.json()["event_id"].as_str().unwrap().starts_with("handover-")).count();
            assert!(sent_by_a < 20, "a stopped with deliveries still queued ({sent_by_a} sent)");
            // b takes them at its next sweep (5 s), not after a's heartbeat runs out (DELIVERY_TIMEOUT + 20 s).
            loop {
                let delivered: std::collections::HashSet<String> = receiver
                    .received()
                    .iter()
                    .filter(|c| c.answered == Some(200))
                    .map(|c| c.json()["event_id"].as_str().unwrap().to_string())
                    .filter(|id| id.starts_with("handover-"))
                    .collect();
                if delivered.len() == 20 {
                    break;
                }
                assert!(stopped.elapsed() < Duration::from_secs(15), "{} of 20 taken over {:?} after a stopped", delivered.len(), stopped.elapsed());
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
            drop(b);
        })
        .await;
}

#[actix_web::test]
async fn a_channels_rate_limit_holds_across_three_instances() {
    Backend::Postgres
        .run(async {
            let database = TestDatabase::new();
            let instances: Vec<RouterProcess> = ["pace-a", "pace-b", "pace-c"]
                .iter()
                .map(|id| spawn_router(&database.url, &[("ADMIN_TOKEN", ADMIN_TOKEN), ("INGEST_TOKEN", INGEST_TOKEN), ("INSTANCE_ID", id)]))
                .collect::<Vec<StartingRouter>>()
                .into_iter()
                .map(|s| s.ready().0)
                .collect();
            let receiver = Receiver::start().await;
            let a = &instances[0].api;
            a.create_tenant("contoso").await;
            let channel = a.post("/api/v1/channels", json!({"name": "Paced", "url": receiver.url("/"), "rate_limit_per_second": 4})).await;
            assert_eq!(channel.status, 201, "{}", channel.body);
            a.route_everything_to(&[channel.body["id"].as_str().unwrap()]).await;
            wait_until_routed(&instances.iter().collect::<Vec<_>>()).await;
            // Eight events through each instance at once: each instance sends what it ingested.
            let batches = instances.iter().enumerate().map(|(n, instance)| {
                let batch: Vec<_> = (0..8).map(|_| permission_event("contoso", "permission.external_share_created", "high")).collect();
                async move {
                    let answer = instance.api.ingest(json!({ "events": batch })).await;
                    assert_eq!(answer.status, 202, "instance {n}: {}", answer.body);
                    answer.body["results"].as_array().unwrap().iter().map(|r| r["event_id"].as_str().unwrap().to_string()).collect::<Vec<_>>()
                }
            });
            let sent: Vec<String> = futures_util::future::join_all(batches).await.concat();
            let deadline = Instant::now() + Duration::from_secs(20);
            let got = loop {
                let got = receiver.received();
                if sent.iter().all(|id| got.iter().any(|c| &c.headers["webhook-id"] == id)) {
                    break got;
                }
                assert!(Instant::now() < deadline, "{} requests arrived", got.len());
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            };
            // 4 per second is a request every 250 ms, whichever instance sends it: 24 requests
            // take at least 5.5 s (three instances pacing alone would send them in 2).
            let times: Vec<Instant> = got.iter().map(|c| c.at).collect();
            assert_paced(&times, Duration::from_millis(250), Duration::from_millis(500));
        })
        .await;
}

#[actix_web::test]
async fn a_channel_deleted_through_one_instance_leaves_no_series_on_the_other() {
    Backend::Postgres
        .run(async {
            let database = TestDatabase::new();
            let receiver = Receiver::start().await;
            let (a, b) = two_instances(&database, &[]);
            let channel_id = route_to(&a, &receiver).await;
            wait_until_routed(&[&a, &b]).await;
            // Each instance delivers what it ingested, so each counts the channel's series.
            for instance in [&a, &b] {
                assert_eq!(instance.api.ingest(permission_event("contoso", "permission.external_share_created", "high")).await.status, 202);
            }
            let scrape = |instance: &RouterProcess| {
                let url = format!("{}/metrics", instance.api.base);
                async move {
                    let mut answer = http_client().get(url).insert_header(("Authorization", format!("Bearer {ADMIN_TOKEN}"))).send().await.unwrap();
                    String::from_utf8(answer.body().limit(8 << 20).await.unwrap().to_vec()).unwrap()
                }
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while !scrape(&b).await.contains(&format!("spscan_attempts_total{{channel_id=\"{channel_id}\",outcome=\"success\"}}")) {
                assert!(Instant::now() < deadline, "b never counted an attempt of the channel");
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(a.api.delete(&format!("/api/v1/channels/{channel_id}")).await.status, 204);
            assert!(!scrape(&a).await.contains(&channel_id), "the deleting instance keeps the series");
            assert!(!scrape(&b).await.contains(&channel_id), "the other instance keeps the series after its next scrape");
        })
        .await;
}

#[actix_web::test]
async fn the_busy_tables_are_analyzed_and_without_autovacuum_vacuumed() {
    Backend::Postgres
        .run(async {
            use diesel::prelude::*;
            use diesel::sql_types::{BigInt, Bool, Text};
            #[derive(QueryableByName, Debug)]
            struct TableState {
                #[diesel(sql_type = Bool)]
                analyzed: bool,
                #[diesel(sql_type = Bool)]
                vacuumed: bool,
                #[diesel(sql_type = BigInt)]
                dead: i64,
                #[diesel(sql_type = BigInt)]
                live: i64,
            }
            #[derive(QueryableByName)]
            struct Setting {
                #[diesel(sql_type = Text)]
                autovacuum: String,
            }
            let app = spawn_app().await;
            let receiver = Receiver::start().await;
            app.create_tenant("contoso").await;
            let channel = app.create_channel("SOC", &receiver.url("/")).await;
            app.route_everything_to(&[channel["id"].as_str().unwrap()]).await;
            // 3,000 deliveries, each inserted and then updated once delivered: 3,000 dead rows,
            // more than the threshold (1,000 plus a fifth of the rows).
            for batch in 0..30 {
                let events = contoso_shares(&format!("evt-{batch}"), 100);
                let answer = app.ingest(json!({ "events": events })).await;
                assert_eq!(answer.status, 202, "{}", answer.body);
            }
            receiver.wait_for(3000, None, Duration::from_secs(60)).await;

            let mut conn = diesel::PgConnection::establish(app.database_url()).unwrap();
            let autovacuum = diesel::sql_query("SELECT current_setting('autovacuum') AS autovacuum").get_result::<Setting>(&mut conn).unwrap().autovacuum;
            let state = |conn: &mut diesel::PgConnection| {
                diesel::sql_query(
                    "SELECT (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL) AS analyzed, \
                            (last_vacuum IS NOT NULL OR last_autovacuum IS NOT NULL) AS vacuumed, \
                            n_dead_tup AS dead, n_live_tup AS live \
                     FROM pg_stat_user_tables WHERE relname = 'deliveries'",
                )
                .get_result::<TableState>(conn)
                .unwrap()
            };
            // The router looks every 5 s; the server's statistics lag up to a second behind.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let now = state(&mut conn);
                // Vacuumed by the router (autovacuum is off), and the dead rows back under the
                // threshold (a vacuum may come while the last deliveries are still recorded).
                let done = now.analyzed && (autovacuum == "on" || (now.vacuumed && now.dead <= 1000 + now.live / 5));
                if done {
                    break;
                }
                assert!(Instant::now() < deadline, "deliveries not tended within 30 s (autovacuum {autovacuum}): {now:?}");
                actix_web::rt::time::sleep(Duration::from_millis(200)).await;
            }
            // The planner now knows the table's size (a cached plan for an empty table is replaced).
            let state = state(&mut conn);
            assert!(state.live >= 3000, "{state:?}");
        })
        .await;
}
