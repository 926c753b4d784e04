//! Named routes: a requested `<strategy>:<route>` or bare `<route>` → the route's targets in the
//! strategy's order, then its `fallbacks` (other routes, resolved recursively with cycle
//! protection, or plain model names planned as `routing::plan` does).
//!
//! `order` is pure: targets, strategy, per-target views, the request's needs and this request's
//! draws in, indices out. `plan_route` reads the per-target figures from `RouteStats` and takes the
//! rotation turn from it; the open breakers and the weighted roll are the caller's inputs.

use std::cmp::Ordering;
use std::collections::HashSet;

use super::stats::{RouteStats, TargetReading};
use super::{Candidate, NoRoute, RoutePlan, TargetCap, expand, push_unique, upstream_name};
use crate::config::{RouteConfig, RouteTarget, Strategy, split_route_model};
use crate::domain::ProviderId;
use crate::nodes::NodeSnapshot;
use crate::providers::{Provider, Registry};

/// Bytes per token when a prompt's length is estimated from its body (English text and JSON
/// average about four).
const BYTES_PER_TOKEN: usize = 4;

/// What a request asks of a target (`autoselect` drops targets that cannot serve it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// The request offers tools.
    pub tools: bool,
    /// Estimated prompt tokens.
    pub prompt_tokens: u64,
}

impl Needs {
    /// A request whose body is `body_len` bytes long, with or without tools.
    pub fn estimate(body_len: usize, tools: bool) -> Self {
        Self {
            tools,
            prompt_tokens: u64::try_from(body_len / BYTES_PER_TOKEN).unwrap_or(u64::MAX),
        }
    }
}

/// One target as ordering sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TargetView {
    /// EWMA of recent latency in ms; `None` = not measured yet.
    pub latency_ms: Option<f64>,
    /// Requests in flight on it now.
    pub in_flight: usize,
    /// Its provider's breaker is open.
    pub breaker_open: bool,
}

/// This request's draws: its rotation turn and a uniform number in `[0, 1)` for `weighted`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Draw {
    /// The route's turn counter for this request.
    pub turn: u64,
    /// Where the weighted pick lands.
    pub roll: f64,
}

/// The order to try `targets` in (indices), by `strategy`. `views` is parallel to `targets`.
///
/// - `priority`: as written.
/// - `rotation`: starts at target `turn % n`, the rest follow in written order (wrapping).
/// - `weighted`: the first is picked at random by weight, the rest follow as written.
/// - `least_latency`: unmeasured targets first (so they get measured), then lowest EWMA.
/// - `least_busy`: fewest in flight first; ties keep the written order.
/// - `autoselect`: drops targets that cannot serve `needs` (tools, context window), then closed
///   breakers before open ones, then as `least_latency`.
pub fn order(
    targets: &[RouteTarget],
    strategy: Strategy,
    views: &[TargetView],
    needs: Needs,
    draw: Draw,
) -> Vec<usize> {
    let view = |i: usize| views.get(i).copied().unwrap_or_default();
    let mut idx: Vec<usize> = (0..targets.len()).collect();
    match strategy {
        Strategy::Priority => {}
        Strategy::Rotation => {
            let n = u64::try_from(idx.len()).unwrap_or(u64::MAX).max(1);
            idx.rotate_left(usize::try_from(draw.turn % n).unwrap_or(0));
        }
        Strategy::Weighted => {
            if let Some(first) = weighted_pick(targets, draw.roll) {
                idx.remove(first);
                idx.insert(0, first);
            }
        }
        Strategy::LeastLatency => idx.sort_by(|a, b| by_latency(view(*a), view(*b))),
        Strategy::LeastBusy => idx.sort_by_key(|i| view(*i).in_flight),
        Strategy::Autoselect => {
            idx.retain(|i| serves(&targets[*i], needs));
            idx.sort_by(|a, b| {
                let (va, vb) = (view(*a), view(*b));
                va.breaker_open.cmp(&vb.breaker_open).then_with(|| by_latency(va, vb))
            });
        }
    }
    idx
}

