//! The admin audit trail: `record` is the one call every admin change makes (routes, security
//! rules, users, providers, keys, node registration, removal and provisioning; later admin
//! features call it the same way), `list` serves `GET /api/v1/audit`.
//!
//! The actor is `admin:<first 12 hex digits of SHA-256(token)>`: stable per token, never the
//! token. Before and after go through `scrub`, so a secret an item carries (a virtual key, a
//! provider or SSH key, a password in a URL) never reaches the table, whatever the caller passed.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::dialects::BodyError;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{AuditFilter, AuditRow, now_ms};

/// Who made a change: an id derived from the admin credential, never the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    /// The actor for the admin token `token`.
    pub fn from_token(token: &str) -> Self {
        let digest = hex::encode(Sha256::digest(token.as_bytes()));
        Self(format!("admin:{}", &digest[..12]))
    }

    /// A named actor that is no token (`system`, for changes the gateway makes itself).
    pub fn named(name: &str) -> Self {
        Self(name.to_owned())
    }

    /// The id as stored.
    pub fn id(&self) -> &str {
        &self.0
    }
}

/// One change to record.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// `create`, `update`, `delete`, `revoke`, `register`, `remove`, `provision`.
    pub action: &'a str,
    /// `route`, `path_route`, `security`, `user`, `provider`, `team`, `budget`, `tag`, `key`, `node`...
    pub kind: &'a str,
    /// The item's key.
    pub name: &'a str,
    /// The item before (`None`: it did not exist).
    pub before: Option<Value>,
    /// The item after (`None`: it is gone).
    pub after: Option<Value>,
}

/// Appends `change` to the trail. The change itself is already made and stored, so a failure
/// here is logged at error level rather than undoing or failing it.
pub async fn record(state: &AppState, actor: &Actor, change: Change<'_>) {
    let text = |v: Option<Value>| {
        v.map(|mut v| {
            scrub(&mut v);
            v.to_string()
        })
    };
    let row = AuditRow {
        id: uuid::Uuid::now_v7().to_string(),
        at: now_ms(),
        actor: actor.id().to_owned(),
        action: change.action.to_owned(),
        kind: change.kind.to_owned(),
        name: change.name.to_owned(),
        before: text(change.before),
        after: text(change.after),
    };
    if let Err(e) = state.store.insert_audit(&row).await {
        tracing::error!(
            error = %e,
            actor = %row.actor,
            action = %row.action,
            kind = %row.kind,
            name = %row.name,
            "admin change made but not recorded in the audit trail"
        );
    }
}

/// Object keys whose values are secrets, whatever the item.
fn secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    matches!(
        key.as_str(),
        "key" | "api_key" | "apikey" | "ssh_key" | "secret" | "token" | "password" | "authorization" | "private_key"
    ) || ["_key", "_secret", "_token", "_password"]
        .iter()
        .any(|s| key.ends_with(s))
}

/// Replaces secrets in `value`: values under secret-looking keys, and the userinfo of URLs.
pub fn scrub(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if secret_key(k) && !v.is_null() {
                    *v = Value::String("[redacted]".into());
                } else {
                    scrub(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::String(s) => {
            if let Some((scheme, rest)) = s.split_once("://") {
                let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                if let Some(at) = rest[..authority_end].rfind('@') {
                    *s = format!("{scheme}://[redacted]@{}", &rest[at + 1..]);
                }
            }
        }
        _ => {}
    }
}

/// Query parameters of `GET /api/v1/audit`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// RFC 3339 time: only changes at or after it.
    pub since: Option<String>,
    /// Only this kind: `route`, `path_route`, `security`, `user`, `provider`, `team`, `budget`, `tag`,
    /// `key` or `node`.
    pub kind: Option<String>,
    /// Only this actor (`admin:<digest prefix>`).
    pub actor: Option<String>,
    /// At most this many entries (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// One recorded change.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Entry id (UUIDv7).
    pub id: String,
    /// When, RFC 3339.
    pub timestamp: String,
    /// When, epoch ms.
    pub at: i64,
    /// Who: `admin:<first 12 hex digits of SHA-256 of the admin token>`.
    pub actor: String,
    /// `create`, `update`, `delete`, `revoke`, `register`, `remove` or `provision`.
    pub action: String,
    /// `route`, `path_route`, `security`, `user`, `provider`, `key` or `node`.
    pub kind: String,
    /// The item's key: route name, path, endpoint, user, provider id, key name, node URL or host.
    pub name: String,
    /// The item before the change (secrets removed); null when it did not exist.
    #[schema(value_type = Option<Value>)]
    pub before: Option<Value>,
    /// The item after the change (secrets removed); null when it is gone.
    #[schema(value_type = Option<Value>)]
    pub after: Option<Value>,
}

