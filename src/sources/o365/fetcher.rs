//! The Office 365 content fetcher (SPEC section 14): an actor that fetches the Management
//! Activity API's content blobs kept in `o365_contents` (from notifications and from its own
//! catch-up listing) and ingests their records like `POST /api/v1/sources/o365/audit`.
//!
//! - Each blob is fetched once: a fetch claims its row for a while (`claimed_until`, so one
//!   instance fetches it at a time and a crashed fetch's claim runs out), and the row becomes
//!   `done` only after the records' events are committed. A crash between the two fetches the blob
//!   again, and its records are then duplicates (event ids come from the audit `Id`s, and
//!   actions already alerted on are remembered), so nothing is lost and nothing alerts twice.
//! - A failed fetch is tried again on the `RETRY_SCHEDULE`, then at its last step, until the
//!   blob's `contentExpiration`; then it is `expired`, with its last error, on the Tenants page.
//! - What is due is always read from the database: at start, every 30 s (blobs another instance
//!   listed, or claims that ran out), when a fetch ends, when a notification is kept, and by a
//!   timer set for the next blob due.
//! - Catch-up: at start and every `O365_POLL_INTERVAL`, every registered tenant's available
//!   content is listed (24-hour windows, `NextPageUri` pages) from where the last listing ended
//!   (an hour of overlap; since the tenant was registered the first time), and what is new is kept.

use std::time::Duration;

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, SpawnHandle, WrapFuture};
use serde_json::Value;

use super::feed::{self, ContentRef, LISTING_OVERLAP_MS, MAX_BLOB_BYTES, RESOURCE};
use super::ingest;
use crate::channels::ClientCredentials;
use crate::domain::retry::RetrySchedule;
use crate::domain::time::{now_ms, Millis};
use crate::handle::RouterHandle;
use crate::outbound::Outbound;
use crate::settings::O365Settings;
use crate::store::o365::{self, ContentRow};
use crate::store::tenants;

/// Blobs fetched at once by one instance.
const MAX_FETCHES: usize = 4;

/// How often the database is read for due blobs besides the timer.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Most listing pages followed in one window (a guard against a listing that pages forever).
const MAX_PAGES: usize = 10_000;

/// What a fetch or a listing needs, shared by its futures.
#[derive(Clone)]
struct Feed {
    router: RouterHandle,
    settings: O365Settings,
    outbound: Outbound,
    schedule: RetrySchedule,
    holder: String,
    /// How long a fetch holds its blob (renewed while it ingests).
    lease_ms: Millis,
    /// One blob's records are ingested at a time, so the records of one action in two blobs
    /// fetched together still fold into one event.
    ingesting: std::rc::Rc<tokio::sync::Mutex<()>>,
}

pub struct Fetcher {
    feed: Feed,
    running: usize,
    sweeping: bool,
    /// Sweep again when the sweep in progress ends (something new was kept meanwhile).
    again: bool,
    catching_up: bool,
    wake: Option<SpawnHandle>,
}

impl Fetcher {
    pub fn new(router: RouterHandle, settings: O365Settings, outbound: Outbound, schedule: RetrySchedule, holder: String, timeout: Duration) -> Self {
        // A blob's fetch: a token, the blob, one token refresh, then ingestion.
        let lease_ms = (timeout.as_millis() as Millis) * 4 + 60_000;
        let ingesting = std::rc::Rc::new(tokio::sync::Mutex::new(()));
        Self { feed: Feed { router, settings, outbound, schedule, holder, lease_ms, ingesting }, running: 0, sweeping: false, again: false, catching_up: false, wake: None }
    }

    /// Reads what is due and starts fetching it (as many at once as `MAX_FETCHES` allows).
    fn sweep(&mut self, ctx: &mut Context<Self>) {
        if self.sweeping {
            self.again = true;
            return;
        }
        let room = MAX_FETCHES.saturating_sub(self.running);
        if room == 0 {
            return;
        }
        self.sweeping = true;
        let store = self.feed.router.store().clone();
        let work = async move {
            let now = now_ms();
            store.read(move |conn| Ok((o365::due(conn, now, room as i64)?, o365::next_due(conn, now)?))).await
        };
        ctx.spawn(work.into_actor(self).map(|found, actor, ctx| {
            actor.sweeping = false;
            match found {
                Ok((due, next)) => {
                    for row in due {
                        actor.start_fetch(row, ctx);
                    }
                    actor.wake_at(next, ctx);
                }
                Err(err) => log::warn!("reading the Office 365 content to fetch failed: {err}"),
            }
            if std::mem::take(&mut actor.again) {
                actor.sweep(ctx);
            }
        }));
    }

