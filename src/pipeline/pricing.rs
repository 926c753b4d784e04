//! `pricing.url`: the models.dev-shaped price document, fetched at start and every
//! `pricing.refresh_hours` by the task `startup` owns, validated, installed as `Spend.fetched` and
//! kept in the database as the last good copy.
//!
//! A fetch that fails in any way (transport, status, size, timeout, a document that does not
//! validate) changes no price: the prices in use stay, and `Spend.fetch_status.last_error` (shown
//! in `/health`) says why. Never on the request path.

use std::sync::Arc;
use std::time::Duration;

use crate::spend::{DocumentError, FetchStatus, PROVIDER_IDS, Parsed, parse_models_dev};
use crate::state::AppState;
use crate::store::{SavedPrices, now_ms};

/// Longest a fetch may take, body included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest document read; a longer one is refused while it streams in.
pub const MAX_DOCUMENT_BYTES: usize = 32 * 1024 * 1024;

/// Why a fetch left the prices as they were.
#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    /// The request failed before a whole answer came (connection, TLS, a body cut short).
    #[error("fetch failed: {0}")]
    Transport(String),
    /// Not a 2xx (a redirect included: the shared client never follows one).
    #[error("fetch answered HTTP {0}")]
    Status(u16),
    /// No whole answer within `FETCH_TIMEOUT`.
    #[error("no whole answer within {} s", FETCH_TIMEOUT.as_secs())]
    Timeout,
    /// The document is over `MAX_DOCUMENT_BYTES`.
    #[error("the document is larger than {} MiB", MAX_DOCUMENT_BYTES / (1024 * 1024))]
    TooLarge,
    /// The document did not validate.
    #[error(transparent)]
    Document(#[from] DocumentError),
}

/// Installs the last good copy saved for the configured `pricing.url`, if there is one; run once
/// at start, before the first fetch, so a gateway whose first fetch fails still has prices.
/// Returns how many models it priced (0 with no URL or no usable copy).
pub async fn load_saved_prices(state: &AppState) -> usize {
    let Some(url) = configured_url(state) else { return 0 };
    let shown = shown_url(&url);
    let saved = match state.store.load_prices(&url).await {
        Ok(Some(saved)) => saved,
        Ok(None) => {
            tracing::info!(url = %shown, "no saved copy of pricing.url; waiting for the first fetch");
            return 0;
        }
        Err(e) => {
            tracing::warn!(url = %shown, error = %e, "the saved copy of pricing.url cannot be read");
            return 0;
        }
    };
    match parse_models_dev(saved.body.as_bytes(), PROVIDER_IDS) {
        Ok(parsed) => {
            tracing::info!(url = %shown, models = parsed.models, fetched_at_ms = saved.fetched_at, "prices loaded from the saved copy of pricing.url");
            install(state, shown, parsed, saved.fetched_at)
        }
        Err(e) => {
            tracing::warn!(url = %shown, error = %e, "the saved copy of pricing.url no longer validates; not used");
            0
        }
    }
}

/// Fetches `pricing.url` once: on success installs its prices, saves the document and clears
/// `last_error`; on failure keeps the prices in use and records why. Does nothing without a URL.
/// Returns how many models the document priced.
pub async fn refresh_prices(state: &AppState) -> Result<usize, PricingError> {
    let Some(url) = configured_url(state) else { return Ok(0) };
    let shown = shown_url(&url);
    let fetched_at = now_ms();
    let result = match tokio::time::timeout(FETCH_TIMEOUT, fetch(&state.http, &url)).await {
        Ok(Ok(body)) => parse_models_dev(&body, PROVIDER_IDS)
            .map(|parsed| (body, parsed))
            .map_err(PricingError::from),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(PricingError::Timeout),
    };
    let (body, parsed) = match result {
        Ok(ok) => ok,
        Err(e) => {
            tracing::warn!(url = %shown, error = %e, "pricing.url not refreshed; the prices in use stay");
            let last_error = Some(e.to_string());
            state.spend.fetch_status.rcu(|s| FetchStatus {
                url: Some(shown.clone()),
                last_error: last_error.clone(),
                ..(**s).clone()
            });
            return Err(e);
        }
    };
    if parsed.skipped > 0 {
        tracing::warn!(url = %shown, skipped = parsed.skipped, first = ?parsed.problems, "pricing.url: entries skipped");
    }
    tracing::info!(url = %shown, models = parsed.models, unpriced = parsed.unpriced, "prices fetched from pricing.url");
    let models = install(state, shown.clone(), parsed, fetched_at);
    // A document that parsed is UTF-8 (JSON is), so this only fails for a parser that changed.
    match String::from_utf8(body) {
        Ok(body) => {
            let saved = SavedPrices { url, fetched_at, body };
            if let Err(e) = state.store.save_prices(&saved).await {
                tracing::warn!(url = %shown, error = %e, "pricing.url fetched but not saved; a restart uses the copy before");
            }
        }
        Err(e) => tracing::warn!(url = %shown, error = %e, "pricing.url fetched but not saved: not UTF-8"),
    }
    Ok(models)
}

/// What `/health` shows of `pricing.url`: `None` without one.
pub(super) fn status(state: &AppState) -> Option<FetchStatus> {
    let url = configured_url(state)?;
    Some(FetchStatus {
        url: Some(shown_url(&url)),
        ..(**state.spend.fetch_status.load()).clone()
    })
}

/// The configured URL, read from the live configuration so a reload that changes it applies at
/// the next refresh.
fn configured_url(state: &AppState) -> Option<String> {
    state.live().config.settings.pricing.url.clone()
}

/// Makes `parsed` the fetched prices and says so in the status.
fn install(state: &AppState, shown: String, parsed: Parsed, fetched_at: i64) -> usize {
    let models = parsed.models;
    state.spend.fetched.store(Arc::new(parsed.prices));
    state.spend.fetch_status.store(Arc::new(FetchStatus {
        url: Some(shown),
        fetched_at_ms: Some(fetched_at),
        models,
        last_error: None,
    }));
    models
}

/// GET `url` with the shared client, reading at most `MAX_DOCUMENT_BYTES` as the body streams in.
async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, PricingError> {
    let mut response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(transport)?;
    let status = response.status();
    if !status.is_success() {
        return Err(PricingError::Status(status.as_u16()));
    }
    if response.content_length().is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64) {
        return Err(PricingError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(PricingError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A transport error with its causes, without the URL (which may carry a token).
fn transport(e: reqwest::Error) -> PricingError {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    PricingError::Transport(text)
}

/// `url` as logs and `/health` show it: no user, password, query or fragment, which may carry a
/// credential.
fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "(not a URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_url_carries_no_credentials() {
        assert_eq!(shown_url("https://models.dev/api.json"), "https://models.dev/api.json");
        assert_eq!(
            shown_url("https://user:secret@prices.example/api.json?token=abc#x"),
            "https://prices.example/api.json"
        );
        assert_eq!(shown_url("not a url"), "(not a URL)");
    }
}
