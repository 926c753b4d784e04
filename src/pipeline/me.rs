//! `GET /api/v1/me`: a client's own spend and the budgets that apply to it, with what remains;
//! and the status of a configured budget for the admin API.

use serde::Serialize;

use crate::auth::Caller;
use crate::config::{BudgetConfig, BudgetPeriod};
use crate::error::ApiError;
use crate::spend::{Applied, BudgetBook, NANOS, Subject, window};
use crate::state::AppState;

/// What `/api/v1/me` answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The virtual key's name (null for other credentials).
    pub key: Option<String>,
    /// The key's team.
    pub team: Option<String>,
    /// The user its requests are spent by.
    pub user: Option<String>,
    /// `high`, `normal` or `low`.
    pub priority: &'static str,
    /// USD spent today and this month (UTC), from the history.
    pub spend_usd: SpendToDate,
    /// Every budget that applies to this caller's requests (session and tag budgets apply per
    /// request, so they are not listed).
    pub budgets: Vec<BudgetStatus>,
}

/// USD spent so far.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SpendToDate {
    /// Since midnight UTC.
    pub today: f64,
    /// Since the first of the month, UTC.
    pub month: f64,
}

/// One budget now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BudgetStatus {
    /// `scope:name:period`.
    pub id: String,
    pub scope: &'static str,
    /// The subject (empty for `gateway`).
    pub name: String,
    pub limit_usd: f64,
    pub period: &'static str,
    /// Spent in this period.
    pub spent_usd: f64,
    /// Held by requests in flight.
    pub reserved_usd: f64,
    /// What is left: limit − spent − reserved, never below 0.
    pub remaining_usd: f64,
    /// The period's start and end (null for `total`), epoch ms.
    pub period_start: i64,
    pub period_end: Option<i64>,
}

async fn status(state: &AppState, a: &Applied, now: i64) -> BudgetStatus {
    let (spent, held) = state.spend.counters.status(a, now).await;
    BudgetStatus {
        id: a.budget.id(),
        scope: a.budget.scope.as_str(),
        name: a.name.clone(),
        limit_usd: a.budget.limit_usd,
        period: a.budget.period.as_str(),
        spent_usd: spent as f64 / NANOS,
        reserved_usd: held as f64 / NANOS,
        remaining_usd: ((a.limit - spent - held).max(0)) as f64 / NANOS,
        period_start: a.window.start_ms,
        period_end: a.window.end_ms,
    }
}

/// `GET /api/v1/me`.
pub async fn me(state: &AppState, caller: &Caller) -> Result<Me, ApiError> {
    let live = state.live();
    let now = state.spend.now_ms();
    let subject = Subject {
        key: caller.key_name.as_deref(),
        team: caller.team.as_deref(),
        user: caller.user.as_deref(),
        tags: &[],
        session: None,
    };
    let mut budgets = Vec::new();
    for a in live.budgets.applying(&subject, now) {
        budgets.push(status(state, &a, now).await);
    }
    let day = window(BudgetPeriod::Daily, None, now).start_ms;
    let month = window(BudgetPeriod::Monthly, None, now).start_ms;
    let spend_usd = SpendToDate {
        today: state.store.spent_by(&caller.id, day).await?,
        month: state.store.spent_by(&caller.id, month).await?,
    };
    Ok(Me {
        key: caller.key_name.clone(),
        team: caller.team.clone(),
        user: caller.user.clone(),
        priority: caller.priority.unwrap_or_default().as_str(),
        spend_usd,
        budgets,
    })
}

/// A configured budget's state now, for the admin API: `None` for a budget kept per subject (no
/// `name`, other than `gateway`), which has one counter per key, session, ...
pub async fn budget_status(state: &AppState, budget: &BudgetConfig) -> Option<BudgetStatus> {
    let now = state.spend.now_ms();
    let name = match (&budget.name, budget.scope) {
        (Some(n), _) => n.clone(),
        (None, crate::config::BudgetScope::Gateway) => String::new(),
        (None, _) => return None,
    };
    let applied = BudgetBook::one(budget, &name, now);
    Some(status(state, &applied, now).await)
}
