//! `MockNode`: a GPU inference node speaking one runtime's real health formats (vLLM, Ollama,
//! llama.cpp, TGI, OpenAI, a seed-000 worker), an OpenAI chat endpoint, and optionally seed 000's
//! job API. A test changes its load (busy, running, waiting) while it runs, makes its chat fail, or
//! cuts it off the network (a `TcpProxy` sits in front, so a stopped node refuses connections).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::completion;
use super::tcp_proxy::TcpProxy;

/// The runtime a mock node imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// `/v1/models` + `/metrics` with `vllm:num_requests_*`.
    Vllm,
    /// `/api/ps`.
    Ollama,
    /// `/health`, `/slots`, `/v1/models`.
    LlamaCpp,
    /// `/info`, `/metrics` with `tgi_queue_size`.
    Tgi,
    /// `/v1/models` only.
    OpenAi,
    /// `/health` with `busy` and `model`.
    Worker,
}

impl Runtime {
    /// The name the gateway reports for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Vllm => "vllm",
            Self::Ollama => "ollama",
            Self::LlamaCpp => "llamacpp",
            Self::Tgi => "tgi",
            Self::OpenAi => "openai",
            Self::Worker => "worker",
        }
    }
}

#[derive(Debug)]
struct Load {
    runtime: Runtime,
    models: ArcSwap<Vec<String>>,
    busy: AtomicBool,
    running: AtomicU32,
    waiting: AtomicU32,
    /// llama.cpp answers 503 "Loading model" while set.
    loading: AtomicBool,
    /// 0: chat answers 200; else this status.
    chat_status: AtomicU16,
    /// Chat answers after this many milliseconds.
    chat_delay_ms: AtomicU64,
}

/// A mock node.
#[derive(Debug)]
pub struct MockNode {
    /// The wiremock server behind the proxy (for extra mounts and received requests).
    pub server: MockServer,
    proxy: TcpProxy,
    load: Arc<Load>,
}

impl MockNode {
    /// A node of `runtime` with `models` loaded, idle.
    pub async fn start(runtime: Runtime, models: &[&str]) -> Self {
        let server = MockServer::builder().start().await;
        let proxy = TcpProxy::start(&server.address().to_string()).await;
        let load = Arc::new(Load {
            runtime,
            models: ArcSwap::from_pointee(models.iter().map(|m| (*m).to_owned()).collect()),
            busy: AtomicBool::new(false),
            running: AtomicU32::new(0),
            waiting: AtomicU32::new(0),
            loading: AtomicBool::new(false),
            chat_status: AtomicU16::new(0),
            chat_delay_ms: AtomicU64::new(0),
        });
        let health_paths: &[&str] = match runtime {
            Runtime::Vllm => &["/v1/models", "/metrics"],
            Runtime::Ollama => &["/api/ps"],
            Runtime::LlamaCpp => &["/health", "/slots", "/v1/models"],
            Runtime::Tgi => &["/info", "/metrics"],
            Runtime::OpenAi => &["/v1/models"],
            Runtime::Worker => &["/health"],
        };
        for p in health_paths {
            Mock::given(method("GET"))
                .and(path(*p))
                .respond_with(Health(load.clone()))
                .mount(&server)
                .await;
        }
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(Chat(load.clone()))
            .mount(&server)
            .await;
        Self { server, proxy, load }
    }

    /// A vLLM node with `model` loaded.
    pub async fn vllm(model: &str) -> Self {
        Self::start(Runtime::Vllm, &[model]).await
    }

