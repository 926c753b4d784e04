//! The OpenAI protocol's own `/v1/responses` (`kind: openai` and `azure`): the client's body goes
//! to `{base_url}/responses` (Azure: `{base_url}/openai/v1/responses`, the deployment named by the
//! body's `model`) as its bytes, with only `model` spliced by routing, and the answer — a
//! `response` object, or its events — comes back as it is.
//!
//! `responses: auto` (the default for providers outside the catalogue) tries it and learns: a 405,
//! or a 404 that is not an OpenAI error about the model (`model_not_found`), means the upstream
//! has no Responses endpoint, so the provider is bridged from then on (`ResponsesProbe`, kept
//! across reloads by the registry). References:
//! <https://platform.openai.com/docs/api-reference/responses/create>,
//! <https://learn.microsoft.com/en-us/azure/ai-foundry/openai/how-to/responses>.

use std::sync::{Arc, OnceLock};

use reqwest::header::CONTENT_TYPE;

use super::http;
use crate::config::{ProviderConfig, ResponsesMode};
use crate::dialects::wire;
use crate::domain::ProviderId;
use crate::providers::{ByteStream, Call, Reply, ResponsesStatus, UpstreamError, UpstreamErrorKind};

/// What `auto` has learnt about one provider: set once, when the upstream shows it has no
/// Responses endpoint, and never unset while the provider stays (a reload keeps it).
#[derive(Debug, Default)]
pub struct ResponsesProbe {
    bridged: OnceLock<String>,
}

impl ResponsesProbe {
    /// Why the provider is bridged, once it is.
    fn reason(&self) -> Option<&str> {
        self.bridged.get().map(String::as_str)
    }

    /// Bridges the provider from now on; logged once.
    fn bridge(&self, id: &ProviderId, reason: String) {
        if self.bridged.set(reason.clone()).is_ok() {
            tracing::warn!(
                provider = %id,
                reason = %reason,
                "upstream has no Responses endpoint: /v1/responses is bridged to chat completions for this provider from now on"
            );
        }
    }
}

/// How one provider serves `/v1/responses` natively: its mode, what `auto` learnt, and the URL.
#[derive(Debug)]
pub(super) struct Native {
    mode: ResponsesMode,
    probe: Arc<ResponsesProbe>,
    url: http::Endpoint,
}

impl Native {
    /// For `provider` (`azure`: the v1 API's URL), with the probe a previous adapter left, if any.
    pub(super) fn new(provider: &ProviderConfig, azure: bool, probe: Option<Arc<ResponsesProbe>>) -> Self {
        let url = if azure {
            // The v1 API takes no `api-version` (the deployment URLs need one): it is left out.
            let query: Vec<_> = provider.query.iter().filter(|(k, _)| k != "api-version").collect();
            reqwest::Url::parse(&format!("{}/openai/v1/responses", provider.base_url))
                .map(|mut url| {
                    if !query.is_empty() {
                        url.query_pairs_mut().extend_pairs(query);
                    }
                    url
                })
                .map_err(|e| e.to_string())
        } else {
            let mut url = reqwest::Url::parse(&format!("{}/responses", provider.base_url)).map_err(|e| e.to_string());
            if let Ok(u) = &mut url
                && !provider.query.is_empty()
            {
                u.query_pairs_mut().extend_pairs(&provider.query);
            }
            url
        };
        Self {
            mode: provider.responses,
            probe: probe.unwrap_or_default(),
            url,
        }
    }

    /// Whether a call goes to the upstream's Responses endpoint.
    pub(super) fn tries(&self) -> bool {
        match self.mode {
            ResponsesMode::Native => true,
            ResponsesMode::Bridge => false,
            ResponsesMode::Auto => self.probe.reason().is_none(),
        }
    }

    /// In `auto`, whether `err` shows that the upstream has no Responses endpoint; if so the
    /// provider is bridged from now on.
    pub(super) fn learns(&self, id: &ProviderId, err: &UpstreamError) -> bool {
        if self.mode != ResponsesMode::Auto || err.kind != UpstreamErrorKind::Status {
            return false;
        }
        let about_model = err
            .detail
            .as_ref()
            .is_some_and(|d| d.code.as_deref() == Some("model_not_found"));
        let lacks = match err.status {
            Some(405) => true,
            Some(404) => !about_model,
            _ => false,
        };
        if lacks {
            let status = err.status.unwrap_or_default();
            self.probe.bridge(id, format!("POST /responses answered {status}"));
        }
        lacks
    }

