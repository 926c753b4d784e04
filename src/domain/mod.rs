//! Pure types shared by every layer: identifiers, the parsed view of a request, attempt summaries.
//!
//! Depends on nothing internal and does no I/O. Parsing at the edge happens here so that later
//! layers take `ProviderId` and `RequestId` instead of raw strings.

mod attempt;
mod auth_error;
mod decision;
mod dialect;
mod forward;
mod hosted_tools;
mod ids;
mod inflight;
mod priority;
mod trace;
mod usage;

pub use attempt::{AttemptOutcome, AttemptSummary};
pub use auth_error::AuthError;
pub use decision::Decision;
pub use dialect::Dialect;
pub use forward::ClientHeaders;
pub use hosted_tools::HostedTools;
pub use ids::{ProviderId, RequestId};
pub use inflight::{InFlight, InFlightGuard};
pub use priority::Priority;
pub use trace::{RequestTrace, TraceContext};
pub use usage::Usage;
