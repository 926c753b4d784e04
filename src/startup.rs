//! The composition root: builds `AppState`, binds the listener, wires the actix `App`, and owns
//! every background task (history writer, virtual-key refresh, limiter housekeeping, node health,
//! the webhook dispatcher, the admin API's change sync, the config file's hot reload, the stored
//! responses' writer, the spend tasks, the `pricing.url` refresh and the stop signals).
//!
//! Middleware order: `request_id` wraps the whole app, so every response — errors and 404s
//! included — carries `x-request-id`, is counted and gets one access-log line. Per resource,
//! `http::configure` adds credentials checks and then limits (see `http::guarded`).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin;
use crate::auth::Authenticator;
use crate::cache::ResponseCache;
use crate::config::{Config, Overrides};
use crate::http;
use crate::idempotency::{Idempotency, RedisErrorHook};
use crate::limits::{Limiter, RedisLink};
use crate::metrics::Metrics;
use crate::nodes::{NodeRecord, Nodes, PoolSpec};
use crate::spend::{Counters, Spend};
use crate::state::{AppState, Handles, Layers, Live};
use crate::store::{
    HistoryError, HistoryStore, StoredNode, WriterHandle, WriterSettings, response_queue, spawn_writer,
};
use crate::webhooks::{self, DeliveryHook};
use secrecy::ExposeSecret;

/// `task` labels of `ai_request_count` known at start, besides the `/ai/task` task types.
const TASKS: &[&str] = &[
    "chat",
    "messages",
    "count_tokens",
    "responses",
    "completions",
    "embeddings",
    "task",
    "worker",
];

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
    /// A setting that loads but cannot be used (a JWT key file, the Redis URL).
    #[error("{0}")]
    Setting(String),
    /// The history database could not be opened or migrated.
    #[error("{0}")]
    History(#[from] HistoryError),
}

/// A built, bound, not yet running gateway.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    writer: WriterHandle,
    background: Background,
}

