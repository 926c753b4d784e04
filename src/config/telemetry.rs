//! `telemetry:`: OpenTelemetry trace export over OTLP, off unless an endpoint is set (in the file
//! or `OTEL_EXPORTER_OTLP_ENDPOINT`).
//!
//! Header values are usually credentials: they are `SecretString`s and never formatted.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// `telemetry:`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// Trace export; no `endpoint`, no traces.
    pub otlp: OtlpSettings,
}

/// `telemetry.otlp:`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpSettings {
    /// The collector's base URL (`OTEL_EXPORTER_OTLP_ENDPOINT`), e.g. `http://otel-collector:4318`;
    /// spans go to `{endpoint}/v1/traces`. Unset: traces are off.
    pub endpoint: Option<String>,
    /// `http/protobuf` (`OTEL_EXPORTER_OTLP_PROTOCOL`), the only one this build speaks.
    pub protocol: String,
    /// Sent with every export (`OTEL_EXPORTER_OTLP_HEADERS`, `k=v,k2=v2`), e.g. a collector's token.
    #[schemars(with = "HeadersShape")]
    pub headers: OtlpHeaders,
    /// `service.name` (`OTEL_SERVICE_NAME`).
    pub service_name: String,
    /// Share of new traces kept, 0 to 1 (`OTEL_TRACES_SAMPLER_ARG`); a client's `traceparent`
    /// decides for the traces it continues (parent-based sampling).
    pub sample_ratio: f64,
    /// One export's time limit.
    pub timeout_seconds: f64,
    /// Ended spans waiting for export; when full, new ones are dropped and counted.
    pub queue_size: usize,
    /// Spans per export request.
    pub batch_size: usize,
    /// Longest a span waits for its batch to fill.
    pub flush_interval_ms: u64,
}

impl Default for OtlpSettings {
    fn default() -> Self {
        Self {
            endpoint: None,
            protocol: HTTP_PROTOBUF.to_owned(),
            headers: OtlpHeaders::default(),
            service_name: "ai-gateway".to_owned(),
            sample_ratio: 1.0,
            timeout_seconds: 10.0,
            queue_size: 2048,
            batch_size: 512,
            flush_interval_ms: 1000,
        }
    }
}

/// The one protocol this build exports with.
pub const HTTP_PROTOBUF: &str = "http/protobuf";

impl OtlpSettings {
    /// Where spans are posted, when traces are on.
    pub fn traces_url(&self) -> Option<String> {
        let base = self.endpoint.as_deref()?.trim_end_matches('/');
        Some(format!("{base}/v1/traces"))
    }

    /// One export's time limit, as validated.
    pub fn timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.timeout_seconds).unwrap_or(Duration::from_secs(10))
    }

    /// Every problem with the block, keys named as in the file.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(endpoint) = &self.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            problems.push(format!(
                "telemetry.otlp.endpoint (env OTEL_EXPORTER_OTLP_ENDPOINT): expected an http:// or https:// URL, got `{endpoint}`"
            ));
        }
        match self.protocol.as_str() {
            HTTP_PROTOBUF => {}
            "grpc" | "http/json" => problems.push(format!(
                "telemetry.otlp.protocol (env OTEL_EXPORTER_OTLP_PROTOCOL): `{}` is not supported; this gateway exports \
                 {HTTP_PROTOBUF} (point it at the collector's OTLP/HTTP port, usually 4318)",
                self.protocol
            )),
            other => problems.push(format!(
                "telemetry.otlp.protocol (env OTEL_EXPORTER_OTLP_PROTOCOL): expected {HTTP_PROTOBUF}, got `{other}`"
            )),
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            problems.push(format!(
                "telemetry.otlp.sample_ratio (env OTEL_TRACES_SAMPLER_ARG): expected a number from 0 to 1, got {}",
                self.sample_ratio
            ));
        }
        if !(self.timeout_seconds.is_finite() && self.timeout_seconds > 0.0) {
            problems.push("telemetry.otlp.timeout_seconds: expected a positive number".to_owned());
        }
        if self.queue_size == 0 || self.batch_size == 0 || self.flush_interval_ms == 0 {
            problems.push(
                "telemetry.otlp.queue_size, batch_size and flush_interval_ms: expected whole numbers above 0"
                    .to_owned(),
            );
        }
        if self.service_name.trim().is_empty() {
            problems.push("telemetry.otlp.service_name (env OTEL_SERVICE_NAME): must not be empty".to_owned());
        }
        problems.extend(self.headers.problems.iter().cloned());
        problems
    }
}

/// Export headers: a map in the file, or `OTEL_EXPORTER_OTLP_HEADERS`' `k=v,k2=v2` (values
/// percent-decoded). Values are secrets.
#[derive(Debug, Clone, Default)]
pub struct OtlpHeaders {
    /// Name → value.
    pub values: BTreeMap<String, SecretString>,
    /// Entries that could not be read (named without their values).
    problems: Vec<String>,
}

