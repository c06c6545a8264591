//! One Office 365 Management Activity API audit record (`Audit.SharePoint`), read leniently:
//! real records carry `RecordType` and `UserType` as integers or strings, `CreationTime` without a
//! zone and sometimes with a space for the `T`, an `EventData` that looks like XML but is not
//! well-formed, empty `ClientIP`s and fields nobody documented (ignored). Only a record without
//! `Id`, `Operation`, `OrganizationId` or a readable `CreationTime` is refused.

use chrono::{NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

use crate::domain::time::{parse_rfc3339, Millis};

/// `UserType` of an administrator.
pub const USER_TYPE_ADMIN: i64 = 2;

/// The follow-up details of `EventData`, read tag by tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventData {
    /// `<Type>Edit</Type>`: what a link allows.
    pub kind: Option<String>,
    /// `<Permissions granted>Contribute</Permissions granted>`.
    pub permissions_granted: Option<String>,
    /// `<Group>Site Members</Group>`.
    pub group: Option<String>,
}

impl EventData {
    /// Reads the tags people care about from `EventData`, well-formed or not.
    pub fn parse(text: &str) -> Self {
        Self { kind: tag(text, "Type"), permissions_granted: tag(text, "Permissions granted"), group: tag(text, "Group") }
    }
}

/// The text after `<name>` up to the next `<` (the closing tag, or whatever comes next).
fn tag(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let rest = &text[start..];
    let value = rest[..rest.find('<').unwrap_or(rest.len())].trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// The fields of a record the mapping reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// `Id`, lowercase.
    pub id: String,
    pub record_type: Option<i64>,
    /// `CreationTime`, as UTC.
    pub creation_time: Millis,
    pub operation: String,
    /// `OrganizationId`, lowercase.
    pub organization_id: String,
    pub user_id: String,
    pub user_type: Option<i64>,
    pub workload: Option<String>,
    pub object_id: Option<String>,
    pub site_url: Option<String>,
    pub source_relative_url: Option<String>,
    pub source_file_name: Option<String>,
    /// `TargetUserOrGroupName`.
    pub target: Option<String>,
    /// `TargetUserOrGroupType`: `Member`, `Guest`, `SharePointGroup`, `SecurityGroup`, `Partner`.
    pub target_type: Option<String>,
    pub event_data: EventData,
    pub correlation_id: Option<String>,
    pub unique_sharing_id: Option<String>,
    pub client_ip: Option<String>,
    /// `ModifiedProperties`: `(Name, NewValue, OldValue)`.
    pub modified: Vec<(String, String, String)>,
}