/// Whether `target` can take a request with these needs (what `autoselect` keeps).
pub fn serves(target: &RouteTarget, needs: Needs) -> bool {
    (!needs.tools || target.supports_tools)
        && target
            .context_window
            .is_none_or(|window| needs.prompt_tokens <= u64::from(window))
}

/// Unmeasured first, then ascending latency.
fn by_latency(a: TargetView, b: TargetView) -> Ordering {
    match (a.latency_ms, b.latency_ms) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => x.total_cmp(&y),
    }
}

/// The index `roll` (in `[0, 1)`) lands on when each target owns a slice as wide as its weight.
fn weighted_pick(targets: &[RouteTarget], roll: f64) -> Option<usize> {
    let total: u64 = targets.iter().map(|t| u64::from(t.weight.max(1))).sum();
    // Weights are small integers, and the product is clamped into range.
    let mut point = ((roll.clamp(0.0, 1.0) * total as f64) as u64).min(total.saturating_sub(1));
    for (i, t) in targets.iter().enumerate() {
        let w = u64::from(t.weight.max(1));
        if point < w {
            return Some(i);
        }
        point -= w;
    }
    None
}

/// The route `model` names, with the strategy to use: the `<strategy>:` prefix overrides the
/// route's own.
pub fn find<'a>(routes: &'a [RouteConfig], model: &str) -> Option<(&'a RouteConfig, Strategy)> {
    let (prefix, name) = split_route_model(model);
    let route = routes.iter().find(|r| r.name == name)?;
    Some((route, prefix.unwrap_or(route.strategy)))
}

/// What planning a route reads besides configuration.
pub struct RouteInputs<'a> {
    /// What the request needs of a target.
    pub needs: Needs,
    /// Per-target figures and rotation turns.
    pub stats: &'a RouteStats,
    /// Providers whose breaker is open now.
    pub open: &'a HashSet<ProviderId>,
    /// A uniform number in `[0, 1)` for `weighted` (called only for weighted routes).
    pub roll: &'a dyn Fn() -> f64,
}

impl std::fmt::Debug for RouteInputs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteInputs")
            .field("needs", &self.needs)
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

struct Ctx<'a> {
    registry: &'a Registry,
    nodes: &'a [NodeSnapshot],
    routes: &'a [RouteConfig],
    inputs: &'a RouteInputs<'a>,
}

/// The plan for a request to `route` with `strategy` (`requested_model` as the client wrote it):
/// the route's targets in order, each its provider's candidate (a node pool expands to its online
/// nodes) with the target's model (aliases applied), then the fallbacks'. A provider + model pair
/// appears once; targets whose provider is not enabled are left out.
pub fn plan_route(
    registry: &Registry,
    nodes: &[NodeSnapshot],
    routes: &[RouteConfig],
    route: &RouteConfig,
    strategy: Strategy,
    requested_model: &str,
    inputs: &RouteInputs<'_>,
) -> Result<RoutePlan, NoRoute> {
    let ctx = Ctx {
        registry,
        nodes,
        routes,
        inputs,
    };
    let mut visited = Vec::new();
    let mut candidates = Vec::new();
    collect(&ctx, route, strategy, &mut visited, &mut candidates);
    let overflow = overflow(&ctx, &visited);
    if candidates.is_empty() {
        let pools = route
            .targets
            .iter()
            .filter_map(|t| registry.get(&ProviderId::new(&t.provider)))
            .filter(|p| p.config.is_node_pool())
            .map(|p| p.config.id.clone())
            .collect();
        return Err(NoRoute {
            model: requested_model.to_owned(),
            pools_without_nodes: pools,
        });
    }
    Ok(RoutePlan {
        requested_model: requested_model.to_owned(),
        candidates,
        overflow,
    })
}

