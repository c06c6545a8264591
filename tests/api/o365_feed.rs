//! The Office 365 Management Activity API side of issue 14, against a local Management Activity
//! API (`ManagementApi`: an Entra ID token endpoint that checks the client-credentials form,
//! content blobs behind a bearer token, and the content listing with `NextPageUri` paging): the
//! webhook's validation and `Webhook-AuthID`, blobs fetched once in the background, retried until
//! they expire, and the catch-up listing.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use spscan_router::settings::O365Settings;

use crate::helpers::*;
use crate::o365::{anyone_link_click, CONTOSO_GUID};
use crate::siem::{CLIENT_ID, CLIENT_SECRET};

/// What subscriptions/start was given as `authId`.
pub const AUTH_ID: &str = "o365-webhook-auth-id-0123456789";

/// The local Management Activity API's state.
#[derive(Default)]
pub struct Published {
    /// Blobs by content id: their records.
    blobs: HashMap<String, Vec<Value>>,
    /// What the content listing offers, in order (each with its tenant).
    listing: Vec<(String, Value)>,
    /// GETs of each blob.
    pub fetches: HashMap<String, usize>,
    /// When each GET of a blob came.
    pub fetched_at: HashMap<String, Vec<std::time::Instant>>,
    /// The `Retry-After` sent with the failures of `failing`.
    pub retry_after: Option<&'static str>,
    /// Answer this many GETs of a blob `503` first (`usize::MAX`: always).
    failing: HashMap<String, usize>,
    /// Tokens issued, in order; each is accepted until it is revoked.
    pub tokens: Vec<String>,
    /// Tokens no longer accepted.
    revoked: Vec<String>,
    /// Revoke every token issued so far at the next API request (it gets `401`).
    pub expire_token: bool,
    /// Listing requests, as asked (path and query).
    pub listings: Vec<String>,
    /// Items per listing page.
    page_size: usize,
    /// Whatever was wrong in a request (a bad token form, a wrong token).
    pub violations: Vec<String>,
    /// Blob GETs that read the request and never answer (until the test ends).
    pub hang_blobs: bool,
}

#[derive(Clone)]
pub struct ManagementApi {
    pub base: String,
    state: Arc<Mutex<Published>>,
}

