//! Candid argument decoding of every endpoint (`backend::testing::fuzz::candid_args`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| backend::testing::fuzz::candid_args(data));
