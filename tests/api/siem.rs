//! Splunk and Sentinel channels against receivers on 127.0.0.1 that play the vendors: a HEC that
//! checks the token and parses the concatenated envelopes, and an Azure pair (a token endpoint
//! that checks the client-credentials form, an ingestion endpoint that checks the bearer token
//! and the record array). Both can refuse bodies over a number of events with `413`.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::helpers::*;

pub const HEC_TOKEN: &str = "5c1f0d2e-6a7b-4c8d-9e0f-1a2b3c4dabcd";
pub const DCR: &str = "dcr-0123456789abcdef0123456789abcdef";
pub const STREAM: &str = "Custom-SPScanAlerts_CL";
pub const DIRECTORY: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const CLIENT_ID: &str = "8c3f2a6e-1d4b-4e5f-9a7c-0b1d2e3f4a5b";
pub const CLIENT_SECRET: &str = "Qx8~client.secret-value-wxyz";

/// What a vendor receiver saw and how it is told to answer.
#[derive(Default)]
pub struct Vendor {
    /// Event ids per accepted request, in order.
    pub accepted: Vec<Vec<String>>,
    /// Requests refused, with the status given.
    refused: Vec<u16>,
    /// Answer this many requests `503` (Splunk: server busy, code 9).
    busy: usize,
    /// Refuse bodies carrying more than this many events with `413`.
    max_events: Option<usize>,
    /// Refuse every request with this status (and a vendor's error body).
    refuse_with: Option<u16>,
    /// Tokens issued by the Azure token endpoint, in order; the last one is valid.
    pub tokens: Vec<String>,
    /// Answer the next ingestion request `401` (the token "expired").
    pub expire_token: bool,
    /// What went wrong in a request the receiver checked (a broken format).
    violations: Vec<String>,
    /// The bodies of the accepted requests.
    pub bodies: Vec<Vec<u8>>,
    /// The token endpoint never answers.
    hang_tokens: bool,
    /// The HEC reads requests and never answers them.
    pub hang: bool,
    /// Events in requests the HEC read and left hanging.
    pub hanging: usize,
    /// Requests the token endpoint got.
    token_requests: usize,
}

pub struct VendorReceiver {
    pub base: String,
    state: Arc<Mutex<Vendor>>,
}

impl VendorReceiver {
    pub fn start(route: fn(&mut web::ServiceConfig)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(Vendor::default()));
        let shared = web::Data::from(state.clone());
        serve(listener, move |cfg| {
            cfg.app_data(shared.clone());
            route(cfg);
        });
        Self { base, state }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Vendor) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Waits until `count` distinct events were accepted; returns every accepted id (duplicates kept).
    pub async fn wait_for_events(&self, count: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ids: Vec<String> = self.with(|v| v.accepted.iter().flatten().cloned().collect());
            if ids.iter().collect::<HashSet<_>>().len() >= count {
                return ids;
            }
            assert!(std::time::Instant::now() < deadline, "{} of {count} events arrived", ids.len());
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A Splunk HTTP Event Collector.
pub fn hec(cfg: &mut web::ServiceConfig) {
    cfg.route("/services/collector/event", web::post().to(hec_event));
}

async fn hec_event(req: HttpRequest, body: web::Bytes, state: web::Data<Mutex<Vendor>>) -> HttpResponse {
    let hang = {
        let mut vendor = state.lock().unwrap();
        if vendor.hang {
            vendor.hanging += serde_json::Deserializer::from_slice(&body).into_iter::<Value>().count();
        }
        vendor.hang
    };
    if hang {
        actix_web::rt::time::sleep(Duration::from_secs(3600)).await;
    }
    let mut vendor = state.lock().unwrap();
    let answer = |status: u16, text: &str, code: u16| {
        HttpResponse::build(awc::http::StatusCode::from_u16(status).unwrap()).json(json!({"text": text, "code": code}))
    };
    if req.headers().get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Splunk {HEC_TOKEN}")) {
        vendor.refused.push(403);
        return answer(403, "Invalid token", 4);
    }
    let mut ids = Vec::new();
    for envelope in serde_json::Deserializer::from_slice(&body).into_iter::<Value>() {
        let Ok(envelope) = envelope else {
            vendor.violations.push("not concatenated JSON objects".into());
            return answer(400, "Invalid data format", 6);
        };
        let well_formed = envelope["time"].is_number()
            && envelope["host"].is_string()
            && envelope["source"] == "spscan-router"
            && envelope["sourcetype"] == "spscan:alert"
            && envelope["index"] == "security"
            && envelope["event"]["event_id"].is_string();
        if !well_formed {
            vendor.violations.push(format!("a malformed envelope: {envelope}"));
            return answer(400, "Invalid data format", 6);
        }
        ids.push(envelope["event"]["event_id"].as_str().unwrap().to_string());
    }
    if let Some(status) = vendor.refuse_with {
        vendor.refused.push(status);
        return answer(status, "Incorrect index", 7);
    }
    if vendor.busy > 0 {
        vendor.busy -= 1;
        vendor.refused.push(503);
        return answer(503, "Server is busy", 9);
    }
    if vendor.max_events.is_some_and(|max| ids.len() > max) {
        vendor.refused.push(413);
        return answer(413, "Content too large", 413);
    }
    vendor.accepted.push(ids);
    vendor.bodies.push(body.to_vec());
    answer(200, "Success", 0)
}

