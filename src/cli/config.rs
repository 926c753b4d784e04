//! `ai-gateway config schema`: the configuration file's JSON Schema, for editors and CI to validate
//! a file against before the gateway reads it.

use clap::Subcommand;

use super::{Outcome, say};

/// What `config` does.
#[derive(Subcommand)]
pub enum ConfigAction {
    /// Print the JSON Schema (draft-07) of the configuration file.
    Schema,
}

/// Runs a `config` command; none needs a gateway.
pub fn run(action: &ConfigAction) -> Result<Outcome, String> {
    match action {
        ConfigAction::Schema => {
            let text = serde_json::to_string_pretty(&ai_gateway::config::schema()).map_err(|e| e.to_string())?;
            say(&text);
            Ok(Outcome::Done)
        }
    }
}
