//! `/history` queries and cleanup.

use crate::domain::BodyError;
use crate::error::ApiError;
use crate::history::{HistoryError, HistoryItem, HistoryQuery};
use crate::state::AppState;

/// Rows matching `query`, newest first.
pub async fn history(state: &AppState, query: HistoryQuery) -> Result<Vec<HistoryItem>, ApiError> {
    let query = query.validate().map_err(|(param, message)| {
        ApiError::InvalidRequest(BodyError {
            message,
            param: Some(param.into()),
            code: "invalid_value",
        })
    })?;
    state.store.list(&query).await.map_err(unavailable)
}

/// Deletes error rows (older than `older_than_minutes` when given); returns how many.
pub async fn cleanup(state: &AppState, older_than_minutes: Option<u64>) -> Result<usize, ApiError> {
    state
        .store
        .cleanup_errors(older_than_minutes)
        .await
        .map_err(unavailable)
}

fn unavailable(e: HistoryError) -> ApiError {
    tracing::warn!(error = %e, "history query failed");
    ApiError::Unavailable {
        message: "the history database is unavailable; try again later".into(),
    }
}
