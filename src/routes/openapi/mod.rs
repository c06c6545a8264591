//! `GET /api/v1/openapi.json` (SPEC section 15, no token): the OpenAPI 3.1 document of every
//! route, built from the code so it cannot drift from it:
//! - the operations come from the route table (`routes::RoutePaths`) and each handler's
//!   `#[utoipa::path]`, the bodies from the types the handlers read and answer (`ToSchema`);
//! - who may call what comes from the checks `auth.rs` applies (`Access`, in `access.rs`);
//! - the problem answers every operation can give come from what it takes (a body, a query, an
//!   id in the path) and who may call it (`Problems`, beside it);
//! - the settings of each channel type come from the types themselves (`ChannelKind::channel_type`).
//!
//! The document is built once, at the first request, and served as it is from then on.
//!
//! This file holds the document's frame and serves it; each of the other files adds one thing to
//! every operation or schema (a `utoipa::Modify`): `links.rs` the operation ids and the links
//! between them, `access.rs` who may call and the problem answers, `channel_settings.rs` each
//! channel type's settings.

mod access;
mod channel_settings;
mod links;

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};

use crate::error::Problem;
use access::{Access, Problems};
use channel_settings::ChannelSettings;
use links::{Links, Names};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "SPScan Alert Router",
        description = "Routes Microsoft 365 security change events (SharePoint and OneDrive sharing, \
            storage, Office 365 audit records) to webhooks, Slack, Teams, Splunk and Sentinel, durably, \
            with retries and a log of every attempt. Every error is `application/problem+json` \
            (RFC 9457) whose `detail` says what to fix and whose `field`, when present, names the \
            field at fault. Whatever the route, a request line longer than 16384 bytes is answered \
            `414` and a request head larger than 65536 bytes (or with more than 96 header fields) \
            `431`, as problems too, and the connection is closed. The README explains each route \
            with examples."
    ),
    components(schemas(Problem)),
    tags(
        (name = "events", description = "Change events in: matched against the rules, delivered to the rules' channels."),
        (name = "office 365", description = "Office 365 audit records in: posted, or fetched from the Management Activity API."),
        (name = "tenants", description = "The customer tenants events belong to."),
        (name = "channels", description = "Where alerts go: webhooks, Slack, Teams, Splunk HEC, Microsoft Sentinel."),
        (name = "rules", description = "Which events go to which channels."),
        (name = "deliveries", description = "The alert log: every delivery, its attempts, redelivery."),
        (name = "silences", description = "Silences: for a while, matching events are not sent to their channels (each is logged as `silenced`)."),
        (name = "operations", description = "Health, metrics, instances, this document and the admin page."),
    )
)]
struct About;

/// The whole document.
pub fn build() -> Document {
    let mut doc = About::openapi();
    // Not an SPDX identifier, which the license from Cargo.toml would claim it is.
    doc.info.license = Some(utoipa::openapi::License::new("Proprietary"));
    doc.merge(super::RoutePaths::openapi());
    for modifier in [&Names as &dyn Modify, &Access, &Problems, &ChannelSettings, &Links] {
        modifier.modify(&mut doc);
    }
    doc
}

/// The document as served, rendered once.
fn rendered() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = serde_json::to_value(build()).expect("the OpenAPI document renders as JSON");
        camel_case_links(&mut doc);
        doc.to_string()
    })
}

/// utoipa 5 writes a Link object's fields in snake_case (`operation_id`); OpenAPI spells them
/// in camelCase (`operationId`).
fn camel_case_links(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else { return };
    let links = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses").and_then(|r| r.as_object_mut()))
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links").and_then(|l| l.as_object_mut()))
        .flat_map(|links| links.values_mut())
        .filter_map(|link| link.as_object_mut());
    for link in links {
        for (snake, camel) in [("operation_id", "operationId"), ("operation_ref", "operationRef"), ("request_body", "requestBody")] {
            if let Some(value) = link.remove(snake) {
                link.insert(camel.to_string(), value);
            }
        }
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of every route", content_type = "application/json", body = Object)),
)]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(rendered())
}

