//! Client request headers that reach an upstream, by name: Anthropic's protocol headers, sent to
//! every anthropic-kind provider whatever API the client spoke.

/// The client's Anthropic protocol headers. Every other upstream header comes from the provider's
/// config; these two are the client's because they select the request shape it sent (a beta
/// enables fields like `context_management` that Anthropic refuses without it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHeaders {
    /// `anthropic-beta`: comma-separated beta names, as the client sent them.
    pub anthropic_beta: Option<String>,
    /// `anthropic-version`.
    pub anthropic_version: Option<String>,
}

impl ClientHeaders {
    /// No client headers: for calls the gateway makes on its own (`/ai/task`, path routes).
    pub const NONE: &'static ClientHeaders = &ClientHeaders {
        anthropic_beta: None,
        anthropic_version: None,
    };
}
