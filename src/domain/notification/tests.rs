use serde_json::{json, Map, Value};

use super::*;

const CONTOSO: &str = r#"{"id":"contoso","display_name":"Contoso Ltd","microsoft_tenant_id":"b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd"}"#;

/// A section 4 payload as stored (compact JSON text).
fn event(id: &str, severity: &str, tenant: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","event":"permission.external_share_created","timestamp":"2026-11-28T15:36:08Z","severity":"{severity}","tenant":{tenant},"data":{{"site_url":"https://contoso.sharepoint.com/sites/Finance","principal":"outsider@example.net"}}}}"#
    )
}

fn key() -> Map<String, Value> {
    let mut key = Map::new();
    key.insert("/data/site_url".into(), json!("https://contoso.sharepoint.com/sites/Finance"));
    key.insert("/data/missing".into(), Value::Null);
    key
}

fn notification<'a>(key: &'a Map<String, Value>, events: &'a [&'a str], earlier: u64) -> Notification<'a> {
    Notification {
        event_id: "grp_1",
        timestamp_ms: crate::domain::time::parse_rfc3339("2026-11-28T16:00:00Z").unwrap(),
        rule_id: "rule_1",
        rule_name: "Finance shares",
        group_id: "agrp_1",
        key,
        earlier,
        max_severity: Severity::Critical,
        listed: events,
        all: Collected::of(events),
    }
}

fn parsed(body: &str) -> Value {
    serde_json::from_str(body).unwrap()
}

#[test]
fn a_notification_has_the_documented_shape_and_embeds_its_events_verbatim() {
    let (first, second) = (event("evt_1", "high", CONTOSO), event("evt_2", "medium", CONTOSO));
    let events = [first.as_str(), second.as_str()];
    let key = key();
    let body = notification(&key, &events, 3).body();
    let value = parsed(&body);
    let fields: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(fields, ["event", "event_id", "timestamp", "rule", "group", "severity", "tenant", "events"]);
    assert_eq!(value["event"], "alert.group");
    assert_eq!(value["event_id"], "grp_1");
    assert_eq!(value["timestamp"], "2026-11-28T16:00:00Z");
    assert_eq!(value["rule"], json!({"id": "rule_1", "name": "Finance shares"}));
    assert_eq!(
        value["group"],
        json!({"id": "agrp_1", "key": {"/data/site_url": "https://contoso.sharepoint.com/sites/Finance", "/data/missing": null},
               "count": 2, "earlier": 3, "max_severity": "critical"})
    );
    assert_eq!(value["severity"], "high");
    assert_eq!(value["tenant"], parsed(CONTOSO));
    // The stored bytes, unchanged, oldest first.
    assert!(body.contains(&format!(r#""events":[{first},{second}]}}"#)), "{body}");
    assert!(value.get("truncated").is_none() && value.get("test").is_none());
}

#[test]
fn a_hundred_events_are_all_listed_and_a_hundred_and_one_are_truncated() {
    let stored: Vec<String> = (0..101).map(|i| event(&format!("evt_{i}"), "low", CONTOSO)).collect();
    let all: Vec<&str> = stored.iter().map(String::as_str).collect();
    let key = key();

    let hundred = parsed(&notification(&key, &all[..100], 0).body());
    assert_eq!(hundred["group"]["count"], 100);
    assert_eq!(hundred["events"].as_array().unwrap().len(), 100);
    assert!(hundred.get("truncated").is_none());

    let more = parsed(&notification(&key, &all, 250).body());
    assert_eq!(more["group"]["count"], 101, "count is every event, listed or not");
    assert_eq!(more["group"]["earlier"], 250);
    let listed = more["events"].as_array().unwrap();
    assert_eq!(listed.len(), MAX_LISTED);
    assert_eq!((&listed[0]["event_id"], &listed[99]["event_id"]), (&json!("evt_0"), &json!("evt_99")), "the oldest are listed");
    assert_eq!(more["truncated"], true);
}

#[test]
fn the_tenant_is_given_only_when_every_event_has_the_same_one() {
    let fabrikam = r#"{"id":"fabrikam","display_name":"Fabrikam","microsoft_tenant_id":"x"}"#;
    let renamed = r#"{"id":"contoso","display_name":"Contoso Group","microsoft_tenant_id":"b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd"}"#;
    let key = key();
    let tenant_of = |events: &[String]| {
        let events: Vec<&str> = events.iter().map(String::as_str).collect();
        parsed(&notification(&key, &events, 0).body())["tenant"].clone()
    };
    assert_eq!(tenant_of(&[event("a", "low", CONTOSO), event("b", "low", fabrikam)]), Value::Null, "mixed tenants");
    assert_eq!(tenant_of(&[event("a", "low", CONTOSO), event("b", "low", "null")]), Value::Null, "one without a tenant");
    assert_eq!(tenant_of(&[event("a", "low", "null"), event("b", "low", "null")]), Value::Null, "the router's own events");
    assert_eq!(tenant_of(&[]), Value::Null);
    // Names can change while a group is open: the newest event's are given.
    assert_eq!(tenant_of(&[event("a", "low", CONTOSO), event("b", "low", renamed)]), parsed(renamed));
}

#[test]
fn the_severity_is_the_highest_of_this_notifications_events() {
    let stored = [event("a", "medium", CONTOSO), event("b", "critical", CONTOSO), event("c", "low", CONTOSO)];
    let events: Vec<&str> = stored.iter().map(String::as_str).collect();
    let key = key();
    let mut notification = notification(&key, &events, 0);
    notification.max_severity = Severity::Critical;
    assert_eq!(notification.all.severity, Severity::Critical);
    let events = [events[0], events[2]];
    notification.listed = &events;
    notification.all = Collected::of(&events);
    assert_eq!(notification.all.severity, Severity::Medium);
    let value = parsed(&notification.body());
    // This notification's highest, beside the group's highest so far.
    assert_eq!((&value["severity"], &value["group"]["max_severity"]), (&json!("medium"), &json!("critical")));
    assert_eq!(Collected::of(&[]).severity, Severity::Low);
}

#[test]
fn the_test_sample_is_a_marked_notification_of_three_events_of_one_site() {
    let body = parsed(&render_test("grp_t", 0));
    assert_eq!(body["event"], NOTIFICATION_EVENT);
    assert_eq!(body["event_id"], "grp_t");
    assert_eq!(body["test"], true);
    assert!(body["group"]["id"].as_str().unwrap().starts_with("agrp_"));
    assert_eq!(body["group"]["count"], 3);
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["tenant"]["id"], "spscan-test");
    let events = body["events"].as_array().unwrap();
    let site = &body["group"]["key"]["/data/site_url"];
    assert!(site.is_string());
    assert!(events.iter().all(|e| &e["data"]["site_url"] == site && e["test"] == true));
    let principals: Vec<&str> = events.iter().map(|e| e["data"]["principal"].as_str().unwrap()).collect();
    assert_eq!(principals.len(), 3);
    assert_ne!(principals[0], principals[1]);
}
