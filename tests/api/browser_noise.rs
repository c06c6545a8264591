//! Noise control in the admin page (SPEC section 16), in real headless Chromium at 1440×900: a
//! rule built in the form (conditions, priority, grouping) with the API's 422s shown by the
//! right input, reopened with the same values; a tree the builder cannot show kept as JSON; the
//! alert log's grouped deliveries linked to their notification; the Overview counting them apart
//! from failures.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{json, Value};

use crate::browser::{browser, Browser};
use crate::helpers::*;

const FINANCE: &str = "https://contoso.sharepoint.com/sites/Finance";

/// The `value` property of the element matching `css`.
async fn value_of(browser: &Browser, css: &str) -> String {
    let element = browser.client.find(Locator::Css(css)).await.unwrap_or_else(|_| panic!("no `{css}`"));
    element.prop("value").await.unwrap().unwrap_or_default()
}

async fn is_checked(browser: &Browser, css: &str) -> bool {
    let element = browser.client.find(Locator::Css(css)).await.unwrap_or_else(|_| panic!("no `{css}`"));
    element.prop("checked").await.unwrap().as_deref() == Some("true")
}

/// Replaces the text of the input matching `css`.
async fn type_into(browser: &Browser, css: &str, text: &str) {
    let input = browser.client.find(Locator::Css(css)).await.unwrap_or_else(|_| panic!("no `{css}`"));
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

async fn choose(browser: &Browser, css: &str, value: &str) {
    browser.wait_for(css).await.select_by_value(value).await.unwrap();
}

/// Clicks the element matching `css`, looking again if the view re-rendered meanwhile.
async fn click(browser: &Browser, css: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(element) = browser.client.find(Locator::Css(css)).await {
            if element.is_displayed().await.unwrap_or(false) && element.click().await.is_ok() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "nothing to click at `{css}`");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A rule as the API answers it, without the time it was last changed.
async fn rule_as_stored(app: &TestApp, id: &str) -> Value {
    let mut rule = app.get(&format!("/api/v1/rules/{id}")).await.body;
    rule.as_object_mut().unwrap().remove("updated_at");
    rule
}

/// Saves the form and waits until the API has the rule changed (its `updated_at` moved on).
async fn save_unchanged(browser: &Browser, app: &TestApp, id: &str) {
    let before = app.get(&format!("/api/v1/rules/{id}")).await.body["updated_at"].clone();
    browser.click_button("//form[@aria-label='Edit rule']", "Save").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.get(&format!("/api/v1/rules/{id}")).await.body["updated_at"] == before {
        assert!(Instant::now() < deadline, "the form did not save rule {id}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    browser.wait_for_text("tbody tr", "Edit").await;
}

#[actix_web::test]
async fn a_person_builds_a_grouping_rule_in_the_form_reopens_it_and_follows_its_grouped_deliveries() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let channel = app.create_channel("Shares", &receiver.url("/shares")).await;
    app.create_tenant("contoso").await;
    let browser = browser().await;
    browser.client.set_window_size(1440, 900).await.unwrap();
    browser.sign_in(&app.base).await;

    // The form: name, types, channel, two conditions, priority and grouping.
    browser.client.find(Locator::LinkText("Rules")).await.unwrap().click().await.unwrap();
    browser.click_button("", "Add rule").await;
    let form = "//form[@aria-label='Add rule']";
    let css = "form[aria-label='Add rule']";
    browser.fill(form, "Name", "Finance shares").await;
    browser.client.find(Locator::XPath(&format!("{form}//label[code='permission.*']/input"))).await.unwrap().click().await.unwrap();
    browser.client.find(Locator::XPath(&format!("{form}//label[normalize-space()='Shares']/input"))).await.unwrap().click().await.unwrap();
    browser.click_button(form, "+ Add condition").await;
    browser.click_button(form, "+ Add condition").await;
    let row = |i: usize, part: &str| format!("{css} .cond-row:nth-child({}) {part}", i + 1);
    type_into(&browser, &row(0, "input.path"), "/data/site_url").await;
    choose(&browser, &row(0, "select.op"), "prefix").await;
    type_into(&browser, &row(0, "input.value-text"), "https://contoso.sharepoint.com/sites/fin").await;
    click(&browser, &row(0, ".ignore-case input")).await;
    // A pointer without its leading slash: the API's answer is shown on that row.
    type_into(&browser, &row(1, "input.path"), "data/access_level").await;
    choose(&browser, &row(1, "select.op"), "in").await;
    type_into(&browser, &row(1, "input.value-text"), "edit, full_control").await;
    browser.fill(form, "Priority", "10").await;
    click(&browser, &format!("{css} fieldset[data-path='group'] legend input")).await;
    browser.fill(form, "Wait", "10s").await;
    browser.fill(form, "Interval", "2s").await;
    browser.click_button(form, "Save").await;
    let shown = browser.wait_for_text(&row(1, ".error"), "Condition 2, path").await.text().await.unwrap();
    assert!(shown.contains('/'), "says what a pointer looks like: {shown}");
    browser.client.execute("document.querySelector('.conditions').scrollIntoView()", vec![]).await.unwrap();
    browser.screenshot("rule-form-conditions").await;
    browser.only_refused(422, "/api/v1/rules").await;
    type_into(&browser, &row(1, "input.path"), "/data/access_level").await;
    browser.click_button(form, "Save").await;
    // Wait longer than interval: shown by the Wait input.
    browser.wait_for_text(&format!("{css} [data-path='group.wait'] + .hint + .error"), "Wait: ").await;
    browser.only_refused(422, "/api/v1/rules").await;
    browser.fill(form, "Wait", "1s").await;
    browser
        .wait_for_text(&format!("{css} [data-help='group']"), "One message per site every 2 s, the first 1 s after its first event.")
        .await;
    browser.screenshot("rule-form-noise").await;
    browser.click_button(form, "Save").await;
    let listed = browser.wait_for_text("tbody tr td[data-noise]", "grouped per site").await.text().await.unwrap();
    assert!(listed.contains("priority 10") && listed.contains("when all of 2 conditions hold"), "{listed}");
    browser.screenshot("rules-noise-summary").await;

    let rules = app.get("/api/v1/rules").await.body;
    let id = rules["items"][0]["id"].as_str().unwrap().to_string();
    let saved = rule_as_stored(&app, &id).await;
    assert_eq!(saved["priority"], 10);
    assert_eq!(
        saved["conditions"],
        json!({"all": [
            {"path": "/data/site_url", "op": "prefix", "value": "https://contoso.sharepoint.com/sites/fin", "case_insensitive": true},
            {"path": "/data/access_level", "op": "in", "value": ["edit", "full_control"]},
        ]})
    );
    assert_eq!(saved["group"], json!({"by": ["/data/site_url"], "wait": "1s", "interval": "2s"}));
    assert_eq!((&saved["suppress"], &saved["active_hours"]), (&Value::Null, &Value::Null));

    // Reopened, the form shows every value; saved unchanged, the rule is the same.
    browser.click_button("//tr[td//strong[normalize-space()='Finance shares']]", "Edit").await;
    let css = "form[aria-label='Edit rule']";
    let row = |i: usize, part: &str| format!("{css} .cond-row:nth-child({}) {part}", i + 1);
    browser.wait_for(&row(1, "input.path")).await;
    assert_eq!(browser.client.find_all(Locator::Css(&format!("{css} .cond-row"))).await.unwrap().len(), 2);
    assert_eq!(value_of(&browser, &format!("{css} select.join")).await, "all");
    assert_eq!(value_of(&browser, &row(0, "input.path")).await, "/data/site_url");
    assert_eq!(value_of(&browser, &row(0, "select.op")).await, "prefix");
    assert_eq!(value_of(&browser, &row(0, "input.value-text")).await, "https://contoso.sharepoint.com/sites/fin");
    assert!(is_checked(&browser, &row(0, ".ignore-case input")).await);
    assert_eq!(value_of(&browser, &row(1, "input.path")).await, "/data/access_level");
    assert_eq!(value_of(&browser, &row(1, "select.op")).await, "in");
    assert_eq!(value_of(&browser, &row(1, "input.value-text")).await, "edit, full_control");
    assert_eq!(value_of(&browser, &format!("{css} input[name='priority']")).await, "10");
    assert!(is_checked(&browser, &format!("{css} fieldset[data-path='group'] legend input")).await);
    assert_eq!(value_of(&browser, &format!("{css} fieldset[data-path='group'] .by-row input")).await, "/data/site_url");
    assert_eq!(value_of(&browser, &format!("{css} [data-path='group.wait']")).await, "1s");
    assert_eq!(value_of(&browser, &format!("{css} [data-path='group.interval']")).await, "2s");
    assert!(!is_checked(&browser, &format!("{css} fieldset[data-path='suppress'] legend input")).await);
    save_unchanged(&browser, &app, &id).await;
    assert_eq!(rule_as_stored(&app, &id).await, saved, "a round trip through the form changes nothing");

    // Three matching shares are grouped; the group's one notification reaches the receiver.
    for principal in ["a@gmail.com", "b@gmail.com", "c@gmail.com"] {
        let mut event = permission_event("contoso", "permission.external_share_created", "high");
        event["data"]["site_url"] = json!(FINANCE);
        event["data"]["principal"] = json!(principal);
        let answer = app.ingest(event).await;
        assert_eq!(answer.body["deliveries"][0]["status"], "grouped", "{}", answer.body);
    }
    let got = receiver.wait_for(1, None, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["group"]["count"], 3);

    // The alert log offers the status; a grouped row is not a failure and links its notification.
    browser.client.find(Locator::LinkText("Alert logs")).await.unwrap().click().await.unwrap();
    choose(&browser, "#filter-status", "grouped").await;
    let grouped = app.get("/api/v1/deliveries?status=grouped").await.body;
    let notification_id = grouped["items"][0]["notification_id"].as_str().expect("the group flushed").to_string();
    let link = format!("tr[data-status='grouped'] a[data-notification='{notification_id}']");
    browser.wait_for_text(&link, "in its notification").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while browser.client.find_all(Locator::Css("tbody tr[data-status='grouped']")).await.unwrap().len() != 3 {
        assert!(Instant::now() < deadline, "the three grouped deliveries are not listed");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let colours = browser
        .client
        .execute(
            "const style = (css) => getComputedStyle(document.querySelector(css)).color;
             const failed = document.createElement('span'); failed.className = 'badge s-failed'; document.body.append(failed);
             const answer = [style('tr[data-status=grouped] .badge'), getComputedStyle(failed).color]; failed.remove(); return answer;",
            vec![],
        )
        .await
        .unwrap();
    assert_ne!(colours[0], colours[1], "a grouped delivery does not look like a failure");
    let page = browser.client.find(Locator::Css("#view")).await.unwrap().text().await.unwrap();
    assert!(!page.contains("null"), "{page}");
    browser.screenshot("alert-logs-grouped").await;
    click(&browser, &link).await;
    browser.wait_for_text("h1", &notification_id).await;
    browser.wait_for_text("[data-grouped-in] h2", "Events in this notification (3)").await;
    assert_eq!(browser.client.find_all(Locator::Css("[data-grouped-in] tbody tr")).await.unwrap().len(), 3);
    browser.wait_for_text(".badge", "succeeded").await;
    browser.screenshot("notification-delivery").await;
    let members = app.get(&format!("/api/v1/deliveries?notification_id={notification_id}")).await.body;
    assert_eq!(members["items"].as_array().unwrap().len(), 3);
    assert!(members["items"].as_array().unwrap().iter().all(|d| d["status"] == "grouped" && d["channel_id"] == channel["id"]));

    // The Overview counts them apart from failures.
    browser.client.find(Locator::LinkText("Overview")).await.unwrap().click().await.unwrap();
    assert_eq!(browser.wait_for("[data-held='grouped'] .n").await.text().await.unwrap(), "3");
    let tile = |label: &str| format!("//div[contains(@class,'tile')][div[normalize-space()='{label}']]/div[contains(@class,'n')]");
    assert_eq!(browser.client.find(Locator::XPath(&tile("Failed, last 24 h"))).await.unwrap().text().await.unwrap(), "0");
    assert_eq!(browser.client.find(Locator::XPath(&tile("Succeeded, last 24 h"))).await.unwrap().text().await.unwrap(), "1", "the notification");
    browser.wait_for_text("p.muted", "No channel failed in the last 24 hours.").await;
    browser.screenshot("overview-noise").await;
    browser.assert_no_problems("building a grouping rule and following its deliveries").await;
    browser.client.clone().close().await.unwrap();
}

#[actix_web::test]
async fn conditions_the_builder_cannot_show_are_kept_as_json_and_every_field_survives_the_form() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let channel = app.create_channel("Shares", &receiver.url("/")).await;
    let nested = json!({"any": [
        {"not": {"path": "/data/principal", "op": "suffix", "value": "@contoso.com", "case_insensitive": true}},
        {"all": [{"path": "/data/threshold", "op": "gte", "value": 90}, {"path": "/event", "op": "eq", "value": "storage.quota_exceeded"}]},
    ]});
    let hours = json!([
        {"timezone": "Europe/London", "days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "18:00"},
        {"timezone": "America/New_York", "days": ["sat"], "from": "22:00", "to": "02:00", "invert": true},
    ]);
    let rule = app
        .create_rule(json!({"name": "Outsiders and full sites", "event_types": ["*"], "channel_ids": [channel["id"]],
                            "conditions": nested, "active_hours": hours, "suppress": {"by": ["/data/principal"], "for": "24h"}}))
        .await;
    let id = rule["id"].as_str().unwrap().to_string();
    let stored = rule_as_stored(&app, &id).await;
    let browser = browser().await;
    browser.client.set_window_size(1440, 900).await.unwrap();
    browser.sign_in(&app.base).await;
    browser.client.find(Locator::LinkText("Rules")).await.unwrap().click().await.unwrap();
    let listed = browser.wait_for_text("tbody tr td[data-noise]", "nested").await.text().await.unwrap();
    assert!(listed.contains("repeats of the same principal held for 24h"), "{listed}");
    assert!(listed.contains("active Monday to Friday, 08:00 to 18:00 (Europe/London)"), "{listed}");

    // The nested tree opens in the JSON box, as written; the other sections show their values.
    browser.click_button("//tr[td//strong[normalize-space()='Outsiders and full sites']]", "Edit").await;
    let css = "form[aria-label='Edit rule']";
    let box_text = value_of(&browser, &format!("{css} textarea.cond-json")).await;
    assert_eq!(serde_json::from_str::<Value>(&box_text).unwrap(), stored["conditions"]);
    browser.wait_for_text(&format!("{css} .cond-note"), "kept exactly as written").await;
    // The builder refuses to flatten it.
    browser.click_button("//form[@aria-label='Edit rule']", "Back to the builder").await;
    browser.wait_for_text(&format!("{css} .conditions > .error"), "keep editing them as JSON").await;
    assert_eq!(value_of(&browser, &format!("{css} [data-path='suppress.for']")).await, "24h");
    assert_eq!(browser.client.find_all(Locator::Css(&format!("{css} .window"))).await.unwrap().len(), 2);
    browser
        .wait_for_text(&format!("{css} [data-help='active_hours']"), "during any of: Monday to Friday, 08:00 to 18:00 (Europe/London)")
        .await;
    browser.wait_for_text(&format!("{css} [data-help='active_hours']"), "outside Sat, 22:00 to 02:00 the next day (America/New_York)").await;
    browser.wait_for_text(&format!("{css} [data-help='suppress']"), "A repeat with the same principal is not sent again for 24 hours").await;
    browser.wait_for_text(&format!("{css} .siem"), "Splunk and Sentinel channels receive every event").await;
    browser.screenshot("rule-form-json").await;
    save_unchanged(&browser, &app, &id).await;
    assert_eq!(rule_as_stored(&app, &id).await, stored, "nothing dropped or rewritten");

    // A mistake inside the JSON is shown by the box, naming the path.
    browser.click_button("//tr[td//strong[normalize-space()='Outsiders and full sites']]", "Edit").await;
    let broken = box_text.replace("\"gte\"", "\"greater\"");
    type_into(&browser, &format!("{css} textarea.cond-json"), &broken).await;
    browser.click_button("//form[@aria-label='Edit rule']", "Save").await;
    browser.wait_for_text(&format!("{css} .cond-advanced > .error"), "conditions.any[1].all[0].op").await;
    browser.only_refused(422, &format!("/api/v1/rules/{id}")).await;

    // A repeat is suppressed: its row links the delivery that was sent. The rule's hours go
    // first, so this part does not depend on the clock (they leave it off on weekends in London
    // and on Saturday nights in New York).
    let cleared = app.patch(&format!("/api/v1/rules/{id}"), json!({"active_hours": null})).await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    app.create_tenant("contoso").await;
    let first = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
    let first_id = first.body["deliveries"][0]["id"].as_str().unwrap().to_string();
    let repeat = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
    assert_eq!(repeat.body["deliveries"][0]["status"], "suppressed", "{}", repeat.body);
    browser.client.find(Locator::LinkText("Alert logs")).await.unwrap().click().await.unwrap();
    let link = format!("tr[data-status='suppressed'] a[data-suppressed-by='{first_id}']");
    browser.wait_for_text(&link, "repeat of an earlier one").await;
    click(&browser, &link).await;
    browser.wait_for_text("h1", &first_id).await;
    browser.assert_no_problems("editing a nested rule").await;
    browser.client.clone().close().await.unwrap();
}
