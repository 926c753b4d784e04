//! Style checks that keep the module boundaries true (rust-analyzer's tidy habit): each rule of
//! ARCHITECTURE.md that a text scan can check is a test here, so a change that breaks one fails
//! the suite instead of waiting for a reviewer.

use std::path::{Path, PathBuf};

/// The longest a source file may grow before it must be split by what its parts do.
const MAX_LINES: usize = 800;

/// Crates that only one part of the tree may name, and the paths (under `src/`) allowed to.
const OWNERS: &[(&str, &[&str])] = &[
    ("actix_web", &["http/", "startup.rs"]),
    ("diesel", &["store/", "bin/bench/db.rs"]),
    ("prometheus", &["metrics/"]),
];

/// The places that own background tasks, each a task of its own that lives as long as what it
/// serves: start-up wiring, the history writer and the store's blocking migrations, webhook
/// delivery, the Redis link keeper, the JWK set refresh, the provisioning child's output readers,
/// the trace exporter (started once with the log subscriber) and the benchmark binary. A request never spawns a task of its own.
const SPAWNERS: &[&str] = &[
    "startup.rs",
    "store/writer.rs",
    "store/db.rs",
    "webhooks/mod.rs",
    "limits/link.rs",
    "auth/mod.rs",
    "nodes/provision.rs",
    "telemetry/mod.rs",
    "bin/",
];

fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs: Vec<PathBuf> = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
                files.push((rel, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    files.sort();
    assert!(files.len() > 50, "tidy found only {} files under src/", files.len());
    files
}

/// Code lines only: a crate named in a comment or a string is no dependency.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let code = line.split("//").next().unwrap_or("");
        (!code.trim().is_empty()).then_some((i + 1, code))
    })
}

fn names_crate(code: &str, krate: &str) -> bool {
    code.match_indices(krate).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = &code[at + krate.len()..];
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '"')
            && (after.starts_with("::") || after.starts_with(';') || after.starts_with(" as "))
    })
}

fn allowed(rel: &str, places: &[&str]) -> bool {
    places
        .iter()
        .any(|p| rel == *p || (p.ends_with('/') && rel.starts_with(p)))
}

#[test]
fn only_the_owning_module_names_each_infrastructure_crate() {
    let mut found = Vec::new();
    for (rel, text) in sources() {
        for (krate, places) in OWNERS {
            if allowed(&rel, places) {
                continue;
            }
            for (n, code) in code_lines(&text) {
                if names_crate(code, krate) {
                    found.push(format!("src/{rel}:{n}: `{krate}` belongs to {places:?}"));
                }
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn background_tasks_are_spawned_only_where_they_are_owned() {
    let mut found = Vec::new();
    for (rel, text) in sources() {
        if allowed(&rel, SPAWNERS) {
            continue;
        }
        for (n, code) in code_lines(&text) {
            if code.contains("tokio::spawn") || code.contains("task::spawn") || code.contains("spawn_local(") {
                found.push(format!("src/{rel}:{n}: a task spawned outside {SPAWNERS:?}"));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn no_source_file_is_longer_than_the_cap() {
    let long: Vec<_> = sources()
        .into_iter()
        .filter_map(|(rel, text)| {
            let n = text.lines().count();
            (n > MAX_LINES).then(|| format!("src/{rel}: {n} lines (cap {MAX_LINES})"))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these by what their parts do:\n{}",
        long.join("\n")
    );
}

#[test]
fn every_module_starts_with_its_header() {
    let bare: Vec<_> = sources()
        .into_iter()
        .filter(|(_, text)| !text.trim_start().starts_with("//!"))
        .map(|(rel, _)| format!("src/{rel}"))
        .collect();
    assert!(
        bare.is_empty(),
        "these files need a `//!` header saying what they hold:\n{}",
        bare.join("\n")
    );
}

#[test]
fn the_scanner_sees_a_crate_named_in_code_and_not_in_comments() {
    assert!(names_crate("use actix_web::HttpResponse;", "actix_web"));
    assert!(names_crate("    let r = diesel::insert_into(t);", "diesel"));
    assert!(!names_crate("use diesel_async::RunQueryDsl;", "diesel"));
    assert!(!names_crate("let s = \"prometheus::x\";", "prometheus"));
    assert_eq!(
        code_lines("// use actix_web::App;\nlet x = 1; // actix_web::").count(),
        1
    );
}

/// The top-level modules a module's code names (`crate::x`), outside its test modules.
fn actual_dependencies() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut deps: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
    for (rel, text) in sources() {
        if rel.starts_with("bin/") || rel.starts_with("cli/") || rel == "lib.rs" || rel == "main.rs" {
            continue;
        }
        let module = rel.split('/').next().unwrap().trim_end_matches(".rs").to_owned();
        let code: String = code_lines(&text)
            .map(|(_, line)| line)
            .take_while(|line| !line.trim_start().starts_with("mod tests"))
            .collect::<Vec<_>>()
            .join("\n");
        let entry = deps.entry(module.clone()).or_default();
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                group.split('}').next().unwrap_or("").split(',').collect()
            } else {
                vec![rest]
            };
            for name in names {
                let name: String = name
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module && name != "self" {
                    entry.insert(name);
                }
            }
        }
    }
    deps
}

#[test]
fn architecture_md_lists_each_modules_dependencies_as_the_code_has_them() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md")).unwrap();
    let actual = actual_dependencies();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for section in doc.split("\n### ").skip(1) {
        let title = section.lines().next().unwrap_or("");
        let Some(module) = title
            .strip_prefix("`src/")
            .and_then(|t| t.strip_suffix("/`").or_else(|| t.strip_suffix(".rs`")))
            .filter(|m| !m.contains('/') && !m.contains('`'))
        else {
            continue;
        };
        let Some(line) = section.lines().find(|l| l.starts_with("Depends on ")) else {
            wrong.push(format!("{title}: no `Depends on` line"));
            continue;
        };
        let listed: std::collections::BTreeSet<String> = line
            .split('`')
            .skip(1)
            .step_by(2)
            .map(|name| name.split("::").next().unwrap_or(name).to_owned())
            .collect();
        let code = actual.get(module).cloned().unwrap_or_default();
        if listed != code {
            wrong.push(format!(
                "{title}: ARCHITECTURE.md lists {listed:?}, the code uses {code:?}"
            ));
        }
        checked += 1;
    }
    assert!(
        checked >= 20,
        "only {checked} module sections were found in ARCHITECTURE.md"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
