//! Azure OpenAI's one quirk: the deployment is in the URL, not the body.
//!
//! `kind: azure` speaks the OpenAI protocol (`openai_compat` with `Flavor::Azure`) at
//! `{base_url}/openai/deployments/{deployment}/{operation}?api-version=...`. The deployment is
//! the routed model name (after `model_aliases`), read from the body about to be sent; the
//! `api-version` comes from the provider's `query` (the catalogue sets one) and the key goes in
//! the `api-key` header. Reference:
//! <https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference>.

use super::http;
use crate::config::ProviderConfig;
use crate::providers::UpstreamError;

/// `{base_url}/openai/deployments/{model}{path}`; the query is added by the transport.
pub(super) fn url(provider: &ProviderConfig, body: &[u8], path: &str) -> Result<String, UpstreamError> {
    let deployment = http::model_of(&provider.id, body)?;
    Ok(format!(
        "{}/openai/deployments/{}{path}",
        provider.base_url,
        encode_segment(&deployment)
    ))
}

/// Percent-encodes what may not stand in one path segment.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthScheme;
    use crate::domain::ProviderId;

    #[test]
    fn deployment_comes_from_the_model() {
        let p = ProviderConfig {
            id: ProviderId::new("azure"),
            kind: "azure".into(),
            base_url: "https://res.openai.azure.com".into(),
            api_key: None,
            key_pool: None,
            models: vec!["*".into()],
            priority: 1,
            max_concurrency: None,
            queue: Default::default(),
            auth: AuthScheme::Header("api-key".into()),
            headers: vec![],
            model_aliases: Default::default(),
            query: vec![("api-version".into(), "2024-10-21".into())],
            confidence: 0.8,
            task_model: None,
            node_pool: None,
            responses: Default::default(),
            anthropic_beta: Vec::new(),
            prices: Default::default(),
        };
        assert_eq!(
            url(&p, br#"{"model":"my gpt-4o","messages":[]}"#, "/chat/completions").unwrap(),
            "https://res.openai.azure.com/openai/deployments/my%20gpt-4o/chat/completions"
        );
    }
}
