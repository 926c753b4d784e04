//! The same GCRA as governor, run atomically in Redis so every replica shares one limit. Keys live
//! under the configured prefix (`aigw:` by default) so environments never share counters.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;

use super::{Decision, Quota, RedisLink};

/// One round trip: read the theoretical arrival time, decide, store. Times in milliseconds from
/// Redis's own clock, so replicas with skewed clocks still agree.
const GCRA: &str = r#"
local emission = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + emission
local allow_at = new_tat - emission * burst
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, new_tat - now))
local remaining = math.floor((emission * burst - (new_tat - now)) / emission)
return {1, remaining, 0, new_tat - now}
"#;

/// How long one Redis call may take before the local limiter decides instead.
const CALL_TIMEOUT: Duration = Duration::from_millis(250);

pub(super) struct RedisLimiter {
    link: RedisLink,
    prefix: String,
    script: redis::Script,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("prefix", &self.prefix)
            .field("link", &self.link)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

impl RedisLimiter {
    pub(super) fn new(url: &str, prefix: &str) -> Result<Self, String> {
        Ok(Self {
            link: RedisLink::new(url, "rate limiter", CALL_TIMEOUT)?,
            prefix: prefix.to_owned(),
            script: redis::Script::new(GCRA),
        })
    }

    /// Connects in the background now, rather than on the first request.
    pub(super) fn start(&self) {
        self.link.start();
    }

    pub(super) async fn connect_within(&self, within: Duration) -> bool {
        self.link.connect_within(within).await
    }

    pub(super) fn connected(&self) -> bool {
        self.link.connected()
    }

    async fn run<T>(&self, f: impl AsyncFnOnce(MultiplexedConnection) -> redis::RedisResult<T>) -> Result<T, String> {
        self.link.run(CALL_TIMEOUT, f).await
    }

    pub(super) async fn check(&self, scope: &str, key: &str, quota: Quota) -> Result<Decision, String> {
        let emission_ms = 60_000 / u64::from(quota.per_minute.max(1));
        let burst = quota.burst.max(1);
        let redis_key = format!("{}rl:{scope}:{}:{}:{key}", self.prefix, quota.per_minute, burst);
        let script = &self.script;
        let (allowed, remaining, retry_ms, reset_ms): (i64, i64, i64, i64) = self
            .run(async |mut c| {
                script
                    .key(&redis_key)
                    .arg(emission_ms)
                    .arg(burst)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        let ms = |v: i64| Duration::from_millis(u64::try_from(v.max(0)).unwrap_or(0));
        Ok(Decision {
            allowed: allowed == 1,
            limit: burst,
            remaining: u32::try_from(remaining.max(0)).unwrap_or(0),
            retry_after: ms(retry_ms),
            reset_after: ms(reset_ms),
        })
    }

    fn tokens_key(&self, key: &str) -> (String, Duration) {
        let now = now_ms();
        let minute = now / 60_000;
        let reset = Duration::from_millis((minute + 1) * 60_000 - now);
        (format!("{}tpm:{minute}:{key}", self.prefix), reset)
    }

    pub(super) async fn tokens_used(&self, key: &str) -> Result<(u64, Duration), String> {
        let (k, reset) = self.tokens_key(key);
        let used: Option<u64> = self
            .run(async |mut c| redis::cmd("GET").arg(&k).query_async(&mut c).await)
            .await?;
        Ok((used.unwrap_or(0), reset))
    }

    pub(super) async fn add_tokens(&self, key: &str, tokens: u64) -> Result<(), String> {
        let (k, _) = self.tokens_key(key);
        self.run(async |mut c| {
            redis::pipe()
                .atomic()
                .incr(&k, tokens)
                .ignore()
                .expire(&k, 120)
                .ignore()
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }
}