impl ManagementApi {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(Published { page_size: 2, ..Published::default() }));
        let shared = web::Data::from(state.clone());
        let root = web::Data::new(base.clone());
        serve(listener, move |cfg| {
            cfg.app_data(shared.clone())
                .app_data(root.clone())
                .route("/{tenant}/oauth2/v2.0/token", web::post().to(token))
                .route("/api/v1.0/{tenant}/activity/feed/subscriptions/content", web::get().to(listing))
                .route("/api/v1.0/{tenant}/activity/feed/audit/{content_id}", web::get().to(blob));
        });
        Self { base, state }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Published) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// The router's `O365_*` settings for this API.
    pub fn settings(&self) -> O365Settings {
        O365Settings {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            authority: self.base.clone(),
            api_root: format!("{}/api/v1.0", self.base),
            poll_interval: Duration::from_secs(900),
            webhook_auth_id: Some(AUTH_ID.into()),
        }
    }

    /// The same as environment variables, for the binary.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("O365_CLIENT_ID", CLIENT_ID.into()),
            ("O365_CLIENT_SECRET", CLIENT_SECRET.into()),
            ("O365_AUTHORITY", self.base.clone()),
            ("O365_API_ROOT", format!("{}/api/v1.0", self.base)),
            ("O365_WEBHOOK_AUTH_ID", AUTH_ID.into()),
        ]
    }

    /// Makes a blob of `records` available (listed as created now, kept seven days) and returns
    /// the notification the API would send for it.
    pub fn publish(&self, content_id: &str, records: Vec<Value>) -> Value {
        self.publish_expiring(content_id, records, chrono::Utc::now() + chrono::Duration::days(7))
    }

    pub fn publish_expiring(&self, content_id: &str, records: Vec<Value>, expiration: chrono::DateTime<chrono::Utc>) -> Value {
        let tenant = CONTOSO_GUID.to_lowercase();
        let notification = json!({
            "tenantId": tenant, "clientId": CLIENT_ID, "contentType": "Audit.SharePoint", "contentId": content_id,
            "contentUri": format!("{}/api/v1.0/{tenant}/activity/feed/audit/{content_id}", self.base),
            "contentCreated": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "contentExpiration": expiration.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        let mut listed = notification.clone();
        listed.as_object_mut().unwrap().remove("tenantId");
        listed.as_object_mut().unwrap().remove("clientId");
        self.with(|p| {
            p.blobs.insert(content_id.to_string(), records);
            p.listing.push((tenant, listed));
        });
        notification
    }

    pub fn fail(&self, content_id: &str, times: usize) {
        self.with(|p| p.failing.insert(content_id.to_string(), times));
    }

    pub fn fetches(&self, content_id: &str) -> usize {
        self.with(|p| p.fetches.get(content_id).copied().unwrap_or(0))
    }
}

/// Whether the request carries a token issued and not revoked.
fn authorised(req: &HttpRequest, published: &mut Published) -> bool {
    let bearer = req.headers().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if std::mem::take(&mut published.expire_token) {
        published.revoked = published.tokens.clone();
        return false;
    }
    let valid = bearer.is_some_and(|token| published.tokens.iter().any(|t| t == token) && !published.revoked.iter().any(|t| t == token));
    if !valid {
        published.violations.push(format!("a request with token {bearer:?} at {}", req.path()));
    }
    valid
}

fn refused() -> HttpResponse {
    HttpResponse::Unauthorized().json(json!({"error": {"code": "AF10001", "message": "The permission set () sent in the request does not include the expected permission."}}))
}

async fn token(tenant: web::Path<String>, form: web::Form<Vec<(String, String)>>, state: web::Data<Mutex<Published>>) -> HttpResponse {
    let mut published = state.lock().unwrap();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let valid = tenant.as_str() == CONTOSO_GUID.to_lowercase()
        && field("grant_type") == Some("client_credentials")
        && field("client_id") == Some(CLIENT_ID)
        && field("client_secret") == Some(CLIENT_SECRET)
        && field("scope") == Some("https://manage.office.com/.default");
    if !valid {
        published.violations.push(format!("a bad token request for {tenant}: {:?}", form.0));
        return HttpResponse::Unauthorized().json(json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}));
    }
    let token = format!("eyJ0.manage-token-{}", published.tokens.len() + 1);
    published.tokens.push(token.clone());
    HttpResponse::Ok().json(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": token}))
}

async fn listing(req: HttpRequest, tenant: web::Path<String>, query: web::Query<HashMap<String, String>>, state: web::Data<Mutex<Published>>, root: web::Data<String>) -> HttpResponse {
    let mut published = state.lock().unwrap();
    published.listings.push(format!("{}?{}", req.path(), req.query_string()));
    if !authorised(&req, &mut published) {
        return refused();
    }
    let time = |name: &str| {
        let value = query.get(name).cloned().unwrap_or_default();
        chrono::NaiveDateTime::parse_from_str(&value, "%Y-%m-%dT%H:%M:%S").map(|t| t.and_utc())
    };
    let (Ok(start), Ok(end)) = (time("startTime"), time("endTime")) else {
        return HttpResponse::BadRequest().json(json!({"error": {"code": "AF20055", "message": "Start time and end time must both be specified (or both omitted) and must be less than or equal to 24 hours apart."}}));
    };
    if end - start > chrono::Duration::hours(24) || query.get("contentType").map(String::as_str) != Some("Audit.SharePoint") {
        return HttpResponse::BadRequest().json(json!({"error": {"code": "AF20055", "message": "Start time and end time must be less than or equal to 24 hours apart."}}));
    }
    let items: Vec<Value> = published
        .listing
        .iter()
        .filter(|(t, _)| t == tenant.as_str())
        .map(|(_, item)| item.clone())
        .filter(|item| {
            let created = chrono::DateTime::parse_from_rfc3339(item["contentCreated"].as_str().unwrap()).unwrap();
            created >= start && created < end
        })
        .collect();
    let page: usize = query.get("nextPage").and_then(|p| p.parse().ok()).unwrap_or(0);
    let size = published.page_size;
    let shown: Vec<Value> = items.iter().skip(page * size).take(size).cloned().collect();
    let mut answer = HttpResponse::Ok();
    if items.len() > (page + 1) * size {
        let next = format!("{}{}?{}&nextPage={}", root.as_str(), req.path(), req.query_string().split("&nextPage").next().unwrap(), page + 1);
        answer.insert_header(("NextPageUri", next));
    }
    answer.json(shown)
}

