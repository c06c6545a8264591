//! Who may call each operation (its security requirements, as `auth.rs` checks them) and the
//! problem answers every operation can give besides its own, which follow from who may call it
//! and what it reads; every error answer's body is a problem.

use utoipa::openapi::response::Response;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, RefOr};
use utoipa::Modify;

use super::operations;
use crate::error::PROBLEM_JSON;
use crate::http_guard::{MAX_HEAD, MAX_HEADER_FIELDS, MAX_REQUEST_LINE};
use crate::routes::auth::{INGEST_ROUTES, OPEN_ROUTES, OWN_AUTH_ROUTES};

/// Who may call what, as `auth.rs` checks it: the admin token everywhere under `/api/v1`; the
/// ingest token too on the ingestion routes; the Management Activity API's `Webhook-AuthID` on
/// its webhook; `METRICS_TOKEN` or the admin token on `/metrics`; nothing on the rest.
pub(super) struct Access;

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
/// declared by its handler with a description only): 401 and 403 where a token is needed, 400
/// and 422 where it reads a body or a query, 413 for a body, 404 for an id in the path, 500 and
/// 503 for everything that reads the database, and 414 and 431 everywhere (`http_guard`, before
/// any route). Every error answer, its own ones too, gets the problem body.
pub(super) struct Problems;

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
