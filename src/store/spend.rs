//! `/api/v1/spend`: the history table's cost, requests and tokens over a time range, grouped by
//! one dimension.
//!
//! Each dimension is one `GROUP BY` query written once for both backends: only portable SQL
//! (`COALESCE`, integer division, `CAST(SUM(..) AS BIGINT)`, so that PostgreSQL's `NUMERIC` sum of
//! a `BIGINT` reads back as SQLite's integer does). Days and tags are grouped in SQL by a portable
//! key (the day's number since the epoch, the comma-joined tag list) and finished here.

use std::collections::BTreeMap;

use diesel::dsl::{count_star, sql, sum};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use super::db::{HistoryError, HistoryStore, with_conn};
use super::schema::{ai_requests, api_keys};

/// What `/api/v1/spend` groups rows by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendGroup {
    /// A virtual key's name (other callers by their caller id).
    Key,
    /// The caller's team.
    Team,
    /// The user the request was spent by.
    User,
    /// Each tag the client sent (a row counts under each of its tags).
    Tag,
    /// The model sent upstream, else the model asked for.
    Model,
    /// The provider that answered.
    Provider,
    /// The UTC day, `YYYY-MM-DD`.
    Day,
}

impl SpendGroup {
    /// Every group, in the order the API documents them.
    pub const ALL: [SpendGroup; 7] = [
        Self::Key,
        Self::Team,
        Self::User,
        Self::Tag,
        Self::Model,
        Self::Provider,
        Self::Day,
    ];

    /// Its name in `group_by`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Team => "team",
            Self::User => "user",
            Self::Tag => "tag",
            Self::Model => "model",
            Self::Provider => "provider",
            Self::Day => "day",
        }
    }

    /// The group named `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == text)
    }
}

/// One group of `/api/v1/spend`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SpendRow {
    /// The key, team, user, tag, model, provider or day; null for rows without one.
    pub group: Option<String>,
    /// Sum of the rows' known costs, USD (rows with no price add nothing).
    pub cost_usd: f64,
    /// Rows counted.
    pub requests: i64,
    /// Sum of `prompt_tokens`.
    pub input_tokens: i64,
    /// Sum of `completion_tokens`.
    pub output_tokens: i64,
}

/// What one range holds, grouped.
#[derive(Debug, Clone, PartialEq)]
pub struct Spend {
    /// Every row's known cost in the range, counted once (not the sum over tag groups).
    pub total_usd: f64,
    /// The groups: by `cost_usd` descending (ties by name), days ascending.
    pub groups: Vec<SpendRow>,
}

/// Cost, rows, input tokens, output tokens of one SQL group.
type Sums = (Option<f64>, i64, Option<i64>, Option<i64>);

/// The sums every query selects beside its group key.
macro_rules! sums {
    () => {
        (
            sum(ai_requests::cost_usd),
            count_star(),
            sql::<Nullable<BigInt>>("CAST(SUM(ai_requests.prompt_tokens) AS BIGINT)"),
            sql::<Nullable<BigInt>>("CAST(SUM(ai_requests.completion_tokens) AS BIGINT)"),
        )
    };
}

/// `GROUP BY $key` over the rows created in `[$since, $until]`, with `sums!()`.
macro_rules! grouped {
    ($store:expr, $since:expr, $until:expr, $key:expr) => {
        with_conn!($store, |conn| {
            ai_requests::table
                .filter(ai_requests::created_at.between($since, $until))
                .group_by($key)
                .select(($key, sums!()))
                .load(&mut conn)
                .await?
        })
    };
}

const MS_PER_DAY: i64 = 86_400_000;

impl HistoryStore {
    /// Cost, requests and tokens of the rows created from `since_ms` to `until_ms` (both
    /// included), grouped by `by`.
    pub async fn spend(&self, by: SpendGroup, since_ms: i64, until_ms: i64) -> Result<Spend, HistoryError> {
        let (since, until) = (since_ms, until_ms);
        let rows: Vec<(Option<String>, Sums)> = match by {
            SpendGroup::Key => self.spend_by_key(since, until).await?,
            SpendGroup::Team => grouped!(self, since, until, ai_requests::team),
            SpendGroup::User => grouped!(self, since, until, ai_requests::user_name),
            SpendGroup::Tag => grouped!(self, since, until, ai_requests::tags),
            SpendGroup::Provider => grouped!(self, since, until, ai_requests::provider),
            SpendGroup::Model => grouped!(
                self,
                since,
                until,
                sql::<Nullable<Text>>("COALESCE(ai_requests.upstream_model, ai_requests.model)")
            ),
            SpendGroup::Day => {
                let days: Vec<(i64, Sums)> = grouped!(
                    self,
                    since,
                    until,
                    sql::<BigInt>(&format!("ai_requests.created_at / {MS_PER_DAY}"))
                );
                days.into_iter().map(|(day, s)| (day_name(day), s)).collect()
            }
        };
        Ok(finish(by, rows))
    }

