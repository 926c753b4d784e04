//! Virtual keys: `ai-gateway keys ...` (straight to the database) and `/api/v1/keys` (the admin
//! API) create, list and revoke them through these functions. A key is shown once; only its
//! SHA-256 is stored, and every replica's key refresh picks it up.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth::{Authenticator, Caller, CallerKind, VirtualKey, digest, generate_key, key_prefix};
use crate::config::TeamConfig;
use crate::domain::Priority;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{HistoryStore, MAX_NAME_CHARS, StoredKey, now_ms};

/// What a new key is created with (`POST /api/v1/keys` body, `keys create` flags).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// A name to recognise it by.
    pub name: String,
    /// Requests per minute for this key.
    pub rpm: Option<u32>,
    /// Tokens per minute for this key.
    pub tpm: Option<u64>,
    /// Comma-separated models this key may use (default: any).
    pub models: Option<String>,
    /// Expiry: an RFC 3339 time, or a duration from now such as 30d, 12h, 90m.
    pub expires: Option<String>,
    /// The team it belongs to; must be declared in `teams:`.
    pub team: Option<String>,
    /// `high`, `normal` or `low`; unset = its team's, else `normal`.
    pub priority: Option<String>,
    /// The user it spends as (budgets and `/api/u/{user}`); unset = the key's name.
    pub user: Option<String>,
}

/// A key as listed: never the key itself.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyView {
    /// Key id (UUIDv7).
    pub id: String,
    pub name: String,
    /// The first characters of the key.
    pub prefix: String,
    /// Requests per minute, if limited.
    pub rpm: Option<i64>,
    /// Tokens per minute, if limited.
    pub tpm: Option<i64>,
    /// Comma-separated models; null = any.
    pub models: Option<String>,
    /// The team it belongs to.
    pub team: Option<String>,
    /// Its own priority; null = its team's, else `normal`.
    pub priority: Option<String>,
    /// The user it spends as (its name unless set).
    pub user: String,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Expiry, epoch ms.
    pub expires_at: Option<i64>,
    /// `active`, `expired` or `revoked`.
    pub state: String,
}

impl From<StoredKey> for KeyView {
    fn from(k: StoredKey) -> Self {
        let state = match (k.revoked_at, k.expires_at) {
            (Some(_), _) => "revoked",
            (None, Some(e)) if e <= now_ms() => "expired",
            _ => "active",
        };
        Self {
            user: k.user_name.unwrap_or_else(|| k.name.clone()),
            id: k.id,
            name: k.name,
            prefix: k.key_prefix,
            rpm: k.rpm,
            tpm: k.tpm,
            models: k.models,
            team: k.team,
            priority: k.priority,
            created_at: k.created_at,
            expires_at: k.expires_at,
            state: state.to_owned(),
        }
    }
}

/// A key just created: the only time `key` is shown.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedKey {
    /// The key as stored.
    #[serde(flatten)]
    pub view: KeyView,
    /// The key itself; not shown again.
    pub key: String,
}

pub use crate::store::KeyError;

/// Creates and stores a key; its team must be one of `teams` (the live configuration's, or for
/// the CLI without a gateway the config file's with the stored admin changes over it).
pub async fn create_key(store: &HistoryStore, spec: NewKey, teams: &[TeamConfig]) -> Result<CreatedKey, KeyError> {
    let field = |param: &'static str, message: String| KeyError::Field { param, message };
    if spec.name.trim().is_empty() {
        return Err(field("name", "a key needs a name".into()));
    }
    let team = spec.team.filter(|t| !t.is_empty());
    if let Some(team) = &team
        && !teams.iter().any(|t| &t.name == team)
    {
        let known: Vec<&str> = teams.iter().map(|t| t.name.as_str()).collect();
        let known = if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        };
        return Err(field(
            "team",
            format!("team `{team}` is not declared in `teams:` (declared: {known})"),
        ));
    }
    let priority = spec
        .priority
        .map(|p| {
            Priority::parse(&p)
                .map(|p| p.as_str().to_owned())
                .ok_or_else(|| field("priority", format!("must be high, normal or low, not `{p}`")))
        })
        .transpose()?;
    if let Some(user) = &spec.user
        && (user.trim().is_empty() || user.chars().any(char::is_control) || user.chars().count() > MAX_NAME_CHARS)
    {
        return Err(field(
            "user",
            format!("must be 1 to {MAX_NAME_CHARS} characters without control characters"),
        ));
    }
    let key = generate_key().map_err(KeyError::Invalid)?;
    let expires_at = spec
        .expires
        .as_deref()
        .map(parse_expiry)
        .transpose()
        .map_err(|e| field("expires", e))?;
    let stored = StoredKey {
        id: uuid::Uuid::now_v7().to_string(),
        name: spec.name,
        key_hash: digest(&key).hex(),
        key_prefix: key_prefix(&key),
        rpm: spec.rpm.map(i64::from),
        tpm: spec.tpm.and_then(|t| i64::try_from(t).ok()),
        models: spec.models.filter(|m| !m.trim().is_empty()),
        created_at: now_ms(),
        expires_at,
        revoked_at: None,
        team,
        priority,
        user_name: spec.user,
    };
    store.insert_key(&stored).await?;
    Ok(CreatedKey {
        view: stored.into(),
        key,
    })
}

