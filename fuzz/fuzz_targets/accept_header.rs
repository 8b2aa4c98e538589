//! `Accept` negotiation never panics on any header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtx_monitoring::metrics::Format;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Format::negotiate(Some(text));
});
