//! The Overview and the Channels page in real headless Chromium, at 1440×900 and 390×844: with a
//! channel whose circuit is open and one the router disabled, the Overview lists both under
//! "Needs attention" and never says nothing failed; the hourly chart draws the day's deliveries;
//! the Channels page shows each channel's sparkline and last delivery, labels every action for
//! screen readers, and **Probe now** closes the open circuit once its receiver is fixed.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{json, Value};
use spscan_router::domain::breaker::BreakerPolicy;

use crate::browser::{browser, Browser, DESKTOP, PHONE};
use crate::helpers::*;

/// The page's whole visible text.
async fn page_text(browser: &Browser) -> String {
    inner_text(browser, "#view").await
}

/// The `aria-label`s of the buttons in the channel's row.
async fn button_labels(browser: &Browser, channel_id: &str) -> Vec<String> {
    let buttons = browser.client.find_all(Locator::Css(&format!("tr[data-channel-id='{channel_id}'] button"))).await.unwrap();
    let mut labels = Vec::new();
    for button in buttons {
        labels.push(button.attr("aria-label").await.unwrap().unwrap_or_default());
    }
    labels
}

/// The rendered text of the first element matching `css`, read in one step.
async fn inner_text(browser: &Browser, css: &str) -> String {
    let script = "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';";
    browser.client.execute(script, vec![json!(css)]).await.unwrap().as_str().unwrap_or_default().to_string()
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "{what}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn the_overview_lists_an_open_circuit_and_a_disabled_channel_draws_the_day_and_probe_now_closes_the_circuit() {
    let failing = Receiver::start().await;
    failing.reply_with(Reply::Status(500));
    let gone = Receiver::start().await;
    gone.reply_with(Reply::Status(410));
    let healthy = Receiver::start().await;
    let app = spawn_app_with(|s| {
        s.breaker = BreakerPolicy { failures: 3, cooldown: Duration::from_secs(600) };
        s.delivery_concurrency = 1;
    })
    .await;
    app.create_tenant("contoso").await;
    let id = |c: Value| c["id"].as_str().unwrap().to_string();
    let soc = id(app.create_channel("SOC", &failing.url("/soc")).await);
    let old = id(app.create_channel("Old ticketing", &gone.url("/gone")).await);
    let ok = id(app.create_channel("Archive", &healthy.url("/archive")).await);
    // Contoso's events only: the router's own `router.channel_disabled` would add one more.
    app.create_rule(json!({"name": "Contoso", "tenant_id": "contoso", "event_types": ["permission.*"], "channel_ids": [&soc, &old, &ok]})).await;
    let events: Vec<Value> = (0..6).map(|_| permission_event("contoso", "permission.external_share_created", "high")).collect();
    assert_eq!(app.ingest(json!({ "events": events })).await.status, 202);
    wait_until("the circuit did not open, the 410 channel was not disabled, or Archive did not get all six", async || {
        let soc_open = app.get(&format!("/api/v1/channels/{soc}")).await.body["health"]["state"] == "open";
        let old_off = app.get(&format!("/api/v1/channels/{old}")).await.body["enabled"] == false;
        let archived = app.get(&format!("/api/v1/channels/{ok}")).await.body["stats"]["succeeded_24h"] == 6;
        soc_open && old_off && archived
    })
    .await;

    let browser = browser().await;
    browser.screen(DESKTOP).await;
    browser.sign_in(&app.base).await;

    // Needs attention: both, each with its log, its failures in a row, what waits, the next probe.
    for (size, name) in [(DESKTOP, "overview-desktop"), (PHONE, "overview-phone")] {
        browser.screen(size).await;
        browser.go(&app.base, "#/overview").await;
        // Read through a script: the self-refresh may replace an element between finding and reading it.
        browser.wait_for_text(&format!("[data-attention='{soc}']"), "circuit open").await;
        let soc_item = inner_text(&browser, &format!("[data-attention='{soc}']")).await;
        assert!(soc_item.contains("Failures in a row\n3") || soc_item.contains("Failures in a row 3"), "{soc_item}");
        assert!(soc_item.contains("6 deliveries") && soc_item.contains("Next probe"), "{soc_item}");
        browser.wait_for_text(&format!("[data-attention='{old}'] [data-disabled-channel]"), "Old ticketing was disabled by the router").await;
        let old_item = inner_text(&browser, &format!("[data-attention='{old}'] [data-disabled-channel]")).await;
        assert!(old_item.contains("410"), "{old_item}");
        let link = browser.client.find(Locator::Css(&format!("[data-attention='{soc}'] a.attention-name"))).await.unwrap();
        assert_eq!(link.attr("href").await.unwrap().unwrap(), format!("#/logs?channel_id={soc}"));
        assert!(browser.client.find(Locator::Css(&format!("[data-attention='{ok}']"))).await.is_err(), "Archive needs nothing");
        let text = page_text(&browser).await;
        for never in ["No channel failed", "Nothing needs attention", "0 failed"] {
            assert!(!text.contains(never), "the Overview says {never:?} with an open circuit: {text}");
        }
        assert!(text.contains("but 2 channels need attention"), "{text}");
        // The chart, with data, and its words for screen readers.
        let chart = browser.wait_for("figure[data-chart='hourly'] svg[role='img']").await;
        let label = chart.attr("aria-label").await.unwrap().unwrap();
        assert!(label.starts_with("18 deliveries in the last 24 hours") && label.contains("6 succeeded"), "{label}");
        assert!(!browser.client.find_all(Locator::Css("figure[data-chart='hourly'] rect.bar-succeeded")).await.unwrap().is_empty());
        assert!(!browser.client.find_all(Locator::Css("figure[data-chart='hourly'] rect.bar-pending")).await.unwrap().is_empty());
        // p50 and p95 of Archive's six attempts.
        browser.wait_for(&format!("tr[data-times-of='{ok}']")).await;
        let times = inner_text(&browser, &format!("tr[data-times-of='{ok}']")).await;
        assert!(times.matches(" ms").count() == 2, "{times}");
        browser.assert_fits(&format!("the Overview at {size:?}")).await;
        browser.screenshot(name).await;
    }

    // Refreshes by itself: a change shows without a reload, the scroll position kept.
    browser.screen(DESKTOP).await;
    browser.go(&app.base, "#/overview").await;
    browser.wait_for(&format!("[data-attention='{soc}']")).await;
    assert_eq!(app.patch(&format!("/api/v1/channels/{ok}"), json!({"enabled": false})).await.status, 200);
    browser.client.execute("window.scrollTo(0, 200)", vec![]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(25);
    while browser.client.find(Locator::Css(&format!("[data-attention='{ok}']"))).await.is_err() {
        assert!(Instant::now() < deadline, "the Overview did not refresh by itself");
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(browser.client.execute("return window.scrollY", vec![]).await.unwrap(), json!(200), "the refresh kept the scroll position");
    browser.wait_for_text(&format!("[data-attention='{ok}']"), "Disabled by a person").await;
    assert_eq!(app.patch(&format!("/api/v1/channels/{ok}"), json!({"enabled": true})).await.status, 200);

    // Channels: the sparkline, the last delivery, names that open the log, labelled actions.
    for (size, name) in [(DESKTOP, "channels-desktop"), (PHONE, "channels-phone")] {
        browser.screen(size).await;
        browser.go(&app.base, "#/channels").await;
        let spark = browser.wait_for(&format!("tr[data-channel-id='{ok}'] svg.sparkline")).await;
        assert!(spark.attr("aria-label").await.unwrap().unwrap().starts_with("Archive: 6 deliveries in the last 24 hours"));
        browser.wait_for_text(&format!("tr[data-channel-id='{ok}'] [data-last-delivery='succeeded']"), "delivered (HTTP 200)").await;
        browser.wait_for_text(&format!("tr[data-channel-id='{soc}'] [data-last-delivery='pending']"), "HTTP 500").await;
        assert!(browser.client.find(Locator::Css(&format!("tr[data-channel-id='{ok}'] .s-failed"))).await.is_err(), "no red badge for zero failures");
        let name_link = browser.client.find(Locator::Css(&format!("tr[data-channel-id='{ok}'] a.channel-name"))).await.unwrap();
        assert_eq!(name_link.attr("href").await.unwrap().unwrap(), format!("#/logs?channel_id={ok}"));
        assert_eq!(button_labels(&browser, &soc).await, ["Probe SOC now", "Test SOC", "Edit SOC", "Disable SOC", "Delete SOC"]);
        assert_eq!(button_labels(&browser, &ok).await, ["Test Archive", "Edit Archive", "Disable Archive", "Delete Archive"]);
        browser.assert_fits(&format!("the Channels page at {size:?}")).await;
        browser.screenshot(name).await;
    }

    // Probe now: the receiver is fixed, the probe goes at once, the circuit closes, all six arrive.
    browser.screen(DESKTOP).await;
    browser.go(&app.base, "#/channels").await;
    failing.reply_with(Reply::Status(200));
    let before = failing.received().len();
    browser.click_button(&format!("//tr[@data-channel-id='{soc}']"), "Probe now").await;
    failing.wait_for(before + 6, None, Duration::from_secs(15)).await;
    wait_until("the circuit did not close", async || app.get(&format!("/api/v1/channels/{soc}")).await.body["health"]["state"] == "closed").await;
    browser.go(&app.base, "#/overview").await;
    browser.wait_for(&format!("[data-attention='{old}']")).await;
    wait_until("SOC still needs attention", async || browser.client.find(Locator::Css(&format!("[data-attention='{soc}']"))).await.is_err()).await;
    browser.go(&app.base, "#/channels").await;
    browser.wait_for_text(&format!("tr[data-channel-id='{soc}'] [data-last-delivery='succeeded']"), "HTTP 200").await;
    assert_eq!(button_labels(&browser, &soc).await, ["Test SOC", "Edit SOC", "Disable SOC", "Delete SOC"], "no Probe now for a closed circuit");
    browser.assert_no_problems("the Overview and the Channels page").await;
    browser.client.clone().close().await.unwrap();
}

#[actix_web::test]
async fn with_nothing_to_attend_to_the_overview_says_so_plainly() {
    let receiver = Receiver::start().await;
    let app = spawn_app().await;
    app.soc_channel_for_contoso(&receiver).await;
    let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
    app.wait_for_status(answer.body["deliveries"][0]["id"].as_str().unwrap(), "succeeded", Duration::from_secs(10)).await;
    let browser = browser().await;
    browser.screen(DESKTOP).await;
    browser.sign_in(&app.base).await;
    browser.wait_for_text("[data-attention='none']", "Nothing needs attention").await;
    browser.wait_for_text("p.muted", "No channel failed in the last 24 hours.").await;
    let label = browser.wait_for("figure[data-chart='hourly'] svg[role='img']").await.attr("aria-label").await.unwrap().unwrap();
    assert!(label.starts_with("1 delivery in the last 24 hours: 1 succeeded"), "{label}");
    browser.assert_no_problems("an Overview with nothing to attend to").await;
    browser.client.clone().close().await.unwrap();
}

#[actix_web::test]
async fn a_deleted_channels_failure_still_counts_on_the_overview() {
    let refusing = Receiver::start().await;
    refusing.reply_with(Reply::Status(400));
    let app = spawn_app().await;
    let channel = app.soc_channel_for_contoso(&refusing).await["id"].as_str().unwrap().to_string();
    let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
    app.wait_for_status(answer.body["deliveries"][0]["id"].as_str().unwrap(), "failed", Duration::from_secs(10)).await;
    assert_eq!(app.delete(&format!("/api/v1/channels/{channel}")).await.status, 204);
    let stats = app.get("/api/v1/stats/deliveries?hours=24").await.body;
    let failed: i64 = stats["hourly"].as_array().unwrap().iter().map(|b| b["failed"].as_i64().unwrap()).sum();
    assert_eq!(failed, 1, "the statistics count the deleted channel's failure: {stats}");

    let browser = browser().await;
    browser.screen(DESKTOP).await;
    browser.sign_in(&app.base).await;
    browser.go(&app.base, "#/overview").await;
    browser.wait_for("div.tile.bad").await;
    let tile = inner_text(&browser, "div.tile.bad").await;
    assert!(tile.contains('1') && tile.contains("Failed, last 24 h"), "the Failed tile: {tile}");
    let text = page_text(&browser).await;
    for never in ["No channel failed", "No delivery used up its retries"] {
        assert!(!text.contains(never), "the Overview says {never:?} while the log holds a failure: {text}");
    }
    browser.assert_no_problems("an Overview after a failing channel was deleted").await;
    browser.client.clone().close().await.unwrap();
}
