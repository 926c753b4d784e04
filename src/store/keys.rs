//! Virtual keys in the database: created by the CLI, loaded by every replica's key cache.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Serialize;

use super::db::{HistoryError, HistoryStore, with_conn};
use super::now_ms;

/// Why a key could not be created or revoked.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The request is wrong as a whole.
    #[error("{0}")]
    Invalid(String),
    /// One field of the request is wrong (an empty name, a bad expiry, an unknown team).
    #[error("{param}: {message}")]
    Field {
        /// The field, as the API names it.
        param: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] HistoryError),
}
use super::schema::api_keys;

/// A stored virtual key (never the key itself: its SHA-256 and a short display prefix).
#[derive(Debug, Clone, Insertable, Queryable, Selectable, Serialize)]
#[diesel(table_name = api_keys, treat_none_as_default_value = false)]
pub struct StoredKey {
    /// Key id (UUIDv7); goes into history rows as the caller.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Hex SHA-256 of the key.
    #[serde(skip)]
    pub key_hash: String,
    /// The first characters of the key, for recognising it in listings.
    pub key_prefix: String,
    /// Requests per minute for this key (overrides the global limit).
    pub rpm: Option<i64>,
    /// Tokens per minute for this key.
    pub tpm: Option<i64>,
    /// Comma-separated models this key may use; null = any.
    pub models: Option<String>,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Expiry, epoch ms.
    pub expires_at: Option<i64>,
    /// Revocation time, epoch ms.
    pub revoked_at: Option<i64>,
    /// The team it belongs to.
    pub team: Option<String>,
    /// `high`, `normal` or `low`; null = its team's, else `normal`.
    pub priority: Option<String>,
    /// The user it spends as; null = its name.
    #[serde(rename = "user")]
    pub user_name: Option<String>,
}

impl HistoryStore {
    /// Stores a new key.
    pub async fn insert_key(&self, key: &StoredKey) -> Result<(), HistoryError> {
        with_conn!(self, |conn| diesel::insert_into(api_keys::table)
            .values(key)
            .execute(&mut conn)
            .await?);
        Ok(())
    }

    /// Every key, newest first (revoked and expired included).
    pub async fn list_keys(&self) -> Result<Vec<StoredKey>, HistoryError> {
        let keys = with_conn!(self, |conn| {
            api_keys::table
                .select(StoredKey::as_select())
                .order(api_keys::id.desc())
                .load(&mut conn)
                .await?
        });
        Ok(keys)
    }

    /// Keys that may be used now: not revoked, not expired.
    pub async fn active_keys(&self) -> Result<Vec<StoredKey>, HistoryError> {
        let now = now_ms();
        let keys = with_conn!(self, |conn| {
            api_keys::table
                .select(StoredKey::as_select())
                .filter(api_keys::revoked_at.is_null())
                .filter(api_keys::expires_at.is_null().or(api_keys::expires_at.gt(now)))
                .load(&mut conn)
                .await?
        });
        Ok(keys)
    }

    /// Whether any key was ever created (revoked and expired ones count: rows are never deleted).
    pub async fn any_key(&self) -> Result<bool, HistoryError> {
        let n: i64 = with_conn!(self, |conn| api_keys::table.count().get_result(&mut conn).await?);
        Ok(n > 0)
    }

    /// Revokes the key with this id or name; returns how many keys were revoked.
    pub async fn revoke_key(&self, id_or_name: &str) -> Result<usize, HistoryError> {
        let now = now_ms();
        let n = with_conn!(self, |conn| {
            diesel::update(
                api_keys::table
                    .filter(api_keys::id.eq(id_or_name).or(api_keys::name.eq(id_or_name)))
                    .filter(api_keys::revoked_at.is_null()),
            )
            .set(api_keys::revoked_at.eq(Some(now)))
            .execute(&mut conn)
            .await?
        });
        Ok(n)
    }
}