fn collect(
    ctx: &Ctx<'_>,
    route: &RouteConfig,
    strategy: Strategy,
    visited: &mut Vec<String>,
    out: &mut Vec<Candidate>,
) {
    visited.push(route.name.clone());
    let inputs = ctx.inputs;
    let resolved: Vec<Option<(&Provider, String, TargetReading)>> = route
        .targets
        .iter()
        .map(|t| {
            let p = ctx.registry.get(&ProviderId::new(&t.provider))?;
            let upstream = upstream_name(p, &t.model);
            let reading = inputs.stats.read(&p.config.id, &upstream);
            Some((p, upstream, reading))
        })
        .collect();
    let views: Vec<TargetView> = resolved
        .iter()
        .map(|r| match r {
            Some((p, _, reading)) => TargetView {
                latency_ms: reading.latency_ms,
                in_flight: reading.in_flight.count(),
                breaker_open: inputs.open.contains(&p.config.id),
            },
            None => TargetView::default(),
        })
        .collect();
    let draw = Draw {
        turn: if strategy == Strategy::Rotation {
            inputs.stats.next_turn(&route.name)
        } else {
            0
        },
        roll: if strategy == Strategy::Weighted {
            (inputs.roll)()
        } else {
            0.0
        },
    };
    for i in order(&route.targets, strategy, &views, inputs.needs, draw) {
        let Some(Some((provider, upstream, reading))) = resolved.get(i) else {
            continue;
        };
        let cap = route.targets.get(i).and_then(|t| t.max_concurrency);
        for mut c in expand(provider, upstream, ctx.nodes, Some(upstream), true) {
            c.in_flight.push(reading.in_flight.clone());
            c.target_cap = cap.map(|max_concurrency| TargetCap {
                route: route.name.clone(),
                index: i,
                max_concurrency,
            });
            push_unique(out, c);
        }
    }
    for name in &route.fallbacks {
        match find(ctx.routes, name) {
            Some((next, strategy)) => {
                if !visited.contains(&next.name) {
                    collect(ctx, next, strategy, visited, out);
                }
            }
            None => {
                if let Ok(plan) = super::plan(ctx.registry, ctx.nodes, name) {
                    plan.candidates.into_iter().for_each(|c| push_unique(out, c));
                }
            }
        }
    }
}

