//! Spend settings: `pricing:` (prices over the catalogue's), `teams:`, `tags:` and `budgets:`.
//!
//! These types also serialize, because the admin API answers with teams, tags and budgets and
//! stores them as overrides.

use serde::{Deserialize, Serialize};

use super::prices::{Price, Tier};
use crate::domain::Priority;

/// `pricing:` — prices that override and extend the catalogue's.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PricingSettings {
    /// A models.dev `api.json`-shaped document fetched at start and every `refresh_hours`.
    pub url: Option<String>,
    /// How often `url` is fetched again.
    pub refresh_hours: f64,
    /// Prices per provider and model (`*` patterns allowed in both), most specific first wins.
    pub models: Vec<PriceEntry>,
    /// What a request to a model with no price does when a budget applies to it.
    pub unpriced: Unpriced,
}

impl Default for PricingSettings {
    fn default() -> Self {
        Self {
            url: None,
            refresh_hours: 24.0,
            models: Vec::new(),
            unpriced: Unpriced::Refuse,
        }
    }
}

/// `pricing.unpriced`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unpriced {
    /// Refused with `budget_exceeded` ("model has no price"): a budget cannot hold an unknown cost.
    #[default]
    Refuse,
    /// Let through; its cost is `null` and it counts toward no budget.
    Allow,
}

/// One `pricing.models` entry: a provider and model (either may be a `*` pattern) and its price.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceEntry {
    /// A provider id, or a pattern (`*`, `local-*`).
    pub provider: String,
    /// A model name as sent upstream, or a pattern (`*`, `gpt-4o*`).
    pub model: String,
    /// As `Price::input`.
    pub input: f64,
    /// As `Price::output`.
    pub output: f64,
    /// As `Price::cached_input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<f64>,
    /// As `Price::cache_write`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
    /// As `Price::reasoning`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<f64>,
    /// As `Price::tiers`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<Tier>,
    /// As `Price::max_output_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
}

impl PriceEntry {
    /// The price this entry sets.
    pub fn price(&self) -> Price {
        Price {
            input: self.input,
            output: self.output,
            cached_input: self.cached_input,
            cache_write: self.cache_write,
            reasoning: self.reasoning,
            tiers: self.tiers.clone(),
            max_output_tokens: self.max_output_tokens,
        }
    }
}

/// One `teams:` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    /// Unique; what a key's `team` and a team budget's `name` refer to.
    pub name: String,
    /// Requests per minute for the whole team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    /// Tokens per minute for the whole team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Models the team's keys may use (`*` patterns); unset = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// The team's keys' priority when the key sets none.
    #[serde(default)]
    pub priority: Priority,
}

/// What a budget is kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BudgetScope {
    /// A virtual key, by name.
    Key,
    /// A team, by name.
    Team,
    /// A user: a JWT `sub` or a virtual key's `user`.
    User,
    /// A declared tag.
    Tag,
    /// A coding agent's session.
    Session,
    /// An upstream provider: when spent, the walk skips it.
    Provider,
    /// The whole gateway.
    Gateway,
}

impl BudgetScope {
    /// Its name in the configuration, errors and keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Team => "team",
            Self::User => "user",
            Self::Tag => "tag",
            Self::Session => "session",
            Self::Provider => "provider",
            Self::Gateway => "gateway",
        }
    }

    /// The stored name read back.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Key,
            Self::Team,
            Self::User,
            Self::Tag,
            Self::Session,
            Self::Provider,
            Self::Gateway,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// How a budget's counter restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    /// Every calendar day.
    Daily,
    /// Every calendar week, from Monday.
    Weekly,
    /// Every calendar month.
    Monthly,
    /// Never.
    Total,
}

impl BudgetPeriod {
    /// Its name in the configuration and the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
            Self::Total => "total",
        }
    }

    /// The stored name read back.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Daily, Self::Weekly, Self::Monthly, Self::Total]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// One `budgets:` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// What it is kept for.
    pub scope: BudgetScope,
    /// The key, team, user, tag, session or provider; unset = each one of the scope has its own
    /// budget of this size (not allowed for `gateway`, which has no name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// USD per period.
    pub limit_usd: f64,
    /// When the counter restarts.
    pub period: BudgetPeriod,
    /// IANA time zone the period's calendar follows; UTC when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Fractions of the limit at which a `budget.threshold` webhook event is sent, once per period.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alert_at: Vec<f64>,
}

impl BudgetConfig {
    /// The budget's identity in the admin API and the overrides table: `scope`, `scope:name`,
    /// plus the period (one name may have a daily and a monthly budget).
    pub fn id(&self) -> String {
        match &self.name {
            Some(n) => format!("{}:{n}:{}", self.scope.as_str(), self.period.as_str()),
            None => format!("{}:{}", self.scope.as_str(), self.period.as_str()),
        }
    }

    /// Every problem with this budget, each prefixed with `at`.
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut out = Vec::new();
        if !(self.limit_usd.is_finite() && self.limit_usd >= 0.0) {
            out.push(format!("{at}: `limit_usd` must be a non-negative number"));
        }
        match (self.scope, &self.name) {
            (BudgetScope::Gateway, Some(_)) => out.push(format!("{at}: a `gateway` budget has no `name`")),
            (_, Some(n)) if !valid_name(n) => out.push(format!(
                "{at}: `name` must be 1-256 characters without control characters or surrounding spaces"
            )),
            _ => {}
        }
        if let Some(tz) = &self.timezone
            && jiff::tz::TimeZone::get(tz).is_err()
        {
            out.push(format!("{at}: `timezone` {tz:?} is not an IANA time zone"));
        }
        for a in &self.alert_at {
            if !(a.is_finite() && *a > 0.0 && *a <= 1.0) {
                out.push(format!("{at}: `alert_at` values must be fractions in (0, 1], not {a}"));
            }
        }
        out
    }
}