    /// The probe, for the adapter that replaces this one on a reload.
    pub(super) fn probe(&self) -> Arc<ResponsesProbe> {
        self.probe.clone()
    }

    /// For `/provider/status`.
    pub(super) fn status(&self) -> ResponsesStatus {
        let serving = if self.tries() { "native" } else { "bridge" };
        ResponsesStatus {
            mode: self.mode.as_str(),
            serving,
            detected: self.probe.reason().map(str::to_owned),
        }
    }

    /// One non-streamed call: the `response` object as the upstream sent it.
    pub(super) async fn send(&self, transport: &http::Transport, call: &Call<'_>) -> Result<Reply, UpstreamError> {
        let id = &call.provider.id;
        let resp = transport.post(call, &self.url, call.body.clone(), http::JSON).await?;
        let status = resp.status().as_u16();
        let content_type = http::header_text(resp.headers(), CONTENT_TYPE).unwrap_or_else(|| http::JSON.into());
        let body = http::body(id, resp, call.max_response_bytes).await?;
        // A 2xx must be a `response` object; anything else is retried, never passed on as one.
        let inspected = wire::responses_object(&body).ok_or_else(|| http::malformed(id))?;
        Ok(Reply {
            status,
            content_type,
            body,
            usage: inspected.usage,
            text: inspected.text,
        })
    }

    /// Opens a stream: the upstream's events, relayed as they come.
    pub(super) async fn open_stream(
        &self,
        transport: &http::Transport,
        call: &Call<'_>,
    ) -> Result<ByteStream, UpstreamError> {
        let resp = transport
            .post(call, &self.url, call.body.clone(), http::EVENT_STREAM)
            .await?;
        Ok(http::byte_stream(&call.provider.id, resp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthScheme;
    use crate::providers::ErrorDetail;

    fn provider(kind: &str, base_url: &str, mode: ResponsesMode) -> ProviderConfig {
        ProviderConfig {
            id: ProviderId::new("p"),
            kind: kind.into(),
            base_url: base_url.into(),
            api_key: None,
            key_pool: None,
            models: vec!["*".into()],
            priority: 1,
            max_concurrency: None,
            queue: Default::default(),
            auth: AuthScheme::Bearer,
            headers: vec![],
            model_aliases: Default::default(),
            query: vec![("api-version".into(), "2024-10-21".into())],
            confidence: 0.8,
            task_model: None,
            node_pool: None,
            responses: mode,
            anthropic_beta: Vec::new(),
            prices: Default::default(),
        }
    }

    fn status(code: u16, error_code: Option<&str>) -> UpstreamError {
        let mut e = UpstreamError::new(&ProviderId::new("p"), UpstreamErrorKind::Status);
        e.status = Some(code);
        e.detail = Some(Box::new(ErrorDetail {
            message: "m".into(),
            code: error_code.map(str::to_owned),
            ..Default::default()
        }));
        e
    }

    #[test]
    fn azure_uses_the_v1_path_without_api_version() {
        let n = Native::new(
            &provider("azure", "https://r.openai.azure.com", ResponsesMode::Native),
            true,
            None,
        );
        assert_eq!(
            n.url.as_ref().unwrap().as_str(),
            "https://r.openai.azure.com/openai/v1/responses"
        );
    }

    #[test]
    fn auto_learns_from_405_and_foreign_404_but_not_from_model_not_found() {
        let id = ProviderId::new("p");
        let n = Native::new(&provider("openai", "http://x/v1", ResponsesMode::Auto), false, None);
        assert!(!n.learns(&id, &status(404, Some("model_not_found"))));
        assert!(!n.learns(&id, &status(500, None)));
        assert!(n.tries());
        assert!(n.learns(&id, &status(404, None)));
        assert!(!n.tries());
        assert_eq!(n.status().serving, "bridge");
        let n = Native::new(&provider("openai", "http://x/v1", ResponsesMode::Auto), false, None);
        assert!(n.learns(&id, &status(405, None)));
        let native = Native::new(&provider("openai", "http://x/v1", ResponsesMode::Native), false, None);
        assert!(!native.learns(&id, &status(405, None)));
        assert!(native.tries());
    }
}
