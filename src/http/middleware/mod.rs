//! Thin `from_fn` middleware.

pub mod request_id;
