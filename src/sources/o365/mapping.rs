//! From an audit record to a router event: `docs/o365-mapping.md` as data. [`TABLE`] holds
//! the rows that only look at the operation and whether the target is external; the rows that
//! read a group's name (sharing-link groups, broad groups, owners, default grants by SharePoint
//! itself) come first, in [`map`]. Then the severity is raised one level when the actor is an
//! admin or external. Folding the records of one action into one event is `fold`'s.

use serde_json::{json, Value};

use super::record::{AuditRecord, USER_TYPE_ADMIN};
use crate::domain::severity::Severity;

/// Which records a row takes, beyond the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    ExternalTarget,
    InternalTarget,
}

/// Where `access_level` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Not applicable: `none`.
    None,
    /// `<Type>` of `EventData` (`Edit`, `View`).
    LinkType,
    /// `<Permissions granted>` of `EventData`.
    Granted,
    /// The group: `<Group>` of `EventData`, or the target group's name.
    Group,
}

/// When the row's severity goes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raise {
    Never,
    /// To critical when the link can edit.
    ToCriticalWhenEdit,
    /// One level when the link can edit.
    WhenEdit,
    /// One level when the target is external.
    WhenExternal,
    /// To critical when the target is external.
    ToCriticalWhenExternal,
    /// To critical when the new sharing policy allows anyone links.
    ToCriticalWhenAnyone,
}

/// One row of the mapping.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub operations: &'static [&'static str],
    pub when: When,
    pub event: &'static str,
    pub severity: Severity,
    pub raise: Raise,
    pub permission_type: &'static str,
    pub access: Access,
}

use Severity::{Critical, High, Low, Medium};

const fn row(operations: &'static [&'static str], when: When, event: &'static str, severity: Severity, raise: Raise, permission_type: &'static str, access: Access) -> Row {
    Row { operations, when, event, severity, raise, permission_type, access }
}

