//! Why a caller was refused: a closed set the HTTP layer maps to 401 or 403.

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials (401).
    #[error("missing credentials: send `Authorization: Bearer <key>` or `x-api-key: <key>`")]
    Missing,
    /// Credentials that match nothing (401).
    #[error("invalid API key or token")]
    Invalid,
    /// A JWT past its expiry (401).
    #[error("the token has expired")]
    Expired,
    /// Valid client credentials on an operator endpoint (403).
    #[error("this endpoint needs the admin token (X-Admin-Token)")]
    NotAdmin,
    /// No admin token is configured (403).
    #[error("admin API disabled: set INTERNAL_API_TOKEN (auth.admin_token) to enable it")]
    AdminDisabled,
    /// No worker token is configured (403).
    #[error("worker API disabled: set AI_CLUSTER_SECRET (auth.worker_token) to enable it")]
    WorkerDisabled,
}

impl AuthError {
    /// A closed label for metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Invalid => "invalid",
            Self::Expired => "expired",
            Self::NotAdmin | Self::AdminDisabled | Self::WorkerDisabled => "forbidden",
        }
    }

    /// 401 or 403.
    pub fn status(self) -> u16 {
        match self {
            Self::Missing | Self::Invalid | Self::Expired => 401,
            Self::NotAdmin | Self::AdminDisabled | Self::WorkerDisabled => 403,
        }
    }
}
