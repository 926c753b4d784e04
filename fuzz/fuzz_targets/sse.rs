//! The SSE framer: however the input is split into chunks, what it hands on (plus its final tail)
//! is exactly the input, in order, cut only at event boundaries; the event iterator never panics.
#![no_main]

use ai_gateway::dialects::sse::{EventFramer, events, first_event_is_error};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split_seed, input)) = data.split_first() else { return };
    let step = usize::from(split_seed % 16) + 1;
    let mut framer = EventFramer::default();
    let mut out = Vec::new();
    for chunk in input.chunks(step) {
        if let Some(run) = framer.push(Bytes::copy_from_slice(chunk)) {
            assert!(run.ends_with(b"\n"), "runs end at an event boundary");
            for event in events(&run) {
                assert!(event.range.end <= run.len());
            }
            out.extend_from_slice(&run);
        }
    }
    if let Some(tail) = framer.finish() {
        let _ = events(&tail).count();
        out.extend_from_slice(&tail);
    }
    assert_eq!(out, input);
    let _ = first_event_is_error(input);
});