async fn blob(req: HttpRequest, path: web::Path<(String, String)>, state: web::Data<Mutex<Published>>) -> HttpResponse {
    let hang = {
        let mut published = state.lock().unwrap();
        *published.fetches.entry(path.1.clone()).or_default() += 1;
        published.fetched_at.entry(path.1.clone()).or_default().push(std::time::Instant::now());
        if !authorised(&req, &mut published) {
            return refused();
        }
        if let Some(left) = published.failing.get_mut(&path.1).filter(|left| **left > 0) {
            *left = left.saturating_sub(1);
            let mut refusal = HttpResponse::ServiceUnavailable();
            if let Some(wait) = published.retry_after {
                refusal.insert_header(("Retry-After", wait));
            }
            return refusal.json(json!({"error": {"code": "AF429", "message": "Too many requests"}}));
        }
        published.hang_blobs
    };
    if hang {
        actix_web::rt::time::sleep(Duration::from_secs(3600)).await;
    }
    let published = state.lock().unwrap();
    match published.blobs.get(&path.1) {
        Some(records) => HttpResponse::Ok().json(records),
        None => HttpResponse::NotFound().json(json!({"error": {"code": "AF20022", "message": "No content found"}})),
    }
}

/// One "anyone" link click (six records, one alert), its ids and correlation made unique by `n`.
pub fn click(n: u32) -> Vec<Value> {
    anyone_link_click()
        .into_iter()
        .map(|mut record| {
            let id = record["Id"].as_str().unwrap().to_lowercase().replacen("0a000001", &format!("{n:08x}"), 1);
            record["Id"] = json!(id);
            record["CorrelationId"] = json!(format!("9f3c0a1e-5a6b-4c7d-8e9f-{n:012x}"));
            record
        })
        .collect()
}

/// The event id a click's link record becomes.
pub fn click_event(n: u32) -> String {
    format!("o365_{n:08x}-0000-0000-0000-000000000006")
}

/// A router fetching from `api`, with a webhook channel at `receiver` for every event, and the
/// tenant registered.
async fn router_for(api: &ManagementApi, receiver: &Receiver, configure: impl FnOnce(&mut O365Settings)) -> TestApp {
    let mut o365 = api.settings();
    configure(&mut o365);
    let app = spawn_app_with(move |settings| settings.o365 = Some(o365)).await;
    let channel = app.create_channel("SOC", &receiver.url("/")).await;
    app.route_everything_to(&[channel["id"].as_str().unwrap()]).await;
    let tenant = app.post("/api/v1/tenants", json!({"id": "contoso", "display_name": "Contoso Ltd", "microsoft_tenant_id": CONTOSO_GUID})).await;
    assert_eq!(tenant.status, 201, "{}", tenant.body);
    app
}

