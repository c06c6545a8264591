//! The alert log's search and the delivery page's "What was sent", in real headless Chromium at
//! 1440×900 and 390×844: a search finds the one delivery it should and the log says how many
//! match; a Slack delivery's page shows the exact Block Kit body Slack got, the webhook URL's
//! secret path masked, with Copy buttons; both views fit a phone.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::json;

use crate::browser::{browser, Browser, DESKTOP, PHONE};
use crate::helpers::*;

/// The text of the first element matching `css`, exactly as the DOM holds it.
async fn text_content(browser: &Browser, css: &str) -> String {
    let script = "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;";
    browser.client.execute(script, vec![json!(css)]).await.unwrap().as_str().unwrap_or_default().to_string()
}

/// Waits until the alert log lists exactly `ids` (in any order).
async fn wait_for_rows(browser: &Browser, ids: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let listed = browser.client.execute("return [...document.querySelectorAll('tr[data-delivery-id]')].map(r => r.dataset.deliveryId)", vec![]).await.unwrap();
        let mut listed: Vec<String> = serde_json::from_value(listed).unwrap_or_default();
        listed.sort();
        let mut wanted: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        wanted.sort();
        if listed == wanted {
            return;
        }
        assert!(Instant::now() < deadline, "the alert log lists {listed:?}, not {wanted:?}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_person_searches_the_alert_log_and_sees_the_exact_slack_body_that_was_sent_on_any_screen() {
    let receiver = Receiver::start().await;
    receiver.reply_with(Reply::Said(200, "ok"));
    let app = spawn_app().await;
    let answer = app.post("/api/v1/channels", json!({"name": "Slack SOC", "type": "slack", "url": receiver.url("/services/T0001/B0002/abcdEFGH1234"), "rate_limit_per_second": 100})).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let channel_id = answer.body["id"].as_str().unwrap().to_string();
    app.route_everything_to(&[&channel_id]).await;
    app.create_tenant("contoso").await;
    let mut wanted = permission_event("contoso", "permission.external_share_created", "high");
    wanted["data"]["principal"] = json!("zoë.o'brien@example.net");
    let other = permission_event("contoso", "permission.external_share_created", "low");
    let mut ids = Vec::new();
    for event in [wanted, other] {
        let answer = app.ingest(event).await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        let id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
        app.wait_for_status(&id, "succeeded", Duration::from_secs(10)).await;
        ids.push(id);
    }
    let got = receiver.received();
    let body_sent = got.iter().map(|r| String::from_utf8(r.body.clone()).unwrap()).find(|b| b.contains("o'brien")).expect("Slack got the event");

    let browser = browser().await;
    browser.sign_in(&app.base).await;
    for (screen, name) in [(DESKTOP, "desktop"), (PHONE, "phone")] {
        browser.screen(screen).await;
        // Another page's link to a channel's log keeps working.
        browser.go(&app.base, &format!("#/logs?status=succeeded&channel_id={channel_id}")).await;
        wait_for_rows(&browser, &[&ids[0], &ids[1]]).await;
        browser.wait_for_text("#log-total", "2 deliveries match").await;

        let search = browser.wait_for("#filter-q").await;
        search.clear().await.unwrap();
        search.send_keys("O'BRIEN").await.unwrap();
        browser.click_button("//form[@role='search']", "Search").await;
        wait_for_rows(&browser, &[&ids[0]]).await;
        browser.wait_for_text("#log-total", "1 delivery matches").await;
        let hash = browser.client.execute("return location.hash", vec![]).await.unwrap();
        assert!(hash.as_str().unwrap().contains("q=O%27BRIEN") && hash.as_str().unwrap().contains("status=succeeded"), "{hash}");
        browser.assert_fits(&format!("the alert log searched ({name})")).await;
        browser.screenshot(&format!("alert-logs-search-{name}")).await;
        // The filters are in the address: the same link shows the same view.
        browser.client.refresh().await.unwrap();
        wait_for_rows(&browser, &[&ids[0]]).await;

        browser.client.find(Locator::Css(&format!("tr[data-delivery-id='{}']", ids[0]))).await.unwrap().click().await.unwrap();
        browser.wait_for_text("#sent summary", "Attempt 1").await;
        let shown = text_content(&browser, "#sent [data-sent='body'] pre").await;
        assert_eq!(shown, body_sent, "the page shows the body Slack got");
        let url = text_content(&browser, "#sent [data-sent='url'] pre").await;
        assert_eq!(url, format!("POST http://127.0.0.1:{}/••••1234", receiver.port()));
        let page = text_content(&browser, "main").await + &text_content(&browser, "body").await;
        assert!(!page.contains("abcdEFGH"), "the secret path is nowhere on the page");
        let copies = browser.client.find_all(Locator::Css("#sent button.copy")).await.unwrap();
        assert!(copies.len() >= 4, "a Copy button for the request line, headers, body and answer");
        browser.client.find(Locator::Css("#sent [data-sent='body'] button.copy")).await.unwrap().click().await.unwrap();
        browser.wait_for_text("#sent [data-sent='body'] button.copy", "Copied").await;
        browser.assert_fits(&format!("a Slack delivery's page ({name})")).await;
        browser.assert_no_problems(&format!("the alert log and a delivery ({name})")).await;
        browser.client.execute("document.getElementById('sent').scrollIntoView()", vec![]).await.unwrap();
        browser.screenshot(&format!("delivery-{name}")).await;
    }
}

#[actix_web::test]
async fn the_log_offers_no_action_the_router_would_refuse() {
    let refusing = Receiver::start().await;
    refusing.reply_with(Reply::Status(400));
    let app = spawn_app().await;
    let channel = app.soc_channel_for_contoso(&refusing).await["id"].as_str().unwrap().to_string();
    let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
    let id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
    app.wait_for_status(&id, "failed", Duration::from_secs(10)).await;
    assert_eq!(app.delete(&format!("/api/v1/channels/{channel}")).await.status, 204);
    assert_eq!(app.post(&format!("/api/v1/deliveries/{id}/redeliver"), json!({})).await.status, 409, "the API refuses it");

    let browser = browser().await;
    browser.screen(DESKTOP).await;
    browser.sign_in(&app.base).await;
    // The delivery of a deleted channel: no Redeliver button, and why.
    browser.go(&app.base, &format!("#/logs/{id}")).await;
    browser.wait_for_text("[data-no-redeliver='channel']", "Cannot be redelivered: its channel was deleted").await;
    let buttons = browser.client.execute("return [...document.querySelectorAll('#view button')].map(b => b.textContent)", vec![]).await.unwrap();
    assert!(!buttons.as_array().unwrap().iter().any(|b| b == "Redeliver"), "{buttons}");
    browser.assert_no_problems("the page of a deleted channel's delivery").await;

    // A query the router refuses: its reason, and no page to page through.
    browser.go(&app.base, "#/logs?since=yesterday").await;
    browser.wait_for_text("[data-log-error]", "since").await;
    let paging = browser
        .client
        .execute("return [...document.querySelectorAll('#view button')].filter(b => ['Older', 'Newer'].includes(b.textContent) && b.offsetParent !== null).map(b => b.textContent)", vec![])
        .await
        .unwrap();
    assert_eq!(paging, json!([]), "Older or Newer shown under a refused query");
    browser.client.clone().close().await.unwrap();
}
