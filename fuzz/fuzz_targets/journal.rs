//! See `cloison_fuzz::journal`: the input, and the properties checked.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cloison_fuzz::journal::check(data);
});
