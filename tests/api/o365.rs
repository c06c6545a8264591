//! Office 365 audit records in: records written to look like real ones, posted to
//! `POST /api/v1/sources/o365/audit`, become one alert per user action at a real receiver.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

pub const CONTOSO_GUID: &str = "B86AB9D4-FCF1-4B11-8A06-7A8F91B47FBD";

fn record(id: &str, operation: &str, extra: Value) -> Value {
    let mut value = json!({
        "Id": id, "RecordType": 14, "CreationTime": "2026-11-28T15:36:08", "Operation": operation, "OrganizationId": CONTOSO_GUID.to_lowercase(),
        "UserType": 0, "UserKey": "i:0h.f|membership|10032000a1b2c3d4@live.com", "Workload": "SharePoint", "ClientIP": "203.0.113.7",
        "UserId": "alice@contoso.com", "SiteUrl": "https://contoso.sharepoint.com/sites/Finance/", "SourceRelativeUrl": "Shared Documents",
        "SourceFileName": "Q3 forecast.xlsx", "ObjectId": "https://contoso.sharepoint.com/sites/Finance/Shared Documents/Q3 forecast.xlsx",
        "ItemType": "File", "CorrelationId": "9f3c0a1e-5a6b-4c7d-8e9f-00000000abcd", "EventSource": "SharePoint"
    });
    value.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    value
}

/// The six records one "anyone" link click writes (string and integer types mixed, as seen).
pub fn anyone_link_click() -> Vec<Value> {
    vec![
        record("0a000001-0000-0000-0000-000000000001", "SharingSet", json!({"RecordType": "14", "TargetUserOrGroupName": "SharingLinks.4f2a.AnonymousEdit.77e1", "TargetUserOrGroupType": "SharePointGroup", "EventData": "<Permissions granted>Contribute</Permissions granted>"})),
        record("0a000001-0000-0000-0000-000000000002", "SharingSet", json!({"TargetUserOrGroupName": "Limited Access System Group", "TargetUserOrGroupType": "SharePointGroup", "EventData": "<Permissions granted>Limited Access</Permissions granted>"})),
        record("0a000001-0000-0000-0000-000000000003", "SharingSet", json!({"TargetUserOrGroupName": "SHAREPOINT\\a1b2c3d4e5f6", "TargetUserOrGroupType": "SecurityGroup"})),
        record("0a000001-0000-0000-0000-000000000004", "SharingInheritanceBroken", json!({"CreationTime": "2026-11-28 15:36:08"})),
        record("0a000001-0000-0000-0000-000000000005", "GroupAdded", json!({"TargetUserOrGroupName": "SharingLinks.4f2a.AnonymousEdit.77e1", "ClientIP": ""})),
        record("0A000001-0000-0000-0000-000000000006", "AnonymousLinkCreated", json!({"EventData": "<Type>Edit</Type>", "UserType": "0"})),
    ]
}