/// Every key, newest first.
pub async fn list_keys(store: &HistoryStore) -> Result<Vec<KeyView>, KeyError> {
    Ok(store.list_keys().await?.into_iter().map(KeyView::from).collect())
}

/// Revokes the key with this id or name; returns how many were revoked.
pub async fn revoke_key(store: &HistoryStore, id_or_name: &str) -> Result<usize, KeyError> {
    Ok(store.revoke_key(id_or_name).await?)
}

/// `POST /api/v1/keys`.
pub async fn api_create_key(state: &AppState, body: &[u8]) -> Result<CreatedKey, ApiError> {
    let spec: NewKey =
        serde_json::from_slice(body).map_err(|e| KeyError::Invalid(format!("invalid key request: {e}")))?;
    let created = create_key(&state.store, spec, &state.live().config.settings.teams).await?;
    // This replica accepts it at once; the others at their next refresh.
    refresh_keys(&state.store, &state.auth).await;
    Ok(created)
}

/// `GET /api/v1/keys`.
pub async fn api_list_keys(state: &AppState) -> Result<KeyList, ApiError> {
    Ok(KeyList {
        data: list_keys(&state.store).await?,
    })
}

/// `DELETE /api/v1/keys/{id}` (an id or a name).
pub async fn api_revoke_key(state: &AppState, id_or_name: &str) -> Result<usize, ApiError> {
    match revoke_key(&state.store, id_or_name).await? {
        0 => Err(ApiError::NotFound {
            message: format!("no active key with id or name `{id_or_name}`"),
        }),
        n => {
            refresh_keys(&state.store, &state.auth).await;
            Ok(n)
        }
    }
}

/// `{"data": [...]}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyList {
    /// Every key, newest first (revoked and expired included).
    pub data: Vec<KeyView>,
}

/// Reloads virtual keys; on a database error the previous set stays in force (each key still
/// stops at its expiry). Until it has seen one, also asks whether any key was ever created:
/// that, not the number of keys active now, keeps auth required after the last revocation.
pub async fn refresh_keys(store: &HistoryStore, auth: &Authenticator) {
    match store.active_keys().await {
        Ok(keys) => auth.replace_virtual_keys(keys.into_iter().filter_map(virtual_key).collect()),
        Err(e) => tracing::warn!(error = %e, "virtual keys not refreshed; keeping the previous set"),
    }
    // Asked after the active keys: a key created in between is then seen here.
    if !auth.keys_ever_created() {
        match store.any_key().await {
            Ok(ever) => auth.note_key_history(ever),
            Err(e) => {
                tracing::warn!(error = %e, "whether virtual keys were ever created is unknown; auth stays as it is")
            }
        }
    }
}

fn virtual_key(k: StoredKey) -> Option<VirtualKey> {
    let digest = crate::auth::KeyDigest::from_hex(&k.key_hash)?;
    let models = k.models.map(|m| {
        m.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    });
    Some(VirtualKey {
        digest,
        expires_at: k.expires_at,
        caller: Caller {
            id: k.id,
            kind: CallerKind::VirtualKey,
            rpm: k.rpm.and_then(|r| u32::try_from(r).ok()),
            tpm: k.tpm.and_then(|t| u64::try_from(t).ok()),
            models,
            user: Some(k.user_name.unwrap_or_else(|| k.name.clone())),
            key_name: Some(k.name),
            team: k.team,
            priority: k.priority.as_deref().and_then(Priority::parse),
            team_models: None,
        },
    })
}

/// `2027-01-01T00:00:00Z`, or `30d` / `12h` / `90m` from now, as epoch milliseconds.
pub fn parse_expiry(text: &str) -> Result<i64, String> {
    let unit_ms = match text.chars().last() {
        Some('d') => Some(86_400_000),
        Some('h') => Some(3_600_000),
        Some('m') => Some(60_000),
        _ => None,
    };
    if let Some(unit) = unit_ms
        && let Ok(n) = text[..text.len() - 1].parse::<i64>()
    {
        return Ok(now_ms().saturating_add(n.saturating_mul(unit)));
    }
    let at = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| format!("`{text}` is neither an RFC 3339 time nor a duration like 30d: {e}"))?;
    Ok(i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_reads_durations_and_times() {
        let in_a_day = parse_expiry("1d").unwrap() - now_ms();
        assert!((86_300_000..=86_400_000).contains(&in_a_day));
        assert_eq!(parse_expiry("1970-01-01T00:00:01Z"), Ok(1000));
        assert!(parse_expiry("soon").is_err());
    }
}
