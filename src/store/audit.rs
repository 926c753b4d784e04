//! The admin audit trail (`admin_audit`): one row per change made through the admin API, who made
//! it (a digest prefix of the admin token, never the token), when, and the item before and after.
//!
//! Append-only: this module inserts, reads newest first, and deletes only rows older than the
//! retention (`history.retention_days`); the migration's trigger refuses any UPDATE.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::db::{HistoryError, HistoryStore, with_conn};
use super::now_ms;

diesel::table! {
    admin_audit (id) {
        id -> Text,
        at -> BigInt,
        actor -> Text,
        action -> Text,
        kind -> Text,
        name -> Text,
        before -> Nullable<Text>,
        after -> Nullable<Text>,
    }
}

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Eq, Insertable, Queryable, Selectable)]
#[diesel(table_name = admin_audit, treat_none_as_default_value = false)]
pub struct AuditRow {
    /// UUIDv7.
    pub id: String,
    /// When, epoch ms.
    pub at: i64,
    /// Who: `admin:<digest prefix>`.
    pub actor: String,
    /// `create`, `update`, `delete`, `revoke`, `register`, `remove`, `provision`.
    pub action: String,
    /// `route`, `path_route`, `security`, `user`, `provider`, `key`, `node`...
    pub kind: String,
    /// The item's key (route name, path, endpoint, user, provider id, key name, node URL, host).
    pub name: String,
    /// The item before, as JSON (secrets removed); null when it did not exist.
    pub before: Option<String>,
    /// The item after, as JSON (secrets removed); null when it is gone.
    pub after: Option<String>,
}

/// `GET /api/v1/audit`'s filters, validated.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only rows at or after this time, epoch ms.
    pub since_ms: Option<i64>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
    /// At most this many rows.
    pub limit: i64,
}

impl HistoryStore {
    /// Appends one row.
    pub async fn insert_audit(&self, row: &AuditRow) -> Result<(), HistoryError> {
        with_conn!(self, |conn| {
            diesel::insert_into(admin_audit::table)
                .values(row)
                .execute(&mut conn)
                .await?
        });
        Ok(())
    }

    /// Rows matching `filter`, newest first.
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>, HistoryError> {
        let rows = with_conn!(self, |conn| {
            let mut query = admin_audit::table.select(AuditRow::as_select()).into_boxed();
            if let Some(since) = filter.since_ms {
                query = query.filter(admin_audit::at.ge(since));
            }
            if let Some(kind) = &filter.kind {
                query = query.filter(admin_audit::kind.eq(kind.clone()));
            }
            if let Some(actor) = &filter.actor {
                query = query.filter(admin_audit::actor.eq(actor.clone()));
            }
            query
                .order((admin_audit::at.desc(), admin_audit::id.desc()))
                .limit(filter.limit)
                .load(&mut conn)
                .await?
        });
        Ok(rows)
    }

    /// Deletes rows older than `days` (the retention; the only deletion this table sees).
    pub async fn purge_audit_older_than_days(&self, days: u64) -> Result<usize, HistoryError> {
        let day_ms = i64::try_from(days.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
        let cutoff = now_ms().saturating_sub(day_ms);
        let n = with_conn!(self, |conn| {
            diesel::delete(admin_audit::table.filter(admin_audit::at.lt(cutoff)))
                .execute(&mut conn)
                .await?
        });
        Ok(n)
    }
}