    fn start_fetch(&mut self, row: ContentRow, ctx: &mut Context<Self>) {
        self.running += 1;
        let feed = self.feed.clone();
        ctx.spawn(async move { fetch(feed, row).await }.into_actor(self).map(|_, actor, ctx| {
            actor.running -= 1;
            actor.sweep(ctx);
        }));
    }

    /// Sets the timer for the next blob due (later ones are found by the periodic sweep).
    fn wake_at(&mut self, next: Option<Millis>, ctx: &mut Context<Self>) {
        if let Some(handle) = self.wake.take() {
            ctx.cancel_future(handle);
        }
        if let Some(at) = next {
            let wait = Duration::from_millis((at - now_ms()).max(0) as u64);
            if wait < SWEEP_EVERY {
                self.wake = Some(ctx.run_later(wait + Duration::from_millis(5), |actor, ctx| {
                    actor.wake = None;
                    actor.sweep(ctx);
                }));
            }
        }
    }

    fn catch_up(&mut self, ctx: &mut Context<Self>) {
        if self.catching_up {
            return;
        }
        self.catching_up = true;
        let feed = self.feed.clone();
        ctx.spawn(async move { catch_up(feed).await }.into_actor(self).map(|_, actor, ctx| {
            actor.catching_up = false;
            actor.sweep(ctx);
        }));
    }
}

impl Actor for Fetcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Fetches cut off by a stop or crash of this router are taken up again at once.
        let (store, holder) = (self.feed.router.store().clone(), self.feed.holder.clone());
        let release = async move { store.release_fetch_claims(holder).await };
        ctx.wait(release.into_actor(self).map(|released, actor, ctx| {
            match released {
                Ok(n) if n > 0 => log::info!("{n} Office 365 content fetches cut off by the last stop are taken up again"),
                Ok(_) => {}
                Err(err) => log::warn!("releasing the Office 365 content fetches of the last run failed: {err}"),
            }
            actor.sweep(ctx);
        }));
        self.catch_up(ctx);
        ctx.run_interval(SWEEP_EVERY, |actor, ctx| actor.sweep(ctx));
        ctx.run_interval(self.feed.settings.poll_interval, |actor, ctx| actor.catch_up(ctx));
    }
}

/// New blobs were kept (a notification): fetch what is due.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Kept;

impl Handler<Kept> for Fetcher {
    type Result = ();

    fn handle(&mut self, _: Kept, ctx: &mut Context<Self>) {
        self.sweep(ctx);
    }
}

/// Stops the fetcher (fetches in progress are dropped; their claims run out).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Stop> for Fetcher {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// Why a fetch or a listing failed, for the row and the log.
type Failure = String;

/// A request the API did not answer with its content: why, and how long it asked to wait.
struct Refusal {
    why: String,
    wait: Option<Duration>,
}

impl From<String> for Refusal {
    fn from(why: String) -> Self {
        Self { why, wait: None }
    }
}

impl Feed {
    fn credentials(&self, tenant: &str) -> ClientCredentials {
        ClientCredentials {
            token_url: self.settings.token_url(tenant),
            client_id: self.settings.client_id.clone(),
            client_secret: self.settings.client_secret.clone(),
            scope: format!("{RESOURCE}/.default"),
        }
    }

