//! A request's place in the concurrency caps' queues: its priority (the key's or team's, which
//! `x-ai-gateway-priority` may lower but never raise) and the `orchestrator::Admission` that
//! carries it with the gates, and the node snapshot routing orders by queued work.

use crate::auth::Caller;
use crate::dialects::BodyError;
use crate::domain::Priority;
use crate::error::ApiError;
use crate::nodes::NodeSnapshot;
use crate::orchestrator::Admission;
use crate::state::{AppState, Live};
use crate::traffic::{Level, Traffic};

/// The header a client sets its priority with: `high | normal | low`.
pub const PRIORITY_HEADER: &str = "x-ai-gateway-priority";

/// The priority a request queues with: the header's, capped at the caller's own (its key's or
/// team's; `normal` without one, and for anyone when auth is off). A header the gateway cannot
/// read is refused (400 naming it), never ignored.
pub(super) fn priority(header: Option<&str>, caller: Option<&Caller>) -> Result<Priority, ApiError> {
    let allowed = caller.and_then(|c| c.priority).unwrap_or_default();
    let Some(raw) = header else {
        return Ok(allowed);
    };
    let asked = Priority::parse(&raw.trim().to_ascii_lowercase()).ok_or_else(|| {
        ApiError::InvalidRequest(BodyError {
            message: format!("{PRIORITY_HEADER} must be high, normal or low"),
            param: Some(PRIORITY_HEADER.into()),
            code: "invalid_value",
        })
    })?;
    // `Priority` orders `High` first: the later of the two is the lower priority.
    Ok(asked.max(allowed))
}

/// The model path's queues (`AppState::traffic`) for a request of `priority`, under `live`'s
/// per-node cap.
pub(super) fn admission<'a>(traffic: &'a Traffic, live: &Live, priority: Priority) -> Admission<'a> {
    Admission {
        traffic,
        priority,
        per_node: live.config.settings.nodes.max_concurrency_per_node,
    }
}

/// Every node as of now, each with the requests waiting in this gateway's queue for it, so the
/// node choice counts queued work as well as work in flight.
pub(super) fn node_snapshot(state: &AppState) -> Vec<NodeSnapshot> {
    let mut nodes = state.nodes.snapshot();
    if state.traffic.has_nodes() {
        for n in &mut nodes {
            n.queued = state.traffic.queued(&Level::Node(n.id.clone()));
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(priority: Option<Priority>) -> Caller {
        Caller {
            id: "key:1".into(),
            kind: crate::auth::CallerKind::VirtualKey,
            rpm: None,
            tpm: None,
            models: None,
            user: None,
            key_name: None,
            team: None,
            priority,
            team_models: None,
        }
    }

    #[test]
    fn the_header_lowers_freely_and_never_raises_above_the_key() {
        let low_key = caller(Some(Priority::Low));
        let high_key = caller(Some(Priority::High));
        let plain = caller(None);
        assert_eq!(priority(Some("high"), Some(&low_key)).unwrap(), Priority::Low);
        assert_eq!(
            priority(Some("high"), Some(&plain)).unwrap(),
            Priority::Normal,
            "no priority: normal"
        );
        assert_eq!(priority(Some(" High "), Some(&high_key)).unwrap(), Priority::High);
        assert_eq!(priority(Some("low"), Some(&high_key)).unwrap(), Priority::Low);
        assert_eq!(priority(None, Some(&high_key)).unwrap(), Priority::High);
        assert_eq!(priority(None, None).unwrap(), Priority::Normal);
        let refused = priority(Some("urgent"), None).unwrap_err();
        assert_eq!((refused.status(), refused.param()), (400, Some(PRIORITY_HEADER)));
    }
}
