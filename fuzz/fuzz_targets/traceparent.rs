//! `traceparent` and `tracestate` parsing never panics, and what parses formats back to a
//! header that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtx_monitoring::trace::{TraceParent, TraceState};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(tp) = TraceParent::parse(text) {
        assert_eq!(TraceParent::parse(&tp.to_string()), Some(tp));
    }
    if let Some(ts) = TraceState::parse(text) {
        assert_eq!(TraceState::parse(&ts.to_string()), Some(ts));
    }
});
