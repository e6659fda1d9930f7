//! The `memories_*` endpoints but sharing (`crate::sharing`): reading committed memories back, listing a
//! capsule's, deleting them, and their thumbnails.

use crate::error::{Quota, UploadError};
use crate::limits::{charged_bytes, MAX_LIST_REPLY_BYTES, MAX_PAGE, MAX_READ_BYTES};
use crate::state::State;
use crate::stores::thumbnails::{self, StoredThumbnail};
use crate::types::*;
use crate::validate::signed_in;
use crate::{endpoint_error, quota_subset};
use candid::Principal;
use ic_stable_structures::Memory;
use serde_bytes::ByteBuf;

quota_subset! {
    /// The limit `memories_read` checks.
    pub enum ReadMemoryQuota {
        ReadBytes,
    }
}

quota_subset! {
    /// The limits `memories_set_thumbnail` checks.
    pub enum SetThumbnailQuota {
        StoredBytesPerCaller,
        TotalBytes,
    }
}

endpoint_error! {
    /// What `memories_get` can answer.
    pub enum GetMemoryError: UploadError for "memories_get" {
        MemoryNotFound { memory_id: MemoryItemId },
        NotAuthorized,
    }
}

endpoint_error! {
    /// What `memories_list` can answer.
    pub enum ListMemoriesError: UploadError for "memories_list" {
        CapsuleNotFound { capsule_id: CapsuleId },
        NotAuthorized,
    }
}

endpoint_error! {
    /// What `memories_read` can answer.
    pub enum ReadMemoryError: UploadError for "memories_read" {
        MemoryNotFound { memory_id: MemoryItemId },
        NotAuthorized,
        RangeOutOfBounds { offset: u64, length: u64, byte_len: u64 },
        QuotaExceeded { quota: ReadMemoryQuota, limit: u64, requested: u64 },
    }
}

endpoint_error! {
    /// What `memories_delete` can answer.
    pub enum DeleteMemoryError: UploadError for "memories_delete" {
        AnonymousCaller,
        MemoryNotFound { memory_id: MemoryItemId },
        NotAuthorized,
    }
}

endpoint_error! {
    /// What `memories_set_thumbnail` can answer.
    pub enum SetThumbnailError: UploadError for "memories_set_thumbnail" {
        AnonymousCaller,
        OutOfSpace,
        InvalidArgument { reason: String },
        MemoryNotFound { memory_id: MemoryItemId },
        NotAuthorized,
        QuotaExceeded { quota: SetThumbnailQuota, limit: u64, requested: u64 },
    }
}

/// A memory's record, thumbnail included, for its capsule's owner and
/// writers.
pub fn memory<M: Memory + Clone>(
    state: &State<M>,
    caller: Principal,
    memory_id: MemoryItemId,
) -> Result<MemoryRecord, GetMemoryError> {
    let mut record = readable_memory(state, caller, memory_id).map_err(GetMemoryError::narrow)?;
    record.thumbnail = thumbnail_of(state, memory_id);
    Ok(record)
}

/// A page of a capsule's memories with their thumbnails: at most `limit`,
/// and only as many as fit in `MAX_LIST_REPLY_BYTES` (always at least
/// one), so the reply stays under the 2 MiB limit whatever was asked for.
/// `next_after` is set whenever more follow.
pub fn list_memories<M: Memory + Clone>(
    state: &State<M>,
    caller: Principal,
    request: ListMemories,
) -> Result<MemoriesPage, ListMemoriesError> {
    state
        .capsules
        .writable_by(request.capsule_id, caller)
        .map_err(ListMemoriesError::narrow)?;
    let limit = request.limit.clamp(1, MAX_PAGE) as usize;
    let mut ids = state
        .memories
        .ids_in_capsule(request.capsule_id, request.after);
    let mut memories: Vec<MemoryRecord> = Vec::new();
    let mut bytes = LIST_PAGE_OVERHEAD_BYTES;
    let mut more = false;
    for memory_id in ids.by_ref() {
        if memories.len() == limit {
            more = true;
            break;
        }
        let Some(mut record) = state.memories.get(memory_id) else {
            continue;
        };
        record.thumbnail = thumbnail_of(state, memory_id);
        let size = encoded_bytes_bound(&record);
        if !memories.is_empty() && bytes + size > MAX_LIST_REPLY_BYTES {
            more = true;
            break;
        }
        bytes += size;
        memories.push(record);
    }
    let next_after = if more {
        memories.last().map(|m| m.memory_id)
    } else {
        None
    };
    Ok(MemoriesPage {
        memories,
        next_after,
    })
}

/// A byte range of a committed memory, at most `MAX_READ_BYTES`.
pub fn read<M: Memory + Clone>(
    state: &State<M>,
    caller: Principal,
    request: ReadRange,
) -> Result<ByteBuf, ReadMemoryError> {
    let read_range = || -> Result<ByteBuf, UploadError> {
        let record = readable_memory(state, caller, request.memory_id)?;
        if request.length > MAX_READ_BYTES {
            return Err(UploadError::QuotaExceeded {
                quota: Quota::ReadBytes,
                limit: MAX_READ_BYTES,
                requested: request.length,
            });
        }
        if request.offset.saturating_add(request.length) > record.byte_len {
            return Err(UploadError::RangeOutOfBounds {
                offset: request.offset,
                length: request.length,
                byte_len: record.byte_len,
            });
        }
        let mut buf = vec![0u8; request.length as usize];
        state
            .blobs
            .read(record.blob_id, request.offset, &mut buf)
            .expect("bug: a memory's blob is shorter than the memory");
        Ok(ByteBuf::from(buf))
    };
    read_range().map_err(ReadMemoryError::narrow)
}

