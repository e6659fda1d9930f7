//! Capsules, committed memories and administration: the parts of the
//! upload service that are not about sessions in progress.

use super::blob_store::BLOB_BLOCK_BYTES;
use super::capsules::MAX_CAPSULE_NAME_BYTES;
use super::error::{Quota, UploadError};
use super::limits::{Limits, MAX_PAGE, MAX_READ_BYTES};
use super::service::{check_text, policy, signed_in, UploadService};
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

    pub fn memory(
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

    pub fn list_memories(
        &self,
        caller: Principal,
        request: ListMemories,
    ) -> Result<MemoriesPage, UploadError> {
        self.capsules.writable_by(request.capsule_id, caller)?;
        let limit = request.limit.clamp(1, MAX_PAGE) as usize;
        let (memories, more) = self
            .memories
            .in_capsule(request.capsule_id, request.after, limit);
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
        let record = self.memory(caller, request.memory_id)?;
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

    /// Deletes a memory and frees its blob's space for reuse.
    pub fn delete_memory(
        &mut self,
        caller: Principal,
        memory_id: MemoryItemId,
    ) -> Result<(), UploadError> {
        signed_in(caller)?;
        let record = self
            .memories
            .get(memory_id)
            .ok_or(UploadError::MemoryNotFound { memory_id })?;
        // The uploader may always delete what it uploaded, even after its
        // write access was revoked: the memory is charged to its quota, and
        // no other principal's decision may hold that quota for ever.
        // Writers may act for the owner (a dapp canister, say): they delete
        // only what they uploaded; the owner deletes anything.
        if caller != record.uploaded_by {
            let capsule = self.capsules.writable_by(record.capsule_id, caller)?;
            if caller != capsule.owner {
                return Err(UploadError::NotAuthorized);
            }
        }
        self.memories.remove(memory_id);
        self.blobs
            .free(record.blob_id)
            .expect("bug: a memory's blob was already freed");
        self.accounting.unstore(record.uploaded_by, record.byte_len);
        self.forget_shares(&record);
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
