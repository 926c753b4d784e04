//! Which limits apply to a caller on a route, checked in order: the caller's request rate (its own
//! for a virtual key with `rpm`, else the global one when `rate_limit.enabled`), its team's request
//! and token rates, the route's limit, then its tokens per minute.

use crate::auth::Caller;
use crate::error::{ApiError, LimitKind};
use crate::limits::{Decision, Quota};
use crate::state::AppState;

/// `Ok(Some(d))`: admitted, `d` goes into `x-ratelimit-*`; `Ok(None)`: no limit applies.
/// `route` is the matched pattern, `path` the request's path (for `security:` and path-route
/// limits, which may change at run time).
pub async fn admit(state: &AppState, caller: &Caller, route: &str, path: &str) -> Result<Option<Decision>, ApiError> {
    let live = state.live();
    let rl = &live.config.settings.rate_limit;
    let limiter = &state.limiter;
    let mut shown = None;
    let key_quota = match caller.rpm {
        Some(rpm) => Some(Quota {
            per_minute: rpm,
            burst: rl.burst.clamp(1, rpm.max(1)),
        }),
        None if rl.enabled => Some(Quota {
            per_minute: rl.rpm,
            burst: rl.burst,
        }),
        None => None,
    };
    if let Some(quota) = key_quota {
        let d = limiter.check("key", &caller.id, quota).await;
        refuse_unless(state, d, "key", LimitKind::Requests)?;
        shown = Some(d);
    }
    let team = caller
        .team
        .as_deref()
        .and_then(|t| live.config.settings.teams.iter().find(|x| x.name == t));
    if let Some((team, rpm)) = team.and_then(|t| t.rpm.map(|r| (t, r))) {
        // A team's rate is shared by all its keys: its whole minute may come at once.
        let quota = Quota {
            per_minute: rpm,
            burst: rpm.max(1),
        };
        let d = limiter.check("team", &team.name, quota).await;
        refuse_unless(state, d, "team", LimitKind::Requests)?;
        shown = Some(shown.map_or(d, |s: Decision| if d.remaining < s.remaining { d } else { s }));
    }
    if let Some((team, tpm)) = team.and_then(|t| t.tpm.map(|n| (t, n)))
        && let Some(wait) = limiter.tokens_exhausted(&team_tokens_key(&team.name), tpm).await
    {
        refuse_unless(state, exhausted(tpm, wait), "team_tokens", LimitKind::Tokens)?;
    }
    if rl.enabled
        && let Some(&per_minute) = rl.routes.get(route)
    {
        let d = limiter
            .check(
                &format!("route:{route}"),
                &caller.id,
                Quota {
                    per_minute,
                    burst: per_minute,
                },
            )
            .await;
        refuse_unless(state, d, "route", LimitKind::Requests)?;
        shown = shown.or(Some(d));
    }
    if let Some((endpoint, rate)) = live.paths.policy(path).rate {
        // Burst = the whole allowance, so "100/min" admits 100 at once and the 101st waits.
        let quota = Quota {
            per_minute: rate.per_minute(),
            burst: rate.requests.max(1),
        };
        let d = limiter.check(&format!("endpoint:{endpoint}"), &caller.id, quota).await;
        refuse_unless(state, d, "endpoint", LimitKind::Requests)?;
        shown = Some(shown.map_or(d, |s: Decision| if d.remaining < s.remaining { d } else { s }));
    }
    if let Some(tpm) = tokens_per_minute(state, caller)
        && let Some(wait) = limiter.tokens_exhausted(&caller.id, tpm).await
    {
        refuse_unless(state, exhausted(tpm, wait), "tokens", LimitKind::Tokens)?;
    }
    Ok(shown)
}

fn exhausted(tpm: u64, wait: std::time::Duration) -> Decision {
    Decision {
        allowed: false,
        limit: u32::try_from(tpm).unwrap_or(u32::MAX),
        remaining: 0,
        retry_after: wait,
        reset_after: wait,
    }
}

/// Where a team's tokens per minute are counted (beside the callers' own counts).
pub fn team_tokens_key(team: &str) -> String {
    format!("team:{team}")
}

/// The caller's team's tokens-per-minute budget, with the key it is counted under.
pub fn team_tokens_per_minute(state: &AppState, caller: &Caller) -> Option<(String, u64)> {
    let live = state.live();
    let team = caller.team.as_deref()?;
    let tpm = live.config.settings.teams.iter().find(|t| t.name == team)?.tpm?;
    Some((team_tokens_key(team), tpm))
}

/// The caller's tokens-per-minute budget, if any.
pub fn tokens_per_minute(state: &AppState, caller: &Caller) -> Option<u64> {
    let live = state.live();
    let rl = &live.config.settings.rate_limit;
    caller
        .tpm
        .or((rl.enabled && rl.tpm > 0).then_some(rl.tpm))
        .filter(|t| *t > 0)
}

fn refuse_unless(state: &AppState, decision: Decision, reason: &str, kind: LimitKind) -> Result<(), ApiError> {
    if decision.allowed {
        return Ok(());
    }
    state.metrics.observe_rate_limited(reason);
    Err(ApiError::RateLimited { decision, kind })
}
