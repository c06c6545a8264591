//! The admin page in a real browser: Debian's Chromium, headless, driven over WebDriver by
//! chromedriver, against the real binary. Screenshots of each main view land in
//! `target/screenshots/`.

use std::net::TcpStream;
use std::path::PathBuf;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::*;

const CHROMIUM: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const CHROMEDRIVER: &[&str] = &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];

/// A headless Chromium session; the admin page's browser tests in other files use it too.
pub(crate) struct Browser {
    pub(crate) client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// Stops chromedriver and every Chromium process it started: they share chromedriver's own
/// process group, killed as one (a test that failed or forgot to close its session leaves no
/// browser behind).
impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn find_binary(candidates: &[&str]) -> Option<String> {
    candidates.iter().find(|p| std::path::Path::new(p).exists()).map(|p| p.to_string())
}

/// Starts chromedriver and a headless Chromium session, or fails saying what to install.
pub(crate) async fn browser() -> Browser {
    let (Some(chromium), Some(chromedriver)) = (find_binary(CHROMIUM), find_binary(CHROMEDRIVER)) else {
        panic!(
            "the admin page's browser tests need Debian's Chromium and ChromeDriver: \
             run `apt-get install -y chromium chromium-driver` (that is what .ci/run does), then `cargo test` again"
        );
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let driver = Command::new(chromedriver)
        // Its own process group, which the Chromium it starts joins: see `Drop`.
        .process_group(0)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = tempfile::tempdir().unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                     "--window-size=1280,900", format!("--user-data-dir={}", profile.path().display())]
        }),
    );
    // Keep the console (and failed loads, which Chromium reports there) for `problems()`.
    capabilities.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session starts");
    Browser { client, driver, _profile: profile }
}

/// ChromeDriver's `POST /session/{id}/se/log`: the browser console since the last read.
#[derive(Debug)]
struct ReadConsole;

impl fantoccini::wd::WebDriverCompatibleCommand for ReadConsole {
    fn endpoint(&self, base: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({"type": "browser"}).to_string()))
    }
}

/// ChromeDriver's `POST /session/{id}/goog/cdp/execute`: one Chrome DevTools Protocol command.
#[derive(Debug)]
struct DevTools(serde_json::Value);

impl fantoccini::wd::WebDriverCompatibleCommand for DevTools {
    fn endpoint(&self, base: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/goog/cdp/execute", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.0.to_string()))
    }
}

/// The two screens issue 29 asks every view to work on: a laptop and a 390 px phone.
pub(crate) const DESKTOP: (u32, u32) = (1440, 900);
pub(crate) const PHONE: (u32, u32) = (390, 844);

impl Browser {
    /// Runs one Chrome DevTools Protocol command (`Emulation.…`).
    pub(crate) async fn devtools(&self, cmd: &str, params: serde_json::Value) {
        self.client.issue_cmd(DevTools(json!({"cmd": cmd, "params": params}))).await.unwrap_or_else(|e| panic!("{cmd}: {e}"));
    }

