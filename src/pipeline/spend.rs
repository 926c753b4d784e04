//! Spend on the request path: who spends (team, user, tags), the budget reservation made before
//! any upstream call, and the cost when the request ends; plus the ledger refresh and the
//! `budget.threshold` event the background tasks use.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::Caller;
use crate::config::{BudgetPeriod, BudgetScope, Price, Unpriced, valid_tag};
use crate::domain::Usage;
use crate::error::ApiError;
use crate::routing::{Candidate, RoutePlan};
use crate::spend::{Applied, CounterKey, Crossing, Hold, NANOS, Settlement, Subject, max_cost, to_nanos};
use crate::state::{AppState, Live};
use crate::store::Charge;
use crate::webhooks::BudgetThreshold;

/// Most tags one request may carry; the rest are ignored.
const MAX_TAGS: usize = 16;

/// `x-ai-gateway-tags: a,b` as tags: trimmed, well-formed, at most `MAX_TAGS`, no duplicates.
pub fn parse_tags(header: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in header.split(',').map(str::trim) {
        if valid_tag(t) && !out.iter().any(|o| o == t) && out.len() < MAX_TAGS {
            out.push(t.to_owned());
        }
    }
    out
}

/// What a request's spend needs at its end: the snapshot's prices and budgets, who spent, and
/// the reservation it holds.
#[derive(Debug, Default)]
pub(super) struct SpendTrace {
    pub live: Option<Arc<Live>>,
    pub team: Option<String>,
    pub user: Option<String>,
    pub tags: Vec<String>,
    pub key: Option<String>,
    pub held: Option<(Vec<Applied>, Hold)>,
    /// Bytes of the body sent: the prompt's estimate when a stream ends before any usage (the
    /// body itself is not kept for as long as a stream runs).
    pub body_bytes: usize,
}

impl SpendTrace {
    /// Who `caller` is, for history and budgets.
    pub fn of(live: &Arc<Live>, caller: Option<&Caller>, tags: &[String]) -> Self {
        Self {
            live: Some(live.clone()),
            team: caller.and_then(|c| c.team.clone()),
            user: caller.and_then(|c| c.user.clone()),
            key: caller.and_then(|c| c.key_name.clone()),
            tags: tags.to_vec(),
            held: None,
            body_bytes: 0,
        }
    }

    /// The price of `model` at `provider` in this request's snapshot.
    pub fn price(&self, provider: &str, model: &str) -> Option<Arc<Price>> {
        self.live.as_ref()?.prices.price(provider, model)
    }
}

/// The id prices and provider budgets know a candidate by: a node's pool, else the provider.
fn priced_id(c: &Candidate) -> &str {
    c.node
        .as_ref()
        .map_or(c.provider.config.id.as_str(), |n| n.pool.as_str())
}

fn refusal(a: &Applied, remaining: i64, now_ms: i64, reason: String) -> ApiError {
    ApiError::BudgetExceeded {
        budget: a.label(),
        reason,
        remaining_usd: remaining as f64 / NANOS,
        retry_after: a
            .window
            .end_ms
            .map(|end| Duration::from_millis(u64::try_from(end - now_ms).unwrap_or(0))),
    }
}

/// Before any upstream call: skips candidates whose provider budget is spent, and reserves the
/// most this request may cost on every other budget that applies, or refuses it.
pub(super) async fn admit(
    state: &AppState,
    session: Option<&str>,
    body_bytes: usize,
    max_tokens: Option<u64>,
    plan: &mut RoutePlan,
    spend: &mut SpendTrace,
) -> Result<(), ApiError> {
    let Some(live) = spend.live.clone() else { return Ok(()) };
    if live.budgets.is_empty() {
        return Ok(());
    }
    let counters = &state.spend.counters;
    let now = state.spend.now_ms();
    if live.budgets.has_provider_budgets() {
        let mut spent: HashMap<String, Option<(Applied, i64)>> = HashMap::new();
        for c in plan.candidates.iter().chain(&plan.overflow) {
            let id = priced_id(c);
            if spent.contains_key(id) {
                continue;
            }
            let mut over = None;
            for a in live.budgets.provider(id, now) {
                let (used, held) = counters.status(&a, now).await;
                if used + held >= a.limit {
                    over = Some((a.clone(), (a.limit - used - held).max(0)));
                }
            }
            spent.insert(id.to_owned(), over);
        }
        let before = plan.candidates.len();
        let first_over = spent.values().flatten().next().cloned();
        plan.candidates
            .retain(|c| spent.get(priced_id(c)).is_none_or(Option::is_none));
        plan.overflow
            .retain(|c| spent.get(priced_id(c)).is_none_or(Option::is_none));
        if before > 0
            && plan.candidates.is_empty()
            && let Some((a, remaining)) = first_over
        {
            return Err(refusal(&a, remaining, now, "its limit is reached".into()));
        }
    }
    let subject = Subject {
        key: spend.key.as_deref(),
        team: spend.team.as_deref(),
        user: spend.user.as_deref(),
        tags: &spend.tags,
        session,
    };
    let applied = live.budgets.applying(&subject, now);
    if applied.is_empty() {
        return Ok(());
    }
    // A prompt too long for the first candidates may be served by an overflow one: the hold
    // covers the dearest of them all.
    let mut dearest = 0.0_f64;
    for c in plan.candidates.iter().chain(&plan.overflow) {
        match live.prices.price(priced_id(c), &c.upstream_model) {
            Some(p) => dearest = dearest.max(max_cost(&p, body_bytes, max_tokens)),
            None if live.config.settings.pricing.unpriced == Unpriced::Allow => {}
            None => {
                return Err(refusal(
                    &applied[0],
                    0,
                    now,
                    format!("model `{}` at `{}` has no price", c.upstream_model, priced_id(c)),
                ));
            }
        }
    }
    let amount = to_nanos(dearest);
    match counters.reserve(&applied, amount, now).await {
        Ok(hold) => {
            spend.held = Some((applied, hold));
            Ok(())
        }
        Err(r) => {
            let a = applied.get(r.index).unwrap_or(&applied[0]);
            let reason = format!(
                "{:.6} USD remain, and this request may cost up to {:.6} USD",
                r.remaining as f64 / NANOS,
                dearest
            );
            Err(refusal(a, r.remaining, now, reason))
        }
    }
}

