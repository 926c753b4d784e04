//! Local GPU nodes: the in-memory registry of every `node_pool`'s nodes with their last health
//! report and heartbeat, the health checks (`probe`), the choice of node (`choice`), the job → node
//! map, forwarding worker calls (`forward`) and provisioning (`provision`).
//!
//! Depends on `config` and `domain`. The request path reads `Nodes::snapshot` and never waits:
//! the node set lives in memory (`ArcSwap`), the database (written by `pipeline`, re-read by the
//! health loop `startup` owns) only keeps replicas and restarts in step.

mod choice;
pub mod forward;
mod probe;
pub mod provision;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use dashmap::DashMap;

pub use choice::{NodeSnapshot, select_best};
pub use probe::{ProbeError, Report, probe};

use crate::config::{
    Network, NodeRuntime, NodeSettings, check_addresses, normalize_node_url, parse_network, url_host_port,
};
use crate::domain::{InFlight, ProviderId};

/// The source older builds stored for a node that joined by heartbeat alone; such rows are
/// ignored, since heartbeats now only refresh registered nodes.
pub const SOURCE_PULSE: &str = "pulse";

/// Jobs remembered in memory before the map is cleared (the database keeps them all).
const MAX_JOBS_IN_MEMORY: usize = 100_000;

/// A configured `node_pool` provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    /// Its provider id.
    pub id: ProviderId,
    /// The runtime of its nodes, unless a node was registered with its own.
    pub runtime: NodeRuntime,
}

/// A node as registered (config, database or API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// Root URL (normalised on insert).
    pub url: String,
    /// Pool id.
    pub pool: String,
    /// Its own runtime, if registered with one.
    pub runtime: Option<NodeRuntime>,
    /// `config`, `api`, `pulse` or `provision`.
    pub source: String,
}

/// Why a node cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// No `node_pool` provider is configured.
    #[error("no node pool is configured: set AI_NODES or declare a provider with `kind: node_pool`")]
    NoPool,
    /// The named pool does not exist.
    #[error("no node pool `{pool}` (configured: {known})")]
    UnknownPool {
        /// The name given.
        pool: String,
        /// The configured pools.
        known: String,
    },
    /// The URL is not a node root URL.
    #[error("url: {0}")]
    BadUrl(String),
    /// The URL leads outside `nodes.allowed_networks`.
    #[error("url `{url}` is outside nodes.allowed_networks: {reason}")]
    NotAllowed {
        url: String,
        /// What resolved where.
        reason: String,
    },
}

/// Which node accepted a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOwner {
    /// The node's root URL.
    pub node_url: String,
    pub pool: ProviderId,
    /// The id the node gave the job (clients only ever see the gateway's own id).
    pub node_job_id: String,
    /// The caller that created it (`Caller::id`); `None` = unknown, only the admin token may ask.
    pub caller: Option<String>,
}

/// One registered node and what is known of it.
#[derive(Debug)]
pub struct Node {
    /// Canonical root URL.
    pub url: String,
    pub pool: ProviderId,
    /// `pool/host:port`.
    pub id: ProviderId,
    /// As registered (`Detect` = find out).
    pub runtime: NodeRuntime,
    /// Who added it.
    pub source: String,
    /// When this replica learned of it: a node never seen counts as seen then.
    known_since: Instant,
    status: ArcSwap<Status>,
    in_flight: InFlight,
}

#[derive(Debug, Clone, Default)]
struct Status {
    detected: Option<NodeRuntime>,
    probe: Option<ProbeResult>,
    report: Option<Observed>,
    heartbeat: Option<Heartbeat>,
}

#[derive(Debug, Clone)]
struct ProbeResult {
    ok: bool,
    error: Option<String>,
}

#[derive(Debug, Clone)]
struct Observed {
    at: Instant,
    at_ms: i64,
    models: Arc<[String]>,
    busy: bool,
    running: u32,
    waiting: u32,
    slots: Option<u32>,
}

#[derive(Debug, Clone)]
struct Heartbeat {
    at: Instant,
    at_ms: i64,
    busy: bool,
    models: Option<Arc<[String]>>,
}

