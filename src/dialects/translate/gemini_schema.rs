//! Tool parameter schemas for Gemini: its `Schema` is an OpenAPI 3.0 subset, and Gemini refuses
//! every keyword outside it by name.

use serde_json::{Map, Value, json};

type Object = Map<String, Value>;

/// The keywords of Gemini's `Schema` (an OpenAPI 3.0 subset) that carry over as they are.
const GEMINI_SCHEMA_KEYWORDS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "propertyOrdering",
    "default",
    "minimum",
    "maximum",
];

/// Gemini's `parameters` as Gemini reads it: Gemini refuses any keyword outside its `Schema`
/// ("Unknown name"), and agents' tools use JSON Schema freely (`exclusiveMinimum`,
/// `additionalProperties`, `const`, `type: [.., "null"]`), so only its own keywords are kept, the
/// near equivalents translated and the rest dropped. Property names are names, not keywords.
pub(super) fn schema(v: &Value) -> Value {
    let Value::Object(map) = v else { return v.clone() };
    let mut out = Object::new();
    for (k, val) in map {
        match (k.as_str(), val) {
            ("properties", Value::Object(props)) => {
                let props = props.iter().map(|(name, s)| (name.clone(), schema(s))).collect();
                out.insert(k.clone(), Value::Object(props));
            }
            ("items", items @ Value::Object(_)) => {
                out.insert(k.clone(), schema(items));
            }
            ("anyOf" | "oneOf", Value::Array(options)) => {
                out.insert("anyOf".into(), options.iter().map(schema).collect());
            }
            ("type", Value::Array(types)) => {
                let nullable = types.iter().any(|t| t == "null");
                if let Some(t) = types.iter().find(|t| *t != "null") {
                    out.insert("type".into(), t.clone());
                }
                if nullable {
                    out.insert("nullable".into(), Value::Bool(true));
                }
            }
            ("const", c) if !map.contains_key("enum") => {
                out.insert("enum".into(), json!([c]));
            }
            (key, _) if GEMINI_SCHEMA_KEYWORDS.contains(&key) => {
                out.insert(k.clone(), val.clone());
            }
            _ => {}
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Claude Code's tools use JSON Schema keywords Gemini refuses by name.
    #[test]
    fn tool_schemas_keep_only_geminis_keywords_and_property_names_whatever_they_are() {
        let out = schema(&json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                "additionalProperties": false, "required": ["file_path"],
                "properties": {
                    "file_path": {"type": "string", "description": "path"},
                    "limit": {"type": "integer", "exclusiveMinimum": 0, "maximum": 2000},
                    "strict": {"type": ["boolean", "null"]},
                    "mode": {"const": "fast"},
                    "pick": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string", "minLength": 1, "format": "uri"}}]}
                }
        }));
        assert_eq!(
            out,
            json!({"type": "object", "required": ["file_path"], "properties": {
                "file_path": {"type": "string", "description": "path"},
                "limit": {"type": "integer", "maximum": 2000},
                "strict": {"type": "boolean", "nullable": true},
                "mode": {"enum": ["fast"]},
                "pick": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string", "minLength": 1, "format": "uri"}}]}
            }})
        );
    }
}
