//! `/ai/task` (seed 004): task types as prompt templates, and the decision engine that turns a
//! document plus the model's structured answer into PASS / FAIL / NEEDS_INFO.
//!
//! Depends on `domain` only; pure functions over text, no I/O, so every rule is unit-tested.

mod decision;
mod templates;

pub use decision::{Decision, DecisionKind, Verdict, decide};
pub use templates::{TaskSpec, builtin_tasks, render_prompt};
