//! cargo-fuzz's entry to [`livecount_fuzz::parse_body`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| livecount_fuzz::parse_body(data));