/// The mapping table (operations with a group to read are in [`map`]).
pub const TABLE: &[Row] = &[
    row(&["AnonymousLinkCreated"], When::Always, "permission.anonymous_link_created", High, Raise::ToCriticalWhenEdit, "anonymous_link", Access::LinkType),
    row(&["AnonymousLinkUpdated"], When::Always, "permission.anonymous_link_updated", Medium, Raise::Never, "anonymous_link", Access::LinkType),
    row(&["AnonymousLinkUsed"], When::Always, "permission.anonymous_link_used", Medium, Raise::Never, "anonymous_link", Access::LinkType),
    row(&["AnonymousLinkRemoved"], When::Always, "permission.anonymous_link_removed", Low, Raise::Never, "anonymous_link", Access::None),
    row(&["SharingInvitationCreated"], When::ExternalTarget, "permission.external_share_created", High, Raise::Never, "invitation", Access::LinkType),
    row(&["AddedToSecureLink"], When::ExternalTarget, "permission.external_share_created", High, Raise::Never, "specific_people_link", Access::LinkType),
    row(&["SharingSet"], When::ExternalTarget, "permission.external_share_created", High, Raise::Never, "direct", Access::Granted),
    row(&["SharingInvitationAccepted"], When::Always, "permission.external_share_accepted", Medium, Raise::Never, "invitation", Access::None),
    row(&["SharingInvitationBlocked"], When::Always, "permission.external_share_blocked", Low, Raise::Never, "invitation", Access::None),
    row(&["SharingInvitationRevoked"], When::Always, "permission.external_share_revoked", Low, Raise::Never, "invitation", Access::None),
    row(&["SharingInvitationUpdated"], When::Always, "permission.external_share_updated", Low, Raise::Never, "invitation", Access::LinkType),
    row(&["SecureLinkCreated"], When::Always, "permission.specific_people_link_created", Low, Raise::Never, "specific_people_link", Access::LinkType),
    row(&["AddedToSecureLink"], When::InternalTarget, "permission.internal_share_created", Low, Raise::Never, "specific_people_link", Access::LinkType),
    row(&["SharingSet"], When::InternalTarget, "permission.internal_share_created", Low, Raise::Never, "direct", Access::Granted),
    row(&["SecureLinkUpdated"], When::Always, "permission.share_updated", Low, Raise::Never, "specific_people_link", Access::LinkType),
    row(&["SecureLinkDeleted", "RemovedFromSecureLink"], When::Always, "permission.share_removed", Low, Raise::Never, "specific_people_link", Access::None),
    row(&["CompanyLinkCreated"], When::Always, "permission.org_link_created", Low, Raise::WhenEdit, "organization_link", Access::LinkType),
    row(&["CompanyLinkRemoved"], When::Always, "permission.org_link_removed", Low, Raise::Never, "organization_link", Access::None),
    row(&["SiteCollectionAdminAdded"], When::Always, "permission.site_admin_added", High, Raise::ToCriticalWhenExternal, "site_admin", Access::None),
    row(&["SiteCollectionAdminRemoved"], When::Always, "permission.site_admin_removed", Medium, Raise::Never, "site_admin", Access::None),
    row(&["PermissionLevelAdded", "PermissionLevelModified", "PermissionLevelRemoved"], When::Always, "permission.permission_level_changed", Medium, Raise::Never, "permission_level", Access::None),
    row(&["SharingInheritanceBroken", "PermissionLevelsInheritanceBroken"], When::Always, "permission.inheritance_broken", Low, Raise::Never, "inheritance", Access::None),
    row(&["SharingInheritanceReset"], When::Always, "permission.inheritance_restored", Low, Raise::Never, "inheritance", Access::None),
    row(&["SharingRevoked"], When::Always, "permission.share_revoked", Low, Raise::Never, "direct", Access::None),
    row(&["AccessRequestCreated"], When::Always, "permission.access_requested", Low, Raise::Never, "access_request", Access::None),
    row(&["AccessRequestAccepted", "AccessRequestApproved"], When::Always, "permission.access_request_approved", Medium, Raise::WhenExternal, "access_request", Access::Granted),
    row(&["SharingPolicyChanged"], When::Always, "policy.sharing_policy_changed", High, Raise::ToCriticalWhenAnyone, "sharing_policy", Access::None),
    row(&["WebMembersCanShareModified"], When::Always, "policy.members_can_share_changed", Medium, Raise::Never, "sharing_policy", Access::None),
    row(&["SiteCollectionQuotaModified", "MaxQuotaModified", "QuotaWarningEnabledModified"], When::Always, "storage.quota_changed", Low, Raise::Never, "quota", Access::None),
];

/// Operations that create a link: the records of the same action fold into theirs.
pub const LINK_CREATED: &[&str] = &["AnonymousLinkCreated", "CompanyLinkCreated", "SecureLinkCreated"];

/// Groups that give a whole organisation access.
const BROAD_GROUPS: &[&str] = &["everyone", "everyone except external users", "all users"];

/// What a record is, before folding.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// An event of section 4. `foldable`: the record is a side effect of a link action (a
    /// `SharingSet` to a link group or a system group, inheritance broken, a group added) and
    /// folds into the link event of the same action when there is one.
    Event { event: &'static str, severity: Severity, data: Value, foldable: bool },
    /// Not an alert; why, for the per-record outcome.
    Ignored(String),
}

/// The kind of a sharing-link group `SharingLinks.<item>.<Kind>.<id>`.
fn link_kind(group: &str) -> Option<&str> {
    let rest = group.strip_prefix("SharingLinks.")?;
    let mut parts = rest.split('.');
    parts.next()?;
    parts.next()
}

/// The normalised access level of a permission or link type.
fn access_level(text: &str) -> String {
    match text.trim().to_lowercase().as_str() {
        "view" | "read" | "restricted view" | "anonymousview" | "organizationview" => "view".into(),
        "edit" | "anonymousedit" | "organizationedit" => "edit".into(),
        "contribute" => "contribute".into(),
        "full control" | "fullcontrol" | "full_control" => "full_control".into(),
        "limited access" | "limited" => "limited".into(),
        other => other.to_string(),
    }
}

