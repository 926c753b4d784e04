//! The decision engine (seed 004): PASS / FAIL / NEEDS_INFO with reasons and evidence.
//!
//! Rules over the document decide wherever they can (a missing required field is NEEDS_INFO, a
//! void or self-contradicting document is FAIL, whatever the model says). Otherwise the model's
//! structured answer decides, once validated; when it is not valid JSON of the agreed shape, the
//! rules' verdict stands and the caller lowers the confidence.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// Which rule set applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// `invoice_check`.
    Invoice,
    /// `document_review`.
    Document,
}

/// The three outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// Everything required is there and consistent.
    Pass,
    /// Void, duplicate, or contradicting itself.
    Fail,
    /// Something required is missing.
    NeedsInfo,
}

/// The `decision` object of an `/ai/task` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Decision {
    /// The verdict.
    pub decision: Verdict,
    /// Why, in short sentences.
    pub reasons: Vec<String>,
    /// Field names or quotes from the document that support it.
    pub evidence: Vec<String>,
    /// Whether the model's structured answer was valid (if not, the rules alone decided).
    #[serde(skip)]
    pub model_answer_valid: bool,
}

/// What the model is asked to return.
#[derive(Debug, Deserialize)]
struct ModelAnswer {
    decision: Verdict,
    #[serde(default)]
    reasons: Vec<String>,
    #[serde(default)]
    evidence: Vec<String>,
}

/// The rules' findings about a document.
#[derive(Debug, Default)]
struct Findings {
    /// Fields found (evidence).
    present: Vec<&'static str>,
    /// Required fields missing.
    missing: Vec<&'static str>,
    /// Hard problems.
    problems: Vec<String>,
}

#[expect(
    clippy::expect_used,
    reason = "the patterns are literals in this file; every one is exercised by the tests below"
)]
fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid literal pattern")
}

static AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?:-?\s?[$€£]\s?-?\d[\d,]*(?:\.\d+)?|-?\d[\d,]*(?:\.\d+)?\s?(?:usd|eur|gbp|dollars|euros)\b|\b(?:total|amount|balance)\b[^\n\d-]{0,20}-?\d[\d,]*(?:\.\d+)?)",
    )
});
static NUMBER: LazyLock<Regex> = LazyLock::new(|| re(r"-?\d[\d,]*(?:\.\d+)?"));
static DUE: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\b(?:due|payable by|payment terms|net\s?\d+)\b"));
static INVOICE_NO: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\binvoice\s*(?:#|no\.?|number|id)\s*:?\s*[a-z0-9-]+"));
static ISSUER: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)\b(?:from|issued by|vendor|seller|supplier|bill to|billed to)\b"));
static VOID: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\b(?:void|cancelled|canceled|duplicate)\b"));
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:,\s*\d{4})?)",
    )
});
static SIGNED: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\b(?:signed|signature|/s/)\b"));
static PARTIES: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\b(?:between|parties|party|by and among)\b"));
static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)(?:\bTBD\b|\bTODO\b|lorem ipsum|\[(?:name|date|insert[^\]]*)\]|_{5,})"));

fn invoice_findings(text: &str) -> Findings {
    let mut f = Findings::default();
    let mut check = |found: bool, field: &'static str, required: bool| {
        if found {
            f.present.push(field);
        } else if required {
            f.missing.push(field);
        }
    };
    let amounts: Vec<&str> = AMOUNT.find_iter(text).map(|m| m.as_str()).collect();
    check(!amounts.is_empty(), "amount", true);
    check(DUE.is_match(text), "due", true);
    check(INVOICE_NO.is_match(text), "invoice_number", false);
    check(ISSUER.is_match(text), "issuer", false);
    check(DATE.is_match(text), "date", false);
    if text.to_ascii_lowercase().contains("total") {
        f.present.push("total");
    }
    if let Some(word) = VOID.find(text) {
        f.problems.push(format!("the invoice is marked `{}`", word.as_str()));
    }
    let negative = amounts
        .iter()
        .any(|a| a.trim_start().starts_with('-') || NUMBER.find(a).is_some_and(|n| n.as_str().starts_with('-')));
    if negative {
        f.problems.push("the invoice states a negative amount".into());
    }
    if !INVOICE_NO.is_match(text) && !ISSUER.is_match(text) {
        f.missing.push("issuer or invoice number");
    }
    f
}

