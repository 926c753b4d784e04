//! The gateway under test, as a child process: the release binary `ai-gateway serve --config
//! <generated yaml>` with auth, rate limits (high enough never to refuse), metrics and Postgres
//! history on, `RUST_LOG=warn`, and a clean environment so no provider key of the caller's shell
//! enables a real provider and no `OTEL_*` variable turns traces on. The benchmark adds what a
//! production deployment runs with (`Setup::production`): a virtual key issued through the admin
//! API and one gateway-scope budget over priced models. Its log goes to a file in the run directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::client::{Conn, Mode, get, request, request_with_headers};
use crate::procfs::Proc;

/// The static client key the generated config accepts.
pub const API_KEY: &str = "sk-bench";

/// The admin token of the generated config when it issues a virtual key (32 bytes or more, so the
/// gateway does not warn about it).
const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef";

/// Models of the generated config: each is served by the mock behind one path.
pub mod models {
    /// `/v1`: JSON and normal streams.
    pub const FAST: &str = "bench-model";
    /// `/slow/v1`: streams that stay open.
    pub const SLOW: &str = "bench-slow";
    /// `/fail/v1` (503) first, then `/v1`: every request falls over once.
    pub const FALLBACK: &str = "bench-fallback";
}

/// What `cargo run` adds to the environment of the binary it runs.
const CARGO_RUN_VARS: &[&str] = &[
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_PKG_NAME",
    "CARGO_PKG_VERSION",
    "CARGO_PKG_VERSION_MAJOR",
    "CARGO_PKG_VERSION_MINOR",
    "CARGO_PKG_VERSION_PATCH",
    "CARGO_PKG_VERSION_PRE",
    "CARGO_PKG_AUTHORS",
    "CARGO_PKG_DESCRIPTION",
    "CARGO_PKG_HOMEPAGE",
    "CARGO_PKG_REPOSITORY",
    "CARGO_PKG_LICENSE",
    "CARGO_PKG_LICENSE_FILE",
    "CARGO_PKG_RUST_VERSION",
    "CARGO_PKG_README",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
];

/// Finds the gateway binary: `explicit`, else `ai-gateway` beside this binary, built first with
/// `cargo build --release --bin ai-gateway` unless `build` is false.
pub fn locate(explicit: Option<PathBuf>, build: bool) -> Result<PathBuf, String> {
    if let Some(path) = explicit {
        return path
            .is_file()
            .then_some(path.clone())
            .ok_or_else(|| format!("--gateway-bin {}: no such file", path.display()));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let path = exe.with_file_name("ai-gateway");
    if build {
        crate::report::progress("cargo build --release --bin ai-gateway (the gateway under test) ...");
        let mut cargo = std::process::Command::new("cargo");
        // `cargo run` sets these for the bench; a build script that tracks one (ring tracks
        // CARGO_MANIFEST_DIR) would otherwise see a change and rebuild half the tree each time.
        for var in CARGO_RUN_VARS {
            cargo.env_remove(var);
        }
        let status = cargo
            .args(["build", "--release", "--bin", "ai-gateway"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            return Err(format!(
                "`cargo build --release --bin ai-gateway` failed ({status:?}); build it yourself and pass --no-build"
            ));
        }
    }
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} does not exist: run `cargo build --release --bin ai-gateway` first (same CARGO_TARGET_DIR), \
             or pass --gateway-bin PATH",
            path.display()
        ))
    }
}

/// What the generated config needs.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The mock's port.
    pub mock_port: u16,
    /// History database URL (the gateway sees this one; it may point at a proxy).
    pub database_url: String,
    /// `history.queue_capacity`.
    pub queue_capacity: usize,
    /// Where the config and the log go.
    pub dir: PathBuf,
    /// Budgets over priced models, each so large it never refuses.
    pub budgets: Budgets,
    /// An admin token, and a virtual key issued through the admin API at start, which the load
    /// then sends (`Gateway::key`) instead of the static `API_KEY`.
    pub virtual_key: bool,
    /// A key pool of two keys and a concurrency cap with a queue on the `mock` provider, the cap
    /// never reached: what traffic management costs a request that passes it.
    pub traffic: bool,
    /// `REDIS_URL` for limits and budget counters; none keeps them in-process.
    pub redis: Option<String>,
    /// A command the gateway runs under (`valgrind --tool=callgrind ...`); empty: none.
    pub wrapper: Vec<String>,
}

