//! `ai-gateway init`: a commented starter config that loads as written.

use std::io::Write;
use std::path::Path;

use super::{Outcome, say};

/// The starter config: every section commented, enough set to serve with one key variable.
pub const STARTER: &str = r#"# ai-gateway configuration. Every key is optional; `ai-gateway check-config --config FILE`
# prints every problem at once. `${VAR}` expands from the environment; most keys also have an
# environment variable (docs/src/configuration.md). For completion and checks in your editor, run
# `ai-gateway config schema > ai-gateway.schema.json` and make the first line of this file
# `# yaml-language-server: $schema=./ai-gateway.schema.json`.

listen: 0.0.0.0:8080
# History, virtual keys and the admin API's changes live here. Use PostgreSQL when several
# replicas run: they share it and apply each other's admin changes within reload.poll_seconds.
database_url: sqlite://ai-gateway.db

auth:
  # Client keys (Authorization: Bearer ...). Several at once for rotation.
  api_keys: ["${AI_GATEWAY_API_KEY:-change-me}"]
  # The admin API and the CLI's token (X-Admin-Token or Authorization: Bearer).
  admin_token: ${INTERNAL_API_TOKEN:-change-me-too}

# Providers: the built-in catalogue is enabled by its key variable (OPENAI_API_KEY,
# MISTRAL_API_KEY, ANTHROPIC_API_KEY, ...); declare others here.
providers: []
#  - id: local-vllm
#    kind: openai
#    base_url: http://10.0.0.5:8000/v1
#    models: ["llama-3.1-8b"]
#    priority: 1

# Named routes: clients send model "rotation:support" (or just "support").
routes: []
#  - name: support
#    strategy: rotation        # priority, rotation, weighted, least_latency, least_busy, autoselect
#    targets: [openai:gpt-4o-mini, mistral:mistral-small]

# Non-LLM services behind a path (ai-gateway add-route --path /predict --target URL).
path_routes: []
#  - path: /predict
#    target: http://ai-service:8080
#    methods: [POST]

# Per-endpoint auth and rate limit (ai-gateway secure --endpoint /predict --auth jwt --rate-limit 100/min).
security: []

routing:
  max_retries: 1
  timeout_seconds: 30
  circuit_breaker: {failure_threshold: 3, reset_timeout_seconds: 60}

# Hot reload: SIGHUP, or a change of this file, re-reads it; an invalid file is refused and the
# running configuration kept.
reload:
  watch_file: true
  poll_seconds: 2
"#;

/// Writes the starter config to `path`, refusing to replace a file unless `force`.
pub fn write(path: &Path, force: bool) -> Result<Outcome, String> {
    if path.exists() && !force {
        return Err(format!("{} already exists; pass --force to replace it", path.display()));
    }
    let mut file = std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(STARTER.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    say(&format!(
        "wrote {}; check it with `ai-gateway check-config --config {0}`, start with `ai-gateway serve --config {0}`",
        path.display()
    ));
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ai_gateway::config::{Env, load_str};

    #[test]
    fn the_starter_config_loads() {
        let config = load_str(STARTER, &Env::default()).unwrap();
        assert_eq!(config.settings.listen, "0.0.0.0:8080");
        assert!(config.settings.auth.admin_token.is_some());
    }
}