/// Every operation of the document, with its method and path.
fn operations(doc: &mut Document) -> Vec<(&'static str, String, &mut Operation)> {
    let mut found = Vec::new();
    for (path, item) in doc.paths.paths.iter_mut() {
        let PathItem { get, post, patch, delete, put, .. } = item;
        for (method, operation) in [("get", get), ("post", post), ("patch", patch), ("delete", delete), ("put", put)] {
            if let Some(operation) = operation.as_mut() {
                found.push((method, path.clone(), operation));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::error::PROBLEM_JSON;
    use crate::http_guard::{MAX_HEAD, MAX_HEADER_FIELDS, MAX_REQUEST_LINE};

    /// The router and the document hold the same routes: every route the router serves is
    /// documented, and nothing is documented that it does not serve.
    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let mut doc = build();
        let documented: BTreeSet<(String, String)> = operations(&mut doc).into_iter().map(|(m, p, _)| (m.to_string(), p)).collect();
        let served: BTreeSet<(String, String)> = super::super::ROUTES.iter().map(|r| (r.method.to_string(), r.path.to_string())).collect();
        assert_eq!(served.len(), super::super::ROUTES.len(), "a route is registered twice");
        assert_eq!(documented, served);
    }

    #[test]
    fn operation_ids_are_unique_and_links_lead_to_them() {
        let doc: serde_json::Value = serde_json::from_str(rendered()).unwrap();
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
                assert!(ids.insert(id.to_string()), "{id} twice");
            }
        }
        let created = &doc["paths"]["/api/v1/channels"]["post"]["responses"]["201"]["links"];
        for target in ["channels_get", "channels_update", "channels_delete", "channels_test", "channels_rotate_secret"] {
            assert_eq!(created[target]["operationId"], target, "{created}");
            assert_eq!(created[target]["parameters"]["id"], "$response.body#/id");
        }
        let ingested = &doc["paths"]["/api/v1/events"]["post"]["responses"]["202"]["links"];
        assert_eq!(ingested["deliveries_get"]["parameters"]["id"], "$response.body#/deliveries/0/id", "{ingested}");
        for links in text_links(&doc) {
            assert!(ids.contains(&links), "a link leads to {links}, which is no operation");
        }
    }

    fn text_links(doc: &serde_json::Value) -> Vec<String> {
        let mut found = Vec::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                for response in operation["responses"].as_object().unwrap().values() {
                    for link in response["links"].as_object().into_iter().flat_map(|l| l.values()) {
                        found.push(link["operationId"].as_str().unwrap().to_string());
                    }
                }
            }
        }
        found
    }

    #[test]
    fn the_document_is_openapi_3_1_with_every_schema_it_refers_to() {
        let doc: serde_json::Value = serde_json::from_str(rendered()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
        let text = rendered();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for (status, response) in operation["responses"].as_object().unwrap() {
                    // `/healthz` answers its 503 with its own body, the rest with a problem.
                    if status.as_str() >= "400" && path != "/healthz" {
                        let schema = &response["content"][PROBLEM_JSON]["schema"]["$ref"];
                        assert_eq!(schema, "#/components/schemas/Problem", "{method} {path} {status}");
                    }
                }
            }
        }
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(schemas.contains_key(name), "{name} is referred to but not defined");
        }
    }

    /// The description's 414 and 431 sentence is written out; it must name the limits
    /// `http_guard` applies.
    #[test]
    fn the_openapi_document_states_the_limits_applied() {
        let about = crate::routes::openapi::build().info.description.unwrap_or_default();
        for limit in [MAX_REQUEST_LINE, MAX_HEAD, MAX_HEADER_FIELDS] {
            assert!(about.contains(&limit.to_string()), "{limit} in {about}");
        }
    }
}