/// Entra ID's token endpoint and a Logs Ingestion endpoint.
pub fn azure(cfg: &mut web::ServiceConfig) {
    cfg.route("/{directory}/oauth2/v2.0/token", web::post().to(azure_token))
        .route("/dataCollectionRules/{dcr}/streams/{stream}", web::post().to(azure_ingest));
}

async fn azure_token(directory: web::Path<String>, form: web::Form<Vec<(String, String)>>, state: web::Data<Mutex<Vendor>>) -> HttpResponse {
    let hang = {
        let mut vendor = state.lock().unwrap();
        vendor.token_requests += 1;
        vendor.hang_tokens
    };
    if hang {
        actix_web::rt::time::sleep(Duration::from_secs(3600)).await;
    }
    let mut vendor = state.lock().unwrap();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let valid = directory.as_str() == DIRECTORY
        && field("grant_type") == Some("client_credentials")
        && field("client_id") == Some(CLIENT_ID)
        && field("client_secret") == Some(CLIENT_SECRET)
        && field("scope") == Some("https://monitor.azure.com/.default");
    if !valid {
        vendor.violations.push(format!("a bad token request: {:?}", form.0));
        return HttpResponse::Unauthorized().json(json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}));
    }
    let token = format!("eyJ0.access-token-{}", vendor.tokens.len() + 1);
    vendor.tokens.push(token.clone());
    HttpResponse::Ok().json(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": token}))
}

async fn azure_ingest(req: HttpRequest, path: web::Path<(String, String)>, body: web::Bytes, state: web::Data<Mutex<Vendor>>) -> HttpResponse {
    let mut vendor = state.lock().unwrap();
    if path.0 != DCR || path.1 != STREAM || req.query_string() != "api-version=2023-01-01" {
        vendor.violations.push(format!("a request to {}", req.uri()));
        return HttpResponse::NotFound().finish();
    }
    let bearer = req.headers().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if vendor.expire_token || bearer.is_none() || bearer != vendor.tokens.last().map(String::as_str) {
        vendor.expire_token = false;
        vendor.refused.push(401);
        return HttpResponse::Unauthorized().json(json!({"error": {"code": "InvalidToken", "message": "The token has expired"}}));
    }
    let Ok(Value::Array(records)) = serde_json::from_slice::<Value>(&body) else {
        vendor.violations.push("not a JSON array".into());
        return HttpResponse::BadRequest().finish();
    };
    let mut ids = Vec::new();
    for record in &records {
        let fields = ["TimeGenerated", "EventId", "EventType", "Severity", "TenantId", "TenantName", "MicrosoftTenantId", "SiteUrl", "ResourcePath", "Principal", "PermissionType", "AccessLevel", "Data"];
        if !fields.iter().all(|f| record.get(*f).is_some()) || !record["EventId"].is_string() || !record["Data"].is_object() {
            vendor.violations.push(format!("a record without the stream's columns: {record}"));
            return HttpResponse::BadRequest().finish();
        }
        ids.push(record["EventId"].as_str().unwrap().to_string());
    }
    if vendor.max_events.is_some_and(|max| ids.len() > max) {
        vendor.refused.push(413);
        return HttpResponse::PayloadTooLarge().finish();
    }
    if let Some(status) = vendor.refuse_with {
        vendor.refused.push(status);
        return HttpResponse::build(awc::http::StatusCode::from_u16(status).unwrap())
            .json(json!({"error": {"code": "OperationFailed", "message": "The authentication token provided does not have access to ingest data for the data collection rule"}}));
    }
    vendor.accepted.push(ids);
    vendor.bodies.push(body.to_vec());
    HttpResponse::NoContent().finish()
}

