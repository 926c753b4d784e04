//! Changes made through the admin API, applied over the file's settings.
//!
//! The admin API stores one row per item (`kind`, `name`) in the database every replica reads
//! (`history::HistoryStore::list_overrides`); each replica turns the rows into `Overrides` and
//! builds its live configuration as `base.with_overrides(&overrides)`, so the file stays the
//! source of everything the API never touched and an API change survives a file reload.
//! A row without an item is a tombstone: the item is removed even when the file declares it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::load::{Config, ConfigError};
use super::routes::{PathRouteConfig, RouteConfig, SecurityRule, UserGrant};
use super::settings::{ProviderEntry, Settings};
use super::spend::{BudgetConfig, TeamConfig};
use crate::domain::ProviderId;

/// What an override row replaces, and by which key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideKind {
    /// A named route (`routes:`), by `name`.
    Route,
    /// A path route (`path_routes:`), by `path`.
    PathRoute,
    /// An endpoint rule (`security:`), by `endpoint`.
    Security,
    /// A user grant (`users:`), by `name`.
    User,
    /// A provider's run-time `enabled` toggle, by provider id.
    Provider,
    /// A team (`teams:`), by `name`.
    Team,
    /// A budget (`budgets:`), by its id (`scope:name:period` or `scope:period`).
    Budget,
    /// A declared tag (`tags:`), by the tag itself.
    Tag,
}

impl OverrideKind {
    /// Every kind.
    pub const ALL: [OverrideKind; 8] = [
        Self::Route,
        Self::PathRoute,
        Self::Security,
        Self::User,
        Self::Provider,
        Self::Team,
        Self::Budget,
        Self::Tag,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Route => "route",
            Self::PathRoute => "path_route",
            Self::Security => "security",
            Self::User => "user",
            Self::Provider => "provider",
            Self::Team => "team",
            Self::Budget => "budget",
            Self::Tag => "tag",
        }
    }
}

impl fmt::Display for OverrideKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OverrideKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown override kind `{s}`"))
    }
}

/// One stored change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// What it replaces.
    pub kind: OverrideKind,
    /// The item's key: route name, path, endpoint, user name, provider id, team name, budget id
    /// or tag.
    pub name: String,
    /// The item as JSON; `None` = deleted.
    pub item: Option<String>,
    /// When it was written, epoch ms.
    pub updated_at: i64,
}

/// `{"enabled": bool}`: a provider override's item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderToggle {
    /// Whether the provider takes traffic.
    pub enabled: bool,
}

/// Every stored change, keyed by kind and name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    rows: BTreeMap<(OverrideKind, String), Override>,
}

impl Overrides {
    /// From the stored rows (a later row for the same key wins).
    pub fn from_rows(rows: impl IntoIterator<Item = Override>) -> Self {
        let mut out = Self::default();
        for row in rows {
            out.set(row);
        }
        out
    }

    /// Adds or replaces one change.
    pub fn set(&mut self, row: Override) {
        self.rows.insert((row.kind, row.name.clone()), row);
    }

    /// The change stored for this item, if any (a tombstone included).
    pub fn get(&self, kind: OverrideKind, name: &str) -> Option<&Override> {
        self.rows.get(&(kind, name.to_owned()))
    }

    /// Every change, by kind then name.
    pub fn iter(&self) -> impl Iterator<Item = &Override> {
        self.rows.values()
    }

