//! Health checks in each runtime's own terms: online or not, loaded models, busy, queue depth.
//!
//! | runtime  | required                 | optional extras                                          |
//! |----------|--------------------------|----------------------------------------------------------|
//! | openai   | `GET /v1/models`         |                                                          |
//! | vllm     | `GET /v1/models`         | `/metrics`: `vllm:num_requests_running`, `_waiting`      |
//! | sglang   | `GET /v1/models`         | `/metrics`: `sglang:num_running_reqs`, `num_queue_reqs`  |
//! | ollama   | `GET /api/ps`            |                                                          |
//! | llamacpp | `GET /health` (503 = loading) | `/slots` (busy when every slot works), `/v1/models` |
//! | tgi      | `GET /info` (`model_id`, `max_concurrent_requests`) | `/metrics`: `tgi_queue_size`, `tgi_batch_current_size` |
//! | worker   | `GET /health`            | its JSON: `busy`, `model`/`models`, `queue`              |
//!
//! `detect` tries the distinctive endpoints in turn (worker `/health` with `busy`/`model`, `/api/ps`,
//! `/info`, `/metrics`, `/slots`, `/v1/models`) and stops at the first connection failure.

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::config::NodeRuntime;

/// What one successful health check learned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The runtime the answer came from (resolved when configured as `detect`).
    pub runtime: NodeRuntime,
    /// Loaded models.
    pub models: Vec<String>,
    /// The node is busy (a worker says so, every llama.cpp slot works, or requests run or wait).
    pub busy: bool,
    /// Requests running.
    pub running: u32,
    /// Requests queued.
    pub waiting: u32,
    /// Requests it serves at once, where the runtime says (llama.cpp's slots, TGI's
    /// `max_concurrent_requests`): `nodes.max_concurrency_per_node: auto` caps the node there.
    pub slots: Option<u32>,
}

/// Why a health check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// No connection, or it broke.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// No answer in time.
    #[error("health check timed out")]
    Timeout,
    /// A required endpoint answered with an error status.
    #[error("GET {path} answered HTTP {status}")]
    Status {
        /// The endpoint.
        path: &'static str,
        status: u16,
    },
    /// A required endpoint answered something else than the runtime's format.
    #[error("GET {path} did not answer in {runtime}'s format")]
    Malformed {
        /// The endpoint.
        path: &'static str,
        /// The runtime expected.
        runtime: &'static str,
    },
    /// An answer longer than `MAX_ANSWER_BYTES` (refused while reading, never held whole).
    #[error("GET {path} answered more than {} bytes", MAX_ANSWER_BYTES)]
    TooLarge {
        /// The endpoint.
        path: &'static str,
    },
    /// `detect` found no known runtime.
    #[error("no known runtime answers here (tried worker, ollama, tgi, vllm, sglang, llamacpp, openai)")]
    Unrecognized,
}

