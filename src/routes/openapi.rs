//! `GET /api/v1/openapi.json` (SPEC section 15, no token): the OpenAPI 3.1 document of every
//! route, built from the code so it cannot drift from it:
//! - the operations come from the route table (`routes::RoutePaths`) and each handler's
//!   `#[utoipa::path]`, the bodies from the types the handlers read and answer (`ToSchema`);
//! - who may call what comes from the checks `auth.rs` applies ([`Access`]);
//! - the problem answers every operation can give come from what it takes (a body, a query, an
//!   id in the path) and who may call it ([`Problems`]);
//! - the settings of each channel type come from the types themselves (`ChannelKind::channel_type`).
//!
//! The document is built once, at the first request, and served as it is from then on.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::link::Link;
use utoipa::openapi::{Content, OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use super::auth::{INGEST_ROUTES, OPEN_ROUTES, OWN_AUTH_ROUTES};
use crate::channels::Setting;
use crate::channels::ChannelKind;
use crate::error::{Problem, PROBLEM_JSON};

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

/// Each operation's id, from the route table (`module_handler`, unique).
struct Names;

impl Modify for Names {
    fn modify(&self, doc: &mut Document) {
        for (method, path, operation) in operations(doc) {
            let route = super::ROUTES.iter().find(|r| r.method == method && r.path == path);
            operation.operation_id = route.map(|r| r.operation_id.to_string());
        }
    }
}

/// Where an answer's ids lead (OpenAPI links, which clients and test tools follow): a created
/// object's `id`, and the first item of a list, to every operation on `…/{id}` below it; an
/// ingested event's first delivery to the delivery's operations.
struct Links;

impl Modify for Links {
    fn modify(&self, doc: &mut Document) {
        let targets: Vec<(String, String)> = operations(doc)
            .into_iter()
            .filter_map(|(_, path, operation)| operation.operation_id.clone().map(|id| (path, id)))
            .collect();
        let below = |collection: &str| -> Vec<&(String, String)> {
            let prefix = format!("{collection}/{{id}}");
            targets.iter().filter(|(path, _)| *path == prefix || path.starts_with(&format!("{prefix}/"))).collect()
        };
        for (method, path, operation) in operations(doc) {
            let (status, source, about, leads_to) = match (method, path.as_str()) {
                ("post", "/api/v1/events") => {
                    ("202", "$response.body#/deliveries/0/id", "The first delivery of one event (a batch answers `results`).", below("/api/v1/deliveries"))
                }
                ("post", collection) => ("201", "$response.body#/id", "The object created.", below(collection)),
                ("get", collection) => ("200", "$response.body#/items/0/id", "The first item of the list.", below(collection)),
                _ => continue,
            };
            let Some(RefOr::T(response)) = operation.responses.responses.get_mut(status) else { continue };
            for (_, target) in leads_to {
                let link = Link::builder().operation_id(target.clone()).parameter("id", source).description(about).build();
                response.links.insert(target.clone(), RefOr::T(link));
            }
        }
    }
}

/// Who may call what, as `auth.rs` checks it: the admin token everywhere under `/api/v1`; the
/// ingest token too on the ingestion routes; the Management Activity API's `Webhook-AuthID` on
/// its webhook; `METRICS_TOKEN` or the admin token on `/metrics`; nothing on the rest.
struct Access;

impl Modify for Access {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |about: &str| {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(about.to_string());
            SecurityScheme::Http(http)
        };
        components.add_security_scheme("admin_token", bearer("ADMIN_TOKEN: every /api/v1 route."));
        components.add_security_scheme("ingest_token", bearer("INGEST_TOKEN: only POST /api/v1/events and POST /api/v1/sources/o365/audit."));
        components.add_security_scheme("metrics_token", bearer("METRICS_TOKEN: only GET /metrics."));
        components.add_security_scheme(
            "webhook_auth_id",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Webhook-AuthID",
                "O365_WEBHOOK_AUTH_ID, the authId given to the Management Activity API's subscriptions/start.",
            ))),
        );
        let require = |names: &[&str]| names.iter().map(|name| SecurityRequirement::new(*name, Vec::<String>::new())).collect::<Vec<_>>();
        for (method, path, operation) in operations(doc) {
            operation.security = Some(if OWN_AUTH_ROUTES.contains(&path.as_str()) {
                require(&["webhook_auth_id"])
            } else if path == "/metrics" {
                require(&["admin_token", "metrics_token"])
            } else if OPEN_ROUTES.contains(&path.as_str()) || !path.starts_with("/api/v1/") {
                vec![SecurityRequirement::default()]
            } else if method == "post" && INGEST_ROUTES.contains(&path.as_str()) {
                require(&["admin_token", "ingest_token"])
            } else {
                require(&["admin_token"])
            });
        }
    }
}

/// The problem answers an operation can give besides its own (404 for an unknown id, 409 …,
/// declared by its handler with a description only: every error answer gets the problem body): 401 and 403 where a token is needed, 400 and 422 where it reads a
/// body or a query, 413 for a body, 404 for an id in the path, 500 and 503 for everything
/// that reads the database, and 414 and 431 everywhere (`http_guard`, before any route).
struct Problems;