/// Tasks that run beside the server and stop with it.
struct Background {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
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
        let bind_err = |source| StartupError::Bind {
            addr: addr.clone(),
            source,
        };
        let listener = TcpListener::bind(&addr).map_err(bind_err)?;
        let port = listener.local_addr().map_err(bind_err)?.port();
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        let settings = &config.settings;
        let connect_timeout = settings.routing.connect_timeout();
        let limits = settings.limits.clone();
        let shutdown = settings.shutdown.clone();
        let http_client = upstream_client(connect_timeout)?;
        // A database that cannot be reached now does not stop the gateway: requests are served,
        // the writer queues (and reports `retrying`), and the pool migrates once it connects.
        let (store, unavailable) = HistoryStore::open(&settings.database_url).await?;
        let (history, writer) = spawn_writer(store.clone(), writer_settings(&config)).map_err(|e| {
            let path = settings
                .history
                .spool_path
                .as_deref()
                .unwrap_or_else(|| std::path::Path::new(""));
            StartupError::Setting(format!("history.spool_path {}: {e}", path.display()))
        })?;
        let (responses, response_writer) = response_queue(store.clone());
        let database_watch = unavailable.map(|e| {
            tracing::warn!(error = %e, "history database unreachable at start; serving, and retrying in the background");
            history.set_database_down(Some(e.to_string()));
            spawn_database_watch(store.clone(), history.clone())
        });
        let ids: Vec<_> = config.providers.iter().map(|p| p.id.clone()).collect();
        let task_types = crate::pipeline::task_types(&settings.tasks);
        let labels: Vec<&str> = TASKS
            .iter()
            .copied()
            .chain(task_types.keys().map(String::as_str))
            .collect();
        let metrics = Arc::new(Metrics::new(&ids, &labels).map_err(|e| StartupError::Setting(e.to_string()))?);
        let route_targets = route_series(&config);
        metrics.add_routes(
            &route_targets
                .iter()
                .map(|(r, p, m)| (r.as_str(), p.as_str(), m.as_str()))
                .collect::<Vec<_>>(),
        );
        let auth_config = crate::auth::AuthConfig::new(&settings.auth).map_err(StartupError::Setting)?;
        auth_config.prime(None).await;
        let auth = Arc::new(Authenticator::from_config(auth_config));
        let limiter = Arc::new(Limiter::new(settings).map_err(StartupError::Setting)?);
        limiter.start();
        let refresh = Duration::try_from_secs_f64(settings.auth.refresh_seconds).unwrap_or(Duration::from_secs(2));
        let mut background = Background::start(&store, &auth, &limiter, refresh).await;
        background.tasks.extend(database_watch);
        // Stored responses reach the database off the request path; drained at shutdown.
        background
            .tasks
            .push(tokio::spawn(response_writer.run(background.cancel.clone())));
        let nodes = Arc::new(node_registry(&config));
        seed_nodes(&store, &config, &nodes).await;
        let health = NodeHealth {
            store: store.clone(),
            nodes: nodes.clone(),
            http: http_client.clone(),
            metrics: metrics.clone(),
            every: secs(config.settings.nodes.health_interval_seconds, 10.0),
            expire_after: secs(config.settings.nodes.expire_after_seconds, 86_400.0),
        };
        background
            .tasks
            .push(spawn_node_recovery(&health, background.cancel.clone()));
        background
            .tasks
            .push(spawn_node_health(health, background.cancel.clone()));
        let cache = Arc::new(ResponseCache::new(settings).map_err(StartupError::Setting)?);
        let idempotency = {
            let metrics = metrics.clone();
            let hook: RedisErrorHook = Arc::new(move || metrics.observe_idempotency_error());
            Arc::new(Idempotency::new(settings, hook).map_err(StartupError::Setting)?)
        };
        let hook: DeliveryHook = {
            let metrics = metrics.clone();
            Arc::new(move |result| metrics.observe_webhook(result.as_str()))
        };
        let (webhooks, dispatcher) =
            webhooks::spawn(&settings.webhooks, http_client.clone(), hook, background.cancel.clone());
        background.tasks.push(dispatcher);
        background
            .tasks
            .push(auth.spawn_jwks_refresh(background.cancel.clone()));
        match auth.requirement() {
            (true, why) => tracing::info!(reason = why, "client authentication is required"),
            (false, why) => tracing::warn!(
                reason = why,
                "client authentication is OFF until a key, JWT or admin token is configured or a virtual key is created"
            ),
        }
        let spend = Arc::new(budget_counters(settings)?);
        let (layers, effective) = first_layers(&store, config).await;
        let poll = secs(layers.base.settings.reload.poll_seconds, 2.0);
        let watch_file = layers.base.settings.reload.watch_file;
        let (live, skipped) = Live::build(effective, None, &metrics, &spend.fetched);
        for e in skipped {
            tracing::warn!("{e}; skipping it");
        }
        for p in live.registry.providers() {
            tracing::info!(provider = %p.config.id, kind = %p.config.kind, priority = p.config.priority, "provider enabled");
        }
        let handles = Handles {
            http: http_client,
            history,
            store,
            metrics,
            auth,
            limiter,
            nodes,
            cache,
            idempotency,
            webhooks,
            layers,
            responses,
            spend,
        };
        let state = web::Data::new(AppState::new(live, handles));
        background
            .tasks
            .push(spawn_sync(&state, poll, background.cancel.clone()));
        background
            .tasks
            .push(spawn_file_watch(&state, poll, watch_file, background.cancel.clone()));
        background.tasks.extend(spawn_spend(&state, background.cancel.clone()));
        background
            .tasks
            .extend(spawn_pricing(&state, background.cancel.clone()));
        // Before the listener serves: the first requests then find the shared limiter up.
        if !state.limiter.connect_within(REDIS_START_WAIT).await {
            tracing::warn!(
                replicas = state.live().config.settings.rate_limit.replicas,
                "redis not connected at start: limits decided locally, at this replica's share, until it is"
            );
        }
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            // Building a client cannot fail once the first one was built; if it ever did, the
            // shared one still works (it only loses connections at shutdown).
            let http = upstream_client(connect_timeout).unwrap_or_else(|_| app_state.http.clone());
            App::new()
                .app_data(web::Data::new(app_state.for_worker(http)))
                .wrap(from_fn(http::middleware::request_id::request_id))
                .configure(http::configure)
                .default_service(web::to(http::not_found))
        })
        .tcp_nodelay(true)
        .client_request_timeout(limits.header_timeout())
        .keep_alive(limits.keep_alive())
        .shutdown_timeout(whole_seconds_up(shutdown.grace() + CUT_MARGIN))
        .disable_signals()
        .listen(listener)
        .map_err(bind_err)?
        .run();
        background.tasks.push(spawn_signals(
            &state,
            server.handle(),
            &shutdown,
            background.cancel.clone(),
        ));
        tracing::info!(port, "listening");
        Ok(Self {
            port,
            server,
            state,
            writer,
            background,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (tests inspect breakers and the database through it).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// A handle that stops accepting at once and lets requests in flight finish (SIGTERM drains
    /// first: `state().shutdown.request()` does all it does).
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT (or `server_handle().stop(true)`): drains, stops accepting, lets
    /// in-flight requests and streams finish within the grace period, then stops background tasks
    /// and flushes the history writer.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.background.stop().await;
        drop(self.state);
        self.writer.shutdown().await;
        tracing::info!("stopped");
        served
    }
}