async fn splunk_channel(app: &TestApp, hec: &VendorReceiver, extra: Value) -> Value {
    let mut input = json!({"name": "Splunk", "type": "splunk", "url": hec.base, "token": HEC_TOKEN, "index": "security"});
    input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let answer = app.post("/api/v1/channels", input).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    app.route_everything_to(&[answer.body["id"].as_str().unwrap()]).await;
    app.create_tenant("contoso").await;
    answer.body
}

async fn sentinel_channel(app: &TestApp, azure: &VendorReceiver, extra: Value) -> Value {
    let mut input = json!({"name": "Sentinel", "type": "sentinel", "endpoint": azure.base, "dcr_immutable_id": DCR, "stream_name": STREAM,
        "directory_id": DIRECTORY, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "authority": azure.base});
    input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let answer = app.post("/api/v1/channels", input).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    app.route_everything_to(&[answer.body["id"].as_str().unwrap()]).await;
    app.create_tenant("contoso").await;
    answer.body
}

/// Ingests `count` events in batches of 500; returns their event ids.
async fn ingest_many(app: &TestApp, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
        let events: Vec<Value> = chunk.iter().map(|_| permission_event("contoso", "permission.external_share_created", "high")).collect();
        let answer = app.ingest(json!({"events": events})).await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        ids.extend(answer.body["results"].as_array().unwrap().iter().map(|r| r["event_id"].as_str().unwrap().to_string()));
    }
    ids
}

/// Every event arrived exactly once.
fn exactly_once(sent: &[String], arrived: &[String]) {
    let unique: HashSet<&String> = arrived.iter().collect();
    assert_eq!(unique.len(), arrived.len(), "{} events arrived twice", arrived.len() - unique.len());
    assert_eq!(unique, sent.iter().collect::<HashSet<_>>(), "lost events");
}

