//! The config loader: any text either loads or reports problems; it never panics.
#![no_main]

use ai_gateway::config::{Env, load_str};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let env = Env::from_pairs([("FUZZ_KEY", "value"), ("MAX_RETRIES", "2")]);
    if let Err(e) = load_str(text, &env) {
        assert!(!e.problems.is_empty());
    }
});