fn document_findings(text: &str) -> Findings {
    let mut f = Findings::default();
    for (found, field) in [
        (SIGNED.is_match(text), "signature"),
        (PARTIES.is_match(text), "parties"),
        (DATE.is_match(text), "date"),
    ] {
        if found {
            f.present.push(field);
        } else {
            f.missing.push(field);
        }
    }
    if let Some(p) = PLACEHOLDER.find(text) {
        f.problems
            .push(format!("the document still contains the placeholder `{}`", p.as_str()));
    }
    if text.split_whitespace().count() < 20 {
        f.missing.push("enough content to review (fewer than 20 words)");
    }
    f
}

/// Parses the model's answer: a JSON object, possibly inside a ```json fence or surrounded by prose.
fn parse_model_answer(answer: &str) -> Option<ModelAnswer> {
    let start = answer.find('{')?;
    let end = answer.rfind('}')?;
    serde_json::from_str(answer.get(start..=end)?).ok()
}

/// Decides for `document` given the model's `answer`.
pub fn decide(kind: DecisionKind, document: &str, answer: &str) -> Decision {
    let findings = match kind {
        DecisionKind::Invoice => invoice_findings(document),
        DecisionKind::Document => document_findings(document),
    };
    let model = parse_model_answer(answer);
    let model_answer_valid = model.is_some();
    let evidence: Vec<String> = findings.present.iter().map(|s| (*s).to_owned()).collect();
    // Hard problems and missing fields are facts about the document: the rules decide.
    if !findings.problems.is_empty() {
        return Decision {
            decision: Verdict::Fail,
            reasons: findings.problems,
            evidence,
            model_answer_valid,
        };
    }
    if !findings.missing.is_empty() {
        let reasons = findings.missing.iter().map(|m| format!("missing: {m}")).collect();
        return Decision {
            decision: Verdict::NeedsInfo,
            reasons,
            evidence,
            model_answer_valid,
        };
    }
    match model {
        Some(m) => {
            let mut reasons = m.reasons;
            if reasons.is_empty() {
                reasons.push("the model gave no reasons".into());
            }
            let mut all_evidence = evidence;
            all_evidence.extend(m.evidence.into_iter().take(10));
            Decision {
                decision: m.decision,
                reasons,
                evidence: all_evidence,
                model_answer_valid,
            }
        }
        None => {
            let reason = match kind {
                DecisionKind::Invoice => "key financial fields present in document",
                DecisionKind::Document => "signed, dated, and names its parties",
            };
            Decision {
                decision: Verdict::Pass,
                reasons: vec![reason.to_owned()],
                evidence,
                model_answer_valid,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD_INVOICE: &str =
        "Invoice #INV-1042 from Acme Corp. Services rendered. Total amount: $5,000. Payment due: March 30, 2026.";

    #[test]
    fn complete_invoice_passes_on_rules_when_the_model_answer_is_not_json() {
        let d = decide(DecisionKind::Invoice, GOOD_INVOICE, "Looks fine to me.");
        assert_eq!(d.decision, Verdict::Pass);
        assert!(!d.model_answer_valid);
        for field in ["amount", "due", "total", "invoice_number"] {
            assert!(d.evidence.iter().any(|e| e == field), "{field} in {:?}", d.evidence);
        }
    }

    #[test]
    fn invoice_without_amount_needs_info_whatever_the_model_says() {
        let d = decide(
            DecisionKind::Invoice,
            "Invoice #7 from Acme. Payment due next week.",
            r#"{"decision":"PASS"}"#,
        );
        assert_eq!(d.decision, Verdict::NeedsInfo);
        assert!(d.reasons.iter().any(|r| r.contains("amount")));
    }

    #[test]
    fn invoice_without_due_date_needs_info() {
        let d = decide(DecisionKind::Invoice, "Invoice #7 from Acme. Total $10.", "");
        assert_eq!(d.decision, Verdict::NeedsInfo);
        assert!(d.reasons.iter().any(|r| r.contains("due")));
    }

    #[test]
    fn invoice_without_issuer_or_number_needs_info() {
        let d = decide(DecisionKind::Invoice, "Total $10, due tomorrow.", "");
        assert_eq!(d.decision, Verdict::NeedsInfo);
    }

    #[test]
    fn void_or_duplicate_invoice_fails() {
        let d = decide(
            DecisionKind::Invoice,
            &format!("{GOOD_INVOICE} VOID"),
            r#"{"decision":"PASS"}"#,
        );
        assert_eq!(d.decision, Verdict::Fail);
        let d = decide(DecisionKind::Invoice, &format!("DUPLICATE {GOOD_INVOICE}"), "");
        assert_eq!(d.decision, Verdict::Fail);
    }

    #[test]
    fn negative_amount_fails() {
        let d = decide(
            DecisionKind::Invoice,
            "Invoice #9 from Acme. Total: -$300. Due 2026-01-01.",
            "",
        );
        assert_eq!(d.decision, Verdict::Fail);
    }

    #[test]
    fn valid_model_answer_decides_when_rules_are_satisfied() {
        let answer = "```json\n{\"decision\":\"FAIL\",\"reasons\":[\"line items do not add up\"],\"evidence\":[\"$5,000\"]}\n```";
        let d = decide(DecisionKind::Invoice, GOOD_INVOICE, answer);
        assert_eq!(d.decision, Verdict::Fail);
        assert!(d.model_answer_valid);
        assert_eq!(d.reasons, ["line items do not add up"]);
        assert!(d.evidence.iter().any(|e| e == "$5,000"));
    }

    #[test]
    fn malformed_model_answer_is_not_valid() {
        for answer in ["", "PASS", r#"{"decision":"MAYBE"}"#, r#"{"reasons":[]}"#, "{not json}"] {
            assert!(
                !decide(DecisionKind::Invoice, GOOD_INVOICE, answer).model_answer_valid,
                "{answer}"
            );
        }
    }

    const CONTRACT: &str = "This agreement is made on 2026-01-15 between Acme Corp and Beta LLC. The parties agree \
        to the terms below for the supply of services during the year. Signed by both parties on the date above.";

    #[test]
    fn signed_dated_contract_with_parties_passes() {
        assert_eq!(decide(DecisionKind::Document, CONTRACT, "ok").decision, Verdict::Pass);
    }

    #[test]
    fn unsigned_document_needs_info() {
        let d = decide(DecisionKind::Document, &CONTRACT.replace("Signed", "Agreed"), "");
        assert_eq!(d.decision, Verdict::NeedsInfo);
        assert!(d.reasons.iter().any(|r| r.contains("signature")));
    }

    #[test]
    fn document_with_placeholders_fails() {
        let d = decide(DecisionKind::Document, &format!("{CONTRACT} Effective date: TBD."), "");
        assert_eq!(d.decision, Verdict::Fail);
    }

    #[test]
    fn very_short_document_needs_info() {
        assert_eq!(
            decide(DecisionKind::Document, "Signed between A and B on 2026-01-01.", "").decision,
            Verdict::NeedsInfo
        );
    }

    #[test]
    fn verdicts_serialize_as_seed_004_writes_them() {
        assert_eq!(serde_json::to_string(&Verdict::NeedsInfo).unwrap(), "\"NEEDS_INFO\"");
        assert_eq!(serde_json::to_string(&Verdict::Pass).unwrap(), "\"PASS\"");
    }
}