    /// Lays the page out as a screen of `width`×`height` CSS pixels (a phone below 600: touch,
    /// mobile viewport), as a device emulation does; `DESKTOP` and `PHONE` are the two sizes.
    pub(crate) async fn screen(&self, (width, height): (u32, u32)) {
        let mobile = width < 600;
        self.devtools("Emulation.setDeviceMetricsOverride", json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})).await;
        self.devtools("Emulation.setTouchEmulationEnabled", json!({"enabled": mobile})).await;
    }

    /// Emulates `prefers-color-scheme: dark` (or light).
    pub(crate) async fn dark_mode(&self, dark: bool) {
        let value = if dark { "dark" } else { "light" };
        self.devtools("Emulation.setEmulatedMedia", json!({"features": [{"name": "prefers-color-scheme", "value": value}]})).await;
    }

    /// Fails the test if the page scrolls sideways or a visible control (button, link, input,
    /// select, textarea, summary) lies partly outside the viewport's width: every action must be
    /// reachable by scrolling down only.
    pub(crate) async fn assert_fits(&self, when: &str) {
        let outside = self
            .client
            .execute(
                "const width = document.documentElement.clientWidth;
                 const wide = document.scrollingElement.scrollWidth > width ? ['the page scrolls sideways: ' + document.scrollingElement.scrollWidth + ' > ' + width] : [];
                 return wide.concat([...document.querySelectorAll('button, a[href], input, select, textarea, summary')]
                   .filter(e => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden')
                   .filter(e => { const r = e.getBoundingClientRect(); return r.left < -1 || r.right > width + 1; })
                   .map(e => e.tagName.toLowerCase() + ' `' + (e.innerText || e.value || e.getAttribute('aria-label') || '').trim().slice(0, 40) + '` spans ' + Math.round(e.getBoundingClientRect().left) + '..' + Math.round(e.getBoundingClientRect().right)));",
                vec![],
            )
            .await
            .expect("the page answers");
        let outside: Vec<String> = outside.as_array().into_iter().flatten().map(|v| v.as_str().unwrap_or_default().to_string()).collect();
        assert!(outside.is_empty(), "{when}: not every action is reachable without scrolling sideways: {outside:#?}");
    }

    /// Console errors and warnings since the last call (a failed load, such as a 404 for an icon
    /// or a 401, is one), and every resource the page loaded with a 4xx or 5xx answer.
    pub(crate) async fn problems(&self) -> Vec<String> {
        let console = self.client.issue_cmd(ReadConsole).await.expect("ChromeDriver returns the console");
        let mut problems: Vec<String> = console
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| matches!(entry["level"].as_str(), Some("SEVERE" | "WARNING")))
            .map(|entry| format!("console {}: {}", entry["level"], entry["message"]))
            .collect();
        let failed = self
            .client
            .execute(
                "return performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))
                   .filter(e => e.responseStatus >= 400).map(e => e.responseStatus + ' ' + e.name)",
                vec![],
            )
            .await
            .expect("the page answers");
        problems.extend(failed.as_array().into_iter().flatten().map(|f| format!("loaded with {}", f.as_str().unwrap_or_default())));
        problems
    }

    /// Fails the test if the page logged an error or loaded anything with an error status.
    pub(crate) async fn assert_no_problems(&self, when: &str) {
        let problems = self.problems().await;
        assert!(problems.is_empty(), "{when}, the admin page had problems: {problems:#?}");
    }

    /// After a step that provokes an error on purpose (a form the API refuses): the only
    /// problems since the last check are that answer, `status` from `path`. Then starts afresh.
    pub(crate) async fn only_refused(&self, status: u16, path: &str) {
        let problems = self.problems().await;
        let expected = |p: &String| p.contains(&format!("{path} - Failed to load resource: the server responded with a status of {status}"))
            || p.contains(&format!("loaded with {status} ")) && p.ends_with(path);
        assert!(!problems.is_empty() && problems.iter().all(expected), "expected only the {status} from {path}: {problems:#?}");
        self.client.execute("performance.clearResourceTimings()", vec![]).await.unwrap();
    }

    /// Waits for an element matching `css` to be displayed.
    pub(crate) async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.wait_for_text(css, "").await
    }

    /// Waits for an element matching `css` whose text contains `text`.
    pub(crate) async fn wait_for_text(&self, css: &str, text: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(elements) = self.client.find_all(Locator::Css(css)).await {
                for element in elements {
                    if element.is_displayed().await.unwrap_or(false) && element.text().await.unwrap_or_default().contains(text) {
                        return element;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no visible `{css}` containing {text:?} on the page");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn click_button(&self, scope: &str, label: &str) {
        let xpath = format!("{scope}//button[normalize-space()='{label}']");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(button) = self.client.find(Locator::XPath(&xpath)).await {
                // The view may re-render between finding and clicking (stale element): look again.
                if button.is_displayed().await.unwrap_or(false)
                    && button.is_enabled().await.unwrap_or(false)
                    && button.click().await.is_ok()
                {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "no button `{label}` in {scope}");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types into the input labelled `label` inside `form`.
    pub(crate) async fn fill(&self, form: &str, label: &str, value: &str) {
        let xpath = format!("{form}//label[normalize-space()='{label}']");
        let label = self.client.find(Locator::XPath(&xpath)).await.unwrap_or_else(|_| panic!("no label {label}"));
        let id = label.attr("for").await.unwrap().expect("the label names its field");
        let input = self.client.find(Locator::Id(&id)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }

    /// Saves a screenshot in `target/screenshots/NAME.png`; with `UPDATE_DOCS_SCREENSHOTS=1`
    /// also in `docs/screenshots/`, where the README links the ones it shows.
    pub(crate) async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
        if std::env::var_os("UPDATE_DOCS_SCREENSHOTS").is_some_and(|v| v == "1") {
            let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(docs.join(format!("{name}.png")), png).unwrap();
        }
    }

    /// Opens the admin page and signs in with the admin token.
    pub(crate) async fn sign_in(&self, base: &str) {
        self.go(base, "").await;
        self.fill("//form[@id='sign-in-form']", "Admin token", ADMIN_TOKEN).await;
        self.click_button("//form[@id='sign-in-form']", "Sign in").await;
        self.wait_for_text("h1", "Overview").await;
    }

    pub(crate) async fn go(&self, base: &str, hash: &str) {
        self.client.goto(&format!("{base}/{hash}")).await.unwrap();
    }
}

/// Waits until the document and everything it loads (the icon too) finished loading.
async fn wait_until_loaded(browser: &Browser) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while browser.client.execute("return document.readyState", vec![]).await.unwrap() != json!("complete") {
        assert!(Instant::now() < deadline, "the page did not finish loading");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_person_manages_channels_rules_and_tenants_and_follows_a_delivery_in_the_browser() {
    let good = Receiver::start().await;
    let bad = Receiver::start().await;
    bad.reply_with(Reply::Status(500));
    let database = TestDatabase::on(Backend::Sqlite);
    let database = database.url.clone();
    let router = start_router_with(
        &database,
        &[("ADMIN_TOKEN", ADMIN_TOKEN), ("INGEST_TOKEN", INGEST_TOKEN), ("RETRY_SCHEDULE", "20ms,20ms,20ms")],
    )
    .0;
    let base = router.api.base.clone();
    let browser = browser().await;

    // The page loads clean: its icon is served, nothing in the console, no 4xx.
    browser.go(&base, "").await;
    browser.wait_for("#sign-in").await;
    wait_until_loaded(&browser).await;
    browser.assert_no_problems("on first load").await;
    let icon = router.api.with_token(None).get("/favicon.ico").await;
    assert_eq!((icon.status, icon.content_type.as_str()), (200, "image/svg+xml"));

    // Sign-in: a wrong token is refused with a message, the admin token lets the person in.
    browser.fill("//form[@id='sign-in-form']", "Admin token", "not-the-admin-token-000").await;
    browser.click_button("//form[@id='sign-in-form']", "Sign in").await;
    browser.wait_for_text("#sign-in-error", "not accepted").await;
    browser.only_refused(401, "/api/v1/channels").await;
    browser.fill("//form[@id='sign-in-form']", "Admin token", ADMIN_TOKEN).await;
    browser.click_button("//form[@id='sign-in-form']", "Sign in").await;
    browser.wait_for_text("h1", "Overview").await;

    // The API link leads to the OpenAPI document, which needs no token.
    let api = browser.client.find(Locator::LinkText("API")).await.unwrap().attr("href").await.unwrap().unwrap();
    let document = router.api.with_token(None).get(api.trim_start_matches(&base)).await;
    assert_eq!(document.status, 200, "{api}");
    assert!(document.body["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{api}: {}", document.body);

    // Tenants: add one through the form.
    browser.client.find(Locator::LinkText("Tenants")).await.unwrap().click().await.unwrap();
    browser.click_button("", "Add tenant").await;
    let form = "//form[@aria-label='Add tenant']";
    browser.fill(form, "Tenant ID", "contoso").await;
    browser.fill(form, "Display name", "Contoso Ltd").await;
    browser.fill(form, "Microsoft tenant ID", "not-a-guid").await;
    browser.click_button(form, "Save").await;
    browser.wait_for_text("[data-field='microsoft_tenant_id'] .error", "GUID").await;
    browser.only_refused(422, "/api/v1/tenants").await;
    browser.fill(form, "Microsoft tenant ID", "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd").await;
    browser.click_button(form, "Save").await;
    browser.wait_for_text("tr[data-tenant-id='contoso']", "Contoso Ltd").await;
    browser.screenshot("tenants").await;

    // Channels: a bad URL is shown next to the URL field; a good one is listed with its secret.
    browser.client.find(Locator::LinkText("Channels")).await.unwrap().click().await.unwrap();
    browser.click_button("", "Add channel").await;
    let form = "//form[@aria-label='Add channel']";
    browser.fill(form, "Name", "SOC webhook").await;
    browser.fill(form, "URL", "ftp://hooks.example.com/").await;
    browser.click_button(form, "Save").await;
    browser.wait_for_text("[data-field='url'] .error", "https://").await;
    browser.only_refused(422, "/api/v1/channels").await;
    browser.fill(form, "URL", &good.url("/soc")).await;
    browser.click_button(form, "Save").await;
    let secret = browser.wait_for("[aria-label='Signing secret'] code").await.text().await.unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    browser.wait_for_text("tbody tr", "SOC webhook").await;
    browser.click_button("", "Add channel").await;
    browser.fill(form, "Name", "Broken receiver").await;
    browser.fill(form, "URL", &bad.url("/broken")).await;
    browser.click_button(form, "Save").await;
    browser.wait_for_text("tbody tr", "Broken receiver").await;

    // Test: the receiver's 200 and the failing receiver's 500 show on the page.
    let row = |name: &str| format!("//tr[td//strong[normalize-space()='{name}']]");
    browser.click_button(&row("SOC webhook"), "Test").await;
    browser.wait_for_text("[data-test-result='ok']", "HTTP 200").await;
    assert_eq!(good.received().len(), 1);
    assert_eq!(good.received()[0].json()["test"], true);
    browser.click_button(&row("Broken receiver"), "Test").await;
    browser.wait_for_text("[data-test-result='failed']", "500").await;
    browser.screenshot("channels").await;

    // Rules: created in the form, targeting both channels.
    browser.client.find(Locator::LinkText("Rules")).await.unwrap().click().await.unwrap();
    browser.click_button("", "Add rule").await;
    let form = "//form[@aria-label='Add rule']";
    browser.fill(form, "Name", "External shares").await;
    browser.client.find(Locator::XPath(&format!("{form}//label[code='permission.*']/input"))).await.unwrap().click().await.unwrap();
    for name in ["SOC webhook", "Broken receiver"] {
        browser.client.find(Locator::XPath(&format!("{form}//label[normalize-space()='{name}']/input"))).await.unwrap().click().await.unwrap();
    }
    browser.click_button(form, "Save").await;
    browser.wait_for_text("tbody tr", "External shares").await;
    browser.screenshot("rules").await;
    let rules = router.api.get("/api/v1/rules").await.body;
    assert_eq!(rules["items"][0]["event_types"], json!(["permission.*"]));
    assert_eq!(rules["items"][0]["channel_ids"].as_array().unwrap().len(), 2);

    // An event through the API appears in the alert logs; the failing delivery ends failed.
    let answer = router.api.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
    assert_eq!(answer.status, 202);
    browser.client.find(Locator::LinkText("Alert logs")).await.unwrap().click().await.unwrap();
    browser.wait_for_text("tbody tr", "succeeded").await;
    browser.wait_for_text("tbody tr", "failed").await;
    browser.screenshot("alert-logs").await;

    // Open the failed delivery: four attempts; Redeliver reaches the (now healthy) receiver.
    browser.wait_for_text("tbody tr", "failed").await.click().await.unwrap();
    browser.wait_for("#payload").await;
    browser.wait_for("tr[data-attempt='4']").await;
    assert_eq!(bad.received().len(), 5, "one Test and four scheduled attempts");
    bad.reply_with(Reply::Status(200));
    browser.click_button("", "Redeliver").await;
    browser.wait_for_text("tr[data-attempt='5']", "manual").await;
    browser.wait_for_text("tr[data-attempt='5']", "200").await;
    assert_eq!(bad.received().len(), 6);
    assert_eq!(bad.received()[5].answered, Some(200));
    browser.wait_for_text(".badge", "succeeded").await;
    browser.screenshot("delivery").await;

    // The overview counts the day's deliveries.
    browser.client.find(Locator::LinkText("Overview")).await.unwrap().click().await.unwrap();
    let tile = |label: &str| format!("//div[contains(@class,'tile')][div[normalize-space()='{label}']]/div[contains(@class,'n')]");
    let count = |label: &'static str| {
        let xpath = tile(label);
        let client = browser.client.clone();
        async move { client.find(Locator::XPath(&xpath)).await.unwrap().text().await.unwrap() }
    };
    browser.wait_for_text(".tile", "Succeeded, last 24 h").await;
    assert_eq!(count("Succeeded, last 24 h").await, "2", "the SOC delivery and the redelivered one");
    assert_eq!(count("Failed, last 24 h").await, "0");
    browser.wait_for_text("p.muted", "No channel failed in the last 24 hours.").await;
    browser.screenshot("overview").await;

    // The log filters by status and event type, and pages (25 per page) through older deliveries.
    // 13 events to two channels: 26 newer deliveries fill the first page and spill onto the second.
    let batch: Vec<_> = (0..13).map(|_| permission_event("contoso", "permission.site_admin_added", "critical")).collect();
    assert_eq!(router.api.ingest(json!({ "events": batch })).await.status, 202);
    browser.client.find(Locator::LinkText("Alert logs")).await.unwrap().click().await.unwrap();
    browser.wait_for_text("tbody tr", "permission.site_admin_added").await;
    browser.click_button("", "Older").await;
    browser.wait_for_text("tbody tr", "permission.external_share_created").await;
    browser.click_button("", "Newer").await;
    browser.wait_for_text("tbody tr", "permission.site_admin_added").await;
    let status = browser.client.find(Locator::Id("filter-status")).await.unwrap();
    // Every delivery has succeeded by now (the broken receiver was mended before Redeliver).
    status.select_by_value("pending").await.unwrap();
    browser.wait_for_text("p.muted", "No deliveries match").await;
    let status = browser.client.find(Locator::Id("filter-status")).await.unwrap();
    status.select_by_value("succeeded").await.unwrap();
    browser.wait_for_text("tbody tr", "succeeded").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let rows = browser.client.find_all(Locator::Css("tbody tr")).await.unwrap();
        let mut texts = Vec::new();
        for row in &rows {
            texts.push(row.text().await.unwrap_or_default());
        }
        if texts.len() == 25 && texts.iter().all(|t| t.contains("succeeded")) {
            break;
        }
        assert!(Instant::now() < deadline, "the status filter shows other rows: {texts:?}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    browser.click_button("", "Clear filters").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let select = browser.client.find(Locator::Id("filter-status")).await.unwrap();
        if select.prop("value").await.ok().flatten().as_deref() == Some("") {
            break;
        }
        assert!(Instant::now() < deadline, "the filters were not cleared");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let event_type = browser.client.find(Locator::Id("filter-event_type")).await.unwrap();
    event_type.send_keys("permission.external_share_created\n").await.unwrap();
    browser.wait_for_text("tbody tr", "permission.external_share_created").await;

    // Edit, disable and delete from the lists.
    browser.client.find(Locator::LinkText("Channels")).await.unwrap().click().await.unwrap();
    browser.click_button(&row("SOC webhook"), "Edit").await;
    let form = "//form[@aria-label='Edit channel']";
    browser.fill(form, "Name", "SOC main").await;
    browser.fill(form, "Rate limit", "5").await;
    browser.click_button(form, "Save").await;
    browser.wait_for_text("tbody tr", "SOC main").await;
    browser.wait_for_text("tr[data-channel-id]", "at most 5/s").await;
    browser.click_button(&row("SOC main"), "Disable").await;
    browser.wait_for_text(&format!("{} .badge", "tr[data-channel-id]"), "disabled").await;
    let channels = router.api.get("/api/v1/channels").await.body;
    let soc = channels["items"].as_array().unwrap().iter().find(|c| c["name"] == "SOC main").unwrap().clone();
    assert_eq!(soc["enabled"], false);
    assert_eq!(soc["rate_limit_per_second"], 5);
    browser.click_button(&row("SOC main"), "Enable").await;
    browser.click_button(&row("Broken receiver"), "Delete").await;
    assert!(browser.client.get_alert_text().await.unwrap().contains("Broken receiver"), "deleting asks first");
    browser.client.accept_alert().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while router.api.get("/api/v1/channels").await.body["items"].as_array().unwrap().len() != 1 {
        assert!(Instant::now() < deadline, "the channel was not deleted");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    browser.client.find(Locator::LinkText("Rules")).await.unwrap().click().await.unwrap();
    browser.click_button("//tr[td//strong[normalize-space()='External shares']]", "Disable").await;
    browser.wait_for_text("tbody tr .badge", "disabled").await;
    assert_eq!(router.api.get("/api/v1/rules").await.body["items"][0]["enabled"], false);
    browser.client.find(Locator::LinkText("Tenants")).await.unwrap().click().await.unwrap();
    browser.click_button("//tr[@data-tenant-id='contoso']", "Edit").await;
    let form = "//form[@aria-label='Edit tenant']";
    browser.fill(form, "Display name", "Contoso Group").await;
    browser.click_button(form, "Save").await;
    browser.wait_for_text("tr[data-tenant-id='contoso']", "Contoso Group").await;

    // A phone-sized window still shows the navigation and the log.
    browser.client.set_window_size(390, 844).await.unwrap();
    browser.client.find(Locator::LinkText("Alert logs")).await.unwrap().click().await.unwrap();
    browser.wait_for_text("tbody tr", "succeeded").await;
    browser.screenshot("alert-logs-phone").await;
    browser.assert_no_problems("through the whole journey").await;

    // A token that stops being valid (changed on the server) brings the sign-in back, with a message.
    browser.client.execute("sessionStorage.setItem('spscan-admin-token', 'a-token-that-was-changed-000')", vec![]).await.unwrap();
    browser.client.find(Locator::LinkText("Channels")).await.unwrap().click().await.unwrap();
    browser.wait_for_text("#sign-in-error", "not accepted").await;
    browser.fill("//form[@id='sign-in-form']", "Admin token", ADMIN_TOKEN).await;
    browser.click_button("//form[@id='sign-in-form']", "Sign in").await;
    browser.wait_for_text("h1", "Channels").await;

    // Signing out brings the sign-in back.
    browser.click_button("", "Sign out").await;
    browser.wait_for("#sign-in").await;
    browser.client.clone().close().await.unwrap();
}

#[actix_web::test]
async fn the_admin_page_shows_an_open_circuit_and_a_channel_the_router_disabled() {
    let bad = Receiver::start().await;
    bad.reply_with(Reply::Status(503));
    let gone = Receiver::start().await;
    gone.reply_with(Reply::Status(410));
    let database = TestDatabase::on(Backend::Sqlite);
    let router = start_router_with(
        &database.url,
        &[
            ("ADMIN_TOKEN", ADMIN_TOKEN),
            ("INGEST_TOKEN", INGEST_TOKEN),
            ("BREAKER_FAILURES", "2"),
            ("BREAKER_COOLDOWN", "10m"),
            // No retries: what fails is failed at once, for Redeliver all.
            ("RETRY_SCHEDULE", ""),
        ],
    )
    .0;
    let channel = router.api.soc_channel_for_contoso(&bad).await;
    let channel_id = channel["id"].as_str().unwrap().to_string();
    let gone_channel = router.api.create_channel("Old ticketing", &gone.url("/gone")).await;
    let gone_id = gone_channel["id"].as_str().unwrap().to_string();
    router.api.route_everything_to(&[&channel_id, &gone_id]).await;
    for _ in 0..3 {
        assert_eq!(router.api.ingest(permission_event("contoso", "permission.external_share_created", "high")).await.status, 202);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let open = router.api.get(&format!("/api/v1/channels/{channel_id}")).await.body["health"]["state"] == "open";
        let disabled = router.api.get(&format!("/api/v1/channels/{gone_id}")).await.body["enabled"] == false;
        if open && disabled {
            break;
        }
        assert!(Instant::now() < deadline, "the circuit did not open or the 410 channel was not disabled");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }

    let browser = browser().await;
    browser.sign_in(&router.api.base).await;
    let notice = browser.wait_for_text("[data-disabled-channel]", "Old ticketing was disabled by the router").await.text().await.unwrap();
    assert!(notice.contains("410 Gone") && notice.contains("enable the channel"), "{notice}");
    browser.screenshot("overview-channel-disabled").await;
    browser.client.find(Locator::LinkText("Channels")).await.unwrap().click().await.unwrap();
    let shown = browser.wait_for_text("[data-circuit='open']", "circuit open").await.text().await.unwrap();
    assert!(shown.contains("failed in a row") && shown.contains("next probe"), "{shown}");
    browser.wait_for_text("[data-disabled-reason]", "410 Gone").await;
    browser.screenshot("channels-circuit-open").await;

    // Redeliver all, for the failed deliveries: it says how many and asks first.
    let failed = router.api.post("/api/v1/deliveries/redeliver", json!({"dry_run": true})).await.body["count"].as_i64().unwrap();
    assert!(failed >= 2, "{failed} failed deliveries");
    browser.client.find(Locator::LinkText("Alert logs")).await.unwrap().click().await.unwrap();
    browser.wait_for("#filter-status").await.select_by_value("failed").await.unwrap();
    browser.wait_for_text("tbody tr", "failed").await;
    browser.click_button("", "Redeliver all").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let question = loop {
        if let Ok(text) = browser.client.get_alert_text().await {
            break text;
        }
        assert!(Instant::now() < deadline, "Redeliver all did not ask first");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(question.contains(&format!("Redeliver {failed} failed deliveries?")), "{question}");
    browser.client.accept_alert().await.unwrap();
    browser.wait_for_text("#toast", &format!("{failed} deliveries queued for redelivery")).await;
    assert_eq!(router.api.post("/api/v1/deliveries/redeliver", json!({"dry_run": true})).await.body["count"], 0, "all queued");
    browser.assert_no_problems("showing an open circuit and a disabled channel").await;
    browser.client.clone().close().await.unwrap();
}

#[actix_web::test]
async fn slack_and_teams_channels_are_added_with_their_own_fields_and_tested_in_the_browser() {
    let slack = Receiver::start().await;
    slack.reply_with(Reply::Said(200, "ok"));
    let teams = Receiver::start().await;
    teams.reply_with(Reply::Status(202));
    let database = TestDatabase::on(Backend::Sqlite);
    let router = start_router_with(&database.url, &[("ADMIN_TOKEN", ADMIN_TOKEN), ("INGEST_TOKEN", INGEST_TOKEN)]).0;
    let browser = browser().await;
    browser.sign_in(&router.api.base).await;
    browser.client.find(Locator::LinkText("Channels")).await.unwrap().click().await.unwrap();
    let form = "//form[@aria-label='Add channel']";
    let row = |name: &str| format!("//tr[td//strong[normalize-space()='{name}']]");

    for (label, value, name, url_label, receiver, rate, answer) in [
        ("Slack", "slack", "Slack #soc", "Slack webhook URL", &slack, "1", "HTTP 200"),
        ("Microsoft Teams", "teams", "Teams SOC", "Workflows webhook URL", &teams, "4", "HTTP 202"),
    ] {
        browser.click_button("", "Add channel").await;
        let select = browser.wait_for("form[aria-label='Add channel'] select[name='type']").await;
        select.select_by_value(value).await.unwrap();
        // The form speaks the type's words, hides what the type does not take, and offers its pace.
        browser.wait_for_text("form[aria-label='Add channel'] label", url_label).await;
        let headers_hidden = browser.client.find(Locator::Css("form[aria-label='Add channel'] [data-field='headers']")).await.unwrap();
        assert!(!headers_hidden.is_displayed().await.unwrap(), "custom headers shown for {label}");
        let rate_input = browser.client.find(Locator::Css("form[aria-label='Add channel'] input[name='rate_limit_per_second']")).await.unwrap();
        assert_eq!(rate_input.prop("value").await.unwrap().as_deref(), Some(rate));
        browser.fill(form, "Name", name).await;
        browser.fill(form, url_label, &receiver.url("/services/T9/B9/SeCrEt0042")).await;
        browser.click_button(form, "Save").await;
        browser.wait_for_text("tbody tr", name).await;
        // No signing secret for vendor channels, and the URL is masked in the list.
        let listed = browser.wait_for_text("tr[data-channel-id] td", "••••0042").await.text().await.unwrap();
        assert!(!listed.contains("SeCrEt"), "{listed}");
        assert!(browser.client.find(Locator::Css("[aria-label='Signing secret']")).await.is_err());
        browser.click_button(&row(name), "Test").await;
        browser.wait_for_text("[data-test-result='ok']", answer).await;
        assert_eq!(receiver.received().len(), 1, "{label}: one Test");
    }
    let slack_body = slack.received()[0].json();
    assert_eq!(slack_body["blocks"][0]["text"]["text"], "🟠 HIGH: External share created (test)");
    assert_eq!(teams.received()[0].json()["attachments"][0]["content"]["version"], "1.4");
    browser.screenshot("channels-slack-teams").await;

    // Editing keeps the secret URL unless a new one is pasted.
    browser.click_button(&row("Slack #soc"), "Edit").await;
    let edit = "//form[@aria-label='Edit channel']";
    browser.wait_for_text("form[aria-label='Edit channel'] .hint", "Leave empty to keep it").await;
    browser.fill(edit, "Name", "Slack #security").await;
    browser.click_button(edit, "Save").await;
    browser.wait_for_text("tbody tr", "Slack #security").await;
    let channels = router.api.get("/api/v1/channels").await.body;
    let saved = channels["items"].as_array().unwrap().iter().find(|c| c["name"] == "Slack #security").unwrap().clone();
    assert!(saved["url"].as_str().unwrap().ends_with("••••0042"), "{saved:#}");
    browser.click_button(&row("Slack #security"), "Test").await;
    slack.wait_for(2, Some("/services/T9/B9/SeCrEt0042"), Duration::from_secs(10)).await;
    browser.assert_no_problems("adding and testing Slack and Teams channels").await;
    browser.client.clone().close().await.unwrap();
}

#[actix_web::test]
async fn a_channel_type_added_in_one_file_is_offered_created_delivered_retried_and_logged() {
    crate::throwaway_type::register();
    let receiver = Receiver::start().await;
    // The first request fails: the delivery is retried, and both attempts are in its log.
    receiver.script(&[Reply::Status(500)]);
    let app = spawn_app().await;
    app.create_tenant("contoso").await;
    // Offered by the API, with its setting.
    let types = app.get("/api/v1/channel-types").await.body;
    let echo = types["items"].as_array().unwrap().iter().find(|t| t["type"] == "echo-test").expect("listed").clone();
    assert_eq!((&echo["label"], &echo["settings"][0]["name"], &echo["settings"][0]["required"]), (&json!("Echo (test)"), &json!("greeting"), &json!(true)));

    // Created in the admin page's Add channel form, which speaks its words.
    let browser = browser().await;
    browser.sign_in(&app.base).await;
    browser.client.find(Locator::LinkText("Channels")).await.unwrap().click().await.unwrap();
    browser.click_button("", "Add channel").await;
    let select = browser.wait_for("form[aria-label='Add channel'] select[name='type']").await;
    select.select_by_value("echo-test").await.unwrap();
    let form = "//form[@aria-label='Add channel']";
    browser.wait_for_text("form[aria-label='Add channel'] label", "Echo URL").await;
    browser.wait_for_text("form[aria-label='Add channel'] .hint", "Said first in every request.").await;
    browser.fill(form, "Name", "Echo SOC").await;
    browser.fill(form, "Echo URL", &receiver.url("/echo")).await;
    browser.fill(form, "Greeting", "hello from the tests").await;
    browser.click_button(form, "Save").await;
    browser.wait_for_text("tbody tr", "Echo SOC").await;
    browser.wait_for_text("tbody tr", "Echo (test)").await;
    browser.assert_no_problems("adding a channel of a type registered in the tests").await;
    browser.client.clone().close().await.unwrap();

    // Delivered in its own format, retried after the failure, and logged.
    let channel = app.get("/api/v1/channels").await.body["items"][0].clone();
    assert_eq!((&channel["type"], &channel["greeting"]), (&json!("echo-test"), &json!("hello from the tests")), "{channel:#}");
    app.route_everything_to(&[channel["id"].as_str().unwrap()]).await;
    let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
    let delivery_id = answer.body["deliveries"][0]["id"].as_str().unwrap().to_string();
    let delivery = app.wait_for_status(&delivery_id, "succeeded", Duration::from_secs(10)).await;
    let got = receiver.received();
    assert_eq!(got.len(), 2, "the failure and its retry");
    assert!(got.iter().all(|c| c.headers["x-echo"] == "1" && c.path == "/echo"));
    let body = got[1].json();
    assert_eq!((&body["greeting"], &body["event"]["event_id"]), (&json!("hello from the tests"), &answer.body["event_id"]));
    let statuses: Vec<&serde_json::Value> = delivery["attempts"].as_array().unwrap().iter().map(|a| &a["status_code"]).collect();
    assert_eq!(statuses, [&json!(500), &json!(200)], "{delivery:#}");
}

/// Draws the README's Slack and Teams examples from the bodies the router really sends (see
/// `channel_types::the_readme_shows_exactly_what_slack_and_teams_get`) and screenshots them into
/// target/screenshots; with `UPDATE_README_PICTURES=1`, into docs/ for the README too.
#[actix_web::test]
async fn readme_pictures() {
    let (slack, teams) = crate::channel_types::vendor_bodies_of_the_readme_event().await;
    let browser = browser().await;
    let page = url::Url::from_file_path(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/previews.html")).unwrap();
    browser.client.goto(page.as_str()).await.unwrap();
    let update = std::env::var_os("UPDATE_README_PICTURES").is_some();
    for (kind, body, shows) in [("slack", slack, "HIGH: External share created"), ("teams", teams, "Open site")] {
        browser.client.execute("window.renderPreview(arguments[0], arguments[1])", vec![json!(kind), body]).await.unwrap();
        let preview = browser.wait_for_text("#preview", shows).await;
        assert!(preview.text().await.unwrap().contains("outsider@example.net"));
        let png = preview.screenshot().await.unwrap();
        let name = format!("{kind}-message.png");
        let screenshots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("screenshots");
        std::fs::create_dir_all(&screenshots).unwrap();
        std::fs::write(screenshots.join(&name), &png).unwrap();
        if update {
            std::fs::write(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs").join(&name), &png).unwrap();
        }
    }
    browser.assert_no_problems("drawing the README's pictures").await;
    browser.client.clone().close().await.unwrap();
}

#[actix_web::test]
async fn splunk_and_sentinel_channels_are_set_up_tested_and_their_shared_requests_followed_in_the_browser() {
    use crate::siem::{azure, hec, VendorReceiver, CLIENT_ID, CLIENT_SECRET, DCR, DIRECTORY, HEC_TOKEN, STREAM};
    let splunk = VendorReceiver::start(hec);
    let sentinel = VendorReceiver::start(azure);
    let database = TestDatabase::on(Backend::Sqlite);
    let router = start_router_with(&database.url, &[("ADMIN_TOKEN", ADMIN_TOKEN), ("INGEST_TOKEN", INGEST_TOKEN)]).0;
    router.api.create_tenant("contoso").await;
    let browser = browser().await;
    browser.sign_in(&router.api.base).await;
    browser.client.find(Locator::LinkText("Channels")).await.unwrap().click().await.unwrap();
    let form = "//form[@aria-label='Add channel']";
    let row = |name: &str| format!("//tr[td//strong[normalize-space()='{name}']]");

    // Splunk: the form shows the HEC's fields; a wrong value is shown by its field.
    browser.click_button("", "Add channel").await;
    browser.wait_for("form[aria-label='Add channel'] select[name='type']").await.select_by_value("splunk").await.unwrap();
    browser.wait_for_text("form[aria-label='Add channel'] label", "HEC token").await;
    browser.fill(form, "Name", "Splunk SOC").await;
    browser.fill(form, "HEC URL", &splunk.base).await;
    browser.fill(form, "HEC token", HEC_TOKEN).await;
    browser.fill(form, "Index", "Security Index").await;
    browser.fill(form, "Batch wait", "300ms").await;
    browser.click_button(form, "Save").await;
    browser.wait_for_text("[data-field='index'] .error", "lowercase").await;
    browser.only_refused(422, "/api/v1/channels").await;
    browser.fill(form, "Index", "security").await;
    browser.click_button(form, "Save").await;
    browser.wait_for_text("tbody tr", "Splunk SOC").await;
    browser.click_button(&row("Splunk SOC"), "Test").await;
    browser.wait_for_text("[data-test-result='ok']", "HTTP 200").await;

    // Sentinel: the app registration and the rule.
    browser.click_button("", "Add channel").await;
    browser.wait_for("form[aria-label='Add channel'] select[name='type']").await.select_by_value("sentinel").await.unwrap();
    browser.wait_for_text("form[aria-label='Add channel'] label", "Client secret").await;
    for (label, value) in [
        ("Name", "Sentinel"),
        ("Ingestion endpoint", sentinel.base.as_str()),
        ("Rule immutable ID", DCR),
        ("Stream", STREAM),
        ("Directory (tenant) ID", DIRECTORY),
        ("Application (client) ID", CLIENT_ID),
        ("Client secret", CLIENT_SECRET),
        ("Authority", sentinel.base.as_str()),
    ] {
        browser.fill(form, label, value).await;
    }
    browser.click_button(form, "Save").await;
    browser.wait_for_text("tbody tr", "Sentinel").await;
    browser.click_button(&row("Sentinel"), "Test").await;
    browser.wait_for_text("[data-test-result='ok']", "HTTP 204").await;
    assert_eq!(sentinel.with(|v| v.tokens.len()), 1);
    browser.screenshot("channels-splunk-sentinel").await;
    let channels = router.api.get("/api/v1/channels").await.body;
    assert!(!channels.to_string().contains(HEC_TOKEN) && !channels.to_string().contains(CLIENT_SECRET), "credentials are write-only");

    // Five events in one batch go to Splunk in one request; the alert log follows it.
    let splunk_id = channels["items"].as_array().unwrap().iter().find(|c| c["type"] == "splunk").unwrap()["id"].as_str().unwrap().to_string();
    router.api.create_rule(json!({"name": "To Splunk", "event_types": ["*"], "channel_ids": [splunk_id]})).await;
    let events: Vec<_> = (0..5).map(|_| permission_event("contoso", "permission.external_share_created", "high")).collect();
    assert_eq!(router.api.ingest(json!({"events": events})).await.status, 202);
    splunk.wait_for_events(6).await;
    browser.client.find(Locator::LinkText("Alert logs")).await.unwrap().click().await.unwrap();
    browser.wait_for_text("tbody tr", "succeeded").await.click().await.unwrap();
    browser.wait_for_text("[data-request]", "sent with 4 other deliveries in one request").await;
    browser.client.find(Locator::LinkText("4 other deliveries")).await.unwrap().click().await.unwrap();
    browser.wait_for("[data-request-filter]").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while browser.client.find_all(Locator::Css("tbody tr[data-delivery-id]")).await.unwrap().len() != 5 {
        assert!(Instant::now() < deadline, "the request's five deliveries are not listed");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    browser.screenshot("alert-logs-one-request").await;
    browser.assert_no_problems("setting up Splunk and Sentinel").await;
    browser.client.clone().close().await.unwrap();
}

#[actix_web::test]
async fn the_tenants_page_shows_what_arrived_from_each_tenants_audit_log() {
    use crate::o365::{anyone_link_click, CONTOSO_GUID};
    use crate::o365_feed::*;
    let database = TestDatabase::on(Backend::Sqlite);
    let feed = ManagementApi::start();
    let mut env: Vec<(&str, String)> = vec![("ADMIN_TOKEN", ADMIN_TOKEN.into()), ("INGEST_TOKEN", INGEST_TOKEN.into()), ("O365_POLL_INTERVAL", "1s".into())];
    env.extend(feed.env());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let router = start_router_with(&database.url, &env).0;
    let tenant = router.api.post("/api/v1/tenants", json!({"id": "contoso", "display_name": "Contoso Ltd", "microsoft_tenant_id": CONTOSO_GUID})).await;
    assert_eq!(tenant.status, 201);
    // The local API gives no token for this tenant (its admin never consented): its listing fails.
    let other = router.api.post("/api/v1/tenants", json!({"id": "fabrikam", "display_name": "Fabrikam", "microsoft_tenant_id": "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"})).await;
    assert_eq!(other.status, 201);
    let answer = router.api.with_token(Some(INGEST_TOKEN)).post("/api/v1/sources/o365/audit", json!(anyone_link_click())).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    // One blob fetched, one the API keeps failing.
    let fetched = feed.publish("c-fetched", click(1));
    let stuck = feed.publish("c-stuck", click(2));
    feed.fail("c-stuck", usize::MAX);
    assert_eq!(notify(&router.api, Some(AUTH_ID), json!([fetched, stuck])).await.body["kept"], 2);
    wait_for_content(&router.api, "c-fetched", "done").await;
    let browser = browser().await;
    browser.sign_in(&router.api.base).await;
    browser.client.find(Locator::LinkText("Tenants")).await.unwrap().click().await.unwrap();
    let contoso = browser.wait_for_text("tr[data-tenant-id='contoso'] [data-audit='some']", "24 h: ").await.text().await.unwrap();
    assert!(contoso.contains("2 ingested") && contoso.contains("10 folded"), "{contoso}");
    let blobs = browser.wait_for_text("tr[data-tenant-id='contoso'] [data-feed='pending']", "waiting").await.text().await.unwrap();
    assert_eq!(blobs, "1 content blob fetched, 1 waiting to be fetched");
    browser.wait_for_text("tr[data-tenant-id='fabrikam'] [data-audit='none']", "none yet").await;
    // Listed every second: the page shows the failure after a reload at the latest.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let tenants = router.api.get("/api/v1/tenants").await.body;
        if tenants["items"].as_array().unwrap().iter().any(|t| t["id"] == "fabrikam" && t["audit"]["listing_error"].is_string()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no listing error: {tenants:#}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    // Read again (a click on the link of the page already shown would not reload it).
    browser.client.refresh().await.unwrap();
    let failed = browser.wait_for_text("tr[data-tenant-id='fabrikam'] [data-feed='listing-error']", "AADSTS7000215").await.text().await.unwrap();
    assert!(failed.starts_with("Listing failed"), "{failed}");
    browser.screenshot("tenants-audit-records").await;
    browser.assert_no_problems("showing audit records on the Tenants page").await;
    browser.client.clone().close().await.unwrap();
}
