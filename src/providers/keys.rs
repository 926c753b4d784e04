//! `KeyPool`: the state of a provider's keys when it has several — which key a request uses and
//! which keys rest after the upstream refused them.
//!
//! A request's key is chosen by weighted rendezvous hashing of its affinity (the session, else
//! the Responses `prompt_cache_key`, else the caller) over the keys that are not resting: the
//! same session keeps its key, so the provider's prompt cache stays warm, and when one key rests
//! only the sessions that used it move. The hash is fixed, so every replica picks the same key
//! for the same session.
//!
//! A 429 rests a key for one model (rate limits are per model at most vendors); a 401, 402 or 403
//! rests the whole key. The rest lasts the upstream's `Retry-After`, else the provider's
//! `key_cooldown_seconds`. The state outlives a configuration reload that keeps the same keys
//! (`Registry::rebuild`), like breaker state, and is per replica.
//!
//! The fast path (no key resting) reads one atomic per key and takes no lock.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::config::KeyPoolConfig;

/// The rests of one key for single models: taken for a few instructions, never across an await.
#[expect(
    clippy::disallowed_types,
    reason = "held for a few instructions, never across an await"
)]
type ModelRests = std::sync::Mutex<Vec<(Box<str>, u64)>>;

/// A pool's keys and their rests.
#[derive(Debug)]
pub struct KeyPool {
    keys: Vec<PooledKey>,
    cooldown: Duration,
    /// Rest deadlines are milliseconds since this instant (0: not resting).
    epoch: Instant,
}

#[derive(Debug)]
struct PooledKey {
    weight: f64,
    /// The first 8 hex digits of the key's SHA-256: enough to tell keys apart in `/provider/status`,
    /// never enough to recover one.
    hash: String,
    digest: [u8; 32],
    /// The whole key rests until then.
    until: AtomicU64,
    /// How many model rests are set (a hint that skips the lock when 0).
    model_rests: AtomicU64,
    models: ModelRests,
    /// Rests started, for `gateway_key_cooldowns_total`.
    cooldowns: AtomicU64,
}

/// Why a key rests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A 429 for this model.
    RateLimited,
    /// A 401, 402 or 403: the key itself.
    Account,
}

impl Refusal {
    /// The refusal an upstream status means for a pooled key, if any.
    pub fn of_status(status: Option<u16>) -> Option<Self> {
        match status? {
            429 => Some(Self::RateLimited),
            401..=403 => Some(Self::Account),
            _ => None,
        }
    }
}

/// One key as `/provider/status` shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct KeyStatus {
    /// Its place in the pool (0 is `api_key` when set, else the first of `api_keys`).
    pub index: usize,
    /// The first 8 hex digits of the key's SHA-256.
    pub hash: String,
    /// Its share of the traffic.
    pub weight: f64,
    /// Seconds until the whole key serves again (0: it serves).
    pub resting_seconds: f64,
    /// Models it rests for after a 429, with the seconds left.
    pub resting_models: Vec<ModelRest>,
    /// Rests started since the gateway started (or the pool's keys last changed).
    pub cooldowns: u64,
}

/// A key's rest for one model.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ModelRest {
    /// The upstream model.
    pub model: String,
    /// Seconds left.
    pub seconds: f64,
}

impl KeyPool {
    /// A fresh pool for `config`.
    pub fn new(config: &KeyPoolConfig) -> Self {
        let keys = config
            .keys
            .iter()
            .map(|(key, weight)| {
                let digest: [u8; 32] = Sha256::digest(key.expose_secret().as_bytes()).into();
                PooledKey {
                    weight: f64::from((*weight).max(1)),
                    hash: hex::encode(&digest[..4]),
                    digest,
                    until: AtomicU64::new(0),
                    model_rests: AtomicU64::new(0),
                    models: ModelRests::default(),
                    cooldowns: AtomicU64::new(0),
                }
            })
            .collect();
        Self {
            keys,
            cooldown: config.cooldown,
            epoch: Instant::now(),
        }
    }

