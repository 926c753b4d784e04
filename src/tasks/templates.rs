//! Task types: a prompt template each, built in and extendable from the config (`tasks:`).

use std::collections::BTreeMap;

use serde::Deserialize;

/// One task type.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// The system prompt.
    #[serde(default)]
    pub system: Option<String>,
    /// The user prompt; `{text}` is replaced by the request's text.
    pub prompt: String,
    /// Which decision rules apply to the answer, if any.
    #[serde(default)]
    pub decision: Option<super::DecisionKind>,
}

const STRUCTURED: &str = "Answer with a single JSON object and nothing else: \
{\"decision\": \"PASS\" | \"FAIL\" | \"NEEDS_INFO\", \"reasons\": [short strings], \"evidence\": [short quotes or field names from the document]}.";

/// The built-in task types (seed 004's and the issue's), overridable by name in the config.
pub fn builtin_tasks() -> BTreeMap<String, TaskSpec> {
    let plain = |prompt: &str| TaskSpec {
        system: None,
        prompt: prompt.to_owned(),
        decision: None,
    };
    BTreeMap::from([
        (
            "summarize".to_owned(),
            plain("Summarize the following text in two or three sentences.\n\n{text}"),
        ),
        (
            "classify".to_owned(),
            plain(
                "Classify the following text: name its category (for example invoice, contract, complaint, question, report) and its sentiment, one line each.\n\n{text}",
            ),
        ),
        (
            "extract".to_owned(),
            plain(
                "Extract the key facts of the following text (names, dates, amounts, identifiers) as a JSON object.\n\n{text}",
            ),
        ),
        (
            "translate".to_owned(),
            plain("Translate the following text into English. If it is English, translate it into French.\n\n{text}"),
        ),
        (
            "invoice_check".to_owned(),
            TaskSpec {
                system: Some(format!(
                    "You check invoices. PASS: the invoice states an amount, a due date and who issued it, and nothing contradicts itself. FAIL: it is void, a duplicate, or its figures are wrong. NEEDS_INFO: something required is missing. {STRUCTURED}"
                )),
                prompt: "Check this invoice:\n\n{text}".to_owned(),
                decision: Some(super::DecisionKind::Invoice),
            },
        ),
        (
            "document_review".to_owned(),
            TaskSpec {
                system: Some(format!(
                    "You review documents such as contracts and policies. PASS: complete and signed, with parties and a date. FAIL: a draft with placeholders or contradictions. NEEDS_INFO: something required is missing. {STRUCTURED}"
                )),
                prompt: "Review this document:\n\n{text}".to_owned(),
                decision: Some(super::DecisionKind::Document),
            },
        ),
    ])
}

/// The user prompt with `{text}` filled in (appended when the template has no placeholder).
pub fn render_prompt(spec: &TaskSpec, text: &str) -> String {
    if spec.prompt.contains("{text}") {
        spec.prompt.replace("{text}", text)
    } else {
        format!("{}\n\n{text}", spec.prompt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_task_types_are_built_in() {
        let tasks = builtin_tasks();
        for t in [
            "summarize",
            "classify",
            "extract",
            "translate",
            "invoice_check",
            "document_review",
        ] {
            assert!(tasks.contains_key(t), "{t}");
        }
        assert!(tasks["invoice_check"].decision.is_some());
        assert!(tasks["summarize"].decision.is_none());
    }

    #[test]
    fn text_fills_the_placeholder_or_is_appended() {
        let spec = TaskSpec {
            system: None,
            prompt: "Say: {text}".into(),
            decision: None,
        };
        assert_eq!(render_prompt(&spec, "hi"), "Say: hi");
        let spec = TaskSpec {
            system: None,
            prompt: "Summarize".into(),
            decision: None,
        };
        assert_eq!(render_prompt(&spec, "hi"), "Summarize\n\nhi");
    }
}
