//! A rate limiter's verdict, as the limiter and the error renderer both need it.

use std::time::Duration;

/// The verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether it may proceed.
    pub allowed: bool,
    /// The burst size (`x-ratelimit-limit`).
    pub limit: u32,
    /// Requests left right now (`x-ratelimit-remaining`).
    pub remaining: u32,
    /// When denied: how long until one more is allowed (`Retry-After`).
    pub retry_after: Duration,
    /// How long until the full burst is available again (`x-ratelimit-reset`).
    pub reset_after: Duration,
}
