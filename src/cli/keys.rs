//! `ai-gateway keys ...`: virtual keys. With a gateway URL (`--url` or `AI_GATEWAY_URL`) the CLI
//! asks that gateway's admin API; without one it writes the database named by `DATABASE_URL`
//! (or `--config`) directly, as it always did, so keys can be made before any gateway runs.

use std::io::Write;
use std::path::PathBuf;

use ai_gateway::admin;
use ai_gateway::admin::{CreatedKey, KeyList, KeyView, NewKey};
use ai_gateway::config::{Config, Overrides, Sources, TeamConfig, load};
use ai_gateway::store::HistoryStore;
use clap::Subcommand;
use serde_json::json;

use super::remote::Gateway;

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
        /// The team it belongs to (declared in `teams:` or through `ai-gateway teams set`).
        #[arg(long)]
        team: Option<String>,
        /// Its priority: high, normal or low (default: its team's, else normal).
        #[arg(long)]
        priority: Option<String>,
        /// The user it spends as (default: its name).
        #[arg(long)]
        user: Option<String>,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke a key by id or name; replicas stop accepting it within seconds.
    Revoke {
        /// The key's id or name.
        id_or_name: String,
    },
}

/// Runs a `keys` action against `gateway` when given, else straight against the database.
pub async fn run(config: Option<PathBuf>, gateway: Option<Gateway>, action: KeysAction) -> Result<(), String> {
    match gateway {
        Some(gw) => through_api(&gw, action).await,
        None => direct(config, action).await,
    }
}

async fn through_api(gw: &Gateway, action: KeysAction) -> Result<(), String> {
    match action {
        KeysAction::Create {
            name,
            rpm,
            tpm,
            models,
            expires,
            team,
            priority,
            user,
        } => {
            let body = json!({
                "name": name, "rpm": rpm, "tpm": tpm, "models": models, "expires": expires,
                "team": team, "priority": priority, "user": user,
            });
            let created: CreatedKey = gw.send_json(reqwest::Method::POST, "/api/v1/keys", Some(&body)).await?;
            print_created(&created);
        }
        KeysAction::List => {
            let list: KeyList = gw.send_json(reqwest::Method::GET, "/api/v1/keys", None).await?;
            print_keys(&list.data);
        }
        KeysAction::Revoke { id_or_name } => {
            let path = format!("/api/v1/keys/{}", super::remote::encode(&id_or_name));
            let _: serde_json::Value = gw.send_json(reqwest::Method::DELETE, &path, None).await?;
            println_out("revoked; every replica refuses it within a few seconds");
        }
    }
    Ok(())
}

async fn direct(config: Option<PathBuf>, action: KeysAction) -> Result<(), String> {
    let config = load(&Sources::from_process(config)).map_err(|e| e.to_string())?;
    let store = HistoryStore::connect(&config.settings.database_url)
        .await
        .map_err(|e| e.to_string())?;
    match action {
        KeysAction::Create {
            name,
            rpm,
            tpm,
            models,
            expires,
            team,
            priority,
            user,
        } => {
            let spec = NewKey {
                name,
                rpm,
                tpm,
                models,
                expires,
                team,
                priority,
                user,
            };
            let teams = declared_teams(config, &store).await;
            let created = admin::create_key(&store, spec, &teams)
                .await
                .map_err(|e| e.to_string())?;
            print_created(&created);
        }
        KeysAction::List => print_keys(&admin::list_keys(&store).await.map_err(|e| e.to_string())?),
        KeysAction::Revoke { id_or_name } => {
            let n = admin::revoke_key(&store, &id_or_name)
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!("no active key with id or name `{id_or_name}`"));
            }
            println_out(&format!(
                "revoked {n} key(s); every replica refuses it within a few seconds"
            ));
        }
    }
    Ok(())
}

/// The teams a gateway on this database would run with: the file's, with the admin API's stored
/// changes over it (a team made with `teams set` lives only in the database). When those changes
/// cannot be read or do not apply to this file, the file's teams alone.
async fn declared_teams(config: Config, store: &HistoryStore) -> Vec<TeamConfig> {
    let note = |why: String| {
        let _ = writeln!(
            std::io::stderr().lock(),
            "note: {why}; the team is checked against the config file's teams only"
        );
    };
    let overrides = match store.list_overrides().await {
        Ok(rows) => Overrides::from_rows(rows),
        Err(e) => {
            note(format!("the admin API's stored changes cannot be read ({e})"));
            return config.settings.teams;
        }
    };
    match config.with_overrides(&overrides) {
        Ok(live) => live.settings.teams,
        Err(e) => {
            note(format!(
                "the admin API's stored changes do not apply to this config file ({e})"
            ));
            config.settings.teams
        }
    }
}

fn print_created(created: &CreatedKey) {
    println_out(&format!("created key `{}` (id {})", created.view.name, created.view.id));
    println_out(&created.key);
    println_out("store it now: it is not shown again and only its hash is kept");
}

fn print_keys(keys: &[KeyView]) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<36}  {:<20}  {:<12}  {:>6}  {:>8}  {:<20}  {:<16}  {:<8}  {:<20}  state",
        "id", "name", "prefix", "rpm", "tpm", "models", "team", "priority", "user"
    );
    for k in keys {
        let opt = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |n| n.to_string());
        let _ = writeln!(
            out,
            "{:<36}  {:<20}  {:<12}  {:>6}  {:>8}  {:<20}  {:<16}  {:<8}  {:<20}  {}",
            k.id,
            k.name,
            k.prefix,
            opt(k.rpm),
            opt(k.tpm),
            k.models.as_deref().unwrap_or("any"),
            k.team.as_deref().unwrap_or("-"),
            k.priority.as_deref().unwrap_or("-"),
            k.user,
            k.state
        );
    }
}

fn println_out(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
