//! Budget counters shared by every replica: spent and reserved nano-USD per budget and period,
//! in Redis (one atomic script per check), else in this process, seeded from the spend ledger.

use hashbrown::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::limits::RedisLink;

use super::budgets::{Applied, CounterKey};

/// How long a reservation holds when the request that made it never settles it (a replica
/// that died mid-request); longer than any request runs.
const HOLD_MS: i64 = 3_600_000;
/// How long one Redis call may take before this replica decides alone.
const CALL_TIMEOUT: Duration = Duration::from_millis(100);
/// How long a `total` counter lives in Redis after its last use (the ledger keeps it for good).
const TOTAL_TTL_MS: i64 = 30 * 86_400_000;

/// Checks every budget, and reserves `amount` on all of them only when none would pass its limit.
/// KEYS: the counters. ARGV: amount, hold member, now, hold expiry, then per key: limit, ledger
/// seed, expiry. A counter Redis lost is rebuilt from the seed. Returns {0, 0} when reserved, else
/// {index of the first refusing budget (1-based), its remaining nano-USD}.
const RESERVE: &str = r#"
local amount = tonumber(ARGV[1])
local member = ARGV[2]
local now = tonumber(ARGV[3])
local hold_until = tonumber(ARGV[4])
local function reserved(h)
  redis.call('ZREMRANGEBYSCORE', h, '-inf', now)
  local total = 0
  for _, m in ipairs(redis.call('ZRANGE', h, 0, -1)) do
    total = total + tonumber(string.match(m, '|(%d+)$'))
  end
  return total
end
for i, k in ipairs(KEYS) do
  local base = 5 + (i - 1) * 3
  local limit = tonumber(ARGV[base])
  redis.call('HSETNX', k, 'spent', ARGV[base + 1])
  local spent = tonumber(redis.call('HGET', k, 'spent'))
  local held = reserved(k .. ':holds')
  if spent + held + amount > limit then
    return {i, limit - spent - held}
  end
end
for i, k in ipairs(KEYS) do
  local base = 5 + (i - 1) * 3
  redis.call('ZADD', k .. ':holds', hold_until, member)
  redis.call('PEXPIREAT', k, ARGV[base + 2])
  redis.call('PEXPIREAT', k .. ':holds', ARGV[base + 2])
end
return {0, 0}
"#;

/// Replaces a reservation by the real cost. KEYS: the counters. ARGV: hold member, cost, then per
/// key: ledger seed, expiry. Returns each counter's spent after the cost.
const SETTLE: &str = r#"
local out = {}
for i, k in ipairs(KEYS) do
  local base = 3 + (i - 1) * 2
  redis.call('ZREM', k .. ':holds', ARGV[1])
  redis.call('HSETNX', k, 'spent', ARGV[base])
  out[i] = redis.call('HINCRBY', k, 'spent', ARGV[2])
  redis.call('PEXPIREAT', k, ARGV[base + 1])
end
return out
"#;

/// Held only inside synchronous functions, never across an await.
#[expect(
    clippy::disallowed_types,
    reason = "never held across an await: only sync fns lock it"
)]
type LocalLock = std::sync::Mutex<HashMap<CounterKey, Local>>;

/// One counter in this process: what it spent, and its reservations by hold id.
#[derive(Debug, Default)]
struct Local {
    spent: i64,
    holds: HashMap<u64, i64>,
    /// Settled since the last ledger refresh: kept until the ledger has had time to take it.
    fresh: bool,
}

/// `key`'s counter in this process, made from the ledger's seed on first use.
fn counter<'a>(
    local: &'a mut HashMap<CounterKey, Local>,
    seeds: &HashMap<CounterKey, i64>,
    key: &CounterKey,
) -> &'a mut Local {
    local.entry_ref(key).or_insert_with(|| Local {
        spent: seeds.get(key).copied().unwrap_or(0),
        holds: HashMap::new(),
        fresh: true,
    })
}

/// The ledger's totals per counter.
pub type Seeds = HashMap<CounterKey, i64>;

/// Why a reservation was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    /// Index into the budgets asked for.
    pub index: usize,
    /// What remained of it, nano-USD (never negative).
    pub remaining: i64,
}

