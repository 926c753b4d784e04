//! `AppState`: the cheap handles every request uses, given to actix as `web::Data`.
//!
//! The live configuration (settings, provider registry, breakers) sits behind one `ArcSwap`, so a
//! reload is a single atomic swap and a request keeps the snapshot it started with.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::auth::Authenticator;
use crate::cache::ResponseCache;
use crate::config::{Config, Overrides};
use crate::domain::ProviderId;
use crate::idempotency::Idempotency;
use crate::limits::Limiter;
use crate::metrics::Metrics;
use crate::nodes::Nodes;
use crate::orchestrator::breaker::{BreakerSet, HookFactory, TransitionHook};
use crate::providers::{Registry, RegistryError};
use crate::routing::paths::PathTable;
use crate::routing::stats::RouteStats;
use crate::spend::{BudgetBook, Fetched, PriceBook, Spend};
use crate::store::{HistorySink, HistoryStore, ResponseSink};
use crate::traffic::{QueueEvent, QueueHook, Traffic};
use crate::webhooks::Webhooks;

/// One consistent snapshot of everything configuration decides.
#[derive(Debug)]
pub struct Live {
    /// Loaded configuration.
    pub config: Config,
    /// Enabled providers with adapters.
    pub registry: Registry,
    /// A breaker per registry provider.
    pub breakers: BreakerSet,
    /// Path routes and endpoint policies, compiled from `config` (looked up per request).
    pub paths: PathTable,
    /// Every model's price: `pricing:`, then `pricing.url`'s, then the catalogue's.
    pub prices: PriceBook,
    /// The budgets of `config`.
    pub budgets: BudgetBook,
}

impl Live {
    /// Builds a snapshot, keeping breaker state from `previous` for providers that remain.
    /// Providers whose kind has no adapter are left out and returned.
    /// Breaker transitions are counted in `metrics`.
    pub fn build(
        config: Config,
        previous: Option<&Live>,
        metrics: &Arc<Metrics>,
        fetched: &Fetched,
    ) -> (Self, Vec<RegistryError>) {
        let (registry, errors) = Registry::rebuild(&config.providers, previous.map(|p| &p.registry));
        let providers = registry.providers().iter().map(|p| &*p.config);
        let metrics = metrics.clone();
        let hook: HookFactory = Arc::new(move |id: &ProviderId| -> TransitionHook {
            let (metrics, id) = (metrics.clone(), id.clone());
            Arc::new(move |to| metrics.observe_breaker_transition(id.as_str(), to))
        });
        let settings = &config.settings.routing.circuit_breaker;
        let breakers = BreakerSet::build(providers, settings, previous.map(|p| &p.breakers), hook);
        (
            Self {
                paths: PathTable::build(&config.settings),
                prices: PriceBook::new(&config, fetched.clone()),
                budgets: BudgetBook::new(&config.settings),
                config,
                registry,
                breakers,
            },
            errors,
        )
    }
}

/// What the live configuration is built from: the file as last loaded (and validated) and the
/// admin API's changes as last read from the database. Behind one lock so rebuilds (file reload,
/// database sync, an admin write) happen one at a time and none undoes another.
#[derive(Debug)]
pub struct Layers {
    /// The configuration from the file and the environment.
    pub base: Config,
    /// The admin API's changes applied over it.
    pub overrides: Overrides,
    /// The file as last read (length, modification time, content hash), to notice changes.
    pub file_stamp: Option<FileStamp>,
    /// Database rows last refused as invalid here, so they are logged once, not every poll.
    pub rejected: Option<Overrides>,
}

/// What the file watch compares: a change of any part means the file changed. The hash catches
/// a rewrite within the same second and of the same length; the modification time and length
/// avoid hashing when they already differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    /// Length in bytes.
    pub len: u64,
    /// Modification time.
    pub modified: Option<std::time::SystemTime>,
    /// SHA-256 of the content.
    pub hash: [u8; 32],
}

