//! `select_best`: which online nodes to try for a model, best first. A pure function over
//! snapshots, so routing stays pure and every step of the order is unit-tested.
//!
//! Order (seed 000's `select_best_node`, refined):
//! 1. the model loaded and the node free;
//! 2. the model loaded, least queued first (waiting, then running requests);
//! 3. an idle node (it can load the model);
//! 4. any other online node.
//!
//! A node whose slots this gateway's own requests fill (in flight and queued) counts as busy.
//! Ties go to the node with the least of this gateway's work (in flight and queued) for each of
//! its slots (a node that reports none counts as one slot), then by URL so the order is stable.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::config::NodeRuntime;
use crate::domain::{InFlight, ProviderId};

/// One node as routing and `/nodes` see it at one instant.
#[derive(Debug, Clone)]
pub struct NodeSnapshot {
    /// Canonical root URL.
    pub url: String,
    pub pool: ProviderId,
    /// `pool/host:port`: the node's breaker, attempt and metrics id.
    pub id: ProviderId,
    /// The runtime (detected, or as configured).
    pub runtime: NodeRuntime,
    /// Health checks pass, or heartbeats are fresh.
    pub online: bool,
    /// The node says it is busy (or is running or queueing requests).
    pub busy: bool,
    /// Loaded models.
    pub models: Arc<[String]>,
    /// Requests the node is running.
    pub running: u32,
    /// Requests queued on the node.
    pub waiting: u32,
    /// Requests this gateway has in flight to it.
    pub in_flight: usize,
    /// Requests waiting in this gateway's queue for it (its cap reached); set by the caller.
    pub queued: usize,
    /// Requests it serves at once, where its runtime reports it (llama.cpp's `/slots`, TGI's
    /// `max_concurrent_requests`).
    pub slots: Option<u32>,
    /// The counter behind `in_flight`, for the orchestrator to hold.
    pub counter: InFlight,
    /// Last health answer or heartbeat, epoch ms.
    pub last_seen_ms: Option<i64>,
    /// Last heartbeat, epoch ms.
    pub last_heartbeat_ms: Option<i64>,
    /// Why the last health check failed, if it did.
    pub last_error: Option<String>,
    /// Who added it: `config`, `api`, `pulse` or `provision`.
    pub source: String,
}

impl NodeSnapshot {
    /// Whether `model` is loaded here (`llama3` matches Ollama's `llama3:latest`).
    pub fn has_model(&self, model: &str) -> bool {
        let bare = |m: &str| m.strip_suffix(":latest").unwrap_or(m).to_owned();
        let want = bare(model);
        self.models.iter().any(|m| m == model || bare(m) == want)
    }
}

/// Online nodes among `nodes`, best first for `model` (`None`: no model preference).
///
/// `allow_unloaded` false keeps only nodes that have the model loaded (used when another provider
/// lists the model by name and this pool does not).
pub fn select_best<'a>(
    nodes: impl IntoIterator<Item = &'a NodeSnapshot>,
    model: Option<&str>,
    allow_unloaded: bool,
) -> Vec<&'a NodeSnapshot> {
    let mut ranked: Vec<(u8, &NodeSnapshot)> = nodes
        .into_iter()
        .filter(|n| n.online)
        .filter_map(|n| {
            let loaded = model.is_some_and(|m| n.has_model(m));
            let full = n.slots.is_some_and(|s| s > 0 && ours(n) >= s as usize);
            let group = match (loaded, n.busy || full) {
                (true, false) => 0,
                (true, true) => 1,
                (false, false) => 2,
                (false, true) => 3,
            };
            (loaded || allow_unloaded).then_some((group, n))
        })
        .collect();
    ranked.sort_by(|(ga, a), (gb, b)| ga.cmp(gb).then_with(|| within_group(*ga, a, b)));
    ranked.into_iter().map(|(_, n)| n).collect()
}

fn within_group(group: u8, a: &NodeSnapshot, b: &NodeSnapshot) -> Ordering {
    let queue = if group == 1 {
        (a.waiting, a.running).cmp(&(b.waiting, b.running))
    } else {
        Ordering::Equal
    };
    queue
        .then_with(|| per_slot(a).cmp(&per_slot(b)))
        .then_with(|| a.url.cmp(&b.url))
}

/// This gateway's work on a node: in flight, and waiting for it.
fn ours(n: &NodeSnapshot) -> usize {
    n.in_flight.saturating_add(n.queued)
}

