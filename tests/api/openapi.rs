//! `GET /api/v1/openapi.json` against the running router: every documented route answers, with
//! a status (and media type) the document gives it; wrong methods are 405 with an `Allow` that
//! lists what the document lists. (That every route the router serves is documented is checked
//! where the route table lives: `routes::openapi::tests`. schemathesis runs against a live
//! router in `.ci/run`: `.ci/schemathesis`.)

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

/// The document, read without a token.
async fn document(app: &TestApp) -> Value {
    let answer = app.with_token(None).get("/api/v1/openapi.json").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.content_type.starts_with("application/json"), "{}", answer.content_type);
    answer.body
}

/// `(method, path)` of every operation, the deletes last (they remove what the others use).
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |method| (method.clone(), path.clone())))
        .collect();
    found.sort_by_key(|(method, path)| (method == "delete", path.clone()));
    found
}

/// The example of an operation's request body, as the document gives it, or `{}`.
fn example_body(doc: &Value, operation: &Value) -> Value {
    let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
    let named = schema["$ref"].as_str().and_then(|r| r.rsplit('/').next()).map(|name| &doc["components"]["schemas"][name]);
    named.and_then(|s| s.get("examples").and_then(|e| e.get(0)).or(s.get("example"))).cloned().unwrap_or(json!({}))
}

/// Checks an answer's JSON body against the schema the document gives it (JSON Schema 2020-12,
/// which OpenAPI 3.1 schemas are, resolved against the document's components).
fn assert_matches_schema(doc: &Value, schema: &Value, body: &Value, what: &str) {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("{what}: the documented schema does not compile: {e}"));
    let errors: Vec<String> = validator.iter_errors(body).map(|e| format!("{e} (at {})", e.instance_path())).collect();
    assert!(errors.is_empty(), "{what}: the body breaks its documented schema: {errors:#?}");
}