/// The registry: configured pools, their nodes, the job map.
#[derive(Debug)]
pub struct Nodes {
    pools: Vec<PoolSpec>,
    nodes: ArcSwap<Vec<Arc<Node>>>,
    jobs: DashMap<String, JobOwner>,
    heartbeat_window: Duration,
    health_timeout: Duration,
    allowed: Vec<Network>,
    /// Bumped by every local insert or removal, before it lands, so a `sync` computed from a
    /// database read that began earlier can tell it would undo a change it never saw.
    generation: AtomicU64,
}

impl Nodes {
    /// An empty registry for `pools`, timed by `settings`.
    pub fn new(pools: Vec<PoolSpec>, settings: &NodeSettings) -> Self {
        let heartbeat =
            Duration::try_from_secs_f64(settings.heartbeat_interval_seconds).unwrap_or(Duration::from_secs(10));
        Self {
            pools,
            nodes: ArcSwap::from_pointee(Vec::new()),
            jobs: DashMap::new(),
            generation: AtomicU64::new(0),
            heartbeat_window: heartbeat.saturating_mul(settings.missed_heartbeats.max(1)),
            health_timeout: Duration::try_from_secs_f64(settings.health_timeout_seconds)
                .unwrap_or(Duration::from_secs(3)),
            allowed: settings
                .allowed_networks
                .iter()
                .filter_map(|n| parse_network(n))
                .collect(),
        }
    }

    /// The configured pools, by priority.
    pub fn pools(&self) -> &[PoolSpec] {
        &self.pools
    }

    /// Whether any pool is configured (the catch-all proxy exists only then).
    pub fn has_pools(&self) -> bool {
        !self.pools.is_empty()
    }

