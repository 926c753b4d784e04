//! `/history` queries and cleanup.

use super::resolve::Scope;
use crate::auth::{Caller, CallerKind};
use crate::dialects::BodyError;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{HistoryItem, HistoryQuery};

/// Who is reading `/history`, which decides whose rows they see.
#[derive(Debug, Clone, Copy)]
pub enum Viewer<'a> {
    /// The admin token: every row.
    Operator,
    /// A client: its own rows (every row when auth is off and it is anonymous).
    Client(Option<&'a Caller>),
}

/// Rows matching `query` that `viewer` may see, newest first.
pub async fn history(state: &AppState, viewer: Viewer<'_>, query: HistoryQuery) -> Result<Vec<HistoryItem>, ApiError> {
    let mut query = validated(query)?;
    query.callers = match viewer {
        Viewer::Operator => None,
        Viewer::Client(caller) => own_rows(state, caller),
    };
    state.store.list(&query).await.map_err(ApiError::from)
}

/// `/api/u/{user}/history`: the user's own rows — those of the caller's credentials and of every
/// virtual key issued under that user's name. The caller must be that user (anyone when auth is off).
pub async fn user_history(
    state: &AppState,
    caller: Option<&Caller>,
    user: &str,
    query: HistoryQuery,
) -> Result<Vec<HistoryItem>, ApiError> {
    Scope::of_user(&state.live(), caller, user)?;
    let mut query = validated(query)?;
    query.callers = own_rows(state, caller);
    if let Some(callers) = &mut query.callers {
        let keys = state.store.list_keys().await.map_err(ApiError::from)?;
        callers.extend(keys.into_iter().filter(|k| k.name == user).map(|k| k.id));
    }
    state.store.list(&query).await.map_err(ApiError::from)
}

/// The callers whose rows a client sees: itself, or everyone when auth is off (nothing tells one
/// anonymous caller from another but an address, and that has always shown every row). An
/// anonymous caller let in by a `security:` rule while auth is on sees only its address's rows.
fn own_rows(state: &AppState, caller: Option<&Caller>) -> Option<Vec<String>> {
    match caller {
        Some(c) if c.kind == CallerKind::Anonymous && !state.auth.enabled() => None,
        Some(c) => Some(vec![c.id.clone()]),
        // The route's middleware always leaves a caller; without one, nothing is shown.
        None => Some(Vec::new()),
    }
}

fn validated(query: HistoryQuery) -> Result<HistoryQuery, ApiError> {
    query.validate().map_err(|(param, message)| {
        ApiError::InvalidRequest(BodyError {
            message,
            param: Some(param.into()),
            code: "invalid_value",
        })
    })
}

/// Deletes error rows (older than `older_than_minutes` when given); returns how many.
pub async fn cleanup(state: &AppState, older_than_minutes: Option<u64>) -> Result<usize, ApiError> {
    state
        .store
        .cleanup_errors(older_than_minutes)
        .await
        .map_err(ApiError::from)
}
