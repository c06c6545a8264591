//! The first run in the admin page (issue 29), in real headless Chromium at 1440×900 and 390×844:
//! an empty router shows the Get started checklist and Connect SPScan, walked to the end (tenant,
//! a channel to a real receiver, rule, a test event the receiver gets and the page reports); the
//! Add channel form marks required fields, explains a refused value in words, previews a Slack
//! message before saving and then adds the channel to a rule in place; the rule form offers the
//! router's own events.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{json, Value};

use crate::browser::{browser, Browser, DESKTOP, PHONE};
use crate::helpers::*;

/// Clicks the element matching `xpath`, looking again if the view re-rendered meanwhile.
async fn click(browser: &Browser, xpath: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(element) = browser.client.find(Locator::XPath(xpath)).await {
            if element.is_displayed().await.unwrap_or(false) && element.click().await.is_ok() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "nothing to click at `{xpath}`");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `script` (which returns a value) in the page.
async fn run(browser: &Browser, script: &str) -> Value {
    browser.client.execute(script, vec![]).await.expect("the page answers")
}

fn step(key: &str) -> String {
    format!("//li[@data-step='{key}']")
}

#[actix_web::test]
async fn a_new_user_walks_the_first_run_checklist_from_an_empty_router_to_a_delivery_on_a_laptop_and_a_phone() {
    for (screen, name) in [(DESKTOP, "desktop"), (PHONE, "phone")] {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let browser = browser().await;
        browser.screen(screen).await;
        browser.sign_in(&app.base).await;

        // An empty router: four steps to do, and how to connect SPScan.
        browser.wait_for("[data-firstrun='open']").await;
        for key in ["tenant", "channel", "rule", "test"] {
            browser.wait_for(&format!("li[data-step='{key}'][data-done='false']")).await;
        }
        let connect = browser.wait_for("[data-connect]").await.text().await.unwrap();
        assert!(connect.contains(&format!("{}/api/v1/events", app.base)), "{connect}");
        assert!(connect.contains("Bearer $INGEST_TOKEN") && connect.contains("INGEST_TOKEN=spr_ingest_"), "{connect}");
        let page = run(&browser, "return document.body.innerText").await;
        assert!(!page.as_str().unwrap().contains(ADMIN_TOKEN), "the admin token is printed in the page");
        browser.assert_fits(&format!("the first run on an empty router ({name})")).await;
        run(&browser, "document.activeElement.blur(); window.scrollTo(0, 0); return null").await;
        browser.screenshot(&format!("first-run-{name}")).await;
        click(&browser, "//section[@data-connect]//button[normalize-space()='Copy curl command']").await;
        browser.wait_for_text("#toast", "curl command").await;

        // 1. The tenant, in place.
        browser.click_button(&step("tenant"), "Add tenant").await;
        let form = "//form[@aria-label='Add tenant']";
        browser.wait_for("li[data-step='tenant'] form[aria-label='Add tenant']").await;
        browser.fill(form, "Tenant ID", "contoso").await;
        browser.fill(form, "Display name", "Contoso Ltd").await;
        browser.fill(form, "Microsoft tenant ID", "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd").await;
        browser.click_button(form, "Save").await;
        browser.wait_for("li[data-step='tenant'][data-done='true']").await;

        // 2. A webhook channel to the receiver; its secret is shown once.
        browser.click_button(&step("channel"), "Add channel").await;
        let form = "//form[@aria-label='Add channel']";
        browser.wait_for("li[data-step='channel'] form[aria-label='Add channel'] input[name='name']").await;
        browser.fill(form, "Name", "SOC webhook").await;
        browser.fill(form, "URL", &receiver.url("/first-run")).await;
        browser.assert_fits(&format!("the checklist's channel form ({name})")).await;
        browser.click_button(form, "Save").await;
        browser.wait_for("li[data-step='channel'][data-done='true']").await;
        browser.wait_for_text("li[data-step='channel'] [aria-label='Signing secret'] code", "whsec_").await;

        // 3. A rule, filled in for the channel.
        browser.click_button(&step("rule"), "Add rule").await;
        let form = "//form[@aria-label='Add rule']";
        browser.wait_for("li[data-step='rule'] form[aria-label='Add rule']").await;
        let ticked = run(&browser, "return [...document.querySelectorAll('form[aria-label=\"Add rule\"] input[type=checkbox]:checked')].map(b => b.value)").await;
        let ticked: Vec<&str> = ticked.as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert!(ticked.contains(&"permission.*") && ticked.iter().any(|v| v.starts_with("ch_")), "{ticked:?}");
        browser.click_button(form, "Save").await;
        browser.wait_for("li[data-step='rule'][data-done='true']").await;

        // 4. A real event through the rules: the receiver gets it, and the page says so.
        browser.click_button(&step("test"), "Send a test event").await;
        let outcome = browser.wait_for_text("ul.test-outcome li[data-status='succeeded']", "delivered").await.text().await.unwrap();
        assert!(outcome.contains("SharePoint alerts") && outcome.contains("SOC webhook") && outcome.contains("HTTP 200"), "{outcome}");
        let got = receiver.wait_for(1, Some("/first-run"), Duration::from_secs(10)).await;
        assert_eq!((&got[0].json()["event"], &got[0].json()["tenant"]["id"]), (&json!("permission.external_share_created"), &json!("contoso")));
        browser.wait_for("li[data-step='test'][data-done='true']").await;
        browser.assert_fits(&format!("the checklist walked to the end ({name})")).await;

        // The delivery it links to is the one the receiver got.
        click(&browser, "//ul[contains(@class,'test-outcome')]//a[normalize-space()='Open the delivery']").await;
        browser.wait_for("#payload").await;
        let delivery = app.get("/api/v1/deliveries").await.body["items"][0].clone();
        let url = browser.client.current_url().await.unwrap();
        assert!(url.as_str().ends_with(&format!("#/logs/{}", delivery["id"].as_str().unwrap())), "{url}");

        // Every step done: the Overview no longer shows the checklist, only a link to it.
        browser.go(&app.base, "#/overview").await;
        browser.wait_for_text(".firstrun-link", "Connect SPScan").await;
        assert!(browser.client.find(Locator::Css("[data-firstrun]")).await.is_err(), "the checklist stays on a router in use");
        browser.go(&app.base, "#/start").await;
        browser.wait_for("[data-firstrun='done']").await;
        // The curl the panel offers, run as written with the ingest token: the event is taken.
        let curl = browser.wait_for("[data-connect] pre.curl").await.text().await.unwrap();
        // Off the test's thread: the router under test answers on it.
        let script = format!("timeout 20 {curl}");
        let ran = actix_web::rt::task::spawn_blocking(move || std::process::Command::new("bash").arg("-c").arg(script).env("INGEST_TOKEN", INGEST_TOKEN).output())
            .await
            .unwrap()
            .expect("bash runs");
        let answer: Value = serde_json::from_slice(&ran.stdout).unwrap_or_else(|_| panic!("{curl}: {}", String::from_utf8_lossy(&ran.stderr)));
        assert_eq!((answer["duplicate"].as_bool(), answer["deliveries"].as_array().map(Vec::len)), (Some(false), Some(1)), "{curl}: {answer}");
        receiver.wait_for(2, Some("/first-run"), Duration::from_secs(10)).await;
        browser.assert_no_problems(&format!("walking the first run ({name})")).await;
        browser.client.clone().close().await.unwrap();
    }
}

#[actix_web::test]
async fn the_add_channel_form_marks_what_is_required_explains_errors_previews_slack_and_adds_the_channel_to_a_rule() {
    let app = spawn_app().await;
    app.create_tenant("contoso").await;
    let slack = Receiver::start().await;
    slack.reply_with(Reply::Said(200, "ok"));
    let browser = browser().await;
    browser.sign_in(&app.base).await;
    // On a laptop a new rule is created for the first channel; on a phone the second joins it.
    for (screen, name, channel, path) in [(DESKTOP, "desktop", "Slack #soc", "/services/T1/B1/soc0042"), (PHONE, "phone", "Slack #ops", "/services/T1/B2/ops0042")] {
        browser.screen(screen).await;
        browser.client.find(Locator::LinkText("Channels")).await.unwrap().click().await.unwrap();
        browser.click_button("", "Add channel").await;
        let form = "//form[@aria-label='Add channel']";
        // Teams too draws its card before saving: title, facts and the link button.
        browser.wait_for("form[aria-label='Add channel'] select[name='type']").await.select_by_value("teams").await.unwrap();
        browser.wait_for_text("[data-preview='teams'] .msg-title", "HIGH: External share created (test)").await;
        browser.wait_for_text("[data-preview='teams'] .msg-facts", "outsider@example.net").await;
        browser.wait_for_text("[data-preview='teams'] .msg-button", "Open site on spscan-test.sharepoint.com").await;
        browser.wait_for("form[aria-label='Add channel'] select[name='type']").await.select_by_value("slack").await.unwrap();

        // Required fields say so: the attribute, aria-required, and a visible mark by the label.
        let marks = run(&browser, "return ['name', 'url'].map(n => { const input = document.querySelector(`form[aria-label='Add channel'] [name='${n}']`);
            const label = document.querySelector(`label[for='${input.id}']`);
            return [input.required, input.getAttribute('aria-required'), getComputedStyle(label, '::after').content]; })").await;
        assert_eq!(marks, json!([[true, "true", "\" *\""], [true, "true", "\" *\""]]), "{name}");
        browser.wait_for_text("form[aria-label='Add channel'] .required-note", "marked * are required").await;

        // The message Slack will show, before anything is saved: text, fields and the context line.
        let preview = browser.wait_for_text("[data-preview='slack'] .msg-title", "HIGH: External share created (test)").await;
        assert!(preview.is_displayed().await.unwrap());
        browser.wait_for_text("[data-preview='slack'] .msg-fields", "outsider@example.net").await;
        browser.wait_for_text("[data-preview='slack'] .msg-context", "permission.external_share_created").await;

        // A refused URL is explained in words, by the field's label.
        browser.fill(form, "Name", channel).await;
        browser.fill(form, "Slack webhook URL", "ftp://hooks.slack.com/services/x").await;
        browser.click_button(form, "Save").await;
        let error = browser.wait_for_text("[data-field='url'] .error", "The Slack webhook URL must start with https://").await.text().await.unwrap();
        assert!(!error.contains("url:") && !error.contains('`'), "{error}");
        browser.only_refused(422, "/api/v1/channels").await;
        browser.assert_fits(&format!("the Add channel form with a preview and an error ({name})")).await;
        if name == "desktop" {
            browser.screenshot("add-channel-slack-preview-desktop").await;
        }
        // Another type: the error said of the Slack URL goes with it.
        browser.wait_for("form[aria-label='Add channel'] select[name='type']").await.select_by_value("teams").await.unwrap();
        let errors = run(&browser, "return [...document.querySelectorAll(\"form[aria-label='Add channel'] .error\")].filter(e => !e.hidden && e.textContent.trim()).map(e => e.textContent)").await;
        assert_eq!(errors, json!([]), "{name}: an error of the last type stayed after switching to Teams");
        browser.wait_for("form[aria-label='Add channel'] select[name='type']").await.select_by_value("slack").await.unwrap();

        browser.fill(form, "Slack webhook URL", &slack.url(path)).await;
        browser.click_button(form, "Save").await;
        let offer = "//section[@data-rule-offer]";
        browser.wait_for_text("[data-rule-offer] h2", &format!("Send alerts to {channel}")).await;
        let created = app.get("/api/v1/channels").await.body["items"].as_array().unwrap().iter().find(|c| c["name"] == channel).unwrap().clone();
        let channel_id = created["id"].as_str().unwrap().to_string();
        if name == "desktop" {
            browser.click_button(offer, "Create a rule for it").await;
            let rule_form = format!("{offer}//form[@aria-label='Add rule']");
            browser.wait_for("[data-rule-offer] form[aria-label='Add rule']").await;
            browser.click_button(&rule_form, "Save").await;
            browser.wait_for_text("[data-rule-offer-done]", &format!("Rule “Alerts to {channel}” created")).await;
        } else {
            browser.assert_fits("the offer to add the channel to a rule (phone)").await;
            browser.click_button(offer, "Add to rule").await;
            browser.wait_for_text("[data-rule-offer-done]", &format!("{channel} added to rule “Alerts to Slack #soc”")).await;
        }
        let rules = app.get("/api/v1/rules").await.body;
        assert_eq!(rules["items"].as_array().unwrap().len(), 1, "{rules:#}");
        assert!(rules["items"][0]["channel_ids"].as_array().unwrap().contains(&json!(channel_id)), "{name}: {rules:#}");
    }
    // Both channels get the rule's events.
    assert_eq!(app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await.status, 202);
    let got = slack.wait_for(2, None, Duration::from_secs(10)).await;
    let mut paths: Vec<&str> = got.iter().map(|c| c.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["/services/T1/B1/soc0042", "/services/T1/B2/ops0042"]);
    browser.assert_no_problems("adding channels to rules from the offer").await;
    browser.client.clone().close().await.unwrap();
}