on_both_backends! {
    #[actix_web::test]
    async fn every_documented_route_answers_as_documented() {
        let feed = crate::o365_feed::ManagementApi::start();
        let o365 = feed.settings();
        let app = spawn_app_with(move |settings| settings.o365 = Some(o365)).await;
        let receiver = Receiver::start().await;
        let channel = app.soc_channel_for_contoso(&receiver).await;
        let channel_id = channel["id"].as_str().unwrap().to_string();
        let rule_id = app.get("/api/v1/rules").await.body["items"][0]["id"].as_str().unwrap().to_string();
        let ingested = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery_id = ingested.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(10)).await;
        let silence = app.post("/api/v1/silences", json!({"matchers": {"path": "/tenant/id", "op": "eq", "value": "contoso"}, "duration": "1h", "comment": "c", "created_by": "me"})).await;
        let silence_id = silence.body["id"].as_str().unwrap_or_else(|| panic!("{}", silence.body)).to_string();

        let doc = document(&app).await;
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
        let operations = operations(&doc);
        assert!(operations.len() >= 30, "{operations:?}");
        let mut answered = Vec::new();
        for (method, template) in &operations {
            let operation = &doc["paths"][template][method];
            let id = match template.split('/').nth(3) {
                Some("tenants") => "contoso",
                Some("channels") => &channel_id,
                Some("rules") => &rule_id,
                Some("deliveries") => &delivery_id,
                Some("silences") => &silence_id,
                _ => "app.js",
            };
            let path = template.replace("{id}", id).replace("{name}", id).replace("{type}", "slack");
            // The document's example, made to fit this router's objects where it names one.
            let mut example = example_body(&doc, operation);
            match (method.as_str(), template.as_str()) {
                ("post", "/api/v1/rules") => example["channel_ids"] = json!([channel_id]),
                ("post", "/api/v1/tenants") => example["id"] = json!("fabrikam"),
                _ => {}
            }
            let answer = if template == "/api/v1/sources/o365/notifications" {
                crate::o365_feed::notify(&app, Some(crate::o365_feed::AUTH_ID), example).await
            } else {
                let body = (method == "post" || method == "patch").then(|| serde_json::to_vec(&example).unwrap());
                app.request(&method.to_uppercase(), &path, body).await
            };
            let what = format!("{} {path} answered {} {}", method.to_uppercase(), answer.status, answer.body);
            // Every operation, given real ids and its example, succeeds as documented.
            assert_eq!(answer.status / 100, 2, "{what}");
            let documented = &operation["responses"][answer.status.to_string()];
            assert!(documented.is_object(), "{what}: the status is not documented");
            if let Some(media) = documented["content"].as_object().filter(|c| !c.is_empty()) {
                let base = answer.content_type.split(';').next().unwrap_or_default();
                let (_, content) = media
                    .iter()
                    .find(|(m, _)| m.split(';').next() == Some(base))
                    .unwrap_or_else(|| panic!("{what}: {} is not documented ({:?})", answer.content_type, media.keys()));
                if base.ends_with("json") {
                    assert_matches_schema(&doc, &content["schema"], &answer.body, &what);
                }
            } else {
                assert!(answer.body.is_null(), "{what}: a body where none is documented");
            }
            // Who may call it, as documented: no token is refused wherever one is required,
            // with a problem as documented.
            let open = operation["security"].as_array().is_some_and(|s| s.iter().any(|r| r.as_object().is_some_and(|r| r.is_empty())));
            if !open {
                let refused = app.with_token(None).request(&method.to_uppercase(), &path, None).await;
                let what = format!("{} {path} without a token answered {} {}", method.to_uppercase(), refused.status, refused.body);
                assert_eq!(refused.status, 401, "{what}");
                assert!(refused.content_type.starts_with("application/problem+json"), "{what}");
                assert_matches_schema(&doc, &operation["responses"]["401"]["content"]["application/problem+json"]["schema"], &refused.body, &what);
            }
            answered.push(format!("{} {path} {}", method.to_uppercase(), answer.status));
        }
        // Every delete removed its object.
        assert_eq!(app.get(&format!("/api/v1/channels/{channel_id}")).await.status, 404, "{answered:#?}");
        assert_eq!(app.get("/api/v1/tenants/contoso").await.status, 404);
    }

    #[actix_web::test]
    async fn a_body_that_breaks_its_schema_is_caught_by_the_check() {
        // The check above can fail: a tenant without its id does not match `Tenant`.
        let app = spawn_app().await;
        let doc = document(&app).await;
        let schema = json!({"$ref": "#/components/schemas/Tenant"});
        let tenant = app.create_tenant("contoso").await;
        assert_matches_schema(&doc, &schema, &tenant, "a tenant as answered");
        let mut broken = tenant.clone();
        broken.as_object_mut().unwrap().remove("id");
        let caught = std::panic::catch_unwind(|| assert_matches_schema(&doc, &schema, &broken, "a tenant without id"));
        assert!(caught.is_err(), "a tenant without its id passed the schema check");
    }

    #[actix_web::test]
    async fn a_wrong_method_is_405_with_the_documented_methods_in_allow() {
        let app = spawn_app().await;
        let doc = document(&app).await;
        let client = http_client();
        for (template, item) in doc["paths"].as_object().unwrap() {
            let documented: BTreeSet<String> = item.as_object().unwrap().keys().map(|m| m.to_uppercase()).collect();
            let path = template.replace("{id}", "x1").replace("{name}", "app.js").replace("{type}", "slack");
            let response = client
                .request(awc::http::Method::PUT, format!("{}{path}", app.base))
                .insert_header(("Authorization", format!("Bearer {ADMIN_TOKEN}")))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 405, "PUT {path}");
            let content_type = response.headers().get("content-type").unwrap().to_str().unwrap();
            assert!(content_type.starts_with("application/problem+json"), "PUT {path}: {content_type}");
            let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
            let allowed: BTreeSet<String> = allow.split(", ").filter(|m| !m.is_empty()).map(str::to_string).collect();
            assert_eq!(allowed, documented, "PUT {path}: Allow: {allow}");
        }
        // As the router matches: `/deliveries/redeliver` before `/deliveries/{id}`, and on the
        // decoded path.
        for (method, path, allow) in [
            ("GET", "/api/v1/deliveries/redeliver", "POST"),
            ("GET", "/api/v1/deliveries/redeliv%65r", "POST"),
            ("PUT", "/api/v1/%74enants", "GET, POST"),
            ("POST", "/healthz", "GET"),
        ] {
            let response = client
                .request(awc::http::Method::from_bytes(method.as_bytes()).unwrap(), format!("{}{path}", app.base))
                .insert_header(("Authorization", format!("Bearer {ADMIN_TOKEN}")))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 405, "{method} {path}");
            let got: BTreeSet<&str> = response.headers().get("allow").map(|v| v.to_str().unwrap()).unwrap_or_default().split(", ").collect();
            assert_eq!(got, allow.split(", ").collect::<BTreeSet<_>>(), "{method} {path}");
        }
    }
}
