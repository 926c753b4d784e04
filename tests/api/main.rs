//! Integration tests: the gateway in-process against mock upstreams (see `helpers`).
// The whole binary is test code: this lets clippy's allow-expect/unwrap/panic-in-tests cover the helpers.
#![cfg(test)]

mod admin_api;
mod audit;
mod auth;
mod breakers_semantics;
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
mod history_writer;
mod hostile;
mod large_response;
mod messages;
mod metrics;
mod metrics_api;
mod models;
mod native;
mod nodes;
mod nodes_security;
mod openapi;
mod path_routes;
mod paths_attacks;
mod providers;
mod rate_limit;
mod responses;
mod routes;
mod sdk;
mod secrets;
mod security_rules;
mod streaming;
mod task;
mod tenants_history;
mod tenants_task;
mod user_namespace;
mod validation;
mod webhooks;
mod worker_attacks;