/// The budget counters.
pub struct Counters {
    redis: Option<RedisLink>,
    prefix: String,
    reserve: redis::Script,
    settle: redis::Script,
    /// Used while Redis is unset or unreachable; seeded from the ledger.
    local: LocalLock,
    /// Ledger totals per counter, read from the database by the refresh task.
    seeds: ArcSwap<Seeds>,
    /// Checks and settlements decided here because Redis could not be asked.
    pub fallbacks: AtomicU64,
    next_hold: AtomicU64,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("redis", &self.redis)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A reservation made on some counters; settled once.
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    pub(super) id: u64,
    pub(super) amount: i64,
    /// Where it was made: Redis, or this process.
    pub(super) shared: bool,
}

impl Counters {
    /// Counters in `redis` under `prefix`, or in this process alone.
    pub fn new(redis: Option<RedisLink>, prefix: &str) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            reserve: redis::Script::new(RESERVE),
            settle: redis::Script::new(SETTLE),
            local: LocalLock::new(HashMap::new()),
            seeds: ArcSwap::from_pointee(HashMap::new()),
            fallbacks: AtomicU64::new(0),
            // A per-process random start, so two replicas' hold ids never meet in one counter.
            next_hold: AtomicU64::new(fastrand::u64(..) >> 16),
        }
    }

    /// Whether the counters are shared through Redis (configured; maybe unreachable now).
    pub fn shared(&self) -> bool {
        self.redis.is_some()
    }

    fn key(&self, a: &Applied) -> String {
        format!("{}budget:{}", self.prefix, a.key)
    }

    /// What a counter Redis lost is rebuilt from: the ledger's total, or this process's own count
    /// when it is higher (its latest settlements may not have reached the ledger yet).
    fn seed(&self, a: &Applied) -> i64 {
        let ledger = self.seeds.load().get(&a.key).copied().unwrap_or(0);
        let here = self.local.lock().ok().and_then(|l| l.get(&a.key).map(|c| c.spent));
        here.map_or(ledger, |h| h.max(ledger))
    }

    fn expiry(a: &Applied, now_ms: i64) -> i64 {
        a.window.end_ms.map_or(now_ms + TOTAL_TTL_MS, |end| end + 86_400_000)
    }

    /// Replaces the ledger totals the counters are rebuilt from; a local counter never goes below
    /// what the ledger says was spent.
    ///
    /// A counter with nothing held that was not settled since the previous refresh is dropped:
    /// the ledger has its spend now, so memory stays bounded by the counters in use (one per
    /// session under a session budget, for instance).
    pub fn set_seeds(&self, seeds: Seeds) {
        if let Ok(mut local) = self.local.lock() {
            local.retain(|_, c| c.fresh || !c.holds.is_empty());
            for (k, c) in local.iter_mut() {
                c.fresh = false;
                if let Some(v) = seeds.get(k) {
                    c.spent = c.spent.max(*v);
                }
            }
        }
        self.seeds.store(std::sync::Arc::new(seeds));
    }

    /// Reserves `amount` nano-USD on every budget in `applied`, or refuses naming the first that
    /// would pass its limit.
    pub async fn reserve(&self, applied: &[Applied], amount: i64, now_ms: i64) -> Result<Hold, Refused> {
        let id = self.next_hold.fetch_add(1, Ordering::Relaxed);
        if let Some(link) = &self.redis {
            let mut inv = self.reserve.prepare_invoke();
            inv.arg(amount)
                .arg(format!("{id}|{amount}"))
                .arg(now_ms)
                .arg(now_ms + HOLD_MS);
            for a in applied {
                inv.key(self.key(a));
                inv.arg(a.limit).arg(self.seed(a)).arg(Self::expiry(a, now_ms));
            }
            let result: Result<(i64, i64), String> = link
                .run(CALL_TIMEOUT, async |mut c| inv.invoke_async(&mut c).await)
                .await;
            match result {
                Ok((0, _)) => {
                    return Ok(Hold {
                        id,
                        amount,
                        shared: true,
                    });
                }
                Ok((i, remaining)) => {
                    return Err(Refused {
                        index: usize::try_from(i - 1).unwrap_or(0),
                        remaining: remaining.max(0),
                    });
                }
                Err(e) => {
                    self.fallbacks.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "budget counters unreachable in redis; this replica decides alone");
                }
            }
        }
        self.reserve_local(applied, id, amount)
    }

    fn reserve_local(&self, applied: &[Applied], id: u64, amount: i64) -> Result<Hold, Refused> {
        let seeds = self.seeds.load();
        let Ok(mut local) = self.local.lock() else {
            return Err(Refused { index: 0, remaining: 0 });
        };
        for (index, a) in applied.iter().enumerate() {
            let c = counter(&mut local, &seeds, &a.key);
            let held: i64 = c.holds.values().sum();
            if c.spent + held + amount > a.limit {
                return Err(Refused {
                    index,
                    remaining: (a.limit - c.spent - held).max(0),
                });
            }
        }
        for a in applied {
            if let Some(c) = local.get_mut(&a.key) {
                c.holds.insert(id, amount);
            }
        }
        Ok(Hold {
            id,
            amount,
            shared: false,
        })
    }

    /// Replaces `hold` by `cost` nano-USD on `applied` (a hold of `None` charges without a
    /// reservation: a provider's budget), returning each counter's spent before and after.
    /// This process's counters always take the cost too, so while Redis is down it knows its own
    /// spend exactly and only other replicas' since the last ledger refresh is missing.
    pub async fn settle(&self, applied: &[Applied], hold: Option<&Hold>, cost: i64, now_ms: i64) -> Vec<(i64, i64)> {
        let local_hold = hold.filter(|h| !h.shared);
        let here = self.settle_local(applied, local_hold, cost);
        if let Some(link) = &self.redis
            && hold.is_none_or(|h| h.shared)
        {
            let mut inv = self.settle.prepare_invoke();
            let member = hold.map_or_else(String::new, |h| format!("{}|{}", h.id, h.amount));
            inv.arg(member).arg(cost);
            for (a, (before, _)) in applied.iter().zip(&here) {
                inv.key(self.key(a));
                inv.arg(*before).arg(Self::expiry(a, now_ms));
            }
            let result: Result<Vec<i64>, String> = link
                .run(CALL_TIMEOUT, async |mut c| inv.invoke_async(&mut c).await)
                .await;
            match result {
                Ok(after) => return after.into_iter().map(|s| (s - cost, s)).collect(),
                Err(e) => {
                    self.fallbacks.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "budget settlement kept in this replica: redis unreachable");
                }
            }
        }
        here
    }

    /// `settle` in this process alone, at once.
    pub fn settle_now_local(&self, applied: &[Applied], hold: Option<&Hold>, cost: i64) -> Vec<(i64, i64)> {
        self.settle_local(applied, hold, cost)
    }

    fn settle_local(&self, applied: &[Applied], hold: Option<&Hold>, cost: i64) -> Vec<(i64, i64)> {
        let seeds = self.seeds.load();
        let Ok(mut local) = self.local.lock() else {
            return Vec::new();
        };
        applied
            .iter()
            .map(|a| {
                let c = counter(&mut local, &seeds, &a.key);
                c.fresh = true;
                if let Some(h) = hold {
                    c.holds.remove(&h.id);
                }
                let before = c.spent;
                c.spent += cost;
                (before, c.spent)
            })
            .collect()
    }

    /// Spent and reserved nano-USD on `a` now (Redis when it answers, else this process).
    pub async fn status(&self, a: &Applied, now_ms: i64) -> (i64, i64) {
        if let Some(link) = &self.redis {
            let key = self.key(a);
            let holds = format!("{key}:holds");
            let result: Result<(Option<i64>, Vec<String>), String> = link
                .run(CALL_TIMEOUT, async |mut c| {
                    redis::pipe()
                        .cmd("HGET")
                        .arg(&key)
                        .arg("spent")
                        .cmd("ZRANGEBYSCORE")
                        .arg(&holds)
                        .arg(now_ms)
                        .arg("+inf")
                        .query_async(&mut c)
                        .await
                })
                .await;
            if let Ok((spent, members)) = result {
                let held = members
                    .iter()
                    .filter_map(|m| m.rsplit_once('|').and_then(|(_, a)| a.parse::<i64>().ok()))
                    .sum();
                return (spent.unwrap_or_else(|| self.seed(a)), held);
            }
        }
        let here = self
            .local
            .lock()
            .ok()
            .and_then(|l| l.get(&a.key).map(|c| c.holds.values().sum::<i64>()));
        (self.seed(a), here.unwrap_or(0))
    }
}