    /// Whether nothing was changed through the API.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Applies every change to `settings`; an item that does not parse is a problem.
    pub fn apply(&self, settings: &mut Settings) -> Vec<String> {
        let mut problems = Vec::new();
        for row in self.rows.values() {
            match row.kind {
                OverrideKind::Route => {
                    replace(
                        &mut settings.routes,
                        row,
                        |r: &RouteConfig| r.name.clone(),
                        &mut problems,
                    );
                }
                OverrideKind::PathRoute => {
                    replace(
                        &mut settings.path_routes,
                        row,
                        |r: &PathRouteConfig| r.path.clone(),
                        &mut problems,
                    );
                }
                OverrideKind::Security => {
                    replace(
                        &mut settings.security,
                        row,
                        |r: &SecurityRule| r.endpoint.clone(),
                        &mut problems,
                    );
                }
                OverrideKind::User => {
                    replace(&mut settings.users, row, |u: &UserGrant| u.name.clone(), &mut problems);
                }
                OverrideKind::Provider => toggle(&mut settings.providers, row, &mut problems),
                OverrideKind::Team => {
                    replace(&mut settings.teams, row, |t: &TeamConfig| t.name.clone(), &mut problems);
                }
                OverrideKind::Budget => replace(&mut settings.budgets, row, BudgetConfig::id, &mut problems),
                OverrideKind::Tag => replace(&mut settings.tags, row, String::clone, &mut problems),
            }
        }
        problems
    }
}

/// Replaces (or removes, or appends) the item keyed `row.name` in `items`. The key is owned
/// because a budget's is computed (`BudgetConfig::id`).
fn replace<T: DeserializeOwned>(
    items: &mut Vec<T>,
    row: &Override,
    key: impl Fn(&T) -> String,
    problems: &mut Vec<String>,
) {
    let new = match row.item.as_deref().map(serde_json::from_str::<T>).transpose() {
        Ok(item) => item,
        Err(e) => {
            problems.push(format!("stored {} `{}`: {e}", row.kind, row.name));
            return;
        }
    };
    if let Some(item) = &new
        && key(item) != row.name
    {
        problems.push(format!("stored {} `{}` names another item", row.kind, row.name));
        return;
    }
    match (items.iter().position(|i| key(i) == row.name), new) {
        (Some(at), Some(item)) => items[at] = item,
        (Some(at), None) => {
            items.remove(at);
        }
        (None, Some(item)) => items.push(item),
        (None, None) => {}
    }
}

/// Sets a provider's `enabled` through its `providers:` entry, adding a bare entry for a
/// catalogue provider the file does not name.
fn toggle(entries: &mut Vec<ProviderEntry>, row: &Override, problems: &mut Vec<String>) {
    let Some(item) = row.item.as_deref() else {
        // A deleted toggle: the file decides again.
        return;
    };
    let toggle: ProviderToggle = match serde_json::from_str(item) {
        Ok(t) => t,
        Err(e) => {
            problems.push(format!("stored provider `{}`: {e}", row.name));
            return;
        }
    };
    let id = ProviderId::new(&row.name);
    match entries.iter_mut().find(|e| ProviderId::new(&e.id) == id) {
        Some(entry) => entry.enabled = Some(toggle.enabled),
        None => entries.push(ProviderEntry {
            id: row.name.clone(),
            enabled: Some(toggle.enabled),
            ..ProviderEntry::default()
        }),
    }
}

