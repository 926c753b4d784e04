//! `Registry`: the enabled providers, each paired with the adapter for its wire protocol.

use std::sync::Arc;

use super::ProviderAdapter;
use super::adapters::{Anthropic, Flavor, Gemini, OpenAiCompat, ResponsesProbe};
use super::keys::KeyPool;
use crate::config::ProviderConfig;
use crate::domain::ProviderId;

/// An enabled provider: its settings and the adapter that speaks its protocol. Cloning is two
/// reference counts (routing hands a clone to every request's plan).
#[derive(Debug, Clone)]
pub struct Provider {
    /// Resolved settings.
    pub config: Arc<ProviderConfig>,
    /// The protocol adapter, built for `config` (its URLs and headers prepared from it): a
    /// provider with other settings needs its own (`Provider::new`).
    pub adapter: Arc<dyn ProviderAdapter>,
    /// Its keys' state when it has several (`api_keys`).
    pub keys: Option<Arc<KeyPool>>,
}

impl Provider {
    /// `config` paired with an adapter built for it; `None` when its kind has none in this build.
    pub fn new(config: ProviderConfig) -> Option<Self> {
        Self::keeping(config, None)
    }

    /// `Provider::new`, keeping what `responses: auto` learnt about the provider and its keys'
    /// rests from `previous`.
    fn keeping(config: ProviderConfig, previous: Option<&Provider>) -> Option<Self> {
        let probe = previous
            .filter(|p| p.config.kind == config.kind && p.config.base_url == config.base_url)
            .and_then(|p| p.adapter.responses_probe());
        let adapter = adapter_for(&config, probe)?;
        let keys = config
            .key_pool
            .as_ref()
            .map(|pool| match previous.and_then(|p| p.keys.as_ref()) {
                Some(old) if old.same_keys(pool) => old.clone(),
                Some(old) => Arc::new(KeyPool::new(pool).counting_on(old)),
                None => Arc::new(KeyPool::new(pool)),
            });
        Some(Self {
            config: Arc::new(config),
            adapter,
            keys,
        })
    }
}

/// A provider that cannot be served by this build.
#[derive(Debug, Clone, thiserror::Error)]
#[error("provider `{provider}`: kind `{kind}` has no adapter in this build (available: {available})")]
pub struct RegistryError {
    pub provider: ProviderId,
    pub kind: String,
    /// Kinds this build serves.
    pub available: &'static str,
}

/// Enabled providers in priority order.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    providers: Vec<Provider>,
}

const AVAILABLE: &str = "openai, azure, anthropic, gemini, node_pool";

fn adapter_for(config: &ProviderConfig, probe: Option<Arc<ResponsesProbe>>) -> Option<Arc<dyn ProviderAdapter>> {
    match config.kind.as_str() {
        // Every node of a pool speaks the OpenAI protocol; routing gives each its own base URL.
        "openai" | "node_pool" => Some(Arc::new(OpenAiCompat::with_probe(Flavor::Plain, config, probe))),
        "azure" => Some(Arc::new(OpenAiCompat::with_probe(Flavor::Azure, config, probe))),
        "anthropic" => Some(Arc::new(Anthropic::new(config))),
        "gemini" => Some(Arc::new(Gemini::new(config))),
        _ => None,
    }
}

impl Registry {
    /// Pairs each provider with its adapter. Providers whose kind has no adapter are left out and
    /// reported: `check-config` fails on them, `serve` warns and goes on.
    pub fn build(configs: &[ProviderConfig]) -> (Self, Vec<RegistryError>) {
        Self::rebuild(configs, None)
    }

    /// `build`, keeping from `previous` what `responses: auto` learnt about each provider that
    /// stays with the same kind and base URL, and the rests of a key pool whose keys stay the same
    /// (like breaker state, they outlive a reload).
    pub fn rebuild(configs: &[ProviderConfig], previous: Option<&Registry>) -> (Self, Vec<RegistryError>) {
        let mut providers = Vec::with_capacity(configs.len());
        let mut errors = Vec::new();
        for config in configs {
            match Provider::keeping(config.clone(), previous.and_then(|r| r.get(&config.id))) {
                Some(provider) => providers.push(provider),
                None => errors.push(RegistryError {
                    provider: config.id.clone(),
                    kind: config.kind.clone(),
                    available: AVAILABLE,
                }),
            }
        }
        (Self { providers }, errors)
    }

    /// All providers, lowest priority number first.
    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// A provider by id (`claude` finds `anthropic`).
    pub fn get(&self, id: &ProviderId) -> Option<&Provider> {
        self.providers.iter().find(|p| &p.config.id == id)
    }
}