/// How long start-up waits for the shared limiter's first Redis connection (made meanwhile with
/// everything else), so the first requests are not all decided locally.
const REDIS_START_WAIT: Duration = Duration::from_secs(2);

/// The budget counters: in Redis under `REDIS_PREFIX` when `REDIS_URL` is set (a link of their
/// own, kept in the background), else in this process.
fn budget_counters(settings: &crate::config::Settings) -> Result<Spend, StartupError> {
    let link = match &settings.redis_url {
        Some(url) => {
            let link = RedisLink::new(url.expose_secret(), "budgets", Duration::from_millis(100))
                .map_err(StartupError::Setting)?;
            link.start();
            Some(link)
        }
        None => None,
    };
    Ok(Spend::new(Counters::new(link, &settings.redis_prefix)))
}

/// How often each replica re-reads the spend ledger its counters are rebuilt from.
const LEDGER_REFRESH: Duration = Duration::from_secs(5);

/// The spend tasks: the settle task (reservations replaced by costs; a threshold crossed becomes a
/// `budget.threshold` event for `webhooks.budget_url`) and the ledger refresh, which keeps each
/// counter's database total in memory so a counter Redis lost, or this replica while Redis is
/// down, starts from what was spent.
fn spawn_spend(state: &web::Data<AppState>, cancel: CancellationToken) -> Vec<JoinHandle<()>> {
    let settle = {
        let state = state.clone();
        let spend = state.spend.clone();
        let on_crossing = move |c: crate::spend::Crossing| {
            let live = state.live();
            if let Some(url) = &live.config.settings.webhooks.budget_url {
                state.webhooks.emit(url, &crate::pipeline::threshold_event(&c));
            }
        };
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = spend.run_settler(on_crossing) => {}
                () = cancel.cancelled() => {}
            }
        })
    };
    let refresh = {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                crate::pipeline::refresh_ledger(&state).await;
                tokio::select! {
                    () = tokio::time::sleep(LEDGER_REFRESH) => {}
                    () = cancel.cancelled() => return,
                }
            }
        })
    };
    vec![settle, refresh]
}

/// With `pricing.url` set at start: installs the copy saved by an earlier run, then fetches the
/// document now and every `pricing.refresh_hours` (both read from the live configuration each
/// round, so a reload changes them from the next round). A fetch in flight is abandoned at
/// shutdown.
fn spawn_pricing(state: &web::Data<AppState>, cancel: CancellationToken) -> Option<JoinHandle<()>> {
    state.live().config.settings.pricing.url.as_ref()?;
    let state = state.clone();
    Some(tokio::spawn(async move {
        tokio::select! {
            _ = crate::pipeline::load_saved_prices(&state) => {}
            () = cancel.cancelled() => return,
        }
        loop {
            // Failures are logged and shown in `/health` inside; the prices in use stay.
            tokio::select! {
                _ = crate::pipeline::refresh_prices(&state) => {}
                () = cancel.cancelled() => return,
            }
            let every = secs(state.live().config.settings.pricing.refresh_hours * 3600.0, 86_400.0);
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = cancel.cancelled() => return,
            }
        }
    }))
}

