//! The Office 365 Management Activity API as the router uses it (SPEC section 14): what a
//! notification or a content listing says (`ContentRef`), which content addresses the router
//! will fetch (only under `O365_API_ROOT`, for the tenant named), the catch-up listing's time
//! windows, and the fetch retry schedule. Pure: the requests themselves are the fetcher's.

use std::time::Duration;

use serde_json::Value;

use crate::domain::retry::RetrySchedule;
use chrono::{TimeZone, Utc};

use crate::domain::time::{parse_rfc3339, Millis};

use super::record::parse_creation_time;

/// The only content type the router fetches: SharePoint and OneDrive records.
pub const CONTENT_TYPE: &str = "Audit.SharePoint";

/// The resource the token is asked for (`scope` = this + `/.default`).
pub const RESOURCE: &str = "https://manage.office.com";

/// How far back the API keeps content, and so how far back a catch-up can list.
pub const KEPT_FOR_MS: Millis = 7 * 24 * 3_600_000;

/// The longest window one listing may ask for (the API refuses more than 24 hours).
pub const WINDOW_MS: Millis = 24 * 3_600_000;

/// How far before the end of the last listing the next one starts again: content can be listed
/// a while after it was created, and what was listed twice is fetched once anyway.
pub const LISTING_OVERLAP_MS: Millis = 3_600_000;

/// Largest content blob or listing page read, in bytes (a blob holds at most a few thousand
/// records, a few MB).
pub const MAX_BLOB_BYTES: usize = 32 * 1024 * 1024;

pub use crate::domain::content::ContentRef;

/// Reading and checking what a notification or a listing says of a blob.
impl ContentRef {
    /// Reads one item of a notification (which names its `tenantId`) or of a listing (whose
    /// tenant is the one listed: `tenant`). Times are read as leniently as audit records'.
    pub fn parse(item: &Value, tenant: Option<&str>) -> Result<Self, String> {
        let text = |name: &str| item.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
        let content_type = text("contentType").unwrap_or(CONTENT_TYPE);
        if !content_type.eq_ignore_ascii_case(CONTENT_TYPE) {
            return Err(format!("contentType {content_type} is not fetched; only {CONTENT_TYPE} holds SharePoint records"));
        }
        let content_id = text("contentId").ok_or("contentId is missing")?;
        if content_id.len() > 512 {
            return Err("contentId is longer than 512 characters".into());
        }
        let content_uri = text("contentUri").ok_or("contentUri is missing")?;
        let organization_id = text("tenantId").or(tenant).ok_or("tenantId is missing")?.to_lowercase();
        let time = |name: &str| -> Result<Millis, String> {
            let value = text(name).ok_or_else(|| format!("{name} is missing"))?;
            parse_rfc3339(value).or_else(|| parse_creation_time(value)).ok_or_else(|| format!("{name} `{value}` is not a time"))
        };
        let content_expiration = time("contentExpiration")?;
        let content_created = time("contentCreated").unwrap_or(content_expiration - KEPT_FOR_MS);
        Ok(Self {
            content_id: content_id.to_string(),
            organization_id,
            content_uri: content_uri.to_string(),
            content_created,
            content_expiration,
        })
    }