/// `{"data": [...]}`, newest first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditList {
    /// The entries.
    pub data: Vec<AuditEntry>,
}

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

/// `GET /api/v1/audit`: recorded changes, newest first.
pub async fn list(state: &AppState, query: AuditQuery) -> Result<AuditList, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad(
            format!("`limit` must be between 1 and {MAX_LIMIT}, got {limit}"),
            "limit",
        ));
    }
    let since_ms = match &query.since {
        None => None,
        Some(since) => {
            let at = OffsetDateTime::parse(since, &Rfc3339).map_err(|e| {
                bad(
                    format!("`since` must be an RFC 3339 time like 2026-01-02T03:04:05Z: {e}"),
                    "since",
                )
            })?;
            Some(i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MIN))
        }
    };
    let filter = AuditFilter {
        since_ms,
        kind: query.kind,
        actor: query.actor,
        limit,
    };
    let rows = state.store.list_audit(&filter).await.map_err(ApiError::from)?;
    Ok(AuditList {
        data: rows.into_iter().map(entry).collect(),
    })
}

fn entry(row: AuditRow) -> AuditEntry {
    let parse = |t: Option<String>| t.and_then(|t| serde_json::from_str(&t).ok());
    AuditEntry {
        timestamp: OffsetDateTime::from_unix_timestamp_nanos(i128::from(row.at) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default(),
        id: row.id,
        at: row.at,
        actor: row.actor,
        action: row.action,
        kind: row.kind,
        name: row.name,
        before: parse(row.before),
        after: parse(row.after),
    }
}

fn bad(message: String, param: &str) -> ApiError {
    ApiError::InvalidRequest(BodyError {
        message,
        param: Some(param.into()),
        code: "invalid_value",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_actor_is_a_digest_prefix_never_the_token() {
        let a = Actor::from_token("adm-secret-value");
        assert!(a.id().starts_with("admin:"));
        assert_eq!(a.id().len(), "admin:".len() + 12);
        assert!(!a.id().contains("secret"));
        assert_eq!(a, Actor::from_token("adm-secret-value"));
        assert_ne!(a, Actor::from_token("another"));
    }

    #[test]
    fn secrets_are_scrubbed_wherever_they_are() {
        let mut v = serde_json::json!({
            "name": "k",
            "key": "sk-live-123",
            "api_key": "sk-prov",
            "ssh_key": "-----BEGIN",
            "nested": [{"hs256_secret": "s", "callback": "https://user:pw@hooks.example/x?y=1"}],
            "target": "http://svc:8080/p",
            "prefix": "sk-li",
            "absent_key": null,
        });
        scrub(&mut v);
        let text = v.to_string();
        for secret in ["sk-live-123", "sk-prov", "BEGIN", "\"s\"", "user:pw"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(v["nested"][0]["callback"], "https://[redacted]@hooks.example/x?y=1");
        assert_eq!(v["target"], "http://svc:8080/p");
        assert_eq!(v["prefix"], "sk-li");
        assert_eq!(v["absent_key"], Value::Null);
    }
}
