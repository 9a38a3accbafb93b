//! Fuzz target: see [`ferrokms_fuzz::checks::sigv4_headers`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrokms_fuzz::checks::sigv4_headers::check(data));