    /// The address the router fetches for this content, if it may. The content URI must be on
    /// the API root's scheme, host and port, with no user name or fragment, and its path must be
    /// exactly the root's path, the tenant's id (any case), `activity/feed/audit` and then
    /// content id segments of plain characters: letters, digits, `$`, `_`, `-`, `.` and `~`
    /// (what Microsoft's content ids are made of), never `.` or `..`. Nothing percent-encoded,
    /// no empty segment, no look-alike dots, no `;` parameters: so no spelling that some server
    /// on the way might decode or normalise differently (`%2e%2e`, `%252e`, `．．`, `..;`,
    /// `%u002e`, `//`, a backslash) can take the router's token out of the tenant's own feed.
    pub fn check_uri(&self, api_root: &str) -> Result<String, String> {
        let uri = self.content_uri.as_str();
        let refuse = |why: &str| Err(format!("contentUri {uri} is not fetched: {why}"));
        let feed = format!("{}/{}/activity/feed/audit/", api_root.trim_end_matches('/'), self.organization_id);
        let Ok(root) = url::Url::parse(api_root.trim_end_matches('/')) else {
            return refuse("O365_API_ROOT is not a URL");
        };
        if !uri.chars().all(|c| c.is_ascii_graphic()) || uri.contains(['\\', '%', ';']) {
            return refuse("it holds characters a content address never has (percent-encoding, a backslash, `;`, spaces or characters beyond ASCII)");
        }
        let Ok(parsed) = url::Url::parse(uri) else {
            return refuse("it is not a URL");
        };
        if parsed.scheme() != root.scheme() || parsed.host_str() != root.host_str() || parsed.port_or_known_default() != root.port_or_known_default() {
            return refuse(&format!("it is not on {} (O365_API_ROOT)", root.origin().ascii_serialization()));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() || parsed.fragment().is_some() {
            return refuse("it carries a user name or a fragment");
        }
        // What was written, segment by segment (the parser resolves dot segments: a path it
        // changed is refused, not followed).
        let written = uri.split(['?', '#']).next().unwrap_or_default();
        if parsed[..url::Position::AfterPath] != *written {
            return refuse("its path holds dot segments or another spelling of itself");
        }
        let path: Vec<&str> = parsed.path().split('/').skip(1).collect();
        let root_path: Vec<&str> = root.path().split('/').skip(1).filter(|s| !s.is_empty()).collect();
        let own = [self.organization_id.as_str(), "activity", "feed", "audit"];
        let fixed = root_path.len() + own.len();
        let content_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '$' | '_' | '-' | '.' | '~');
        let within = path.len() > fixed
            && path[..root_path.len()] == root_path[..]
            && path[root_path.len()].eq_ignore_ascii_case(own[0])
            && path[root_path.len() + 1..fixed] == own[1..]
            && path[fixed..].iter().all(|s| !s.is_empty() && *s != "." && *s != ".." && s.chars().all(content_char));
        if !within {
            return refuse(&format!("its path is not under {feed} (O365_API_ROOT and the tenant's own audit feed), or a content id holds other characters"));
        }
        Ok(parsed.into())
    }
}

/// The catch-up listing's windows from `from` to `to`, each at most 24 hours, oldest first.
/// Never starts before what the API still keeps.
pub fn windows(from: Millis, to: Millis) -> Vec<(Millis, Millis)> {
    let mut start = from.max(to - KEPT_FOR_MS + 60_000);
    let mut found = Vec::new();
    while start < to {
        let end = (start + WINDOW_MS).min(to);
        found.push((start, end));
        start = end;
    }
    found
}

/// The address of one listing window (`startTime`/`endTime` as the API wants them).
pub fn listing_url(api_root: &str, tenant: &str, (start, end): (Millis, Millis)) -> String {
    let at = |ms: Millis| Utc.timestamp_millis_opt(ms).single().unwrap_or_default().format("%Y-%m-%dT%H:%M:%S");
    format!(
        "{}/{tenant}/activity/feed/subscriptions/content?contentType={CONTENT_TYPE}&startTime={}&endTime={}",
        api_root.trim_end_matches('/'),
        at(start),
        at(end),
    )
}

/// How long before its expiration a blob gets its last try.
pub const LAST_TRY_BEFORE_MS: Millis = 60_000;

/// When a fetch that failed for the `attempts`-th time is tried again: on the retry schedule,
/// then at its last step, later if the API asked (`Retry-After`), and once more just before the
/// content expires; `None` when there is no time left for another try.
pub fn next_fetch(schedule: &RetrySchedule, attempts: u32, asked: Option<Duration>, now: Millis, expiration: Millis) -> Option<Millis> {
    let delay = schedule
        .delay_after(attempts)
        .or_else(|| schedule.delays().last().copied())
        .unwrap_or(Duration::from_secs(600))
        .max(asked.unwrap_or_default());
    let at = (now + delay.as_millis() as Millis).min(expiration - LAST_TRY_BEFORE_MS);
    (at > now).then_some(at)
}

