//! The Responses API's operations on a response a provider made and keeps: `GET`, `DELETE`,
//! `POST .../cancel` and `GET .../input_items`, sent to that provider with its own credentials.
//!
//! OpenAI-compatible providers serve them at `{base_url}/responses/{id}[/...]`; Azure OpenAI at
//! `{base_url}/openai/v1/responses/{id}[/...]`, its v1 API, which takes no dated `api-version`
//! (the one the provider's `query` carries for chat deployments is left off). The answer, any
//! status, goes back as the upstream sent it, its body streamed (a `stream=true` retrieval
//! included). References: <https://platform.openai.com/docs/api-reference/responses>,
//! <https://learn.microsoft.com/azure/ai-foundry/openai/how-to/responses>.

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderName, HeaderValue};

use super::http;
use crate::config::ProviderConfig;
use crate::domain::RequestId;
use crate::providers::{ByteStream, UpstreamError, UpstreamErrorKind};

/// Which operation on a stored response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseOp {
    /// `GET /responses/{id}`.
    Get,
    /// `DELETE /responses/{id}`.
    Delete,
    /// `POST /responses/{id}/cancel`.
    Cancel,
    /// `GET /responses/{id}/input_items`.
    InputItems,
}

/// One operation to send.
#[derive(Debug)]
pub struct OpCall<'a> {
    /// The provider that made the response.
    pub provider: &'a ProviderConfig,
    /// The shared client.
    pub http: &'a reqwest::Client,
    /// Propagated as `x-request-id`.
    pub request_id: &'a RequestId,
    /// What to do.
    pub op: ResponseOp,
    /// The response id.
    pub id: &'a str,
    /// The client's query string, passed on (`include[]`, `stream`, `limit`, `after`...).
    pub query: Option<&'a str>,
    /// Time allowed until the answer's head.
    pub timeout: Duration,
}

/// The upstream's answer, whatever its status.
pub struct OpAnswer {
    /// Its status.
    pub status: u16,
    /// Its content type.
    pub content_type: Option<String>,
    /// Its body, as it arrives.
    pub body: ByteStream,
}

impl std::fmt::Debug for OpAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpAnswer")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Whether a provider of `kind` keeps responses the gateway can reach.
pub fn keeps_responses(kind: &str) -> bool {
    matches!(kind, "openai" | "azure")
}

/// Sends `call` and returns the upstream's answer (a non-2xx included); a transport failure, a
/// provider that keeps no responses or a head that does not come in time is an `UpstreamError`.
pub async fn forward(call: &OpCall<'_>) -> Result<OpAnswer, UpstreamError> {
    let p = call.provider;
    let unsupported =
        |e: String| UpstreamError::new(&p.id, UpstreamErrorKind::Unsupported).with_source(std::io::Error::other(e));
    let url = url(p, call.op, call.id, call.query).map_err(unsupported)?;
    let mut headers = http::provider_headers(p)?;
    let streamed = call.query.is_some_and(|q| q.split('&').any(|kv| kv == "stream=true"));
    let accept = if streamed { http::EVENT_STREAM } else { http::JSON };
    headers.insert(ACCEPT, HeaderValue::from_static(accept));
    if let Ok(v) = HeaderValue::from_str(call.request_id.as_str()) {
        headers.insert(HeaderName::from_static("x-request-id"), v);
    }
    let method = match call.op {
        ResponseOp::Get | ResponseOp::InputItems => reqwest::Method::GET,
        ResponseOp::Delete => reqwest::Method::DELETE,
        ResponseOp::Cancel => reqwest::Method::POST,
    };
    let request = call.http.request(method, url).headers(headers);
    let resp = tokio::time::timeout(call.timeout, request.send())
        .await
        .map_err(|_| UpstreamError::new(&p.id, UpstreamErrorKind::Timeout))?
        .map_err(|e| UpstreamError::from_reqwest(&p.id, e))?;
    Ok(OpAnswer {
        status: resp.status().as_u16(),
        content_type: http::header_text(resp.headers(), CONTENT_TYPE),
        body: http::byte_stream(&p.id, resp),
    })
}

/// The operation's URL: the provider's Responses endpoint, the id as one path segment, the
/// client's query, then the provider's.
fn url(p: &ProviderConfig, op: ResponseOp, id: &str, query: Option<&str>) -> Result<reqwest::Url, String> {
    let (root, azure) = match p.kind.as_str() {
        "openai" => (format!("{}/responses", p.base_url), false),
        "azure" => (format!("{}/openai/v1/responses", p.base_url), true),
        other => return Err(format!("a `{other}` provider keeps no Responses API responses")),
    };
    let mut url = reqwest::Url::parse(&root).map_err(|e| e.to_string())?;
    {
        let mut segments = url
            .path_segments_mut()
            .map_err(|()| "the provider's base_url cannot take a path".to_owned())?;
        segments.push(id);
        match op {
            ResponseOp::Cancel => {
                segments.push("cancel");
            }
            ResponseOp::InputItems => {
                segments.push("input_items");
            }
            ResponseOp::Get | ResponseOp::Delete => {}
        }
    }
    url.set_query(query);
    let own = p.query.iter().filter(|(k, _)| !(azure && k == "api-version"));
    let own: Vec<_> = own.collect();
    if !own.is_empty() {
        url.query_pairs_mut().extend_pairs(own);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthScheme;
    use crate::domain::ProviderId;

    fn provider(kind: &str, base_url: &str, query: Vec<(String, String)>) -> ProviderConfig {
        ProviderConfig {
            id: ProviderId::new(kind),
            kind: kind.into(),
            base_url: base_url.into(),
            api_key: None,
            key_pool: None,
            models: vec!["*".into()],
            priority: 1,
            max_concurrency: None,
            queue: Default::default(),
            auth: AuthScheme::default_for(kind),
            headers: vec![],
            model_aliases: Default::default(),
            query,
            confidence: 0.8,
            task_model: None,
            node_pool: None,
            responses: Default::default(),
            anthropic_beta: Vec::new(),
            prices: Default::default(),
        }
    }

    fn url_of(p: &ProviderConfig, op: ResponseOp, id: &str, query: Option<&str>) -> String {
        url(p, op, id, query).unwrap().to_string()
    }

    #[test]
    fn openai_and_azure_urls() {
        let openai = provider("openai", "https://api.openai.com/v1", vec![]);
        assert_eq!(
            url_of(&openai, ResponseOp::InputItems, "resp_1", Some("limit=2&order=asc")),
            "https://api.openai.com/v1/responses/resp_1/input_items?limit=2&order=asc"
        );
        assert_eq!(
            url_of(&openai, ResponseOp::Get, "a/b", None),
            "https://api.openai.com/v1/responses/a%2Fb"
        );
        let azure = provider(
            "azure",
            "https://res.openai.azure.com",
            vec![("api-version".into(), "2024-10-21".into())],
        );
        assert_eq!(
            url_of(&azure, ResponseOp::Cancel, "resp_1", None),
            "https://res.openai.azure.com/openai/v1/responses/resp_1/cancel"
        );
    }
}