    /// The pool a name refers to; `None` names the first pool (by priority).
    pub fn pool(&self, name: Option<&str>) -> Result<&PoolSpec, NodeError> {
        let Some(name) = name else {
            return self.pools.first().ok_or(NodeError::NoPool);
        };
        let id = ProviderId::new(name);
        self.pools
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(|| NodeError::UnknownPool {
                pool: name.to_owned(),
                known: self.pools.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", "),
            })
    }

    /// Every node as of now.
    pub fn snapshot(&self) -> Vec<NodeSnapshot> {
        let now = Instant::now();
        self.nodes.load().iter().map(|n| self.snapshot_of(n, now)).collect()
    }

    /// One node as of now.
    pub fn get(&self, url: &str) -> Option<NodeSnapshot> {
        let url = normalize_node_url(url).ok()?;
        let node = self.find(&url)?;
        Some(self.snapshot_of(&node, Instant::now()))
    }

    /// (online, busy) node counts, for the gauges.
    pub fn counts(&self) -> (usize, usize) {
        let all = self.snapshot();
        let online = all.iter().filter(|n| n.online).count();
        let busy = all.iter().filter(|n| n.online && n.busy).count();
        (online, busy)
    }

    /// The pool of the node whose id is `id` (`nodes/gpu-1:8000` → `nodes`).
    pub fn pool_of(&self, id: &ProviderId) -> Option<ProviderId> {
        if let Some(n) = self.nodes.load().iter().find(|n| &n.id == id) {
            return Some(n.pool.clone());
        }
        let prefix = id.as_str().split_once('/')?.0;
        self.pools
            .iter()
            .find(|p| p.id.as_str() == prefix)
            .map(|p| p.id.clone())
    }

    /// Checks a record against the pools and `nodes.allowed_networks`, and normalises its URL.
    pub async fn admit(&self, record: NodeRecord) -> Result<NodeRecord, NodeError> {
        let url = normalize_node_url(&record.url).map_err(NodeError::BadUrl)?;
        if url.len() > MAX_URL_BYTES || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(NodeError::BadUrl(format!(
                "a node URL is at most {MAX_URL_BYTES} bytes without spaces or control characters"
            )));
        }
        // `%` would be an IPv6 zone (`fe80::1%25eth0`) or an encoded host: no client reaches either.
        let Some((host, port)) = url_host_port(&url).filter(|(h, p)| !h.is_empty() && !h.contains('%') && *p != 0)
        else {
            return Err(NodeError::BadUrl(format!("`{url}` has no usable host and port")));
        };
        let pool = self.pool(Some(&record.pool))?.id.to_string();
        if self.allowed.is_empty() {
            refuse_never_nodes(&url, &host, port).await?;
        }
        self.check_allowed(&url).await?;
        Ok(NodeRecord { url, pool, ..record })
    }

    /// Adds (or, when its pool or runtime changed, replaces) a node; returns it as of now.
    pub fn insert(&self, record: &NodeRecord) -> Result<NodeSnapshot, NodeError> {
        let url = normalize_node_url(&record.url).map_err(NodeError::BadUrl)?;
        let pool = self.pool(Some(&record.pool))?.clone();
        let node = self.node_for(&url, &pool, record);
        let kept = node.clone();
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.nodes.rcu(|nodes| {
            let mut next: Vec<Arc<Node>> = nodes.iter().filter(|n| n.url != url).cloned().collect();
            next.push(kept.clone());
            next
        });
        tracing::info!(node = %url, pool = %pool.id, source = %record.source, "node registered");
        Ok(self.snapshot_of(&node, Instant::now()))
    }

    /// Removes a node; returns whether it was registered.
    pub fn remove(&self, url: &str) -> bool {
        let Ok(url) = normalize_node_url(url) else {
            return false;
        };
        let before = self.nodes.load().len();
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.nodes
            .rcu(|nodes| nodes.iter().filter(|n| n.url != url).cloned().collect::<Vec<_>>());
        let removed = self.nodes.load().len() < before;
        if removed {
            tracing::info!(node = %url, "node removed");
        }
        removed
    }

    /// The change counter to read before reading the database for `sync`.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Makes the node set equal to `records` (the database's), keeping what is known of nodes that
    /// stay. Records of pools this replica does not have are skipped. `read_at` is `generation()`
    /// as it was before the database was read: when a node was registered or removed here since,
    /// the records may predate it and nothing is changed (the next round reads again), so a
    /// registration is never undone by a health round that read the table a moment before it.
    pub fn sync(&self, records: &[NodeRecord], read_at: u64) {
        self.nodes.rcu(|current| {
            if self.generation.load(Ordering::SeqCst) != read_at {
                return Arc::clone(current);
            }
            self.synced(current, records)
        });
    }

    fn synced(&self, current: &Arc<Vec<Arc<Node>>>, records: &[NodeRecord]) -> Arc<Vec<Arc<Node>>> {
        let mut next = Vec::with_capacity(records.len());
        for record in records {
            // Rows an older build stored for heartbeats from unknown URLs: nobody registered them.
            if record.source == SOURCE_PULSE {
                continue;
            }
            let Ok(url) = normalize_node_url(&record.url) else {
                continue;
            };
            let Ok(pool) = self.pool(Some(&record.pool)) else {
                tracing::debug!(node = %url, pool = %record.pool, "node of an unknown pool skipped");
                continue;
            };
            let runtime = record.runtime.unwrap_or(pool.runtime);
            let same = current
                .iter()
                .find(|n| n.url == url && n.pool == pool.id && n.runtime == runtime);
            next.push(match same {
                Some(n) => n.clone(),
                None => Arc::new(new_node(&url, pool, record)),
            });
        }
        let changed = next.len() != current.len() || next.iter().any(|a| !current.iter().any(|b| Arc::ptr_eq(a, b)));
        if !changed {
            return Arc::clone(current);
        }
        tracing::info!(nodes = next.len(), "node set updated from the database");
        Arc::new(next)
    }

    /// Records a heartbeat; `false` when the URL is not registered.
    pub fn pulse(&self, url: &str, busy: bool, models: Option<Vec<String>>) -> bool {
        let Ok(url) = normalize_node_url(url) else {
            return false;
        };
        let Some(node) = self.find(&url) else {
            return false;
        };
        let was_online = self.snapshot_of(&node, Instant::now()).online;
        let beat = Heartbeat {
            at: Instant::now(),
            at_ms: now_ms(),
            busy,
            models: models.map(Arc::from),
        };
        node.status.rcu(|s| Status {
            heartbeat: Some(beat.clone()),
            ..(**s).clone()
        });
        if !was_online {
            tracing::info!(node = %node.url, "node online (heartbeat)");
        }
        true
    }

    /// Reads every node's health at once, each within `nodes.health_timeout_seconds`.
    pub async fn check_all(&self, http: &reqwest::Client) {
        let nodes = self.nodes.load_full();
        futures_util::future::join_all(nodes.iter().map(|n| self.check(http, n))).await;
    }

    /// Reads the health of every node that is offline now, so a node that starts late or comes
    /// back is seen within one recovery tick rather than one health period.
    pub async fn check_offline(&self, http: &reqwest::Client) {
        let nodes = self.nodes.load_full();
        let now = Instant::now();
        let offline = nodes.iter().filter(|n| !self.snapshot_of(n, now).online);
        futures_util::future::join_all(offline.map(|n| self.check(http, n))).await;
    }

    /// Reads one node's health now.
    pub async fn check_url(&self, http: &reqwest::Client, url: &str) -> Option<NodeSnapshot> {
        let url = normalize_node_url(url).ok()?;
        let node = self.find(&url)?;
        self.check(http, &node).await;
        Some(self.snapshot_of(&node, Instant::now()))
    }

    async fn check(&self, http: &reqwest::Client, node: &Arc<Node>) {
        let before = self.snapshot_of(node, Instant::now()).online;
        let runtime = node.status.load().detected.unwrap_or(node.runtime);
        let result = probe::probe(http, &node.url, runtime, self.health_timeout).await;
        let redetect = node.runtime == NodeRuntime::Detect
            && matches!(
                &result,
                Err(ProbeError::Status { .. } | ProbeError::Malformed { .. } | ProbeError::Unrecognized)
            );
        node.status.rcu(|s| {
            let mut s = (**s).clone();
            match &result {
                Ok(r) => {
                    s.detected = Some(r.runtime);
                    s.probe = Some(ProbeResult { ok: true, error: None });
                    s.report = Some(Observed {
                        at: Instant::now(),
                        at_ms: now_ms(),
                        models: Arc::from(r.models.clone()),
                        busy: r.busy,
                        running: r.running,
                        waiting: r.waiting,
                        slots: r.slots,
                    });
                }
                Err(e) => {
                    s.probe = Some(ProbeResult {
                        ok: false,
                        error: Some(e.to_string()),
                    });
                    if redetect {
                        s.detected = None;
                    }
                }
            }
            s
        });
        let after = self.snapshot_of(node, Instant::now());
        match (&result, before, after.online) {
            (_, false, true) => {
                tracing::info!(node = %node.url, runtime = after.runtime.as_str(), models = ?after.models, "node online")
            }
            (Err(e), true, false) => tracing::warn!(node = %node.url, error = %e, "node offline"),
            (Err(e), false, false) => tracing::debug!(node = %node.url, error = %e, "node still offline"),
            _ => {}
        }
    }

    /// Nodes an operator added at run time (`api`, `provision`) that neither answered a health
    /// check nor sent a heartbeat for `after` (counted from when this replica learned of them, if
    /// never): the ones to remove. Configured nodes never expire; the file names them.
    pub fn expired(&self, after: Duration) -> Vec<String> {
        let now = Instant::now();
        self.nodes
            .load()
            .iter()
            .filter(|n| n.source != "config")
            .filter(|n| {
                let s = n.status.load();
                let seen = [
                    Some(n.known_since),
                    s.report.as_ref().map(|r| r.at),
                    s.heartbeat.as_ref().map(|h| h.at),
                ]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(n.known_since);
                now.saturating_duration_since(seen) > after
            })
            .map(|n| n.url.clone())
            .collect()
    }

    /// Remembers which node accepted a job.
    pub fn remember_job(&self, job_id: &str, owner: JobOwner) {
        if self.jobs.len() >= MAX_JOBS_IN_MEMORY {
            self.jobs.clear();
        }
        self.jobs.insert(job_id.to_owned(), owner);
    }

    /// The node that accepted `job_id`, if this process saw it.
    pub fn job(&self, job_id: &str) -> Option<JobOwner> {
        self.jobs.get(job_id).map(|o| o.clone())
    }

    fn find(&self, url: &str) -> Option<Arc<Node>> {
        self.nodes.load().iter().find(|n| n.url == url).cloned()
    }

    fn node_for(&self, url: &str, pool: &PoolSpec, record: &NodeRecord) -> Arc<Node> {
        let runtime = record.runtime.unwrap_or(pool.runtime);
        match self.find(url) {
            Some(n) if n.pool == pool.id && n.runtime == runtime => n,
            _ => Arc::new(new_node(url, pool, record)),
        }
    }

    fn snapshot_of(&self, node: &Node, now: Instant) -> NodeSnapshot {
        let s = node.status.load();
        let probe_ok = s.probe.as_ref().is_some_and(|p| p.ok);
        let fresh = |h: &&Heartbeat| now.saturating_duration_since(h.at) <= self.heartbeat_window;
        let beat = s.heartbeat.as_ref().filter(fresh);
        let report = s.report.as_ref();
        // The newer of the last health report and a fresh heartbeat says what the node is doing.
        let beat_is_newer = beat.is_some_and(|h| report.is_none_or(|r| h.at >= r.at));
        let (mut models, mut busy) = report.map_or((Arc::from(Vec::new()), false), |r| (r.models.clone(), r.busy));
        if beat_is_newer && let Some(h) = beat {
            busy = h.busy;
            if let Some(m) = &h.models {
                models = m.clone();
            }
        }
        let last_seen_ms = [report.map(|r| r.at_ms), s.heartbeat.as_ref().map(|h| h.at_ms)]
            .into_iter()
            .flatten()
            .max();
        NodeSnapshot {
            url: node.url.clone(),
            pool: node.pool.clone(),
            id: node.id.clone(),
            runtime: s.detected.unwrap_or(node.runtime),
            online: probe_ok || beat.is_some(),
            busy,
            models,
            running: report.map_or(0, |r| r.running),
            waiting: report.map_or(0, |r| r.waiting),
            in_flight: node.in_flight.count(),
            queued: 0,
            slots: report.and_then(|r| r.slots),
            counter: node.in_flight.clone(),
            last_seen_ms,
            last_heartbeat_ms: s.heartbeat.as_ref().map(|h| h.at_ms),
            last_error: s.probe.as_ref().and_then(|p| p.error.clone()),
            source: node.source.clone(),
        }
    }

    async fn check_allowed(&self, url: &str) -> Result<(), NodeError> {
        if self.allowed.is_empty() {
            return Ok(());
        }
        resolve_allowed(&self.allowed, url)
            .await
            .map(|_| ())
            .map_err(|reason| NodeError::NotAllowed {
                url: url.to_owned(),
                reason,
            })
    }
}