/// The pooled upstream client: connect timeout only (attempt and stream timeouts are the
/// orchestrator's), TCP_NODELAY so SSE chunks are not held back.
///
/// Redirects are never followed: reqwest would resend the body (the prompt) and every header but
/// `Authorization` (so `x-api-key`, `x-goog-api-key`, `api-key` and custom auth headers) to
/// whatever host a 3xx names, past the path routes' SSRF check of the first hop. Providers,
/// nodes, path routes, webhooks and the `pricing.url` fetch all use this client; a 3xx is an
/// answer their callers judge.
fn upstream_client(connect_timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
}

/// After a start without the database: pings it every second until it answers (the pool's first
/// connection runs the migrations), then tells the writer's status.
fn spawn_database_watch(store: HistoryStore, history: crate::store::HistorySink) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match store.ping().await {
                Ok(()) => {
                    tracing::info!("history database reachable");
                    history.set_database_down(None);
                    return;
                }
                Err(e) => history.set_database_down(Some(e.to_string())),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

fn writer_settings(config: &Config) -> WriterSettings {
    let h = &config.settings.history;
    WriterSettings {
        queue_capacity: h.queue_capacity,
        batch_size: h.batch_size,
        flush_interval: Duration::from_millis(h.flush_interval_ms),
        shutdown_flush: Duration::try_from_secs_f64(h.shutdown_flush_seconds).unwrap_or_default(),
        retention_days: h.retention_days,
        spool_path: h.spool_path.clone(),
    }
}

impl Background {
    /// Loads virtual keys once (so they work from the first request), then keeps them fresh and
    /// the limiter's memory flat.
    async fn start(store: &HistoryStore, auth: &Arc<Authenticator>, limiter: &Arc<Limiter>, refresh: Duration) -> Self {
        admin::refresh_keys(store, auth).await;
        let cancel = CancellationToken::new();
        let keys = {
            let (store, auth, cancel) = (store.clone(), auth.clone(), cancel.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(refresh);
                loop {
                    tokio::select! {
                        _ = tick.tick() => admin::refresh_keys(&store, &auth).await,
                        () = cancel.cancelled() => return,
                    }
                }
            })
        };
        let housekeeping = {
            let (limiter, auth, cancel) = (limiter.clone(), auth.clone(), cancel.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tokio::select! {
                        _ = tick.tick() => {
                            limiter.housekeeping();
                            auth.housekeeping();
                        }
                        () = cancel.cancelled() => return,
                    }
                }
            })
        };
        let mut tasks = vec![keys, housekeeping];
        // Token counts for shared (Redis) limits, handed over by each finished request.
        if let Some(writer) = limiter.token_writer() {
            let cancel = cancel.clone();
            tasks.push(tokio::spawn(async move {
                tokio::select! {
                    () = writer => {}
                    () = cancel.cancelled() => {}
                }
            }));
        }
        Self { cancel, tasks }
    }

    async fn stop(self) {
        self.cancel.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// The file's configuration and the admin API's stored changes over it. Changes that do not
/// validate here (another replica's file differs) are left out and logged; the file still serves.
async fn first_layers(store: &HistoryStore, base: Config) -> (Layers, Config) {
    let rows = match store.list_overrides().await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "admin API changes not read; serving the config file alone until the next sync");
            Vec::new()
        }
    };
    let overrides = Overrides::from_rows(rows);
    let file_stamp = base.sources.file.as_deref().and_then(admin::file_stamp);
    match base.with_overrides(&overrides) {
        Ok(effective) => (
            Layers {
                base,
                overrides,
                file_stamp,
                rejected: None,
            },
            effective,
        ),
        Err(e) => {
            for problem in &e.problems {
                tracing::error!(problem = %problem, "admin API changes in the database are invalid here; not applied");
            }
            let effective = base.clone();
            let layers = Layers {
                base,
                overrides: Overrides::default(),
                file_stamp,
                rejected: Some(overrides),
            };
            (layers, effective)
        }
    }
}