    /// A GET of the API for `tenant`, with its token (replaced once if the API refuses it);
    /// the body of a 2xx answer, and the next page's address.
    async fn get(&self, tenant: &str, url: &str, max_bytes: usize) -> Result<(actix_web::web::Bytes, Option<String>), Refusal> {
        let credentials = self.credentials(tenant);
        let token = self.outbound.bearer(&credentials, None).await?;
        let mut answer = self.outbound.get(url, &token, max_bytes).await?;
        if answer.status == 401 {
            let token = self.outbound.bearer(&credentials, Some(&token)).await?;
            answer = self.outbound.get(url, &token, max_bytes).await?;
        }
        if !(200..300).contains(&answer.status) {
            let said: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
            let message = said["error"]["message"].as_str().or(said["error"].as_str()).or(said["Message"].as_str()).unwrap_or_default();
            let asked = answer.retry_after.map(|d| format!(" (asked to wait {})", humantime::format_duration(d))).unwrap_or_default();
            let said = if message.is_empty() { String::new() } else { format!(": {}", crate::channels::text::cut(message, 300)) };
            let wait = answer.retry_after.filter(|_| matches!(answer.status, 429 | 503));
            return Err(Refusal { why: format!("the Management Activity API answered HTTP {}{said}{asked}", answer.status), wait });
        }
        Ok((answer.body, answer.next_page))
    }
}

/// One blob: claim, fetch, ingest, record. Logs what happened.
async fn fetch(feed: Feed, row: ContentRow) {
    let store = feed.router.store().clone();
    let now = now_ms();
    let (id, holder, until) = (row.content_id.clone(), feed.holder.clone(), now + feed.lease_ms);
    match store.write(move |conn| o365::claim(conn, &id, &holder, until, now)).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(err) => return log::warn!("claiming Office 365 content {} failed: {err}", row.content_id),
    }
    let result = if now >= row.content_expiration {
        Err(Failed { why: "the content expired before it could be fetched".into(), wait: None, last: true })
    } else {
        fetch_and_ingest(&feed, &row).await
    };
    let now = now_ms();
    let outcome = match result {
        Ok(records) => {
            log::info!("fetched Office 365 content {} of tenant {}: {records} records", row.content_id, row.organization_id);
            Ok(records as i32)
        }
        Err(Failed { why, wait, last }) => {
            let next = if last { None } else { feed::next_fetch(&feed.schedule, row.attempts as u32 + 1, wait, now, row.content_expiration) };
            match next {
                Some(at) => log::warn!("fetching Office 365 content {} failed ({why}); trying again in {}", row.content_id, humantime::format_duration(Duration::from_millis((at - now).max(0) as u64))),
                None => log::warn!("Office 365 content {} of tenant {} is not fetched ({why}); it expires and its records are not read", row.content_id, row.organization_id),
            }
            Err((why, next))
        }
    };
    let (id, holder) = (row.content_id.clone(), feed.holder.clone());
    if let Err(err) = store.write(move |conn| o365::finish(conn, &id, &holder, outcome, now)).await {
        // The claim runs out and the blob is fetched again; its records are then duplicates.
        log::warn!("recording the fetch of Office 365 content {} failed: {err}", row.content_id);
    }
}

/// Why a fetch failed: what to tell, how long the API asked to wait, and whether that is the
/// end (a blob that can never be fetched is not tried again).
struct Failed {
    why: Failure,
    wait: Option<Duration>,
    last: bool,
}

impl Failed {
    fn again(why: impl Into<String>) -> Self {
        Self { why: why.into(), wait: None, last: false }
    }
}

/// Fetches a blob and ingests its records: how many there were, or why not.
async fn fetch_and_ingest(feed: &Feed, row: &ContentRow) -> Result<usize, Failed> {
    let uri = row.content().check_uri(&feed.settings.api_root).map_err(|why| Failed { why, wait: None, last: true })?;
    let (body, _) = feed.get(&row.organization_id, &uri, MAX_BLOB_BYTES).await.map_err(|r| Failed { why: r.why, wait: r.wait, last: false })?;
    // Parsing megabytes of JSON is left to a blocking thread, not the actors' one.
    let parsed = actix_web::web::block(move || serde_json::from_slice::<Value>(&body)).await.map_err(|e| Failed::again(format!("reading the blob failed: {e}")))?;
    let records = match parsed {
        Ok(Value::Array(records)) => records,
        Ok(_) => return Err(Failed::again("the blob is not an array of audit records")),
        Err(e) => return Err(Failed::again(format!("the blob is not JSON: {e}"))),
    };
    let count = records.len();
    let _one_blob_at_a_time = feed.ingesting.lock().await;
    for slice in feed::slices(records, feed.router.limits().max_batch_events) {
        ingest::ingest(&feed.router, &slice).await.map_err(|e| Failed::again(format!("ingesting its records failed: {e}")))?;
        // Still working: the claim is kept (a slow ingestion is not taken for a crashed one).
        let (id, holder, until) = (row.content_id.clone(), feed.holder.clone(), now_ms() + feed.lease_ms);
        if let Err(err) = feed.router.store().write(move |conn| o365::renew(conn, &id, &holder, until)).await {
            log::warn!("extending the claim on Office 365 content {} failed: {err}", row.content_id);
        }
    }
    Ok(count)
}

