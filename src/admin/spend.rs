//! The admin API's spend side: teams, budgets and tags (`/api/v1/teams`, `/budgets`, `/tags`),
//! changed for every replica through the same overrides as routes and users (validated over the
//! file, stored, applied here, audited), and the spend report (`/api/v1/spend`) read from the
//! history table.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use super::{Actor, Expect, ItemList, ItemView, change, list, named, object, one, to_json, typed};
use crate::config::{BudgetConfig, OverrideKind, TeamConfig};
use crate::dialects::BodyError;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{SpendGroup, SpendRow};

/// Every team.
pub async fn list_teams(state: &AppState) -> ItemList {
    list(state, &[OverrideKind::Team]).await
}

/// `PUT /api/v1/teams/{name}` with a team in the config file's schema: creates or replaces it.
pub async fn put_team(state: &AppState, actor: &Actor, name: &str, body: &[u8]) -> Result<ItemView, ApiError> {
    let mut object = object(body)?;
    named(&mut object, "name", name)?;
    let item = to_json(&typed::<TeamConfig>(object)?)?;
    change(state, actor, OverrideKind::Team, name, Some(item), Expect::Either).await?;
    one(state, OverrideKind::Team, name).await
}

/// Removes a team, the file's included; refused while a budget names it.
pub async fn delete_team(state: &AppState, actor: &Actor, name: &str) -> Result<(), ApiError> {
    change(state, actor, OverrideKind::Team, name, None, Expect::Present).await?;
    Ok(())
}

/// One budget, with its running totals when the spend module keeps them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BudgetView {
    /// The budget as an item (`kind` `budget`, `name` its id).
    #[serde(flatten)]
    pub view: ItemView,
    /// What the current period has spent; null when not known here.
    pub status: Option<crate::spend::BudgetStatus>,
}

/// `{"data": [...]}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BudgetList {
    /// Every budget.
    pub data: Vec<BudgetView>,
}

/// Every budget.
pub async fn list_budgets(state: &AppState) -> BudgetList {
    let mut views = Vec::new();
    for item in list(state, &[OverrideKind::Budget]).await.data {
        views.push(budget_view(state, item).await);
    }
    BudgetList { data: views }
}

/// `POST /api/v1/budgets`: a new budget (409 when one with its id exists).
pub async fn create_budget(state: &AppState, actor: &Actor, body: &[u8]) -> Result<BudgetView, ApiError> {
    let budget: BudgetConfig = typed(object(body)?)?;
    let id = budget.id();
    change(
        state,
        actor,
        OverrideKind::Budget,
        &id,
        Some(to_json(&budget)?),
        Expect::Absent,
    )
    .await?;
    Ok(budget_view(state, one(state, OverrideKind::Budget, &id).await?).await)
}

/// `PUT /api/v1/budgets/{id}`: creates or replaces the budget whose id the body makes.
pub async fn put_budget(state: &AppState, actor: &Actor, id: &str, body: &[u8]) -> Result<BudgetView, ApiError> {
    let budget: BudgetConfig = typed(object(body)?)?;
    if budget.id() != id {
        return Err(ApiError::InvalidRequest(BodyError {
            message: format!(
                "the body is budget `{}` (scope:name:period), not `{id}` as the URL says",
                budget.id()
            ),
            param: Some("id".into()),
            code: "invalid_value",
        }));
    }
    change(
        state,
        actor,
        OverrideKind::Budget,
        id,
        Some(to_json(&budget)?),
        Expect::Either,
    )
    .await?;
    Ok(budget_view(state, one(state, OverrideKind::Budget, id).await?).await)
}

/// Removes a budget, the file's included.
pub async fn delete_budget(state: &AppState, actor: &Actor, id: &str) -> Result<(), ApiError> {
    change(state, actor, OverrideKind::Budget, id, None, Expect::Present).await?;
    Ok(())
}

async fn budget_view(state: &AppState, view: ItemView) -> BudgetView {
    let status = match serde_json::from_value::<BudgetConfig>(view.item.clone()) {
        Ok(budget) => state.spend.budget_status(&budget).await,
        Err(_) => None,
    };
    BudgetView { view, status }
}

/// Every declared tag.
pub async fn list_tags(state: &AppState) -> ItemList {
    list(state, &[OverrideKind::Tag]).await
}

/// `PUT /api/v1/tags/{name}`: declares a tag (budgets may then name it).
pub async fn put_tag(state: &AppState, actor: &Actor, name: &str) -> Result<ItemView, ApiError> {
    change(
        state,
        actor,
        OverrideKind::Tag,
        name,
        Some(to_json(&name)?),
        Expect::Either,
    )
    .await?;
    one(state, OverrideKind::Tag, name).await
}

/// Removes a declared tag; refused while a budget names it.
pub async fn delete_tag(state: &AppState, actor: &Actor, name: &str) -> Result<(), ApiError> {
    change(state, actor, OverrideKind::Tag, name, None, Expect::Present).await?;
    Ok(())
}

