//! The upload endpoints, one file each: `begin`, `put_chunk`, `finish`,
//! `abort`, and the reads of uploads in progress in `status`. Each
//! function takes the state, the caller and the time, and answers its own
//! error type. `sessions` holds what they share; `compat` is the seed's
//! adapter for the original session API.

pub mod abort;
pub mod begin;
pub mod compat;
pub mod finish;
pub mod put_chunk;
pub mod sessions;
pub mod status;

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod thumbnail_tests;

pub use abort::{abort, AbortUploadError};
pub use begin::{begin, BeginUploadError, BeginUploadQuota};
pub use finish::{finish, FinishUploadError, FinishUploadQuota};
pub use put_chunk::{put_chunk, PutChunkError, PutChunkQuota};
pub use status::{chunk_sha256, open_uploads, status, ChunkHashError, UploadStatusError};

// The domain's vocabulary, for clients of the crate (the harness, the
// benchmark, the tools) that name it through `upload`.
pub use crate::blob_store::{BlobId, BlobStore, StableBlobSink};
pub use crate::error::{Quota, UploadError};
pub use crate::types::*;
