//! Logging: one JSON object a line (or `pretty` for humans), level from `RUST_LOG`.
//!
//! Prompt text is logged only through `pipeline`'s one `LOG_PROMPTS` gate; keys are `SecretString`
//! and never formatted.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LoggingSettings};

/// Installs the global subscriber. Fails if the filter does not parse or one is installed already.
pub fn init(settings: &LoggingSettings) -> Result<(), String> {
    let filter = EnvFilter::try_new(&settings.filter).map_err(|e| format!("logging.filter (env RUST_LOG): {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    result.map_err(|e| e.to_string())
}
