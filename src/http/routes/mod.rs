//! One file per endpoint family.

pub mod chat;
pub mod dashboard;
pub mod health;
pub mod history;
pub mod metrics;
pub mod models;
pub mod nodes;
pub mod task;