/// Which budgets the generated config sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budgets {
    /// No prices, no budgets.
    Off,
    /// One budget for the whole gateway: what a production deployment runs with.
    Gateway,
    /// Budgets that apply to every request of the instruction count (`BUDGET_TAG`, its session,
    /// the gateway): what budgets cost per request.
    Every,
}

impl Setup {
    /// What a production deployment turns on beyond the base config: a virtual key and one
    /// gateway-scope budget (auth, a rate limit, metrics and history are always on; traces off).
    pub fn production(self) -> Self {
        Self {
            budgets: Budgets::Gateway,
            virtual_key: true,
            ..self
        }
    }
}

/// The tag the instruction count's requests send, which its budgets count.
pub const BUDGET_TAG: &str = "bench";

/// Prices for the mock's models, so budgets count real costs.
const PRICING_YAML: &str =
    "pricing: { models: [ { provider: \"mock*\", model: \"*\", input: 0.15, output: 0.6, cached_input: 0.075 } ] }
";

/// The gateway's budget, so large it never refuses.
const GATEWAY_BUDGET: &str = "  - { scope: gateway, limit_usd: 1000000000, period: monthly }
";

/// What `Budgets::Every` adds to the gateway's budget.
const EVERY_BUDGET: &str = "  - { scope: tag, name: bench, limit_usd: 1000000000, period: daily }
  - { scope: session, limit_usd: 1000000000, period: total }
";

fn budgets_yaml(budgets: Budgets) -> String {
    match budgets {
        Budgets::Off => String::new(),
        Budgets::Gateway => format!("{PRICING_YAML}budgets:\n{GATEWAY_BUDGET}"),
        Budgets::Every => format!("{PRICING_YAML}tags: [{BUDGET_TAG}]\nbudgets:\n{GATEWAY_BUDGET}{EVERY_BUDGET}"),
    }
}

/// How `Setup::traffic` gives the `mock` provider its credentials and caps.
const TRAFFIC_FIELDS: &str = "api_keys: [mock-key, {key: mock-key-2, weight: 2}], max_concurrency: 100000, queue: {size: 1000, max_wait_ms: 2000}";

/// The generated YAML.
pub fn yaml(setup: &Setup, listen: SocketAddr) -> String {
    let base = |path: &str| format!("http://127.0.0.1:{}{path}/v1", setup.mock_port);
    format!(
        "# Generated by `cargo run --release --bin bench`.
listen: {listen}
database_url: {db}
providers:
  - {{ id: mock, kind: openai, base_url: {fast}, {mock_keys}, models: [{m_fast}], priority: 1 }}
  - {{ id: mock-slow, kind: openai, base_url: {slow}, api_key: mock-key, models: [{m_slow}], priority: 1 }}
  - {{ id: mock-down, kind: openai, base_url: {fail}, api_key: mock-key, models: [{m_fallback}], priority: 1 }}
  - {{ id: mock-backup, kind: openai, base_url: {fast}, api_key: mock-key, models: [{m_fallback}], priority: 2 }}
routing:
  max_retries: 0                 # a failed provider is left at once: every fallback request makes 2 attempts
  timeout_seconds: 30
  first_token_timeout_seconds: 30
  stream_idle_timeout_seconds: 600
  backoff_base_ms: 1
  backoff_max_ms: 10
  circuit_breaker: {{ failure_threshold: 4000000000, reset_timeout_seconds: 1 }}   # never opens
auth:
  api_keys: [{API_KEY}]{admin}
rate_limit: {{ enabled: true, rpm: 1000000000, burst: 10000000 }}   # on, never refusing
history: {{ queue_capacity: {cap}, batch_size: 256, flush_interval_ms: 100 }}
logging: {{ format: json, filter: warn }}
shutdown: {{ drain_seconds: 0 }}  # no load balancer to drain: SIGTERM stops accepting at once
",
        db = setup.database_url,
        fast = base(""),
        mock_keys = if setup.traffic {
            TRAFFIC_FIELDS
        } else {
            "api_key: mock-key"
        },
        slow = base("/slow"),
        fail = base("/fail"),
        m_fast = models::FAST,
        m_slow = models::SLOW,
        m_fallback = models::FALLBACK,
        cap = setup.queue_capacity,
        admin = if setup.virtual_key {
            format!("\n  admin_token: {ADMIN_TOKEN}")
        } else {
            String::new()
        },
    ) + &budgets_yaml(setup.budgets)
        + &setup
            .redis
            .as_ref()
            .map(|url| format!("redis_url: {url}\nredis_prefix: 'bench-{}:'\n", setup.mock_port))
            .unwrap_or_default()
}