on_both_backends! {
    #[actix_web::test]
    async fn an_anyone_link_click_of_six_records_is_one_alert_and_each_record_says_what_became_of_it() {
        let receiver = Receiver::start().await;
        let app = spawn_app().await;
        let channel = app.create_channel("SOC", &receiver.url("/")).await;
        app.route_everything_to(&[channel["id"].as_str().unwrap()]).await;
        let tenant = app.post("/api/v1/tenants", json!({"id": "contoso", "display_name": "Contoso Ltd", "microsoft_tenant_id": CONTOSO_GUID})).await;
        assert_eq!(tenant.status, 201, "{}", tenant.body);

        let mut records = anyone_link_click();
        records.push(record("0b000000-0000-0000-0000-000000000001", "SharingSet", json!({"OrganizationId": "00000000-1111-2222-3333-444444444444"})));
        records.push(json!({"Id": "0c000000-0000-0000-0000-000000000001", "Operation": "SharingSet", "CreationTime": "not a time", "OrganizationId": CONTOSO_GUID}));
        records.push(json!("garbage"));
        records.push(record("0d000000-0000-0000-0000-000000000001", "FileAccessed", json!({"CorrelationId": "another"})));
        // The ingest token may post audit records.
        let answer = app.api.with_token(Some(INGEST_TOKEN)).post("/api/v1/sources/o365/audit", json!(records)).await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        let results = answer.body["results"].as_array().unwrap();
        let outcomes: Vec<&str> = results.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
        assert_eq!(outcomes, ["folded", "folded", "folded", "folded", "folded", "ingested", "unknown_tenant", "invalid", "invalid", "ignored"], "{results:#?}");
        let event_id = "o365_0a000001-0000-0000-0000-000000000006";
        assert_eq!(results[5]["event_id"], event_id);
        assert_eq!((results[5]["event"].as_str(), results[5]["severity"].as_str()), (Some("permission.anonymous_link_created"), Some("critical")));
        assert!(results[..5].iter().all(|r| r["event_id"] == event_id), "folded into the link's event");
        assert!(results[7]["detail"].as_str().unwrap().contains("CreationTime"));

        let got = receiver.wait_for(1, None, Duration::from_secs(10)).await;
        let payload = got[0].json();
        assert_eq!(payload["event_id"], event_id);
        assert_eq!(payload["tenant"]["id"], "contoso");
        assert_eq!(payload["timestamp"], "2026-11-28T15:36:08Z");
        assert_eq!(payload["data"]["principal"], "Anyone with the link");
        assert_eq!(payload["data"]["resource_path"], "Shared Documents/Q3 forecast.xlsx");
        assert_eq!(payload["data"]["access_level"], "edit");
        assert_eq!(payload["data"]["actor"], "alice@contoso.com");

        // The same records again: the event is a duplicate, nothing more is sent.
        let again = app.post("/api/v1/sources/o365/audit", json!(anyone_link_click())).await;
        assert_eq!(again.body["results"][5]["outcome"], "duplicate", "{}", again.body);
        // Deliveries are created in the ingestion's own commit: a duplicate made none.
        assert_eq!(app.get("/api/v1/deliveries").await.body["items"].as_array().unwrap().len(), 1);

        // The tenant's read says what arrived from its audit log.
        let tenant = &app.get("/api/v1/tenants").await.body["items"][0];
        assert!(tenant["audit"]["last_record_at"].is_string(), "{tenant:#}");
        assert_eq!(tenant["audit"]["last_24h"], json!({"ingested": 1, "duplicate": 1, "folded": 10, "ignored": 1, "invalid": 1}), "{tenant:#}");
    }

    #[actix_web::test]
    async fn a_click_whose_records_come_in_two_requests_is_still_one_alert() {
        let receiver = Receiver::start().await;
        let app = spawn_app().await;
        let channel = app.create_channel("SOC", &receiver.url("/")).await;
        app.route_everything_to(&[channel["id"].as_str().unwrap()]).await;
        app.post("/api/v1/tenants", json!({"id": "contoso", "display_name": "Contoso Ltd", "microsoft_tenant_id": CONTOSO_GUID})).await;
        let click = anyone_link_click();
        // The link group's grant comes first and stands for the link; the link record, later, folds.
        let first = app.post("/api/v1/sources/o365/audit", json!(click[..3])).await;
        let outcomes: Vec<&str> = first.body["results"].as_array().unwrap().iter().map(|r| r["outcome"].as_str().unwrap()).collect();
        assert_eq!(outcomes, ["ingested", "folded", "folded"], "{}", first.body);
        let event_id = first.body["results"][0]["event_id"].as_str().unwrap().to_string();
        assert_eq!(first.body["results"][0]["severity"], "critical", "an anyone link that can edit");
        let second = app.post("/api/v1/sources/o365/audit", json!(click[3..])).await;
        for result in second.body["results"].as_array().unwrap() {
            assert_eq!((result["outcome"].as_str(), result["event_id"].as_str()), (Some("folded"), Some(event_id.as_str())), "{}", second.body);
        }
        assert_eq!(app.get("/api/v1/deliveries").await.body["items"].as_array().unwrap().len(), 1, "one alert for one click");
        receiver.wait_for(1, None, Duration::from_secs(10)).await;
    }

    #[actix_web::test]
    async fn audit_records_that_are_not_records_are_refused_with_what_to_send() {
        let app = spawn_app().await;
        for body in [json!("a string"), json!([]), json!(42)] {
            let answer = app.post("/api/v1/sources/o365/audit", body.clone()).await;
            assert_eq!(answer.status, 422, "{body}: {}", answer.body);
            assert_eq!(answer.body["field"], "records");
        }
    }
}

