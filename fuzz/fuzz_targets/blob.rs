//! Fuzz target: see [`ferrokms_fuzz::checks::blob`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrokms_fuzz::checks::blob::check(data));
