//! `add-route`, `secure`, `metrics`, `routes`, `providers`, `nodes` and `audit`: thin calls to the
//! admin API that print what the gateway answered.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::remote::{Gateway, encode};
use super::{Outcome, say};

/// `audit`: the admin audit trail.
#[derive(Args)]
pub struct AuditArgs {
    /// Only this kind (route, path_route, security, user, provider, team, budget, tag, key, node).
    #[arg(long)]
    kind: Option<String>,
    /// Only changes at or after this RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Only this actor (`admin:<digest prefix>`).
    #[arg(long)]
    actor: Option<String>,
    /// At most this many entries (1 to 1000; default 100).
    #[arg(long)]
    limit: Option<u32>,
    /// `table` (default) or `json` (the entries with their items before and after).
    #[arg(long, default_value = "table")]
    format: String,
}

/// `add-route`.
#[derive(Args)]
pub struct AddRoute {
    /// A path route: the path served (`/predict`).
    #[arg(long, conflicts_with_all = ["name", "strategy"])]
    path: Option<String>,
    /// A named route: the name clients put in `model` (`rotation:<name>`).
    #[arg(long)]
    name: Option<String>,
    /// A named route's strategy: priority, rotation, weighted, least_latency, least_busy, autoselect.
    #[arg(long)]
    strategy: Option<String>,
    /// A path route's upstream URL, or a named route's `provider:model`; repeat for several.
    #[arg(long = "target", required = true)]
    targets: Vec<String>,
    /// A path route's HTTP method (default POST); repeat for several.
    #[arg(long = "method", requires = "path")]
    methods: Vec<String>,
    /// A named route's fallback (another route or model); repeat for several.
    #[arg(long = "fallback", requires = "name")]
    fallbacks: Vec<String>,
}

/// `secure`.
#[derive(Args)]
pub struct Secure {
    /// The endpoint (`/predict`, `/v1/chat/completions`).
    #[arg(long)]
    endpoint: String,
    /// `api-key`, `jwt` or `none`.
    #[arg(long)]
    auth: Option<String>,
    /// Requests per caller: `100/min`, `10/s`, `1000/hour` (a bare number is per minute).
    #[arg(long)]
    rate_limit: Option<String>,
}

/// `metrics`.
#[derive(Args)]
pub struct MetricsArgs {
    /// `json` or `table`.
    #[arg(long, default_value = "table", value_parser = ["json", "table"])]
    format: String,
    /// `latency`, `errors` or `traffic`.
    #[arg(long = "type")]
    kind: Option<String>,
    /// Only this endpoint (`/chat`).
    #[arg(long)]
    endpoint: Option<String>,
}

/// `routes ...`.
#[derive(Subcommand)]
pub enum RoutesAction {
    /// Every named and path route, and where it comes from (config or api).
    List,
    /// Delete a named route by name, or a path route with `--path`.
    Delete {
        /// The named route.
        #[arg(required_unless_present = "path")]
        name: Option<String>,
        /// The path route.
        #[arg(long, conflicts_with = "name")]
        path: Option<String>,
    },
}

/// `providers ...`.
#[derive(Subcommand)]
pub enum ProvidersAction {
    /// Every provider with its state.
    List,
    /// Let a provider take traffic again (every replica).
    Enable {
        /// Provider id.
        id: String,
    },
    /// Stop sending a provider traffic (every replica), without a restart.
    Disable {
        /// Provider id.
        id: String,
    },
}

/// `nodes ...`.
#[derive(Subcommand)]
pub enum NodesAction {
    /// Every GPU node with its health.
    List,
    /// Register a node.
    Add {
        /// The node's root URL (`http://gpu-1:8000`).
        // Its own id: `url` is the global `--url` (the gateway's), and clap would merge them.
        #[arg(id = "node_url", value_name = "NODE_URL")]
        url: String,
        /// The pool to join (default: the first).
        #[arg(long)]
        pool: Option<String>,
        /// What it runs (vllm, ollama, llamacpp, tgi, sglang, openai, worker, detect).
        #[arg(long)]
        runtime: Option<String>,
    },
    /// Remove a node.
    Remove {
        /// The node's URL.
        #[arg(id = "node_url", value_name = "NODE_URL")]
        url: String,
    },
}

/// `add-route`.
pub async fn add_route(gw: &Gateway, args: AddRoute) -> Result<Outcome, String> {
    let body = match (&args.path, &args.name) {
        (Some(path), _) => {
            let mut body = json!({"path": path, "targets": args.targets});
            if !args.methods.is_empty() {
                let methods: Vec<String> = args.methods.iter().map(|m| m.to_ascii_uppercase()).collect();
                body["methods"] = json!(methods);
            }
            body
        }
        (None, Some(name)) => {
            let mut body = json!({"name": name, "targets": args.targets});
            if let Some(strategy) = &args.strategy {
                body["strategy"] = json!(strategy.replace('-', "_"));
            }
            if !args.fallbacks.is_empty() {
                body["fallbacks"] = json!(args.fallbacks);
            }
            body
        }
        (None, None) => {
            return Err("add-route needs --path (a path route to a service) or --name (a named route of provider:model targets)".into());
        }
    };
    let created: Value = gw.send_json(Method::POST, "/api/v1/routes", Some(&body)).await?;
    let item = &created["item"];
    if created["kind"] == "path_route" {
        say(&format!(
            "created path route {} -> {} ({})",
            created["name"].as_str().unwrap_or_default(),
            list_text(&item["targets"]),
            list_text(&item["methods"])
        ));
    } else {
        let name = created["name"].as_str().unwrap_or_default();
        let strategy = item["strategy"].as_str().unwrap_or("priority");
        say(&format!(
            "created route {name} ({strategy}): {}; clients send model \"{strategy}:{name}\"",
            targets_text(&item["targets"])
        ));
    }
    say("every replica applies it within a few seconds");
    Ok(Outcome::Done)
}

