//! The composition root: builds `AppState`, binds the listener, wires the actix `App`.
//!
//! Middleware order (actix runs the last `.wrap` outermost): `request_id` is the only one now, so
//! every response — errors and 404s included — carries `x-request-id` and gets one access-log line.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

use crate::config::Config;
use crate::history::{HistoryError, HistoryStore, WriterHandle, WriterSettings, spawn_writer};
use crate::http;
use crate::metrics::Metrics;
use crate::state::{AppState, Live};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Binding the listen address failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The upstream HTTP client could not be built.
    #[error("cannot build the upstream HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The metric registry refused a family (a bug).
    #[error("cannot register metrics: {0}")]
    Metrics(String),
    /// The history database could not be opened or migrated.
    #[error("{0}")]
    History(#[from] HistoryError),
}

/// `task` labels of `ai_request_count` known at start.
const TASKS: &[&str] = &["chat", "embeddings"];

/// A built, bound, not yet running gateway.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    writer: WriterHandle,
}

/// Installs rustls' crypto provider once per process; every process that builds a reqwest client
/// needs it, tests included.
pub fn init_crypto() {
    // Err means another caller installed it first, which is just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Application {
    /// Opens and migrates the history database, binds `config.settings.listen` (port 0 picks a
    /// free port) and prepares the server.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        init_crypto();
        let addr = config.settings.listen.clone();
        let listener = TcpListener::bind(&addr).map_err(|source| StartupError::Bind {
            addr: addr.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: addr.clone(),
                source,
            })?
            .port();
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        let http_client = reqwest::Client::builder()
            .connect_timeout(config.settings.routing.connect_timeout())
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()?;
        let store = HistoryStore::connect(&config.settings.database_url).await?;
        let h = &config.settings.history;
        let (sink, writer) = spawn_writer(
            store.clone(),
            WriterSettings {
                queue_capacity: h.queue_capacity,
                batch_size: h.batch_size,
                flush_interval: Duration::from_millis(h.flush_interval_ms),
                shutdown_flush: Duration::try_from_secs_f64(h.shutdown_flush_seconds).unwrap_or_default(),
                retention_days: h.retention_days,
            },
        );
        let ids: Vec<_> = config.providers.iter().map(|p| p.id.clone()).collect();
        let metrics = Arc::new(Metrics::new(&ids, TASKS).map_err(|e| StartupError::Metrics(e.to_string()))?);
        let (live, skipped) = Live::build(config, None, &metrics);
        for e in skipped {
            tracing::warn!("{e}; skipping it");
        }
        for p in live.registry.providers() {
            tracing::info!(provider = %p.config.id, kind = %p.config.kind, priority = p.config.priority, "provider enabled");
        }
        let state = web::Data::new(AppState::new(live, http_client, sink, store, metrics));
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .wrap(from_fn(http::middleware::request_id::request_id))
                .configure(http::configure)
                .default_service(web::to(http::not_found))
        })
        .tcp_nodelay(true)
        .shutdown_timeout(30)
        .listen(listener)
        .map_err(|source| StartupError::Bind { addr, source })?
        .run();
        tracing::info!(port, "listening");
        Ok(Self {
            port,
            server,
            state,
            writer,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (tests inspect breakers through it).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// A handle that stops the server gracefully (what SIGTERM does).
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM (or `server_handle().stop(true)`): stops accepting, lets
    /// in-flight requests and streams finish within the grace period, then flushes the history
    /// writer.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        drop(self.state);
        self.writer.shutdown().await;
        tracing::info!("stopped");
        served
    }
}