/// Query parameters of `GET /api/v1/spend`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SpendParams {
    /// `key`, `team`, `user`, `tag`, `model` (default), `provider` or `day`.
    pub group_by: Option<String>,
    /// From this RFC 3339 time, or the start of this `YYYY-MM-DD` (UTC); default the first day of
    /// the current month, UTC.
    pub since: Option<String>,
    /// Up to this RFC 3339 time, or the end of this `YYYY-MM-DD` (UTC); default now.
    pub until: Option<String>,
}

/// `GET /api/v1/spend`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SpendReport {
    /// The range's start, RFC 3339 (included).
    pub since: String,
    /// The range's end, RFC 3339 (included).
    pub until: String,
    /// Every row's known cost in the range, USD, each row counted once.
    pub total_usd: f64,
    /// Groups by `cost_usd` descending; `day` groups by day ascending.
    pub groups: Vec<SpendRow>,
}

/// The history's cost, requests and tokens over a range, grouped by one dimension.
pub async fn spend_report(state: &AppState, params: SpendParams) -> Result<SpendReport, ApiError> {
    let by = match params.group_by.as_deref() {
        None => SpendGroup::Model,
        Some(text) => SpendGroup::parse(text).ok_or_else(|| {
            let names: Vec<&str> = SpendGroup::ALL.iter().map(|g| g.as_str()).collect();
            invalid("group_by", format!("`group_by` must be one of {}", names.join(", ")))
        })?,
    };
    let now = Timestamp::now();
    let since = match params.since.as_deref() {
        Some(text) => instant("since", text, false)?,
        None => month_start(now)?,
    };
    let until = match params.until.as_deref() {
        Some(text) => instant("until", text, true)?,
        None => now,
    };
    let (since_ms, until_ms) = (since.as_millisecond(), until.as_millisecond());
    if since_ms > until_ms {
        return Err(invalid(
            "until",
            format!("`until` ({until}) is before `since` ({since})"),
        ));
    }
    let spend = state.store.spend(by, since_ms, until_ms).await?;
    Ok(SpendReport {
        since: rfc3339(since_ms),
        until: rfc3339(until_ms),
        total_usd: spend.total_usd,
        groups: spend.groups,
    })
}

/// An RFC 3339 time, or a `YYYY-MM-DD` day in UTC: its first millisecond, or with `end_of_day`
/// its last (the range includes both ends, so `until=2026-01-31` includes the 31st).
fn instant(param: &'static str, text: &str, end_of_day: bool) -> Result<Timestamp, ApiError> {
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    let day: Date = text.parse().map_err(|_| {
        invalid(
            param,
            format!("`{param}` must be an RFC 3339 time (2026-01-02T03:04:05Z) or a day (2026-01-02), not `{text}`"),
        )
    })?;
    let start = day
        .to_zoned(TimeZone::UTC)
        .map_err(|e| invalid(param, format!("`{param}`: {e}")))?;
    if !end_of_day {
        return Ok(start.timestamp());
    }
    start
        .checked_add(1.day())
        .and_then(|next| next.checked_sub(1.millisecond()))
        .map(|end| end.timestamp())
        .map_err(|e| invalid(param, format!("`{param}`: {e}")))
}

/// Midnight UTC on the first day of `now`'s month.
fn month_start(now: Timestamp) -> Result<Timestamp, ApiError> {
    let first = now.to_zoned(TimeZone::UTC).date().first_of_month();
    first
        .to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(ApiError::internal)
}

fn rfc3339(ms: i64) -> String {
    Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

fn invalid(param: &str, message: String) -> ApiError {
    ApiError::InvalidRequest(BodyError {
        message,
        param: Some(param.to_owned()),
        code: "invalid_value",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_cover_their_whole_utc_day_and_times_pass_as_given() {
        let start = instant("since", "2026-01-31", false).unwrap();
        let end = instant("until", "2026-01-31", true).unwrap();
        assert_eq!(start.to_string(), "2026-01-31T00:00:00Z");
        assert_eq!(end.to_string(), "2026-01-31T23:59:59.999Z");
        let at = instant("since", "2026-01-02T03:04:05+02:00", false).unwrap();
        assert_eq!(at.to_string(), "2026-01-02T01:04:05Z");
        let ApiError::InvalidRequest(e) = instant("until", "yesterday", true).unwrap_err() else {
            panic!("a bad time is a 400");
        };
        assert_eq!(e.param.as_deref(), Some("until"));
    }

    #[test]
    fn the_default_range_starts_on_the_first_of_the_month() {
        let now: Timestamp = "2026-03-17T12:00:00Z".parse().unwrap();
        assert_eq!(month_start(now).unwrap().to_string(), "2026-03-01T00:00:00Z");
    }
}