/// Every `reload.poll_seconds`: applies the admin API's changes other replicas wrote (all
/// replicas share the database, so they converge within one period).
fn spawn_sync(state: &web::Data<AppState>, every: Duration, cancel: CancellationToken) -> JoinHandle<()> {
    let state = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = cancel.cancelled() => return,
            }
            if let Err(e) = admin::sync_overrides(&state).await {
                tracing::warn!(error = %e, "admin API changes not re-read; keeping the current configuration");
            }
        }
    })
}

/// Re-reads the config file on SIGHUP, and (with `reload.watch_file`) when it changes.
///
/// The watch polls length, modification time and a content hash every `reload.poll_seconds`
/// instead of using inotify: a Kubernetes ConfigMap volume updates by swapping a `..data` symlink,
/// which an inotify watch on the file itself never sees (it keeps watching the old inode), while a
/// poll that follows the path sees the new content.
fn spawn_file_watch(
    state: &web::Data<AppState>,
    every: Duration,
    watch_file: bool,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    let state = state.clone();
    tokio::spawn(async move {
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "SIGHUP cannot be caught; reload by editing the file");
                None
            }
        };
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let cause = tokio::select! {
                _ = tick.tick() => {
                    if !(watch_file && admin::file_changed(&state).await) {
                        continue;
                    }
                    admin::ReloadCause::FileChanged
                }
                Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                    admin::ReloadCause::Signal
                }
                () = cancel.cancelled() => return,
            };
            // Problems are logged and counted inside; the running configuration stays.
            let _ = admin::reload_file(&state, cause).await;
        }
    })
}

/// How long after the grace period actix still keeps connections, so each stream the gateway
/// cuts gets its error event out before its connection is dropped.
const CUT_MARGIN: Duration = Duration::from_secs(1);

/// The signals (actix's own handling is off): SIGTERM, or `AppState.shutdown.request()`, runs
/// `Shutdown::run` (drain, stop accepting, the grace period, the cut); SIGINT, someone at a
/// terminal, skips the drain; a second signal stops at once, cutting nothing.
fn spawn_signals(
    state: &web::Data<AppState>,
    server: actix_web::dev::ServerHandle,
    settings: &crate::config::ShutdownSettings,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    let (shutdown, drain, grace) = (state.shutdown.clone(), settings.drain(), settings.grace());
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            tracing::error!("SIGTERM/SIGINT cannot be caught; stop the gateway through its server handle");
            return;
        };
        let requested = shutdown.requested();
        let drain = tokio::select! {
            _ = term.recv() => drain,
            () = requested.cancelled() => drain,
            _ = int.recv() => Duration::ZERO,
            () = cancel.cancelled() => return,
        };
        let stop = || drop(server.stop(true));
        tokio::select! {
            () = shutdown.run(drain, grace, stop) => {}
            _ = term.recv() => {}
            _ = int.recv() => {}
            () = cancel.cancelled() => return,
        }
        if !shutdown.grace_over().is_cancelled() {
            tracing::warn!("second stop signal: stopping now");
            server.stop(false).await;
        }
    })
}

/// Each named route's targets as its metric names them: route, provider, model sent (aliased).
fn route_series(config: &Config) -> Vec<(String, String, String)> {
    let mut series = Vec::new();
    for route in &config.settings.routes {
        for t in &route.targets {
            let id = crate::domain::ProviderId::new(&t.provider);
            let model = config
                .providers
                .iter()
                .find(|p| p.id == id)
                .and_then(|p| p.model_aliases.get(&t.model))
                .unwrap_or(&t.model);
            series.push((route.name.clone(), id.to_string(), model.clone()));
        }
    }
    series
}

