//! An event's payload (SPEC section 4), serialised once at ingestion and stored. A webhook channel
//! sends (and signs) exactly these bytes on every attempt; the other types render their own
//! bodies from them (`crate::channels`).

use serde::Serialize;
use serde_json::value::RawValue;

use super::event::{EventData, NewEvent};
use super::tenant::Tenant;
use super::time::{now_ms, rfc3339_compact};

#[derive(Serialize)]
struct Payload<'a> {
    event_id: &'a str,
    event: &'a str,
    timestamp: String,
    severity: &'a str,
    tenant: Option<&'a Tenant>,
    data: &'a RawValue,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    test: bool,
}

/// The payload of an event for the tenant it belongs to (none for the router's own events).
pub fn render(event: &NewEvent, tenant: Option<&Tenant>) -> String {
    let payload = Payload {
        event_id: &event.id,
        event: event.event_type.as_str(),
        timestamp: rfc3339_compact(event.occurred_at),
        severity: event.severity.as_str(),
        tenant,
        data: event.data.raw(),
        test: false,
    };
    serde_json::to_string(&payload).expect("a payload always serialises")
}

/// The sample sent by **Test**: a real permission event's structure with `"test": true`.
pub fn render_test(event_id: &str) -> String {
    let tenant = Tenant {
        id: "spscan-test".into(),
        display_name: "SPScan test tenant".into(),
        microsoft_tenant_id: "00000000-0000-4000-8000-000000000000".into(),
    };
    let data = serde_json::json!({
        "site_url": "https://spscan-test.sharepoint.com/sites/Finance",
        "resource_path": "Shared Documents/Q3 forecast.xlsx",
        "permission_type": "specific_people_link",
        "principal": "outsider@example.net",
        "access_level": "edit",
    });
    let data = EventData::new(data.as_object().expect("literal object"));
    let payload = Payload {
        event_id,
        event: "permission.external_share_created",
        timestamp: rfc3339_compact(now_ms() / 1000 * 1000),
        severity: "high",
        tenant: Some(&tenant),
        data: data.raw(),
        test: true,
    };
    serde_json::to_string(&payload).expect("a payload always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::{EventType, TenantRef};
    use crate::domain::severity::Severity;
    use crate::domain::time::parse_rfc3339;

    #[test]
    fn the_payload_has_the_documented_shape_and_order() {
        let tenant = Tenant {
            id: "contoso".into(),
            display_name: "Contoso Ltd".into(),
            microsoft_tenant_id: "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd".into(),
        };
        let data = serde_json::json!({"site_url": "s", "resource_path": "r"});
        let event = NewEvent {
            id: "evt_1".into(),
            event_type: EventType::parse("event", "permission.external_share_created").unwrap(),
            occurred_at: parse_rfc3339("2026-11-28T15:36:08Z").unwrap(),
            severity: Severity::High,
            tenant: TenantRef::Full(tenant.clone()),
            data: EventData::new(data.as_object().unwrap()),
        };
        assert_eq!(
            render(&event, Some(&tenant)),
            r#"{"event_id":"evt_1","event":"permission.external_share_created","timestamp":"2026-11-28T15:36:08Z","severity":"high","tenant":{"id":"contoso","display_name":"Contoso Ltd","microsoft_tenant_id":"b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd"},"data":{"site_url":"s","resource_path":"r"}}"#
        );
    }

    #[test]
    fn the_test_payload_is_marked_as_a_test() {
        let value: serde_json::Value = serde_json::from_str(&render_test("evt_x")).unwrap();
        assert_eq!(value["test"], true);
        assert_eq!(value["event"], "permission.external_share_created");
        assert_eq!(value["data"]["principal"], "outsider@example.net");
    }
}
