//! The shared claims: one Redis key per digest under the configured prefix
//! (`{prefix}idem:{digest}`). Its value says where the request is: `p<body><token>` while the
//! first runs (a lease of `LEASE`, renewed while it runs, so a replica that dies frees it),
//! `d<body><header JSON>\n<bytes>` once answered, `s<body>` when it cannot be replayed; `<body>`
//! is the body's SHA-256 in hex. Every call is bounded by `CALL_TIMEOUT`; an error goes back to
//! `Idempotency`, which then decides with this replica's table.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use tokio::time::Instant;

use super::{Answer, Begin, Done, Key, RedisErrorHook};
use crate::limits::RedisLink;

/// The most one Redis call may take.
const CALL_TIMEOUT: Duration = Duration::from_millis(200);
/// The connection's own response timeout, a little longer than a call's.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a running claim lives without renewal.
const LEASE: Duration = Duration::from_secs(10);
/// How often a running claim is renewed.
const RENEW_EVERY: Duration = Duration::from_secs(3);
/// How often a duplicate looks again while the first runs.
const POLL: Duration = Duration::from_millis(50);

/// Renews or frees a claim only while it is still this request's.
const RENEW: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

pub(super) struct RedisStore {
    link: RedisLink,
    prefix: String,
    on_error: RedisErrorHook,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// What a look at Redis decided.
pub(super) enum Begun {
    /// This request holds the claim; the string is its marker value.
    Claimed(String),
    Decided(Begin),
}

impl RedisStore {
    pub(super) fn new(url: &str, prefix: &str, on_error: RedisErrorHook) -> Result<Self, String> {
        let link = RedisLink::new(url, "idempotency", RESPONSE_TIMEOUT)?;
        link.start();
        Ok(Self {
            link,
            prefix: prefix.to_owned(),
            on_error,
        })
    }

    /// Counts a call that failed.
    pub(super) fn failed(&self) {
        (self.on_error)();
    }

    fn key(&self, key: &Key) -> String {
        format!("{}idem:{}", self.prefix, key.digest)
    }

    pub(super) async fn begin(&self, key: &Key, ttl: Duration, wait: Duration) -> Result<Begun, String> {
        let deadline = Instant::now() + wait;
        let redis_key = self.key(key);
        let body = hex::encode(key.body);
        let marker = format!("p{body}{}", uuid::Uuid::now_v7().simple());
        let lease_ms = millis(LEASE.min(ttl.max(Duration::from_millis(1))));
        loop {
            let (k, m) = (redis_key.clone(), marker.clone());
            let set: Option<String> = self
                .link
                .run(CALL_TIMEOUT, async move |mut c| {
                    redis::cmd("SET")
                        .arg(k)
                        .arg(m)
                        .arg("NX")
                        .arg("PX")
                        .arg(lease_ms)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            if set.is_some() {
                return Ok(Begun::Claimed(marker));
            }
            let k = redis_key.clone();
            let value: Option<Vec<u8>> = self.link.run(CALL_TIMEOUT, async move |mut c| c.get(k).await).await?;
            let Some(value) = value else { continue };
            match parse(&value, &body) {
                Seen::OtherBody => return Ok(Begun::Decided(Begin::Mismatch)),
                Seen::Done(done) => return Ok(Begun::Decided(Begin::Replay(done))),
                Seen::Running => {}
            }
            if Instant::now() + POLL > deadline {
                return Ok(Begun::Decided(Begin::StillRunning));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Renews the claim every `RENEW_EVERY` until the caller stops polling this future. A failed
    /// renewal is logged; the next one tries again.
    pub(super) async fn renew_forever(self: &Arc<Self>, key: &Key, marker: &str) -> std::convert::Infallible {
        let redis_key = self.key(key);
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            let (k, m) = (redis_key.clone(), marker.to_owned());
            let renewed: Result<i64, String> = self
                .link
                .run(CALL_TIMEOUT, async move |mut c| {
                    redis::Script::new(RENEW)
                        .key(k)
                        .arg(m)
                        .arg(millis(LEASE))
                        .invoke_async(&mut c)
                        .await
                })
                .await;
            if let Err(e) = renewed {
                self.failed();
                tracing::warn!(error = %e, "idempotency: could not renew a claim in redis");
            }
        }
    }

    pub(super) async fn finish(&self, key: &Key, done: &Done, ttl: Duration) -> Result<(), String> {
        let value = encode(&hex::encode(key.body), done);
        let k = self.key(key);
        let ttl_ms = millis(ttl);
        self.link
            .run(CALL_TIMEOUT, async move |mut c| {
                c.pset_ex::<_, _, ()>(k, value, ttl_ms).await
            })
            .await
    }

    pub(super) async fn release(&self, key: &Key, marker: &str) -> Result<(), String> {
        let (k, m) = (self.key(key), marker.to_owned());
        self.link
            .run(CALL_TIMEOUT, async move |mut c| {
                redis::Script::new(RELEASE)
                    .key(k)
                    .arg(m)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await
            .map(drop)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

enum Seen {
    Running,
    Done(Done),
    OtherBody,
}

fn encode(body: &str, done: &Done) -> Vec<u8> {
    match done {
        Done::Unreplayable => format!("s{body}").into_bytes(),
        Done::Answer(answer) => {
            let mut out = format!("d{body}").into_bytes();
            out.extend(serde_json::to_vec(answer.as_ref()).unwrap_or_default());
            out.push(b'\n');
            out.extend_from_slice(&answer.body);
            out
        }
    }
}

/// A value this version cannot read counts as running: it expires, and is never replayed wrong.
fn parse(value: &[u8], body: &str) -> Seen {
    let Some((&kind, rest)) = value.split_first() else {
        return Seen::Running;
    };
    let Some((stored_body, rest)) = rest.split_at_checked(64) else {
        return Seen::Running;
    };
    if stored_body != body.as_bytes() {
        return Seen::OtherBody;
    }
    match kind {
        b's' => Seen::Done(Done::Unreplayable),
        b'd' => {
            let Some(split) = rest.iter().position(|&b| b == b'\n') else {
                return Seen::Running;
            };
            match serde_json::from_slice::<Answer>(&rest[..split]) {
                Ok(mut answer) => {
                    answer.body = bytes::Bytes::copy_from_slice(&rest[split + 1..]);
                    Seen::Done(Done::Answer(Arc::new(answer)))
                }
                Err(_) => Seen::Running,
            }
        }
        _ => Seen::Running,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_answer_reads_back_whole_and_another_body_is_told_apart() {
        let body = hex::encode([7u8; 32]);
        let answer = Answer {
            status: 201,
            headers: vec![("content-type".into(), "application/json".into())],
            body: bytes::Bytes::from_static(b"{\"a\":\"x\\ny\"}\n"),
        };
        let value = encode(&body, &Done::Answer(Arc::new(answer.clone())));
        let Seen::Done(Done::Answer(back)) = parse(&value, &body) else {
            panic!("an answer")
        };
        assert_eq!(*back, answer);
        assert!(matches!(parse(&value, &hex::encode([8u8; 32])), Seen::OtherBody));
        assert!(matches!(
            parse(&encode(&body, &Done::Unreplayable), &body),
            Seen::Done(Done::Unreplayable)
        ));
        assert!(matches!(parse(format!("p{body}tok").as_bytes(), &body), Seen::Running));
        assert!(matches!(parse(b"junk", &body), Seen::Running));
    }
}
