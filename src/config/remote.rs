//! Where the CLI finds a running gateway: `AI_GATEWAY_URL`, `AI_GATEWAY_API_KEY` and the admin
//! token (`AI_GATEWAY_ADMIN_TOKEN`, else `INTERNAL_API_TOKEN`), read here because `config` is the
//! only module that reads the environment.

use secrecy::SecretString;

use super::env::Env;

/// The gateway's address when `AI_GATEWAY_URL` is not set.
pub const DEFAULT_GATEWAY_URL: &str = "http://127.0.0.1:8080";

/// A running gateway as the CLI talks to it.
#[derive(Debug, Clone)]
pub struct Remote {
    /// Base URL without a trailing slash.
    pub url: String,
    /// Whether `AI_GATEWAY_URL` was set (else `url` is the default).
    pub url_given: bool,
    /// The client key (`AI_GATEWAY_API_KEY`), for `smoke`.
    pub api_key: Option<SecretString>,
    /// The admin token (`AI_GATEWAY_ADMIN_TOKEN`, else `INTERNAL_API_TOKEN`).
    pub admin_token: Option<SecretString>,
}

impl Remote {
    /// Reads the variables from `env`; `url` (the `--url` flag) wins over `AI_GATEWAY_URL`.
    pub fn from_env(env: &Env, url: Option<&str>) -> Self {
        let given = url.or_else(|| env.get("AI_GATEWAY_URL"));
        let secret = |name: &str| env.get(name).map(|v| SecretString::from(v.to_owned()));
        Self {
            url: given.unwrap_or(DEFAULT_GATEWAY_URL).trim_end_matches('/').to_owned(),
            url_given: given.is_some(),
            api_key: secret("AI_GATEWAY_API_KEY"),
            admin_token: secret("AI_GATEWAY_ADMIN_TOKEN").or_else(|| secret("INTERNAL_API_TOKEN")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn the_admin_token_falls_back_to_internal_api_token() {
        let r = Remote::from_env(
            &Env::from_pairs([("INTERNAL_API_TOKEN", "adm"), ("AI_GATEWAY_URL", "http://gw:9/")]),
            None,
        );
        assert_eq!(r.url, "http://gw:9");
        assert!(r.url_given);
        assert_eq!(r.admin_token.unwrap().expose_secret(), "adm");
        let d = Remote::from_env(&Env::default(), None);
        assert_eq!(d.url, DEFAULT_GATEWAY_URL);
        assert!(!d.url_given && d.api_key.is_none());
    }
}