/// A running gateway.
pub struct Gateway {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its `/proc` entries.
    pub proc: Proc,
    /// Its log file.
    pub log: PathBuf,
    /// The client key to send: the virtual key with `Setup::virtual_key`, else `API_KEY`.
    pub key: String,
}

impl Gateway {
    /// Writes the config, starts the binary and waits for `/readyz` (30 s at most).
    pub async fn start(bin: &Path, setup: &Setup, name: &str) -> Result<Self, String> {
        let addr = free_port()?;
        std::fs::create_dir_all(&setup.dir).map_err(|e| format!("{}: {e}", setup.dir.display()))?;
        let config = setup.dir.join(format!("{name}.yaml"));
        std::fs::write(&config, yaml(setup, addr)).map_err(|e| format!("{}: {e}", config.display()))?;
        let log = setup.dir.join(format!("{name}.log"));
        let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut command = match setup.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let child = command
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("RUST_LOG", "warn")
            .env("DATABASE_URL", &setup.database_url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let pid = child.id().ok_or("the gateway exited at once")?;
        let mut gateway = Self {
            child,
            addr,
            proc: Proc::new(pid),
            log,
            key: API_KEY.into(),
        };
        // Under valgrind the gateway starts some fifty times slower.
        let patience = if setup.wrapper.is_empty() { 30 } else { 300 };
        gateway.wait_ready(Duration::from_secs(patience)).await?;
        if setup.virtual_key {
            gateway.key = gateway.issue_key().await?;
        }
        Ok(gateway)
    }

    /// `POST /api/v1/keys` for a virtual key, then one chat completion with it (the replica that
    /// issued a key accepts it at once).
    async fn issue_key(&self) -> Result<String, String> {
        let mut conn = Conn::new(self.addr);
        let mut answer = Vec::new();
        let req = request_with_headers(
            self.addr,
            "/api/v1/keys",
            None,
            &[("x-admin-token", ADMIN_TOKEN)],
            br#"{"name":"bench"}"#,
        );
        let reply = conn.exchange_body(&req, &mut answer).await?;
        let created: serde_json::Value =
            serde_json::from_slice(&answer).map_err(|e| format!("POST /api/v1/keys: {e}"))?;
        let key = match (reply.status, created["key"].as_str()) {
            (201, Some(key)) => key.to_owned(),
            _ => {
                return Err(format!(
                    "POST /api/v1/keys answered {}: {}",
                    reply.status,
                    String::from_utf8_lossy(&answer)
                ));
            }
        };
        let chat = request(
            self.addr,
            "/v1/chat/completions",
            Some(&key),
            &crate::scenarios::body(models::FAST, false),
        );
        let reply = conn.exchange(&chat, Mode::Full).await?;
        if reply.status != 200 {
            return Err(format!("a request with the virtual key answered {}", reply.status));
        }
        Ok(key)
    }

    async fn wait_ready(&mut self, patience: Duration) -> Result<(), String> {
        let deadline = Instant::now() + patience;
        let req = get(self.addr, "/readyz");
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the gateway exited ({status}); log: {}", self.tail()));
            }
            let mut conn = Conn::new(self.addr);
            if matches!(conn.exchange(&req, Mode::Full).await, Ok(r) if r.status == 200) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "the gateway was not ready within {} s; log: {}",
            patience.as_secs(),
            self.tail()
        ))
    }

    /// The last lines of its log.
    pub fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }

    /// `GET /health` as JSON.
    pub async fn health(&self) -> Result<serde_json::Value, String> {
        let mut conn = Conn::new(self.addr);
        let mut body = Vec::new();
        let reply = conn.exchange_body(&get(self.addr, "/health"), &mut body).await?;
        if reply.status != 200 {
            return Err(format!("/health answered {}", reply.status));
        }
        serde_json::from_slice(&body).map_err(|e| format!("/health: {e}"))
    }

    /// SIGTERM, then up to 15 s for the graceful stop (history flush), then SIGKILL.
    pub async fn stop(mut self) -> String {
        let pid = self.child.id().and_then(|p| i32::try_from(p).ok());
        if let Some(pid) = pid.and_then(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(Ok(status)) => format!("gateway stopped ({status})"),
            _ => {
                let _ = self.child.kill().await;
                "gateway killed after 15 s".into()
            }
        }
    }
}

