//! The request peek: any bytes either parse or give a 400-able error, never a panic; a body that
//! parses can have its model spliced, stream usage requested and its fallback lists removed, and
//! stays valid JSON (without the lists, every other member as it was).
#![no_main]

use ai_gateway::dialects::{EmbeddingsPeek, FALLBACK_MEMBERS, Peek, remove_fallbacks, request_stream_usage, splice_model};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = EmbeddingsPeek::parse(data);
    let Ok(peek) = Peek::chat(data) else { return };
    let body = Bytes::copy_from_slice(data);
    let spliced = splice_model(&body, "spliced/\"model\"").expect("a parsed body has a model to splice");
    let with_usage = request_stream_usage(&body, &peek).expect("usage can be requested");
    let stripped = remove_fallbacks(&body).expect("a parsed body is an object to remove members from");
    // The peek reads only what it needs: a body it accepts may still hold what a full parse
    // refuses (a number like 1e999 overflows f64), which splicing leaves as it was.
    if serde_json::from_slice::<serde_json::Value>(data).is_err() {
        return;
    }
    let value: serde_json::Value = serde_json::from_slice(&spliced).expect("splicing keeps the body valid JSON");
    assert_eq!(value["model"], "spliced/\"model\"");
    let value: serde_json::Value = serde_json::from_slice(&with_usage).expect("still valid JSON");
    assert_eq!(value["stream_options"]["include_usage"], true);
    let mut want: serde_json::Value = serde_json::from_slice(data).expect("checked above");
    if let Some(members) = want.as_object_mut() {
        FALLBACK_MEMBERS.iter().for_each(|m| drop(members.remove(*m)));
    }
    let got: serde_json::Value = serde_json::from_slice(&stripped).expect("removal keeps the body valid JSON");
    assert_eq!(got, want, "only the fallback lists are gone");
});
