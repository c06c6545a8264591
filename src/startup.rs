//! The one wiring point, shared by `main` and the tests: open the store (running migrations),
//! start the actors, load the routing snapshot, bind the listener and build the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;

use actix::Actor;
use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use anyhow::Context;

use crate::actors::delivery::DeliveryPolicy;
use crate::actors::messages::Reload;
use crate::actors::retry_supervisor::RetrySupervisor;
use crate::actors::rule_matcher::RuleMatcher;
use crate::handle::RouterHandle;
use crate::routes;
use crate::settings::Settings;
use crate::store::Store;

/// Settings the HTTP layer needs at request time.
#[derive(Clone)]
pub struct ApiConfig {
    pub delivery_timeout: std::time::Duration,
    pub schedule: Arc<crate::domain::retry::RetrySchedule>,
}

/// A built router: bound, actors running, ready to serve.
pub struct Application {
    port: u16,
    server: Server,
    handle: RouterHandle,
}

impl Application {
    /// Must be called inside an actix system (`#[actix_web::main]`, `#[actix_web::test]`).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = Store::open_sqlite(&settings.database_path, settings.database_pool_size)?;
        let schedule = Arc::new(settings.retry_schedule.clone());
        let policy = DeliveryPolicy {
            schedule: Arc::clone(&schedule),
            timeout: settings.delivery_timeout,
            max_in_flight: settings.delivery_concurrency,
            queue_capacity: settings.channel_queue,
        };
        let supervisor = RetrySupervisor::default().start();
        let matcher = RuleMatcher::new(store.clone(), policy, supervisor).start();
        matcher
            .send(Reload)
            .await
            .context("starting the rule matcher")?
            .context("loading rules and channels")?;
        let handle = RouterHandle::new(store, matcher, settings.max_batch_events);

        let listener = TcpListener::bind(&settings.bind_addr).with_context(|| format!("binding {}", settings.bind_addr))?;
        let port = listener.local_addr()?.port();
        let api = ApiConfig { delivery_timeout: settings.delivery_timeout, schedule };
        let max_body = settings.max_body_bytes;
        let state = web::Data::new(handle.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::Data::new(api.clone()))
                .configure(|cfg| routes::configure(cfg, max_body))
        })
        .listen(listener)?
        .run();
        Ok(Self { port, server, handle })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The in-process handle, for programs that embed the router.
    pub fn handle(&self) -> RouterHandle {
        self.handle.clone()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