/// `secure`.
pub async fn secure(gw: &Gateway, args: Secure) -> Result<Outcome, String> {
    if args.auth.is_none() && args.rate_limit.is_none() {
        return Err("secure needs --auth and/or --rate-limit".into());
    }
    let mut body = json!({});
    if let Some(auth) = &args.auth {
        body["authType"] = json!(auth);
    }
    if let Some(rate) = &args.rate_limit {
        body["rateLimit"] = json!(rate);
    }
    let path = format!("/api/v1/security/{}", encode_path(&args.endpoint));
    let rule: Value = gw.send_json(Method::PUT, &path, Some(&body)).await?;
    let item = &rule["item"];
    say(&format!(
        "secured {}: auth {}, rate limit {}",
        rule["name"].as_str().unwrap_or(&args.endpoint),
        item["auth"].as_str().unwrap_or("default"),
        item["rate_limit"].as_str().unwrap_or("none")
    ));
    Ok(Outcome::Done)
}

/// `metrics`.
pub async fn metrics(gw: &Gateway, args: MetricsArgs) -> Result<Outcome, String> {
    let mut query = Vec::new();
    if let Some(kind) = &args.kind {
        query.push(format!("type={}", encode(kind)));
    }
    if let Some(endpoint) = &args.endpoint {
        query.push(format!("endpoint={}", encode(endpoint)));
    }
    let path = if query.is_empty() {
        "/api/v1/metrics".to_owned()
    } else {
        format!("/api/v1/metrics?{}", query.join("&"))
    };
    let answer: Value = gw.send_json(Method::GET, &path, None).await?;
    if args.format == "json" {
        say(&serde_json::to_string_pretty(&answer).unwrap_or_default());
    } else {
        print_table_of(&answer);
    }
    Ok(Outcome::Done)
}

/// `audit`: `GET /api/v1/audit`, newest first.
pub async fn audit(gw: &Gateway, args: AuditArgs) -> Result<Outcome, String> {
    let mut query = Vec::new();
    for (name, value) in [
        ("kind", args.kind),
        ("since", args.since),
        ("actor", args.actor),
        ("limit", args.limit.map(|l| l.to_string())),
    ] {
        if let Some(v) = value {
            query.push(format!("{name}={}", encode(&v)));
        }
    }
    let path = if query.is_empty() {
        "/api/v1/audit".to_owned()
    } else {
        format!("/api/v1/audit?{}", query.join("&"))
    };
    let answer: Value = gw.send_json(Method::GET, &path, None).await?;
    if args.format == "json" {
        say(&serde_json::to_string_pretty(&answer).unwrap_or_default());
        return Ok(Outcome::Done);
    }
    let mut rows = vec![["TIME", "ACTOR", "ACTION", "KIND", "NAME"].map(str::to_owned).to_vec()];
    for e in answer["data"].as_array().into_iter().flatten() {
        rows.push(vec![
            text(&e["timestamp"]),
            text(&e["actor"]),
            text(&e["action"]),
            text(&e["kind"]),
            text(&e["name"]),
        ]);
    }
    print_rows(&rows);
    Ok(Outcome::Done)
}

/// `routes ...`.
pub async fn routes(gw: &Gateway, action: RoutesAction) -> Result<Outcome, String> {
    match action {
        RoutesAction::List => {
            let list: Value = gw.send_json(Method::GET, "/api/v1/routes", None).await?;
            let mut rows = vec![
                ["KIND", "NAME", "SOURCE", "STRATEGY", "TARGETS"]
                    .map(str::to_owned)
                    .to_vec(),
            ];
            for r in list["data"].as_array().into_iter().flatten() {
                let item = &r["item"];
                let (strategy, targets) = if r["kind"] == "path_route" {
                    (list_text(&item["methods"]), list_text(&item["targets"]))
                } else {
                    (
                        item["strategy"].as_str().unwrap_or("priority").to_owned(),
                        targets_text(&item["targets"]),
                    )
                };
                rows.push(vec![
                    text(&r["kind"]),
                    text(&r["name"]),
                    text(&r["source"]),
                    strategy,
                    targets,
                ]);
            }
            print_rows(&rows);
        }
        RoutesAction::Delete { name, path } => {
            let url = match (&path, &name) {
                (Some(p), _) => format!("/api/v1/routes?path={}", encode(p)),
                (None, Some(n)) => format!("/api/v1/routes/{}", encode(n)),
                (None, None) => return Err("routes delete needs a NAME or --path".into()),
            };
            let _: Value = gw.send_json(Method::DELETE, &url, None).await?;
            say(&format!(
                "deleted {}; every replica applies it within a few seconds",
                path.or(name).unwrap_or_default()
            ));
        }
    }
    Ok(Outcome::Done)
}