/// A port nobody listens on now.
pub fn free_port() -> Result<SocketAddr, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    listener.local_addr().map_err(|e| format!("bind: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_config_loads_as_the_gateway_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let setup = Setup {
            mock_port: 9,
            database_url: "postgres://postgres@127.0.0.1:5432/x".into(),
            queue_capacity: 50_000,
            dir: dir.path().to_owned(),
            budgets: Budgets::Every,
            virtual_key: true,
            traffic: true,
            redis: Some("redis://127.0.0.1:6379".into()),
            wrapper: Vec::new(),
        };
        let file = dir.path().join("gateway.yaml");
        std::fs::write(&file, yaml(&setup, SocketAddr::from(([127, 0, 0, 1], 8)))).unwrap();
        let sources = ai_gateway::config::Sources {
            file: Some(file),
            env: ai_gateway::config::Env::from_pairs([("RUST_LOG", "warn")]),
        };
        let config = ai_gateway::config::load(&sources).unwrap();
        let base = |id: &str| {
            config
                .providers
                .iter()
                .find(|p| p.id.as_str() == id)
                .map(|p| p.base_url.as_str())
        };
        assert_eq!(config.providers.len(), 4);
        assert_eq!(base("mock-slow"), Some("http://127.0.0.1:9/slow/v1"));
        assert_eq!(base("mock-down"), Some("http://127.0.0.1:9/fail/v1"));
        assert_eq!(base("mock-backup"), Some("http://127.0.0.1:9/v1"));
        assert_eq!(config.settings.history.queue_capacity, 50_000);
        assert!(config.settings.rate_limit.enabled);
        assert_eq!(config.settings.routing.max_retries, 0);
        assert_eq!(config.settings.auth.api_keys.len(), 1);
        let mock = config.providers.iter().find(|p| p.id.as_str() == "mock").unwrap();
        assert_eq!(mock.key_pool.as_ref().map(|k| k.keys.len()), Some(2));
        assert_eq!(mock.max_concurrency, Some(100_000));
        assert_eq!(config.settings.budgets.len(), 3);
        assert!(config.settings.auth.admin_token.is_some());
    }

    #[test]
    fn the_production_config_has_one_gateway_budget_and_an_admin_token() {
        let dir = tempfile::tempdir().unwrap();
        let setup = Setup {
            mock_port: 9,
            database_url: "postgres://postgres@127.0.0.1:5432/x".into(),
            queue_capacity: 100_000,
            dir: dir.path().to_owned(),
            budgets: Budgets::Off,
            virtual_key: false,
            traffic: false,
            redis: None,
            wrapper: Vec::new(),
        };
        let load = |setup: &Setup| {
            let file = dir.path().join("gateway.yaml");
            std::fs::write(&file, yaml(setup, SocketAddr::from(([127, 0, 0, 1], 8)))).unwrap();
            let sources = ai_gateway::config::Sources {
                file: Some(file),
                env: ai_gateway::config::Env::from_pairs([("RUST_LOG", "warn")]),
            };
            ai_gateway::config::load(&sources).unwrap().settings
        };
        let base = load(&setup);
        assert!(base.budgets.is_empty() && base.auth.admin_token.is_none());
        let production = load(&setup.production());
        assert_eq!(production.budgets.len(), 1);
        assert!(production.auth.admin_token.is_some());
        assert!(production.rate_limit.enabled);
        assert_eq!(production.auth.api_keys.len(), 1);
    }
}
