//! Operation sequences against the model (`backend::fuzz::upload_ops`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| backend::fuzz::upload_ops(data));
