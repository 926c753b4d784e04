//! The one place that decides what an upstream failure means: retry the same provider, move to
//! the next one, or give up and hand the client its own mistake back, and which breaker (if any)
//! counts it. Retries and breakers both consume this table, so they can never disagree.
//!
//! A breaker counts only what says something about the upstream. What never reached it (an
//! operation its protocol cannot do) is not counted at all, and neither is a non-streamed attempt
//! whose `timeout_seconds` ran out while the upstream worked on it: a long generation is the
//! request's doing, and one client must not open a breaker for everyone with slow prompts. A
//! timeout is never retried on the same provider: a silent provider stays silent, so the next
//! candidate is tried at once.
//!
//! Blame goes where the failure lives: the provider's breaker for its connections and account
//! (refused, TLS, DNS, connect timeout, 401/403), the model's breaker for what one model does (429,
//! 5xx, a first-token timeout, a malformed answer), so a 429 storm on one model leaves the
//! provider's other models served. A provider without declared models (`"*"`) has no model
//! breakers; model blame then falls on its provider breaker.
//!
//! An oversized answer is not retried: the same provider would send the same answer again, and
//! reading it costs the time and bandwidth of `max_response_bytes` each time. Another provider (or
//! model) may answer within the limit, so the next one is tried; the provider itself is healthy.
//!
//! | failure                                    | outcome            | verdict       | breaker   |
//! |--------------------------------------------|--------------------|---------------|-----------|
//! | connect error, broken connection           | connect_error      | retry         | provider  |
//! | connect timeout                            | timeout            | next provider | provider  |
//! | first-token timeout (streams)              | timeout            | next provider | model     |
//! | `timeout_seconds` ran out (not streamed)   | timeout            | next provider | uncounted |
//! | 5xx, 408                                   | server_error       | retry         | model     |
//! | 429                                        | rate_limited       | retry         | model     |
//! | 2xx with a malformed body / in-band error  | malformed          | retry         | model     |
//! | 401, 402, 403 (the provider's account)     | unauthorized       | next provider | provider  |
//! | 404 (model absent there)                   | not_found          | next provider | healthy   |
//! | operation unsupported by the protocol      | unsupported        | next provider | uncounted |
//! | 2xx body over `limits.max_response_bytes`  | response_too_large | next provider | healthy   |
//! | 400, 422 saying the prompt is too long     | context_length_exceeded | give up  | healthy   |
//! | 400, 413, 422 and other 4xx                | rejected           | give up       | healthy   |
//! | 3xx (redirects are never followed)         | redirected         | next provider | provider  |
//!
//! A prompt too long for the model is the client's fault as far as this provider goes (the same
//! prompt would be refused again, and by every candidate serving the same model), so the walk
//! gives up on it like any other refusal; its own outcome lets the caller try a larger model
//! (`Orchestrator::drive`: the plan's `overflow`). Which refusals say so is wire-format knowledge,
//! read from the error's fields by `dialects::context_overflow`.
//!
//! A 3xx from an LLM API is never a normal answer: the provider is misconfigured (an old base
//! URL) or hostile, and it would say the same again, so it is not retried; following it would send
//! the key and the prompt to the host it names. The next provider is tried, and the provider's
//! breaker counts it because the provider cannot serve anything as configured.

use crate::dialects::context_overflow;
use crate::domain::AttemptOutcome;
use crate::providers::{UpstreamError, UpstreamErrorKind};

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Try the same provider again (within `max_retries`), then the next.
    Retry,
    /// Go straight to the next provider: a retry cannot help.
    NextProvider,
    /// The client's fault: return it as-is, never replay it elsewhere.
    GiveUp,
}

/// How an attempt counts for the breakers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Blame {
    /// The upstream answered for itself: a success for its breakers.
    Healthy,
    /// A failure of the provider (its connections, TLS, DNS, account): its provider breaker.
    Provider,
    /// A failure of the model asked for: the model's breaker, the provider's when the model has
    /// none (a `"*"` provider).
    Model,
    /// Says nothing about the upstream: no breaker counts it (a half-open probe stays out).
    Uncounted,
}

