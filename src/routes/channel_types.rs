//! `GET /api/v1/channel-types`: every channel type the router knows, with what its form asks for
//! (SPEC section 12). Read from the types themselves (`crate::channels::REGISTRY` and what was
//! registered at run time), so the admin page's forms and the API cannot disagree.

use actix_web::HttpResponse;
use serde::Serialize;

use super::ApiResult;
use crate::channels::{ChannelKind, Setting};

/// One channel type.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChannelTypeView {
    /// The channel's `type` in the API.
    #[serde(rename = "type")]
    kind: &'static str,
    label: &'static str,
    help: &'static str,
    /// The channel's URL: what the API calls it (`endpoint` for Sentinel) and whether it is a
    /// credential (shown masked).
    url: UrlView,
    /// Requests carry the Standard Webhooks signature; the channel has a secret to rotate.
    signed: bool,
    /// The admin page's form offers custom headers (the API takes them for every type).
    headers_in_form: bool,
    /// The rate limit a new channel gets when none is given; `null`: none.
    rate_limit_per_second: Option<u32>,
    /// A ticketing system (SPEC section 17): Test checks the credentials and the project,
    /// table, board or queue, creating nothing; `{"create":true}` opens a test ticket.
    tickets: bool,
    /// The type's own settings, beside `url`, `headers` and `rate_limit_per_second`.
    settings: Vec<SettingView>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ChannelTypeUrl)]
struct UrlView {
    field: &'static str,
    label: &'static str,
    placeholder: &'static str,
    secret: bool,
    /// What a new channel's URL is when none is given; `null`: it must be given.
    default: Option<&'static str>,
    /// The address is a server's host name (or IP address), not a URL: email's SMTP `host`.
    host: bool,
}

/// One setting of a type.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ChannelTypeSetting)]
struct SettingView {
    name: &'static str,
    label: &'static str,
    help: &'static str,
    placeholder: &'static str,
    /// `text` or `number`.
    #[serde(rename = "type")]
    kind: &'static str,
    required: bool,
    /// Write-only: reads show `••••` and its last four characters; the masked form sent back
    /// keeps it.
    secret: bool,
    /// Changing it sends the credentials elsewhere, so they must be sent again with it.
    moves_credentials: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ChannelTypeList)]
struct ChannelTypes {
    items: Vec<ChannelTypeView>,
}

impl ChannelTypeView {
    fn of(kind: ChannelKind) -> Self {
        let channel_type = kind.channel_type();
        let shown = channel_type.presentation();
        let setting = |s: &Setting| SettingView {
            name: s.name,
            label: s.label,
            help: s.help,
            placeholder: s.placeholder,
            kind: if s.number { "number" } else { "text" },
            required: s.required,
            secret: s.secret,
            moves_credentials: s.moves_credentials,
        };
        Self {
            kind: shown.name,
            label: shown.label,
            help: shown.help,
            url: UrlView { field: channel_type.url_field(), label: shown.url_label, placeholder: shown.url_placeholder, secret: channel_type.url_is_secret(), default: channel_type.default_url(), host: channel_type.address_is_host() },
            signed: channel_type.signs(),
            headers_in_form: shown.headers_in_form,
            rate_limit_per_second: channel_type.default_rate_limit(),
            tickets: channel_type.opens_tickets(),
            settings: channel_type.settings().iter().map(setting).collect(),
        }
    }
}

/// Every channel type, in the order the admin page offers them.
#[utoipa::path(get, path = "/api/v1/channel-types", tag = "channels", responses((status = 200, description = "The channel types and their settings", body = ChannelTypes)))]
pub async fn list() -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(ChannelTypes { items: ChannelKind::all().into_iter().map(ChannelTypeView::of).collect() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_type_describes_itself_once() {
        let views: Vec<ChannelTypeView> = ChannelKind::all().into_iter().map(ChannelTypeView::of).collect();
        let names: Vec<&str> = views.iter().map(|v| v.kind).collect();
        assert_eq!(&names[..5], ["webhook", "slack", "teams", "splunk", "sentinel"]);
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "a name registered twice");
        for view in &views {
            assert!(!view.label.is_empty() && !view.help.is_empty() && !view.url.label.is_empty(), "{} lacks words for its form", view.kind);
            for setting in &view.settings {
                assert!(!setting.label.is_empty(), "{}.{} has no label", view.kind, setting.name);
            }
        }
        let by_name = |name: &str| views.iter().find(|v| v.kind == name).unwrap();
        assert!(by_name("webhook").signed && !by_name("slack").signed);
        assert!(by_name("slack").url.secret && by_name("teams").url.secret && !by_name("splunk").url.secret);
        assert_eq!((by_name("slack").rate_limit_per_second, by_name("teams").rate_limit_per_second, by_name("webhook").rate_limit_per_second), (Some(1), Some(4), None));
        assert_eq!(by_name("sentinel").url.field, "endpoint");
        let moving: Vec<&str> = by_name("sentinel").settings.iter().filter(|s| s.moves_credentials).map(|s| s.name).collect();
        assert_eq!(moving, ["directory_id", "authority"]);
    }

    #[test]
    fn a_stored_type_this_release_does_not_know_fails_closed() {
        let unknown = ChannelKind::from_stored("future-type").unwrap_err();
        assert!(unknown.to_string().contains("does not know the channel type `future-type`"));
        assert_eq!(ChannelKind::from_stored("slack").map(ChannelKind::as_str), Ok("slack"));
    }
}
