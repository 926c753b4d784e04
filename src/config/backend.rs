//! The one-backend variables: `BACKEND_KIND`, `BACKEND_BASE_URL`, `MODEL_NAME` (and an optional
//! `BACKEND_API_KEY`) make one provider, id `backend`, with no config file.
//!
//! They land in `backend:` through `FLAT_ENV` like every other variable, so the YAML spelling
//! works too; `add_backend` then turns the section into a provider entry, as `add_default_pool`
//! does for `AI_NODES`. The catalogue's `*_BASE_URL` variables are untouched and still work beside it.

use secrecy::SecretString;
use serde::Deserialize;

use super::catalogue::CatalogueEntry;
use super::settings::ProviderEntry;
use crate::domain::ProviderId;

/// The provider id the one-backend variables create.
pub const BACKEND_ID: &str = "backend";

/// `backend:` — one provider from three variables, for a gateway in front of one runtime.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BackendSettings {
    /// `BACKEND_KIND`: a wire protocol (`openai`, `anthropic`, `gemini`, `azure`) or a catalogue
    /// provider or runtime name (`vllm`, `ollama`, `llamacpp`, `tgi`, `sglang`, `localai`, `groq`, …),
    /// which speaks that catalogue entry's protocol.
    pub kind: Option<String>,
    /// `BACKEND_BASE_URL`: the upstream base URL, in the provider SDK's own convention
    /// (`http://vllm:8000/v1`).
    pub base_url: Option<String>,
    /// `BACKEND_API_KEY`: the upstream's key, when it asks for one.
    #[schemars(with = "Option<String>")]
    pub api_key: Option<SecretString>,
    /// `MODEL_NAME`: the model it serves, listed in `/v1/models`; unset = any model.
    pub model: Option<String>,
}

/// Protocols a backend may name directly; `node_pool` needs nodes, so it is not one.
const PROTOCOLS: &[&str] = &["openai", "anthropic", "gemini", "azure"];

/// The protocol `kind` speaks: itself when it is a protocol, else the catalogue entry's.
fn protocol(kind: &str, catalogue: &[CatalogueEntry]) -> Option<String> {
    let kind = kind.trim().to_ascii_lowercase();
    if PROTOCOLS.contains(&kind.as_str()) {
        return Some(kind);
    }
    catalogue.iter().find(|c| c.id == kind).map(|c| c.kind.clone())
}

/// Adds the `backend` provider entry when `backend:` is set; returns problems that stop the start
/// and pushes warnings for settings that do nothing.
pub(super) fn add_backend(
    settings: &BackendSettings,
    catalogue: &[CatalogueEntry],
    entries: &mut Vec<ProviderEntry>,
    warnings: &mut Vec<String>,
) -> Vec<String> {
    let (kind, base_url) = match (&settings.kind, &settings.base_url) {
        (None, None) => {
            if settings.model.is_some() || settings.api_key.is_some() {
                warnings.push(
                    "backend.model (MODEL_NAME) and backend.api_key (BACKEND_API_KEY) do nothing without \
                     BACKEND_KIND and BACKEND_BASE_URL"
                        .to_owned(),
                );
            }
            return Vec::new();
        }
        (Some(_), None) => {
            return vec![
                "backend.base_url (BACKEND_BASE_URL) is required when backend.kind (BACKEND_KIND) is set, \
                 e.g. BACKEND_BASE_URL=http://vllm:8000/v1"
                    .to_owned(),
            ];
        }
        (None, Some(_)) => {
            return vec![format!(
                "backend.kind (BACKEND_KIND) is required when backend.base_url (BACKEND_BASE_URL) is set: {}",
                known_kinds(catalogue)
            )];
        }
        (Some(kind), Some(url)) => (kind, url),
    };
    let Some(protocol) = protocol(kind, catalogue) else {
        return vec![format!(
            "backend.kind (BACKEND_KIND): unknown kind `{kind}`; {}",
            known_kinds(catalogue)
        )];
    };
    let models = settings.model.clone().map(|m| vec![m]);
    // A `providers:` entry with this id (the file's, or the admin API's `enabled` toggle) keeps what
    // the variables do not say; what they say wins, as the environment wins over the file.
    if let Some(entry) = entries
        .iter_mut()
        .find(|e| ProviderId::new(&e.id) == ProviderId::new(BACKEND_ID))
    {
        entry.kind = Some(protocol);
        entry.base_url = Some(base_url.trim().to_owned());
        if settings.api_key.is_some() {
            entry.api_key = settings.api_key.clone();
        }
        if models.is_some() {
            entry.models = models;
        }
        entry.priority.get_or_insert(0);
        return Vec::new();
    }
    entries.push(ProviderEntry {
        id: BACKEND_ID.to_owned(),
        kind: Some(protocol),
        base_url: Some(base_url.trim().to_owned()),
        api_key: settings.api_key.clone(),
        models: Some(models.unwrap_or_else(|| vec!["*".to_owned()])),
        // The operator's one backend goes before anything the catalogue enabled beside it.
        priority: Some(0),
        ..ProviderEntry::default()
    });
    Vec::new()
}

