//! Empty: the suite lives in `tests/pocketic.rs`.
