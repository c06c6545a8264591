//! One user action, one alert: the records of one action share a `CorrelationId` (or a
//! `UniqueSharingId`). When one of them creates a link, the side effects (the `SharingSet` to the
//! link's group and to system groups, the inheritance broken, the group added) fold into the
//! link's event; without a link record, the first `SharingSet` to a link group stands for the
//! link. What folds into what is decided here, for the records of one request, and against the
//! actions earlier requests made events of (records of one click often come in different content
//! blobs): a record of an action that already has its event, logged within [`FOLD_WINDOW_MS`] of
//! it, folds into that event.

use std::collections::HashMap;

use super::mapping::{Mapped, LINK_CREATED};
use super::record::AuditRecord;

/// How far apart (by their own `CreationTime`) the records of one action may be.
pub const FOLD_WINDOW_MS: i64 = 10_000;

/// What becomes of each record.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Ingested as its own event.
    Event(Mapped),
    /// Part of the action whose event is the record at this index.
    FoldedInto(usize),
    /// Part of an action an earlier request made this event of.
    FoldedIntoEvent(String),
    /// Not an alert.
    Ignored(String),
}

/// The key tying the records of one action together: the tenant and the `CorrelationId` (or
/// `UniqueSharingId`).
pub fn action_key(record: &AuditRecord) -> Option<String> {
    let id = record.correlation_id.as_deref().or(record.unique_sharing_id.as_deref())?;
    Some(format!("{}/{id}", record.organization_id))
}

/// Whether a mapped record is a side effect that may fold into its action's link event.
fn side_effect(record: &AuditRecord, mapped: &Mapped) -> bool {
    match mapped {
        Mapped::Event { foldable, .. } => *foldable,
        Mapped::Ignored(_) => record.operation == "GroupAdded",
    }
}

/// Whether a record stands for its action's event: it creates a link, or grants a link's group.
pub fn is_anchor(record: &AuditRecord, mapped: &Mapped) -> bool {
    (LINK_CREATED.contains(&record.operation.as_str()) && matches!(mapped, Mapped::Event { .. })) || is_link_group_grant(record, mapped)
}

/// Decides, for records already mapped one by one, which stand as events and which fold.
/// `earlier` holds the actions earlier requests made events of: `key → (event_id, occurred_at)`.
pub fn fold(records: &[(AuditRecord, Mapped)], earlier: &HashMap<String, (String, i64)>) -> Vec<Plan> {
    // The record that stands for each action: its link record, else its first link-group grant.
    let mut anchors: HashMap<String, usize> = HashMap::new();
    for (i, (record, mapped)) in records.iter().enumerate() {
        let Some(key) = action_key(record) else { continue };
        let creates_link = LINK_CREATED.contains(&record.operation.as_str()) && matches!(mapped, Mapped::Event { .. });
        match anchors.get(&key) {
            Some(&current) if creates_link && !LINK_CREATED.contains(&records[current].0.operation.as_str()) => {
                anchors.insert(key, i);
            }
            None if creates_link || is_link_group_grant(record, mapped) => {
                anchors.insert(key, i);
            }
            _ => {}
        }
    }
    records
        .iter()
        .enumerate()
        .map(|(i, (record, mapped))| {
            let before = action_key(record)
                .and_then(|key| earlier.get(&key))
                .filter(|(_, at)| (record.creation_time - at).abs() <= FOLD_WINDOW_MS)
                // The record whose event it is, seen again: a duplicate, not a fold.
                .filter(|(event_id, _)| *event_id != super::event_id_of(&record.id));
            if let Some((event_id, _)) = before {
                if side_effect(record, mapped) || is_anchor(record, mapped) {
                    return Plan::FoldedIntoEvent(event_id.clone());
                }
            }
            let anchor = action_key(record).and_then(|key| anchors.get(&key)).copied();
            // Within the window of the action's own record: a reused correlation id an hour later
            // is another action.
            let anchor = anchor.filter(|a| (record.creation_time - records[*a].0.creation_time).abs() <= FOLD_WINDOW_MS);
            match anchor {
                Some(anchor) if anchor != i && side_effect(record, mapped) => Plan::FoldedInto(anchor),
                _ => match mapped {
                    Mapped::Event { .. } => Plan::Event(mapped.clone()),
                    Mapped::Ignored(why) => Plan::Ignored(why.clone()),
                },
            }
        })
        .collect()
}