/// The path below the site: `SourceRelativeUrl` (with `SourceFileName` when that is only the
/// folder), else `ObjectId` minus `SiteUrl`.
fn resource_path(record: &AuditRecord) -> String {
    if let Some(relative) = &record.source_relative_url {
        return match &record.source_file_name {
            Some(file) if !relative.ends_with(file.as_str()) => format!("{}/{file}", relative.trim_end_matches('/')),
            _ => relative.clone(),
        };
    }
    match (&record.object_id, &record.site_url) {
        (Some(object), Some(site)) => object.strip_prefix(site.as_str()).unwrap_or(object).trim_start_matches('/').to_string(),
        (Some(object), None) => object.clone(),
        _ => String::new(),
    }
}

fn or_none(value: String) -> String {
    if value.trim().is_empty() {
        "none".into()
    } else {
        value
    }
}

/// The event's `data` for a record, with the permission type, access level and principal chosen.
fn data(record: &AuditRecord, permission_type: &str, access: String, principal: String) -> Value {
    json!({
        "site_url": record.site_url.clone().or_else(|| record.object_id.clone()).unwrap_or_else(|| "none".into()),
        "resource_path": or_none(resource_path(record)),
        "permission_type": permission_type,
        "principal": or_none(principal),
        "access_level": or_none(access),
        "actor": record.user_id,
        "source": {
            "audit_record_id": record.id,
            "operation": record.operation,
            "record_type": record.record_type,
            "workload": record.workload,
            "correlation_id": record.correlation_id,
            "unique_sharing_id": record.unique_sharing_id,
            "client_ip": record.client_ip,
            "user_type": record.user_type,
        },
    })
}

fn raise(severity: Severity) -> Severity {
    match severity {
        Low => Medium,
        Medium => High,
        High | Critical => Critical,
    }
}