/// The candidates for a prompt too long for the routes in `walked` (the route asked for and those
/// its fallbacks reached): each route's `on_context_length_exceeded` in order, a route planned
/// like a requested one (targets, then fallbacks), a plain name as `routing::plan` plans it; then,
/// one tier further, the `on_context_length_exceeded` of the routes that added, and so on. Each
/// route is planned once.
fn overflow(ctx: &Ctx<'_>, walked: &[String]) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut planned: Vec<String> = Vec::new();
    let mut followed: Vec<String> = Vec::new();
    let mut tier: Vec<String> = walked.to_vec();
    while !tier.is_empty() {
        let mut next_tier = Vec::new();
        for name in tier {
            if followed.contains(&name) {
                continue;
            }
            let Some(route) = ctx.routes.iter().find(|r| r.name == name) else {
                continue;
            };
            followed.push(name);
            for entry in &route.on_context_length_exceeded {
                match find(ctx.routes, entry) {
                    Some((next, strategy)) if !planned.contains(&next.name) => {
                        let from = planned.len();
                        collect(ctx, next, strategy, &mut planned, &mut out);
                        next_tier.extend(planned[from..].iter().cloned());
                    }
                    Some(_) => {}
                    None => {
                        if let Ok(plan) = super::plan(ctx.registry, ctx.nodes, entry) {
                            plan.candidates.into_iter().for_each(|c| push_unique(&mut out, c));
                        }
                    }
                }
            }
        }
        tier = next_tier;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AuthScheme, ProviderConfig};

    fn target(provider: &str, weight: u32) -> RouteTarget {
        RouteTarget {
            provider: provider.to_owned(),
            model: "m".to_owned(),
            weight,
            context_window: None,
            supports_tools: true,
            max_concurrency: None,
        }
    }

    fn ab() -> Vec<RouteTarget> {
        vec![target("a", 1), target("b", 1)]
    }

    fn views(latencies: &[Option<f64>]) -> Vec<TargetView> {
        latencies
            .iter()
            .map(|l| TargetView {
                latency_ms: *l,
                ..TargetView::default()
            })
            .collect()
    }

    fn draw(turn: u64) -> Draw {
        Draw { turn, roll: 0.0 }
    }

    #[test]
    fn priority_keeps_the_written_order() {
        let got = order(
            &ab(),
            Strategy::Priority,
            &views(&[Some(9.0), Some(1.0)]),
            Needs::default(),
            draw(5),
        );
        assert_eq!(got, [0, 1]);
    }

    #[test]
    fn rotation_starts_each_turn_at_the_next_target() {
        let t = vec![target("a", 1), target("b", 1), target("c", 1)];
        let first: Vec<Vec<usize>> = (0..4)
            .map(|turn| order(&t, Strategy::Rotation, &[], Needs::default(), draw(turn)))
            .collect();
        assert_eq!(first, [vec![0, 1, 2], vec![1, 2, 0], vec![2, 0, 1], vec![0, 1, 2]]);
    }

    #[test]
    fn weighted_picks_by_share_and_the_rest_follow() {
        let t = vec![target("a", 3), target("b", 1)];
        let pick = |roll| order(&t, Strategy::Weighted, &[], Needs::default(), Draw { turn: 0, roll });
        assert_eq!(pick(0.0), [0, 1]);
        assert_eq!(pick(0.74), [0, 1]);
        assert_eq!(pick(0.75), [1, 0]);
        assert_eq!(pick(0.999), [1, 0]);
        let hits = (0..1000).filter(|i| pick(f64::from(*i) / 1000.0)[0] == 0).count();
        assert_eq!(hits, 750);
    }

    #[test]
    fn least_latency_measures_unknown_targets_first_then_prefers_the_fastest() {
        let t = vec![target("a", 1), target("b", 1), target("c", 1)];
        let v = views(&[Some(50.0), None, Some(10.0)]);
        assert_eq!(
            order(&t, Strategy::LeastLatency, &v, Needs::default(), draw(0)),
            [1, 2, 0]
        );
    }

    #[test]
    fn least_busy_prefers_fewest_in_flight() {
        let mut v = views(&[None, None]);
        v[0].in_flight = 2;
        v[1].in_flight = 1;
        assert_eq!(order(&ab(), Strategy::LeastBusy, &v, Needs::default(), draw(0)), [1, 0]);
        assert_eq!(
            order(
                &ab(),
                Strategy::LeastBusy,
                &views(&[None, None]),
                Needs::default(),
                draw(0)
            ),
            [0, 1]
        );
    }

    #[test]
    fn autoselect_drops_what_cannot_serve_and_puts_open_breakers_last() {
        let mut t = vec![target("a", 1), target("b", 1), target("c", 1), target("d", 1)];
        t[1].supports_tools = false;
        t[2].context_window = Some(100);
        let mut v = views(&[Some(5.0), Some(1.0), Some(1.0), Some(50.0)]);
        v[0].breaker_open = true;
        let tools = Needs {
            tools: true,
            prompt_tokens: 500,
        };
        assert_eq!(order(&t, Strategy::Autoselect, &v, tools, draw(0)), [3, 0]);
        let small = Needs {
            tools: false,
            prompt_tokens: 50,
        };
        assert_eq!(order(&t, Strategy::Autoselect, &v, small, draw(0)), [1, 2, 3, 0]);
    }

    fn provider(id: &str) -> ProviderConfig {
        ProviderConfig {
            id: ProviderId::new(id),
            kind: "openai".into(),
            base_url: "http://x/v1".into(),
            api_key: None,
            key_pool: None,
            models: vec!["*".into()],
            priority: 1,
            max_concurrency: None,
            queue: Default::default(),
            auth: AuthScheme::Bearer,
            headers: vec![],
            model_aliases: [("m".to_owned(), format!("{id}-m"))].into(),
            query: Vec::new(),
            confidence: 0.8,
            task_model: None,
            node_pool: None,
            responses: Default::default(),
            anthropic_beta: Vec::new(),
            prices: Default::default(),
        }
    }

    fn route(name: &str, strategy: Strategy, targets: &[&str], fallbacks: &[&str]) -> RouteConfig {
        RouteConfig {
            name: name.to_owned(),
            strategy,
            targets: targets.iter().map(|p| target(p, 1)).collect(),
            fallbacks: fallbacks.iter().map(|f| (*f).to_owned()).collect(),
            on_context_length_exceeded: Vec::new(),
            cache: None,
            callback: None,
            description: None,
            stream_recovery: None,
        }
    }

    fn plan_ids(routes: &[RouteConfig], model: &str, stats: &RouteStats) -> Vec<(String, String)> {
        let registry = Registry::build(&[provider("a"), provider("b"), provider("c")]).0;
        let open = HashSet::new();
        let inputs = RouteInputs {
            needs: Needs::default(),
            stats,
            open: &open,
            roll: &|| 0.0,
        };
        let (r, s) = find(routes, model).unwrap();
        plan_route(&registry, &[], routes, r, s, model, &inputs)
            .unwrap()
            .candidates
            .iter()
            .map(|c| (c.provider.config.id.to_string(), c.upstream_model.clone()))
            .collect()
    }

    #[test]
    fn fallbacks_follow_recursively_without_cycles_or_repeats() {
        let routes = vec![
            route("one", Strategy::Priority, &["a"], &["two", "plain"]),
            route("two", Strategy::Priority, &["b", "a"], &["one"]),
        ];
        let stats = RouteStats::default();
        let got = plan_ids(&routes, "one", &stats);
        let want = [
            ("a", "a-m"),
            ("b", "b-m"),
            ("a", "plain"),
            ("b", "plain"),
            ("c", "plain"),
        ];
        let want: Vec<(String, String)> = want.iter().map(|(p, m)| ((*p).into(), (*m).into())).collect();
        assert_eq!(got, want);
    }

    fn overflow_ids(routes: &[RouteConfig], model: &str) -> Vec<(String, String)> {
        let registry = Registry::build(&[provider("a"), provider("b"), provider("c")]).0;
        let open = HashSet::new();
        let stats = RouteStats::default();
        let inputs = RouteInputs {
            needs: Needs::default(),
            stats: &stats,
            open: &open,
            roll: &|| 0.0,
        };
        let (r, s) = find(routes, model).unwrap();
        plan_route(&registry, &[], routes, r, s, model, &inputs)
            .unwrap()
            .overflow
            .iter()
            .map(|c| (c.provider.config.id.to_string(), c.upstream_model.clone()))
            .collect()
    }

    #[test]
    fn overflow_follows_the_walked_routes_then_the_next_tier_each_once() {
        let mut small = route("small", Strategy::Priority, &["a"], &["backup"]);
        small.on_context_length_exceeded = vec!["long".into(), "big-model".into()];
        let mut backup = route("backup", Strategy::Priority, &["a"], &[]);
        backup.on_context_length_exceeded = vec!["long".into(), "huge".into()];
        let mut long = route("long", Strategy::Priority, &["b"], &[]);
        long.on_context_length_exceeded = vec!["huge".into(), "small".into()];
        let huge = route("huge", Strategy::Priority, &["c"], &[]);
        let routes = vec![small, backup, long, huge];
        let want: Vec<(String, String)> = [
            ("b", "b-m"),
            ("a", "big-model"),
            ("b", "big-model"),
            ("c", "big-model"),
            ("c", "c-m"),
            ("a", "a-m"),
        ]
        .iter()
        .map(|(p, m)| ((*p).into(), (*m).into()))
        .collect();
        assert_eq!(overflow_ids(&routes, "small"), want);
        assert!(overflow_ids(&routes, "huge").is_empty());
    }

    #[test]
    fn a_strategy_prefix_overrides_the_route_and_rotation_advances_per_request() {
        let routes = vec![route("r", Strategy::Priority, &["a", "b"], &[])];
        let stats = RouteStats::default();
        let first = |model: &str| plan_ids(&routes, model, &stats)[0].0.clone();
        assert_eq!(first("r"), "a");
        assert_eq!(first("r"), "a");
        assert_eq!(first("rotation:r"), "a");
        assert_eq!(first("rotation:r"), "b");
        assert_eq!(first("rotation:r"), "a");
        assert!(find(&routes, "other").is_none());
    }
}
