//! The alert log's search and filters (`GET /api/v1/deliveries?q=&severity=&since=&until=`, and
//! its `total`), and what the delivery page's API answer shows of each attempt: the exact request
//! sent, credentials masked, and the answer's headers. Every test runs on both backends.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

/// `text` percent-encoded for a query string.
fn enc(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A permission event with these searched fields (and an unsearched one holding `other`).
fn event(severity: &str, site: &str, principal: &str, resource: &str, other: &str) -> Value {
    let mut event = permission_event("contoso", "permission.external_share_created", severity);
    event["data"]["site_url"] = json!(site);
    event["data"]["principal"] = json!(principal);
    event["data"]["resource_path"] = json!(resource);
    event["data"]["permission_type"] = json!(other);
    event
}

/// Ingests `event`; the event id and its one delivery's id.
async fn ingest(app: &TestApp, event: Value) -> (String, String) {
    let answer = app.ingest(event).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    (answer.body["event_id"].as_str().unwrap().to_string(), answer.body["deliveries"][0]["id"].as_str().unwrap().to_string())
}

/// The ids of the deliveries the log lists for `query`, and its `total`.
async fn found(app: &TestApp, query: &str) -> (Vec<String>, i64) {
    let answer = app.get(&format!("/api/v1/deliveries?{query}")).await;
    assert_eq!(answer.status, 200, "{query}: {}", answer.body);
    let ids = answer.body["items"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(answer.body["total_capped"], false, "{query}");
    (ids, answer.body["total"].as_i64().unwrap())
}

/// Asserts the log lists exactly `expected` (in any order) for `query`, and counts them.
async fn finds(app: &TestApp, query: &str, expected: &[&String]) {
    let (mut ids, total) = found(app, query).await;
    ids.sort();
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(ids, expected, "{query}");
    assert_eq!(total, expected.len() as i64, "{query}: total");
}

on_both_backends! {
    #[actix_web::test]
    async fn the_alert_log_finds_deliveries_by_event_id_site_principal_or_resource_whatever_the_text() {
        let receiver = Receiver::start().await;
        let app = spawn_app().await;
        app.soc_channel_for_contoso(&receiver).await;
        let (_, hostile) = ingest(&app, event("high", "https://contoso.sharepoint.com/sites/100%_Légal", "o'brien@example.net", "Docs/Zoë's \"plan\" ☂.docx", "direct")).await;
        // What `%` and `_` would match as wildcards, and the same words in a field not searched.
        let (_, lookalike) = ingest(&app, event("low", "https://contoso.sharepoint.com/sites/100XXLégal", "obrien@example.net", "Docs/Zoe plan.docx", "o'brien")).await;
        let (plain_event, plain) = ingest(&app, event("medium", "https://fabrikam.sharepoint.com/sites/HR", "hr@example.net", "Payroll/2026.xlsx", "100%_Légal")).await;

        finds(&app, &format!("q={}", enc("100%_Légal")), &[&hostile]).await;
        finds(&app, &format!("q={}", enc("%")), &[&hostile]).await;
        finds(&app, &format!("q={}", enc("O'BRIEN@")), &[&hostile]).await;
        finds(&app, &format!("q={}", enc("Zoë's \"plan\" ☂")), &[&hostile]).await;
        finds(&app, &format!("q={}", enc("obrien")), &[&lookalike]).await;
        finds(&app, &format!("q={}", enc("PAYROLL/")), &[&plain]).await;
        finds(&app, &format!("q={}", enc("sites/")), &[&hostile, &lookalike, &plain]).await;
        finds(&app, &format!("q={}", enc(&plain_event[4..])), &[&plain]).await;
        // Keys and other fields are not searched.
        finds(&app, "q=site_url", &[]).await;
        finds(&app, "q=direct", &[]).await;
        finds(&app, &format!("q={}", enc("\\")), &[]).await;
        finds(&app, &format!("q={}", enc("' OR 1=1 --")), &[]).await;
        // With the other filters.
        finds(&app, &format!("q={}&severity=high", enc("sites/")), &[&hostile]).await;
        finds(&app, &format!("q={}&severity=low,medium", enc("sites/")), &[&lookalike, &plain]).await;
        finds(&app, &format!("q={}&status=failed", enc("sites/")), &[]).await;
        // The page holds one, the total counts all three.
        let answer = app.get(&format!("/api/v1/deliveries?q={}&limit=1", enc("example.net"))).await;
        assert_eq!((answer.body["items"].as_array().unwrap().len(), answer.body["total"].as_i64()), (1, Some(3)), "{}", answer.body);
        assert!(answer.body["next_cursor"].is_string());
    }

    #[actix_web::test]
    async fn the_alert_log_filters_by_date_range_and_severity_and_refuses_what_it_cannot_read() {
        let receiver = Receiver::start().await;
        let app = spawn_app().await;
        app.soc_channel_for_contoso(&receiver).await;
        let (_, high) = ingest(&app, permission_event("contoso", "permission.external_share_created", "high")).await;
        let (_, low) = ingest(&app, permission_event("contoso", "permission.external_share_created", "low")).await;
        let now = chrono::Utc::now();
        let at = |d: chrono::Duration| enc(&(now + d).to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        finds(&app, &format!("since={}", at(chrono::Duration::hours(-1))), &[&high, &low]).await;
        finds(&app, &format!("since={}&until={}", at(chrono::Duration::hours(-1)), at(chrono::Duration::hours(1))), &[&high, &low]).await;
        finds(&app, &format!("since={}", at(chrono::Duration::hours(1))), &[]).await;
        finds(&app, &format!("until={}", at(chrono::Duration::hours(-1))), &[]).await;
        finds(&app, "severity=high", &[&high]).await;
        finds(&app, "severity=critical", &[]).await;
        finds(&app, "", &[&high, &low]).await;

        let long = "x".repeat(201);
        for (query, field) in [
            ("since=yesterday".to_string(), "since"),
            ("until=2026-13-01T00:00:00Z".to_string(), "until"),
            ("since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z".to_string(), "until"),
            ("since=2026-12-01T00:00:00Z&until=2026-12-01T00:00:00Z".to_string(), "until"),
            ("severity=high,urgent".to_string(), "severity"),
            (format!("q={long}"), "q"),
            ("q=a%00b".to_string(), "q"),
        ] {
            let answer = app.get(&format!("/api/v1/deliveries?{query}")).await;
            assert_eq!(answer.status, 422, "{query}: {}", answer.body);
            assert_eq!(answer.content_type, "application/problem+json", "{query}");
            assert_eq!(answer.body["field"], field, "{query}: {}", answer.body);
        }
    }

    #[actix_web::test]
    async fn a_slack_delivery_shows_the_exact_body_slack_got_with_the_webhook_path_masked() {
        let receiver = Receiver::start().await;
        receiver.reply_with(Reply::Said(200, "ok"));
        let app = spawn_app().await;
        let answer = app.post("/api/v1/channels", json!({"name": "Slack", "type": "slack", "url": receiver.url("/services/T0001/B0002/abcdEFGH1234"), "rate_limit_per_second": 100})).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        app.route_everything_to(&[answer.body["id"].as_str().unwrap()]).await;
        app.create_tenant("contoso").await;
        let (_, id) = ingest(&app, permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery = app.wait_for_status(&id, "succeeded", Duration::from_secs(10)).await;
        let got = receiver.received();
        assert_eq!(got.len(), 1);
        let sent = &delivery["attempts"][0]["request"];
        assert_eq!(sent["method"], "POST");
        assert_eq!(sent["body"].as_str().unwrap().as_bytes(), &got[0].body[..], "the body shown is the body Slack got");
        assert!(sent["body"].as_str().unwrap().contains("\"blocks\""), "{sent:#}");
        assert_eq!(sent["body_bytes"], got[0].body.len());
        assert_eq!(sent["body_truncated"], false);
        assert_eq!(sent["url"], format!("http://127.0.0.1:{}/••••1234", receiver.port()));
        let header = |name: &str| sent["headers"].as_array().unwrap().iter().find(|h| h["name"] == name).map(|h| h["value"].clone());
        assert_eq!(header("content-type"), Some(json!("application/json")));
        assert_eq!(header("user-agent").unwrap().as_str(), got[0].headers.get("user-agent").map(String::as_str));
        let answered = sent["response_headers"].as_array().unwrap();
        assert!(answered.iter().any(|h| h["name"] == "content-length"), "{sent:#}");
        assert!(!delivery.to_string().contains("abcdEFGH"), "the secret path is nowhere: {delivery:#}");
    }

    #[actix_web::test]
    async fn a_webhook_delivery_shows_its_signed_request_with_custom_header_values_masked() {
        let receiver = Receiver::start().await;
        let app = spawn_app().await;
        let answer = app
            .post("/api/v1/channels", json!({"name": "Hook", "type": "webhook", "url": receiver.url("/hook?api_key=k3y-in-the-url&site=a"), "headers": {"X-Api-Key": "sk_live_0123456789abcdef"}}))
            .await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        app.route_everything_to(&[answer.body["id"].as_str().unwrap()]).await;
        app.create_tenant("contoso").await;
        let (_, id) = ingest(&app, permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery = app.wait_for_status(&id, "succeeded", Duration::from_secs(10)).await;
        let got = receiver.received();
        assert_eq!(got[0].headers["x-api-key"], "sk_live_0123456789abcdef");
        let sent = &delivery["attempts"][0]["request"];
        assert_eq!(sent["body"].as_str().unwrap().as_bytes(), &got[0].body[..], "{sent:#}");
        let header = |name: &str| sent["headers"].as_array().unwrap().iter().find(|h| h["name"].as_str().unwrap().eq_ignore_ascii_case(name)).map(|h| h["value"].as_str().unwrap().to_string());
        assert_eq!(header("x-api-key").as_deref(), Some("••••cdef"));
        for signed in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            assert_eq!(header(signed).as_ref(), got[0].headers.get(signed), "{signed}");
        }
        assert!(sent["url"].as_str().unwrap().ends_with("/hook?api_key=%E2%80%A2%E2%80%A2%E2%80%A2%E2%80%A2&site=a"), "{sent:#}");
        let shown = delivery.to_string();
        assert!(!shown.contains("sk_live_0123") && !shown.contains("k3y-in-the-url"), "{delivery:#}");
    }

    #[actix_web::test]
    async fn retention_deletes_the_requests_kept_with_the_attempts_it_deletes() {
        let receiver = Receiver::start().await;
        let retention = spscan_router::retention::Retention { keep: Duration::from_secs(2), keep_failed: Duration::from_secs(3600) };
        let app = spawn_app_with(move |settings| settings.retention = retention).await;
        app.soc_channel_for_contoso(&receiver).await;
        let (_, first) = ingest(&app, permission_event("contoso", "permission.external_share_created", "high")).await;
        let (_, second) = ingest(&app, permission_event("contoso", "permission.external_share_created", "low")).await;
        for id in [&first, &second] {
            let delivery = app.wait_for_status(id, "succeeded", Duration::from_secs(10)).await;
            assert!(delivery["attempts"][0]["request"].is_object(), "{delivery:#}");
        }
        let kept = || async {
            use diesel::prelude::*;
            use spscan_router::store::schema::sent_requests;
            app.handle.store().read(|conn| Ok(sent_requests::table.count().get_result::<i64>(conn)?)).await.unwrap()
        };
        assert_eq!(kept().await, 2);
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while app.get(&format!("/api/v1/deliveries/{second}")).await.status != 404 || kept().await != 0 {
            assert!(std::time::Instant::now() < deadline, "the purge left {} requests", kept().await);
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[actix_web::test]
    async fn a_splunk_batch_is_kept_once_for_all_its_deliveries_with_the_hec_token_masked() {
        use crate::siem::{hec, VendorReceiver, HEC_TOKEN};
        let receiver = VendorReceiver::start(hec);
        let app = spawn_app().await;
        let answer = app.post("/api/v1/channels", json!({"name": "Splunk", "type": "splunk", "url": receiver.base, "token": HEC_TOKEN, "index": "security", "batch_size": 10})).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        app.route_everything_to(&[answer.body["id"].as_str().unwrap()]).await;
        app.create_tenant("contoso").await;
        let events: Vec<Value> = (0..5).map(|_| permission_event("contoso", "permission.external_share_created", "high")).collect();
        let answer = app.ingest(json!({"events": events})).await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        let ids: Vec<String> = answer.body["results"].as_array().unwrap().iter().map(|r| r["deliveries"][0]["id"].as_str().unwrap().to_string()).collect();
        let mut requests = std::collections::HashSet::new();
        for id in &ids {
            let delivery = app.wait_for_status(id, "succeeded", Duration::from_secs(10)).await;
            let attempt = &delivery["attempts"][0];
            let sent = &attempt["request"];
            let body = sent["body"].as_str().unwrap().as_bytes().to_vec();
            assert!(receiver.with(|v| v.bodies.contains(&body)), "the body shown is one Splunk got: {sent:#}");
            let auth = sent["headers"].as_array().unwrap().iter().find(|h| h["name"] == "authorization").unwrap()["value"].clone();
            assert_eq!(auth, json!(format!("Splunk ••••{}", &HEC_TOKEN[HEC_TOKEN.len() - 4..])));
            assert!(!delivery.to_string().contains(HEC_TOKEN), "{delivery:#}");
            requests.insert(attempt["request_id"].as_str().map(str::to_string).unwrap_or_else(|| format!("{id}#1")));
        }
        use diesel::prelude::*;
        use spscan_router::store::schema::sent_requests;
        let kept: i64 = app.handle.store().read(|conn| Ok(sent_requests::table.count().get_result(conn)?)).await.unwrap();
        assert_eq!(kept, requests.len() as i64, "one row per request, not per delivery");
        assert!(requests.len() < ids.len(), "the five went in fewer requests: {requests:?}");
    }
}
