//! Bad input: every case answers a 4xx problem+json naming what to fix, and writes nothing.

use serde_json::{json, Value};

use crate::helpers::*;

struct Case {
    what: &'static str,
    method: &'static str,
    path: String,
    body: Option<Vec<u8>>,
    status: u16,
    field: Option<&'static str>,
}

fn case(what: &'static str, method: &'static str, path: &str, body: Value, status: u16, field: Option<&'static str>) -> Case {
    Case { what, method, path: path.to_string(), body: Some(serde_json::to_vec(&body).unwrap()), status, field }
}

/// A GET whose query string is at fault, answered naming `field`.
fn query(what: &'static str, path: &str, status: u16, field: &'static str) -> Case {
    // (`path` may be built with the ids of the objects the test made.)
    Case { what, method: "GET", path: path.to_string(), body: None, status, field: Some(field) }
}

fn raw(what: &'static str, method: &'static str, path: &str, body: Option<Vec<u8>>, status: u16) -> Case {
    Case { what, method, path: path.to_string(), body, status, field: None }
}

on_both_backends! {
    #[actix_web::test]
    async fn every_bad_input_gets_a_problem_that_names_what_to_fix() {
        let app = spawn_app_with(|s| {
            s.limits.max_body_bytes = 64 * 1024;
            s.limits.max_batch_events = 5;
        })
        .await;
        app.create_tenant("contoso").await;
        let channel = app.create_channel("SOC", "https://hooks.example.com/soc").await;
        let ch = channel["id"].as_str().unwrap().to_string();
        let rule = app.post("/api/v1/rules", json!({"name": "R", "event_types": ["*"], "channel_ids": [ch]})).await.body["id"].as_str().unwrap().to_string();
        let mut good = permission_event("contoso", "permission.external_share_created", "high");
        good["event_id"] = json!("good-event-1");
        let with = |key: &str, value: Value| {
            let mut e = good.clone();
            e[key] = value;
            e
        };
        let without = |key: &str| {
            let mut e = good.clone();
            e.as_object_mut().unwrap().remove(key);
            e
        };
        let mut nested = json!(1);
        for _ in 0..200 {
            nested = json!([nested]);
        }

        let cases = vec![
            raw("broken JSON", "POST", "/api/v1/events", Some(b"{\"event\":".to_vec()), 400),
            raw("not UTF-8", "POST", "/api/v1/events", Some(b"{\"event\":\"\xff\xfe\"}".to_vec()), 400),
            raw("no body", "POST", "/api/v1/events", None, 400),
            case("an array instead of an event", "POST", "/api/v1/events", json!([good]), 422, Some("event")),
            case("missing severity", "POST", "/api/v1/events", without("severity"), 422, Some("severity")),
            case("unknown severity", "POST", "/api/v1/events", with("severity", json!("urgent")), 422, Some("severity")),
            case("malformed event type", "POST", "/api/v1/events", with("event", json!("Permission Changed")), 422, Some("event")),
            case("unknown tenant", "POST", "/api/v1/events", with("tenant_id", json!("nobody")), 422, Some("tenant_id")),
            case("unknown field", "POST", "/api/v1/events", with("colour", json!("red")), 422, Some("colour")),
            case("bad timestamp", "POST", "/api/v1/events", with("timestamp", json!("yesterday")), 422, Some("timestamp")),
            case("a tenant's GUID as null", "POST", "/api/v1/events", with("tenant", json!({"id": "t2", "display_name": "T", "microsoft_tenant_id": null})), 422, Some("tenant.microsoft_tenant_id")),
            case("a tenant's GUID as a number", "POST", "/api/v1/events", json!({"events": [good, with("tenant", json!({"id": "t2", "display_name": "T", "microsoft_tenant_id": 7}))]}), 422, Some("events[1].tenant.microsoft_tenant_id")),
            case("an unknown field in the tenant", "POST", "/api/v1/events", with("tenant", json!({"id": "t2", "display_name": "T", "microsoft_tenant_id": "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd", "x": 1})), 422, Some("tenant.x")),
            case("permission data missing", "POST", "/api/v1/events", with("data", json!({})), 422, Some("data.site_url")),
            case("deeply nested data", "POST", "/api/v1/events", with("data", json!({"deep": nested})), 400, None),
            case("one bad event in a batch", "POST", "/api/v1/events", json!({"events": [good, with("severity", json!("x"))]}), 422, Some("events[1].severity")),
            case("an empty batch", "POST", "/api/v1/events", json!({"events": []}), 422, Some("events")),
            case("a batch over the limit", "POST", "/api/v1/events", json!({"events": vec![good.clone(); 6]}), 422, Some("events")),
            raw("a body over the limit", "POST", "/api/v1/events", Some(vec![b' '; 70 * 1024]), 413),
            case("channel without a scheme", "POST", "/api/v1/channels", json!({"name": "X", "url": "hooks.example.com"}), 422, Some("url")),
            case("channel with an ftp url", "POST", "/api/v1/channels", json!({"name": "X", "url": "ftp://x.example.com"}), 422, Some("url")),
            case("unknown channel type", "POST", "/api/v1/channels", json!({"name": "X", "type": "carrier-pigeon", "url": "https://x.example.com"}), 422, Some("type")),
            case("channel overriding Host", "POST", "/api/v1/channels", json!({"name": "X", "url": "https://x.example.com", "headers": {"Host": "evil"}}), 422, Some("headers.Host")),
            case("channel with a blank name", "POST", "/api/v1/channels", json!({"name": "  ", "url": "https://x.example.com"}), 422, Some("name")),
            case("channel without a name", "POST", "/api/v1/channels", json!({"url": "https://x.example.com"}), 400, Some("name")),
            case("channel name as a number", "POST", "/api/v1/channels", json!({"name": 7, "url": "https://x.example.com"}), 400, Some("name")),
            case("tenant created with a null GUID", "POST", "/api/v1/tenants", json!({"id": "t3", "display_name": "T", "microsoft_tenant_id": null}), 400, Some("microsoft_tenant_id")),
            case("rule with its channels as one string", "POST", "/api/v1/rules", json!({"name": "R", "event_types": ["*"], "channel_ids": ch}), 400, Some("channel_ids")),
            case("channel type change", "PATCH", &format!("/api/v1/channels/{ch}"), json!({"type": "teams"}), 422, Some("type")),
            case("bulk redelivery of pending deliveries", "POST", "/api/v1/deliveries/redeliver", json!({"status": "pending"}), 422, Some("status")),
            case("bulk redelivery since a bad time", "POST", "/api/v1/deliveries/redeliver", json!({"since": "yesterday"}), 422, Some("since")),
            case("bulk redelivery until before since", "POST", "/api/v1/deliveries/redeliver", json!({"since": "2026-11-28T00:00:00Z", "until": "2026-11-27T00:00:00Z"}), 422, Some("until")),
            case("bulk redelivery of an empty channel id", "POST", "/api/v1/deliveries/redeliver", json!({"channel_id": ""}), 422, Some("channel_id")),
            case("bulk redelivery of an empty silence id", "POST", "/api/v1/deliveries/redeliver", json!({"silence_id": "", "dry_run": true}), 422, Some("silence_id")),
            case("bulk redelivery with an unknown filter", "POST", "/api/v1/deliveries/redeliver", json!({"colour": "red"}), 400, None),
            case("channel with a rate limit of 0", "POST", "/api/v1/channels", json!({"name": "X", "url": "https://x.example.com", "rate_limit_per_second": 0}), 422, Some("rate_limit_per_second")),
            case("channel with a fractional rate limit", "POST", "/api/v1/channels", json!({"name": "X", "url": "https://x.example.com", "rate_limit_per_second": 2.5}), 422, Some("rate_limit_per_second")),
            case("channel with a rate limit as text", "PATCH", &format!("/api/v1/channels/{ch}"), json!({"rate_limit_per_second": "5"}), 422, Some("rate_limit_per_second")),
            case("channel with a rate limit too high", "PATCH", &format!("/api/v1/channels/{ch}"), json!({"rate_limit_per_second": 10001}), 422, Some("rate_limit_per_second")),
            case("rule to an unknown channel", "POST", "/api/v1/rules", json!({"name": "R", "event_types": ["*"], "channel_ids": ["ch_nope"]}), 422, Some("channel_ids")),
            case("rule with a bad pattern", "POST", "/api/v1/rules", json!({"name": "R", "event_types": ["permission*"], "channel_ids": [ch]}), 422, Some("event_types[0]")),
            case("rule without event types", "POST", "/api/v1/rules", json!({"name": "R", "event_types": [], "channel_ids": [ch]}), 422, Some("event_types")),
            case("rule with a bad severity", "POST", "/api/v1/rules", json!({"name": "R", "event_types": ["*"], "min_severity": "severe", "channel_ids": [ch]}), 422, Some("min_severity")),
            case("rule for an unknown tenant", "POST", "/api/v1/rules", json!({"name": "R", "tenant_id": "nobody", "event_types": ["*"], "channel_ids": [ch]}), 422, Some("tenant_id")),
            case("tenant with a bad GUID", "POST", "/api/v1/tenants", json!({"id": "t", "display_name": "T", "microsoft_tenant_id": "not-a-guid"}), 422, Some("microsoft_tenant_id")),
            case("tenant with a bad id", "POST", "/api/v1/tenants", json!({"id": "has space", "display_name": "T", "microsoft_tenant_id": "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd"}), 422, Some("id")),
            // `null` for a field that cannot be null is no "leave it as it is".
            case("channel name set to null", "PATCH", &format!("/api/v1/channels/{ch}"), json!({"name": null}), 422, Some("name")),
            case("channel URL set to null", "PATCH", &format!("/api/v1/channels/{ch}"), json!({"url": null}), 422, Some("url")),
            case("channel enabled set to null", "PATCH", &format!("/api/v1/channels/{ch}"), json!({"enabled": null}), 422, Some("enabled")),
            case("channel type set to null", "PATCH", &format!("/api/v1/channels/{ch}"), json!({"type": null}), 422, Some("type")),
            case("rule name set to null", "PATCH", &format!("/api/v1/rules/{rule}"), json!({"name": null}), 422, Some("name")),
            case("rule event types set to null", "PATCH", &format!("/api/v1/rules/{rule}"), json!({"event_types": null}), 422, Some("event_types")),
            case("rule severity set to null", "PATCH", &format!("/api/v1/rules/{rule}"), json!({"min_severity": null}), 422, Some("min_severity")),
            case("rule channels set to null", "PATCH", &format!("/api/v1/rules/{rule}"), json!({"channel_ids": null}), 422, Some("channel_ids")),
            case("rule enabled set to null", "PATCH", &format!("/api/v1/rules/{rule}"), json!({"enabled": null}), 422, Some("enabled")),
            case("tenant name set to null", "PATCH", "/api/v1/tenants/contoso", json!({"display_name": null}), 422, Some("display_name")),
            case("tenant GUID set to null", "PATCH", "/api/v1/tenants/contoso", json!({"microsoft_tenant_id": null}), 422, Some("microsoft_tenant_id")),
            raw("log with an unknown status", "GET", "/api/v1/deliveries?status=lost", None, 422),
            raw("log with a zero limit", "GET", "/api/v1/deliveries?limit=0", None, 422),
            raw("log with an unknown filter", "GET", "/api/v1/deliveries?colour=red", None, 400),
            query("a query on a route that reads none", "/api/v1/channels?tenant_id=contoso", 400, "tenant_id"),
            query("a query on one channel", &format!("/api/v1/channels/{ch}?verbose=1"), 400, "verbose"),
            query("log with a limit in words", "/api/v1/deliveries?limit=ten", 400, "limit"),
            query("log with an empty severity in a list", "/api/v1/deliveries?severity=high,,low", 422, "severity"),
            query("log with a trailing comma in severities", "/api/v1/deliveries?severity=high,", 422, "severity"),
            query("statistics over hours in words", "/api/v1/stats/deliveries?hours=abc", 400, "hours"),
            query("statistics over too many hours", "/api/v1/stats/deliveries?hours=1000", 422, "hours"),
            raw("log with a forged cursor", "GET", "/api/v1/deliveries?cursor=abc", None, 422),
            raw("unknown channel", "GET", "/api/v1/channels/ch_nope", None, 404),
            raw("unknown delivery", "GET", "/api/v1/deliveries/dlv_nope", None, 404),
            raw("wrong method", "PUT", "/api/v1/channels", None, 405),
            raw("unknown route", "GET", "/api/v1/nothing-here", None, 404),
        ];

        for case in cases {
            let answer = app.request(case.method, &case.path, case.body).await;
            assert_eq!(answer.status, case.status, "{}: {}", case.what, answer.body);
            assert_eq!(answer.content_type, "application/problem+json", "{}", case.what);
            assert_eq!(answer.body["status"], case.status, "{}", case.what);
            assert!(answer.body["type"].as_str().unwrap().starts_with("urn:spscan-router:problem:"), "{}", case.what);
            assert!(!answer.body["detail"].as_str().unwrap_or_default().is_empty(), "{}", case.what);
            if let Some(field) = case.field {
                assert_eq!(answer.body["field"], field, "{}: {}", case.what, answer.body);
            }
        }

        // Nothing was written by any of them: the good event (sent inside refused batches) is still
        // new, the one rule, channel and tenant are as they were made.
        let fresh = app.ingest(good.clone()).await;
        assert_eq!(fresh.status, 202, "{}", fresh.body);
        assert_eq!(fresh.body["duplicate"], false, "a refused request stored the event");
        let rules = app.get("/api/v1/rules").await.body["items"].clone();
        assert_eq!((rules.as_array().unwrap().len(), &rules[0]["name"], &rules[0]["event_types"], &rules[0]["enabled"]), (1, &json!("R"), &json!(["*"]), &json!(true)));
        let channels = app.get("/api/v1/channels").await.body["items"].clone();
        assert_eq!((channels.as_array().unwrap().len(), &channels[0]["name"], &channels[0]["url"]), (1, &json!("SOC"), &json!("https://hooks.example.com/soc")));
        assert_eq!(app.get("/api/v1/tenants").await.body["items"].as_array().unwrap().len(), 1);
    }

    #[actix_web::test]
    async fn a_batch_with_one_bad_event_stores_none_of_them() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        app.soc_channel_for_contoso(&receiver).await;
        let mut good = permission_event("contoso", "permission.external_share_created", "high");
        good["event_id"] = json!("good-1");
        let mut stranger = permission_event("nobody", "permission.external_share_created", "high");
        stranger["event_id"] = json!("bad-1");

        let refused = app.ingest(json!({"events": [good.clone(), stranger]})).await;
        assert_eq!(refused.status, 422);
        assert_eq!(refused.body["field"], "events[1].tenant_id");
        assert_eq!(app.get("/api/v1/deliveries").await.body["items"], json!([]));

        // The good event was not stored: sent again, it is new, not a duplicate.
        let again = app.ingest(good).await;
        assert_eq!(again.status, 202);
        assert_eq!(again.body["duplicate"], false);
    }
}