    /// Whether `config` names the same keys with the same weights (so this pool's rests still apply).
    pub fn same_keys(&self, config: &KeyPoolConfig) -> bool {
        self.keys.len() == config.keys.len()
            && self.keys.iter().zip(&config.keys).all(|(k, (key, weight))| {
                k.weight == f64::from((*weight).max(1))
                    && k.digest == <[u8; 32]>::from(Sha256::digest(key.expose_secret().as_bytes()))
            })
    }

    /// A new pool that carries `old`'s rest counts by index, so `gateway_key_cooldowns_total`
    /// never goes back when the keys change.
    pub fn counting_on(self, old: &KeyPool) -> Self {
        for (key, before) in self.keys.iter().zip(&old.keys) {
            key.cooldowns
                .store(before.cooldowns.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self
    }

    /// How many keys the pool has.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the pool has no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The key for a request with `affinity` to `model`: the highest weighted rendezvous score
    /// among the keys that serve now; `None` when every key rests.
    pub fn choose(&self, affinity: &str, model: &str) -> Option<usize> {
        let now = self.now();
        let mut best: Option<(usize, f64)> = None;
        for (i, key) in self.keys.iter().enumerate() {
            if key.rests(now, model) {
                continue;
            }
            let score = rendezvous(affinity, i, key.weight);
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((i, score));
            }
        }
        best.map(|(i, _)| i)
    }

    /// Rests key `index` after `refusal`, for `retry_after` when the upstream said, else the
    /// pool's cooldown.
    pub fn rest(&self, index: usize, model: &str, refusal: Refusal, retry_after: Option<Duration>) {
        let Some(key) = self.keys.get(index) else {
            return;
        };
        // A `Retry-After: 0` would let the same request pick the key again at once.
        let rest = retry_after.unwrap_or(self.cooldown).max(Duration::from_secs(1));
        let until = self
            .now()
            .saturating_add(u64::try_from(rest.as_millis()).unwrap_or(u64::MAX));
        key.cooldowns.fetch_add(1, Ordering::Relaxed);
        match refusal {
            Refusal::Account => {
                key.until.fetch_max(until, Ordering::Relaxed);
            }
            Refusal::RateLimited => {
                let now = self.now();
                let mut models = key.models.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                models.retain(|(_, t)| *t > now);
                match models.iter_mut().find(|(m, _)| &**m == model) {
                    Some((_, t)) => *t = (*t).max(until),
                    None => models.push((model.into(), until)),
                }
                key.model_rests.store(models.len() as u64, Ordering::Relaxed);
            }
        }
    }

    /// How long until some key serves `model` again (`None`: one serves now).
    pub fn ready_in(&self, model: &str) -> Option<Duration> {
        let now = self.now();
        self.keys
            .iter()
            .map(|k| k.rest_left(now, model))
            .min()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
    }

    /// Each key as `/provider/status` shows it.
    pub fn status(&self) -> Vec<KeyStatus> {
        let now = self.now();
        let secs = |until: u64| until.saturating_sub(now) as f64 / 1000.0;
        self.keys
            .iter()
            .enumerate()
            .map(|(index, k)| KeyStatus {
                index,
                hash: k.hash.clone(),
                weight: k.weight,
                resting_seconds: secs(k.until.load(Ordering::Relaxed)),
                resting_models: k
                    .models
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .iter()
                    .filter(|(_, t)| *t > now)
                    .map(|(m, t)| ModelRest {
                        model: m.to_string(),
                        seconds: secs(*t),
                    })
                    .collect(),
                cooldowns: k.cooldowns.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Rests started per key index, for the metrics.
    pub fn cooldown_totals(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| (i, k.cooldowns.load(Ordering::Relaxed)))
    }
}

impl PooledKey {
    fn rests(&self, now: u64, model: &str) -> bool {
        self.rest_left(now, model) > 0
    }

    /// Milliseconds until this key serves `model` (0: now).
    fn rest_left(&self, now: u64, model: &str) -> u64 {
        let whole = self.until.load(Ordering::Relaxed).saturating_sub(now);
        if self.model_rests.load(Ordering::Relaxed) == 0 {
            return whole;
        }
        let models = self.models.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let one = models
            .iter()
            .find(|(m, _)| &**m == model)
            .map_or(0, |(_, t)| t.saturating_sub(now));
        whole.max(one)
    }
}

/// Weighted rendezvous score of key `index` for `affinity`: `-weight / ln(u)` with `u` a uniform
/// draw in (0, 1] fixed by the pair, so each key wins a share of affinities proportional to its
/// weight. `DefaultHasher::new()` has fixed keys: the same binary scores the same on every replica.
fn rendezvous(affinity: &str, index: usize, weight: f64) -> f64 {
    let mut h = std::hash::DefaultHasher::new();
    affinity.hash(&mut h);
    index.hash(&mut h);
    let bits = h.finish() >> 11;
    let u = (bits as f64 + 1.0) / (1u64 << 53) as f64;
    -weight / u.ln().min(-f64::MIN_POSITIVE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn pool(weights: &[u32]) -> KeyPool {
        KeyPool::new(&KeyPoolConfig {
            keys: weights
                .iter()
                .enumerate()
                .map(|(i, w)| (SecretString::from(format!("sk-{i}")), *w))
                .collect(),
            cooldown: Duration::from_secs(60),
        })
    }

    #[test]
    fn the_same_affinity_keeps_its_key() {
        let p = pool(&[1, 1, 1]);
        let first = p.choose("session-a", "m");
        for _ in 0..10 {
            assert_eq!(p.choose("session-a", "m"), first);
        }
    }

    #[test]
    fn keys_share_affinities_by_weight() {
        let p = pool(&[1, 3]);
        let mut counts = [0u32; 2];
        for i in 0..4000 {
            counts[p.choose(&format!("s{i}"), "m").unwrap()] += 1;
        }
        let share = f64::from(counts[1]) / 4000.0;
        assert!((0.70..0.80).contains(&share), "{counts:?}");
    }

    #[test]
    fn a_rate_limited_key_rests_for_its_model_only() {
        let p = pool(&[1, 1]);
        let key = p.choose("s", "m").unwrap();
        p.rest(key, "m", Refusal::RateLimited, None);
        assert_ne!(p.choose("s", "m"), Some(key));
        assert_eq!(p.choose("s", "other"), Some(key));
        assert_eq!(p.status()[key].resting_models.len(), 1);
        assert_eq!(p.status()[key].cooldowns, 1);
    }

    #[test]
    fn a_refused_key_rests_whole_and_every_key_resting_leaves_none() {
        let p = pool(&[1, 1]);
        p.rest(0, "m", Refusal::Account, Some(Duration::from_secs(5)));
        assert_eq!(p.choose("s", "other"), Some(1));
        p.rest(1, "m", Refusal::RateLimited, None);
        assert_eq!(p.choose("s", "m"), None);
        let wait = p.ready_in("m").unwrap();
        assert!(
            wait <= Duration::from_secs(5) && wait > Duration::from_secs(4),
            "{wait:?}"
        );
        assert_eq!(p.ready_in("other"), None);
    }

    #[test]
    fn a_rest_ends() {
        let p = pool(&[1, 1]);
        p.rest(0, "m", Refusal::Account, Some(Duration::from_millis(1)));
        // The floor of one second keeps a `Retry-After: 0` from handing the key straight back.
        assert!(p.status()[0].resting_seconds > 0.9);
        let p = KeyPool {
            cooldown: Duration::ZERO,
            ..pool(&[1, 1])
        };
        p.keys[0].until.store(p.now(), Ordering::Relaxed);
        assert_eq!(p.ready_in("m"), None);
    }

    #[test]
    fn statuses_never_show_a_key() {
        let p = pool(&[1, 2]);
        let shown = serde_json::to_string(&p.status()).unwrap();
        assert!(!shown.contains("sk-0") && !shown.contains("sk-1"), "{shown}");
        assert_eq!(p.status()[1].hash.len(), 8);
    }

    #[test]
    fn same_keys_compares_keys_and_weights() {
        let p = pool(&[1, 2]);
        let config = |w: u32| KeyPoolConfig {
            keys: vec![(SecretString::from("sk-0"), 1), (SecretString::from("sk-1"), w)],
            cooldown: Duration::from_secs(1),
        };
        assert!(p.same_keys(&config(2)));
        assert!(!p.same_keys(&config(3)));
    }
}