/// A `SharingSet` (or `AddedToGroup`) to a `SharingLinks.…` group: it stands for its link.
fn is_link_group_grant(record: &AuditRecord, mapped: &Mapped) -> bool {
    matches!(mapped, Mapped::Event { foldable: true, .. })
        && record.target.as_deref().is_some_and(|t| t.starts_with("SharingLinks."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::o365::mapping::map;
    use serde_json::{json, Value};

    fn record(id: &str, operation: &str, extra: Value) -> AuditRecord {
        let mut value = json!({"Id": id, "RecordType": "14", "CreationTime": "2026-11-28 15:36:08", "Operation": operation,
            "OrganizationId": "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd", "UserId": "alice@contoso.com", "UserType": 0,
            "SiteUrl": "https://contoso.sharepoint.com/sites/Finance", "SourceRelativeUrl": "Shared Documents", "SourceFileName": "Q3.xlsx",
            "CorrelationId": "9f3c0a1e-0000-4000-8000-00000000abcd"});
        value.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        AuditRecord::parse(&value).unwrap()
    }

    /// The six records one "anyone" link click writes, in the order they were logged.
    pub fn anyone_link_click() -> Vec<AuditRecord> {
        vec![
            record("r1", "SharingSet", json!({"TargetUserOrGroupName": "SharingLinks.4f2a.AnonymousEdit.77e1", "TargetUserOrGroupType": "SharePointGroup", "EventData": "<Permissions granted>Contribute</Permissions granted>"})),
            record("r2", "SharingSet", json!({"TargetUserOrGroupName": "Limited Access System Group", "TargetUserOrGroupType": "SharePointGroup", "EventData": "<Permissions granted>Limited Access</Permissions granted>"})),
            record("r3", "SharingSet", json!({"TargetUserOrGroupName": "SHAREPOINT\\\\a1b2c3d4e5", "TargetUserOrGroupType": "SecurityGroup"})),
            record("r4", "SharingInheritanceBroken", json!({})),
            record("r5", "GroupAdded", json!({"TargetUserOrGroupName": "SharingLinks.4f2a.AnonymousEdit.77e1"})),
            record("r6", "AnonymousLinkCreated", json!({"EventData": "<Type>Edit</Type>"})),
        ]
    }

    #[test]
    fn one_anyone_link_click_of_six_records_is_one_critical_alert() {
        let mapped: Vec<(AuditRecord, Mapped)> = anyone_link_click().into_iter().map(|r| { let m = map(&r); (r, m) }).collect();
        let plans = fold(&mapped, &HashMap::new());
        let events: Vec<usize> = plans.iter().enumerate().filter(|(_, p)| matches!(p, Plan::Event(_))).map(|(i, _)| i).collect();
        assert_eq!(events, vec![5], "{plans:#?}");
        assert!(matches!(&plans[5], Plan::Event(Mapped::Event { event: "permission.anonymous_link_created", severity: crate::domain::severity::Severity::Critical, .. })));
        for plan in &plans[..5] {
            assert_eq!(plan, &Plan::FoldedInto(5));
        }
    }

    #[test]
    fn a_link_group_grant_alone_stands_for_its_link_and_unrelated_records_stand_alone() {
        let mut click = anyone_link_click();
        click.pop();
        let mut other = record("x1", "SharingSet", json!({"TargetUserOrGroupName": "bob@fabrikam.com", "TargetUserOrGroupType": "Guest"}));
        other.correlation_id = Some("another-action".into());
        click.push(other);
        let mapped: Vec<(AuditRecord, Mapped)> = click.into_iter().map(|r| { let m = map(&r); (r, m) }).collect();
        let plans = fold(&mapped, &HashMap::new());
        assert!(matches!(&plans[0], Plan::Event(Mapped::Event { event: "permission.anonymous_link_created", .. })), "{plans:#?}");
        assert_eq!(&plans[1..5], &[Plan::FoldedInto(0), Plan::FoldedInto(0), Plan::FoldedInto(0), Plan::FoldedInto(0)]);
        assert!(matches!(&plans[5], Plan::Event(Mapped::Event { event: "permission.external_share_created", .. })));
    }

    #[test]
    fn records_of_an_action_an_earlier_request_made_an_event_of_fold_into_it_within_the_window() {
        let click = anyone_link_click();
        let (link, rest) = click.split_last().unwrap();
        let earlier = HashMap::from([(action_key(link).unwrap(), ("o365_r6".to_string(), link.creation_time))]);
        let mapped: Vec<(AuditRecord, Mapped)> = rest.iter().cloned().map(|r| { let m = map(&r); (r, m) }).collect();
        assert!(fold(&mapped, &earlier).iter().all(|p| p == &Plan::FoldedIntoEvent("o365_r6".into())));
        // A record of the same correlation id logged a minute later is an action of its own.
        let mut later = rest[0].clone();
        later.creation_time += 60_000;
        let plans = fold(&[(later.clone(), map(&later))], &earlier);
        assert!(matches!(&plans[0], Plan::Event(_)), "{plans:?}");
    }

    #[test]
    fn a_reused_correlation_id_an_hour_later_in_the_same_request_is_another_action() {
        let mut click = anyone_link_click();
        let link = click.pop().unwrap();
        let mut later = click[0].clone();
        later.id = "r7".into();
        later.creation_time = link.creation_time + 3_600_000;
        let records = vec![link.clone(), later];
        let mapped: Vec<(AuditRecord, Mapped)> = records.into_iter().map(|r| { let m = map(&r); (r, m) }).collect();
        let plans = fold(&mapped, &HashMap::new());
        assert!(matches!(&plans[1], Plan::Event(_)), "an hour apart: its own alert, {plans:?}");
        // The same correlation id in another tenant is another action too.
        let mut elsewhere = link.clone();
        elsewhere.organization_id = "another-tenant".into();
        assert_ne!(action_key(&elsewhere), action_key(&link));
    }
}
