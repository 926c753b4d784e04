//! Integration tests: the gateway in-process against mock upstreams (see `helpers`).
// The whole binary is test code: this lets clippy's allow-expect/unwrap/panic-in-tests cover the helpers.
#![cfg(test)]

mod auth;
mod chat;
mod circuit_breaker;
mod embeddings;
mod errors;
mod fallback;
mod health;
mod helpers;
mod history;
mod hostile;
mod large_response;
mod messages;
mod metrics;
mod models;
mod native;
mod nodes;
mod openapi;
mod providers;
mod rate_limit;
mod responses;
mod sdk;
mod secrets;
mod streaming;
mod task;
