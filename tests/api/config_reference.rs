//! The configuration reference (docs/src/configuration.md) against the code: its examples load,
//! its key tables match the generated schema key for key (defaults included), and it names every
//! environment variable the gateway reads.
//!
//! The schema comes from the config types themselves, so a new section needs only its
//! `JsonSchema` derive and its rows in the reference; these tests find the rest.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ai_gateway::config::{Env, FLAT_ENV, catalogue, load_str, schema};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn reference() -> String {
    std::fs::read_to_string(root().join("docs/src/configuration.md")).expect("read docs/src/configuration.md")
}

/// Every ```yaml block, with the line its text starts on.
fn yaml_blocks(doc: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (i, line) in doc.lines().enumerate() {
        match &mut open {
            None if line.trim_start() == "```yaml" => open = Some((i + 2, String::new())),
            Some(_) if line.trim_start().starts_with("```") => blocks.extend(open.take()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// One row of a key table: `| key | default | env | meaning |`.
struct Row {
    line: usize,
    default: String,
    env: String,
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_owned()).collect()
}

/// The rows of every table whose first header cell is `key`, by key path.
fn documented_keys(doc: &str) -> BTreeMap<String, Row> {
    let mut rows = BTreeMap::new();
    let mut in_key_table = false;
    for (i, line) in doc.lines().enumerate() {
        if !line.trim_start().starts_with('|') {
            in_key_table = false;
            continue;
        }
        let row = cells(line);
        if row[0] == "key" {
            in_key_table = true;
            continue;
        }
        if !in_key_table || row[0].starts_with("---") {
            continue;
        }
        let key = row[0].trim_matches('`').to_owned();
        assert!(
            row.len() == 4 && row[0].starts_with('`'),
            "configuration.md:{}: a key row is | `key` | default | env | meaning |",
            i + 1
        );
        let previous = rows.insert(
            key.clone(),
            Row {
                line: i + 1,
                default: row[1].clone(),
                env: row[2].clone(),
            },
        );
        assert!(
            previous.is_none(),
            "configuration.md:{}: `{key}` is documented twice",
            i + 1
        );
    }
    rows
}

/// Every key path the schema accepts, with its default when the schema states one: `a.b` for a
/// nested key, `a[].b` for a key of each list entry, `a.<name>.b` for a key of each map entry.
fn schema_keys(schema: &Value) -> BTreeMap<String, Option<Value>> {
    fn walk(node: &Value, path: &str, defs: &Value, seen: &mut Vec<String>, out: &mut BTreeMap<String, Option<Value>>) {
        if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            let name = reference.rsplit('/').next().unwrap_or_default().to_owned();
            if seen.contains(&name) {
                return;
            }
            seen.push(name.clone());
            walk(&defs[&name], path, defs, seen, out);
            seen.pop();
            return;
        }
        for combinator in ["allOf", "anyOf", "oneOf"] {
            for branch in node.get(combinator).and_then(Value::as_array).into_iter().flatten() {
                walk(branch, path, defs, seen, out);
            }
        }
        for (key, sub) in node.get("properties").and_then(Value::as_object).into_iter().flatten() {
            let at = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            out.entry(at.clone()).or_insert_with(|| sub.get("default").cloned());
            walk(sub, &at, defs, seen, out);
        }
        if let Some(items) = node.get("items").filter(|i| i.is_object()) {
            walk(items, &format!("{path}[]"), defs, seen, out);
        }
        if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
            walk(values, &format!("{path}.<name>"), defs, seen, out);
        }
    }
    let defs = schema
        .get("definitions")
        .or_else(|| schema.get("$defs"))
        .cloned()
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    walk(schema, "", &defs, &mut Vec::new(), &mut out);
    out
}

/// Keys with nothing below them: the ones the reference must list. (A section or list key may be
/// listed too, and then must exist like any other.)
fn leaves(keys: &BTreeMap<String, Option<Value>>) -> BTreeSet<&str> {
    keys.keys()
        .filter(|k| {
            !keys
                .keys()
                .any(|o| o.len() > k.len() && o.starts_with(k.as_str()) && matches!(o.as_bytes()[k.len()], b'.' | b'['))
        })
        .map(String::as_str)
        .collect()
}

#[test]
fn every_yaml_example_in_the_configuration_reference_loads() {
    let doc = reference();
    let blocks = yaml_blocks(&doc);
    assert!(blocks.len() > 10, "the reference shows each section with an example");
    let failures: Vec<String> = blocks
        .iter()
        .filter_map(|(line, text)| {
            load_str(text, &Env::default())
                .err()
                .map(|e| format!("configuration.md:{line}: {}", e.problems.join("; ")))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "examples the loader refuses:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_configuration_reference_documents_exactly_the_keys_of_the_schema() {
    let keys = schema_keys(&schema());
    let documented = documented_keys(&reference());
    let missing: Vec<&str> = leaves(&keys)
        .into_iter()
        .filter(|k| !documented.contains_key(*k))
        .collect();
    let unknown: Vec<String> = documented
        .iter()
        .filter(|(k, _)| !keys.contains_key(*k))
        .map(|(k, row)| format!("configuration.md:{}: `{k}`", row.line))
        .collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "keys the schema has and docs/src/configuration.md does not (add a row to the section's table):\n  {}\n\
         keys documented that the schema does not have (misspelt, misplaced or removed):\n  {}",
        missing.join("\n  "),
        unknown.join("\n  ")
    );
}

/// A default the schema states (a number, a string, a flag) must be the first thing in the row's
/// default cell, in backticks; defaults the schema cannot state are the reference's to explain.
#[test]
fn documented_defaults_are_the_defaults_of_the_code() {
    let keys = schema_keys(&schema());
    let documented = documented_keys(&reference());
    let mut wrong = Vec::new();
    for (key, row) in &documented {
        let Some(Some(default)) = keys.get(key) else { continue };
        let stated = row
            .default
            .strip_prefix('`')
            .and_then(|r| r.split_once('`'))
            .map(|(s, _)| s);
        let agrees = match (default, stated) {
            (Value::String(s), _) if s.is_empty() => true,
            (Value::String(s), Some(text)) => s == text,
            (Value::Number(n), Some(text)) => text.parse::<f64>().ok() == n.as_f64(),
            (Value::Bool(b), Some(text)) => text == b.to_string(),
            (Value::String(_) | Value::Number(_) | Value::Bool(_), None) => false,
            _ => true,
        };
        if !agrees {
            wrong.push(format!(
                "configuration.md:{}: `{key}` defaults to `{default}`, the reference says {:?}",
                row.line, row.default
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_settings_variable_is_named_on_its_key_row() {
    let documented = documented_keys(&reference());
    let wrong: Vec<String> = FLAT_ENV
        .iter()
        .filter_map(|var| {
            let key = var.path.join(".");
            match documented.get(&key) {
                Some(row) if row.env.contains(&format!("`{}`", var.name)) => None,
                Some(row) => Some(format!(
                    "configuration.md:{}: `{key}` does not name `{}`",
                    row.line, var.name
                )),
                None => Some(format!("`{key}` (set by `{}`) has no row", var.name)),
            }
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Names of environment variables the code reads: the flat table, the catalogue's key and base URL
/// variables, and every variable-like string literal in `src/config/` (the only module that reads
/// the environment) and in clap `env = "..."` attributes, so a variable read anywhere new is found
/// without anyone listing it here.
fn variables_the_code_reads() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = FLAT_ENV.iter().map(|v| v.name.to_owned()).collect();
    for entry in catalogue().expect("the embedded catalogue loads") {
        names.extend(entry.api_key_env);
        names.extend(entry.base_url_env);
    }
    let literal = regex::Regex::new(r#""([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)""#).unwrap();
    let clap_env = regex::Regex::new(r#"\benv\s*=\s*"([A-Z][A-Z0-9_]*)""#).unwrap();
    for file in rust_files(&root().join("src")) {
        let text = std::fs::read_to_string(&file).unwrap();
        // Tests set variables of their own; only the code above them counts.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        if file.starts_with(root().join("src/config")) {
            names.extend(literal.captures_iter(code).map(|c| c[1].to_owned()));
        }
        names.extend(clap_env.captures_iter(code).map(|c| c[1].to_owned()));
    }
    names
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

#[test]
fn every_environment_variable_the_gateway_reads_is_in_the_configuration_reference() {
    let doc = reference();
    let names = variables_the_code_reads();
    for expected in [
        "DATABASE_URL",
        "OPENAI_API_KEY",
        "AI_GATEWAY_CONFIG",
        "AI_GATEWAY_URL",
        "MODEL_NAME",
    ] {
        assert!(names.contains(expected), "the scan of the code lost `{expected}`");
    }
    let missing: Vec<&String> = names.iter().filter(|n| !doc.contains(&format!("`{n}`"))).collect();
    assert!(
        missing.is_empty(),
        "variables the gateway reads that docs/src/configuration.md does not name: {missing:?}"
    );
}

/// Every serde `alias` in the config types is in the schema too (as a key or a value), so an editor
/// never flags a spelling the gateway accepts.
#[test]
fn every_alias_the_loader_accepts_is_in_the_schema() {
    let text = serde_json::to_string(&schema()).unwrap();
    let alias = regex::Regex::new(r#"alias\s*=\s*"([^"]+)""#).unwrap();
    let mut missing = Vec::new();
    for file in rust_files(&root().join("src/config")) {
        let code = std::fs::read_to_string(&file).unwrap();
        for name in alias.captures_iter(&code).map(|c| c[1].to_owned()) {
            if !text.contains(&format!("\"{name}\":")) && !text.contains(&format!("\"const\":\"{name}\"")) {
                missing.push(format!("{}: `{name}`", file.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "aliases missing from config::schema() (see config::schema::alias): {missing:?}"
    );
}
