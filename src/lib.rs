//! ai-gateway: an OpenAI-compatible LLM gateway with priority fallback, retries, circuit breakers,
//! request history and metrics.
//!
//! See `ARCHITECTURE.md` for the module map, the request pipeline and the invariants.

pub mod auth;
pub mod cache;
pub mod config;
pub mod domain;
pub mod error;
pub mod history;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod nodes;
pub mod orchestrator;
pub mod pipeline;
pub mod providers;
pub mod routing;
pub mod startup;
pub mod state;
pub mod tasks;
pub mod telemetry;
pub mod webhooks;
