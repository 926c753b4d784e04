//! Which budgets a request counts toward, and what the largest cost it may reach is.

use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::config::{BudgetConfig, BudgetPeriod, BudgetScope, Price, Settings};

use super::period::{Window, window};

/// Nano-USD per USD: counters are integers, so replicas add them exactly.
pub const NANOS: f64 = 1e9;

/// USD as whole nano-USD, rounded up so a reservation never falls short.
pub fn to_nanos(usd: f64) -> i64 {
    let n = (usd * NANOS).ceil();
    if n.is_finite() { n as i64 } else { i64::MAX }
}

/// Who a request is spent by, as far as budgets go.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'a> {
    /// The virtual key's name.
    pub key: Option<&'a str>,
    /// The key's team.
    pub team: Option<&'a str>,
    /// The user (a JWT `sub`, a key's `user`).
    pub user: Option<&'a str>,
    /// The client's tags (declared or not; only declared ones count).
    pub tags: &'a [String],
    /// The coding agent's session.
    pub session: Option<&'a str>,
}

/// A counter's identity: scope, period, the period's start and the subject. Hashed as it is (no
/// string is built on the request path); shown as `scope:period:start:name` in Redis keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CounterKey {
    pub scope: BudgetScope,
    pub period: BudgetPeriod,
    /// The period's start, epoch ms (0 for `total`).
    pub start_ms: i64,
    /// The subject's name within the scope (empty for `gateway`).
    pub name: String,
}

impl From<&CounterKey> for CounterKey {
    fn from(key: &CounterKey) -> Self {
        key.clone()
    }
}

impl std::fmt::Display for CounterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.scope.as_str(),
            self.period.as_str(),
            self.start_ms,
            self.name
        )
    }
}

/// One budget applied to one subject in its current period.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The budget as configured.
    pub budget: Arc<BudgetConfig>,
    /// Its counter for this subject and period.
    pub key: CounterKey,
    /// The current period.
    pub window: Window,
    /// The limit, in nano-USD.
    pub limit: i64,
}

impl Applied {
    fn new(budget: &Arc<BudgetConfig>, name: &str, now_ms: i64) -> Self {
        Self::within(budget, name, window(budget.period, budget.timezone.as_deref(), now_ms))
    }

    fn within(budget: &Arc<BudgetConfig>, name: &str, window: Window) -> Self {
        Self {
            key: CounterKey {
                scope: budget.scope,
                period: budget.period,
                start_ms: window.start_ms,
                name: name.to_owned(),
            },
            window,
            budget: budget.clone(),
            limit: to_nanos(budget.limit_usd),
        }
    }

    /// The subject's name within the scope (empty for `gateway`).
    pub fn name(&self) -> &str {
        &self.key.name
    }

    /// How the budget names itself in a refusal: `team research`, `session`, `gateway`.
    pub fn label(&self) -> String {
        match self.budget.scope {
            BudgetScope::Gateway => "gateway".to_owned(),
            scope => format!("{} {}", scope.as_str(), self.key.name),
        }
    }
}

/// The budgets of one configuration, by scope.
#[derive(Debug, Clone, Default)]
pub struct BudgetBook {
    budgets: Vec<Arc<BudgetConfig>>,
    tags: Vec<String>,
    /// Each budget's current period, kept until it ends: the calendar is not worked out per
    /// request.
    windows: Arc<[ArcSwapOption<Window>]>,
}

impl BudgetBook {
    /// The budgets and declared tags of `settings`.
    pub fn new(settings: &Settings) -> Self {
        Self {
            budgets: settings.budgets.iter().cloned().map(Arc::new).collect(),
            tags: settings.tags.clone(),
            windows: settings.budgets.iter().map(|_| ArcSwapOption::empty()).collect(),
        }
    }

    /// `budget` applied to `name` now.
    pub fn one(budget: &BudgetConfig, name: &str, now_ms: i64) -> Applied {
        Applied::new(&Arc::new(budget.clone()), name, now_ms)
    }

    /// Whether any budget is declared at all (nothing is reserved otherwise).
    pub fn is_empty(&self) -> bool {
        self.budgets.is_empty()
    }

    /// Every budget except providers' that applies to `who` now.
    pub fn applying(&self, who: &Subject<'_>, now_ms: i64) -> Vec<Applied> {
        let mut out = Vec::with_capacity(self.budgets.len());
        for (i, b) in self.budgets.iter().enumerate() {
            let one = |out: &mut Vec<Applied>, subject: Option<&str>| {
                if let Some(s) = subject
                    && b.name.as_deref().is_none_or(|n| n == s)
                {
                    out.push(Applied::within(b, s, self.window(i, now_ms)));
                }
            };
            match b.scope {
                BudgetScope::Key => one(&mut out, who.key),
                BudgetScope::Team => one(&mut out, who.team),
                BudgetScope::User => one(&mut out, who.user),
                BudgetScope::Session => one(&mut out, who.session),
                BudgetScope::Tag => {
                    for t in who.tags.iter().filter(|t| self.tags.contains(t)) {
                        one(&mut out, Some(t));
                    }
                }
                BudgetScope::Gateway => out.push(Applied::within(b, "", self.window(i, now_ms))),
                BudgetScope::Provider => {}
            }
        }
        out
    }

