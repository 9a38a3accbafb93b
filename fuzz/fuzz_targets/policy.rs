//! Fuzz target: see [`ferrokms_fuzz::checks::policy`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrokms_fuzz::checks::policy::check(data));
