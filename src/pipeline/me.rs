//! `GET /api/v1/me`: a client's own spend and the budgets that apply to it, with what remains.

use serde::Serialize;

use crate::auth::Caller;
use crate::config::BudgetPeriod;
use crate::error::ApiError;
use crate::spend::{BudgetStatus, Subject, window};
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
    pub budgets: Vec<MyBudget>,
}

/// USD spent so far.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SpendToDate {
    /// Since midnight UTC.
    pub today: f64,
    /// Since the first of the month, UTC.
    pub month: f64,
}

/// One budget that applies to the caller, now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MyBudget {
    /// `scope:name:period`.
    pub id: String,
    /// `key`, `team`, `user` or `gateway`.
    pub scope: &'static str,
    /// The subject (empty for `gateway`).
    pub name: String,
    /// USD per period.
    pub limit_usd: f64,
    /// `daily`, `weekly`, `monthly` or `total`.
    pub period: &'static str,
    /// Spent, held and remaining in the current period.
    #[serde(flatten)]
    pub status: BudgetStatus,
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
        budgets.push(MyBudget {
            id: a.budget.id(),
            scope: a.budget.scope.as_str(),
            name: a.name().to_owned(),
            limit_usd: a.budget.limit_usd,
            period: a.budget.period.as_str(),
            status: state.spend.status(&a).await,
        });
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
