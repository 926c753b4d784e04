//! Logging: one JSON object a line (or `pretty` for humans), level from `RUST_LOG`; with traces on,
//! the span-exporting layer beside it.

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{LogFormat, LoggingSettings};

/// The type of "no trace layer".
pub(super) type NoTraces = tracing_subscriber::layer::Identity;

/// Installs the global subscriber. Fails if the filter does not parse or one is installed already.
///
/// Without traces it is the plain formatter behind one global filter, as it always was: the
/// request path pays nothing for traces being possible.
pub(super) fn install<L>(settings: &LoggingSettings, traces: Option<L>) -> Result<(), String>
where
    L: Layer<Registry> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&settings.filter).map_err(|e| format!("logging.filter (env RUST_LOG): {e}"))?;
    let Some(traces) = traces else {
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
        return result.map_err(|e| e.to_string());
    };
    // The exported spans pass whatever `RUST_LOG` says; everything else is filtered for the log.
    let traces = traces.with_filter(tracing_subscriber::filter::filter_fn(|m| {
        m.target() == super::traces::TARGET
    }));
    let logs = filter.add_directive(
        format!("{}=off", super::traces::TARGET)
            .parse()
            .map_err(|e| format!("{e}"))?,
    );
    let registry = tracing_subscriber::registry().with(traces);
    let result = match settings.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_writer(std::io::stderr)
                    .with_filter(logs),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(logs),
            )
            .try_init(),
    };
    result.map_err(|e| e.to_string())
}
