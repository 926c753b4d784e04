//! One file per endpoint family.

pub mod admin;
pub mod chat;
pub mod dashboard;
pub mod health;
pub mod history;
pub mod me;
pub mod messages;
pub mod metrics;
pub mod models;
pub mod nodes;
pub mod paths;
pub mod responses;
pub mod responses_stored;
pub mod task;
pub mod users;
