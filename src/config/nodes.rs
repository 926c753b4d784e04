//! The GPU node pool's settings: the top-level `nodes:` section and the `node_pool` provider's
//! own keys (`nodes`, `runtime`).
//!
//! `nodes.urls` (`AI_NODES`) becomes the default pool, provider id `nodes`, unless the config
//! declares a provider with that id, in which case the URLs are added to it.

use serde::Deserialize;

/// The id of the pool `AI_NODES` fills.
pub const DEFAULT_POOL: &str = "nodes";

/// The provider kind of a node pool.
pub const NODE_POOL_KIND: &str = "node_pool";

/// What a node runs, which decides how its health is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeRuntime {
    /// Find out on first contact (the default).
    #[default]
    Detect,
    /// Any OpenAI-compatible server: `/v1/models`.
    #[serde(rename = "openai")]
    OpenAi,
    /// vLLM: `/v1/models` and `/metrics` (`vllm:num_requests_running`, `vllm:num_requests_waiting`).
    Vllm,
    /// Ollama: `/api/ps` (loaded models).
    Ollama,
    /// llama.cpp's server: `/health`, `/slots`, `/v1/models`.
    #[serde(rename = "llamacpp")]
    LlamaCpp,
    /// Hugging Face TGI: `/info`.
    Tgi,
    /// SGLang: `/v1/models` and, when enabled, `/metrics`.
    Sglang,
    /// A custom worker: `/health` with `busy` and `model`.
    Worker,
}

impl NodeRuntime {
    /// The name used in config, the database and `/nodes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Detect => "detect",
            Self::OpenAi => "openai",
            Self::Vllm => "vllm",
            Self::Ollama => "ollama",
            Self::LlamaCpp => "llamacpp",
            Self::Tgi => "tgi",
            Self::Sglang => "sglang",
            Self::Worker => "worker",
        }
    }

    /// Parses a stored or requested name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Detect,
            Self::OpenAi,
            Self::Vllm,
            Self::Ollama,
            Self::LlamaCpp,
            Self::Tgi,
            Self::Sglang,
            Self::Worker,
        ]
        .into_iter()
        .find(|r| r.as_str() == name)
    }
}

/// What the catch-all forwards to a pool that does not list `worker_paths`: seed 000's worker
/// API (the paths its catch-all recognised: `generate`, `hunyuan`, `animatediff`), and nothing
/// of a runtime's own admin API (Ollama's `/api/pull`, `/api/delete`, vLLM's LoRA loading).
pub const DEFAULT_WORKER_PATHS: &[&str] = &["/generate", "/hunyuan", "/animatediff"];

/// A `node_pool` provider's node-specific settings, once resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodePoolConfig {
    /// Node root URLs seeded from the config (and `AI_NODES` for the default pool).
    pub nodes: Vec<String>,
    /// The runtime its nodes run, unless a node was registered with its own.
    pub runtime: NodeRuntime,
    /// Paths the catch-all may forward to these nodes (each and everything below it).
    pub worker_paths: Vec<String>,
}

impl NodePoolConfig {
    /// Whether the catch-all may forward the canonical `path` to this pool.
    pub fn serves_worker_path(&self, path: &str) -> bool {
        self.worker_paths.iter().any(|w| super::path_is_under(path, w))
    }
}

/// `nodes:` — health checks, heartbeats, provisioning and the default pool.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSettings {
    /// Node root URLs of the default pool `nodes` (`AI_NODES`, comma-separated).
    pub urls: Vec<String>,
    /// The default pool's priority (lower is tried first): local nodes before hosted providers.
    pub priority: i32,
    /// The default pool's runtime.
    pub runtime: NodeRuntime,
    /// How often every node's health is read (and the node table re-read).
    pub health_interval_seconds: f64,
    /// The longest one node's health check may take.
    pub health_timeout_seconds: f64,
    /// How often workers send `POST /pulse`.
    pub heartbeat_interval_seconds: f64,
    /// Heartbeats a node may miss, while health checks fail, before it counts as offline.
    pub missed_heartbeats: u32,
    /// The command `POST /nodes/provision` runs, with the host and the key file as arguments.
    pub provision_command: Option<String>,
    /// The longest the provisioning command may run.
    pub provision_timeout_seconds: f64,
    /// After the command succeeds, how long to wait for the node's first health answer.
    pub provision_wait_seconds: f64,
    /// Networks (CIDR) node URLs must resolve into; empty = any.
    pub allowed_networks: Vec<String>,
    /// The longest a catch-all worker call (`POST /{path}`) may take on one node.
    pub proxy_timeout_seconds: f64,
    /// A node registered at run time (`/register`, provisioning) that neither answers a health
    /// check nor heartbeats for this long is removed; 0 = never.
    pub expire_after_seconds: f64,
    /// Requests one node serves at once (this replica): `auto`, its runtime's slots where it
    /// reports them, or a number. More wait in the pool provider's `queue`.
    pub max_concurrency_per_node: super::PerNode,
}

impl Default for NodeSettings {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            priority: 0,
            runtime: NodeRuntime::Detect,
            health_interval_seconds: 10.0,
            health_timeout_seconds: 3.0,
            heartbeat_interval_seconds: 10.0,
            missed_heartbeats: 3,
            provision_command: None,
            provision_timeout_seconds: 600.0,
            provision_wait_seconds: 120.0,
            allowed_networks: Vec::new(),
            proxy_timeout_seconds: 300.0,
            expire_after_seconds: 86_400.0,
            max_concurrency_per_node: super::PerNode::Auto,
        }
    }
}