/// When the request ends: its cost (`None` for an unpriced model or no usage), the budgets it is
/// charged to for the ledger, and the settlement of its reservation (a failure releases it).
pub(super) fn settle(
    shared: &crate::spend::Spend,
    spend: &mut SpendTrace,
    provider: Option<&str>,
    model: Option<&str>,
    usage: Option<&Usage>,
) -> (Option<f64>, Vec<Charge>) {
    let price = provider.zip(model).and_then(|(p, m)| spend.price(p, m));
    let cost = usage.and_then(|u| crate::config::cost(u, price.as_deref()));
    let held = spend.held.take();
    let Some(live) = &spend.live else {
        return (cost, Vec::new());
    };
    let nanos = cost.map_or(0, to_nanos);
    let mut charges = Vec::new();
    if let Some((applied, hold)) = held {
        charges.extend(applied.iter().map(charge));
        shared.settle(Settlement {
            applied,
            hold: Some(hold),
            cost: nanos,
        });
    }
    if let (Some(p), true) = (provider, nanos > 0) {
        let applied = live.budgets.provider(p, shared.now_ms());
        if !applied.is_empty() {
            charges.extend(applied.iter().map(charge));
            shared.settle(Settlement {
                applied,
                hold: None,
                cost: nanos,
            });
        }
    }
    (cost, charges)
}

fn charge(a: &Applied) -> Charge {
    Charge {
        scope: a.budget.scope.as_str(),
        name: a.name().to_owned(),
        period: a.budget.period.as_str(),
        period_start: a.window.start_ms,
    }
}

/// The ledger's totals into the counters: what a counter Redis lost, or this replica while Redis
/// is down, starts from.
pub async fn refresh_ledger(state: &AppState) {
    let live = state.live();
    if live.budgets.is_empty() {
        return;
    }
    // Periods are at most a month long: anything that started 32 days ago is over.
    let since = state.spend.now_ms() - 32 * 86_400_000;
    match state.store.ledger_since(since).await {
        Ok(lines) => {
            let seeds = lines
                .into_iter()
                .filter_map(|l| {
                    let key = CounterKey {
                        scope: BudgetScope::parse(&l.scope)?,
                        period: BudgetPeriod::parse(&l.period)?,
                        start_ms: l.period_start,
                        name: l.name,
                    };
                    Some((key, to_nanos(l.amount_usd)))
                })
                .collect();
            state.spend.counters.set_seeds(seeds);
        }
        Err(e) => tracing::warn!(error = %e, "spend ledger not read; budget counters keep their last totals"),
    }
}

/// The `budget.threshold` event for a crossing.
pub fn threshold_event(c: &Crossing) -> BudgetThreshold {
    let b = &c.applied.budget;
    BudgetThreshold {
        kind: "budget.threshold",
        budget: b.id(),
        scope: b.scope.as_str(),
        name: c.applied.name().to_owned(),
        period: b.period.as_str(),
        period_start_ms: c.applied.window.start_ms,
        period_end_ms: c.applied.window.end_ms,
        threshold: c.threshold,
        limit_usd: b.limit_usd,
        spent_usd: c.spent as f64 / NANOS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_trimmed_checked_and_deduplicated() {
        assert_eq!(parse_tags(" ci, batch,ci,,bad tag"), ["ci", "batch"]);
        let many = (0..40).map(|i| format!("t{i}")).collect::<Vec<_>>().join(",");
        assert_eq!(parse_tags(&many).len(), MAX_TAGS);
    }
}
