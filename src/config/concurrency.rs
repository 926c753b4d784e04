//! Concurrency caps and their queues: a provider's `max_concurrency` and `queue`, and
//! `nodes.max_concurrency_per_node`. (A route target's `max_concurrency` sits on `RouteTarget`.)
//!
//! The queue's defaults (256 waiting, 2 s) suit interactive traffic: a burst several times a
//! cap's size is absorbed, and a client still hears "overloaded" quickly enough to go elsewhere.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Most requests one queue holds (`queue.size`).
const MAX_QUEUE_SIZE: u32 = 1_000_000;

/// Longest `queue.max_wait_ms`: an hour, far beyond any request timeout.
const MAX_WAIT_MS: u64 = 3_600_000;

/// `queue:` — where requests over a cap wait. Nodes and route targets use their provider's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSettings {
    /// Requests that may wait at once; one more is refused at once (0: none waits).
    pub size: u32,
    /// Longest a request waits for a slot before it moves on to the next candidate.
    pub max_wait_ms: u64,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            size: 256,
            max_wait_ms: 2_000,
        }
    }
}

impl QueueSettings {
    /// `max_wait_ms` as a Duration.
    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms)
    }

    /// Problems with these values, each prefixed with `at`.
    pub(super) fn problems(&self, at: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.size > MAX_QUEUE_SIZE {
            problems.push(format!("{at}.queue.size: at most {MAX_QUEUE_SIZE}"));
        }
        if self.max_wait_ms > MAX_WAIT_MS {
            problems.push(format!("{at}.queue.max_wait_ms: at most {MAX_WAIT_MS} (an hour)"));
        }
        problems
    }
}

/// `nodes.max_concurrency_per_node`: `auto` (the node's slots where its runtime reports them:
/// llama.cpp's `/slots`, TGI's `max_concurrent_requests`) or a number for every node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PerNode {
    /// The runtime's own slot count; no cap for a node that reports none.
    #[default]
    Auto,
    /// This many requests per node.
    Fixed(u32),
}

impl PerNode {
    /// The cap of a node that reports `slots` (`None`: no cap).
    pub fn cap(self, slots: Option<u32>) -> Option<u32> {
        match self {
            Self::Auto => slots.filter(|s| *s > 0),
            Self::Fixed(n) => Some(n),
        }
    }
}

impl<'de> Deserialize<'de> for PerNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u32),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(0) => Err(serde::de::Error::custom(
                "max_concurrency_per_node: must be `auto` or at least 1",
            )),
            Raw::Number(n) => Ok(Self::Fixed(n)),
            Raw::Word(w) if w == "auto" => Ok(Self::Auto),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "max_concurrency_per_node: `{w}` is neither `auto` nor a number"
            ))),
        }
    }
}

// Written by hand because the `Deserialize` above is: the schema says what it accepts.
impl schemars::JsonSchema for PerNode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PerNode".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`auto` (the runtime's own slot count) or a number of requests per node, at least 1.",
            "anyOf": [{"const": "auto"}, {"type": "integer", "minimum": 1}],
            "default": "auto"
        })
    }
}

/// A `max_concurrency` of 0 would refuse every request: a problem naming `at`.
pub(super) fn cap_problem(at: &str, cap: Option<u32>) -> Option<String> {
    (cap == Some(0)).then(|| format!("{at}.max_concurrency: must be at least 1 (leave it out for no cap)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Nodes {
        max_concurrency_per_node: PerNode,
    }

    fn per_node(yaml: &str) -> Result<PerNode, String> {
        serde_yaml_ng::from_str::<Nodes>(&format!("max_concurrency_per_node: {yaml}"))
            .map(|n| n.max_concurrency_per_node)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn per_node_is_auto_or_a_positive_number() {
        assert_eq!(per_node("auto"), Ok(PerNode::Auto));
        assert_eq!(per_node("4"), Ok(PerNode::Fixed(4)));
        assert!(per_node("0").is_err());
        assert!(per_node("many").unwrap_err().contains("neither"));
        assert_eq!(PerNode::Auto.cap(Some(2)), Some(2));
        assert_eq!(
            PerNode::Auto.cap(Some(0)),
            None,
            "a node reporting no slots is not capped"
        );
        assert_eq!(PerNode::Auto.cap(None), None);
        assert_eq!(PerNode::Fixed(3).cap(None), Some(3));
    }

    #[test]
    fn the_documented_configuration_loads_and_zero_caps_are_refused() {
        let env = crate::config::Env::default();
        let yaml = "providers:
  - {id: openai, kind: openai, base_url: 'http://o/v1', max_concurrency: 64, queue: {size: 256, max_wait_ms: 2000}}
  - {id: local-vllm, kind: openai, base_url: 'http://v/v1'}
routes:
  - name: chat
    targets: [{provider: local-vllm, model: llama-3.1-8b, max_concurrency: 8}]
nodes:
  max_concurrency_per_node: auto
";
        let config = crate::config::load_str(yaml, &env).unwrap();
        let openai = config.providers.iter().find(|p| p.id.as_str() == "openai").unwrap();
        assert_eq!(openai.max_concurrency, Some(64));
        assert_eq!(openai.queue.size, 256);
        assert_eq!(config.settings.routes[0].targets[0].max_concurrency, Some(8));
        assert_eq!(config.settings.nodes.max_concurrency_per_node, PerNode::Auto);
        let zero = yaml
            .replace("max_concurrency: 64", "max_concurrency: 0")
            .replace("max_concurrency: 8}", "max_concurrency: 0}");
        let problems = crate::config::load_str(&zero, &env).unwrap_err().problems;
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("providers[0].max_concurrency"), "{problems:?}");
        assert!(
            problems[1].starts_with("routes[0] (`chat`).targets[0].max_concurrency"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_queue_takes_either_key_alone_and_checks_its_bounds() {
        let q: QueueSettings = serde_yaml_ng::from_str("{size: 8}").unwrap();
        assert_eq!((q.size, q.max_wait_ms), (8, 2_000));
        assert!(serde_yaml_ng::from_str::<QueueSettings>("{depth: 8}").is_err());
        let huge = QueueSettings {
            size: 2_000_000,
            max_wait_ms: 4_000_000,
        };
        assert_eq!(huge.problems("providers[0]").len(), 2);
        assert_eq!(
            cap_problem("x", Some(0)).unwrap(),
            "x.max_concurrency: must be at least 1 (leave it out for no cap)"
        );
        assert!(cap_problem("x", Some(1)).is_none());
    }
}