/// Longest node URL accepted.
const MAX_URL_BYTES: usize = 2048;

/// Addresses no node has: link-local (where cloud metadata services answer, 169.254.169.254 and
/// AWS's fd00:ec2::254 among them), unspecified, multicast and broadcast. Refused unless
/// `nodes.allowed_networks` lists them, since a node receives prompts and its answers reach
/// clients.
const NEVER_NODES: &[&str] = &[
    "169.254.0.0/16",
    "fe80::/10",
    "fd00:ec2::254/128",
    "0.0.0.0/8",
    "::/128",
    "224.0.0.0/4",
    "ff00::/8",
    "255.255.255.255/32",
];

/// With no `nodes.allowed_networks`, still refuses a host that is or resolves to one of
/// `NEVER_NODES` (numeric forms like `2852039166` resolve too). A name that does not resolve yet
/// passes: the node may not exist yet, and its health checks will say so.
async fn refuse_never_nodes(url: &str, host: &str, port: u16) -> Result<(), NodeError> {
    let addrs: Vec<std::net::IpAddr> = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => match tokio::time::timeout(Duration::from_secs(2), tokio::net::lookup_host((host, port))).await {
            Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
            _ => Vec::new(),
        },
    };
    let never: Vec<Network> = NEVER_NODES.iter().filter_map(|n| parse_network(n)).collect();
    match addrs.iter().find(|ip| never.iter().any(|n| n.contains(**ip))) {
        Some(ip) => Err(NodeError::NotAllowed {
            url: url.to_owned(),
            reason: format!(
                "`{host}` is {ip}, a link-local, metadata, unspecified, multicast or broadcast address; list it in nodes.allowed_networks to allow it"
            ),
        }),
        None => Ok(()),
    }
}