/// Upstream model lists for `"*"` providers, cached so `/v1/models` does not fan out each call.
#[derive(Debug, Default)]
pub struct ModelCache {
    entries: tokio::sync::Mutex<HashMap<ProviderId, CachedList>>,
}

type CachedList = (Instant, Arc<Vec<String>>);

impl ModelCache {
    /// How long an upstream list is reused.
    pub const TTL: Duration = Duration::from_secs(60);

    /// A fresh cached list, if any.
    pub async fn get(&self, id: &ProviderId) -> Option<Arc<Vec<String>>> {
        let entries = self.entries.lock().await;
        entries
            .get(id)
            .filter(|(at, _)| at.elapsed() < Self::TTL)
            .map(|(_, list)| list.clone())
    }

    /// Stores a list.
    pub async fn put(&self, id: &ProviderId, list: Arc<Vec<String>>) {
        self.entries.lock().await.insert(id.clone(), (Instant::now(), list));
    }
}

/// Shared by all workers.
///
/// Each actix worker gets its own copy (`for_worker`) sharing everything but the upstream client:
/// a reqwest connection lives on the runtime that opened it, and every worker has a runtime of its
/// own, so a pool shared across workers would lose in-flight connections when an idle worker stops
/// during a graceful shutdown.
#[derive(Debug, Clone)]
pub struct AppState {
    live: Arc<ArcSwap<Live>>,
    /// The one pooled upstream client.
    pub http: reqwest::Client,
    /// When the process started (for `/health`).
    pub started: Instant,
    /// Upstream model lists.
    pub models: Arc<ModelCache>,
    /// Where history rows go (never awaited on the request path).
    pub history: HistorySink,
    /// The history database, for `/history` queries.
    pub store: HistoryStore,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Credentials checks (static keys, virtual keys, JWT, operator tokens).
    pub auth: Arc<Authenticator>,
    /// Request and token limits.
    pub limiter: Arc<Limiter>,
    /// GPU nodes with their last health, read by routing.
    pub nodes: Arc<Nodes>,
    /// The response cache (in memory, or shared through Redis).
    pub cache: Arc<ResponseCache>,
    /// Claims of repeated requests (in memory, or shared through Redis).
    pub idempotency: Arc<Idempotency>,
    /// Where route `callback` events go (never awaited on the request path).
    pub webhooks: Webhooks,
    /// Named routes' rotation turns, latency averages and in-flight counts: outside `Live`, so a
    /// reload keeps them.
    pub route_stats: Arc<RouteStats>,
    /// What `Live` is rebuilt from on a reload or an admin change.
    pub layers: Arc<tokio::sync::Mutex<Layers>>,
    /// Tells streams in flight when shutdown's grace period is over.
    pub shutdown: Shutdown,
    /// Which provider made each `/v1/responses` answer, and the stored bridged ones (memory at
    /// once, the database by a writer task; never awaited on the request path).
    pub responses: ResponseSink,
    /// Prices fetched from `pricing.url` and the budget counters.
    pub spend: Arc<Spend>,
    /// Concurrency caps' slots and queues: outside `Live`, so a reload keeps who holds and who
    /// waits (`swap` applies the new caps).
    pub traffic: Arc<Traffic>,
}

/// Shutdown's word to the requests in flight: while draining, `/readyz` answers 503 and every
/// response closes its connection; when the grace period is over, streams still running are cut
/// by the gateway (with their dialect's error event, recorded as such) before the server drops
/// their connections.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    requested: tokio_util::sync::CancellationToken,
    draining: tokio_util::sync::CancellationToken,
    grace_over: tokio_util::sync::CancellationToken,
}

impl Shutdown {
    /// Asks for what SIGTERM does, from inside the process (tests, embedding).
    pub fn request(&self) {
        self.requested.cancel();
    }

    /// Cancelled once `request` was called.
    pub fn requested(&self) -> tokio_util::sync::CancellationToken {
        self.requested.clone()
    }

    /// Starts the drain: not ready, and no connection kept alive.
    pub fn begin_drain(&self) {
        self.draining.cancel();
    }

