//! The upload domain's stable stores, below `State`: capsules, committed
//! memories, the accounting of usage and limits, incremental hashing of
//! uploads in progress, and thumbnails.

pub mod accounting;
pub mod capsules;
pub mod checksum;
pub mod hashing;
pub mod memories;
pub mod thumbnails;
