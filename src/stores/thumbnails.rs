//! Memory thumbnails: a small JPEG or WebP per memory, for gallery pages.
//!
//! A thumbnail comes with `uploads_begin` (kept under the upload's
//! provisional memory id, counted in its reservation, and the memory's when
//! it commits) or is set later with `memories_set_thumbnail`. Thumbnails
//! live in their own stable map keyed by memory id, never in the memory
//! record, and count against the stored bytes of the principal who gave
//! them, in whole blocks as uploads do (`charged_bytes`). What an upload
//! was begun with is kept by session id beside the session record (not in
//! it: every chunk decodes that record), until the record is pruned.

use crate::candid_storable;
use crate::error::UploadError;
use crate::limits::charged_bytes;
use crate::stable_memory::Vm;
use crate::types::{MemoryItemId, SessionId, Thumbnail};
use candid::{CandidType, Principal};
use ic_stable_structures::{Memory, StableBTreeMap};
use serde::Deserialize;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

pub use crate::limits::MAX_THUMBNAIL_BYTES;

/// The MIME types a thumbnail may have.
pub const JPEG: &str = "image/jpeg";
pub const WEBP: &str = "image/webp";

fn invalid(reason: String) -> UploadError {
    UploadError::InvalidArgument { reason }
}

/// Whether `bytes` start as a JPEG file does (SOI marker, then a marker).
pub fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// Whether `bytes` start as a WebP file does: `RIFF`, the chunk size, `WEBP`.
pub fn is_webp(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP"
}

/// Checks a thumbnail's size, type and magic bytes.
pub fn check(thumbnail: &Thumbnail) -> Result<(), UploadError> {
    let bytes = thumbnail.bytes.as_slice();
    if bytes.len() > MAX_THUMBNAIL_BYTES {
        return Err(invalid(format!(
            "the thumbnail is {} bytes, more than the {MAX_THUMBNAIL_BYTES} a thumbnail may have",
            bytes.len()
        )));
    }
    let (is_declared_type, what) = match thumbnail.mime_type.as_str() {
        JPEG => (is_jpeg(bytes), "a JPEG (FF D8 FF ...)"),
        WEBP => (is_webp(bytes), "a WebP (RIFF <size> WEBP ...)"),
        _ => {
            return Err(invalid(format!(
                "a thumbnail's mime_type must be {JPEG} or {WEBP}"
            )))
        }
    };
    if !is_declared_type {
        return Err(invalid(format!(
            "the thumbnail is declared {} but its bytes are not {what}",
            thumbnail.mime_type
        )));
    }
    Ok(())
}

/// Bytes a thumbnail of `byte_len` bytes counts against the quotas.
pub fn charge(byte_len: u64) -> u64 {
    charged_bytes(byte_len)
}

/// What is kept of the thumbnail an upload was begun with: enough to tell
/// a retried `uploads_begin` from another request and to charge it, not
/// the bytes.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ThumbnailRef {
    pub mime_type: String,
    pub byte_len: u64,
    /// SHA-256 of the bytes.
    pub sha256: ByteBuf,
}

candid_storable!(ThumbnailRef);

impl ThumbnailRef {
    pub fn of(thumbnail: &Thumbnail) -> Self {
        Self {
            mime_type: thumbnail.mime_type.clone(),
            byte_len: thumbnail.bytes.len() as u64,
            sha256: ByteBuf::from(Sha256::digest(&thumbnail.bytes).to_vec()),
        }
    }

    pub fn charge(&self) -> u64 {
        charge(self.byte_len)
    }
}

/// A thumbnail as stored, with the principal whose quota it counts in.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StoredThumbnail {
    pub thumbnail: Thumbnail,
    pub charged_to: Principal,
}

candid_storable!(StoredThumbnail);

impl StoredThumbnail {
    pub fn charge(&self) -> u64 {
        charge(self.thumbnail.bytes.len() as u64)
    }
}

/// Thumbnails by memory id (provisional ones for uploads in progress),
/// and what each upload was begun with, by session id.
pub struct ThumbnailStore<M: Memory> {
    map: StableBTreeMap<MemoryItemId, StoredThumbnail, Vm<M>>,
    begun_with: StableBTreeMap<SessionId, ThumbnailRef, Vm<M>>,
}