    /// Whether the replica is on its way out (never waits: an atomic load).
    pub fn draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// Cancelled when the grace period is over.
    pub fn grace_over(&self) -> tokio_util::sync::CancellationToken {
        self.grace_over.clone()
    }

    /// Ends the grace period: every stream still running is cut now.
    pub fn end_grace(&self) {
        self.grace_over.cancel();
    }

    /// The whole SIGTERM sequence: drain for `drain` (skipped when `drain` is zero), `stop` the
    /// listener (the server's own graceful stop, which must allow longer than `grace`), then
    /// after `grace` cut the streams still running.
    pub async fn run(&self, drain: Duration, grace: Duration, stop: impl FnOnce()) {
        self.begin_drain();
        tracing::info!(
            drain_seconds = drain.as_secs_f64(),
            grace_seconds = grace.as_secs_f64(),
            "shutting down: draining (not ready, connections closed after each response)"
        );
        tokio::time::sleep(drain).await;
        tracing::info!("drain over: no longer accepting; open streams run on for the grace period");
        stop();
        tokio::time::sleep(grace).await;
        tracing::warn!("shutdown grace period over: cutting the streams still running");
        self.end_grace();
    }
}

/// The long-lived handles `AppState` is built from, besides the live snapshot.
#[derive(Debug)]
pub struct Handles {
    /// The upstream client.
    pub http: reqwest::Client,
    /// History queue.
    pub history: HistorySink,
    /// History database.
    pub store: HistoryStore,
    pub metrics: Arc<Metrics>,
    /// Credentials checks.
    pub auth: Arc<Authenticator>,
    /// Limits.
    pub limiter: Arc<Limiter>,
    /// GPU nodes.
    pub nodes: Arc<Nodes>,
    /// Response cache.
    pub cache: Arc<ResponseCache>,
    /// Claims of repeated requests.
    pub idempotency: Arc<Idempotency>,
    /// Webhook queue.
    pub webhooks: Webhooks,
    /// What the first snapshot was built from.
    pub layers: Layers,
    /// Prices fetched, budget counters, the settle queue.
    pub spend: Arc<Spend>,
    /// Response rows' queue.
    pub responses: ResponseSink,
}

impl AppState {
    /// State around an initial snapshot.
    pub fn new(live: Live, h: Handles) -> Self {
        let metrics = h.metrics.clone();
        let hook: QueueHook = Arc::new(move |event| match event {
            QueueEvent::Opened { level } => metrics.open_queue(level),
            QueueEvent::Admitted { level, waited } => metrics.observe_queue_wait(level, waited),
            QueueEvent::Refused { level, reason } => metrics.observe_queue_rejection(level, reason),
        });
        let traffic = Arc::new(Traffic::new(hook));
        traffic.configure(&live.config.providers, &live.config.settings.routes);
        Self {
            traffic,
            live: Arc::new(ArcSwap::from_pointee(live)),
            http: h.http,
            started: Instant::now(),
            models: Arc::new(ModelCache::default()),
            history: h.history,
            store: h.store,
            metrics: h.metrics,
            auth: h.auth,
            limiter: h.limiter,
            nodes: h.nodes,
            cache: h.cache,
            idempotency: h.idempotency,
            webhooks: h.webhooks,
            route_stats: Arc::new(RouteStats::default()),
            layers: Arc::new(tokio::sync::Mutex::new(h.layers)),
            shutdown: Shutdown::default(),
            responses: h.responses,
            spend: h.spend,
        }
    }

    /// This state with `http` as the upstream client: one per worker.
    pub fn for_worker(&self, http: reqwest::Client) -> Self {
        Self { http, ..self.clone() }
    }

    /// The current snapshot; hold it for the whole request.
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Installs a new snapshot atomically.
    pub fn swap(&self, live: Live) {
        self.traffic
            .configure(&live.config.providers, &live.config.settings.routes);
        self.limiter.set_replicas(live.config.settings.rate_limit.replicas);
        self.live.store(Arc::new(live));
    }
}
