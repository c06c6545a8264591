//! The admin page on any screen (issue 29), in real headless Chromium: with a router holding real
//! data (two tenants, a channel of every type, rules with conditions and grouping, succeeded,
//! failed, grouped and silenced deliveries, a silence), every view and every form fits a 390×844
//! phone and a 1440×900 laptop with each action reachable; dark mode follows the system; times
//! show their zone; no view prints `null`; a tenant's page shows its own rules, channels and log.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{json, Value};

use crate::browser::{browser, Browser, DESKTOP, PHONE};
use crate::helpers::*;

/// What the router under test holds, by the ids the tests look for.
struct Holding {
    app: TestApp,
    _good: Receiver,
    _bad: Receiver,
    /// A failed delivery of contoso's, and a notification (a group's message).
    failed: String,
    notification: String,
    contoso_deliveries: Vec<String>,
    fabrikam_deliveries: Vec<String>,
}

async fn post(app: &TestApp, path: &str, body: Value) -> Value {
    let answer = app.post(path, body).await;
    assert_eq!(answer.status, 201, "{path}: {}", answer.body);
    answer.body
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn a_router_in_use() -> Holding {
    use crate::siem::{CLIENT_ID, CLIENT_SECRET, DCR, DIRECTORY, HEC_TOKEN, STREAM};
    let app = spawn_app().await;
    let good = Receiver::start().await;
    let bad = Receiver::start().await;
    bad.reply_with(Reply::Status(500));
    app.create_tenant("contoso").await;
    post(&app, "/api/v1/tenants", json!({"id": "fabrikam", "display_name": "Fabrikam Incorporated International",
        "microsoft_tenant_id": "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"})).await;
    let soc = app.create_channel("SOC webhook", &good.url("/a/rather/long/path/that/goes/on/and/on/for/the/phone")).await;
    let failing = app.create_channel("Failing receiver", &bad.url("/bad")).await;
    let slack = post(&app, "/api/v1/channels", json!({"name": "Slack #soc", "type": "slack", "url": good.url("/services/T0/B0/SeCrEt0042")})).await;
    let teams = post(&app, "/api/v1/channels", json!({"name": "Teams SOC", "type": "teams", "url": good.url("/teams")})).await;
    post(&app, "/api/v1/channels", json!({"name": "Splunk", "type": "splunk", "url": "http://127.0.0.1:9", "token": HEC_TOKEN, "index": "security"})).await;
    post(&app, "/api/v1/channels", json!({"name": "Sentinel", "type": "sentinel", "endpoint": "http://127.0.0.1:9", "dcr_immutable_id": DCR,
        "stream_name": STREAM, "directory_id": DIRECTORY, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "authority": "http://127.0.0.1:9"})).await;
    app.create_rule(json!({"name": "Contoso shares", "tenant_id": "contoso", "event_types": ["permission.*"], "min_severity": "medium",
        "channel_ids": [id(&soc), id(&failing)],
        "conditions": {"all": [{"path": "/data/access_level", "op": "in", "value": ["edit", "full_control"]}]}})).await;
    app.create_rule(json!({"name": "Everything grouped per site", "event_types": ["*"], "min_severity": "low", "channel_ids": [id(&slack)],
        "group": {"by": ["/data/site_url"], "wait": "1s", "interval": "2s"}})).await;
    app.create_rule(json!({"name": "Fabrikam links", "tenant_id": "fabrikam", "event_types": ["permission.*"], "min_severity": "high",
        "channel_ids": [id(&teams)]})).await;

    let mut contoso_deliveries = vec![];
    let mut fabrikam_deliveries = vec![];
    for _ in 0..2 {
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        contoso_deliveries.extend(answer.body["deliveries"].as_array().unwrap().iter().map(id));
        let answer = app.ingest(permission_event("fabrikam", "permission.anonymous_link_created", "critical")).await;
        fabrikam_deliveries.extend(answer.body["deliveries"].as_array().unwrap().iter().map(id));
    }
    // A silence from now on: fabrikam's next event is held.
    post(&app, "/api/v1/silences", json!({"matchers": {"path": "/tenant/id", "op": "eq", "value": "fabrikam"}, "duration": "2h",
        "comment": "Maintenance window at Fabrikam", "created_by": "alex"})).await;
    let answer = app.ingest(permission_event("fabrikam", "permission.anonymous_link_created", "critical")).await;
    assert!(answer.body["deliveries"].as_array().unwrap().iter().any(|d| d["status"] == "silenced"), "{}", answer.body);
    fabrikam_deliveries.extend(answer.body["deliveries"].as_array().unwrap().iter().map(id));

    let failed = app.get(&format!("/api/v1/deliveries?channel_id={}", id(&failing))).await.body["items"][0]["id"].as_str().unwrap().to_string();
    app.wait_for_status(&failed, "failed", Duration::from_secs(20)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let notification = loop {
        let grouped = app.get("/api/v1/deliveries?status=grouped").await.body;
        if let Some(n) = grouped["items"].as_array().unwrap().iter().find_map(|d| d["notification_id"].as_str()) {
            break n.to_string();
        }
        assert!(Instant::now() < deadline, "no group was sent: {grouped:#}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    Holding { app, _good: good, _bad: bad, failed, notification, contoso_deliveries, fabrikam_deliveries }
}

/// Fails if the view shows `null`, `undefined`, `NaN` or `[object …]` as text (a payload shown
/// as JSON and the text in form fields aside).
async fn assert_no_placeholder_text(browser: &Browser, when: &str) {
    let text = browser
        .client
        .execute(
            "const view = document.getElementById('view').cloneNode(true); view.querySelectorAll('pre, textarea').forEach((e) => e.remove());
             document.body.append(view); const text = view.innerText; view.remove();
             return text.split('\\n').filter((l) => /\\bnull\\b|\\bundefined\\b|\\bNaN\\b|\\[object /.test(l));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(text, json!([]), "{when}: the page prints a placeholder");
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

/// Opens a view by its address and waits for `ready`; then it must fit and print no placeholder.
async fn visit(browser: &Browser, base: &str, hash: &str, ready: &str, size: &str) {
    browser.go(base, hash).await;
    browser.wait_for(ready).await;
    browser.assert_fits(&format!("{hash} on a {size}")).await;
    assert_no_placeholder_text(browser, &format!("{hash} on a {size}")).await;
}

#[actix_web::test]
async fn every_view_and_form_fits_a_phone_and_a_laptop_with_each_action_reachable() {
    let holding = a_router_in_use().await;
    let base = holding.app.base.clone();
    let browser = browser().await;
    for (size, name) in [(PHONE, "phone"), (DESKTOP, "laptop")] {
        browser.screen(size).await;
        browser.client.execute("sessionStorage.clear()", vec![]).await.ok();
        browser.go(&base, "").await;
        browser.wait_for("#sign-in").await;
        browser.assert_fits(&format!("sign-in on a {name}")).await;
        browser.sign_in(&base).await;
        let view = |hash: &str, ready: &str| {
            let (browser, base) = (&browser, &base);
            let (hash, ready) = (hash.to_string(), ready.to_string());
            async move { visit(browser, base, &hash, &ready, name).await }
        };

        // Overview; the navigation shows every view in a compact block (two rows on a phone),
        // and takes the person there.
        view("#/overview", "h1").await;
        let nav = browser
            .client
            .execute("return [...document.querySelectorAll('nav a, nav button')].map((e) => e.getClientRects().length > 0).concat([document.getElementById('nav').offsetHeight])", vec![])
            .await
            .unwrap();
        let nav = nav.as_array().unwrap();
        assert!(nav[..nav.len() - 1].iter().all(|shown| shown == &json!(true)), "every view is in the navigation: {nav:?}");
        assert!(nav[nav.len() - 1].as_f64().unwrap() <= 90.0, "the navigation stays compact on a {name}: {nav:?}");
        browser.client.find(Locator::Css("nav a[data-view='channels']")).await.unwrap().click().await.unwrap();
        browser.wait_for_text("h1", "Channels").await;

        // Channels: Test answers inline; the forms fit.
        view("#/channels", "tr[data-channel-id]").await;
        browser.click_button("//tr[td//strong[normalize-space()='SOC webhook']]", "Test").await;
        browser.wait_for("[data-test-result='ok']").await;
        browser.assert_fits(&format!("a channel's test result on a {name}")).await;
        browser.click_button("", "Add channel").await;
        browser.wait_for("form[aria-label='Add channel']").await;
        browser.assert_fits(&format!("Add channel on a {name}")).await;
        browser.click_button("//tr[td//strong[normalize-space()='Sentinel']]", "Edit").await;
        browser.wait_for("form[aria-label='Edit channel']").await;
        browser.assert_fits(&format!("Edit channel on a {name}")).await;

        // Rules: the form with every section open and a condition, Edit, and Try an event.
        view("#/rules", "tr[data-rule-id]").await;
        browser.click_button("", "Add rule").await;
        browser.wait_for("form[aria-label='Add rule']").await;
        browser.click_button("//form[@aria-label='Add rule']", "+ Add condition").await;
        browser.client.execute("document.querySelectorAll('form fieldset.noise legend input').forEach((b) => b.checked || b.click())", vec![]).await.unwrap();
        browser.wait_for("form[aria-label='Add rule'] [data-help='active_hours']").await;
        browser.assert_fits(&format!("Add rule with every section open on a {name}")).await;
        browser.click_button("//form[@aria-label='Add rule']", "Cancel").await;
        browser.click_button("//tr[td//strong[normalize-space()='Contoso shares']]", "Edit").await;
        browser.wait_for("form[aria-label='Edit rule'] .cond-row").await;
        browser.assert_fits(&format!("Edit rule on a {name}")).await;
        browser.click_button("//form[@aria-label='Edit rule']", "Cancel").await;
        browser.click_button("//form[@aria-label='Try an event']", "Try").await;
        browser.wait_for_text("ol.preview", "Contoso shares").await;
        browser.assert_fits(&format!("Try an event's answer on a {name}")).await;
        if size == PHONE {
            browser.client.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
            browser.screenshot("rules-phone").await;
        }

        // Tenants, and a tenant's own page; Edit opens its form.
        view("#/tenants", "tr[data-tenant-id]").await;
        browser.click_button("//tr[@data-tenant-id='fabrikam']", "Edit").await;
        browser.wait_for("form[aria-label='Edit tenant']").await;
        browser.assert_fits(&format!("Edit tenant on a {name}")).await;
        browser.click_button("", "Add tenant").await;
        browser.assert_fits(&format!("Add tenant on a {name}")).await;
        view("#/tenants/contoso", "[data-tenant-log] tr[data-delivery-id]").await;
        if size == PHONE {
            browser.client.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
            browser.screenshot("tenants-phone").await;
        }
        click(&browser, &format!("[data-tenant-log] tr[data-delivery-id='{}']", holding.failed)).await;
        browser.wait_for_text("h1", &holding.failed).await;

        // The alert log keeps its Status visible; Silence similar opens the silence form.
        view("#/logs", "tr[data-delivery-id]").await;
        let status = browser.wait_for(&format!("tr[data-delivery-id='{}'] .badge", holding.failed)).await;
        assert!(status.is_displayed().await.unwrap(), "the status shows on a {name}");
        if size == PHONE {
            browser.client.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
            browser.screenshot("logs-phone").await;
        }
        browser.click_button(&format!("//tr[@data-delivery-id='{}']", holding.failed), "Silence similar").await;
        browser.wait_for("form[aria-label='Add silence']").await;
        browser.assert_fits(&format!("Silence similar's form on a {name}")).await;
        view("#/silences", "tr[data-silence-id]").await;
        browser.click_button("", "Add silence").await;
        browser.wait_for("form[aria-label='Add silence'] [name='comment']").await;
        browser.assert_fits(&format!("Add silence on a {name}")).await;

        // A delivery page (Redeliver answers) and a notification's page.
        view(&format!("#/logs/{}", holding.failed), "#payload").await;
        browser.click_button("", "Redeliver").await;
        browser.wait_for_text("#toast", "Redeliver").await;
        browser.assert_fits(&format!("a redelivered delivery on a {name}")).await;
        view(&format!("#/logs/{}", holding.notification), "[data-grouped-in] tr").await;
    }
    browser.assert_no_problems("visiting every view at both sizes").await;
    browser.client.clone().close().await.unwrap();
}

/// Relative luminance of a computed `rgb(…)` colour.
fn luminance(css: &str) -> f64 {
    let parts: Vec<f64> = css.trim_start_matches("rgba(").trim_start_matches("rgb(").trim_end_matches(')').split(',')
        .take(3).map(|p| p.trim().parse::<f64>().unwrap() / 255.0).collect();
    let lin = |c: f64| if c <= 0.03928 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) };
    0.2126 * lin(parts[0]) + 0.7152 * lin(parts[1]) + 0.0722 * lin(parts[2])
}

fn contrast(a: &str, b: &str) -> f64 {
    let (a, b) = (luminance(a), luminance(b));
    (a.max(b) + 0.05) / (a.min(b) + 0.05)
}

#[actix_web::test]
async fn dark_mode_follows_the_system_and_badges_stay_readable() {
    let holding = a_router_in_use().await;
    let browser = browser().await;
    browser.screen(DESKTOP).await;
    browser.sign_in(&holding.app.base).await;
    browser.go(&holding.app.base, "#/logs").await;
    browser.wait_for(&format!("tr[data-delivery-id='{}']", holding.failed)).await;
    for dark in [true, false] {
        browser.dark_mode(dark).await;
        let colours = browser
            .client
            .execute(
                "const of = (e) => { const s = getComputedStyle(e); return [s.color, s.backgroundColor]; };
                 const root = getComputedStyle(document.documentElement);
                 const badges = ['succeeded', 'failed', 'pending', 'grouped', 'silenced', 'suppressed', 'cancelled', 'on', 'off', 'active', 'expired']
                   .map((s) => { const b = document.createElement('span'); b.className = 'badge s-' + s; b.textContent = s;
                                 document.querySelector('#view').append(b); const c = of(b); b.remove(); return [s].concat(c); });
                 const card = getComputedStyle(document.querySelector('table')).backgroundColor;
                 return { page: [root.color, root.backgroundColor], card, badges };",
                vec![],
            )
            .await
            .unwrap();
        let [ink, page] = [colours["page"][0].as_str().unwrap(), colours["page"][1].as_str().unwrap()];
        if dark {
            assert!(luminance(page) < 0.05 && luminance(ink) > 0.6, "dark: page {page}, text {ink}");
            browser.screenshot("dark-desktop").await;
        } else {
            assert!(luminance(page) > 0.8 && luminance(ink) < 0.05, "light: page {page}, text {ink}");
        }
        let card = colours["card"].as_str().unwrap();
        assert!(contrast(ink, card) >= 7.0, "text on a card, dark {dark}: {ink} on {card}");
        for badge in colours["badges"].as_array().unwrap() {
            let (status, fg, bg) = (badge[0].as_str().unwrap(), badge[1].as_str().unwrap(), badge[2].as_str().unwrap());
            assert!(contrast(fg, bg) >= 4.5, "the {status} badge is hard to read (dark {dark}): {fg} on {bg}");
        }
    }
    browser.assert_no_problems("switching dark mode").await;
    browser.client.clone().close().await.unwrap();
}

#[actix_web::test]
async fn times_show_their_zone_with_the_exact_time_on_hover() {
    let holding = a_router_in_use().await;
    let browser = browser().await;
    browser.screen(DESKTOP).await;
    browser.devtools("Emulation.setTimezoneOverride", json!({"timezoneId": "America/New_York"})).await;
    browser.sign_in(&holding.app.base).await;
    browser.go(&holding.app.base, "#/logs").await;
    let row = format!("tr[data-delivery-id='{}']", holding.failed);
    let time = browser.wait_for(&format!("{row} td:first-child time")).await;
    let shown = time.text().await.unwrap();
    assert!(["EST", "EDT", "GMT-5", "GMT-4", "-05", "-04"].iter().any(|zone| shown.contains(zone)), "no zone in {shown:?}");
    let created = holding.app.delivery(&holding.failed).await["created_at"].as_str().unwrap().to_string();
    let title = time.attr("title").await.unwrap().unwrap();
    assert_eq!(title.parse::<chrono::DateTime<chrono::Utc>>().unwrap(), created.parse::<chrono::DateTime<chrono::Utc>>().unwrap(), "the exact time");
    // The delivery page's times too.
    browser.go(&holding.app.base, &format!("#/logs/{}", holding.failed)).await;
    let created_at = browser.wait_for_text("dl.facts dd time", "").await.text().await.unwrap();
    assert!(["EST", "EDT", "GMT-5", "GMT-4"].iter().any(|zone| created_at.contains(zone)), "{created_at}");
    browser.assert_no_problems("showing times").await;
    browser.client.clone().close().await.unwrap();
}

#[actix_web::test]
async fn a_tenants_page_lists_its_rules_the_channels_they_use_and_only_its_own_deliveries() {
    let holding = a_router_in_use().await;
    let browser = browser().await;
    browser.screen(DESKTOP).await;
    browser.sign_in(&holding.app.base).await;
    browser.client.find(Locator::LinkText("Tenants")).await.unwrap().click().await.unwrap();
    click(&browser, "a[data-tenant-page='contoso']").await;
    browser.wait_for_text("h1", "contoso Ltd").await;
    browser.wait_for("[data-tenant-log] tr[data-delivery-id]").await;
    let texts = |css: &'static str| {
        let browser = &browser;
        async move {
            let mut all = vec![];
            for e in browser.client.find_all(Locator::Css(css)).await.unwrap() {
                all.push(e.text().await.unwrap());
            }
            all
        }
    };
    // Its own rule and the rule for every tenant, not fabrikam's.
    let mut rules = texts("tr[data-rule-id] td:first-child").await;
    rules.sort();
    assert_eq!(rules, ["Contoso shares", "Everything grouped per site"], "{rules:?}");
    let channels = texts("tr[data-channel-id] td:first-child").await;
    assert_eq!(channels.len(), 3, "{channels:?}");
    for name in ["SOC webhook", "Failing receiver", "Slack #soc"] {
        assert!(channels.iter().any(|c| c == name), "{name} in {channels:?}");
    }
    // Its deliveries: the log's newest, every one contoso's.
    let deadline = Instant::now() + Duration::from_secs(15);
    let listed = loop {
        let mut ids = vec![];
        for row in browser.client.find_all(Locator::Css("[data-tenant-log] tr[data-delivery-id]")).await.unwrap() {
            ids.push(row.attr("data-delivery-id").await.unwrap().unwrap());
        }
        if ids.len() >= holding.contoso_deliveries.len() {
            break ids;
        }
        assert!(Instant::now() < deadline, "contoso's deliveries are not all listed: {ids:?}");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    };
    let api = holding.app.get("/api/v1/deliveries?tenant_id=contoso&limit=100").await.body;
    let theirs: Vec<&str> = api["items"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert!(listed.iter().all(|id| theirs.contains(&id.as_str())), "only contoso's: {listed:?}");
    assert!(holding.contoso_deliveries.iter().all(|id| listed.contains(id)), "every ingested one of contoso's is listed");
    assert!(!listed.iter().any(|id| holding.fabrikam_deliveries.contains(id)), "none of fabrikam's");
    assert_no_placeholder_text(&browser, "a tenant's page").await;
    browser.screenshot("tenant-desktop").await;
    // A row opens the delivery; the link opens the whole alert log filtered by the tenant.
    click(&browser, &format!("[data-tenant-log] tr[data-delivery-id='{}']", holding.failed)).await;
    browser.wait_for_text("h1", &holding.failed).await;
    browser.client.back().await.unwrap();
    browser.wait_for("[data-tenant-log] tr").await;
    browser.client.find(Locator::LinkText("Open its alert log")).await.unwrap().click().await.unwrap();
    browser.wait_for_text("h1", "Alert logs").await;
    let url = browser.client.current_url().await.unwrap();
    assert!(url.fragment().unwrap_or_default().contains("tenant_id=contoso"), "{url}");
    browser.assert_no_problems("a tenant's page").await;
    browser.client.clone().close().await.unwrap();
}