/// A blob's records in slices of at most `max` for ingestion, the records of one action
/// (`CorrelationId`) kept in one slice so they fold into one event whatever their order in the
/// blob. Actions keep the order of their first record; an action of more than `max` records is
/// split.
pub fn slices(records: Vec<Value>, max: usize) -> Vec<Vec<Value>> {
    let max = max.max(1);
    let mut groups: Vec<Vec<Value>> = Vec::new();
    let mut by_action: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for record in records {
        let action = record.get("CorrelationId").and_then(Value::as_str).map(|c| c.trim().to_lowercase()).filter(|c| !c.is_empty());
        match action {
            Some(action) => {
                let at = *by_action.entry(action).or_insert_with(|| {
                    groups.push(Vec::new());
                    groups.len() - 1
                });
                groups[at].push(record);
            }
            None => groups.push(vec![record]),
        }
    }
    let mut found: Vec<Vec<Value>> = Vec::new();
    let mut slice: Vec<Value> = Vec::new();
    for group in groups {
        if !slice.is_empty() && slice.len() + group.len() > max {
            found.push(std::mem::take(&mut slice));
        }
        for record in group {
            if slice.len() == max {
                found.push(std::mem::take(&mut slice));
            }
            slice.push(record);
        }
    }
    if !slice.is_empty() {
        found.push(slice);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TENANT: &str = "f28ab78a-d401-4060-8012-736e373933eb";
    const ROOT: &str = "https://manage.office.com/api/v1.0";

    fn notification() -> Value {
        json!({
            "tenantId": "F28AB78A-D401-4060-8012-736E373933EB", "clientId": "c1", "contentType": "Audit.SharePoint",
            "contentId": "492638008028$492638008028$f28ab78ad40140608012736e373933ebspo2015043022$4a81a7c326fc4aed89c62e6039ab833b$04",
            "contentUri": format!("{ROOT}/{TENANT}/activity/feed/audit/492638008028$04"),
            "contentCreated": "2015-05-23T17:35:00.000Z", "contentExpiration": "2015-05-30T17:35:00.000Z"
        })
    }

    #[test]
    fn a_notification_names_its_blob_tenant_and_times() {
        let content = ContentRef::parse(&notification(), None).unwrap();
        assert_eq!(content.organization_id, TENANT);
        assert_eq!(content.content_created, parse_rfc3339("2015-05-23T17:35:00Z").unwrap());
        assert_eq!(content.content_expiration - content.content_created, 7 * 24 * 3_600_000);
        let uri = format!("{ROOT}/{TENANT}/activity/feed/audit/492638008028$04");
        assert_eq!(content.check_uri(ROOT), Ok(uri.clone()));
        assert_eq!(content.check_uri(&format!("{ROOT}/")), Ok(uri), "a trailing slash on the root is the same root");
    }

    #[test]
    fn only_sharepoint_content_under_the_api_root_in_the_tenants_own_feed_is_fetched() {
        let mut other = notification();
        other["contentType"] = json!("Audit.Exchange");
        assert!(ContentRef::parse(&other, None).unwrap_err().contains("Audit.Exchange"));
        for uri in [
            "https://attacker.example/api/v1.0/f28ab78a-d401-4060-8012-736e373933eb/activity/feed/audit/1".to_string(),
            format!("{ROOT}/00000000-0000-0000-0000-000000000000/activity/feed/audit/1"),
            format!("{ROOT}/{TENANT}/activity/feed/../../other/activity/feed/audit/1"),
            format!("{ROOT}/{TENANT}/activity/feed/"),
            format!("{ROOT}.attacker.example/{TENANT}/activity/feed/audit/1"),
            // Dot segments and slashes in every spelling the review tried, and some more.
            format!("{ROOT}/{TENANT}/activity/feed/%2e%2e/%2e%2e/%2e%2e/admin/other-tenant"),
            format!("{ROOT}/{TENANT}/activity/feed/%2E%2E/%2E%2E/00000000-0000-0000-0000-000000000000/activity/feed/audit/1"),
            format!("{ROOT}/{TENANT}/activity/feed/audit/.%2e/.%2e/.%2e/other/activity/feed/audit/1"),
            format!("{ROOT}/{TENANT}/activity/feed/audit/%2e%2e%2f%2e%2e%2fother"),
            format!("{ROOT}/{TENANT}/activity/feed/audit/..%5c..%5cother"),
            format!("{ROOT}/{TENANT}/activity/feed/audit\\..\\..\\other"),
            format!("{ROOT}/{TENANT}/activity/feed/audit/%2e"),
            format!("{ROOT}/{TENANT}/activity/feed/subscriptions/list"),
            format!("{ROOT}/{TENANT}/activity/feed/audit/"),
            format!("https://user@manage.office.com/api/v1.0/{TENANT}/activity/feed/audit/1"),
            format!("{ROOT}/{TENANT}/activity/feed/audit/1#x"),
            format!("http://manage.office.com/api/v1.0/{TENANT}/activity/feed/audit/1"),
            format!("https://manage.office.com:8443/api/v1.0/{TENANT}/activity/feed/audit/1"),
            format!("https://manage.office.com/api/v2.0/{TENANT}/activity/feed/audit/1"),
            "not a url".to_string(),
            // What a hostile review got through the first version of this check.
            format!("{ROOT}/{TENANT}/activity/feed/audit/%252e%252e/x"),
            format!("{ROOT}/{TENANT}/activity/feed/audit/%2525252e/x"),
            format!("https://manage.office.com/api/v1.0//{TENANT}/activity/feed/audit/x"),
            format!("{ROOT}/{TENANT}//activity/feed/audit/x"),
            format!("{ROOT}/{TENANT}/activity/feed/audit//x"),
            format!("https://manage.office.com/API/v1.0/{TENANT}/activity/feed/audit/x"),
            format!("{ROOT}/{TENANT}/Activity/Feed/Audit/x"),
            format!("{ROOT}/{TENANT}/activity/feed/audit/\u{FF0E}\u{FF0E}/x"),
            format!("{ROOT}/{TENANT}/activity/feed/audit/\u{2024}\u{2024}/x"),
            format!("{ROOT}/{TENANT}/activity/feed/audit/\u{2025}/x"),
            format!("{ROOT}/{TENANT}/activity/feed/audit/x\u{3002}\u{3002}/y"),
            format!("{ROOT}/{TENANT}/activity/feed/audit/%EF%BC%8E%EF%BC%8E/x"),
            format!("{ROOT}/{TENANT}/activity/feed/audit/..;/x"),
            format!("{ROOT}/{TENANT}/activity/feed/audit/%u002e%u002e/u5"),
            format!("{ROOT}/{TENANT}/activity/feed/audit/./x"),
            format!("{ROOT}/{TENANT}/activity/feed/audit/x y"),
        ] {
            let mut item = notification();
            item["contentUri"] = json!(uri);
            let content = ContentRef::parse(&item, None).unwrap();
            let refused = content.check_uri(ROOT);
            assert!(refused.as_ref().is_err_and(|why| why.contains("is not fetched")), "{uri} must not be fetched: {refused:?}");
        }
        // What a tenant's own feed may hold is fetched, case and query as given.
        for uri in [format!("{ROOT}/{}/activity/feed/audit/abc$def", TENANT.to_uppercase()), format!("{ROOT}/{TENANT}/activity/feed/audit/1?PublisherIdentifier=x")] {
            let mut item = notification();
            item["contentUri"] = json!(uri);
            assert!(ContentRef::parse(&item, None).unwrap().check_uri(ROOT).is_ok(), "{uri} is the tenant's own");
        }
    }

    #[test]
    fn a_listing_item_takes_the_listed_tenant_and_missing_fields_are_named() {
        let mut item = notification();
        item.as_object_mut().unwrap().remove("tenantId");
        assert_eq!(ContentRef::parse(&item, Some(TENANT)).unwrap().organization_id, TENANT);
        assert_eq!(ContentRef::parse(&item, None).unwrap_err(), "tenantId is missing");
        item.as_object_mut().unwrap().remove("contentUri");
        assert_eq!(ContentRef::parse(&item, Some(TENANT)).unwrap_err(), "contentUri is missing");
        let mut item = notification();
        item["contentExpiration"] = json!("soon");
        assert_eq!(ContentRef::parse(&item, None).unwrap_err(), "contentExpiration `soon` is not a time");
    }

    #[test]
    fn catch_up_lists_in_windows_of_at_most_a_day_and_never_beyond_seven_days() {
        let day = 24 * 3_600_000;
        let now = 100 * day;
        assert_eq!(windows(now - 3_600_000, now), vec![(now - 3_600_000, now)]);
        let long = windows(now - 30 * day, now);
        assert_eq!(long.len(), 7);
        assert!(long[0].0 > now - 7 * day, "the API keeps seven days");
        assert!(long.windows(2).all(|w| w[0].1 == w[1].0) && long.last().unwrap().1 == now);
        assert!(long.iter().all(|(s, e)| e - s <= day));
        assert!(windows(now, now).is_empty());
        let url = listing_url(ROOT, TENANT, (0, 3_600_000));
        assert_eq!(url, format!("{ROOT}/{TENANT}/activity/feed/subscriptions/content?contentType=Audit.SharePoint&startTime=1970-01-01T00:00:00&endTime=1970-01-01T01:00:00"));
    }

    #[test]
    fn a_blob_is_sliced_without_splitting_an_action() {
        let record = |i: usize, action: Option<&str>| json!({"Id": i, "CorrelationId": action});
        // Two filler records, then a click whose first record is already in the blob's start.
        let records = vec![record(0, Some("CLICK")), record(1, None), record(2, Some("x")), record(3, Some("click")), record(4, Some("click"))];
        let got = slices(records, 3);
        let ids: Vec<Vec<i64>> = got.iter().map(|s| s.iter().map(|r| r["Id"].as_i64().unwrap()).collect()).collect();
        assert_eq!(ids, vec![vec![0, 3, 4], vec![1, 2]], "the click's three records together, case-insensitively");
        let big: Vec<Value> = (0..7).map(|i| record(i, Some("one"))).collect();
        assert_eq!(slices(big, 3).iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1], "an action larger than a slice is split");
        assert!(slices(Vec::new(), 10).is_empty());
        let many: Vec<Value> = (0..2500).map(|i| record(i, None)).collect();
        assert_eq!(slices(many, 1000).iter().map(Vec::len).collect::<Vec<_>>(), [1000, 1000, 500]);
    }

    #[test]
    fn a_failed_fetch_follows_the_retry_schedule_then_its_last_step_until_the_content_expires() {
        let schedule = RetrySchedule::parse("30s,2m,10m").unwrap();
        assert_eq!(next_fetch(&schedule, 1, None, 0, i64::MAX), Some(30_000));
        assert_eq!(next_fetch(&schedule, 3, None, 0, i64::MAX), Some(600_000));
        assert_eq!(next_fetch(&schedule, 9, None, 0, i64::MAX), Some(600_000), "then every ten minutes");
        assert_eq!(next_fetch(&schedule, 1, Some(Duration::from_secs(90)), 0, i64::MAX), Some(90_000), "the API's Retry-After when longer");
        assert_eq!(next_fetch(&schedule, 9, None, 0, 300_000), Some(240_000), "a last try a minute before it expires");
        assert_eq!(next_fetch(&schedule, 9, None, 250_000, 300_000), None, "no time left");
    }
}
