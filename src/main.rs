//! The `ai-gateway` binary: load settings, start logging, serve (or check the configuration, or
//! manage a running gateway through `cli`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use ai_gateway::config::{Sources, load};
use ai_gateway::providers::Registry;
use ai_gateway::startup::Application;
use clap::{Parser, Subcommand};

mod cli;

// The request path allocates and frees many small objects per request on several threads; glibc's
// malloc spent 16% of the gateway's CPU there (docs/src/benchmark.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "ai-gateway", version, about = "An OpenAI-compatible LLM gateway")]
struct Cli {
    #[command(flatten)]
    target: cli::Target,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Serve {
        /// YAML config file (env AI_GATEWAY_CONFIG).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate the configuration, print every problem, exit non-zero if any.
    CheckConfig {
        /// YAML config file (env AI_GATEWAY_CONFIG).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Manage a gateway: routes, security, providers, nodes, keys, teams, budgets, spend (seed 002's verbs).
    #[command(flatten)]
    Manage(cli::Manage),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve { config: None }) {
        Command::Serve { config } => serve(config).await,
        Command::CheckConfig { config } => check_config(config),
        Command::Manage(command) => cli::run(cli.target, command).await,
    }
}

async fn serve(file: Option<PathBuf>) -> ExitCode {
    let config = match load(&Sources::from_process(file)) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    if let Err(e) = ai_gateway::telemetry::start(&config.settings.logging, &config.settings.telemetry.otlp) {
        return fail(&e);
    }
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => return fail(&e.to_string()),
    };
    let stopped = app.run_until_stopped().await;
    // The last spans (a slow collector gets two seconds, then they are dropped with the process).
    ai_gateway::telemetry::flush(std::time::Duration::from_secs(2)).await;
    match stopped {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("server error: {e}")),
    }
}

fn check_config(file: Option<PathBuf>) -> ExitCode {
    let mut problems = Vec::new();
    let mut out = std::io::stdout().lock();
    match load(&Sources::from_process(file)) {
        Err(e) => problems = e.problems,
        Ok(config) => {
            let (registry, skipped) = Registry::build(&config.providers);
            problems.extend(skipped.iter().map(ToString::to_string));
            if let Err(e) = ai_gateway::auth::Authenticator::new(&config.settings.auth) {
                problems.push(e);
            }
            if let Err(e) = ai_gateway::limits::Limiter::new(&config.settings) {
                problems.push(e);
            }
            for w in &config.warnings {
                let _ = writeln!(out, "warning: {w}");
            }
            if problems.is_empty() {
                let ids: Vec<&str> = registry.providers().iter().map(|p| p.config.id.as_str()).collect();
                let _ = writeln!(
                    out,
                    "configuration OK: listen {}, {} provider(s) enabled: {}",
                    config.settings.listen,
                    ids.len(),
                    if ids.is_empty() {
                        "none".to_owned()
                    } else {
                        ids.join(", ")
                    }
                );
                return ExitCode::SUCCESS;
            }
        }
    }
    let _ = writeln!(out, "invalid configuration ({} problem(s)):", problems.len());
    for p in &problems {
        let _ = writeln!(out, "  - {p}");
    }
    ExitCode::FAILURE
}

fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "ai-gateway: {message}");
    ExitCode::FAILURE
}
