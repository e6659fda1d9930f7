//! The upload domain's stable stores, below `State`: capsules, committed
//! memories, the accounting of usage and limits, incremental hashing of
//! uploads in progress, thumbnails, and the bucket's settings (the index
//! that manages the canister, if any).

pub mod accounting;
pub mod bucket;
pub mod capsules;
pub mod checksum;
pub mod hashing;
pub mod memories;
pub mod thumbnails;
