//! The upload domain: capsules, upload sessions on top of the generic
//! session service, the stable blob store their bytes go to, incremental
//! SHA-256 verification, committed memories and their thumbnails.

pub mod accounting;
pub mod blob_store;
pub mod capsule_memory_admin;
pub mod capsules;
pub mod checksum;
pub mod compat;
pub mod error;
pub mod hashing;
pub mod limits;
pub mod maintenance;
pub mod memories;
pub mod service;
pub mod shares;
pub mod sharing;
pub mod sparse;
pub mod thumbnails;
pub mod types;

#[cfg(test)]
mod sharing_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod thumbnail_tests;

pub use blob_store::{BlobId, BlobStore, StableBlobSink};
pub use compat::SessionCompat;
pub use error::{Quota, UploadError};
pub use maintenance::MaintenanceReport;
pub use service::UploadService;
pub use shares::{ShareError, ShareLink};
pub use types::*;
