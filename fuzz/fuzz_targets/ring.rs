//! See `cloison_fuzz::ring`: the input, and the properties checked.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cloison_fuzz::ring::check(data);
});