fn known_kinds(catalogue: &[CatalogueEntry]) -> String {
    let mut names: Vec<&str> = PROTOCOLS.to_vec();
    names.extend(
        catalogue
            .iter()
            .map(|c| c.id.as_str())
            .filter(|id| !PROTOCOLS.contains(id)),
    );
    format!("expected one of: {}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Env, Sources, catalogue, load};
    use secrecy::ExposeSecret;

    fn load_env(pairs: &[(&str, &str)]) -> Result<crate::config::Config, crate::config::ConfigError> {
        load(&Sources {
            file: None,
            env: Env::from_pairs(pairs.iter().copied()),
        })
    }

    #[test]
    fn each_runtime_name_maps_to_its_protocol() {
        let cat = catalogue().unwrap();
        for (kind, expected) in [
            ("openai", "openai"),
            ("vllm", "openai"),
            ("ollama", "openai"),
            ("llamacpp", "openai"),
            ("tgi", "openai"),
            ("sglang", "openai"),
            ("localai", "openai"),
            ("anthropic", "anthropic"),
            ("gemini", "gemini"),
            ("azure", "azure"),
            ("Groq", "openai"),
        ] {
            assert_eq!(protocol(kind, &cat).as_deref(), Some(expected), "{kind}");
        }
        assert_eq!(protocol("node_pool", &cat), None);
        assert_eq!(protocol("triton", &cat), None);
    }

    #[test]
    fn the_three_variables_make_one_provider_named_backend() {
        let cfg = load_env(&[
            ("BACKEND_KIND", "ollama"),
            ("BACKEND_BASE_URL", "http://ollama:11434/v1/"),
            ("MODEL_NAME", "llama3.2"),
        ])
        .unwrap();
        assert_eq!(cfg.providers.len(), 1);
        let p = &cfg.providers[0];
        assert_eq!(p.id.as_str(), BACKEND_ID);
        assert_eq!(p.kind, "openai");
        assert_eq!(p.base_url, "http://ollama:11434/v1");
        assert_eq!(p.models, ["llama3.2"]);
        assert!(p.api_key.is_none());
    }

    #[test]
    fn backend_kind_alone_is_refused_naming_the_missing_variable() {
        let err = load_env(&[("BACKEND_KIND", "vllm")]).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert!(
            err.problems[0].contains("(BACKEND_BASE_URL) is required when backend.kind (BACKEND_KIND) is set"),
            "{err}"
        );
    }

    #[test]
    fn backend_base_url_alone_is_refused_naming_the_missing_variable() {
        let err = load_env(&[("BACKEND_BASE_URL", "http://vllm:8000/v1")]).unwrap_err();
        assert!(err.problems[0].contains("BACKEND_KIND) is required"), "{err}");
        assert!(err.problems[0].contains("llamacpp"), "lists the known kinds: {err}");
    }

    #[test]
    fn an_unknown_backend_kind_is_refused_with_the_known_ones() {
        let err = load_env(&[("BACKEND_KIND", "triton"), ("BACKEND_BASE_URL", "http://t:8000/v1")]).unwrap_err();
        assert!(err.problems[0].contains("unknown kind `triton`"), "{err}");
        assert!(err.problems[0].contains("sglang"), "{err}");
    }

    #[test]
    fn a_bad_backend_base_url_is_refused_like_any_provider_url() {
        let err = load_env(&[("BACKEND_KIND", "vllm"), ("BACKEND_BASE_URL", "vllm:8000")]).unwrap_err();
        assert!(
            err.problems
                .iter()
                .any(|p| p.contains("`backend`") && p.contains("http://")),
            "{err}"
        );
    }

    #[test]
    fn model_name_alone_warns_and_enables_nothing() {
        let cfg = load_env(&[("MODEL_NAME", "llama3.2")]).unwrap();
        assert!(cfg.providers.is_empty());
        assert!(
            cfg.warnings.iter().any(|w| w.contains("MODEL_NAME")),
            "{:?}",
            cfg.warnings
        );
    }

    #[test]
    fn without_model_name_the_backend_serves_any_model() {
        let cfg = load_env(&[("BACKEND_KIND", "tgi"), ("BACKEND_BASE_URL", "http://tgi:80/v1")]).unwrap();
        assert_eq!(cfg.providers[0].models, ["*"]);
    }

    #[test]
    fn backend_api_key_is_sent_as_the_providers_key() {
        let cfg = load_env(&[
            ("BACKEND_KIND", "openai"),
            ("BACKEND_BASE_URL", "https://api.example.com/v1"),
            ("BACKEND_API_KEY", "sk-b"),
        ])
        .unwrap();
        let key = cfg.providers[0].api_key.as_ref().unwrap();
        assert_eq!(key.expose_secret(), "sk-b");
    }

    #[test]
    fn catalogue_base_url_variables_still_work_beside_it() {
        let cfg = load_env(&[
            ("BACKEND_KIND", "sglang"),
            ("BACKEND_BASE_URL", "http://sglang:30000/v1"),
            ("MODEL_NAME", "qwen"),
            ("VLLM_BASE_URL", "http://vllm:8000/v1"),
        ])
        .unwrap();
        let ids: Vec<&str> = cfg.providers.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, [BACKEND_ID, "vllm"], "the backend ranks first");
    }

    #[test]
    fn a_providers_entry_named_backend_keeps_its_settings_and_its_toggle() {
        let env = Env::from_pairs([
            ("BACKEND_KIND", "vllm"),
            ("BACKEND_BASE_URL", "http://v/v1"),
            ("MODEL_NAME", "m"),
        ]);
        let cfg = crate::config::load_str(
            "providers: [{id: backend, kind: anthropic, base_url: \"http://a\", max_concurrency: 4, priority: 7}]\n",
            &env,
        )
        .unwrap();
        let p = &cfg.providers[0];
        assert_eq!((p.kind.as_str(), p.base_url.as_str()), ("openai", "http://v/v1"));
        assert_eq!((p.max_concurrency, p.priority), (Some(4), 7));
        assert_eq!(p.models, ["m"]);
        // The admin API turns a provider off through a bare entry with its id.
        let off = crate::config::load_str("providers: [{id: backend, enabled: false}]\n", &env).unwrap();
        assert!(off.providers.is_empty());
    }
}