impl<M: Memory + Clone> ThumbnailStore<M> {
    /// `map`: memory -> thumbnail; `begun_with`: session -> the thumbnail
    /// its upload was begun with.
    pub fn init(map: Vm<M>, begun_with: Vm<M>) -> Self {
        Self {
            map: StableBTreeMap::init(map),
            begun_with: StableBTreeMap::init(begun_with),
        }
    }
}

impl<M: Memory> ThumbnailStore<M> {
    pub fn get(&self, memory_id: MemoryItemId) -> Option<StoredThumbnail> {
        self.map.get(&memory_id)
    }

    /// Stores `thumbnail` for `memory_id`; the one it replaces, if any.
    pub fn insert(
        &mut self,
        memory_id: MemoryItemId,
        thumbnail: StoredThumbnail,
    ) -> Option<StoredThumbnail> {
        self.map.insert(memory_id, thumbnail)
    }

    pub fn remove(&mut self, memory_id: MemoryItemId) -> Option<StoredThumbnail> {
        self.map.remove(&memory_id)
    }

    pub fn len(&self) -> u64 {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The thumbnail session `sid` was begun with, if any.
    pub fn begun_with(&self, sid: SessionId) -> Option<ThumbnailRef> {
        self.begun_with.get(&sid)
    }

    pub fn set_begun_with(&mut self, sid: SessionId, thumbnail: ThumbnailRef) {
        self.begun_with.insert(sid, thumbnail);
    }

    /// Forgets what a pruned session was begun with.
    pub fn forget_session(&mut self, sid: SessionId) {
        self.begun_with.remove(&sid);
    }

    /// Sessions whose thumbnail is remembered.
    pub fn sessions_len(&self) -> u64 {
        self.begun_with.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thumb(mime_type: &str, bytes: &[u8]) -> Thumbnail {
        Thumbnail {
            mime_type: mime_type.into(),
            bytes: ByteBuf::from(bytes.to_vec()),
        }
    }

    #[test]
    fn magic_bytes_must_match_the_declared_type() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10];
        let webp = *b"RIFF\x24\0\0\0WEBPVP8 ";
        assert_eq!(check(&thumb(JPEG, &jpeg)), Ok(()));
        assert_eq!(check(&thumb(WEBP, &webp)), Ok(()));
        assert_eq!(check(&thumb(JPEG, &[0xFF, 0xD8, 0xFF])), Ok(()));
        let refused = [
            thumb(JPEG, &webp),
            thumb(WEBP, &jpeg),
            thumb(JPEG, &[0xFF, 0xD8]),
            thumb(JPEG, b""),
            thumb(WEBP, b"RIFF\0\0\0\0WEB"),
            thumb(WEBP, b"RIFX\0\0\0\0WEBP"),
            thumb("image/png", b"\x89PNG\r\n\x1a\n"),
            thumb("image/png", &jpeg),
            thumb("IMAGE/JPEG", &jpeg),
            thumb("", &jpeg),
        ];
        for t in refused {
            assert!(
                matches!(check(&t), Err(UploadError::InvalidArgument { .. })),
                "{t:?}"
            );
        }
    }

    #[test]
    fn at_most_32_kib() {
        let mut bytes = vec![0u8; MAX_THUMBNAIL_BYTES];
        bytes[..3].copy_from_slice(&[0xFF, 0xD8, 0xFF]);
        assert_eq!(check(&thumb(JPEG, &bytes)), Ok(()));
        bytes.push(0);
        let Err(UploadError::InvalidArgument { reason }) = check(&thumb(JPEG, &bytes)) else {
            panic!("a thumbnail over 32 KiB passed");
        };
        assert!(reason.contains("32769 bytes"), "{reason}");
    }

    #[test]
    fn charged_in_whole_blocks() {
        assert_eq!(charge(3), 4096);
        assert_eq!(charge(4097), 8192);
        assert_eq!(charge(MAX_THUMBNAIL_BYTES as u64), 32 * 1024);
    }
}