    /// Budget `i`'s period holding `now_ms`, from the cache while it lasts.
    fn window(&self, i: usize, now_ms: i64) -> Window {
        let Some(slot) = self.windows.get(i) else {
            return Window {
                start_ms: 0,
                end_ms: None,
            };
        };
        if let Some(w) = slot.load().as_deref()
            && w.start_ms <= now_ms
            && w.end_ms.is_none_or(|end| now_ms < end)
        {
            return *w;
        }
        let b = &self.budgets[i];
        let w = window(b.period, b.timezone.as_deref(), now_ms);
        slot.store(Some(Arc::new(w)));
        w
    }

    /// The budgets of `provider` now.
    pub fn provider(&self, provider: &str, now_ms: i64) -> Vec<Applied> {
        self.budgets
            .iter()
            .filter(|b| b.scope == BudgetScope::Provider && b.name.as_deref().is_none_or(|n| n == provider))
            .map(|b| Applied::new(b, provider, now_ms))
            .collect()
    }

    /// Whether any provider budget is declared (the walk consults none otherwise).
    pub fn has_provider_budgets(&self) -> bool {
        self.budgets.iter().any(|b| b.scope == BudgetScope::Provider)
    }
}

/// Output tokens assumed when neither the request nor the model's price says how many may come.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u64 = 32_768;

/// The most a request can cost at `price`: every byte of the body a prompt token (a token is at
/// least one byte of text), `max_tokens` (else the model's `max_output_tokens`) at the output
/// rate, each at its dearest tier, cache writes and reasoning included. No tokenizing.
pub fn max_cost(price: &Price, body_bytes: usize, max_tokens: Option<u64>) -> f64 {
    let input = price
        .tiers
        .iter()
        .map(|t| t.input.max(t.cache_write.unwrap_or(0.0)))
        .fold(price.input.max(price.cache_write.unwrap_or(0.0)), f64::max);
    let output = price
        .tiers
        .iter()
        .map(|t| t.output.max(t.reasoning.unwrap_or(0.0)))
        .fold(price.output.max(price.reasoning.unwrap_or(0.0)), f64::max);
    let out_tokens = max_tokens
        .or(price.max_output_tokens)
        .unwrap_or(DEFAULT_MAX_OUTPUT_TOKENS);
    (body_bytes as f64 * input + out_tokens as f64 * output) / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Tier;

    fn settings(yaml: &str) -> Settings {
        crate::config::load_str(yaml, &crate::config::Env::default())
            .unwrap()
            .settings
    }

    #[test]
    fn budgets_apply_by_scope_and_name() {
        let s = settings(
            r#"
teams: [{name: research}]
tags: [batch]
budgets:
  - {scope: team, name: research, limit_usd: 200, period: monthly}
  - {scope: key, name: ci-bot, limit_usd: 5, period: daily}
  - {scope: tag, name: batch, limit_usd: 20, period: weekly}
  - {scope: session, limit_usd: 10, period: total}
  - {scope: provider, name: openai, limit_usd: 50, period: daily}
  - {scope: gateway, limit_usd: 1000, period: monthly}
"#,
        );
        let book = BudgetBook::new(&s);
        let tags = vec!["batch".to_owned(), "undeclared".to_owned()];
        let who = Subject {
            key: Some("ci-bot"),
            team: Some("research"),
            user: Some("ci-bot"),
            tags: &tags,
            session: Some("s-1"),
        };
        let got: Vec<String> = book.applying(&who, 0).iter().map(Applied::label).collect();
        assert_eq!(
            got,
            ["team research", "key ci-bot", "tag batch", "session s-1", "gateway"]
        );
        let other = Subject {
            key: Some("other"),
            ..Subject::default()
        };
        let got: Vec<String> = book.applying(&other, 0).iter().map(Applied::label).collect();
        assert_eq!(got, ["gateway"]);
        assert_eq!(book.provider("openai", 0).len(), 1);
        assert!(book.provider("anthropic", 0).is_empty());
        let a = &book.applying(&who, 0)[1];
        assert_eq!(a.budget.period, BudgetPeriod::Daily);
        assert_eq!(a.limit, 5_000_000_000);
        assert_eq!(a.key.to_string(), "key:daily:0:ci-bot");
    }

    #[test]
    fn the_largest_cost_takes_the_dearest_rates() {
        let p = Price {
            input: 1.0,
            output: 10.0,
            cached_input: Some(0.1),
            cache_write: Some(1.25),
            reasoning: None,
            tiers: vec![Tier {
                above_input_tokens: 200_000,
                input: 2.0,
                output: 15.0,
                cached_input: None,
                cache_write: None,
                reasoning: None,
            }],
            max_output_tokens: Some(1000),
        };
        // 1,000 bytes at 2.0 and 100 tokens at 15.0 per million.
        assert!((max_cost(&p, 1_000, Some(100)) - 0.0035).abs() < 1e-12);
        // Without max_tokens, the model's cap.
        assert!((max_cost(&p, 0, None) - 0.015).abs() < 1e-12);
        assert_eq!(to_nanos(0.01), 10_000_000);
    }
}