impl Config {
    /// This configuration (as loaded from its file) with the admin API's changes applied,
    /// resolved and validated exactly as the file alone is.
    pub fn with_overrides(&self, overrides: &Overrides) -> Result<Config, ConfigError> {
        if overrides.is_empty() {
            return Ok(self.clone());
        }
        let mut settings = self.settings.clone();
        let problems = overrides.apply(&mut settings);
        super::load::finish(settings, self.sources.clone(), self.warnings.clone(), problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Env, load_str};

    fn row(kind: OverrideKind, name: &str, item: Option<&str>) -> Override {
        Override {
            kind,
            name: name.into(),
            item: item.map(str::to_owned),
            updated_at: 1,
        }
    }

    const FILE: &str = "providers:\n  - {id: a, kind: openai, base_url: http://a, models: [m]}\n  - {id: b, kind: openai, base_url: http://b, models: [m]}\nroutes:\n  - {name: keep, targets: [a:m]}\n  - {name: gone, targets: [a:m]}\npath_routes:\n  - {path: /predict, target: http://svc:8080}\n";

    #[test]
    fn rows_replace_add_and_remove_items_over_the_file() {
        let base = load_str(FILE, &Env::default()).unwrap();
        let overrides = Overrides::from_rows([
            row(OverrideKind::Route, "gone", None),
            row(
                OverrideKind::Route,
                "new",
                Some(r#"{"name":"new","strategy":"rotation","targets":["a:m","b:m"]}"#),
            ),
            row(
                OverrideKind::PathRoute,
                "/predict",
                Some(r#"{"path":"/predict","targets":["http://other:1"]}"#),
            ),
            row(OverrideKind::Provider, "b", Some(r#"{"enabled":false}"#)),
            row(
                OverrideKind::Security,
                "/predict",
                Some(r#"{"endpoint":"/predict","auth":"api-key","rate_limit":"100/min"}"#),
            ),
        ]);
        let config = base.with_overrides(&overrides).unwrap();
        let names: Vec<&str> = config.settings.routes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["keep", "new"]);
        assert_eq!(
            config.settings.path_routes[0].targets.to_vec(),
            ["http://other:1".to_owned()]
        );
        let ids: Vec<&str> = config.providers.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["a"], "b is disabled at run time");
        assert_eq!(config.settings.security.len(), 1);
        assert_eq!(config.sources.file, base.sources.file);
    }

    #[test]
    fn an_invalid_change_is_reported_like_a_file_problem() {
        let base = load_str(FILE, &Env::default()).unwrap();
        let overrides = Overrides::from_rows([
            row(
                OverrideKind::Route,
                "bad",
                Some(r#"{"name":"bad","targets":["nobody:m"]}"#),
            ),
            row(OverrideKind::User, "u", Some("{not json")),
        ]);
        let err = base.with_overrides(&overrides).unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        assert!(err.problems.iter().any(|p| p.contains("nobody")), "{err}");
    }

    #[test]
    fn teams_budgets_and_tags_are_replaced_by_name_and_id_and_revalidated() {
        let file = format!(
            "{FILE}teams:\n  - {{name: research}}\ntags: [ci]\nbudgets:\n  - {{scope: team, name: research, limit_usd: 5, period: daily}}\n  - {{scope: gateway, limit_usd: 100, period: monthly}}\n"
        );
        let base = load_str(&file, &Env::default()).unwrap();
        let overrides = Overrides::from_rows([
            row(
                OverrideKind::Team,
                "ops",
                Some(r#"{"name":"ops","rpm":10,"priority":"high"}"#),
            ),
            row(OverrideKind::Tag, "nightly", Some(r#""nightly""#)),
            row(OverrideKind::Budget, "gateway:monthly", None),
            row(
                OverrideKind::Budget,
                "team:ops:weekly",
                Some(r#"{"scope":"team","name":"ops","limit_usd":2.5,"period":"weekly"}"#),
            ),
        ]);
        let config = base.with_overrides(&overrides).unwrap();
        let s = &config.settings;
        let teams: Vec<&str> = s.teams.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(teams, ["research", "ops"]);
        assert_eq!(s.tags, ["ci", "nightly"]);
        let budgets: Vec<String> = s.budgets.iter().map(BudgetConfig::id).collect();
        assert_eq!(budgets, ["team:research:daily", "team:ops:weekly"]);

        // Removing a team a budget names leaves the configuration invalid, as the file would be.
        let mut broken = overrides.clone();
        broken.set(row(OverrideKind::Team, "research", None));
        let err = base.with_overrides(&broken).unwrap_err();
        assert!(err.problems.iter().any(|p| p.contains("team `research`")), "{err}");
        // A budget stored under another budget's id is refused.
        let misfiled = Overrides::from_rows([row(
            OverrideKind::Budget,
            "gateway:daily",
            Some(r#"{"scope":"gateway","limit_usd":1,"period":"weekly"}"#),
        )]);
        let err = base.with_overrides(&misfiled).unwrap_err();
        assert!(err.problems[0].contains("names another item"), "{err}");
    }
}