/// The node registry for the configured pools, by priority.
fn node_registry(config: &Config) -> Nodes {
    let pools = config
        .providers
        .iter()
        .filter_map(|p| {
            Some(PoolSpec {
                id: p.id.clone(),
                runtime: p.node_pool.as_ref()?.runtime,
            })
        })
        .collect();
    Nodes::new(pools, &config.settings.nodes)
}

/// Writes the nodes the config (and `AI_NODES`) names into the shared table, keeping rows an
/// operator registered, then loads the table. Without the database the config's nodes still
/// serve.
async fn seed_nodes(store: &HistoryStore, config: &Config, nodes: &Nodes) {
    let mut seeds = Vec::new();
    for p in &config.providers {
        let Some(pool) = &p.node_pool else { continue };
        for url in &pool.nodes {
            let Ok(url) = crate::config::normalize_node_url(url) else {
                continue;
            };
            seeds.push(StoredNode::new(&url, p.id.as_str(), None, "config"));
        }
    }
    for seed in &seeds {
        if let Err(e) = store.upsert_node(seed, false).await {
            tracing::warn!(node = %seed.url, error = %e, "node not stored; it serves from memory only");
        }
    }
    let read_at = nodes.generation();
    match store.list_nodes().await {
        Ok(rows) => nodes.sync(&rows.into_iter().map(node_record).collect::<Vec<_>>(), read_at),
        Err(e) => {
            tracing::warn!(error = %e, "node table unreadable; using the configured nodes only");
            nodes.sync(&seeds.into_iter().map(node_record).collect::<Vec<_>>(), read_at);
        }
    }
}

/// A stored node as the registry takes it.
fn node_record(row: StoredNode) -> NodeRecord {
    NodeRecord {
        runtime: row.runtime.as_deref().and_then(crate::config::NodeRuntime::parse),
        url: row.url,
        pool: row.pool,
        source: row.source,
    }
}

/// What the node health loop works with.
struct NodeHealth {
    store: HistoryStore,
    nodes: Arc<Nodes>,
    http: reqwest::Client,
    metrics: Arc<Metrics>,
    every: Duration,
    expire_after: Duration,
}

/// Every `nodes.health_interval_seconds`: re-reads the node table (so replicas converge), checks
/// every node at once, updates the node gauges. Stops with the server.
fn spawn_node_health(h: NodeHealth, cancel: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(h.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = cancel.cancelled() => return,
            }
            let read_at = h.nodes.generation();
            match h.store.list_nodes().await {
                Ok(rows) => h
                    .nodes
                    .sync(&rows.into_iter().map(node_record).collect::<Vec<_>>(), read_at),
                Err(e) => tracing::warn!(error = %e, "node table not re-read; keeping the current set"),
            }
            tokio::select! {
                () = h.nodes.check_all(&h.http) => {}
                () = cancel.cancelled() => return,
            }
            crate::pipeline::expire_nodes(&h.store, &h.nodes, h.expire_after).await;
            let (online, busy) = h.nodes.counts();
            h.metrics.set_nodes(online, busy);
        }
    })
}

/// Every second (or health period, when shorter): re-checks only the offline nodes, so a node
/// that starts after the gateway, or returns, serves within about a second. Separate from the
/// health loop so a slow dead node never delays a full round.
fn spawn_node_recovery(h: &NodeHealth, cancel: CancellationToken) -> JoinHandle<()> {
    let (nodes, http) = (h.nodes.clone(), h.http.clone());
    let every = h.every.min(Duration::from_secs(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The health loop's first round runs now; recovery starts one tick later.
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = cancel.cancelled() => return,
            }
            tokio::select! {
                () = nodes.check_offline(&http) => {}
                () = cancel.cancelled() => return,
            }
        }
    })
}

/// `d` in whole seconds, rounded up (actix's shutdown timeout is whole seconds).
fn whole_seconds_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn secs(value: f64, default: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or_else(|_| Duration::from_secs_f64(default))
}
