//! Thin `from_fn` middleware.

pub mod auth;
pub mod canonical;
pub mod idempotency;
pub mod rate_limit;
pub mod request_id;
