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

on_both_backends! {
    #[actix_web::test]
    async fn every_documented_route_answers_as_documented() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.soc_channel_for_contoso(&receiver).await;
        let channel_id = channel["id"].as_str().unwrap().to_string();
        let rule_id = app.get("/api/v1/rules").await.body["items"][0]["id"].as_str().unwrap().to_string();
        let ingested = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery_id = ingested.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(10)).await;

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
                _ => "app.js",
            };
            let path = template.replace("{id}", id).replace("{name}", id);
            let body = (method == "post" || method == "patch").then(|| serde_json::to_vec(&example_body(&doc, operation)).unwrap());
            let answer = app.request(&method.to_uppercase(), &path, body).await;
            let what = format!("{} {path} answered {} {}", method.to_uppercase(), answer.status, answer.body);
            assert_ne!(answer.status, 405, "{what}");
            let detail = answer.body["detail"].as_str().unwrap_or_default();
            assert!(!(answer.status == 404 && detail.starts_with("no route")), "documented but not served: {what}");
            let documented = &operation["responses"][answer.status.to_string()];
            assert!(documented.is_object(), "{what}: the status is not documented");
            if let Some(media) = documented["content"].as_object().filter(|c| !c.is_empty()) {
                let base = answer.content_type.split(';').next().unwrap_or_default();
                assert!(media.keys().any(|m| m.split(';').next() == Some(base)), "{what}: {} is not documented ({:?})", answer.content_type, media.keys());
            }
            if method == "get" {
                assert_eq!(answer.status / 100, 2, "{what}");
            }
            // Who may call it, as documented: no token is refused wherever one is required.
            let open = operation["security"].as_array().is_some_and(|s| s.iter().any(|r| r.as_object().is_some_and(|r| r.is_empty())));
            if !open {
                let refused = app.with_token(None).request(&method.to_uppercase(), &path, None).await;
                assert_eq!(refused.status, 401, "{} {path} without a token: {}", method.to_uppercase(), refused.body);
            }
            answered.push(format!("{} {path} {}", method.to_uppercase(), answer.status));
        }
        // What the examples did, for the log of a failure elsewhere.
        eprintln!("{answered:#?}");
        // The channel example was created, and every delete removed its object.
        for accepted in ["POST /api/v1/channels 201", "POST /api/v1/events 202"] {
            assert!(answered.iter().any(|a| a == accepted), "the document's example was refused: {answered:#?}");
        }
        assert_eq!(app.get(&format!("/api/v1/channels/{channel_id}")).await.status, 404);
        assert_eq!(app.get("/api/v1/tenants/contoso").await.status, 404);
    }

    #[actix_web::test]
    async fn a_wrong_method_is_405_with_the_documented_methods_in_allow() {
        let app = spawn_app().await;
        let doc = document(&app).await;
        let client = http_client();
        for (template, item) in doc["paths"].as_object().unwrap() {
            let documented: BTreeSet<String> = item.as_object().unwrap().keys().map(|m| m.to_uppercase()).collect();
            let path = template.replace("{id}", "x1").replace("{name}", "app.js");
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
    }
}