on_both_backends! {
    #[actix_web::test]
    async fn a_thousand_events_reach_splunk_in_at_most_20_requests_none_lost_or_doubled() {
        let hec = VendorReceiver::start(hec);
        let app = spawn_app().await;
        let channel = splunk_channel(&app, &hec, json!({"batch_size": 100})).await;
        // The token is write-only: reads show its last four characters.
        assert_eq!(channel["token"], "••••abcd", "{channel:#}");
        assert_eq!((channel["sourcetype"].as_str(), channel["source"].as_str()), (Some("spscan:alert"), Some("spscan-router")));
        assert_eq!((channel["batch_size"].as_u64(), channel["batch_wait"].as_str()), (Some(100), Some("200ms")));
        assert!(!app.get("/api/v1/channels").await.body.to_string().contains(HEC_TOKEN));

        let sent = ingest_many(&app, 1000).await;
        let arrived = hec.wait_for_events(1000).await;
        exactly_once(&sent, &arrived);
        let requests = hec.with(|v| v.accepted.len());
        assert!(requests <= 20, "{requests} requests for 1,000 events");
        assert_eq!(hec.with(|v| v.violations.clone()), Vec::<String>::new());

        // The alert logs show which deliveries went in the same request.
        let logs = app.get(&format!("/api/v1/deliveries?channel_id={}&limit=5", channel["id"].as_str().unwrap())).await.body;
        let delivery = app.wait_for_status(logs["items"][0]["id"].as_str().unwrap(), "succeeded", Duration::from_secs(10)).await;
        let attempt = &delivery["attempts"][0];
        assert!(attempt["request_id"].as_str().unwrap().starts_with("req_"), "{delivery:#}");
        let size = attempt["request_size"].as_i64().unwrap();
        assert!(size > 1 && size <= 100, "{delivery:#}");
        let companions = hec.with(|v| v.accepted.iter().find(|ids| ids.contains(&delivery["event_id"].as_str().unwrap().to_string())).unwrap().len());
        assert_eq!(companions as i64, size, "the request size recorded is the one Splunk got");
    }

    #[actix_web::test]
    async fn a_413_splits_the_batch_until_splunk_takes_it_and_everything_arrives_once() {
        let hec = VendorReceiver::start(hec);
        hec.with(|v| v.max_events = Some(30));
        let app = spawn_app().await;
        splunk_channel(&app, &hec, json!({"batch_size": 100, "batch_wait": "1s"})).await;
        let sent = ingest_many(&app, 200).await;
        let arrived = hec.wait_for_events(200).await;
        exactly_once(&sent, &arrived);
        assert!(hec.with(|v| v.refused.contains(&413)), "the receiver never refused a body");
        assert!(hec.with(|v| v.accepted.iter().all(|ids| ids.len() <= 30)));
        // Splitting is no failed attempt: every delivery succeeded at its first.
        let logs = app.get("/api/v1/deliveries?limit=500").await.body;
        for item in logs["items"].as_array().unwrap() {
            let delivery = app.wait_for_status(item["id"].as_str().unwrap(), "succeeded", Duration::from_secs(10)).await;
            assert_eq!(delivery["attempt_count"], 1, "{delivery:#}");
        }
    }

    #[actix_web::test]
    async fn splunk_busy_is_retried_and_a_refused_token_or_format_fails_at_once() {
        let hec = VendorReceiver::start(hec);
        hec.with(|v| v.busy = 1);
        let app = spawn_app().await;
        let channel = splunk_channel(&app, &hec, json!({"batch_wait": "50ms"})).await;
        let sent = ingest_many(&app, 10).await;
        exactly_once(&sent, &hec.wait_for_events(10).await);
        assert_eq!(hec.with(|v| v.refused.clone()), vec![503]);

        // A token Splunk refuses: final, with Splunk's words, not retried.
        let path = format!("/api/v1/channels/{}", channel["id"].as_str().unwrap());
        let changed = app.patch(&path, json!({"token": "0000-wrong"})).await;
        assert_eq!(changed.status, 200, "{}", changed.body);
        assert_eq!(changed.body["token"], "••••", "a short token shows nothing of itself");
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let failed = app.wait_for_status(answer.body["deliveries"][0]["id"].as_str().unwrap(), "failed", Duration::from_secs(10)).await;
        assert_eq!(failed["attempt_count"], 1, "{failed:#}");
        let error = failed["attempts"][0]["error"].as_str().unwrap();
        assert!(error.contains("Invalid token (code 4)") && error.contains("not retried"), "{error}");

        // The masked token sent back keeps the stored one; a wrong index is refused as final too.
        let restored = app.patch(&path, json!({"token": HEC_TOKEN})).await;
        assert_eq!(restored.status, 200);
        let kept = app.patch(&path, json!({"token": "••••abcd", "name": "Splunk SOC"})).await;
        assert_eq!(kept.status, 200, "{}", kept.body);
        // Sending the channel elsewhere takes the write-only token again: it never follows the URL.
        let elsewhere = format!("{}/services/collector/event", hec.base);
        let moved = app.patch(&path, json!({"url": elsewhere, "token": "••••abcd"})).await;
        assert_eq!((moved.status, moved.body["field"].as_str()), (422, Some("token")), "{}", moved.body);
        let moved = app.patch(&path, json!({"url": elsewhere, "token": HEC_TOKEN})).await;
        assert_eq!(moved.status, 200, "{}", moved.body);
        hec.with(|v| v.refuse_with = Some(400));
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let failed = app.wait_for_status(answer.body["deliveries"][0]["id"].as_str().unwrap(), "failed", Duration::from_secs(10)).await;
        assert_eq!(failed["attempt_count"], 1, "{failed:#}");
        hec.with(|v| v.refuse_with = None);
        let test = app.post(&format!("{path}/test"), json!({})).await;
        assert_eq!(test.body["ok"], true, "the stored token still works: {}", test.body);
        assert!(test.body["response_excerpt"].as_str().unwrap().contains("Success"));
    }

    #[actix_web::test]
    async fn sentinel_gets_record_arrays_with_one_cached_token_and_exactly_one_new_token_after_a_401() {
        let azure = VendorReceiver::start(azure);
        let app = spawn_app().await;
        let channel = sentinel_channel(&app, &azure, json!({"batch_size": 50})).await;
        assert_eq!(channel["client_secret"], "••••wxyz", "{channel:#}");
        assert_eq!(channel["endpoint"], format!("{}/", azure.base), "normalised as a URL");
        assert!(!app.get("/api/v1/channels").await.body.to_string().contains(CLIENT_SECRET));

        let sent = ingest_many(&app, 300).await;
        exactly_once(&sent, &azure.wait_for_events(300).await);
        assert!(azure.with(|v| v.accepted.len()) >= 6, "batches of at most 50");
        assert_eq!(azure.with(|v| v.tokens.len()), 1, "one token, cached, for every request");

        // The token is refused once: exactly one new token, and the request goes again.
        azure.with(|v| v.expire_token = true);
        let more = ingest_many(&app, 20).await;
        let arrived = azure.wait_for_events(320).await;
        exactly_once(&[sent, more].concat(), &arrived);
        assert_eq!(azure.with(|v| v.tokens.len()), 2);
        assert_eq!(azure.with(|v| v.refused.clone()), vec![401]);
        assert_eq!(azure.with(|v| v.violations.clone()), Vec::<String>::new());
    }

    #[actix_web::test]
    async fn a_batch_that_failed_together_is_retried_together_despite_the_jitter() {
        let hec = VendorReceiver::start(hec);
        hec.with(|v| v.busy = 1);
        let app = spawn_app_with(|s| {
            s.retry_schedule = spscan_router::domain::retry::RetrySchedule::parse("2s").unwrap();
            s.retry_jitter = 0.5;
        })
        .await;
        splunk_channel(&app, &hec, json!({"batch_wait": "300ms"})).await;
        let sent = ingest_many(&app, 40).await;
        exactly_once(&sent, &hec.wait_for_events(40).await);
        assert_eq!(hec.with(|v| v.refused.clone()), vec![503]);
        assert_eq!(hec.with(|v| v.accepted.len()), 1, "the retry went as one request, as the batch did");
    }

    #[actix_web::test]
    async fn sentinel_splits_on_413_and_a_403_is_final() {
        let azure = VendorReceiver::start(azure);
        azure.with(|v| v.max_events = Some(7));
        let app = spawn_app().await;
        sentinel_channel(&app, &azure, json!({"batch_size": 40, "batch_wait": "500ms"})).await;
        let sent = ingest_many(&app, 60).await;
        exactly_once(&sent, &azure.wait_for_events(60).await);
        assert!(azure.with(|v| v.refused.contains(&413)));

        azure.with(|v| v.refuse_with = Some(403));
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let failed = app.wait_for_status(answer.body["deliveries"][0]["id"].as_str().unwrap(), "failed", Duration::from_secs(10)).await;
        assert_eq!(failed["attempt_count"], 1, "{failed:#}");
        assert!(failed["attempts"][0]["error"].as_str().unwrap().contains("Monitoring Metrics Publisher"), "{failed:#}");
    }

    #[actix_web::test]
    async fn a_wrong_client_secret_is_a_token_error_with_entras_words() {
        let azure = VendorReceiver::start(azure);
        let app = spawn_app().await;
        let channel = sentinel_channel(&app, &azure, json!({"client_secret": "not-the-secret"})).await;
        let test = app.post(&format!("/api/v1/channels/{}/test", channel["id"].as_str().unwrap()), json!({})).await;
        assert_eq!(test.body["ok"], false, "{}", test.body);
        assert_eq!(test.body["error_kind"], "token");
        assert!(test.body["error"].as_str().unwrap().contains("AADSTS7000215"), "{}", test.body);
    }

    #[actix_web::test]
    async fn requests_waiting_for_a_token_endpoint_that_never_answers_fail_together_not_one_after_another() {
        let azure = VendorReceiver::start(azure);
        azure.with(|v| v.hang_tokens = true);
        let app = spawn_app_with(|s| s.delivery_timeout = Duration::from_secs(1)).await;
        sentinel_channel(&app, &azure, json!({"batch_size": 1})).await;
        let answer = app.ingest(json!({"events": (0..16).map(|_| permission_event("contoso", "permission.external_share_created", "high")).collect::<Vec<_>>()})).await;
        let started = std::time::Instant::now();
        for result in answer.body["results"].as_array().unwrap() {
            let id = result["deliveries"][0]["id"].as_str().unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let delivery = loop {
                let delivery = app.delivery(id).await;
                if delivery["attempt_count"].as_i64().unwrap() >= 1 {
                    break delivery;
                }
                assert!(std::time::Instant::now() < deadline, "no attempt recorded: {delivery:#}");
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            };
            assert_eq!(delivery["attempts"][0]["error_kind"], "token", "{delivery:#}");
        }
        // Sixteen requests in flight, one token request: all failed after about one timeout,
        // not sixteen timeouts one after the other.
        assert!(started.elapsed() < Duration::from_secs(4), "the first attempts took {:?}", started.elapsed());
        assert!(azure.with(|v| v.token_requests) <= 4, "{} token requests", azure.with(|v| v.token_requests));
    }

    #[actix_web::test]
    async fn siem_settings_are_checked_and_say_what_to_fix() {
        let app = spawn_app().await;
        let splunk = |extra: Value| {
            let mut input = json!({"name": "S", "type": "splunk", "url": "https://splunk.example:8088", "token": HEC_TOKEN});
            input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            input
        };
        let sentinel = |extra: Value| {
            let mut input = json!({"name": "A", "type": "sentinel", "endpoint": "https://dce.example.ingest.monitor.azure.com", "dcr_immutable_id": DCR,
                "stream_name": STREAM, "directory_id": DIRECTORY, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET});
            input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            input
        };
        let mut no_token = splunk(json!({}));
        no_token.as_object_mut().unwrap().remove("token");
        let cases = [
            (no_token, "token", "required"),
            (splunk(json!({"batch_size": 5000})), "batch_size", "1 to 1000"),
            (splunk(json!({"batch_wait": "1h"})), "batch_wait", "at most 10s"),
            (splunk(json!({"index": "Main Index"})), "index", "lowercase"),
            (splunk(json!({"tokn": "x"})), "tokn", "not a setting of splunk channels"),
            (splunk(json!({"token": "Splunk abc"})), "token", "without `Splunk `"),
            (json!({"name": "W", "type": "webhook", "url": "https://x.example", "token": "x"}), "token", "not a setting of webhook channels"),
            (sentinel(json!({"dcr_immutable_id": "my-rule"})), "dcr_immutable_id", "32 hex"),
            (sentinel(json!({"client_id": "app"})), "client_id", "GUID"),
            (sentinel(json!({"stream_name": "SPScan"})), "stream_name", "Custom-"),
            (sentinel(json!({"authority": "http://10.1.2.3"})), "authority", "ALLOWED_TARGET_NETWORKS"),
            (sentinel(json!({"url": "https://dce.example"})), "url", "`endpoint`"),
        ];
        for (input, field, says) in cases {
            let answer = app.post("/api/v1/channels", input.clone()).await;
            assert_eq!(answer.status, 422, "{input}: {}", answer.body);
            assert_eq!(answer.content_type, "application/problem+json");
            assert_eq!(answer.body["field"], field, "{}", answer.body);
            assert!(answer.body["detail"].as_str().unwrap().contains(says), "{}", answer.body);
        }
        assert_eq!(app.get("/api/v1/channels").await.body["items"].as_array().unwrap().len(), 0, "nothing half-written");
    }
}

