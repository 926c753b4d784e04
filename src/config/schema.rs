//! The JSON Schema of the configuration file, generated from the same types the loader
//! deserializes into, so it can never describe keys the loader does not read.
//!
//! Draft-07, because that is the draft editors' YAML validation (yaml-language-server) handles
//! fully; generated for deserialization, so aliases, `try_from` shapes and defaults are the ones a
//! file is read with.

use schemars::generate::SchemaSettings;
use serde_json::Value;

use super::settings::Settings;

/// The schema of a configuration file (`ai-gateway config schema`).
pub fn schema() -> Value {
    let mut schema = SchemaSettings::draft07()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<Settings>();
    schema.insert("title".into(), "ai-gateway configuration".into());
    schema.to_value()
}
