//! The `email` channel type against a real SMTP server on 127.0.0.1 (`smtp_server`): a message
//! per event with both parts and hostile data escaped, a grouped notification as one message,
//! STARTTLS with a test certificate, a `451` retried, a `550` final, refused credentials final
//! with a clear message, XOAUTH2 with a client-credentials token, the Test button, a server
//! whose certificate is not trusted, mail without TLS only to listed networks, and the admin
//! page's form.

use std::collections::HashMap;
use std::sync::Once;
use std::time::Duration;

use serde_json::{json, Value};
use spscan_router::outbound::{FixedNames, Names};

use crate::helpers::{permission_event, spawn_app_with, Receiver, Reply, TestApp};
use crate::smtp_server::{SmtpServer, SMTP_HOST};

const WITHIN: Duration = Duration::from_secs(10);

/// A router that resolves the test server's name to 127.0.0.1, and trusts the server's test CA.
async fn app_for(server: &SmtpServer) -> TestApp {
    static TRUSTED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(spscan_router::outbound::install_crypto_provider);
    {
        let mut trusted = TRUSTED.lock().unwrap();
        if !trusted.contains(&server.ca_pem) {
            spscan_router::outbound::trust_mail_root(server.ca_pem.as_bytes()).unwrap();
            trusted.push(server.ca_pem.clone());
        }
    }
    spawn_app_with(|settings| {
        let table = HashMap::from([(SMTP_HOST.to_string(), vec!["127.0.0.1".parse().unwrap()])]);
        settings.names = Names(std::sync::Arc::new(FixedNames(table)));
    })
    .await
}

/// An email channel to the test server (STARTTLS, signed in with a password) and a rule
/// sending every event of `contoso` to it. Returns the channel.
async fn email_channel(app: &TestApp, server: &SmtpServer, extra: Value) -> Value {
    let mut body = json!({"name": "SOC mail", "type": "email", "host": SMTP_HOST,
        "port": server.port, "from": "spscan-alerts@contoso.com", "to": ["soc@contoso.com", "oncall@contoso.com"],
        "username": "spscan-alerts@contoso.com", "password": "correct-horse-battery"});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            body.as_object_mut().unwrap().remove(k);
        } else {
            body[k] = v.clone();
        }
    }
    let created = app.post("/api/v1/channels", body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let channel = created.body;
    app.route_everything_to(&[channel["id"].as_str().unwrap()]).await;
    app.create_tenant("contoso").await;
    channel
}

/// The id of the one delivery of the event just ingested.
async fn delivery_of(app: &TestApp, answer: &crate::helpers::Answer) -> String {
    let _ = app;
    assert_eq!(answer.status, 202, "{}", answer.body);
    answer.body["deliveries"][0]["id"].as_str().unwrap_or_else(|| panic!("no delivery: {}", answer.body)).to_string()
}

