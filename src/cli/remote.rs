//! The CLI's client for a running gateway: the admin API with the admin token (sent as both
//! `X-Admin-Token` and `Authorization: Bearer`, as seed 002's clients do), and the client API with
//! `AI_GATEWAY_API_KEY`. Errors read as the operator needs them: the gateway cannot be reached, or
//! what it refused and why (its OpenAI-shaped `error.message`).

use std::time::Duration;

use ai_gateway::config::Remote;
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A running gateway.
pub struct Gateway {
    remote: Remote,
    http: reqwest::Client,
}

impl Gateway {
    /// A client for `remote`.
    pub fn new(remote: Remote) -> Result<Self, String> {
        ai_gateway::startup::init_crypto();
        // The admin token must not follow a redirect to another host.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Self { remote, http })
    }

    /// The gateway's base URL.
    pub fn url(&self) -> &str {
        &self.remote.url
    }

    /// Calls the admin API and parses the JSON answer; a refusal becomes its message.
    pub async fn send_json<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, String> {
        let text = self.send(method, path, body).await?;
        serde_json::from_str(&text).map_err(|e| format!("the gateway answered something unexpected: {e}"))
    }

    /// Calls the admin API for its status alone (a `204 No Content` delete, say); a refusal
    /// becomes its message.
    pub async fn send_no_content(&self, method: reqwest::Method, path: &str) -> Result<(), String> {
        self.send(method, path, None).await.map(drop)
    }

    /// The text of a 2xx answer; the server's error message otherwise.
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<String, String> {
        let mut request = self.http.request(method, format!("{}{path}", self.remote.url));
        if let Some(token) = &self.remote.admin_token {
            let token = token.expose_secret();
            request = request
                .header("x-admin-token", token)
                .header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        success_text(response).await
    }

    /// `POST /v1/chat/completions` with the client key; `Ok` on a 2xx, else why not.
    pub async fn chat(&self, body: &Value) -> Result<(), String> {
        let mut request = self
            .http
            .post(format!("{}/v1/chat/completions", self.remote.url))
            .json(body);
        if let Some(key) = &self.remote.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let text = success_text(response).await?;
        serde_json::from_str::<Value>(&text)
            .map(drop)
            .map_err(|e| format!("the gateway answered something unexpected: {e}"))
    }

    fn unreachable(&self, e: &reqwest::Error) -> String {
        let mut cause = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            cause = format!("{cause}: {s}");
            source = s.source();
        }
        format!("cannot reach the gateway at {}: {cause}", self.remote.url)
    }
}

/// The text of a 2xx answer; the server's error message otherwise.
async fn success_text(response: reqwest::Response) -> Result<String, String> {
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| format!("the gateway's answer was cut off: {e}"))?;
    if !status.is_success() {
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| text.chars().take(300).collect());
        let hint = match status.as_u16() {
            401 => " (set AI_GATEWAY_ADMIN_TOKEN or INTERNAL_API_TOKEN to the gateway's admin token)",
            403 => " (this needs the admin token, not a client key)",
            _ => "",
        };
        return Err(format!("{message}{hint} [HTTP {}]", status.as_u16()));
    }
    Ok(text)
}

/// Percent-encodes one URL path segment (or query value).
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
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

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode("/predict"), "%2Fpredict");
        assert_eq!(encode("http://gpu-1:8000"), "http%3A%2F%2Fgpu-1%3A8000");
        assert_eq!(encode("support-rotation_2"), "support-rotation_2");
    }
}
