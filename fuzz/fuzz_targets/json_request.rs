//! Fuzz target: see [`ferrokms_fuzz::checks::json_request`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrokms_fuzz::checks::json_request::check(data));