/// Deletes a memory and frees its blob's space for reuse, its thumbnail's
/// quota, and its share links.
pub fn delete_memory<M: Memory + Clone>(
    state: &mut State<M>,
    caller: Principal,
    memory_id: MemoryItemId,
) -> Result<(), DeleteMemoryError> {
    let mut delete = || -> Result<(), UploadError> {
        signed_in(caller)?;
        let record = manageable_memory(state, caller, memory_id)?;
        state.memories.remove(memory_id);
        state
            .blobs
            .free(record.blob_id)
            .expect("bug: a memory's blob was already freed");
        state
            .accounting
            .unstore(record.uploaded_by, charged_bytes(record.byte_len));
        if let Some(thumbnail) = state.thumbnails.remove(memory_id) {
            state
                .accounting
                .unstore(thumbnail.charged_to, thumbnail.charge());
        }
        crate::sharing::serve::forget(state, &record);
        Ok(())
    };
    delete().map_err(DeleteMemoryError::narrow)
}

/// Sets (`Some`) or removes (`None`) a memory's thumbnail: its uploader or
/// its capsule's owner, as for deleting it. The thumbnail counts against
/// the caller's stored bytes; the one it replaces is released from whoever
/// it was charged to.
pub fn set_thumbnail<M: Memory + Clone>(
    state: &mut State<M>,
    caller: Principal,
    memory_id: MemoryItemId,
    thumbnail: Option<Thumbnail>,
) -> Result<(), SetThumbnailError> {
    let set = || -> Result<(), UploadError> {
        signed_in(caller)?;
        if let Some(thumbnail) = &thumbnail {
            // Removing takes no stable memory, so it works on a full subnet.
            state.ensure_room()?;
            thumbnails::check(thumbnail)?;
        }
        manageable_memory(state, caller, memory_id)?;
        let freed = state
            .thumbnails
            .get(memory_id)
            .map(|previous| (previous.charged_to, previous.charge()));
        let added = thumbnail
            .as_ref()
            .map(|t| thumbnails::charge(t.bytes.len() as u64));
        if let Some(bytes) = added {
            state.accounting.check_store(&caller, bytes, freed)?;
        }
        if let Some((holder, bytes)) = freed {
            state.accounting.unstore(holder, bytes);
        }
        match (thumbnail, added) {
            (Some(thumbnail), Some(bytes)) => {
                state.thumbnails.insert(
                    memory_id,
                    StoredThumbnail {
                        thumbnail,
                        charged_to: caller,
                    },
                );
                state.accounting.store(caller, bytes);
            }
            _ => {
                state.thumbnails.remove(memory_id);
            }
        }
        Ok(())
    };
    set().map_err(SetThumbnailError::narrow)
}

/// The record without its thumbnail, for its capsule's owner and writers.
fn readable_memory<M: Memory + Clone>(
    state: &State<M>,
    caller: Principal,
    memory_id: MemoryItemId,
) -> Result<MemoryRecord, UploadError> {
    let record = state
        .memories
        .get(memory_id)
        .ok_or(UploadError::MemoryNotFound { memory_id })?;
    state.capsules.writable_by(record.capsule_id, caller)?;
    Ok(record)
}

fn thumbnail_of<M: Memory + Clone>(state: &State<M>, memory_id: MemoryItemId) -> Option<Thumbnail> {
    state
        .thumbnails
        .get(memory_id)
        .map(|stored| stored.thumbnail)
}

/// The memory, if `caller` may manage it (delete it, set its thumbnail):
/// its uploader, even after its write access was revoked, or its
/// capsule's owner.
fn manageable_memory<M: Memory + Clone>(
    state: &State<M>,
    caller: Principal,
    memory_id: MemoryItemId,
) -> Result<MemoryRecord, UploadError> {
    let record = state
        .memories
        .get(memory_id)
        .ok_or(UploadError::MemoryNotFound { memory_id })?;
    // The uploader may always manage what it uploaded, even after its write
    // access was revoked: the memory is charged to its quota, and no other
    // principal's decision may hold that quota for ever. Writers may act
    // for the owner (a dapp canister, say): they manage only what they
    // uploaded; the owner manages anything.
    if caller != record.uploaded_by {
        let capsule = state.capsules.writable_by(record.capsule_id, caller)?;
        if caller != capsule.owner {
            return Err(UploadError::NotAuthorized);
        }
    }
    Ok(record)
}

/// Bytes of a `memories_list` reply besides its records: the Candid header
/// and type table, the `Ok` tag, the vector's length and `next_after`
/// (about 600 bytes), rounded up.
const LIST_PAGE_OVERHEAD_BYTES: usize = 1024;

/// At least as many bytes as `record` takes in a Candid reply: five
/// `nat64`s, a principal of at most 29 bytes, each text and blob with a
/// length of at most 5 bytes, the thumbnail's option tag.
pub(crate) fn encoded_bytes_bound(record: &MemoryRecord) -> usize {
    const LEB_LEN: usize = 5;
    let thumbnail = record
        .thumbnail
        .as_ref()
        .map_or(0, |t| LEB_LEN + t.mime_type.len() + LEB_LEN + t.bytes.len());
    5 * 8
        + (1 + LEB_LEN + 29)
        + (LEB_LEN + record.sha256.len())
        + (LEB_LEN + record.mime_type.len())
        + (LEB_LEN + record.name.len())
        + 1
        + thumbnail
}
