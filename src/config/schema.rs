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

/// Makes `alias` a key of an object schema that means `key` (serde's `alias`, which schemars does
/// not describe): the same schema, and either name satisfies `required`.
pub(super) fn alias(schema: &mut schemars::Schema, alias: &str, key: &str) {
    let object = schema.ensure_object();
    let Some(Value::Object(properties)) = object.get_mut("properties") else {
        return;
    };
    let Some(mut same) = properties.get(key).cloned() else {
        return;
    };
    if let Value::Object(fields) = &mut same {
        fields.insert("description".into(), format!("Another name for `{key}`.").into());
    }
    properties.insert(alias.to_owned(), same);
    let Some(Value::Array(required)) = object.get_mut("required") else {
        return;
    };
    let before = required.len();
    required.retain(|r| r != key);
    if required.len() == before {
        return;
    }
    let either = serde_json::json!({"anyOf": [{"required": [key]}, {"required": [alias]}]});
    if let Value::Array(all) = object.entry("allOf").or_insert_with(|| Value::Array(Vec::new())) {
        all.push(either);
    }
}

/// Adds `aliases` as accepted values meaning `value` to an enum schema of string constants.
pub(super) fn value_aliases(schema: &mut schemars::Schema, value: &str, aliases: &[&str]) {
    let Some(Value::Array(choices)) = schema.ensure_object().get_mut("oneOf") else {
        return;
    };
    for alias in aliases {
        choices.push(serde_json::json!({
            "const": alias,
            "type": "string",
            "description": format!("Another name for `{value}`."),
        }));
    }
}
