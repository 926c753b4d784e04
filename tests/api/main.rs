//! Integration tests: the gateway in-process against mock upstreams (see `helpers`).
// The whole binary is test code: this lets clippy's allow-expect/unwrap/panic-in-tests cover the helpers.
#![cfg(test)]

mod admin_api;
mod auth;
mod cache;
mod chat;
mod circuit_breaker;
mod cli;
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
mod metrics_api;
mod models;
mod native;
mod nodes;
mod openapi;
mod outbound_hostile;
mod outbound_nodes;
mod outbound_postgres;
mod outbound_redirects;
mod outbound_redis;
mod outbound_webhooks;
mod path_routes;
mod providers;
mod rate_limit;
mod responses;
mod routes;
mod sdk;
mod secrets;
mod security_rules;
mod streaming;
mod task;
mod user_namespace;
mod webhooks;