/// The classification of one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Class {
    /// For the attempt log.
    pub(super) outcome: AttemptOutcome,
    /// What to do next.
    pub(super) verdict: Verdict,
    /// Which breaker counts it.
    pub(super) blame: Blame,
    /// Whether it counts as a failure for a circuit breaker (`blame` is the provider or the model).
    pub(super) trips_breaker: bool,
}

const fn class(outcome: AttemptOutcome, verdict: Verdict, blame: Blame) -> Class {
    Class {
        outcome,
        verdict,
        blame,
        trips_breaker: matches!(blame, Blame::Provider | Blame::Model),
    }
}

/// Classifies one failed attempt.
pub(super) fn classify(e: &UpstreamError) -> Class {
    use AttemptOutcome as O;
    use Blame::{Healthy, Model, Provider, Uncounted};
    use Verdict::{GiveUp, NextProvider, Retry};
    match e.kind {
        UpstreamErrorKind::Connect | UpstreamErrorKind::StreamCut => class(O::Connect, Retry, Provider),
        UpstreamErrorKind::Timeout => class(O::Timeout, NextProvider, Provider),
        UpstreamErrorKind::FirstTokenTimeout => class(O::Timeout, NextProvider, Model),
        UpstreamErrorKind::Deadline => class(O::Timeout, NextProvider, Uncounted),
        UpstreamErrorKind::Malformed => class(O::Malformed, Retry, Model),
        UpstreamErrorKind::Unsupported => class(O::Unsupported, NextProvider, Uncounted),
        UpstreamErrorKind::TooLarge => class(O::TooLarge, NextProvider, Healthy),
        UpstreamErrorKind::Status => match e.status.unwrap_or(500) {
            429 => class(O::RateLimited, Retry, Model),
            408 => class(O::ServerError, Retry, Model),
            401..=403 => class(O::Unauthorized, NextProvider, Provider),
            404 => class(O::NotFound, NextProvider, Healthy),
            400 | 422 if too_long(e) => class(O::ContextLengthExceeded, GiveUp, Healthy),
            400..=499 => class(O::Rejected, GiveUp, Healthy),
            300..=399 => class(O::Redirected, NextProvider, Provider),
            _ => class(O::ServerError, Retry, Model),
        },
    }
}