/// A non-empty string field (numbers are taken as their text).
fn text(record: &Value, name: &str) -> Option<String> {
    match &record[name] {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An integer field written as a number or as a string of digits.
fn integer(record: &Value, name: &str) -> Option<i64> {
    match &record[name] {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `CreationTime` in any of the shapes seen: RFC 3339, or UTC without a zone, with `T` or a space,
/// with or without fractions of a second.
pub fn parse_creation_time(value: &str) -> Option<Millis> {
    let value = value.trim();
    if let Some(ms) = parse_rfc3339(value).or_else(|| parse_rfc3339(&value.replacen(' ', "T", 1))) {
        return Some(ms);
    }
    let normalised = value.replacen(' ', "T", 1);
    let normalised = normalised.trim_end_matches('Z');
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(normalised, format).ok())
        .map(|at| Utc.from_utc_datetime(&at).timestamp_millis())
}

impl AuditRecord {
    /// Reads a record; `Err` says what makes it unusable.
    pub fn parse(record: &Value) -> Result<Self, String> {
        if !record.is_object() {
            return Err("a record must be a JSON object".into());
        }
        let required = |name: &str| text(record, name).ok_or_else(|| format!("`{name}` is missing or empty"));
        let id = required("Id")?.to_lowercase();
        let operation = required("Operation")?;
        let organization_id = required("OrganizationId")?.to_lowercase();
        let created = required("CreationTime")?;
        let creation_time = parse_creation_time(&created).ok_or_else(|| format!("`CreationTime` `{}` is not a time", crate::domain::tenant::clip(&created)))?;
        let event_data = match &record["EventData"] {
            Value::String(s) => EventData::parse(s),
            _ => EventData::default(),
        };
        let modified = record["ModifiedProperties"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|p| Some((text(p, "Name")?, text(p, "NewValue").unwrap_or_default(), text(p, "OldValue").unwrap_or_default())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            id,
            record_type: integer(record, "RecordType"),
            creation_time,
            operation,
            organization_id,
            user_id: text(record, "UserId").unwrap_or_default(),
            user_type: integer(record, "UserType"),
            workload: text(record, "Workload"),
            object_id: text(record, "ObjectId"),
            site_url: text(record, "SiteUrl"),
            source_relative_url: text(record, "SourceRelativeUrl"),
            source_file_name: text(record, "SourceFileName"),
            target: text(record, "TargetUserOrGroupName"),
            target_type: text(record, "TargetUserOrGroupType"),
            event_data,
            correlation_id: text(record, "CorrelationId").map(|s| s.to_lowercase()),
            unique_sharing_id: text(record, "UniqueSharingId").map(|s| s.to_lowercase()),
            client_ip: text(record, "ClientIP"),
            modified,
        })
    }

    /// `app@sharepoint`, `SHAREPOINT\system` and the like: SharePoint acting on its own.
    pub fn by_system(&self) -> bool {
        let user = self.user_id.to_lowercase();
        user == "app@sharepoint" || user == "sharepoint\\system" || user.ends_with("\\system") || self.user_type == Some(4)
    }

    /// The actor's domain, from `UserId`.
    fn actor_domain(&self) -> Option<String> {
        self.user_id.rsplit_once('@').map(|(_, d)| d.to_lowercase())
    }

    /// Whether the target is outside the organisation: a `Guest`, a `#EXT#` UPN, or an address in
    /// another domain than the actor's.
    pub fn target_is_external(&self) -> bool {
        if self.target_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("guest")) {
            return true;
        }
        let Some(target) = self.target.as_deref() else { return false };
        if target.to_uppercase().contains("#EXT#") {
            return true;
        }
        // SharePoint's own accounts (`app@sharepoint`) have no organisation domain to compare.
        match (target.rsplit_once('@'), self.actor_domain().filter(|_| !self.by_system())) {
            (Some((_, domain)), Some(actor)) if !target.contains(' ') => !domain.eq_ignore_ascii_case(&actor),
            _ => false,
        }
    }

    /// Whether the actor is outside the organisation (a `#EXT#` UPN).
    pub fn actor_is_external(&self) -> bool {
        self.user_id.to_uppercase().contains("#EXT#")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn creation_times_in_every_shape_read_as_utc() {
        let expected = parse_rfc3339("2020-02-14T18:25:45Z");
        for shape in ["2020-02-14T18:25:45", "2020-02-14 18:25:45", "2020-02-14T18:25:45Z", "2020-02-14T18:25:45.000", "2020-02-14T19:25:45+01:00"] {
            assert_eq!(parse_creation_time(shape), expected, "{shape}");
        }
        assert_eq!(parse_creation_time("yesterday"), None);
    }

    #[test]
    fn event_data_is_read_even_when_it_is_not_xml() {
        let data = EventData::parse("<Type>Edit</Type><MembersCanShareApplied>False</MembersCanShareApplied>");
        assert_eq!(data.kind.as_deref(), Some("Edit"));
        assert_eq!(EventData::parse("<Permissions granted>Contribute</Permissions granted>").permissions_granted.as_deref(), Some("Contribute"));
        assert_eq!(EventData::parse("<Group>Site Members</Group>").group.as_deref(), Some("Site Members"));
        assert_eq!(EventData::parse("<Type>Edit").kind.as_deref(), Some("Edit"), "no closing tag");
        assert_eq!(EventData::parse("garbage"), EventData::default());
    }

    #[test]
    fn numbers_as_strings_and_missing_fields_are_tolerated() {
        let record = AuditRecord::parse(&json!({"Id": "ABC-1", "RecordType": "14", "UserType": "2", "CreationTime": "2020-02-14 18:25:45",
            "Operation": "SharingSet", "OrganizationId": "B86AB9D4-FCF1-4B11-8A06-7A8F91B47FBD", "ClientIP": "", "Unknown": {"x": 1}})).unwrap();
        assert_eq!((record.id.as_str(), record.record_type, record.user_type), ("abc-1", Some(14), Some(2)));
        assert_eq!(record.organization_id, "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd");
        assert_eq!(record.client_ip, None);
        assert!(AuditRecord::parse(&json!({"Id": "x", "Operation": "SharingSet", "OrganizationId": "o", "CreationTime": "soon"})).unwrap_err().contains("CreationTime"));
        assert!(AuditRecord::parse(&json!(["not", "a", "record"])).is_err());
    }

    #[test]
    fn external_targets_are_guests_ext_upns_or_other_domains() {
        let with = |target: &str, kind: &str| {
            AuditRecord::parse(&json!({"Id": "1", "Operation": "SharingSet", "OrganizationId": "o", "CreationTime": "2020-02-14T18:25:45",
                "UserId": "alice@contoso.com", "TargetUserOrGroupName": target, "TargetUserOrGroupType": kind})).unwrap()
        };
        assert!(with("bob@fabrikam.com", "Member").target_is_external());
        assert!(with("bob_fabrikam.com#EXT#@contoso.onmicrosoft.com", "Member").target_is_external());
        assert!(with("Bob", "Guest").target_is_external());
        assert!(!with("carol@contoso.com", "Member").target_is_external());
        assert!(!with("Site Members", "SharePointGroup").target_is_external());
    }
}