#[actix_web::test]
async fn the_rule_form_offers_the_routers_own_events_with_what_they_are() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let ops = app.create_channel("Ops", &receiver.url("/ops")).await;
    let browser = browser().await;
    browser.sign_in(&app.base).await;
    for (screen, name) in [(DESKTOP, "desktop"), (PHONE, "phone")] {
        browser.screen(screen).await;
        browser.client.find(Locator::LinkText("Rules")).await.unwrap().click().await.unwrap();
        browser.click_button("", "Add rule").await;
        let form = "//form[@aria-label='Add rule']";
        for code in ["router.*", "router.channel_disabled", "permission.*", "storage.*"] {
            browser.client.find(Locator::XPath(&format!("{form}//label[code='{code}']/input"))).await.unwrap_or_else(|_| panic!("no {code} offered ({name})"));
        }
        let help = browser.wait_for("[data-router-events]").await.text().await.unwrap();
        assert!(help.contains("router.channel_disabled") && help.contains("All tenants"), "{help}");
        browser.assert_fits(&format!("the rule form ({name})")).await;
        if name == "desktop" {
            browser.fill(form, "Name", "Router").await;
            click(&browser, &format!("{form}//label[code='router.*']/input")).await;
            click(&browser, &format!("{form}//label[normalize-space()='Ops']/input")).await;
            browser.click_button(form, "Save").await;
            browser.wait_for_text("tbody tr", "router.*").await;
        }
    }
    let rules = app.get("/api/v1/rules").await.body;
    assert_eq!((&rules["items"][0]["event_types"], &rules["items"][0]["channel_ids"][0]), (&json!(["router.*"]), &ops["id"]));
    browser.assert_no_problems("offering router events in the rule form").await;
    browser.client.clone().close().await.unwrap();
}