    /// Grouped by caller, with the virtual key's name where the caller is one.
    async fn spend_by_key(&self, since: i64, until: i64) -> Result<Vec<(Option<String>, Sums)>, HistoryError> {
        let rows: Vec<(Option<String>, Option<String>, Sums)> = with_conn!(self, |conn| {
            ai_requests::table
                .left_join(api_keys::table.on(ai_requests::caller.eq(api_keys::id.nullable())))
                .filter(ai_requests::created_at.between(since, until))
                .group_by((ai_requests::caller, api_keys::name))
                .select((ai_requests::caller, api_keys::name.nullable(), sums!()))
                .load(&mut conn)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(caller, key_name, sums)| (key_name.or(caller), sums))
            .collect())
    }
}

/// `YYYY-MM-DD` of the UTC day `day` days after the epoch.
fn day_name(day: i64) -> Option<String> {
    let at = jiff::Timestamp::from_millisecond(day.saturating_mul(MS_PER_DAY)).ok()?;
    Some(at.to_zoned(jiff::tz::TimeZone::UTC).date().to_string())
}

/// Merges SQL groups that share a name (two keys of one name; a tag in several tag lists),
/// splits tag lists, totals the range and sorts.
fn finish(by: SpendGroup, rows: Vec<(Option<String>, Sums)>) -> Spend {
    let mut total_usd = 0.0;
    let mut groups: BTreeMap<Option<String>, SpendRow> = BTreeMap::new();
    for (name, (cost, requests, input, output)) in rows {
        total_usd += cost.unwrap_or(0.0);
        let names: Vec<Option<String>> = match (by, name) {
            (SpendGroup::Tag, Some(list)) => {
                let mut tags: Vec<&str> = list.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
                tags.sort_unstable();
                tags.dedup();
                if tags.is_empty() {
                    vec![None]
                } else {
                    tags.into_iter().map(|t| Some(t.to_owned())).collect()
                }
            }
            (_, name) => vec![name],
        };
        for name in names {
            let row = groups.entry(name.clone()).or_insert_with(|| SpendRow {
                group: name,
                cost_usd: 0.0,
                requests: 0,
                input_tokens: 0,
                output_tokens: 0,
            });
            row.cost_usd += cost.unwrap_or(0.0);
            row.requests += requests;
            row.input_tokens += input.unwrap_or(0);
            row.output_tokens += output.unwrap_or(0);
        }
    }
    let mut groups: Vec<SpendRow> = groups.into_values().collect();
    if by != SpendGroup::Day {
        // The map kept names in order (null first); a stable sort keeps that among equal costs.
        groups.sort_by(|a, b| b.cost_usd.total_cmp(&a.cost_usd));
    }
    Spend { total_usd, groups }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(cost: f64, requests: i64) -> Sums {
        (Some(cost), requests, Some(requests * 10), None)
    }

    #[test]
    fn tag_lists_count_under_each_tag_once_and_the_total_counts_each_row_once() {
        let rows = vec![
            (Some("ci,nightly".to_owned()), sums(1.0, 1)),
            (Some("ci,ci".to_owned()), sums(0.5, 2)),
            (None, sums(0.25, 1)),
        ];
        let spend = finish(SpendGroup::Tag, rows);
        assert_eq!(spend.total_usd, 1.75);
        let got: Vec<(Option<&str>, f64, i64, i64)> = spend
            .groups
            .iter()
            .map(|g| (g.group.as_deref(), g.cost_usd, g.requests, g.input_tokens))
            .collect();
        assert_eq!(
            got,
            [
                (Some("ci"), 1.5, 3, 30),
                (Some("nightly"), 1.0, 1, 10),
                (None, 0.25, 1, 10)
            ]
        );
    }

    #[test]
    fn days_are_named_in_utc_and_kept_in_order() {
        assert_eq!(day_name(0).as_deref(), Some("1970-01-01"));
        assert_eq!(day_name(20_454).as_deref(), Some("2026-01-01"));
        let spend = finish(
            SpendGroup::Day,
            vec![(day_name(1), sums(0.5, 1)), (day_name(2), sums(3.0, 1))],
        );
        assert_eq!(spend.groups[0].group.as_deref(), Some("1970-01-02"));
        assert_eq!(SpendGroup::parse("day"), Some(SpendGroup::Day));
        assert_eq!(SpendGroup::parse("week"), None);
    }
}