on_both_backends! {
    #[actix_web::test]
    async fn an_event_becomes_one_message_with_both_parts_and_its_hostile_data_shown_as_text() {
        let server = SmtpServer::start();
        let app = app_for(&server).await;
        let channel = email_channel(&app, &server, json!({})).await;
        assert_eq!(channel["password"], "••••tery", "the password is write-only");
        assert_eq!((&channel["tls"], &channel["port"], &channel["host"]), (&json!("starttls"), &json!(server.port), &json!(SMTP_HOST)));
        let mut event = permission_event("contoso", "permission.external_share_created", "high");
        event["data"]["principal"] = json!("<img src=x onerror=alert(1)>");
        event["data"]["resource_path"] = json!("[click](http://evil.example)");
        let answer = app.ingest(event).await;
        let delivery_id = delivery_of(&app, &answer).await;
        let delivery = app.wait_for_status(&delivery_id, "succeeded", WITHIN).await;
        let mails = server.wait_for(1, WITHIN).await;
        assert_eq!(mails.len(), 1);
        let mail = &mails[0];
        assert!(mail.tls, "sent after STARTTLS");
        assert_eq!(mail.auth.as_ref().map(|(m, u, p)| (m.as_str(), u.as_str(), p.as_str())), Some(("PLAIN", "spscan-alerts@contoso.com", "correct-horse-battery")));
        assert_eq!(mail.from, "spscan-alerts@contoso.com");
        assert_eq!(mail.to, ["soc@contoso.com", "oncall@contoso.com"]);
        assert_eq!(mail.header("From").unwrap(), "spscan-alerts@contoso.com");
        assert_eq!(mail.header("To").unwrap(), "soc@contoso.com, oncall@contoso.com");
        assert_eq!(mail.header("Subject").unwrap(), "[SPScan] HIGH: External share created (contoso Ltd)");
        assert_eq!(mail.header("Message-ID").unwrap(), format!("<{delivery_id}@contoso.com>"));
        assert!(mail.header("Content-Type").unwrap().starts_with("multipart/alternative"));
        let text = mail.part("text/plain");
        assert!(text.contains("Principal: <img src=x onerror=alert(1)>"), "{text}");
        let html = mail.part("text/html");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"), "{html}");
        assert!(!html.contains("<img") && !html.contains("<a ") && !html.contains("href"), "no image, no link: {html}");
        assert!(html.contains("[click](http://evil.example)"), "Markdown stays text: {html}");
        // The delivery page shows the message as sent, and no credential.
        let sent = &delivery["attempts"][0]["request"];
        assert_eq!(sent["method"], "SMTP");
        assert_eq!(sent["url"], format!("smtp://{SMTP_HOST}:{}", server.port));
        assert!(sent["body"].as_str().unwrap().contains(&format!("Message-ID: <{delivery_id}@contoso.com>")), "{sent}");
        assert!(!sent.to_string().contains("correct-horse"), "{sent}");
    }

    #[actix_web::test]
    async fn later_events_of_an_incident_reply_to_its_first_message_and_another_incident_starts_a_thread() {
        let server = SmtpServer::start();
        let app = app_for(&server).await;
        email_channel(&app, &server, json!({})).await;
        let at_site = |severity: &str, site: &str| {
            let mut event = permission_event("contoso", "permission.external_share_created", severity);
            event["data"]["site_url"] = json!(site);
            event
        };
        let finance = "https://contoso.sharepoint.com/sites/Finance";
        let mut ids = Vec::new();
        for event in [at_site("high", finance), at_site("critical", finance), at_site("low", "https://contoso.sharepoint.com/sites/HR")] {
            let answer = app.ingest(event).await;
            let id = delivery_of(&app, &answer).await;
            app.wait_for_status(&id, "succeeded", WITHIN).await;
            ids.push(id);
        }
        let mails = server.wait_for(3, WITHIN).await;
        let first_id = format!("<{}@contoso.com>", ids[0]);
        let first_subject = mails[0].header("Subject").unwrap();
        assert_eq!((mails[0].header("Message-ID").unwrap(), mails[0].header("In-Reply-To")), (first_id.clone(), None));
        // The second event of the incident replies to the first, under the first's subject.
        assert_eq!(mails[1].header("Message-ID").unwrap(), format!("<{}@contoso.com>", ids[1]));
        assert_eq!(mails[1].header("In-Reply-To").unwrap(), first_id);
        assert_eq!(mails[1].header("References").unwrap(), first_id);
        assert_eq!(mails[1].header("Subject").unwrap(), format!("Re: {first_subject}"), "severity changes go in the body");
        assert!(mails[1].part("text/plain").contains("CRITICAL"), "{}", mails[1].part("text/plain"));
        // Another site is another incident: a thread of its own.
        assert_eq!(mails[2].header("In-Reply-To"), None);
        assert!(!mails[2].header("Subject").unwrap().starts_with("Re: "));
        assert_eq!(app.delivery(&ids[1]).await["attempt_count"], 1);
    }

    #[actix_web::test]
    async fn a_grouped_notification_is_one_message() {
        let server = SmtpServer::start();
        let app = app_for(&server).await;
        let channel = email_channel(&app, &server, json!({})).await;
        let id = channel["id"].as_str().unwrap();
        app.create_rule(json!({"name": "Grouped", "event_types": ["*"], "min_severity": "low", "channel_ids": [id],
            "priority": 1, "group": {"by": ["/tenant/id"], "wait": "300ms", "interval": "1m"}})).await;
        for _ in 0..3 {
            let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "medium")).await;
            assert_eq!(answer.status, 202, "{}", answer.body);
        }
        let mails = server.wait_for(1, WITHIN).await;
        let subject = mails[0].header("Subject").unwrap();
        assert!(subject.contains("3 × External share created"), "{subject}");
        let text = mails[0].part("text/plain");
        assert_eq!(text.matches("- MEDIUM: External share created").count(), 3, "{text}");
    }

    #[actix_web::test]
    async fn a_451_is_retried_and_the_retry_is_the_same_message() {
        let server = SmtpServer::start();
        let app = app_for(&server).await;
        email_channel(&app, &server, json!({})).await;
        server.script_data(&["451 4.7.1 Greylisted, try again later"]);
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery_id = delivery_of(&app, &answer).await;
        let delivery = app.wait_for_status(&delivery_id, "succeeded", WITHIN).await;
        let attempts = delivery["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2, "{delivery:#}");
        assert_eq!((&attempts[0]["status_code"], &attempts[0]["error_kind"]), (&json!(451), &json!("smtp_reply")));
        assert!(attempts[0]["response_excerpt"].as_str().unwrap().contains("Greylisted"), "{}", attempts[0]);
        let mails = server.wait_for(1, WITHIN).await;
        assert_eq!(mails[0].header("Message-ID").unwrap(), format!("<{delivery_id}@contoso.com>"));
    }

    #[actix_web::test]
    async fn a_550_is_final_and_one_accepted_recipient_is_enough() {
        let server = SmtpServer::start();
        let app = app_for(&server).await;
        email_channel(&app, &server, json!({})).await;
        server.refuse_recipient("oncall@contoso.com", "550 5.1.1 User unknown");
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let partly = delivery_of(&app, &answer).await;
        app.wait_for_status(&partly, "succeeded", WITHIN).await;
        assert_eq!(server.wait_for(1, WITHIN).await[0].to, ["soc@contoso.com"]);
        server.refuse_recipient("soc@contoso.com", "550 5.1.1 User unknown");
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "critical")).await;
        let refused = delivery_of(&app, &answer).await;
        let delivery = app.wait_for_status(&refused, "failed", WITHIN).await;
        let attempts = delivery["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "not retried: {delivery:#}");
        assert_eq!(attempts[0]["status_code"], 550);
        assert!(attempts[0]["error"].as_str().unwrap().contains("not retried"), "{}", attempts[0]);
        assert_eq!(server.connections(), 1, "the connection was kept for the next message");
    }

    #[actix_web::test]
    async fn refused_credentials_are_final_and_say_what_to_check() {
        let server = SmtpServer::start();
        let app = app_for(&server).await;
        email_channel(&app, &server, json!({})).await;
        server.refuse_auth("535 5.7.8 Authentication credentials invalid");
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery_id = delivery_of(&app, &answer).await;
        let delivery = app.wait_for_status(&delivery_id, "failed", WITHIN).await;
        let attempts = delivery["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "{delivery:#}");
        assert_eq!(attempts[0]["status_code"], 535);
        let error = attempts[0]["error"].as_str().unwrap();
        assert!(error.contains("`username` and `password`"), "{error}");
        assert!(server.received().is_empty());
    }

    #[actix_web::test]
    async fn xoauth2_signs_in_with_the_app_registrations_token() {
        let server = SmtpServer::start();
        let app = app_for(&server).await;
        let entra = Receiver::start().await;
        entra.reply_with(Reply::Said(200, r#"{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ0.exchange-token"}"#));
        email_channel(&app, &server, json!({"auth": "xoauth2", "password": null, "directory_id": "contoso.onmicrosoft.com",
            "client_id": "00000000-0000-0000-0000-000000000001", "client_secret": "app-secret", "authority": entra.url("/").trim_end_matches('/')})).await;
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery_id = delivery_of(&app, &answer).await;
        app.wait_for_status(&delivery_id, "succeeded", WITHIN).await;
        let mails = server.wait_for(1, WITHIN).await;
        assert_eq!(mails[0].auth.clone().unwrap(), ("XOAUTH2".to_string(), "spscan-alerts@contoso.com".to_string(), "eyJ0.exchange-token".to_string()));
        let grant = &entra.received()[0];
        assert_eq!(grant.path, "/contoso.onmicrosoft.com/oauth2/v2.0/token");
        assert!(String::from_utf8_lossy(&grant.body).contains("scope=https%3A%2F%2Foutlook.office365.com%2F.default"));
    }

    #[actix_web::test]
    async fn test_sends_a_marked_message_and_a_grouped_sample_as_one() {
        let server = SmtpServer::start();
        let app = app_for(&server).await;
        let channel = email_channel(&app, &server, json!({})).await;
        let id = channel["id"].as_str().unwrap();
        let test = app.post(&format!("/api/v1/channels/{id}/test"), json!({})).await;
        assert_eq!(test.status, 200, "{}", test.body);
        assert_eq!(test.body["ok"], true, "{}", test.body);
        let mails = server.wait_for(1, WITHIN).await;
        assert!(mails[0].header("Subject").unwrap().starts_with("[SPScan TEST] "), "{:?}", mails[0].header("Subject"));
        let group = app.post(&format!("/api/v1/channels/{id}/test"), json!({"sample": "group"})).await;
        assert_eq!(group.body["ok"], true, "{}", group.body);
        let mails = server.wait_for(2, WITHIN).await;
        assert!(mails[1].header("Subject").unwrap().contains(" × "), "{:?}", mails[1].header("Subject"));
        assert_eq!(app.get("/api/v1/deliveries").await.body["items"], json!([]), "Tests leave no delivery");
    }

    #[actix_web::test]
    async fn implicit_tls_speaks_tls_from_the_first_byte() {
        let server = SmtpServer::start_implicit();
        let app = app_for(&server).await;
        email_channel(&app, &server, json!({"tls": "implicit"})).await;
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery_id = delivery_of(&app, &answer).await;
        let delivery = app.wait_for_status(&delivery_id, "succeeded", WITHIN).await;
        assert!(server.wait_for(1, WITHIN).await[0].tls);
        assert_eq!(delivery["attempts"][0]["request"]["url"], format!("smtps://{SMTP_HOST}:{}", server.port));
    }

    #[actix_web::test]
    async fn a_server_whose_certificate_is_not_trusted_gets_nothing() {
        // Its CA is not given to the router: STARTTLS must fail, and no password is sent.
        let server = SmtpServer::start();
        let app = spawn_app_with(|settings| {
            let table = HashMap::from([(SMTP_HOST.to_string(), vec!["127.0.0.1".parse().unwrap()])]);
            settings.names = Names(std::sync::Arc::new(FixedNames(table)));
        })
        .await;
        email_channel(&app, &server, json!({})).await;
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery_id = delivery_of(&app, &answer).await;
        let delivery = app.wait_for_attempts(&delivery_id, 1, WITHIN).await;
        let attempt = &delivery["attempts"][0];
        assert_eq!(attempt["error_kind"], "tls", "{attempt}");
        assert!(attempt["error"].as_str().unwrap().contains("certificate"), "{attempt}");
        assert!(server.received().is_empty());
        assert!(server.signed_in().is_empty(), "no credential went out");
    }

    #[actix_web::test]
    async fn mail_without_tls_only_goes_to_networks_the_allowlist_names() {
        let app = spawn_app_with(|settings| {
            // A public address: the guard lets TLS mail go there, but not mail in the clear.
            let table = HashMap::from([("relay.example".to_string(), vec!["93.184.216.34".parse().unwrap()])]);
            settings.names = Names(std::sync::Arc::new(FixedNames(table)));
        })
        .await;
        let created = app.post("/api/v1/channels", json!({"name": "Relay", "type": "email", "host": "relay.example", "tls": "none",
            "from": "spscan-alerts@contoso.com", "to": ["soc@contoso.com"]})).await;
        assert_eq!(created.status, 201, "{}", created.body);
        assert_eq!(created.body["port"], 25);
        app.route_everything_to(&[created.body["id"].as_str().unwrap()]).await;
        app.create_tenant("contoso").await;
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery_id = delivery_of(&app, &answer).await;
        let delivery = app.wait_for_status(&delivery_id, "failed", WITHIN).await;
        let attempt = &delivery["attempts"][0];
        assert_eq!(attempt["error_kind"], "blocked_target", "{attempt}");
        assert!(attempt["error"].as_str().unwrap().contains("tls: none"), "{attempt}");
        assert_eq!(delivery["attempts"].as_array().unwrap().len(), 1, "not retried");
    }

    #[actix_web::test]
    async fn moving_a_channel_to_another_server_takes_its_password_again() {
        let server = SmtpServer::start();
        let app = app_for(&server).await;
        let channel = email_channel(&app, &server, json!({})).await;
        let path = format!("/api/v1/channels/{}", channel["id"].as_str().unwrap());
        let moved = app.patch(&path, json!({"host": "smtp.other.example"})).await;
        assert_eq!(moved.status, 422, "{}", moved.body);
        assert!(moved.body.to_string().contains("password"), "{}", moved.body);
        let moved = app.patch(&path, json!({"host": "smtp.other.example", "password": "another-one"})).await;
        assert_eq!(moved.status, 200, "{}", moved.body);
        assert_eq!(moved.body["host"], "smtp.other.example");
        assert!(!moved.body.to_string().contains("another-one"), "write-only: {}", moved.body);
        let refused = app.patch(&path, json!({"host": "https://smtp.other.example/"})).await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.body.to_string().contains("\"host\""), "{}", refused.body);
        // The preview shows the message as it would go out.
        let preview = app.post("/api/v1/channel-types/email/preview", json!({"settings": {"from": "alerts@contoso.com", "to": ["soc@contoso.com"]}})).await;
        assert_eq!(preview.status, 200, "{}", preview.body);
        assert_eq!(preview.body["content_type"], "message/rfc822");
        assert!(preview.body["body_text"].as_str().unwrap().contains("Subject: [SPScan TEST] HIGH: External share created"), "{}", preview.body);
    }

    #[actix_web::test]
    async fn bad_settings_are_refused_naming_the_field() {
        let server = SmtpServer::start();
        let app = app_for(&server).await;
        for (settings, host, field) in [
            (json!({"from": "alerts@contoso.com", "to": "soc@contoso.com, not-an-address"}), SMTP_HOST, "to"),
            (json!({"from": "alerts", "to": ["soc@contoso.com"]}), SMTP_HOST, "from"),
            (json!({"from": "alerts@contoso.com", "to": ["soc@contoso.com"], "tls": "ssl"}), SMTP_HOST, "tls"),
            (json!({"from": "alerts@contoso.com", "to": ["soc@contoso.com"]}), "smtp://smtp.test:587", "host"),
            (json!({"from": "alerts@contoso.com", "to": ["soc@contoso.com"]}), "169.254.169.254", "host"),
            (json!({"to": ["soc@contoso.com"]}), SMTP_HOST, "from"),
        ] {
            let mut body = settings.clone();
            body["name"] = json!("Mail");
            body["type"] = json!("email");
            body["host"] = json!(host);
            let answer = app.post("/api/v1/channels", body).await;
            assert_eq!(answer.status, 422, "{settings} {host}: {}", answer.body);
            assert!(answer.body.to_string().contains(&format!("\"{field}\"")), "{field}: {}", answer.body);
        }
        // The form sends `to` as one text: it is stored as a list.
        let answer = app.post("/api/v1/channels", json!({"name": "Mail", "type": "email", "host": SMTP_HOST,
            "from": "alerts@contoso.com", "to": "soc@contoso.com, oncall@contoso.com", "tls": "none", "port": "2525"})).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        assert_eq!(answer.body["to"], json!(["soc@contoso.com", "oncall@contoso.com"]));
        assert_eq!(answer.body["port"], 2525);
        assert_eq!(answer.body["host"], SMTP_HOST, "{}", answer.body);
    }
}

/// The admin page's Add channel form (built from the registry) takes an email channel, its
/// recipients as one comma-separated text, shows a bad address by its field, and Test sends the
/// marked message.
#[actix_web::test]
async fn an_email_channel_is_added_from_the_form_and_tested_in_the_browser() {
    use crate::browser::browser;
    use crate::helpers::{start_router_with, Backend, TestDatabase, ADMIN_TOKEN, INGEST_TOKEN};
    use fantoccini::Locator;
    let server = SmtpServer::start();
    let database = TestDatabase::on(Backend::Sqlite);
    let router = start_router_with(&database.url, &[("ADMIN_TOKEN", ADMIN_TOKEN), ("INGEST_TOKEN", INGEST_TOKEN)]).0;
    let browser = browser().await;
    browser.sign_in(&router.api.base).await;
    browser.client.find(Locator::LinkText("Channels")).await.unwrap().click().await.unwrap();
    let form = "//form[@aria-label='Add channel']";
    browser.click_button("", "Add channel").await;
    browser.wait_for("form[aria-label='Add channel'] select[name='type']").await.select_by_value("email").await.unwrap();
    browser.wait_for_text("form[aria-label='Add channel'] label", "SMTP server").await;
    // The relay on 127.0.0.1 is in ALLOWED_TARGET_NETWORKS, so it may go without TLS.
    let port = server.port.to_string();
    for (label, value) in [
        ("Name", "SOC mailbox"),
        ("SMTP server", "127.0.0.1"),
        ("Port", port.as_str()),
        ("Encryption", "none"),
        ("From", "spscan-alerts@contoso.com"),
        ("To", "soc@contoso.com, not-an-address"),
    ] {
        browser.fill(form, label, value).await;
    }
    browser.click_button(form, "Save").await;
    browser.wait_for_text("[data-field='to'] .error", "not-an-address").await;
    browser.only_refused(422, "/api/v1/channels").await;
    browser.fill(form, "To", "soc@contoso.com, oncall@contoso.com").await;
    browser.click_button(form, "Save").await;
    browser.wait_for_text("tbody tr", "SOC mailbox").await;
    browser.click_button("//tr[td//strong[normalize-space()='SOC mailbox']]", "Test").await;
    browser.wait_for_text("[data-test-result='ok']", "SMTP 250").await;
    let mails = server.wait_for(1, WITHIN).await;
    assert_eq!(mails[0].to, ["soc@contoso.com", "oncall@contoso.com"]);
    assert!(mails[0].header("Subject").unwrap().starts_with("[SPScan TEST] "));
    let channels = router.api.get("/api/v1/channels").await.body;
    assert_eq!(channels["items"][0]["to"], json!(["soc@contoso.com", "oncall@contoso.com"]));
    browser.screenshot("channels-email").await;
    browser.assert_no_problems("adding an email channel").await;
    browser.client.clone().close().await.unwrap();
}
