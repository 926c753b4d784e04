//! Requested model → plan, the one resolution every chat-like front and embeddings use: a named
//! route (`<strategy>:<route>` or the bare name, through `routing::routes`) or a plain model
//! (`routing::plan`), checked against the caller's `models` allow-list and, under
//! `/api/u/{user}/`, the user's grants; then each model the body lists to fall back on, resolved
//! and checked the same way and appended to the plan (`with_fallbacks`).

use std::collections::HashSet;

use crate::auth::{Caller, CallerKind};
use crate::config::{RouteConfig, Strategy, UserGrant};
use crate::dialects::BodyError;
use crate::domain::{AttemptOutcome, AttemptSummary, ProviderId};
use crate::error::ApiError;
use crate::orchestrator::breaker::BreakerState;
use crate::routing::routes::{self, Needs, RouteInputs};
use crate::routing::{self, RoutePlan};
use crate::state::{AppState, Live};

/// What a request may reach.
#[derive(Debug, Clone)]
pub(super) enum Scope {
    /// Everything configured (`/v1/...`, or no `users:` grants at all).
    All,
    /// `/api/u/{user}/...` once grants exist: the user's routes, and plain models only through
    /// the user's providers.
    Only(UserGrant),
}

impl Scope {
    /// The scope of `user` under `/api/u/{user}/`: the caller must be that user (a virtual key's
    /// name or a JWT `sub`; anyone when auth is off). With no `users:` at all every user sees
    /// everything; otherwise a user without an entry sees nothing.
    pub fn of_user(live: &Live, caller: Option<&Caller>, user: &str) -> Result<Self, ApiError> {
        let matches = caller.is_some_and(|c| c.kind == CallerKind::Anonymous || c.user.as_deref() == Some(user));
        if !matches {
            return Err(ApiError::WrongUser { user: user.to_owned() });
        }
        let users = &live.config.settings.users;
        if users.is_empty() {
            return Ok(Self::All);
        }
        let grant = users.iter().find(|g| g.name == user).cloned().unwrap_or(UserGrant {
            name: user.to_owned(),
            routes: Vec::new(),
            providers: Vec::new(),
        });
        Ok(Self::Only(grant))
    }

    /// Whether a named route is visible.
    pub fn sees_route(&self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(g) => g.routes.iter().any(|r| r == name),
        }
    }

    /// Whether a provider's models are visible.
    pub fn sees_provider(&self, id: &ProviderId) -> bool {
        match self {
            Self::All => true,
            Self::Only(g) => g.providers.iter().any(|p| ProviderId::new(p) == *id),
        }
    }

    fn refuse(&self, model: &str) -> ApiError {
        let user = match self {
            Self::All => String::new(),
            Self::Only(g) => g.name.clone(),
        };
        ApiError::NotGranted {
            model: model.to_owned(),
            user,
        }
    }
}

/// A plan, and the named route behind it.
#[derive(Debug)]
pub(super) struct Resolved {
    /// Candidates in order.
    pub plan: RoutePlan,
    /// The route's name when the model named one (for metrics and latency figures).
    pub route: Option<String>,
}

/// Plans `model` for a request with `needs`.
///
/// A route name wins over a provider model of the same name. A virtual key whose `models` list
/// the route may use it with any strategy prefix.
pub(super) fn resolve(
    state: &AppState,
    live: &Live,
    caller: Option<&Caller>,
    model: &str,
    needs: Needs,
    scope: &Scope,
) -> Result<Resolved, ApiError> {
    let settings = &live.config.settings;
    let nodes = super::queue::node_snapshot(state);
    if let Some((route, strategy)) = routes::find(&settings.routes, model) {
        allowed(caller, model, Some(&route.name))?;
        if !scope.sees_route(&route.name) {
            return Err(scope.refuse(model));
        }
        let open: HashSet<ProviderId> = live
            .registry
            .providers()
            .iter()
            .map(|p| &p.config.id)
            .filter(|id| live.breakers.state(id) == BreakerState::Open)
            .cloned()
            .collect();
        let inputs = RouteInputs {
            needs,
            stats: &state.route_stats,
            open: &open,
            roll: &fastrand::f64,
        };
        let plan = routes::plan_route(
            &live.registry,
            &nodes,
            &settings.routes,
            route,
            strategy,
            model,
            &inputs,
        )
        .map_err(|e| unservable(route, strategy, needs).unwrap_or_else(|| e.into()))?;
        return Ok(Resolved {
            plan,
            route: Some(route.name.clone()),
        });
    }
    allowed(caller, model, None)?;
    let mut plan = routing::plan(&live.registry, &nodes, model).map_err(ApiError::from)?;
    if let Scope::Only(_) = scope {
        let owners: Vec<ProviderId> = plan
            .candidates
            .iter()
            .map(|c| plan.owner_of(&c.provider.config.id))
            .collect();
        let mut keep = owners.iter().map(|o| scope.sees_provider(o));
        plan.candidates.retain(|_| keep.next().unwrap_or(false));
        if plan.candidates.is_empty() {
            return Err(scope.refuse(model));
        }
    }
    Ok(Resolved { plan, route: None })
}

impl Resolved {
    /// Appends the plans of the models the request lists to fall back on (`models` or
    /// `fallbacks`), in order. Each is resolved like `model`, so a model the caller may not use
    /// refuses the whole request before any upstream is called; one that is unknown does too
    /// (a typo would otherwise go unnoticed), while one only offline node pools serve is left out.
    pub fn with_fallbacks(
        &mut self,
        state: &AppState,
        live: &Live,
        caller: Option<&Caller>,
        models: &[String],
        needs: Needs,
        scope: &Scope,
    ) -> Result<(), ApiError> {
        for model in models {
            match resolve(state, live, caller, model, needs, scope) {
                Ok(next) => self.plan.then(next.plan),
                Err(ApiError::Unavailable { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Folds the attempts' latencies into the route's figures (`least_latency`, `autoselect`).
    /// Failures other than timeouts are left out: a target that fails fast must not look fast.
    pub fn observe(&self, state: &AppState, attempts: &[AttemptSummary]) {
        if self.route.is_none() {
            return;
        }
        for a in attempts {
            if matches!(a.outcome, AttemptOutcome::Success | AttemptOutcome::Timeout) {
                let owner = self.plan.owner_of(&a.provider);
                state.route_stats.observe(&owner, &a.upstream_model, a.latency);
            }
        }
    }
}

/// `autoselect` left nothing because no target can take this request: say what it asked for.
fn unservable(route: &RouteConfig, strategy: Strategy, needs: Needs) -> Option<ApiError> {
    if strategy != Strategy::Autoselect || route.targets.iter().any(|t| routes::serves(t, needs)) {
        return None;
    }
    let mut asked = Vec::new();
    if needs.tools {
        asked.push("tools".to_owned());
    }
    asked.push(format!("about {} prompt tokens", needs.prompt_tokens));
    Some(ApiError::InvalidRequest(BodyError {
        message: format!(
            "no target of route `{}` can serve this request ({}); check its targets' supports_tools and context_window",
            route.name,
            asked.join(", ")
        ),
        param: Some("model".into()),
        code: "invalid_value",
    }))
}

/// A virtual key limited to some models may use only those; a route listed there may be asked
/// for with any strategy prefix.
fn allowed(caller: Option<&Caller>, model: &str, route: Option<&str>) -> Result<(), ApiError> {
    match caller {
        Some(c) if !c.may_use(model) && !route.is_some_and(|r| c.may_use(r)) => Err(ApiError::ModelNotAllowed {
            model: model.to_owned(),
        }),
        _ => Ok(()),
    }
}