/// Posts notifications as the Management Activity API does (no bearer token).
pub async fn notify(app: &Api, auth_id: Option<&str>, body: Value) -> Answer {
    let mut request = http_client().post(format!("{}/api/v1/sources/o365/notifications", app.base)).insert_header(("content-type", "application/json; utf-8"));
    if let Some(id) = auth_id {
        request = request.insert_header(("Webhook-AuthID", id));
    }
    let mut response = request.send_body(body.to_string()).await.unwrap();
    let bytes = response.body().await.unwrap();
    Answer {
        status: response.status().as_u16(),
        content_type: response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// Waits until a blob has the status, and returns it as the API shows it.
pub async fn wait_for_content(app: &Api, content_id: &str, status: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let items = app.get("/api/v1/sources/o365/contents").await.body["items"].clone();
        let found = items.as_array().unwrap().iter().find(|c| c["content_id"] == content_id).cloned();
        if let Some(content) = found.filter(|c| c["status"] == status) {
            return content;
        }
        assert!(std::time::Instant::now() < deadline, "content {content_id} is not {status}: {items:#}");
        actix_web::rt::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The event ids the receiver got, in order.
pub fn delivered(receiver: &Receiver) -> Vec<String> {
    receiver.received().iter().map(|c| c.json()["event_id"].as_str().unwrap().to_string()).collect()
}

on_both_backends! {
    #[actix_web::test]
    async fn the_webhook_answers_the_validation_and_refuses_notifications_without_the_auth_id() {
        let api = ManagementApi::start();
        let receiver = Receiver::start().await;
        let app = router_for(&api, &receiver, |_| {}).await;
        let validation = notify(&app, Some(AUTH_ID), json!({"validationCode": "C6F4D37B-D478-44A2-8F66-C0C48E8F0A0E"})).await;
        assert_eq!(validation.status, 200, "{}", validation.body);

        let notification = api.publish("c-refused", click(1));
        for (auth_id, why) in [(None, "Webhook-AuthID header"), (Some("o365-webhook-auth-id-guess"), "not the one")] {
            let answer = notify(&app, auth_id, json!([notification])).await;
            assert_eq!((answer.status, answer.content_type.as_str()), (401, "application/problem+json"), "{}", answer.body);
            assert!(answer.body["detail"].as_str().unwrap().contains(why), "{}", answer.body);
        }
        // The router's own tokens are not the webhook's: a bearer token alone is refused too.
        let answer = app.post("/api/v1/sources/o365/notifications", json!([notification])).await;
        assert_eq!(answer.status, 401, "{}", answer.body);
        let garbage = notify(&app, Some(AUTH_ID), json!("not a notification")).await;
        assert_eq!((garbage.status, garbage.body["field"].as_str()), (422, Some("notifications")), "{}", garbage.body);
        assert_eq!(app.get("/api/v1/sources/o365/contents").await.body["items"], json!([]), "nothing was kept");
        assert_eq!(api.fetches("c-refused"), 0);

        // A router without the O365_* settings says how to turn the webhook on.
        let off = spawn_app().await;
        let answer = notify(&off, Some(AUTH_ID), json!({"validationCode": "x"})).await;
        assert_eq!(answer.status, 404);
        assert!(answer.body["detail"].as_str().unwrap().contains("O365_WEBHOOK_AUTH_ID"), "{}", answer.body);
    }

    #[actix_web::test]
    async fn a_notified_blob_is_fetched_once_in_the_background_and_its_click_is_one_alert() {
        let api = ManagementApi::start();
        let receiver = Receiver::start().await;
        let app = router_for(&api, &receiver, |_| {}).await;
        let notification = api.publish("c-click-7", click(7));
        let mut elsewhere = api.publish("c-elsewhere", click(8));
        elsewhere["contentUri"] = json!("http://127.0.0.1:9/api/v1.0/b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd/activity/feed/audit/c-elsewhere");
        let mut stranger = api.publish("c-stranger", click(9));
        stranger["tenantId"] = json!("00000000-1111-2222-3333-444444444444");
        stranger["contentUri"] = json!(format!("{}/api/v1.0/00000000-1111-2222-3333-444444444444/activity/feed/audit/c-stranger", api.base));
        // The tenant's own feed by its address, then dot segments spelled in percent-encoding out
        // of it into another tenant's: refused, with the reason, and never fetched.
        let mut dots = api.publish("c-dots", click(10));
        dots["contentUri"] = json!(format!(
            "{}/api/v1.0/b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd/activity/feed/audit/%2e%2e/%2E%2E/%2e%2e/%2e%2e/00000000-1111-2222-3333-444444444444/activity/feed/audit/c-stranger",
            api.base
        ));
        let answer = notify(&app, Some(AUTH_ID), json!([notification, elsewhere, stranger, dots])).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!((answer.body["kept"].as_i64(), answer.body["known"].as_i64()), (Some(1), Some(0)), "{}", answer.body);
        let skipped = answer.body["skipped"].as_array().unwrap();
        assert!(skipped[0]["reason"].as_str().unwrap().contains("is not fetched"), "a blob outside the API root is never fetched: {skipped:?}");
        assert!(skipped[1]["reason"].as_str().unwrap().contains("register it first"), "{skipped:?}");
        assert_eq!(skipped[2]["content_id"], "c-dots", "{skipped:?}");
        assert!(skipped[2]["reason"].as_str().unwrap().contains("percent-encoding"), "encoded dot segments are refused, never resolved: {skipped:?}");

        let got = receiver.wait_for(1, None, Duration::from_secs(20)).await;
        let payload = got[0].json();
        assert_eq!((payload["event_id"].as_str(), payload["event"].as_str()), (Some(click_event(7).as_str()), Some("permission.anonymous_link_created")));
        assert_eq!(payload["tenant"]["id"], "contoso");
        let content = wait_for_content(&app, "c-click-7", "done").await;
        assert_eq!((content["records"].as_i64(), content["attempts"].as_i64()), (Some(6), Some(1)), "{content:#}");

        // Microsoft notifies again (it does, on a slow answer): known, not fetched again.
        let again = notify(&app, Some(AUTH_ID), json!([notification])).await;
        assert_eq!((again.body["kept"].as_i64(), again.body["known"].as_i64()), (Some(0), Some(1)), "{}", again.body);
        // The same records in another blob (a listing may offer them twice): fetched, no new alert.
        let twin = api.publish("c-click-7-twin", click(7));
        notify(&app, Some(AUTH_ID), json!([twin])).await;
        wait_for_content(&app, "c-click-7-twin", "done").await;
        assert_eq!(api.fetches("c-click-7"), 1, "each blob is fetched once");
        assert_eq!(api.fetches("c-elsewhere") + api.fetches("c-stranger") + api.fetches("c-dots"), 0);
        assert_eq!(delivered(&receiver), [click_event(7)], "one alert for the click");
        assert_eq!(api.with(|p| (p.tokens.len(), p.violations.clone())), (1, vec![]), "one token, cached, with the right form and scope");

        let tenant = &app.get("/api/v1/tenants").await.body["items"][0];
        assert_eq!(tenant["audit"]["contents"], json!({"done": 2}), "{tenant:#}");
        assert_eq!(tenant["audit"]["last_24h"]["ingested"], 1, "{tenant:#}");
    }

    #[actix_web::test]
    async fn a_failing_blob_is_retried_until_it_arrives_and_one_that_expires_is_given_up_on() {
        let api = ManagementApi::start();
        let receiver = Receiver::start().await;
        let app = router_for(&api, &receiver, |_| {}).await;
        let flaky = api.publish("c-flaky", click(1));
        api.fail("c-flaky", 2);
        // The API's token is refused once on the way: one new token, and the fetch goes on.
        api.with(|p| p.expire_token = true);
        let doomed = api.publish_expiring("c-doomed", click(2), chrono::Utc::now() + chrono::Duration::milliseconds(1500));
        api.fail("c-doomed", usize::MAX);
        let answer = notify(&app, Some(AUTH_ID), json!([flaky, doomed])).await;
        assert_eq!(answer.body["kept"], 2, "{}", answer.body);

        let content = wait_for_content(&app, "c-flaky", "done").await;
        assert_eq!(content["attempts"], 3, "two 503s, then the blob: {content:#}");
        receiver.wait_for(1, None, Duration::from_secs(10)).await;
        let expired = wait_for_content(&app, "c-doomed", "expired").await;
        assert!(expired["last_error"].as_str().unwrap().contains("HTTP 503"), "{expired:#}");
        assert!(api.fetches("c-doomed") >= 2, "retried until it expired");
        assert_eq!(delivered(&receiver), [click_event(1)]);
        assert_eq!(api.with(|p| p.tokens.len()), 2, "the refused token was replaced once");
        let tenant = &app.get("/api/v1/tenants").await.body["items"][0];
        assert_eq!(tenant["audit"]["contents"], json!({"done": 1, "expired": 1}), "{tenant:#}");
        let listed = app.get("/api/v1/sources/o365/contents?status=expired").await;
        assert_eq!(listed.body["items"].as_array().unwrap().len(), 1, "{}", listed.body);
        assert_eq!(app.get("/api/v1/sources/o365/contents?status=lost").await.status, 422);
    }

    #[actix_web::test]
    async fn the_catch_up_listing_follows_every_page_and_fetches_what_no_notification_announced() {
        let api = ManagementApi::start();
        let receiver = Receiver::start().await;
        // Published before the router knows the tenant; listed every second.
        let app = router_for(&api, &receiver, |o365| o365.poll_interval = Duration::from_secs(1)).await;
        for n in 1..=5 {
            api.publish(&format!("c-missed-{n}"), click(n));
        }
        for n in 1..=5 {
            wait_for_content(&app, &format!("c-missed-{n}"), "done").await;
        }
        let mut got = delivered(&receiver);
        got.sort();
        assert_eq!(got, (1..=5).map(click_event).collect::<Vec<_>>(), "every blob of every page, each once");
        let listings = api.with(|p| p.listings.clone());
        assert!(listings.iter().any(|l| l.contains("nextPage=2")), "three pages of two were followed: {listings:#?}");
        assert!(listings.iter().all(|l| l.contains("contentType=Audit.SharePoint&startTime=")), "{listings:#?}");
        // Later listings find them again and fetch nothing more.
        let seen = listings.len();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while api.with(|p| p.listings.len()) < seen + 3 {
            assert!(std::time::Instant::now() < deadline, "the listing runs every O365_POLL_INTERVAL");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        assert!((1..=5).all(|n| api.fetches(&format!("c-missed-{n}")) == 1));
        assert_eq!(delivered(&receiver).len(), 5);
        let tenant = &app.get("/api/v1/tenants").await.body["items"][0];
        assert!(tenant["audit"]["last_listing_at"].is_string() && tenant["audit"]["listing_error"].is_null(), "{tenant:#}");
    }

    #[actix_web::test]
    async fn a_blob_larger_than_a_batch_keeps_each_click_together_and_alerts_once() {
        let api = ManagementApi::start();
        let receiver = Receiver::start().await;
        let app = router_for(&api, &receiver, |_| {}).await;
        let template = anyone_link_click()[3].clone();
        let mut records: Vec<Value> = (0..999u32)
            .map(|i| {
                let mut filler = template.clone();
                filler["Operation"] = json!("FileAccessed");
                filler["Id"] = json!(format!("f{i:07}-0000-0000-0000-000000000000"));
                filler["CorrelationId"] = json!(format!("f{i:07}"));
                filler
            })
            .collect();
        // The click's inheritance record lands last in the first thousand, the rest after it.
        let mut click = click(5);
        let broken = click.remove(3);
        records.push(broken);
        records.extend(click);
        let notification = api.publish("c-large", records);
        notify(&app, Some(AUTH_ID), json!([notification])).await;
        let content = wait_for_content(&app, "c-large", "done").await;
        assert_eq!(content["records"], 1005);
        receiver.wait_for(1, None, Duration::from_secs(10)).await;
        let tenant = &app.get("/api/v1/tenants").await.body["items"][0];
        assert_eq!(tenant["audit"]["last_24h"], json!({"ignored": 999, "folded": 5, "ingested": 1}), "{tenant:#}");
        assert_eq!(delivered(&receiver), [click_event(5)], "one alert, not one more for the inheritance record");
    }

    #[actix_web::test]
    async fn a_click_split_over_two_blobs_fetched_together_is_one_alert_and_retry_after_is_honoured() {
        let api = ManagementApi::start();
        let receiver = Receiver::start().await;
        let app = router_for(&api, &receiver, |_| {}).await;
        let records = click(11);
        let first = api.publish("c-part-1", records[..3].to_vec());
        let second = api.publish("c-part-2", records[3..].to_vec());
        let third = api.publish("c-busy", click(12));
        api.fail("c-busy", 1);
        api.with(|p| p.retry_after = Some("2"));
        let answer = notify(&app, Some(AUTH_ID), json!([first, second, third])).await;
        assert_eq!(answer.body["kept"], 3, "{}", answer.body);
        for content in ["c-part-1", "c-part-2", "c-busy"] {
            wait_for_content(&app, content, "done").await;
        }
        receiver.wait_for(2, None, Duration::from_secs(10)).await;
        let mut got = delivered(&receiver);
        got.sort();
        assert_eq!(got.len(), 2, "one alert for the split click, one for the other: {got:?}");
        assert!(got.contains(&click_event(12)), "{got:?}");
        let times = api.with(|p| p.fetched_at["c-busy"].clone());
        assert_eq!(times.len(), 2);
        assert!(times[1] - times[0] >= Duration::from_millis(1900), "the API asked for 2 s, the schedule says 100 ms: {:?}", times[1] - times[0]);
    }
}
