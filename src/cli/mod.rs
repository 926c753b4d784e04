//! The `ai-gateway` subcommands besides `serve` and `check-config` (seed 002's verbs).
//!
//! Every command but `init`, `config` and `keys` (without a URL) talks to a running gateway's admin API at
//! `AI_GATEWAY_URL` (default `http://127.0.0.1:8080`) with the admin token
//! (`AI_GATEWAY_ADMIN_TOKEN`, else `INTERNAL_API_TOKEN`); `smoke` also uses `AI_GATEWAY_API_KEY`
//! for its chat requests. A failure prints `Error: ...` on stderr and exits 1.

mod admin;
mod config;
mod init;
mod keys;
mod remote;
mod smoke;
mod spend;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use ai_gateway::config::{Env, Remote};
use clap::{Args, Subcommand};

pub use keys::KeysAction;
use remote::Gateway;

/// Where the gateway is (`--url` wins over `AI_GATEWAY_URL`).
#[derive(Args, Clone, Default)]
pub struct Target {
    /// Management commands: the gateway's base URL (env AI_GATEWAY_URL; default http://127.0.0.1:8080).
    #[arg(long, global = true)]
    url: Option<String>,
}

/// Commands that manage a gateway.
#[derive(Subcommand)]
pub enum Manage {
    /// Write a commented starter config file.
    Init {
        /// Where to write it.
        #[arg(long, default_value = "ai-gateway.yaml")]
        config: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Work with the configuration file's format (`config schema`: its JSON Schema).
    Config {
        #[command(subcommand)]
        action: config::ConfigAction,
    },
    /// Add a path route (`--path --target --method`) or a named route (`--name --strategy --target provider:model`).
    AddRoute(admin::AddRoute),
    /// Set an endpoint's auth and rate limit.
    Secure(admin::Secure),
    /// Print the gateway's metrics summaries (GET /api/v1/metrics).
    Metrics(admin::MetricsArgs),
    /// List or delete routes.
    Routes {
        #[command(subcommand)]
        action: admin::RoutesAction,
    },
    /// List providers, or enable or disable one at run time (every replica).
    Providers {
        #[command(subcommand)]
        action: admin::ProvidersAction,
    },
    /// List, add or remove GPU nodes.
    Nodes {
        #[command(subcommand)]
        action: admin::NodesAction,
    },
    /// Send one small chat request through every named route; exit 1 if any fails.
    Smoke(smoke::SmokeArgs),
    /// Print the admin audit trail (GET /api/v1/audit), newest first.
    Audit(admin::AuditArgs),
    /// Print what was spent (GET /api/v1/spend), grouped by model, key, team, user, tag, provider or day.
    Spend(spend::SpendArgs),
    /// List, set or delete teams (every replica).
    Teams {
        #[command(subcommand)]
        action: spend::TeamsAction,
    },
    /// List, set or delete budgets (every replica).
    Budgets {
        #[command(subcommand)]
        action: spend::BudgetsAction,
    },
    /// Manage virtual keys: through the gateway when a URL is given (--url or AI_GATEWAY_URL),
    /// else straight in the database named by DATABASE_URL.
    Keys {
        /// YAML config file naming the database, when no gateway URL is given.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: KeysAction,
    },
}

/// Runs a management command.
pub async fn run(target: Target, command: Manage) -> ExitCode {
    let env = Env::from_process();
    let remote = Remote::from_env(&env, target.url.as_deref());
    let result = match command {
        Manage::Init { config, force } => init::write(&config, force),
        Manage::Config { action } => config::run(&action),
        Manage::Keys { config, action } => {
            let gateway = if remote.url_given {
                Gateway::new(remote).map(Some)
            } else {
                Ok(None)
            };
            match gateway {
                Ok(gw) => keys::run(config, gw, action).await.map(|()| Outcome::Done),
                Err(e) => Err(e),
            }
        }
        other => match Gateway::new(remote) {
            Ok(gw) => remote_command(&gw, other).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::FAILURE,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "Error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn remote_command(gw: &Gateway, command: Manage) -> Result<Outcome, String> {
    match command {
        Manage::AddRoute(args) => admin::add_route(gw, args).await,
        Manage::Secure(args) => admin::secure(gw, args).await,
        Manage::Metrics(args) => admin::metrics(gw, args).await,
        Manage::Routes { action } => admin::routes(gw, action).await,
        Manage::Providers { action } => admin::providers(gw, action).await,
        Manage::Nodes { action } => admin::nodes(gw, action).await,
        Manage::Smoke(args) => smoke::run(gw, args).await,
        Manage::Audit(args) => admin::audit(gw, args).await,
        Manage::Spend(args) => spend::spend(gw, args).await,
        Manage::Teams { action } => spend::teams(gw, action).await,
        Manage::Budgets { action } => spend::budgets(gw, action).await,
        // Run without a gateway client, in `run`.
        Manage::Init { .. } | Manage::Config { .. } | Manage::Keys { .. } => Ok(Outcome::Done),
    }
}

/// How a command that ran ended.
pub enum Outcome {
    /// Success.
    Done,
    /// It ran, and found failures it already printed (smoke).
    Failed,
}

/// Writes one line to stdout.
fn say(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
