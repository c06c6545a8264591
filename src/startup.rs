//! The one wiring point, shared by `main` and the tests: bind the listener, open the store
//! (running migrations), start the actors (and the Office 365 content fetcher when configured),
//! load the routing snapshot, then settle the API tokens (generating and printing any that are
//! new) and build the HTTP server. In that order, so a start that fails (the port taken, the
//! database unreachable) has printed no token and stored none.

use std::sync::Arc;

use actix::Actor;
use actix_http::{HttpService, KeepAlive};
use actix_service::{map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_web::dev::{AppConfig, Server};
use actix_web::{web, App};
use anyhow::Context;

use actix_web::middleware::DefaultHeaders;

use crate::actors::delivery::DeliveryPolicy;
use crate::domain::retry::RetryPolicy;
use crate::outbound::Outbound;
use crate::actors::messages::Reload;
use crate::actors::retry_supervisor::RetrySupervisor;
use crate::actors::rule_matcher::RuleMatcher;
use crate::handle::RouterHandle;
use crate::instance::Instance;
use crate::routes;
use crate::routes::sources::O365Source;
use crate::sources::o365::fetcher::Fetcher;
use crate::routes::ApiConfig;
use crate::settings::Settings;
use crate::store::Store;
use crate::tokens::AdminToken;

/// Connections the Office 365 content fetcher keeps to the Management Activity API.
const FETCH_CONNECTIONS: usize = 8;

/// Connections each HTTP worker keeps for Test sends and manual redeliveries.
const MANUAL_CONNECTIONS: usize = 8;

/// Headers on everything the router serves (SPEC section 9), its answers to over-long request
/// heads (`http_guard`) included.
const SECURITY_HEADERS: crate::http_guard::SecurityHeaders = &[
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
];

fn security_headers() -> DefaultHeaders {
    SECURITY_HEADERS.iter().fold(DefaultHeaders::new(), |headers, header| headers.add(*header))
}

/// A built router: bound, actors running, ready to serve.
pub struct Application {
    port: u16,
    server: Server,
    handle: RouterHandle,
    fetcher: Option<actix::Addr<Fetcher>>,
    /// The retention task, stopped first when the router stops.
    retention: actix_web::rt::task::JoinHandle<()>,
    /// Where the admin token in force came from (for the start line).
    admin_token: AdminToken,
}

impl Application {
    /// Must be called inside an actix system (`#[actix_web::main]`, `#[actix_web::test]`).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listeners = crate::listener::bind(&settings.bind_addr)?;
        let instance = Instance::new(settings.instance_id.clone());
        let store = Store::open(&settings.database, settings.database_pool_size, instance.holder(settings.delivery_timeout))?;
        let metrics = crate::metrics::Metrics::new();
        store.observe_commits(metrics.store_commit_duration.clone());
        instance.beat(&store).await.context("recording this instance in the database")?;
        let retry = Arc::new(RetryPolicy {
            schedule: settings.retry_schedule.clone(),
            jitter: settings.retry_jitter,
            max_retry_after: settings.max_retry_after,
        });
        let targets = Arc::new(settings.targets.clone());
        let policy = DeliveryPolicy {
            retry: Arc::clone(&retry),
            timeout: settings.delivery_timeout,
            create_settle: settings.create_settle,
            max_in_flight: settings.delivery_concurrency,
            queue_capacity: settings.channel_queue,
            targets: Arc::clone(&targets),
            names: settings.names.clone(),
            instance: instance.clone(),
            breaker: settings.breaker,
            disable_after: settings.disable_after,
            metrics: Arc::clone(&metrics),
            max_writes: store.record_writes(),
        };
        let supervisor = RetrySupervisor::new(store.due_sweep()).start();
        let matcher = RuleMatcher::spawn(store.clone(), policy, supervisor);
        matcher
            .send(Reload)
            .await
            .context("starting the rule matcher")?
            .context("loading rules and channels")?;
        // Last of what can stop the start: a token generated now is one that works.
        let (credentials, admin_token) = crate::tokens::in_force(&store, &settings).await?;
        let credentials = web::Data::new(credentials);
        let handle = RouterHandle::new(store.clone(), matcher, Arc::new(settings.limits.clone()), instance.clone(), Arc::clone(&metrics));
        let host = instance.id.clone();
        let fetcher = settings.o365.clone().map(|o365| {
            let outbound = Outbound::new(settings.delivery_timeout, FETCH_CONNECTIONS, Arc::clone(&targets), settings.names.clone(), &host);
            Fetcher::new(handle.clone(), o365, outbound, settings.retry_schedule.clone(), instance.id.clone(), settings.delivery_timeout).start()
        });
        let o365 = web::Data::new(O365Source { settings: settings.o365.clone(), fetcher: fetcher.clone() });
        let purged = Arc::clone(&metrics);
        let retention = actix_web::rt::spawn(crate::retention::run(store.clone(), settings.retention, move |p| purged.count_purged(p)));
        actix_web::rt::spawn(store.clone().tend_tables());
        actix_web::rt::spawn(instance.keep_beating(store));

        let api = ApiConfig { retry, targets, names: settings.names.clone() };
        let max_body = settings.limits.max_body_bytes;
        let metrics_token = web::Data::new(routes::metrics::MetricsToken(settings.metrics_token.as_deref().map(crate::domain::token::TokenHash::of)));
        let (timeout, create_settle) = (settings.delivery_timeout, settings.create_settle);
        let state = web::Data::new(handle.clone());
        let app = move || {
            // Per worker: the HTTP client is tied to its thread.
            let outbound = Outbound::new(timeout, MANUAL_CONNECTIONS, Arc::clone(&api.targets), api.names.clone(), &host).with_create_settle(create_settle);
            App::new()
                .wrap(security_headers())
                .app_data(state.clone())
                .app_data(credentials.clone())
                .app_data(o365.clone())
                .app_data(metrics_token.clone())
                .app_data(web::Data::new(api.clone()))
                .app_data(web::Data::new(outbound))
                .configure(|cfg| routes::configure(cfg, max_body))
        };
        // actix-web's `HttpServer::bind` and `listen`, spelled out so that each connection is
        // served through `http_guard` (HttpServer takes no stream of the router's own).
        let mut server = actix_server::Server::build()
            // Stopping is the router's (`cli`): requests in flight get the shutdown grace.
            .disable_signals()
            .shutdown_timeout(settings.shutdown_grace.as_secs().max(1));
        let draining = server.graceful_shutdown_signal();
        let mut port = None;
        for listener in listeners {
            let addr = listener.local_addr()?;
            port.get_or_insert(addr.port());
            let (app, draining) = (app.clone(), draining.clone());
            server = server.listen(format!("spscan-router-{addr}"), listener, move || {
                let draining = draining.clone();
                let app = app().into_factory().map_err(|err| err.error_response());
                // actix-web's defaults (`HttpServer::new`), as `HttpServer::listen` applies them.
                let h1 = HttpService::build()
                    .keep_alive(KeepAlive::default())
                    .client_request_timeout(std::time::Duration::from_secs(5))
                    .client_disconnect_timeout(std::time::Duration::from_secs(1))
                    .h1_allow_half_closed(true)
                    .local_addr(addr)
                    .graceful_shutdown_signal(move || {
                        let draining = draining.clone();
                        async move { draining.notified().await }
                    })
                    // The one constructor of the config `HttpServer::listen` hands the App.
                    .h1(map_config(app, move |_| AppConfig::__priv_test_new(false, addr.to_string(), addr)));
                crate::http_guard::guarded(h1, SECURITY_HEADERS)
            })?;
        }
        let port = port.context("the listener has an address")?;
        let server = server.run();
        Ok(Self { port, server, handle, fetcher, retention, admin_token })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the admin token in force came from: set, generated by this start, or kept.
    pub fn admin_token(&self) -> AdminToken {
        self.admin_token
    }

    /// The in-process handle, for programs that embed the router.
    pub fn handle(&self) -> RouterHandle {
        self.handle.clone()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// Serves until `stop` resolves, then stops gracefully (SPEC section 15): no new
    /// connections, requests in flight answered, no new attempts, attempts in flight finished and
    /// recorded, all within `grace`. What was cut off stays pending and resumes at the next start.
    pub async fn run_until(self, stop: impl std::future::Future<Output = ()>, grace: std::time::Duration) -> std::io::Result<()> {
        let server = self.server.handle();
        let serving = actix_web::rt::spawn(self.server);
        stop.await;
        let deadline = std::time::Instant::now() + grace;
        log::info!("stopping: requests and attempts in flight get up to {}", humantime::format_duration(grace));
        if let Some(fetcher) = &self.fetcher {
            fetcher.do_send(crate::sources::o365::fetcher::Stop);
        }
        self.retention.abort();
        // At once and together: new connections are refused and the requests in flight answered
        // (events they commit from now on wait in the database for the next start), and no new
        // attempt starts while those in flight finish and are recorded.
        let http = actix_web::rt::time::timeout(grace, server.stop(true));
        let (_, busy) = futures_util::future::join(http, self.handle.drain(deadline)).await;
        // What this instance held goes to the others sharing the database at their next sweep.
        match actix_web::rt::time::timeout(std::time::Duration::from_secs(2), self.handle.store().let_go()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => log::info!("let go of {n} pending deliveries for the other instances"),
            Ok(Err(err)) => log::warn!("letting go of this instance's deliveries failed ({err}); the others take them over once its heartbeat runs out"),
            Err(_) => log::warn!("letting go of this instance's deliveries took too long; the others take them over once its heartbeat runs out"),
        }
        if busy == 0 {
            log::info!("stopped: every attempt in flight was recorded; pending deliveries resume at the next start");
        } else {
            log::warn!("stopped after {}: {busy} channels had attempts still in flight; their deliveries stay pending and are sent again at the next start", humantime::format_duration(grace));
        }
        let _ = actix_web::rt::time::timeout(std::time::Duration::from_millis(100), serving).await;
        Ok(())
    }
}
