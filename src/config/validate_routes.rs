//! Checks of issue 10's items (named routes, path routes, security rules, user grants), run on the
//! file and on every admin API change alike, so the API refuses exactly what the file would.
//! (`callback` URLs are checked with the webhook settings in `validate.rs`.)

use std::collections::HashSet;

use super::catalogue::CatalogueEntry;
use super::settings::{ProviderEntry, Settings};
use crate::domain::ProviderId;

/// HTTP methods a path route may serve.
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

pub(super) fn routes(s: &Settings, catalogue: &[CatalogueEntry], entries: &[ProviderEntry]) -> Vec<String> {
    let mut problems = Vec::new();
    let known = |id: &str| {
        let id = ProviderId::new(id);
        entries.iter().any(|e| ProviderId::new(&e.id) == id) || catalogue.iter().any(|c| ProviderId::new(&c.id) == id)
    };
    let mut names = HashSet::new();
    for r in &s.routes {
        let at = format!("routes (`{}`)", r.name);
        if !valid_name(&r.name) {
            problems.push(format!(
                "{at}: name must be letters, digits, `.`, `_` or `-` (clients write `<strategy>:<name>`)"
            ));
        }
        if !names.insert(r.name.as_str()) {
            problems.push(format!("{at}: declared twice"));
        }
        if r.targets.is_empty() {
            problems.push(format!("{at}: targets must list at least one provider:model"));
        }
        for t in &r.targets {
            if !known(&t.provider) {
                problems.push(format!(
                    "{at}: target `{}:{}` names an unknown provider",
                    t.provider, t.model
                ));
            }
            if t.weight == 0 {
                problems.push(format!("{at}: target `{}:{}` has weight 0", t.provider, t.model));
            }
        }
    }
    let mut paths = HashSet::new();
    for p in &s.path_routes {
        let at = format!("path_routes (`{}`)", p.path);
        if !valid_path(&p.path) {
            problems.push(format!(
                "{at}: Invalid route path: must start with `/` and hold no spaces, `?` or `#`"
            ));
        }
        if !paths.insert(p.path.as_str()) {
            problems.push(format!("{at}: declared twice"));
        }
        let targets = p.targets.to_vec();
        if targets.is_empty() {
            problems.push(format!("{at}: targets must list at least one URL"));
        }
        for t in targets.iter().filter(|t| !is_http_url(t)) {
            problems.push(format!("{at}: target `{t}` must start with http:// or https://"));
        }
        for m in p.methods.to_vec() {
            if !METHODS.contains(&m.to_ascii_uppercase().as_str()) {
                problems.push(format!("{at}: unknown method `{m}` (one of {})", METHODS.join(", ")));
            }
        }
        if let Some(t) = p.timeout_seconds
            && !(t.is_finite() && t > 0.0)
        {
            problems.push(format!("{at}: timeout_seconds must be more than 0"));
        }
        if p.rate_limit.is_some_and(|r| r.requests == 0) {
            problems.push(format!("{at}: rate_limit must be at least 1"));
        }
    }
    let mut endpoints = HashSet::new();
    for rule in &s.security {
        let at = format!("security (`{}`)", rule.endpoint);
        if !valid_path(&rule.endpoint) {
            problems.push(format!("{at}: endpoint must be a path starting with `/`"));
        }
        if !endpoints.insert(rule.endpoint.as_str()) {
            problems.push(format!("{at}: declared twice"));
        }
        if rule.rate_limit.is_some_and(|r| r.requests == 0) {
            problems.push(format!("{at}: rateLimit must be at least 1"));
        }
    }
    let mut users = HashSet::new();
    for u in &s.users {
        if u.name.trim().is_empty() {
            problems.push("users: a user needs a name".into());
        } else if !users.insert(u.name.as_str()) {
            problems.push(format!("users (`{}`): declared twice", u.name));
        }
    }
    problems
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn valid_path(path: &str) -> bool {
    path.starts_with('/') && !path.chars().any(|c| c.is_whitespace() || matches!(c, '?' | '#'))
}

fn is_http_url(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://")) && url.len() > "https://".len()
}

#[cfg(test)]
mod tests {
    use crate::config::{Env, load_str};

    #[test]
    fn every_route_problem_is_reported() {
        let yaml = "providers: [{id: a, kind: openai, base_url: http://a}]\nroutes:\n  - {name: 'bad name', targets: []}\n  - {name: r, targets: [ghost:m]}\npath_routes:\n  - {path: predict, target: ftp://x, method: FETCH}\nsecurity:\n  - {endpoint: /p, rateLimit: 0}\n";
        let err = load_str(yaml, &Env::default()).unwrap_err();
        assert_eq!(err.problems.len(), 7, "{err}");
        assert!(err.problems.iter().any(|p| p.contains("Invalid route path")), "{err}");
    }
}