/// One record per row of `docs/o365-mapping.md` (and each condition of a row), as SharePoint
/// writes them, with what the router must make of it: `(operation, fields, outcome, event,
/// severity, permission_type, access_level, principal)`; `None` where the row does not say.
type Row = (&'static str, Value, &'static str, Option<&'static str>, Option<&'static str>, Option<&'static str>, Option<&'static str>, Option<&'static str>);

fn mapping_rows() -> Vec<Row> {
    let guest = |name: &str| json!({"TargetUserOrGroupName": name, "TargetUserOrGroupType": "Guest"});
    let member = |name: &str| json!({"TargetUserOrGroupName": name, "TargetUserOrGroupType": "Member"});
    let policy = |new: &str| json!({"ModifiedProperties": [{"Name": "SharingCapability", "NewValue": new, "OldValue": "ExistingExternalUserSharingOnly"}]});
    vec![
        ("AnonymousLinkCreated", json!({"EventData": "<Type>View</Type>"}), "ingested", Some("permission.anonymous_link_created"), Some("high"), Some("anonymous_link"), Some("view"), Some("Anyone with the link")),
        ("AnonymousLinkCreated", json!({"EventData": "<Type>Edit</Type>"}), "ingested", Some("permission.anonymous_link_created"), Some("critical"), Some("anonymous_link"), Some("edit"), None),
        ("AnonymousLinkUpdated", json!({"EventData": "<Type>View</Type>"}), "ingested", Some("permission.anonymous_link_updated"), Some("medium"), Some("anonymous_link"), None, None),
        ("AnonymousLinkUsed", json!({"ClientIP": "198.51.100.9", "UserId": "urn:spo:anon#1f2e", "UserType": "0"}), "ingested", Some("permission.anonymous_link_used"), Some("medium"), Some("anonymous_link"), None, Some("198.51.100.9")),
        ("AnonymousLinkRemoved", json!({}), "ingested", Some("permission.anonymous_link_removed"), Some("low"), None, None, None),
        ("SharingInvitationCreated", guest("bob@fabrikam.com"), "ingested", Some("permission.external_share_created"), Some("high"), Some("invitation"), None, Some("bob@fabrikam.com")),
        ("SharingInvitationCreated", member("carol@contoso.com"), "ignored", None, None, None, None, None),
        ("AddedToSecureLink", json!({"TargetUserOrGroupName": "bob_fabrikam.com#EXT#@contoso.onmicrosoft.com", "EventData": "<Type>Edit</Type>"}), "ingested", Some("permission.external_share_created"), Some("high"), Some("specific_people_link"), Some("edit"), None),
        ("SharingSet", json!({"TargetUserOrGroupName": "bob@fabrikam.com", "TargetUserOrGroupType": "Guest", "EventData": "<Permissions granted>Contribute</Permissions granted>"}), "ingested", Some("permission.external_share_created"), Some("high"), Some("direct"), Some("contribute"), None),
        ("AddedToGroup", json!({"TargetUserOrGroupName": "bob@fabrikam.com", "TargetUserOrGroupType": "Guest", "EventData": "<Group>Finance Members</Group>"}), "ingested", Some("permission.external_user_added_to_group"), Some("high"), Some("group_membership"), Some("Finance Members"), None),
        ("SharingInvitationAccepted", json!({"UserId": "bob@fabrikam.com"}), "ingested", Some("permission.external_share_accepted"), Some("medium"), None, None, None),
        ("SharingInvitationBlocked", guest("bob@fabrikam.com"), "ingested", Some("permission.external_share_blocked"), Some("low"), None, None, None),
        ("SharingInvitationRevoked", guest("bob@fabrikam.com"), "ingested", Some("permission.external_share_revoked"), Some("low"), None, None, None),
        ("SharingInvitationUpdated", guest("bob@fabrikam.com"), "ingested", Some("permission.external_share_updated"), Some("low"), None, None, None),
        ("SecureLinkCreated", json!({"EventData": "<Type>View</Type>"}), "ingested", Some("permission.specific_people_link_created"), Some("low"), Some("specific_people_link"), Some("view"), None),
        ("AddedToSecureLink", member("carol@contoso.com"), "ingested", Some("permission.internal_share_created"), Some("low"), Some("specific_people_link"), None, None),
        ("SharingSet", member("carol@contoso.com"), "ingested", Some("permission.internal_share_created"), Some("low"), Some("direct"), None, Some("carol@contoso.com")),
        ("SecureLinkUpdated", json!({}), "ingested", Some("permission.share_updated"), Some("low"), None, None, None),
        ("SecureLinkDeleted", json!({}), "ingested", Some("permission.share_removed"), Some("low"), None, None, None),
        ("RemovedFromSecureLink", member("carol@contoso.com"), "ingested", Some("permission.share_removed"), Some("low"), None, None, None),
        ("CompanyLinkCreated", json!({"EventData": "<Type>View</Type>"}), "ingested", Some("permission.org_link_created"), Some("low"), Some("organization_link"), Some("view"), None),
        ("CompanyLinkCreated", json!({"EventData": "<Type>Edit</Type>"}), "ingested", Some("permission.org_link_created"), Some("medium"), None, Some("edit"), None),
        ("CompanyLinkRemoved", json!({}), "ingested", Some("permission.org_link_removed"), Some("low"), None, None, None),
        // A link group's grant alone stands for its link, by the group's kind.
        ("SharingSet", json!({"TargetUserOrGroupName": "SharingLinks.4f2a.AnonymousView.77e1", "TargetUserOrGroupType": "SharePointGroup"}), "ingested", Some("permission.anonymous_link_created"), Some("high"), Some("anonymous_link"), Some("view"), None),
        ("SharingSet", json!({"TargetUserOrGroupName": "SharingLinks.4f2a.OrganizationEdit.77e1", "TargetUserOrGroupType": "SharePointGroup"}), "ingested", Some("permission.org_link_created"), Some("medium"), Some("organization_link"), Some("edit"), None),
        ("SharingSet", json!({"TargetUserOrGroupName": "SharingLinks.4f2a.Flexible.77e1", "TargetUserOrGroupType": "SharePointGroup"}), "ingested", Some("permission.specific_people_link_created"), Some("low"), Some("specific_people_link"), None, None),
        ("AddedToGroup", json!({"TargetUserOrGroupName": "Everyone except external users", "EventData": "<Group>Finance Members</Group>"}), "ingested", Some("permission.broad_access_granted"), Some("high"), Some("group_membership"), None, Some("Everyone except external users")),
        ("SharingSet", json!({"TargetUserOrGroupName": "Everyone", "TargetUserOrGroupType": "SecurityGroup"}), "ingested", Some("permission.broad_access_granted"), Some("high"), None, None, None),
        ("AddedToGroup", json!({"UserId": "SHAREPOINT\\system", "UserType": 4, "TargetUserOrGroupName": "All Users"}), "ignored", None, None, None, None, None),
        ("AddedToGroup", json!({"TargetUserOrGroupName": "carol@contoso.com", "EventData": "<Group>Finance Owners</Group>"}), "ingested", Some("permission.owner_added"), Some("medium"), None, None, None),
        ("AddedToGroup", json!({"TargetUserOrGroupName": "bob@fabrikam.com", "TargetUserOrGroupType": "Guest", "EventData": "<Group>Finance Owners</Group>"}), "ingested", Some("permission.owner_added"), Some("high"), None, None, None),
        ("AddedToGroup", json!({"TargetUserOrGroupName": "carol@contoso.com", "EventData": "<Group>Finance Members</Group>"}), "ingested", Some("permission.group_member_added"), Some("low"), None, None, None),
        ("RemovedFromGroup", json!({"TargetUserOrGroupName": "carol@contoso.com", "EventData": "<Group>Finance Members</Group>"}), "ingested", Some("permission.group_member_removed"), Some("low"), None, None, None),
        ("SiteCollectionAdminAdded", json!({"TargetUserOrGroupName": "carol@contoso.com"}), "ingested", Some("permission.site_admin_added"), Some("high"), Some("site_admin"), None, None),
        ("SiteCollectionAdminAdded", guest("bob@fabrikam.com"), "ingested", Some("permission.site_admin_added"), Some("critical"), None, None, None),
        ("SiteCollectionAdminRemoved", json!({"TargetUserOrGroupName": "carol@contoso.com"}), "ingested", Some("permission.site_admin_removed"), Some("medium"), None, None, None),
        ("PermissionLevelAdded", json!({}), "ingested", Some("permission.permission_level_changed"), Some("medium"), None, None, None),
        ("PermissionLevelModified", json!({}), "ingested", Some("permission.permission_level_changed"), Some("medium"), None, None, None),
        ("PermissionLevelRemoved", json!({}), "ingested", Some("permission.permission_level_changed"), Some("medium"), None, None, None),
        ("SharingInheritanceBroken", json!({}), "ingested", Some("permission.inheritance_broken"), Some("low"), None, None, None),
        ("PermissionLevelsInheritanceBroken", json!({}), "ingested", Some("permission.inheritance_broken"), Some("low"), None, None, None),
        ("SharingInheritanceReset", json!({}), "ingested", Some("permission.inheritance_restored"), Some("low"), None, None, None),
        ("SharingRevoked", member("carol@contoso.com"), "ingested", Some("permission.share_revoked"), Some("low"), None, None, None),
        ("AccessRequestCreated", json!({}), "ingested", Some("permission.access_requested"), Some("low"), None, None, None),
        ("AccessRequestAccepted", member("carol@contoso.com"), "ingested", Some("permission.access_request_approved"), Some("medium"), None, None, None),
        ("AccessRequestApproved", guest("bob@fabrikam.com"), "ingested", Some("permission.access_request_approved"), Some("high"), None, None, None),
        ("SharingPolicyChanged", policy("ExternalUserSharingOnly"), "ingested", Some("policy.sharing_policy_changed"), Some("high"), None, None, None),
        ("SharingPolicyChanged", policy("ExtranetWithShareByLink"), "ingested", Some("policy.sharing_policy_changed"), Some("critical"), None, None, None),
        ("WebMembersCanShareModified", json!({"EventData": "<Type>Edit</Type><MembersCanShareApplied>False</MembersCanShareApplied>"}), "ingested", Some("policy.members_can_share_changed"), Some("medium"), None, None, None),
        ("SiteCollectionQuotaModified", json!({}), "ingested", Some("storage.quota_changed"), Some("low"), None, None, None),
        ("MaxQuotaModified", json!({}), "ingested", Some("storage.quota_changed"), Some("low"), None, None, None),
        ("QuotaWarningEnabledModified", json!({}), "ingested", Some("storage.quota_changed"), Some("low"), None, None, None),
        ("GroupAdded", json!({}), "ignored", None, None, None, None, None),
        ("FileAccessed", json!({"RecordType": 6}), "ignored", None, None, None, None, None),
        // An admin (`UserType` 2, as a string) or an outsider acting: one level up.
        ("SecureLinkCreated", json!({"UserType": "2"}), "ingested", Some("permission.specific_people_link_created"), Some("medium"), None, None, None),
        ("SharingInheritanceReset", json!({"UserId": "bob_fabrikam.com#EXT#@contoso.onmicrosoft.com"}), "ingested", Some("permission.inheritance_restored"), Some("medium"), None, None, None),
    ]
}

/// The mapping, row by row, through the route.
mod mapping {
    use super::*;

    on_both_backends! {
        #[actix_web::test]
        async fn every_row_of_the_mapping_gives_its_event_and_severity_or_is_ignored() {
            let receiver = Receiver::start().await;
            let app = spawn_app().await;
            let channel = app.create_channel("SOC", &receiver.url("/")).await;
            app.route_everything_to(&[channel["id"].as_str().unwrap()]).await;
            app.post("/api/v1/tenants", json!({"id": "contoso", "display_name": "Contoso Ltd", "microsoft_tenant_id": CONTOSO_GUID})).await;
            let rows = mapping_rows();
            // Each its own action (no folding), with every quirk of real records in turn.
            let shapes = ["2026-11-28T15:36:08", "2026-11-28 15:36:08", "2026-11-28T15:36:08.1234567", "2026-11-28T15:36:08Z"];
            let records: Vec<Value> = rows
                .iter()
                .enumerate()
                .map(|(i, (operation, fields, ..))| {
                    let mut extra = json!({"CorrelationId": format!("c0ffee00-0000-0000-0000-{i:012}"), "CreationTime": shapes[i % shapes.len()],
                        "RecordType": if i % 2 == 0 { json!(14) } else { json!("14") }, "ClientIP": if i % 3 == 0 { "" } else { "203.0.113.7" },
                        "SomeFieldMicrosoftAddedLater": {"nested": [i]}});
                    extra.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
                    record(&format!("{i:08}-0000-0000-0000-000000000000"), operation, extra)
                })
                .collect();
            let answer = app.post("/api/v1/sources/o365/audit", json!(records)).await;
            assert_eq!(answer.status, 202, "{}", answer.body);
            let results = answer.body["results"].as_array().unwrap();
            assert_eq!(results.len(), rows.len());
            let mut wrong = Vec::new();
            for (i, ((operation, fields, outcome, event, severity, permission_type, access_level, principal), result)) in rows.iter().zip(results).enumerate() {
                let got = (result["outcome"].as_str(), result["event"].as_str(), result["severity"].as_str());
                if got != (Some(*outcome), *event, *severity) {
                    wrong.push(format!("row {i} {operation} {fields}: expected {outcome} {event:?} {severity:?}, got {result}"));
                    continue;
                }
                let Some(event_id) = result["event_id"].as_str() else { continue };
                let deliveries = app.get(&format!("/api/v1/deliveries?event_id={event_id}")).await;
                let delivery = deliveries.body["items"][0]["id"].as_str().expect("each event is delivered").to_string();
                let data = app.delivery(&delivery).await["payload"].clone();
                for (field, expected) in [("permission_type", permission_type), ("access_level", access_level), ("principal", principal)] {
                    if let Some(expected) = expected {
                        if data["data"][field] != *expected {
                            wrong.push(format!("row {i} {operation}: {field} is {}, expected {expected}", data["data"][field]));
                        }
                    }
                }
            }
            assert!(wrong.is_empty(), "{wrong:#?}");
        }
    }
}