/// `providers ...`.
pub async fn providers(gw: &Gateway, action: ProvidersAction) -> Result<Outcome, String> {
    let (id, enabled) = match action {
        ProvidersAction::List => {
            let list: Value = gw.send_json(Method::GET, "/api/v1/providers", None).await?;
            let mut rows = vec![
                ["ID", "KIND", "ENABLED", "BREAKER", "SOURCE"]
                    .map(str::to_owned)
                    .to_vec(),
            ];
            for p in list["data"].as_array().into_iter().flatten() {
                rows.push(vec![
                    text(&p["id"]),
                    text(&p["kind"]),
                    text(&p["enabled"]),
                    text(&p["breaker"]),
                    text(&p["source"]),
                ]);
            }
            print_rows(&rows);
            return Ok(Outcome::Done);
        }
        ProvidersAction::Enable { id } => (id, true),
        ProvidersAction::Disable { id } => (id, false),
    };
    let path = format!("/api/v1/providers/{}", encode(&id));
    let view: Value = gw
        .send_json(Method::PUT, &path, Some(&json!({"enabled": enabled})))
        .await?;
    say(&format!(
        "provider {} is {} (every replica within a few seconds)",
        text(&view["id"]),
        if view["enabled"] == true { "enabled" } else { "disabled" }
    ));
    Ok(Outcome::Done)
}

/// `nodes ...`: the existing `/nodes`, `/register` and `DELETE /nodes/{url}`.
pub async fn nodes(gw: &Gateway, action: NodesAction) -> Result<Outcome, String> {
    match action {
        NodesAction::List => {
            let list: Value = gw.send_json(Method::GET, "/nodes", None).await?;
            let mut rows = vec![
                ["URL", "POOL", "RUNTIME", "ONLINE", "BUSY", "LAST ERROR"]
                    .map(str::to_owned)
                    .to_vec(),
            ];
            for n in list["nodes"].as_array().into_iter().flatten() {
                rows.push(vec![
                    text(&n["url"]),
                    text(&n["pool"]),
                    text(&n["runtime"]),
                    text(&n["online"]),
                    text(&n["busy"]),
                    text(&n["last_error"]),
                ]);
            }
            print_rows(&rows);
        }
        NodesAction::Add { url, pool, runtime } => {
            let body = json!({"url": url, "pool": pool, "runtime": runtime});
            let node: Value = gw.send_json(Method::POST, "/register", Some(&body)).await?;
            say(&format!(
                "registered {} in pool {} ({})",
                text(&node["url"]),
                text(&node["pool"]),
                if node["online"] == true { "online" } else { "offline" }
            ));
        }
        NodesAction::Remove { url } => {
            let _: Value = gw
                .send_json(Method::DELETE, &format!("/nodes/{}", encode(&url)), None)
                .await?;
            say(&format!("removed {url}"));
        }
    }
    Ok(Outcome::Done)
}

/// `/v1/chat/completions` → `v1/chat/completions`, each segment encoded.
fn encode_path(endpoint: &str) -> String {
    endpoint
        .trim_start_matches('/')
        .split('/')
        .map(encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// A JSON value as a table cell (`-` for null).
pub(super) fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn list_text(v: &Value) -> String {
    match v {
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => text(other),
    }
}

fn targets_text(v: &Value) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|t| format!("{}:{}", text(&t["provider"]), text(&t["model"])))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints rows as aligned columns (the first row is the header).
pub(super) fn print_rows(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<width$}", width = widths[c]))
            .collect();
        say(cells.join("  ").trim_end());
    }
}

/// A readable table of whatever `/api/v1/metrics` answers: each array of objects becomes a table
/// (columns = their keys), other fields `key: value` lines.
fn print_table_of(answer: &Value) {
    let Value::Object(map) = answer else {
        say(&text(answer));
        return;
    };
    for (key, value) in map {
        match value {
            Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
                say(&format!("{key}:"));
                let mut header: Vec<String> = Vec::new();
                for item in items.iter().filter_map(Value::as_object) {
                    for k in item.keys() {
                        if !header.contains(k) {
                            header.push(k.clone());
                        }
                    }
                }
                let mut rows = vec![header.iter().map(|h| h.to_uppercase()).collect::<Vec<_>>()];
                for item in items {
                    rows.push(header.iter().map(|h| text(&item[h])).collect());
                }
                print_rows(&rows);
            }
            Value::Object(_) => {
                say(&format!("{key}:"));
                for (k, v) in value.as_object().into_iter().flatten() {
                    say(&format!("  {k}: {}", text(v)));
                }
            }
            other => say(&format!("{key}: {}", text(other))),
        }
    }
}