#[actix_web::test]
async fn the_readme_shows_exactly_what_splunk_and_sentinel_get() {
    let hec = VendorReceiver::start(hec);
    let azure = VendorReceiver::start(azure);
    let app = spawn_app_with(|s| s.instance_id = "router-1".into()).await;
    let mut ids = Vec::new();
    for input in [
        json!({"name": "Splunk", "type": "splunk", "url": hec.base, "token": HEC_TOKEN, "index": "security", "batch_wait": "0s"}),
        json!({"name": "Sentinel", "type": "sentinel", "endpoint": azure.base, "dcr_immutable_id": DCR, "stream_name": STREAM,
            "directory_id": DIRECTORY, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "authority": azure.base, "batch_wait": "0s"}),
    ] {
        let answer = app.post("/api/v1/channels", input).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        ids.push(answer.body["id"].as_str().unwrap().to_string());
    }
    app.route_everything_to(&ids.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(app.ingest(crate::channel_types::readme_event()).await.status, 202);
    hec.wait_for_events(1).await;
    azure.wait_for_events(1).await;
    let splunk: Value = serde_json::from_slice(&hec.with(|v| v.bodies[0].clone())).unwrap();
    let sentinel: Value = serde_json::from_slice(&azure.with(|v| v.bodies[0].clone())).unwrap();
    for (name, body) in [("splunk", &splunk), ("sentinel", &sentinel)] {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("readme-{name}.json"));
        std::fs::write(path, serde_json::to_string_pretty(body).unwrap()).unwrap();
    }
    for (name, body) in [("splunk", &splunk), ("sentinel", &sentinel)] {
        assert!(
            crate::channel_types::readme_payload(name) == *body,
            "the README's {name} example is stale; the router sends:\n{}",
            serde_json::to_string_pretty(body).unwrap()
        );
    }
}

#[actix_web::test]
async fn sentinel_behind_a_server_that_closes_each_connection_sends_right_after_its_token() {
    let (base, answered) = closing_http10_receiver(|line| {
        if line.contains("/oauth2/v2.0/token") {
            (200, r#"{"token_type":"Bearer","expires_in":3599,"access_token":"a-token"}"#.into())
        } else {
            (204, String::new())
        }
    });
    let app = spawn_app().await;
    let input = json!({"name": "Sentinel", "type": "sentinel", "endpoint": base, "dcr_immutable_id": DCR, "stream_name": STREAM,
        "directory_id": DIRECTORY, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "authority": base, "batch_size": 1});
    let channel = app.post("/api/v1/channels", input).await;
    assert_eq!(channel.status, 201, "{}", channel.body);
    app.route_everything_to(&[channel.body["id"].as_str().unwrap()]).await;
    app.create_tenant("contoso").await;
    let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
    let delivery = app.wait_for_status(answer.body["deliveries"][0]["id"].as_str().unwrap(), "succeeded", Duration::from_secs(10)).await;
    assert_eq!(delivery["attempts"].as_array().unwrap().len(), 1, "the request after the token went at once, not after a failure: {delivery}");
    assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), 2, "one token, one ingestion");
}