/// Lists every registered tenant's available content since the last listing and keeps what is new.
async fn catch_up(feed: Feed) {
    let store = feed.router.store().clone();
    let found = store.read(|conn| Ok((tenants::list(conn)?, o365::listings(conn)?))).await;
    let (tenants, listings) = match found {
        Ok(found) => found,
        Err(err) => return log::warn!("reading the tenants to list Office 365 content for failed: {err}"),
    };
    let mut seen = std::collections::HashSet::new();
    for tenant in tenants {
        let org = tenant.microsoft_tenant_id.to_lowercase();
        if !seen.insert(org.clone()) {
            continue;
        }
        let from = match listings.get(&org) {
            Some(listing) if listing.listed_until > 0 => listing.listed_until - LISTING_OVERLAP_MS,
            _ => tenant.created_at - LISTING_OVERLAP_MS,
        };
        let result = list_tenant(&feed, &org, from).await;
        let kept = result.as_ref().copied().unwrap_or_default();
        if let Err(why) = &result {
            log::warn!("listing the Office 365 content of tenant {org} failed: {why}; the next listing starts where this one stopped");
        } else if kept > 0 {
            log::info!("the Office 365 content listing of tenant {org} found {kept} blobs not yet fetched");
        }
    }
}

/// Lists one tenant's content window by window, keeping each page's blobs; records how far it
/// got. Answers how many blobs were new.
async fn list_tenant(feed: &Feed, org: &str, from: Millis) -> Result<usize, Failure> {
    let store = feed.router.store().clone();
    let mut kept = 0;
    // The API takes whole seconds: the last window ends at the next one, so nothing of this
    // second is left out (what is created later in it comes again with the overlap).
    let to = now_ms().div_euclid(1000) * 1000 + 1000;
    for window in feed::windows(from, to) {
        let mut url = feed::listing_url(&feed.settings.api_root, org, window);
        let mut seen = std::collections::HashSet::new();
        let listed = loop {
            seen.insert(url.clone());
            let (body, next) = match feed.get(org, &url, MAX_BLOB_BYTES).await {
                Ok(page) => page,
                Err(refusal) => break Err(refusal.why),
            };
            let items = match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Array(items)) => items,
                _ => break Err("the content listing is not a JSON array".into()),
            };
            let mut contents = Vec::new();
            for item in &items {
                match ContentRef::parse(item, Some(org)) {
                    Ok(content) if content.organization_id == org => contents.push(content),
                    Ok(content) => log::warn!("the content listing of tenant {org} named content of tenant {}; skipped", content.organization_id),
                    Err(why) => log::warn!("the content listing of tenant {org} holds an item that is skipped: {why}"),
                }
            }
            let now = now_ms();
            match store.write(move |conn| o365::enqueue(conn, &contents, now)).await {
                Ok(added) => kept += added.len(),
                Err(err) => break Err(format!("keeping the listed content failed: {err}")),
            }
            match next.filter(|next| !next.trim().is_empty()) {
                None => break Ok(()),
                Some(next) if seen.len() >= MAX_PAGES || seen.contains(&next) => {
                    break Err(format!("the listing's NextPageUri {next} repeats a page or goes past {MAX_PAGES} pages; not followed"))
                }
                Some(next) if !next.to_lowercase().starts_with(&format!("{}/{org}/", feed.settings.api_root.to_lowercase())) => {
                    break Err(format!("NextPageUri {next} is not under O365_API_ROOT; not followed"))
                }
                Some(next) => url = next,
            }
        };
        let org_owned = org.to_string();
        let now = now_ms();
        let result = listed.clone().map(|_| window.1);
        store
            .write(move |conn| o365::listed(conn, &org_owned, result, now))
            .await
            .map_err(|err| format!("recording the listing failed: {err}"))?;
        listed?;
    }
    Ok(kept)
}
