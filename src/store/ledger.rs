//! The spend ledger (`spend_ledger`): what each budget's subject spent per period, added in the
//! same transaction as the history rows that spent it, and read back to rebuild the counters.

use std::collections::{BTreeMap, HashMap};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::db::{HistoryStore, with_conn};
use super::schema::spend_ledger;
use super::{Charge, HistoryError};

/// One ledger line: a budget subject's spend in one period.
#[derive(Debug, Clone, PartialEq, Insertable, Queryable, Selectable)]
#[diesel(table_name = spend_ledger)]
pub struct LedgerRow {
    /// `key`, `team`, `user`, `tag`, `session`, `provider` or `gateway`.
    pub scope: String,
    /// The subject (empty for `gateway`).
    pub name: String,
    /// `daily`, `weekly`, `monthly` or `total`.
    pub period: String,
    /// The period's start, epoch ms (0 for `total`).
    pub period_start: i64,
    /// USD spent.
    pub amount_usd: f64,
    /// Requests that spent it.
    pub requests: i64,
    /// Last change, epoch ms.
    pub updated_at: i64,
}

/// The ledger lines of the rows in `written` (ids just inserted), summed per line, so one upsert
/// statement adds them all (no two name the same line).
pub(super) fn lines(written: &[String], charges: &HashMap<String, (f64, Vec<Charge>)>, now: i64) -> Vec<LedgerRow> {
    let mut sums: BTreeMap<(&'static str, &str, &'static str, i64), (f64, i64)> = BTreeMap::new();
    for id in written {
        let Some((cost, list)) = charges.get(id) else { continue };
        for c in list {
            let e = sums.entry((c.scope, &c.name, c.period, c.period_start)).or_default();
            e.0 += cost;
            e.1 += 1;
        }
    }
    sums.into_iter()
        .map(
            |((scope, name, period, period_start), (amount_usd, requests))| LedgerRow {
                scope: scope.to_owned(),
                name: name.to_owned(),
                period: period.to_owned(),
                period_start,
                amount_usd,
                requests,
                updated_at: now,
            },
        )
        .collect()
}

macro_rules! upsert {
    ($line:expr) => {
        diesel::insert_into($crate::store::schema::spend_ledger::table)
            .values($line)
            .on_conflict((
                $crate::store::schema::spend_ledger::scope,
                $crate::store::schema::spend_ledger::name,
                $crate::store::schema::spend_ledger::period,
                $crate::store::schema::spend_ledger::period_start,
            ))
            .do_update()
            .set((
                $crate::store::schema::spend_ledger::amount_usd.eq($crate::store::schema::spend_ledger::amount_usd
                    + ::diesel::upsert::excluded($crate::store::schema::spend_ledger::amount_usd)),
                $crate::store::schema::spend_ledger::requests.eq($crate::store::schema::spend_ledger::requests
                    + ::diesel::upsert::excluded($crate::store::schema::spend_ledger::requests)),
                $crate::store::schema::spend_ledger::updated_at.eq(::diesel::upsert::excluded(
                    $crate::store::schema::spend_ledger::updated_at,
                )),
            ))
    };
}
pub(super) use upsert;

impl HistoryStore {
    /// USD the caller `caller` (a history row's caller id) spent since `since_ms`.
    pub async fn spent_by(&self, caller: &str, since_ms: i64) -> Result<f64, HistoryError> {
        use super::schema::ai_requests;
        let sum: Option<f64> = with_conn!(self, |conn| {
            ai_requests::table
                .filter(ai_requests::caller.eq(caller))
                .filter(ai_requests::created_at.ge(since_ms))
                .select(diesel::dsl::sum(ai_requests::cost_usd))
                .first(&mut conn)
                .await?
        });
        Ok(sum.unwrap_or(0.0))
    }

    /// Ledger lines of periods that started at or after `since_ms`, and every `total` line.
    pub async fn ledger_since(&self, since_ms: i64) -> Result<Vec<LedgerRow>, HistoryError> {
        Ok(with_conn!(self, |conn| {
            spend_ledger::table
                .filter(
                    spend_ledger::period_start
                        .ge(since_ms)
                        .or(spend_ledger::period.eq("total")),
                )
                .select(LedgerRow::as_select())
                .load(&mut conn)
                .await?
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_sum_per_budget_and_period_only_for_written_rows() {
        let charge = |scope, name: &str| Charge {
            scope,
            name: name.into(),
            period: "daily",
            period_start: 10,
        };
        let charges = HashMap::from([
            ("a".to_owned(), (0.25, vec![charge("team", "r"), charge("gateway", "")])),
            ("b".to_owned(), (0.5, vec![charge("team", "r")])),
            ("c".to_owned(), (9.0, vec![charge("team", "r")])),
        ]);
        let got = lines(&["a".into(), "b".into()], &charges, 7);
        assert_eq!(got.len(), 2);
        let team = got.iter().find(|l| l.scope == "team").unwrap();
        assert_eq!((team.amount_usd, team.requests), (0.75, 2));
        let gw = got.iter().find(|l| l.scope == "gateway").unwrap();
        assert_eq!((gw.amount_usd, gw.requests, gw.updated_at), (0.25, 1, 7));
    }
}