/// `ours` for each slot, in millionths, so nodes of different sizes compare (a total order).
fn per_slot(n: &NodeSnapshot) -> u64 {
    let slots = u64::from(n.slots.unwrap_or(1).max(1));
    u64::try_from(ours(n)).unwrap_or(u64::MAX).saturating_mul(1_000_000) / slots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(url: &str) -> NodeSnapshot {
        NodeSnapshot {
            url: url.to_owned(),
            pool: ProviderId::new("nodes"),
            id: ProviderId::new(&format!("nodes/{url}")),
            runtime: NodeRuntime::OpenAi,
            online: true,
            busy: false,
            models: Arc::from(Vec::new()),
            running: 0,
            waiting: 0,
            in_flight: 0,
            queued: 0,
            slots: None,
            counter: InFlight::default(),
            last_seen_ms: None,
            last_heartbeat_ms: None,
            last_error: None,
            source: "config".into(),
        }
    }

    fn with(mut n: NodeSnapshot, models: &[&str], busy: bool) -> NodeSnapshot {
        n.models = models.iter().map(|m| (*m).to_owned()).collect();
        n.busy = busy;
        n
    }

    fn order(nodes: &[NodeSnapshot], model: &str) -> Vec<String> {
        select_best(nodes, Some(model), true)
            .into_iter()
            .map(|n| n.url.clone())
            .collect()
    }

    #[test]
    fn loaded_and_free_beats_everything() {
        let nodes = [
            with(node("a-idle"), &[], false),
            with(node("b-loaded-busy"), &["m"], true),
            with(node("c-loaded-free"), &["m"], false),
        ];
        assert_eq!(order(&nodes, "m")[0], "c-loaded-free");
    }

    #[test]
    fn loaded_and_busy_goes_to_the_least_queued_and_beats_idle_nodes() {
        let mut deep = with(node("a-deep"), &["m"], true);
        deep.waiting = 5;
        let mut shallow = with(node("b-shallow"), &["m"], true);
        shallow.waiting = 1;
        shallow.running = 9;
        let mut shallower_running = with(node("c-same-queue-fewer-running"), &["m"], true);
        shallower_running.waiting = 1;
        shallower_running.running = 2;
        let idle = with(node("d-idle"), &["other"], false);
        let nodes = [deep, shallow, shallower_running, idle];
        assert_eq!(
            order(&nodes, "m"),
            ["c-same-queue-fewer-running", "b-shallow", "a-deep", "d-idle"]
        );
    }

    #[test]
    fn an_idle_node_beats_a_busy_one_without_the_model() {
        let nodes = [with(node("a-busy"), &["x"], true), with(node("b-idle"), &["y"], false)];
        assert_eq!(order(&nodes, "m"), ["b-idle", "a-busy"]);
    }

    #[test]
    fn any_online_node_is_the_last_resort_and_offline_ones_never_appear() {
        let mut offline = with(node("a-offline"), &["m"], false);
        offline.online = false;
        let nodes = [offline, with(node("b-busy"), &[], true)];
        assert_eq!(order(&nodes, "m"), ["b-busy"]);
    }

    #[test]
    fn ties_go_to_the_fewest_in_flight_then_the_url() {
        let mut a = with(node("a"), &["m"], false);
        a.in_flight = 2;
        let b = with(node("b"), &["m"], false);
        let c = with(node("c"), &["m"], false);
        assert_eq!(order(&[a, c, b], "m"), ["b", "c", "a"]);
    }

    #[test]
    fn queued_work_counts_per_slot_and_a_node_our_requests_fill_is_busy() {
        let mut big = with(node("a-big"), &["m"], false);
        big.slots = Some(8);
        big.in_flight = 4;
        let mut small = with(node("b-small"), &["m"], false);
        small.slots = Some(2);
        small.in_flight = 1;
        small.queued = 0;
        assert_eq!(
            order(&[big.clone(), small.clone()], "m"),
            ["a-big", "b-small"],
            "4/8 = 1/2"
        );
        small.queued = 1;
        let mut idle = with(node("c-idle"), &["other"], false);
        idle.slots = Some(1);
        assert_eq!(
            order(&[big.clone(), small.clone(), idle], "m"),
            ["a-big", "b-small", "c-idle"],
            "b-small is full (1 running, 1 waiting): busy, after a-big, still before an unloaded node"
        );
        big.queued = 6;
        assert_eq!(order(&[big, small], "m"), ["b-small", "a-big"], "both full: 10/8 > 2/2");
    }

    #[test]
    fn unloaded_nodes_can_be_left_out() {
        let nodes = [with(node("a"), &["m"], true), with(node("b"), &[], false)];
        let only: Vec<&str> = select_best(&nodes, Some("m"), false)
            .iter()
            .map(|n| n.url.as_str())
            .collect();
        assert_eq!(only, ["a"]);
    }

    #[test]
    fn ollama_latest_tags_match_bare_names_and_no_model_means_idle_first() {
        let n = with(node("a"), &["llama3:latest"], false);
        assert!(n.has_model("llama3"));
        assert!(n.has_model("llama3:latest"));
        assert!(!n.has_model("llama3:8b"));
        let nodes = [with(node("a"), &["m"], true), with(node("b"), &[], false)];
        let any: Vec<&str> = select_best(&nodes, None, true).iter().map(|n| n.url.as_str()).collect();
        assert_eq!(any, ["b", "a"]);
    }
}