/// Maps one record (folding is decided afterwards, across the records of a request).
pub fn map(record: &AuditRecord) -> Mapped {
    let op = record.operation.as_str();
    let target = record.target.clone().unwrap_or_default();
    let group = record.event_data.group.clone().unwrap_or_else(|| target.clone());
    let mapped = if matches!(op, "SharingSet" | "AddedToGroup") && link_kind(&target).is_some() {
        // The sharing link's own group: the link event (folded into the link record when there is one).
        let kind = link_kind(&target).unwrap_or_default();
        let (event, severity, permission_type) = match kind {
            "AnonymousEdit" => ("permission.anonymous_link_created", Critical, "anonymous_link"),
            "AnonymousView" => ("permission.anonymous_link_created", High, "anonymous_link"),
            "OrganizationEdit" => ("permission.org_link_created", Medium, "organization_link"),
            "OrganizationView" => ("permission.org_link_created", Low, "organization_link"),
            _ => ("permission.specific_people_link_created", Low, "specific_people_link"),
        };
        let principal = if permission_type == "anonymous_link" { "Anyone with the link".to_string() } else { target.clone() };
        Mapped::Event { event, severity, data: data(record, permission_type, access_level(kind), principal), foldable: true }
    } else if matches!(op, "AddedToGroup" | "SharingSet") && (BROAD_GROUPS.contains(&target.to_lowercase().as_str()) || BROAD_GROUPS.contains(&group.to_lowercase().as_str())) {
        if record.by_system() {
            return Mapped::Ignored(format!("a default grant to `{target}` by SharePoint itself"));
        }
        Mapped::Event { event: "permission.broad_access_granted", severity: High, data: data(record, "group_membership", access_level(&group), target.clone()), foldable: false }
    } else if op == "AddedToGroup" {
        let external = record.target_is_external();
        // Site provisioning by SharePoint itself fills the default groups with insiders; an app
        // acting as `app@sharepoint` adding an outsider is still an alert.
        if record.by_system() && !external {
            return Mapped::Ignored(format!("a default group membership set by SharePoint itself ({group})"));
        }
        let (event, severity, foldable) = if group.ends_with(" Owners") {
            ("permission.owner_added", if external { High } else { Medium }, false)
        } else if external {
            ("permission.external_user_added_to_group", High, false)
        } else {
            ("permission.group_member_added", Low, true)
        };
        Mapped::Event { event, severity, data: data(record, "group_membership", group.clone(), target.clone()), foldable }
    } else if op == "RemovedFromGroup" {
        Mapped::Event { event: "permission.group_member_removed", severity: Low, data: data(record, "group_membership", group.clone(), target.clone()), foldable: false }
    } else if op == "GroupAdded" {
        Mapped::Ignored("a group created as part of a sharing action".into())
    } else {
        let external = record.target_is_external();
        let Some(row) = TABLE.iter().find(|row| {
            row.operations.contains(&op)
                && match row.when {
                    When::Always => true,
                    When::ExternalTarget => external,
                    When::InternalTarget => !external,
                }
        }) else {
            return Mapped::Ignored(format!("`{op}` is not a permission change the router alerts on"));
        };
        let link_type = record.event_data.kind.clone().unwrap_or_default();
        let access = match row.access {
            Access::None => String::new(),
            Access::LinkType => access_level(&link_type),
            Access::Granted => access_level(record.event_data.permissions_granted.as_deref().or(record.event_data.kind.as_deref()).unwrap_or_default()),
            Access::Group => group.clone(),
        };
        let edit = access == "edit";
        let new_policy_allows_anyone = record.modified.iter().any(|(_, new, _)| new.contains("ExtranetWithShareByLink"));
        let severity = match row.raise {
            Raise::ToCriticalWhenEdit if edit => Critical,
            Raise::WhenEdit if edit => raise(row.severity),
            Raise::WhenExternal if external => raise(row.severity),
            Raise::ToCriticalWhenExternal if external => Critical,
            Raise::ToCriticalWhenAnyone if new_policy_allows_anyone => Critical,
            _ => row.severity,
        };
        let principal = match op {
            "AnonymousLinkUsed" => record.client_ip.clone().unwrap_or_else(|| "unknown address".into()),
            _ if row.permission_type == "anonymous_link" => "Anyone with the link".into(),
            _ => target.clone(),
        };
        let foldable = matches!(op, "SharingSet" | "SharingInheritanceBroken" | "PermissionLevelsInheritanceBroken") && !external;
        Mapped::Event { event: row.event, severity, data: data(record, row.permission_type, access, principal), foldable }
    };
    // An admin or an outsider doing it makes it one level more serious.
    match mapped {
        Mapped::Event { event, severity, data, foldable } if record.user_type == Some(USER_TYPE_ADMIN) || record.actor_is_external() => {
            Mapped::Event { event, severity: raise(severity), data, foldable }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(operation: &str, extra: Value) -> AuditRecord {
        let mut value = json!({"Id": "11111111-2222-3333-4444-555555555555", "RecordType": 14, "CreationTime": "2026-11-28T15:36:08",
            "Operation": operation, "OrganizationId": "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd", "UserId": "alice@contoso.com", "UserType": 0,
            "Workload": "SharePoint", "SiteUrl": "https://contoso.sharepoint.com/sites/Finance/",
            "ObjectId": "https://contoso.sharepoint.com/sites/Finance/Shared Documents/Q3.xlsx",
            "SourceRelativeUrl": "Shared Documents", "SourceFileName": "Q3.xlsx", "CorrelationId": "c0ffee00-0000-0000-0000-000000000001"});
        value.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        AuditRecord::parse(&value).unwrap()
    }

    fn event_of(mapped: Mapped) -> (&'static str, Severity, Value) {
        match mapped {
            Mapped::Event { event, severity, data, .. } => (event, severity, data),
            Mapped::Ignored(why) => panic!("ignored: {why}"),
        }
    }

    #[test]
    fn an_anyone_link_that_can_edit_is_critical_with_the_path_and_no_principal_name() {
        let (event, severity, data) = event_of(map(&record("AnonymousLinkCreated", json!({"EventData": "<Type>Edit</Type>"}))));
        assert_eq!((event, severity), ("permission.anonymous_link_created", Critical));
        assert_eq!(data["resource_path"], "Shared Documents/Q3.xlsx");
        assert_eq!(data["principal"], "Anyone with the link");
        assert_eq!(data["access_level"], "edit");
        assert_eq!(data["source"]["operation"], "AnonymousLinkCreated");
        let (_, severity, data) = event_of(map(&record("AnonymousLinkCreated", json!({"EventData": "<Type>View</Type>"}))));
        assert_eq!((severity, data["access_level"].as_str()), (High, Some("view")));
    }

    #[test]
    fn sharing_with_an_outsider_is_high_and_with_a_colleague_low() {
        let outside = record("SharingSet", json!({"TargetUserOrGroupName": "bob@fabrikam.com", "TargetUserOrGroupType": "Guest", "EventData": "<Permissions granted>Contribute</Permissions granted>"}));
        let (event, severity, data) = event_of(map(&outside));
        assert_eq!((event, severity), ("permission.external_share_created", High));
        assert_eq!((data["permission_type"].as_str(), data["access_level"].as_str()), (Some("direct"), Some("contribute")));
        let inside = record("SharingSet", json!({"TargetUserOrGroupName": "carol@contoso.com", "TargetUserOrGroupType": "Member"}));
        assert_eq!(event_of(map(&inside)).0, "permission.internal_share_created");
        // By an admin: one level up.
        let by_admin = record("SharingSet", json!({"UserType": "2", "TargetUserOrGroupName": "bob@fabrikam.com", "TargetUserOrGroupType": "Guest"}));
        assert_eq!(event_of(map(&by_admin)).1, Critical);
    }

    #[test]
    fn groups_are_read_by_name() {
        let link = record("SharingSet", json!({"TargetUserOrGroupName": "SharingLinks.0f1e.AnonymousEdit.9a8b", "TargetUserOrGroupType": "SharePointGroup"}));
        assert!(matches!(map(&link), Mapped::Event { event: "permission.anonymous_link_created", severity: Critical, foldable: true, .. }));
        let everyone = record("AddedToGroup", json!({"TargetUserOrGroupName": "Everyone except external users", "EventData": "<Group>Finance Members</Group>"}));
        assert_eq!(event_of(map(&everyone)).0, "permission.broad_access_granted");
        let by_system = record("AddedToGroup", json!({"UserId": "app@sharepoint", "TargetUserOrGroupName": "Everyone except external users"}));
        assert!(matches!(map(&by_system), Mapped::Ignored(_)));
        let provisioning = record("AddedToGroup", json!({"UserId": "app@sharepoint", "TargetUserOrGroupName": "alice@contoso.com", "EventData": "<Group>Finance Owners</Group>"}));
        assert!(matches!(map(&provisioning), Mapped::Ignored(_)));
        let app_adds_outsider = record("AddedToGroup", json!({"UserId": "app@sharepoint", "TargetUserOrGroupName": "mallory@evil.example", "TargetUserOrGroupType": "Guest", "EventData": "<Group>Finance Owners</Group>"}));
        let (event, severity, _) = event_of(map(&app_adds_outsider));
        assert_eq!((event, severity), ("permission.owner_added", High));
        let owner = record("AddedToGroup", json!({"TargetUserOrGroupName": "bob@fabrikam.com", "EventData": "<Group>Finance Owners</Group>"}));
        let (event, severity, _) = event_of(map(&owner));
        assert_eq!((event, severity), ("permission.owner_added", High));
        let unknown = record("FileAccessed", json!({}));
        assert!(matches!(map(&unknown), Mapped::Ignored(why) if why.contains("FileAccessed")));
    }

    #[test]
    fn every_row_of_the_table_maps_to_a_permission_policy_or_storage_event() {
        for row in TABLE {
            assert!(["permission.", "policy.", "storage."].iter().any(|p| row.event.starts_with(p)), "{}", row.event);
            for op in row.operations {
                let target = if row.when == When::ExternalTarget { "bob@fabrikam.com" } else { "carol@contoso.com" };
                let mapped = map(&record(op, json!({"TargetUserOrGroupName": target})));
                assert!(matches!(mapped, Mapped::Event { .. }), "{op}: {mapped:?}");
            }
        }
    }
}
