//! Capsules, committed memories and administration: the parts of the
//! upload service that are not about sessions in progress.

use super::blob_store::BLOB_BLOCK_BYTES;
use super::capsules::MAX_CAPSULE_NAME_BYTES;
use super::error::{Quota, UploadError};
use super::limits::{charged_bytes, Limits, MAX_LIST_REPLY_BYTES, MAX_PAGE, MAX_READ_BYTES};
use super::service::{check_text, policy, signed_in, UploadService};
use super::thumbnails::{self, StoredThumbnail};
use super::types::*;
use candid::Principal;
use ic_stable_structures::Memory;
use serde_bytes::ByteBuf;

impl<M: Memory + Clone> UploadService<M> {
    /// Creates a capsule owned by `caller`.
    pub fn create_capsule(
        &mut self,
        caller: Principal,
        now: u64,
        name: String,
    ) -> Result<Capsule, UploadError> {
        signed_in(caller)?;
        self.ensure_room()?;
        check_text("capsule name", &name, MAX_CAPSULE_NAME_BYTES)?;
        if self.accounting.capsule_creation_restricted() && !self.capsules.may_create(&caller) {
            return Err(UploadError::NotAuthorized);
        }
        let max = self.accounting.limits().max_capsules_per_owner;
        if self.capsules.count_owned(&caller, max as usize) >= max as usize {
            return Err(UploadError::QuotaExceeded {
                quota: Quota::CapsulesPerOwner,
                limit: u64::from(max),
                requested: u64::from(max) + 1,
            });
        }
        let capsule = Capsule {
            capsule_id: self.accounting.next_capsule_id(),
            name,
            owner: caller,
            writers: Vec::new(),
            created_at: now,
        };
        self.capsules.insert(capsule.clone());
        Ok(capsule)
    }

    pub fn capsule(
        &self,
        caller: Principal,
        capsule_id: CapsuleId,
    ) -> Result<Capsule, UploadError> {
        self.capsules.writable_by(capsule_id, caller)
    }

    pub fn my_capsules(
        &self,
        caller: Principal,
        after: Option<CapsuleId>,
        limit: u32,
    ) -> Vec<Capsule> {
        self.capsules
            .owned(&caller, after, limit.clamp(1, MAX_PAGE) as usize)
    }

    pub fn grant_write(
        &mut self,
        caller: Principal,
        capsule_id: CapsuleId,
        writer: Principal,
    ) -> Result<Capsule, UploadError> {
        signed_in(caller)?;
        self.ensure_room()?;
        let max = self.accounting.limits().max_writers_per_capsule;
        self.capsules.grant(capsule_id, caller, writer, max)
    }

    pub fn revoke_write(
        &mut self,
        caller: Principal,
        capsule_id: CapsuleId,
        writer: Principal,
    ) -> Result<Capsule, UploadError> {
        signed_in(caller)?;
        self.ensure_room()?;
        self.capsules.revoke(capsule_id, caller, writer)
    }

    /// A memory's record, thumbnail included, for its capsule's owner and
    /// writers.
    pub fn memory(
        &self,
        caller: Principal,
        memory_id: MemoryItemId,
    ) -> Result<MemoryRecord, UploadError> {
        let mut record = self.readable_memory(caller, memory_id)?;
        record.thumbnail = self.thumbnail_of(memory_id);
        Ok(record)
    }

    /// The record without its thumbnail, for its capsule's owner and
    /// writers.
    fn readable_memory(
        &self,
        caller: Principal,
        memory_id: MemoryItemId,
    ) -> Result<MemoryRecord, UploadError> {
        let record = self
            .memories
            .get(memory_id)
            .ok_or(UploadError::MemoryNotFound { memory_id })?;
        self.capsules.writable_by(record.capsule_id, caller)?;
        Ok(record)
    }

    fn thumbnail_of(&self, memory_id: MemoryItemId) -> Option<Thumbnail> {
        self.thumbnails
            .get(memory_id)
            .map(|stored| stored.thumbnail)
    }