/// The longest health answer read from a node (a busy vLLM's `/metrics` is a few hundred KiB): a
/// node sending more is refused before it can grow the gateway's memory.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Checks one node at `root` within `timeout`.
pub async fn probe(
    http: &reqwest::Client,
    root: &str,
    runtime: NodeRuntime,
    timeout: Duration,
) -> Result<Report, ProbeError> {
    let work = async {
        let runtime = match runtime {
            NodeRuntime::Detect => detect(http, root, timeout).await?,
            known => known,
        };
        check(http, root, runtime, timeout).await
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or(Err(ProbeError::Timeout))
}

async fn check(
    http: &reqwest::Client,
    root: &str,
    runtime: NodeRuntime,
    timeout: Duration,
) -> Result<Report, ProbeError> {
    let get = |path| fetch(http, root, path, timeout);
    let mut report = Report {
        runtime,
        ..Report::default()
    };
    match runtime {
        NodeRuntime::OpenAi | NodeRuntime::Vllm | NodeRuntime::Sglang | NodeRuntime::Detect => {
            report.models =
                models(&required(get("/v1/models").await?, "/v1/models")?).ok_or(malformed("/v1/models", runtime))?;
            let names = match runtime {
                NodeRuntime::Vllm => Some(("vllm:num_requests_running", "vllm:num_requests_waiting")),
                NodeRuntime::Sglang => Some(("sglang:num_running_reqs", "sglang:num_queue_reqs")),
                _ => None,
            };
            if let Some((running, waiting)) = names
                && let Some(body) = optional(get("/metrics").await)
            {
                let text = String::from_utf8_lossy(&body);
                report.running = gauge_sum(&text, running);
                report.waiting = gauge_sum(&text, waiting);
            }
        }
        NodeRuntime::Ollama => {
            report.models =
                ollama_loaded(&required(get("/api/ps").await?, "/api/ps")?).ok_or(malformed("/api/ps", runtime))?;
        }
        NodeRuntime::LlamaCpp => {
            required(get("/health").await?, "/health")?;
            if let Some((total, working)) = optional(get("/slots").await).and_then(|b| slots(&b)) {
                report.running = working;
                report.busy = total > 0 && working >= total;
                report.slots = (total > 0).then_some(total);
            }
            report.models = optional(get("/v1/models").await)
                .and_then(|b| models(&b))
                .unwrap_or_default();
        }
        NodeRuntime::Tgi => {
            let info = required(get("/info").await?, "/info")?;
            let (model, slots) = tgi_info(&info).ok_or(malformed("/info", runtime))?;
            report.models = vec![model];
            report.slots = slots;
            if let Some(body) = optional(get("/metrics").await) {
                let text = String::from_utf8_lossy(&body);
                report.waiting = gauge_sum(&text, "tgi_queue_size");
                report.running = gauge_sum(&text, "tgi_batch_current_size");
            }
        }
        NodeRuntime::Worker => {
            let body = required(get("/health").await?, "/health")?;
            worker_health(&body, &mut report);
        }
    }
    report.busy |= report.running > 0 || report.waiting > 0;
    Ok(report)
}

/// Finds the runtime by its distinctive endpoints.
async fn detect(http: &reqwest::Client, root: &str, timeout: Duration) -> Result<NodeRuntime, ProbeError> {
    let get = |path| fetch(http, root, path, timeout);
    // The first call also tells whether anything listens: a connection failure ends detection.
    let health = get("/health").await?;
    if let Some(body) = success(&health)
        && json(body).is_some_and(|v| v.get("busy").is_some() || v.get("model").is_some())
    {
        return Ok(NodeRuntime::Worker);
    }
    let ps = get("/api/ps").await?;
    if success(&ps)
        .and_then(json)
        .is_some_and(|v| v.get("models").is_some_and(Value::is_array))
    {
        return Ok(NodeRuntime::Ollama);
    }
    let info = get("/info").await?;
    if success(&info)
        .and_then(json)
        .is_some_and(|v| v.get("model_id").is_some())
    {
        return Ok(NodeRuntime::Tgi);
    }
    let metrics = get("/metrics").await?;
    if let Some(text) = success(&metrics).map(|b| String::from_utf8_lossy(b)) {
        if text.contains("vllm:") {
            return Ok(NodeRuntime::Vllm);
        }
        if text.contains("sglang:") {
            return Ok(NodeRuntime::Sglang);
        }
    }
    let slots = get("/slots").await?;
    if success(&slots).and_then(json).is_some_and(|v| v.is_array()) {
        return Ok(NodeRuntime::LlamaCpp);
    }
    let listed = get("/v1/models").await?;
    if success(&listed).and_then(models).is_some() {
        return Ok(NodeRuntime::OpenAi);
    }
    Err(ProbeError::Unrecognized)
}

/// One GET: the status and body, or why there was none.
async fn fetch(
    http: &reqwest::Client,
    root: &str,
    path: &'static str,
    timeout: Duration,
) -> Result<(u16, Bytes), ProbeError> {
    let resp = http
        .get(format!("{root}{path}"))
        .timeout(timeout)
        .send()
        .await
        .map_err(transport)?;
    let status = resp.status().as_u16();
    let body = read_capped(resp, path).await?;
    Ok((status, body))
}

/// The whole body, refused as soon as it is known to exceed `MAX_ANSWER_BYTES`.
async fn read_capped(mut resp: reqwest::Response, path: &'static str) -> Result<Bytes, ProbeError> {
    if resp.content_length().is_some_and(|n| n > MAX_ANSWER_BYTES as u64) {
        return Err(ProbeError::TooLarge { path });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(ProbeError::TooLarge { path });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

fn transport(e: reqwest::Error) -> ProbeError {
    if e.is_timeout() {
        ProbeError::Timeout
    } else {
        ProbeError::Unreachable(without_url(&e))
    }
}

/// reqwest's message names the URL; the node's URL is shown next to the error anyway.
fn without_url(e: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    last.unwrap_or_else(|| "connection failed".into())
}

fn success(answer: &(u16, Bytes)) -> Option<&Bytes> {
    (200..300).contains(&answer.0).then_some(&answer.1)
}

fn required(answer: (u16, Bytes), path: &'static str) -> Result<Bytes, ProbeError> {
    match answer {
        (200..=299, body) => Ok(body),
        (status, _) => Err(ProbeError::Status { path, status }),
    }
}

fn optional(answer: Result<(u16, Bytes), ProbeError>) -> Option<Bytes> {
    answer.ok().and_then(|a| success(&a).cloned())
}

fn malformed(path: &'static str, runtime: NodeRuntime) -> ProbeError {
    ProbeError::Malformed {
        path,
        runtime: runtime.as_str(),
    }
}

fn json(body: &Bytes) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

/// OpenAI's model list: `data[].id`.
pub(crate) fn models(body: &Bytes) -> Option<Vec<String>> {
    let value = json(body)?;
    let data = value.get("data")?.as_array()?;
    Some(
        data.iter()
            .filter_map(|m| m.get("id")?.as_str().map(str::to_owned))
            .collect(),
    )
}

/// Ollama's `/api/ps`: `models[].name` (or `.model`).
fn ollama_loaded(body: &Bytes) -> Option<Vec<String>> {
    let value = json(body)?;
    let list = value.get("models")?.as_array()?;
    Some(
        list.iter()
            .filter_map(|m| m.get("name").or_else(|| m.get("model"))?.as_str().map(str::to_owned))
            .collect(),
    )
}

/// llama.cpp's `/slots`: (slots, slots processing). Newer servers say `is_processing`, older
/// ones `state` (0 idle).
fn slots(body: &Bytes) -> Option<(u32, u32)> {
    let value = json(body)?;
    let list = value.as_array()?;
    let working = list
        .iter()
        .filter(|s| {
            s.get("is_processing")
                .and_then(Value::as_bool)
                .or_else(|| s.get("state").and_then(Value::as_u64).map(|st| st != 0))
                .unwrap_or(false)
        })
        .count();
    Some((count(list.len()), count(working)))
}

/// TGI's `/info`: the model, and `max_concurrent_requests` when set.
fn tgi_info(body: &Bytes) -> Option<(String, Option<u32>)> {
    let info = json(body)?;
    let model = info.get("model_id")?.as_str()?.to_owned();
    let slots = info
        .get("max_concurrent_requests")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0);
    Some((model, slots))
}

/// A seed-000 worker's `/health`: `busy`, `model` or `models`, `queue`/`queue_depth`, and a
/// `status` of `busy`.
fn worker_health(body: &Bytes, report: &mut Report) {
    let Some(value) = json(body) else { return };
    report.busy = value.get("busy").and_then(Value::as_bool).unwrap_or(false)
        || value.get("status").and_then(Value::as_str) == Some("busy");
    let mut models: Vec<String> = value
        .get("models")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(|m| m.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    if let Some(m) = value.get("model").and_then(Value::as_str).filter(|m| !m.is_empty())
        && !models.iter().any(|x| x == m)
    {
        models.insert(0, m.to_owned());
    }
    report.models = models;
    report.waiting = ["queue", "queue_depth", "queue_size"]
        .iter()
        .find_map(|k| value.get(*k).and_then(Value::as_u64))
        .map_or(0, |q| u32::try_from(q).unwrap_or(u32::MAX));
}

/// The sum of every sample of gauge `name` in a Prometheus text exposition.
pub(crate) fn gauge_sum(text: &str, name: &str) -> u32 {
    let total: f64 = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            if !(rest.starts_with('{') || rest.starts_with(' ')) {
                return None;
            }
            let after_labels = match rest.find('}') {
                Some(end) if rest.starts_with('{') => &rest[end + 1..],
                _ => rest,
            };
            after_labels.split_whitespace().next()?.parse::<f64>().ok()
        })
        .filter(|v| v.is_finite() && *v > 0.0)
        .sum();
    // Request counts: whole, non-negative; `as` saturates, so a huge value cannot wrap.
    total.round() as u32
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Bytes {
        let path = format!("{}/tests/fixtures/nodes/{name}", env!("CARGO_MANIFEST_DIR"));
        Bytes::from(std::fs::read(path).unwrap())
    }

    #[test]
    fn vllm_metrics_give_running_and_waiting_and_ignore_lookalikes() {
        let text = String::from_utf8(fixture("vllm_metrics.txt").to_vec()).unwrap();
        assert_eq!(gauge_sum(&text, "vllm:num_requests_running"), 2);
        assert_eq!(gauge_sum(&text, "vllm:num_requests_waiting"), 3);
        assert_eq!(gauge_sum(&text, "vllm:absent"), 0);
    }

    #[test]
    fn tgi_and_sglang_metrics_parse() {
        let tgi = String::from_utf8(fixture("tgi_metrics.txt").to_vec()).unwrap();
        assert_eq!(gauge_sum(&tgi, "tgi_queue_size"), 4);
        assert_eq!(gauge_sum(&tgi, "tgi_batch_current_size"), 1);
        let sg = String::from_utf8(fixture("sglang_metrics.txt").to_vec()).unwrap();
        assert_eq!(gauge_sum(&sg, "sglang:num_running_reqs"), 1);
    }

    #[test]
    fn model_lists_of_each_runtime_parse() {
        assert_eq!(
            models(&fixture("vllm_models.json")).unwrap(),
            ["meta-llama/Llama-3.1-8B-Instruct"]
        );
        assert_eq!(
            models(&fixture("llamacpp_models.json")).unwrap(),
            ["qwen2.5-0.5b-instruct-q4_k_m.gguf"]
        );
        assert_eq!(ollama_loaded(&fixture("ollama_ps.json")).unwrap(), ["llama3.2:latest"]);
        assert!(models(&Bytes::from_static(b"<html>")).is_none());
    }

    #[test]
    fn tgi_info_gives_the_model_and_its_concurrent_request_limit() {
        assert_eq!(
            tgi_info(&fixture("tgi_info.json")),
            Some(("HuggingFaceH4/zephyr-7b-beta".to_owned(), Some(128)))
        );
        assert_eq!(
            tgi_info(&Bytes::from_static(br#"{"model_id":"m"}"#)),
            Some(("m".to_owned(), None))
        );
    }

    #[test]
    fn llamacpp_slots_count_working_ones_in_both_formats() {
        assert_eq!(slots(&fixture("llamacpp_slots.json")), Some((2, 1)));
        assert_eq!(
            slots(&Bytes::from_static(br#"[{"id":0,"state":1},{"id":1,"state":1}]"#)),
            Some((2, 2))
        );
    }

    #[test]
    fn worker_health_reads_busy_model_and_queue() {
        let mut r = Report::default();
        worker_health(&fixture("worker_health.json"), &mut r);
        assert!(r.busy);
        assert_eq!(r.models, ["hunyuan-video"]);
        assert_eq!(r.waiting, 2);
        let mut idle = Report::default();
        worker_health(
            &Bytes::from_static(br#"{"status":"ok","busy":false,"model":null}"#),
            &mut idle,
        );
        assert!(!idle.busy);
        assert!(idle.models.is_empty());
    }
}
