//! The one place that decides what an upstream failure means: retry the same provider, move to
//! the next one, or give up and hand the client its own mistake back. Retries and breakers both
//! consume this table, so they can never disagree.
//!
//! An oversized answer is not retried: the same provider would send the same answer again, and
//! reading it costs the time and bandwidth of `max_response_bytes` each time. Another provider (or
//! model) may answer within the limit, so the next one is tried; the provider itself is healthy,
//! so its breaker does not count it.
//!
//! | failure                                   | outcome        | verdict       | trips breaker |
//! |-------------------------------------------|----------------|---------------|---------------|
//! | connect error, broken connection          | connect_error  | retry         | yes           |
//! | timeout (whole attempt / first token)     | timeout        | retry         | yes           |
//! | 5xx, 408                                  | server_error   | retry         | yes           |
//! | 429                                       | rate_limited   | retry         | yes           |
//! | 2xx with a malformed body / in-band error | malformed      | retry         | yes           |
//! | 401, 402, 403 (the provider's account)    | unauthorized   | next provider | yes           |
//! | 404 (model absent there)                  | not_found      | next provider | no            |
//! | operation unsupported by the protocol     | unsupported    | next provider | no            |
//! | 2xx body over `limits.max_response_bytes` | response_too_large | next provider | no        |
//! | 400, 413, 422 and other 4xx               | rejected       | give up       | no            |
//! | 3xx (redirects are never followed)        | redirected     | next provider | yes           |
//!
//! A 3xx from an LLM API is never a normal answer: the provider is misconfigured (an old base
//! URL) or hostile, and it would say the same again, so it is not retried; following it would send
//! the key and the prompt to the host it names. The next provider is tried, and the breaker counts
//! it because the provider cannot serve anything as configured.

use crate::domain::AttemptOutcome;
use crate::providers::{UpstreamError, UpstreamErrorKind};

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Try the same provider again (within `max_retries`), then the next.
    Retry,
    /// Go straight to the next provider: a retry cannot help.
    NextProvider,
    /// The client's fault: return it as-is, never replay it elsewhere.
    GiveUp,
}

/// The classification of one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    /// For the attempt log.
    pub outcome: AttemptOutcome,
    /// What to do next.
    pub verdict: Verdict,
    /// Whether it counts as a failure for the provider's circuit breaker.
    pub trips_breaker: bool,
}

const fn class(outcome: AttemptOutcome, verdict: Verdict, trips_breaker: bool) -> Class {
    Class {
        outcome,
        verdict,
        trips_breaker,
    }
}

/// Classifies one failed attempt.
pub fn classify(e: &UpstreamError) -> Class {
    use AttemptOutcome as O;
    use Verdict::{GiveUp, NextProvider, Retry};
    match e.kind {
        UpstreamErrorKind::Connect | UpstreamErrorKind::StreamCut => class(O::Connect, Retry, true),
        UpstreamErrorKind::Timeout => class(O::Timeout, Retry, true),
        UpstreamErrorKind::Malformed => class(O::Malformed, Retry, true),
        UpstreamErrorKind::Unsupported => class(O::Unsupported, NextProvider, false),
        UpstreamErrorKind::TooLarge => class(O::TooLarge, NextProvider, false),
        UpstreamErrorKind::Status => match e.status.unwrap_or(500) {
            429 => class(O::RateLimited, Retry, true),
            408 => class(O::ServerError, Retry, true),
            401..=403 => class(O::Unauthorized, NextProvider, true),
            404 => class(O::NotFound, NextProvider, false),
            400..=499 => class(O::Rejected, GiveUp, false),
            300..=399 => class(O::Redirected, NextProvider, true),
            _ => class(O::ServerError, Retry, true),
        },
    }
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
        for k in [
            UpstreamErrorKind::Connect,
            UpstreamErrorKind::Timeout,
            UpstreamErrorKind::Malformed,
        ] {
            assert_eq!(kind(k).verdict, Verdict::Retry);
            assert!(kind(k).trips_breaker);
        }
    }

    #[test]
    fn redirects_move_on_at_once_and_count() {
        for code in [301, 302, 303, 307, 308] {
            assert_eq!(
                status(code),
                Class {
                    outcome: AttemptOutcome::Redirected,
                    verdict: Verdict::NextProvider,
                    trips_breaker: true
                },
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

    #[test]
    fn client_faults_are_given_back_and_never_count() {
        for code in [400, 413, 422] {
            assert_eq!(status(code).verdict, Verdict::GiveUp);
            assert!(!status(code).trips_breaker);
        }
    }
}