impl Modify for Problems {
    fn modify(&self, doc: &mut Document) {
        for (method, path, operation) in operations(doc) {
            let secured = operation.security.as_ref().is_some_and(|s| s.iter().any(|r| *r != SecurityRequirement::default()));
            let body = operation.request_body.is_some();
            let query = operation
                .parameters
                .iter()
                .flatten()
                .any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Query);
            let in_path = path.contains('{');
            // Answered without the database (`/metrics` reads its gauges when it can and answers
            // the rest without them).
            let static_answer = ["/", "/favicon.ico", "/static/{name}", "/api/v1/openapi.json", "/metrics"].contains(&path.as_str());
            let mut add = |status: u16, why: &str| {
                operation.responses.responses.entry(status.to_string()).or_insert_with(|| RefOr::T(Response::new(why)));
            };
            if secured {
                add(401, "No token, or one that is not valid here: `Authorization: Bearer <token>` (the Office 365 webhook: `Webhook-AuthID`).");
                if path.starts_with("/api/v1/") && !OWN_AUTH_ROUTES.contains(&path.as_str()) {
                    add(403, "A valid token without the right to this route (the ingest token outside ingestion).");
                }
            }
            if body || query || method == "post" {
                add(400, "The request could not be read: malformed JSON or query string.");
            }
            if body || query {
                add(422, "A field holds a value that is not accepted; `field` names it and `detail` says what to fix.");
            }
            if body {
                add(413, "The body is larger than MAX_BODY_BYTES.");
            }
            if in_path {
                add(404, "Nothing has this id.");
            }
            use crate::http_guard::{MAX_HEAD, MAX_HEADER_FIELDS, MAX_REQUEST_LINE};
            add(414, &format!("The request line is longer than {MAX_REQUEST_LINE} bytes; the connection is closed."));
            add(
                431,
                &format!("The request head is larger than {MAX_HEAD} bytes or has more than {MAX_HEADER_FIELDS} header fields; the connection is closed."),
            );
            if !static_answer {
                add(503, "The database is unreachable or the router is shutting down; retry later.");
                add(500, "The router failed unexpectedly; the cause is in its log.");
            }
            // Every error answer is a problem, those a handler declares with its own words too.
            for (status, response) in operation.responses.responses.iter_mut() {
                if let RefOr::T(response) = response {
                    if status.parse::<u16>().is_ok_and(|s| s >= 400) && response.content.is_empty() {
                        response.content.insert(PROBLEM_JSON.to_string(), Content::new(Some(Ref::from_schema_name("Problem"))));
                    }
                }
            }
        }
    }
}

/// The settings of each channel type, beside `url`, `headers` and `rate_limit_per_second`, taken
/// from the types: a property of `ChannelInput`, `ChannelPatch` and `Channel` each.
struct ChannelSettings;

impl Modify for ChannelSettings {
    fn modify(&self, doc: &mut Document) {
        // Each setting's name, the types that take it (and whether they require it), and
        // whether it is a credential.
        let mut about: Vec<(&'static str, Vec<String>, bool)> = Vec::new();
        for kind in ChannelKind::all() {
            let channel_type = kind.channel_type();
            // A URL under another name (Sentinel's `endpoint`) is the type's too.
            let url = (channel_type.url_field() != "url").then_some(Setting::text(channel_type.url_field(), "URL").required());
            for setting in channel_type.settings().iter().chain(url.as_ref()) {
                let words = if setting.required { format!("{} (required)", kind.as_str()) } else { kind.as_str().to_string() };
                match about.iter_mut().find(|(name, _, _)| *name == setting.name) {
                    Some((_, kinds, secret)) => {
                        kinds.push(words);
                        *secret |= setting.secret;
                    }
                    None => about.push((setting.name, vec![words], setting.secret)),
                }
            }
        }
        let Some(components) = doc.components.as_mut() else { return };
        for schema in ["ChannelInput", "ChannelPatch", "Channel"] {
            let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) else { continue };
            for (name, kinds, secret) in &about {
                let credential = if *secret { " A credential: write-only, reads show it masked, and the masked form sent back keeps it." } else { "" };
                let property = ObjectBuilder::new()
                    .schema_type(SchemaType::AnyValue)
                    .description(Some(format!("Setting of {} channels.{credential}", kinds.join(", "))));
                object.properties.entry(name.to_string()).or_insert(RefOr::T(Schema::Object(property.build())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

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

    #[test]
    fn every_channel_setting_is_documented() {
        let doc: serde_json::Value = serde_json::from_str(rendered()).unwrap();
        for kind in ChannelKind::all() {
            let channel_type = kind.channel_type();
            let names = channel_type.settings().iter().map(|s| s.name).chain([channel_type.url_field()]);
            for name in names {
                for schema in ["ChannelInput", "ChannelPatch", "Channel"] {
                    let property = &doc["components"]["schemas"][schema]["properties"][name];
                    let about = property["description"].as_str().unwrap_or_default();
                    assert!(name == "url" || about.contains(kind.as_str()), "{schema}.{name} does not mention {}: {property}", kind.as_str());
                    assert!(property.is_object(), "{schema} has no {name}");
                }
            }
        }
        let endpoint = &doc["components"]["schemas"]["ChannelInput"]["properties"]["endpoint"]["description"];
        assert!(endpoint.as_str().is_some_and(|a| a.contains("sentinel (required)")), "{endpoint}");
    }
}