/// What `headers` may be written as: also the schema's description of it.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
enum HeadersShape {
    /// Header name → value.
    Map(BTreeMap<String, String>),
    /// `name=value,name2=value2`, as `OTEL_EXPORTER_OTLP_HEADERS` writes them.
    Text(String),
}

impl<'de> Deserialize<'de> for OtlpHeaders {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match HeadersShape::deserialize(d)? {
            HeadersShape::Map(map) => Self {
                values: map.into_iter().map(|(k, v)| (k, SecretString::from(v))).collect(),
                problems: Vec::new(),
            },
            HeadersShape::Text(text) => Self::parse(&text),
        })
    }
}

impl OtlpHeaders {
    /// `k=v,k2=v2`, as the OpenTelemetry environment specification writes headers.
    pub fn parse(text: &str) -> Self {
        let mut headers = Self::default();
        for (i, entry) in text.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
            match entry.split_once('=') {
                Some((name, value)) if !name.trim().is_empty() => {
                    let value = percent_decode(value.trim());
                    headers.values.insert(name.trim().to_owned(), SecretString::from(value));
                }
                _ => headers.problems.push(format!(
                    "telemetry.otlp.headers (env OTEL_EXPORTER_OTLP_HEADERS): entry {} is not `name=value`",
                    i + 1
                )),
            }
        }
        headers
    }
}

/// `%XX` escapes decoded; anything else kept as written.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn env_headers_are_split_and_percent_decoded() {
        let h = OtlpHeaders::parse("authorization=Bearer%20abc, x-team = ops ,,");
        assert_eq!(h.values["authorization"].expose_secret(), "Bearer abc");
        assert_eq!(h.values["x-team"].expose_secret(), "ops");
        assert!(h.problems.is_empty());
        let bad = OtlpHeaders::parse("token-without-value");
        assert_eq!(bad.problems.len(), 1);
        assert!(
            !bad.problems[0].contains("token-without-value"),
            "a value never reaches a message"
        );
    }

    #[test]
    fn grpc_is_refused_with_a_clear_message() {
        let s = OtlpSettings {
            endpoint: Some("http://collector:4317".into()),
            protocol: "grpc".into(),
            ..OtlpSettings::default()
        };
        let problems = s.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("`grpc` is not supported") && problems[0].contains("OTEL_EXPORTER_OTLP_PROTOCOL"));
    }

    #[test]
    fn the_traces_url_is_the_base_endpoint_plus_the_signal_path() {
        let s = OtlpSettings {
            endpoint: Some("http://collector:4318/".into()),
            ..OtlpSettings::default()
        };
        assert_eq!(s.traces_url().as_deref(), Some("http://collector:4318/v1/traces"));
        assert!(OtlpSettings::default().traces_url().is_none(), "off by default");
        assert!(OtlpSettings::default().problems().is_empty());
    }

    #[test]
    fn debug_output_hides_header_values() {
        let h = OtlpHeaders::parse("authorization=secret-token");
        assert!(!format!("{h:?}").contains("secret-token"));
    }
}

#[cfg(test)]
mod load_tests {
    use crate::config::{Env, load_str};
    use secrecy::ExposeSecret;

    const YAML: &str = "telemetry:\n  otlp:\n    endpoint: http://file:4318\n    headers: {authorization: Bearer x}\n    sample_ratio: 0.5\n";

    #[test]
    fn the_standard_variables_override_the_file() {
        let env = Env::from_pairs([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318"),
            ("OTEL_SERVICE_NAME", "gw-eu"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-token=t%3D1"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
        ]);
        let otlp = load_str(YAML, &env).unwrap().settings.telemetry.otlp;
        assert_eq!(otlp.endpoint.as_deref(), Some("http://env:4318"));
        assert_eq!(otlp.service_name, "gw-eu");
        assert_eq!(otlp.values_of_headers(), vec![("x-token".to_owned(), "t=1".to_owned())]);
        assert!((otlp.sample_ratio - 0.1).abs() < 1e-9);
        let file = load_str(YAML, &Env::default()).unwrap().settings.telemetry.otlp;
        assert_eq!(file.headers.values["authorization"].expose_secret(), "Bearer x");
    }

    #[test]
    fn asking_for_grpc_fails_the_load() {
        let env = Env::from_pairs([("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
        let err = load_str(YAML, &env).unwrap_err();
        assert!(
            err.problems.iter().any(|p| p.contains("`grpc` is not supported")),
            "{err:?}"
        );
    }

    impl crate::config::OtlpSettings {
        fn values_of_headers(&self) -> Vec<(String, String)> {
            self.headers
                .values
                .iter()
                .map(|(k, v)| (k.clone(), v.expose_secret().to_owned()))
                .collect()
        }
    }
}