    /// `http://127.0.0.1:PORT`: the node's root URL (through the proxy).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy.port)
    }

    /// Its id in the default pool: `nodes/127.0.0.1:PORT`.
    pub fn id(&self) -> String {
        format!("nodes/127.0.0.1:{}", self.proxy.port)
    }

    /// Sets what its health answers report.
    pub fn set_load(&self, busy: bool, running: u32, waiting: u32) {
        self.load.busy.store(busy, Ordering::SeqCst);
        self.load.running.store(running, Ordering::SeqCst);
        self.load.waiting.store(waiting, Ordering::SeqCst);
    }

    /// Replaces the loaded models.
    pub fn set_models(&self, models: &[&str]) {
        self.load
            .models
            .store(Arc::new(models.iter().map(|m| (*m).to_owned()).collect()));
    }

    /// llama.cpp only: answer `/health` with 503 "Loading model" while `loading`.
    pub fn set_loading(&self, loading: bool) {
        self.load.loading.store(loading, Ordering::SeqCst);
    }

    /// Chat answers `status` from now on (0 = the completion fixture).
    pub fn fail_chat(&self, status: u16) {
        self.load.chat_status.store(status, Ordering::SeqCst);
    }

    /// Chat answers only after `delay`.
    pub fn delay_chat(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.load.chat_delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Cuts the node off: open connections drop, new ones are refused.
    pub fn stop(&self) {
        self.proxy.cut();
    }

    /// Lets traffic through again.
    pub fn restart(&self) {
        self.proxy.restore();
    }

    /// Chat completions it received.
    pub async fn chat_calls(&self) -> usize {
        self.requests_to("/v1/chat/completions").await
    }

    /// Requests it received on `p`.
    pub async fn requests_to(&self, p: &str) -> usize {
        super::received(&self.server)
            .await
            .iter()
            .filter(|r| r.url.path() == p)
            .count()
    }

    /// Seed 000's job API: `POST /generate` accepts `job_id`, `GET /status/{id}` and
    /// `GET /download/{id}` answer for it, naming this node.
    pub async fn serve_jobs(&self, job_id: &str) {
        Mock::given(method("POST"))
            .and(path("/generate"))
            .respond_with(ResponseTemplate::new(202).set_body_json(json!({"job_id": job_id, "status": "queued"})))
            .mount(&self.server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(format!("^/status/{job_id}$")))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"job_id": job_id, "status": "done", "node": self.url()})),
            )
            .mount(&self.server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(format!("^/download/{job_id}$")))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-disposition", "attachment; filename=\"out.mp4\"")
                    .set_body_raw(format!("video bytes from {}", self.url()), "video/mp4"),
            )
            .mount(&self.server)
            .await;
    }
}

/// Answers a health endpoint from the node's current load, in its runtime's format.
struct Health(Arc<Load>);

impl Respond for Health {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let l = &self.0;
        let models = l.models.load();
        let (busy, running, waiting) = (
            l.busy.load(Ordering::SeqCst),
            l.running.load(Ordering::SeqCst),
            l.waiting.load(Ordering::SeqCst),
        );
        let model_list = json!({
            "object": "list",
            "data": models.iter().map(|m| json!({"id": m, "object": "model", "created": 1733000000, "owned_by": l.runtime.name()})).collect::<Vec<_>>()
        });
        match (l.runtime, request.url.path()) {
            (Runtime::Vllm, "/metrics") => {
                let m = models.first().cloned().unwrap_or_default();
                ResponseTemplate::new(200).set_body_raw(
                    format!(
                        "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{{engine=\"0\",model_name=\"{m}\"}} {running}.0\n\
                         # TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{{engine=\"0\",model_name=\"{m}\"}} {waiting}.0\n"
                    ),
                    "text/plain; version=0.0.4",
                )
            }
            (Runtime::Tgi, "/metrics") => ResponseTemplate::new(200).set_body_raw(
                format!("tgi_queue_size {waiting}\ntgi_batch_current_size {running}\n"),
                "text/plain",
            ),
            (Runtime::Tgi, "/info") => ResponseTemplate::new(200).set_body_json(json!({
                "model_id": models.first(), "model_dtype": "torch.float16", "max_concurrent_requests": 128,
                "router": "text-generation-router", "version": "3.0.1"
            })),
            (Runtime::Ollama, "/api/ps") => ResponseTemplate::new(200).set_body_json(json!({
                "models": models.iter().map(|m| json!({"name": m, "model": m, "size": 5137025024u64, "size_vram": 5137025024u64})).collect::<Vec<_>>()
            })),
            (Runtime::LlamaCpp, "/health") if l.loading.load(Ordering::SeqCst) => ResponseTemplate::new(503)
                .set_body_json(json!({"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}})),
            (Runtime::LlamaCpp, "/health") => ResponseTemplate::new(200).set_body_json(json!({"status": "ok"})),
            (Runtime::LlamaCpp, "/slots") => ResponseTemplate::new(200).set_body_json(json!([
                {"id": 0, "id_task": -1, "n_ctx": 4096, "is_processing": busy},
            ])),
            (Runtime::Worker, "/health") => ResponseTemplate::new(200).set_body_json(json!({
                "status": "ok", "busy": busy, "model": models.first(), "queue": waiting
            })),
            _ => ResponseTemplate::new(200).set_body_json(model_list),
        }
    }
}

/// Answers chat completions (or fails, or waits, as the test set).
struct Chat(Arc<Load>);

impl Respond for Chat {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let delay = Duration::from_millis(self.0.chat_delay_ms.load(Ordering::SeqCst));
        match self.0.chat_status.load(Ordering::SeqCst) {
            0 => completion().set_delay(delay),
            status => super::failure(status).set_delay(delay),
        }
    }
}