impl NodeSettings {
    /// Problems with these settings, each naming its key.
    pub(super) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (key, value) in [
            ("nodes.health_interval_seconds", self.health_interval_seconds),
            ("nodes.health_timeout_seconds", self.health_timeout_seconds),
            ("nodes.heartbeat_interval_seconds", self.heartbeat_interval_seconds),
            ("nodes.provision_timeout_seconds", self.provision_timeout_seconds),
            ("nodes.proxy_timeout_seconds", self.proxy_timeout_seconds),
        ] {
            if !(value.is_finite() && value > 0.0 && value < 86_400.0) {
                problems.push(format!("{key}: must be more than 0 and less than a day, got {value}"));
            }
        }
        if !(self.expire_after_seconds.is_finite() && self.expire_after_seconds >= 0.0) {
            problems.push("nodes.expire_after_seconds: must be 0 (never) or more".into());
        }
        if !(self.provision_wait_seconds.is_finite() && self.provision_wait_seconds >= 0.0) {
            problems.push("nodes.provision_wait_seconds: must be 0 or more".into());
        }
        if self.missed_heartbeats == 0 {
            problems.push("nodes.missed_heartbeats: must be at least 1".into());
        }
        for net in &self.allowed_networks {
            if parse_network(net).is_none() {
                problems.push(format!(
                    "nodes.allowed_networks: `{net}` is not a network like 10.0.0.0/8 or fd00::/8"
                ));
            }
        }
        problems
    }
}

/// A node's canonical root URL: scheme, host and port (and a path prefix, if any), without a
/// trailing `/` or `/v1` — the gateway adds `/v1/...` itself.
pub fn normalize_node_url(raw: &str) -> Result<String, String> {
    let url = raw.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("`{raw}` must start with http:// or https://"));
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(format!("`{raw}` must start with http:// or https://"));
    }
    let mut rest = rest.trim_end_matches('/');
    if let Some(stripped) = rest.strip_suffix("/v1") {
        rest = stripped.trim_end_matches('/');
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains(['@', '?', '#', ' ']) {
        return Err(format!("`{raw}` has no usable host"));
    }
    if rest.contains(['?', '#']) {
        return Err(format!("`{raw}` must not carry a query or fragment"));
    }
    Ok(format!("{scheme}://{rest}"))
}

/// A network in CIDR form (`10.0.0.0/8`, `fd00::/8`, or a single address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `ip` is inside this network.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(net)), u128::from(u32::from(ip)), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => masked(u128::from(net), u128::from(ip), 128, self.prefix),
            _ => false,
        }
    }
}

fn masked(net: u128, ip: u128, bits: u8, prefix: u8) -> bool {
    let shift = u32::from(bits - prefix.min(bits));
    if shift >= 128 {
        return true;
    }
    (net >> shift) == (ip >> shift)
}

/// `(host, port)` of an `http(s)://` URL (`[v6]` brackets removed, default ports filled in).
pub fn url_host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let default = if scheme.eq_ignore_ascii_case("https") { 443 } else { 80 };
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => default,
        };
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None => Some((authority.to_owned(), default)),
    }
}

/// Whether every address `host` resolved to lies inside `allowed` (the SSRF check shared by node
/// registration and path routes; the caller resolves, so this stays pure). `Err` says why not.
pub fn check_addresses(allowed: &[Network], host: &str, addrs: &[std::net::IpAddr]) -> Result<(), String> {
    match addrs.iter().find(|ip| !allowed.iter().any(|n| n.contains(**ip))) {
        Some(outside) => Err(format!("`{host}` is {outside}")),
        None if addrs.is_empty() => Err(format!("`{host}` resolves to nothing")),
        None => Ok(()),
    }
}

/// Parses `addr/prefix` or a bare address.
pub fn parse_network(text: &str) -> Option<Network> {
    let (addr, prefix) = match text.trim().split_once('/') {
        Some((a, p)) => (a.parse::<std::net::IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
        None => (text.trim().parse().ok()?, None),
    };
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(bits);
    (prefix <= bits).then_some(Network { addr, prefix })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_urls_are_reduced_to_their_root() {
        assert_eq!(normalize_node_url("http://gpu-1:8000").unwrap(), "http://gpu-1:8000");
        assert_eq!(
            normalize_node_url(" HTTP://gpu-1:8000/v1/ ").unwrap(),
            "http://gpu-1:8000"
        );
        assert_eq!(normalize_node_url("https://h/prefix/").unwrap(), "https://h/prefix");
        assert!(normalize_node_url("gpu-1:8000").is_err());
        assert!(normalize_node_url("ftp://gpu-1").is_err());
        assert!(normalize_node_url("http://").is_err());
        assert!(normalize_node_url("http://u:p@h").is_err());
    }

    #[test]
    fn networks_contain_their_addresses() {
        let net = parse_network("10.0.0.0/8").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.0.0.1".parse().unwrap()), "v4-mapped v6");
        let one = parse_network("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(parse_network("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(parse_network("fd00::/8").unwrap().contains("fd12::1".parse().unwrap()));
        assert!(parse_network("10.0.0.0/33").is_none());
        assert!(parse_network("nope").is_none());
    }

    #[test]
    fn runtime_names_round_trip() {
        for name in [
            "detect", "openai", "vllm", "ollama", "llamacpp", "tgi", "sglang", "worker",
        ] {
            assert_eq!(NodeRuntime::parse(name).unwrap().as_str(), name);
        }
        assert!(NodeRuntime::parse("triton").is_none());
    }
}