/// Whether the upstream's own error fields say the prompt does not fit the model's window.
fn too_long(e: &UpstreamError) -> bool {
    e.detail
        .as_deref()
        .is_some_and(|d| context_overflow(d.code.as_deref(), d.error_type.as_deref(), &d.message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ProviderId;

    fn status(code: u16) -> Class {
        let mut e = UpstreamError::new(&ProviderId::new("p"), UpstreamErrorKind::Status);
        e.status = Some(code);
        classify(&e)
    }

    fn kind(k: UpstreamErrorKind) -> Class {
        classify(&UpstreamError::new(&ProviderId::new("p"), k))
    }

    #[test]
    fn transient_failures_are_retried_and_trip_the_breaker() {
        for c in [
            status(500),
            status(502),
            status(503),
            status(504),
            status(408),
            status(429),
        ] {
            assert_eq!((c.verdict, c.trips_breaker), (Verdict::Retry, true), "{c:?}");
        }
        for k in [UpstreamErrorKind::Connect, UpstreamErrorKind::Malformed] {
            assert_eq!(kind(k).verdict, Verdict::Retry);
            assert!(kind(k).trips_breaker);
        }
    }

    #[test]
    fn timeouts_move_on_at_once_and_only_silence_counts() {
        let connect = kind(UpstreamErrorKind::Timeout);
        assert_eq!(
            (connect.verdict, connect.blame),
            (Verdict::NextProvider, Blame::Provider)
        );
        let first_token = kind(UpstreamErrorKind::FirstTokenTimeout);
        assert_eq!(
            (first_token.verdict, first_token.blame),
            (Verdict::NextProvider, Blame::Model)
        );
        let long_generation = kind(UpstreamErrorKind::Deadline);
        assert_eq!(
            (
                long_generation.verdict,
                long_generation.blame,
                long_generation.trips_breaker
            ),
            (Verdict::NextProvider, Blame::Uncounted, false)
        );
    }

    #[test]
    fn a_models_answers_blame_the_model_and_connections_the_provider() {
        for code in [429, 500, 503] {
            assert_eq!(status(code).blame, Blame::Model, "{code}");
        }
        assert_eq!(kind(UpstreamErrorKind::Connect).blame, Blame::Provider);
        assert_eq!(status(401).blame, Blame::Provider);
    }

    #[test]
    fn an_unsupported_operation_is_not_counted_at_all() {
        let c = kind(UpstreamErrorKind::Unsupported);
        assert_eq!((c.verdict, c.blame), (Verdict::NextProvider, Blame::Uncounted));
    }

    #[test]
    fn redirects_move_on_at_once_and_blame_the_provider() {
        for code in [301, 302, 303, 307, 308] {
            let c = status(code);
            assert_eq!(
                (c.outcome, c.verdict, c.blame, c.trips_breaker),
                (AttemptOutcome::Redirected, Verdict::NextProvider, Blame::Provider, true),
                "{code}"
            );
        }
    }

    #[test]
    fn credential_failures_move_on_at_once_and_count() {
        for code in [401, 403] {
            assert_eq!(status(code).verdict, Verdict::NextProvider);
            assert!(status(code).trips_breaker);
        }
    }

    #[test]
    fn not_found_moves_on_without_counting() {
        assert_eq!(status(404).verdict, Verdict::NextProvider);
        assert!(!status(404).trips_breaker);
    }

    #[test]
    fn an_oversized_answer_moves_on_without_retrying_or_counting() {
        let c = kind(UpstreamErrorKind::TooLarge);
        assert_eq!(
            (c.outcome, c.verdict, c.trips_breaker),
            (AttemptOutcome::TooLarge, Verdict::NextProvider, false)
        );
    }

    fn refused(code: u16, error_code: Option<&str>, message: &str) -> Class {
        let mut e = UpstreamError::new(&ProviderId::new("p"), UpstreamErrorKind::Status);
        e.status = Some(code);
        e.detail = Some(Box::new(crate::providers::ErrorDetail {
            message: message.into(),
            error_type: Some("invalid_request_error".into()),
            code: error_code.map(str::to_owned),
            param: None,
        }));
        classify(&e)
    }

    #[test]
    fn a_prompt_too_long_has_its_own_outcome_and_still_gives_up() {
        for c in [
            refused(
                400,
                Some("context_length_exceeded"),
                "Please reduce the length of the messages.",
            ),
            refused(400, None, "prompt is too long: 208310 tokens > 200000 maximum"),
            refused(
                422,
                None,
                "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096.",
            ),
        ] {
            assert_eq!(
                (c.outcome, c.verdict, c.trips_breaker),
                (AttemptOutcome::ContextLengthExceeded, Verdict::GiveUp, false),
                "{c:?}"
            );
        }
        assert_eq!(
            refused(400, None, "temperature is invalid").outcome,
            AttemptOutcome::Rejected
        );
        assert_eq!(
            refused(413, None, "prompt is too long").outcome,
            AttemptOutcome::Rejected,
            "a body over a size limit is not a context window"
        );
        assert_eq!(status(400).outcome, AttemptOutcome::Rejected, "no error body");
    }

    #[test]
    fn client_faults_are_given_back_and_never_count() {
        for code in [400, 413, 422] {
            assert_eq!(status(code).verdict, Verdict::GiveUp);
            assert!(!status(code).trips_breaker);
        }
    }
}
