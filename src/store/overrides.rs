//! The admin API's changes (`config_overrides`): one row per item, written by the API of any
//! replica and re-read by every replica's sync loop (`reload.poll_seconds`).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::db::{HistoryError, HistoryStore, with_conn};
use super::now_ms;
use super::schema::config_overrides;
use crate::config::{Override, OverrideKind};

#[derive(Debug, Clone, Insertable, Queryable, Selectable)]
#[diesel(table_name = config_overrides, treat_none_as_default_value = false)]
struct Row {
    kind: String,
    name: String,
    item: Option<String>,
    updated_at: i64,
}

impl HistoryStore {
    /// Stores (or replaces) the change to one item; `item: None` removes it. Returns the row as
    /// stored.
    pub async fn put_override(
        &self,
        kind: OverrideKind,
        name: &str,
        item: Option<String>,
    ) -> Result<Override, HistoryError> {
        let row = Row {
            kind: kind.as_str().to_owned(),
            name: name.to_owned(),
            item,
            updated_at: now_ms(),
        };
        with_conn!(self, |conn| {
            diesel::insert_into(config_overrides::table)
                .values(&row)
                .on_conflict((config_overrides::kind, config_overrides::name))
                .do_update()
                .set((
                    config_overrides::item.eq(&row.item),
                    config_overrides::updated_at.eq(row.updated_at),
                ))
                .execute(&mut conn)
                .await?
        });
        Ok(Override {
            kind,
            name: row.name,
            item: row.item,
            updated_at: row.updated_at,
        })
    }

    /// Every stored change (rows of a kind this build does not know are skipped).
    pub async fn list_overrides(&self) -> Result<Vec<Override>, HistoryError> {
        let rows: Vec<Row> = with_conn!(self, |conn| {
            config_overrides::table
                .select(Row::as_select())
                .order((config_overrides::kind, config_overrides::name))
                .load(&mut conn)
                .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(Override {
                    kind: r.kind.parse().ok()?,
                    name: r.name,
                    item: r.item,
                    updated_at: r.updated_at,
                })
            })
            .collect())
    }
}
