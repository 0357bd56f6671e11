//! `classify` over arbitrary frames at arbitrary capture points, with or without a tag
//! in packet metadata: it must not panic, and the capture filter must pass whatever it
//! reports.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cloison_fuzz::check(data);
});
