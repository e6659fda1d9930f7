//! Operation sequences against the model (`backend::testing::fuzz::upload_ops`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| backend::testing::fuzz::upload_ops(data));