/// Resolves the host of `url` and checks every address against `allowed` (node registration and
/// path routes share it); returns the addresses, so a caller can connect to exactly what was
/// checked. `Err` says why the URL is refused.
pub async fn resolve_allowed(allowed: &[Network], url: &str) -> Result<Vec<std::net::IpAddr>, String> {
    let (host, port) = url_host_port(url).ok_or_else(|| "no host".to_owned())?;
    let addrs: Vec<std::net::IpAddr> = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("`{host}` does not resolve: {e}"))?
            .map(|a| a.ip())
            .collect(),
    };
    check_addresses(allowed, &host, &addrs)?;
    Ok(addrs)
}

fn new_node(url: &str, pool: &PoolSpec, record: &NodeRecord) -> Node {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    Node {
        url: url.to_owned(),
        pool: pool.id.clone(),
        id: ProviderId::new(&format!("{}/{rest}", pool.id)),
        runtime: record.runtime.unwrap_or(pool.runtime),
        source: record.source.clone(),
        known_since: Instant::now(),
        status: ArcSwap::from_pointee(Status::default()),
        in_flight: InFlight::default(),
    }
}

fn now_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(window_ms: u64) -> Nodes {
        let settings = NodeSettings {
            heartbeat_interval_seconds: window_ms as f64 / 3000.0,
            missed_heartbeats: 3,
            ..NodeSettings::default()
        };
        let pool = PoolSpec {
            id: ProviderId::new("nodes"),
            runtime: NodeRuntime::Detect,
        };
        Nodes::new(vec![pool], &settings)
    }

    fn record(url: &str) -> NodeRecord {
        NodeRecord {
            url: url.into(),
            pool: "nodes".into(),
            runtime: None,
            source: "api".into(),
        }
    }

    #[test]
    fn nodes_get_ids_from_pool_and_address_and_start_offline() {
        let nodes = registry(300);
        let n = nodes.insert(&record("http://gpu-1:8000/v1")).unwrap();
        assert_eq!(n.url, "http://gpu-1:8000");
        assert_eq!(n.id.as_str(), "nodes/gpu-1:8000");
        assert!(!n.online);
        assert_eq!(nodes.pool_of(&n.id).unwrap().as_str(), "nodes");
        assert!(matches!(
            nodes.insert(&NodeRecord {
                pool: "gpus".into(),
                ..record("http://x:1")
            }),
            Err(NodeError::UnknownPool { .. })
        ));
    }

    #[test]
    fn a_heartbeat_makes_a_node_online_until_it_misses_three() {
        let nodes = registry(150);
        nodes.insert(&record("http://gpu-1:8000")).unwrap();
        assert!(!nodes.pulse("http://unknown:1", false, None));
        assert!(nodes.pulse("http://gpu-1:8000", true, Some(vec!["m".into()])));
        let n = nodes.get("http://gpu-1:8000").unwrap();
        assert!(n.online && n.busy);
        assert!(n.has_model("m"));
        std::thread::sleep(Duration::from_millis(200));
        assert!(!nodes.get("http://gpu-1:8000").unwrap().online);
    }

    #[test]
    fn sync_keeps_known_nodes_adds_new_ones_and_drops_the_rest() {
        let nodes = registry(300);
        nodes.insert(&record("http://a:1")).unwrap();
        nodes.insert(&record("http://b:1")).unwrap();
        nodes.pulse("http://a:1", false, None);
        let read_at = nodes.generation();
        nodes.sync(
            &[
                record("http://a:1"),
                record("http://c:1"),
                NodeRecord {
                    pool: "elsewhere".into(),
                    ..record("http://d:1")
                },
            ],
            read_at,
        );
        let urls: Vec<String> = nodes.snapshot().into_iter().map(|n| n.url).collect();
        assert_eq!(urls, ["http://a:1", "http://c:1"]);
        assert!(nodes.get("http://a:1").unwrap().online, "a keeps its heartbeat");
        assert!(nodes.remove("http://c:1/"));
        assert!(!nodes.remove("http://c:1"));
    }

    /// A health round reads the table, a node is registered (table, then memory), the round
    /// syncs: the records predate the registration and must not undo it (nor a removal).
    #[test]
    fn a_sync_from_an_older_read_never_undoes_a_registration_or_a_removal() {
        let nodes = registry(150);
        nodes.insert(&record("http://a:1")).unwrap();
        let read_at = nodes.generation();
        let rows_read_before = [record("http://a:1")];
        nodes.insert(&record("http://b:1")).unwrap();
        nodes.sync(&rows_read_before, read_at);
        assert!(nodes.get("http://b:1").is_some(), "the new node stays");
        let read_at = nodes.generation();
        let rows_read_before = [record("http://a:1"), record("http://b:1")];
        assert!(nodes.remove("http://a:1"));
        nodes.sync(&rows_read_before, read_at);
        assert!(nodes.get("http://a:1").is_none(), "the removed node stays removed");
        nodes.sync(&[record("http://b:1"), record("http://c:1")], nodes.generation());
        let urls: Vec<String> = nodes.snapshot().into_iter().map(|n| n.url).collect();
        assert_eq!(urls, ["http://b:1", "http://c:1"], "a current read applies");
    }

    #[test]
    fn run_time_nodes_never_seen_expire_and_configured_ones_do_not() {
        let nodes = registry(150);
        nodes.insert(&record("http://api:1")).unwrap();
        nodes
            .insert(&NodeRecord {
                source: "config".into(),
                ..record("http://file:1")
            })
            .unwrap();
        nodes.insert(&record("http://beating:1")).unwrap();
        assert!(nodes.expired(Duration::from_millis(100)).is_empty(), "just registered");
        std::thread::sleep(Duration::from_millis(150));
        assert!(nodes.pulse("http://beating:1", false, None));
        assert_eq!(nodes.expired(Duration::from_millis(100)), ["http://api:1"]);
    }

    #[test]
    fn rows_of_nodes_that_joined_by_heartbeat_alone_are_not_loaded() {
        let nodes = registry(150);
        nodes.sync(
            &[
                NodeRecord {
                    source: SOURCE_PULSE.into(),
                    ..record("http://rogue:1")
                },
                record("http://a:1"),
            ],
            nodes.generation(),
        );
        let urls: Vec<String> = nodes.snapshot().into_iter().map(|n| n.url).collect();
        assert_eq!(urls, ["http://a:1"]);
        assert!(!nodes.pulse("http://rogue:1", false, Some(vec!["gpt-4o".into()])));
    }

    #[test]
    fn host_and_port_come_out_of_node_urls() {
        assert_eq!(url_host_port("http://gpu-1:8000").unwrap(), ("gpu-1".into(), 8000));
        assert_eq!(url_host_port("https://h/p").unwrap(), ("h".into(), 443));
        assert_eq!(url_host_port("http://[fd00::1]:9").unwrap(), ("fd00::1".into(), 9));
    }

    #[tokio::test]
    async fn allowed_networks_refuse_addresses_outside_them() {
        let settings = NodeSettings {
            allowed_networks: vec!["10.0.0.0/8".into()],
            ..NodeSettings::default()
        };
        let nodes = Nodes::new(
            vec![PoolSpec {
                id: ProviderId::new("nodes"),
                runtime: NodeRuntime::Detect,
            }],
            &settings,
        );
        assert!(nodes.admit(record("http://10.1.2.3:8000")).await.is_ok());
        assert!(matches!(
            nodes.admit(record("http://127.0.0.1:8000")).await,
            Err(NodeError::NotAllowed { .. })
        ));
        assert!(matches!(
            nodes.admit(record("http://localhost:8000")).await,
            Err(NodeError::NotAllowed { .. })
        ));
    }
}
