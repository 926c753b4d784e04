//! ai-gateway: an OpenAI-compatible LLM gateway with priority fallback, retries, circuit breakers,
//! request history and metrics.
//!
//! See `ARCHITECTURE.md` for the module map, the request pipeline and the invariants.

pub mod admin;
pub mod auth;
pub mod cache;
pub mod config;
pub mod dialects;
pub mod domain;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod limits;
pub mod metrics;
pub mod nodes;
pub mod orchestrator;
pub mod pipeline;
pub mod providers;
pub mod routing;
pub mod spend;
pub mod startup;
pub mod state;
pub mod store;
pub mod tasks;
pub mod telemetry;
pub mod traffic;
pub mod webhooks;
