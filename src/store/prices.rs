//! The last good copy of the `pricing.url` document (`price_documents`): one row per URL, the raw
//! body as fetched, so a gateway whose fetch fails (at start, or later) still prices from it.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::db::{HistoryError, HistoryStore, with_conn};
use super::schema::price_documents;

/// A saved `pricing.url` document.
#[derive(Debug, Clone, PartialEq, Eq, Insertable, Queryable, Selectable)]
#[diesel(table_name = price_documents)]
pub struct SavedPrices {
    /// The URL it was fetched from.
    pub url: String,
    /// When it was fetched, epoch ms.
    pub fetched_at: i64,
    /// The document, as served (it validated before it was saved).
    pub body: String,
}

impl HistoryStore {
    /// Keeps `saved` as the copy of its URL, replacing the one before.
    pub async fn save_prices(&self, saved: &SavedPrices) -> Result<(), HistoryError> {
        with_conn!(self, |conn| {
            diesel::insert_into(price_documents::table)
                .values(saved)
                .on_conflict(price_documents::url)
                .do_update()
                .set((
                    price_documents::fetched_at.eq(saved.fetched_at),
                    price_documents::body.eq(&saved.body),
                ))
                .execute(&mut conn)
                .await?
        });
        Ok(())
    }

    /// The newest copy saved for `url`, if any.
    pub async fn load_prices(&self, url: &str) -> Result<Option<SavedPrices>, HistoryError> {
        Ok(with_conn!(self, |conn| {
            price_documents::table
                .filter(price_documents::url.eq(url))
                .select(SavedPrices::as_select())
                .first(&mut conn)
                .await
                .optional()?
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn the_newest_copy_of_each_url_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = HistoryStore::connect(&format!("sqlite://{}/h.db", dir.path().display()))
            .await
            .unwrap();
        let saved = |url: &str, at: i64, body: &str| SavedPrices {
            url: url.into(),
            fetched_at: at,
            body: body.into(),
        };
        assert_eq!(store.load_prices("https://a/api.json").await.unwrap(), None);
        store
            .save_prices(&saved("https://a/api.json", 1, "{\"old\":1}"))
            .await
            .unwrap();
        store
            .save_prices(&saved("https://b/api.json", 2, "{\"b\":1}"))
            .await
            .unwrap();
        store
            .save_prices(&saved("https://a/api.json", 3, "{\"new\":1}"))
            .await
            .unwrap();
        assert_eq!(
            store.load_prices("https://a/api.json").await.unwrap(),
            Some(saved("https://a/api.json", 3, "{\"new\":1}"))
        );
        assert_eq!(
            store
                .load_prices("https://b/api.json")
                .await
                .unwrap()
                .map(|s| s.fetched_at),
            Some(2)
        );
    }
}
