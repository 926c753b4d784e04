//! `ai-gateway keys ...`: virtual keys, created and revoked in the database every replica reads.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use ai_gateway::auth::{digest, generate_key, key_prefix};
use ai_gateway::config::{Sources, load};
use ai_gateway::history::{HistoryStore, StoredKey, now_ms};
use clap::Subcommand;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What to do with keys.
#[derive(Subcommand)]
pub enum KeysAction {
    /// Create a key; it is printed once and only its hash is stored.
    Create {
        /// A name to recognise it by.
        #[arg(long)]
        name: String,
        /// Requests per minute for this key.
        #[arg(long)]
        rpm: Option<u32>,
        /// Tokens per minute for this key.
        #[arg(long)]
        tpm: Option<u64>,
        /// Comma-separated models this key may use (default: any).
        #[arg(long)]
        models: Option<String>,
        /// Expiry: an RFC 3339 time, or a duration from now such as 30d, 12h, 90m.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke a key by id or name; replicas stop accepting it within seconds.
    Revoke {
        /// The key's id or name.
        id_or_name: String,
    },
}

/// Runs a `keys` action.
pub async fn keys(config: Option<PathBuf>, action: KeysAction) -> ExitCode {
    match run(config, action).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "ai-gateway keys: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Option<PathBuf>, action: KeysAction) -> Result<(), String> {
    let config = load(&Sources::from_process(config)).map_err(|e| e.to_string())?;
    let store = HistoryStore::connect(&config.settings.database_url)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    match action {
        KeysAction::Create {
            name,
            rpm,
            tpm,
            models,
            expires,
        } => {
            let key = generate_key()?;
            let expires_at = expires.as_deref().map(parse_expiry).transpose()?;
            let stored = StoredKey {
                id: uuid::Uuid::now_v7().to_string(),
                name,
                key_hash: digest(&key).hex(),
                key_prefix: key_prefix(&key),
                rpm: rpm.map(i64::from),
                tpm: tpm.and_then(|t| i64::try_from(t).ok()),
                models,
                created_at: now_ms(),
                expires_at,
                revoked_at: None,
            };
            store.insert_key(&stored).await.map_err(|e| e.to_string())?;
            let _ = writeln!(out, "created key `{}` (id {})", stored.name, stored.id);
            let _ = writeln!(out, "{key}");
            let _ = writeln!(out, "store it now: it is not shown again and only its hash is kept");
        }
        KeysAction::List => {
            let keys = store.list_keys().await.map_err(|e| e.to_string())?;
            let _ = writeln!(
                out,
                "{:<36}  {:<20}  {:<12}  {:>6}  {:>8}  {:<20}  state",
                "id", "name", "prefix", "rpm", "tpm", "models"
            );
            for k in keys {
                let state = match (k.revoked_at, k.expires_at) {
                    (Some(_), _) => "revoked",
                    (None, Some(e)) if e <= now_ms() => "expired",
                    _ => "active",
                };
                let opt = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |n| n.to_string());
                let _ = writeln!(
                    out,
                    "{:<36}  {:<20}  {:<12}  {:>6}  {:>8}  {:<20}  {state}",
                    k.id,
                    k.name,
                    k.key_prefix,
                    opt(k.rpm),
                    opt(k.tpm),
                    k.models.as_deref().unwrap_or("any")
                );
            }
        }
        KeysAction::Revoke { id_or_name } => {
            let n = store.revoke_key(&id_or_name).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!("no active key with id or name `{id_or_name}`"));
            }
            let _ = writeln!(out, "revoked {n} key(s); every replica refuses it within a few seconds");
        }
    }
    Ok(())
}

/// `2027-01-01T00:00:00Z`, or `30d` / `12h` / `90m` from now, as epoch milliseconds.
fn parse_expiry(text: &str) -> Result<i64, String> {
    let unit_ms = match text.chars().last() {
        Some('d') => Some(86_400_000),
        Some('h') => Some(3_600_000),
        Some('m') => Some(60_000),
        _ => None,
    };
    if let Some(unit) = unit_ms
        && let Ok(n) = text[..text.len() - 1].parse::<i64>()
    {
        return Ok(now_ms() + n * unit);
    }
    let at = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| format!("--expires: `{text}` is neither an RFC 3339 time nor a duration like 30d: {e}"))?;
    Ok(i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
}