    /// A page of a capsule's memories with their thumbnails: at most
    /// `limit`, and only as many as fit in `MAX_LIST_REPLY_BYTES` (always
    /// at least one), so the reply stays under the 2 MiB limit whatever
    /// was asked for. `next_after` is set whenever more follow.
    pub fn list_memories(
        &self,
        caller: Principal,
        request: ListMemories,
    ) -> Result<MemoriesPage, UploadError> {
        self.capsules.writable_by(request.capsule_id, caller)?;
        let limit = request.limit.clamp(1, MAX_PAGE) as usize;
        let mut ids = self
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
            let Some(mut record) = self.memories.get(memory_id) else {
                continue;
            };
            record.thumbnail = self.thumbnail_of(memory_id);
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
    pub fn read(&self, caller: Principal, request: ReadRange) -> Result<ByteBuf, UploadError> {
        let record = self.readable_memory(caller, request.memory_id)?;
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
        self.blobs
            .read(record.blob_id, request.offset, &mut buf)
            .expect("bug: a memory's blob is shorter than the memory");
        Ok(ByteBuf::from(buf))
    }

    /// The memory, if `caller` may manage it (delete it, set its
    /// thumbnail): its uploader, even after its write access was revoked,
    /// or its capsule's owner.
    fn manageable_memory(
        &self,
        caller: Principal,
        memory_id: MemoryItemId,
    ) -> Result<MemoryRecord, UploadError> {
        let record = self
            .memories
            .get(memory_id)
            .ok_or(UploadError::MemoryNotFound { memory_id })?;
        // The uploader may always manage what it uploaded, even after its
        // write access was revoked: the memory is charged to its quota, and
        // no other principal's decision may hold that quota for ever.
        // Writers may act for the owner (a dapp canister, say): they manage
        // only what they uploaded; the owner manages anything.
        if caller != record.uploaded_by {
            let capsule = self.capsules.writable_by(record.capsule_id, caller)?;
            if caller != capsule.owner {
                return Err(UploadError::NotAuthorized);
            }
        }
        Ok(record)
    }

    /// Deletes a memory and frees its blob's space for reuse, and its
    /// thumbnail's quota.
    pub fn delete_memory(
        &mut self,
        caller: Principal,
        memory_id: MemoryItemId,
    ) -> Result<(), UploadError> {
        signed_in(caller)?;
        let record = self.manageable_memory(caller, memory_id)?;
        self.memories.remove(memory_id);
        self.blobs
            .free(record.blob_id)
            .expect("bug: a memory's blob was already freed");
        self.accounting
            .unstore(record.uploaded_by, charged_bytes(record.byte_len));
        if let Some(thumbnail) = self.thumbnails.remove(memory_id) {
            self.accounting
                .unstore(thumbnail.charged_to, thumbnail.charge());
        }
        self.forget_shares(&record);
        Ok(())
    }

    /// Sets (`Some`) or removes (`None`) a memory's thumbnail: its uploader
    /// or its capsule's owner, as for deleting it. The thumbnail counts
    /// against the caller's stored bytes; the one it replaces is released
    /// from whoever it was charged to.
    pub fn set_thumbnail(
        &mut self,
        caller: Principal,
        memory_id: MemoryItemId,
        thumbnail: Option<Thumbnail>,
    ) -> Result<(), UploadError> {
        signed_in(caller)?;
        if let Some(thumbnail) = &thumbnail {
            // Removing takes no stable memory, so it works on a full subnet.
            self.ensure_room()?;
            thumbnails::check(thumbnail)?;
        }
        self.manageable_memory(caller, memory_id)?;
        let freed = self
            .thumbnails
            .get(memory_id)
            .map(|previous| (previous.charged_to, previous.charge()));
        let added = thumbnail
            .as_ref()
            .map(|t| thumbnails::charge(t.bytes.len() as u64));
        if let Some(bytes) = added {
            self.accounting.check_store(&caller, bytes, freed)?;
        }
        if let Some((holder, bytes)) = freed {
            self.accounting.unstore(holder, bytes);
        }
        match (thumbnail, added) {
            (Some(thumbnail), Some(bytes)) => {
                self.thumbnails.insert(
                    memory_id,
                    StoredThumbnail {
                        thumbnail,
                        charged_to: caller,
                    },
                );
                self.accounting.store(caller, bytes);
            }
            _ => {
                self.thumbnails.remove(memory_id);
            }
        }
        Ok(())
    }

    pub fn stats(&self, caller: Principal) -> Stats {
        let blobs = self.blobs.stats();
        let ledger = self.accounting.ledger();
        Stats {
            used_bytes: blobs.used_bytes,
            free_bytes: blobs.free_bytes,
            high_water_bytes: blobs.high_water_bytes,
            mapped_bytes: Some(self.blobs.mapped_blocks() * BLOB_BLOCK_BYTES),
            reserved_bytes: ledger.reserved_bytes,
            stored_bytes: ledger.stored_bytes,
            open_sessions: ledger.open_sessions,
            session_records: self.sessions.len(),
            memories: self.memories.len(),
            caller: self.accounting.usage(&caller),
            limits: ledger.limits.clone(),
        }
    }

    /// Controllers only: `usage_page`.
    pub fn admin_usage(
        &self,
        caller_is_controller: bool,
        after: Option<Principal>,
        limit: u32,
    ) -> Result<Vec<(Principal, CallerUsage)>, UploadError> {
        controllers_only(caller_is_controller)?;
        Ok(self.usage_page(after, limit))
    }

    /// Controllers only: `capsule_creators`.
    pub fn admin_capsule_creators(
        &self,
        caller_is_controller: bool,
        after: Option<Principal>,
        limit: u32,
    ) -> Result<CapsuleCreators, UploadError> {
        controllers_only(caller_is_controller)?;
        Ok(self.capsule_creators(after, limit))
    }

    /// Usage of every caller, a page at a time (for controllers).
    pub fn usage_page(
        &self,
        after: Option<Principal>,
        limit: u32,
    ) -> Vec<(Principal, CallerUsage)> {
        self.accounting
            .usage_page(after, limit.clamp(1, MAX_PAGE) as usize)
    }

    /// Controllers only: whether only allowed principals may create
    /// capsules from now on (capsules that exist stay as they are).
    pub fn set_capsule_creation_restricted(
        &mut self,
        caller_is_controller: bool,
        restricted: bool,
    ) -> Result<(), UploadError> {
        controllers_only(caller_is_controller)?;
        self.ensure_room()?;
        self.accounting.set_capsule_creation_restricted(restricted);
        Ok(())
    }

    /// Controllers only: allows `principal` to create capsules, or stops
    /// allowing it.
    pub fn allow_capsule_creator(
        &mut self,
        caller_is_controller: bool,
        principal: Principal,
        allowed: bool,
    ) -> Result<(), UploadError> {
        controllers_only(caller_is_controller)?;
        self.ensure_room()?;
        self.capsules.allow_creator(principal, allowed);
        Ok(())
    }

    /// Whether capsule creation is restricted, and a page of the allowed
    /// creators.
    pub fn capsule_creators(&self, after: Option<Principal>, limit: u32) -> CapsuleCreators {
        let (allowed, more) = self
            .capsules
            .creators(after, limit.clamp(1, MAX_PAGE) as usize);
        CapsuleCreators {
            restricted: self.accounting.capsule_creation_restricted(),
            next_after: if more { allowed.last().copied() } else { None },
            allowed,
        }
    }

    /// Controllers only.
    pub fn set_limits(
        &mut self,
        caller_is_controller: bool,
        limits: Limits,
    ) -> Result<(), UploadError> {
        controllers_only(caller_is_controller)?;
        self.ensure_room()?;
        self.accounting.set_limits(limits.clone())?;
        self.sessions.set_policy(policy(&limits));
        Ok(())
    }
}

/// The one check behind every `admin_*` operation: the caller must be a
/// controller of the canister.
fn controllers_only(caller_is_controller: bool) -> Result<(), UploadError> {
    if caller_is_controller {
        Ok(())
    } else {
        Err(UploadError::NotAuthorized)
    }
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
        + (LEB_LEN + record.name.len())
        + (LEB_LEN + record.mime_type.len())
        + 1
        + thumbnail
}