/// Every problem with the spend settings: prices, teams, tags and budgets.
pub fn problems(
    pricing: &PricingSettings,
    teams: &[TeamConfig],
    tags: &[String],
    budgets: &[BudgetConfig],
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(url) = &pricing.url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        out.push(format!("pricing.url: {url:?} is not an http(s) URL"));
    }
    if !(pricing.refresh_hours.is_finite() && pricing.refresh_hours > 0.0) {
        out.push("pricing.refresh_hours: must be greater than 0".into());
    }
    for (i, e) in pricing.models.iter().enumerate() {
        let at = format!("pricing.models[{i}]");
        if e.provider.is_empty() || e.model.is_empty() {
            out.push(format!("{at}: `provider` and `model` must not be empty"));
        }
        out.extend(e.price().problems(&at));
    }
    for (i, t) in teams.iter().enumerate() {
        if !valid_name(&t.name) {
            out.push(format!(
                "teams[{i}]: `name` must be 1-256 characters without control characters or surrounding spaces"
            ));
        }
        if teams[..i].iter().any(|o| o.name == t.name) {
            out.push(format!("teams[{i}]: team `{}` is declared twice", t.name));
        }
    }
    for (i, t) in tags.iter().enumerate() {
        if !valid_tag(t) {
            out.push(format!(
                "tags[{i}]: {t:?} is not a tag (1-64 characters, no comma or space)"
            ));
        }
    }
    for (i, b) in budgets.iter().enumerate() {
        let at = format!("budgets[{i}]");
        out.extend(b.problems(&at));
        if budgets[..i].iter().any(|o| o.id() == b.id()) {
            out.push(format!("{at}: budget `{}` is declared twice", b.id()));
        }
        if b.scope == BudgetScope::Team
            && let Some(n) = &b.name
            && !teams.iter().any(|t| &t.name == n)
        {
            out.push(format!("{at}: team `{n}` is not declared in `teams:`"));
        }
        if b.scope == BudgetScope::Tag
            && let Some(n) = &b.name
            && !tags.iter().any(|t| t == n)
        {
            out.push(format!("{at}: tag `{n}` is not declared in `tags:`"));
        }
    }
    out
}

/// A team's or a budget subject's name: no control characters (they would reach logs, headers and
/// the dashboard), no surrounding spaces, and short enough for a history row (at most 256).
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().count() <= 256 && name.trim() == name && !name.chars().any(char::is_control)
}

/// A tag a client may send in `x-ai-gateway-tags`: 1-64 visible ASCII characters, no comma.
pub fn valid_tag(tag: &str) -> bool {
    (1..=64).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_graphic() && b != b',')
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let Some((head, rest)) = pattern.split_once('*') else {
        return pattern == name;
    };
    let Some(mut tail) = name.strip_prefix(head) else {
        return false;
    };
    let mut parts = rest.split('*').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            return tail.len() >= part.len() && tail.ends_with(part);
        }
        match tail.find(part) {
            Some(at) => tail = &tail[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_stars_anywhere() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("gpt-4o*", "gpt-4o-mini"));
        assert!(!glob_match("gpt-4o*", "gpt-4.1"));
        assert!(glob_match("*-mini", "gpt-4o-mini"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(!glob_match("ab*ba", "aba"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }

    #[test]
    fn budgets_are_checked() {
        let b = |scope, name: Option<&str>| BudgetConfig {
            scope,
            name: name.map(str::to_owned),
            limit_usd: 5.0,
            period: BudgetPeriod::Daily,
            timezone: None,
            alert_at: vec![],
        };
        let teams = [TeamConfig {
            name: "research".into(),
            rpm: None,
            tpm: None,
            models: None,
            priority: Priority::Normal,
        }];
        let ok = [b(BudgetScope::Team, Some("research")), b(BudgetScope::Session, None)];
        assert!(problems(&PricingSettings::default(), &teams, &[], &ok).is_empty());
        let mut bad = b(BudgetScope::Gateway, Some("x"));
        bad.timezone = Some("Mars/Olympus".into());
        bad.alert_at = vec![1.5];
        bad.limit_usd = -1.0;
        let found = problems(
            &PricingSettings::default(),
            &teams,
            &[],
            &[bad, b(BudgetScope::Team, Some("nope")), b(BudgetScope::Tag, Some("ci"))],
        );
        assert_eq!(found.len(), 6, "{found:?}");
        let odd = |name: &str| TeamConfig {
            name: name.into(),
            rpm: None,
            tpm: None,
            models: None,
            priority: Priority::Normal,
        };
        let bad_names = [odd("a\u{1e}b"), odd(" padded"), odd("")];
        assert_eq!(problems(&PricingSettings::default(), &bad_names, &[], &[]).len(), 3);
        assert_eq!(b(BudgetScope::Team, Some("r")).id(), "team:r:daily");
        assert_eq!(b(BudgetScope::Session, None).id(), "session:daily");
    }
}
