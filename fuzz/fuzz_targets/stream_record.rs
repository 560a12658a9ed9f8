//! cargo-fuzz's entry to [`livecount_fuzz::stream_record`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| livecount_fuzz::stream_record(data));
