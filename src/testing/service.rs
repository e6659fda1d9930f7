//! The whole domain behind one value with a method per endpoint, each
//! answering the wide `UploadError` (or `ShareError`): the vocabulary the
//! model, the fuzz targets and the unit tests were written in. Each method
//! is one call to the endpoint's feature function, whose own error type is
//! widened back; so these tests drive exactly the code the canister runs,
//! narrowing included.

use crate::bucket::{self, BucketError, BucketHealth, BucketReport, BucketState, IndexCapsule};
use crate::error::UploadError;
use crate::http::{HttpRequest, HttpResponse};
use crate::jobs::MaintenanceReport;
use crate::layout::LayoutError;
use crate::limits::{Limits, SECRET_BYTES};
use crate::sharing::links::{ShareError, ShareLink};
use crate::sharing::serve;
use crate::state::State;
use crate::types::*;
use crate::{admin, jobs, library, upload};
use candid::Principal;
use ic_stable_structures::Memory;
use serde_bytes::ByteBuf;
use std::ops::{Deref, DerefMut};

pub struct UploadService<M: Memory> {
    state: State<M>,
}

impl<M: Memory> Deref for UploadService<M> {
    type Target = State<M>;
    fn deref(&self) -> &State<M> {
        &self.state
    }
}

impl<M: Memory> DerefMut for UploadService<M> {
    fn deref_mut(&mut self) -> &mut State<M> {
        &mut self.state
    }
}

type Upload<T> = Result<T, UploadError>;
type Share<T> = Result<T, ShareError>;
type Bucket<T> = Result<T, BucketError>;

impl<M: Memory + Clone> UploadService<M> {
    pub fn init(memory: M) -> Self {
        Self {
            state: State::init(memory),
        }
    }

    pub fn open(memory: M) -> Result<Self, LayoutError> {
        State::open(memory).map(|state| Self { state })
    }

    pub fn create_capsule(&mut self, caller: Principal, now: u64, name: String) -> Upload<Capsule> {
        Ok(library::create_capsule(self, caller, now, name)?)
    }

    pub fn capsule(&self, caller: Principal, capsule_id: CapsuleId) -> Upload<Capsule> {
        Ok(library::capsule(self, caller, capsule_id)?)
    }

    pub fn my_capsules(
        &self,
        caller: Principal,
        after: Option<CapsuleId>,
        limit: u32,
    ) -> Vec<Capsule> {
        library::my_capsules(self, caller, after, limit)
    }

    pub fn grant_write(
        &mut self,
        caller: Principal,
        capsule_id: CapsuleId,
        writer: Principal,
    ) -> Upload<Capsule> {
        Ok(library::grant_write(self, caller, capsule_id, writer)?)
    }

    pub fn revoke_write(
        &mut self,
        caller: Principal,
        capsule_id: CapsuleId,
        writer: Principal,
    ) -> Upload<Capsule> {
        Ok(library::revoke_write(self, caller, capsule_id, writer)?)
    }

    pub fn begin(
        &mut self,
        caller: Principal,
        now: u64,
        request: impl Into<BeginUploadRequest>,
    ) -> Upload<UploadStarted> {
        Ok(upload::begin(self, caller, now, request)?)
    }

    pub fn put_chunk(
        &mut self,
        caller: Principal,
        now: u64,
        request: PutChunk,
    ) -> Upload<ChunkAccepted> {
        Ok(upload::put_chunk(self, caller, now, request)?)
    }

    pub fn finish(
        &mut self,
        caller: Principal,
        now: u64,
        request: FinishUpload,
    ) -> Upload<CommittedUpload> {
        Ok(upload::finish(self, caller, now, request)?)
    }

    pub fn abort(&mut self, caller: Principal, now: u64, session_id: SessionId) -> Upload<()> {
        Ok(upload::abort(self, caller, now, session_id)?)
    }

    pub fn status(
        &self,
        caller: Principal,
        now: u64,
        request: StatusRequest,
    ) -> Upload<UploadStatus> {
        Ok(upload::status(self, caller, now, request)?)
    }

    pub fn open_uploads(&self, caller: Principal, now: u64) -> Vec<OpenUpload> {
        upload::open_uploads(self, caller, now)
    }

    pub fn chunk_sha256(
        &self,
        caller: Principal,
        now: u64,
        session_id: SessionId,
        index: u32,
    ) -> Upload<ByteBuf> {
        Ok(upload::chunk_sha256(self, caller, now, session_id, index)?)
    }

    pub fn memory(&self, caller: Principal, memory_id: MemoryItemId) -> Upload<MemoryRecord> {
        Ok(library::memory(self, caller, memory_id)?)
    }

    pub fn list_memories(&self, caller: Principal, request: ListMemories) -> Upload<MemoriesPage> {
        Ok(library::list_memories(self, caller, request)?)
    }

    pub fn read(&self, caller: Principal, request: ReadRange) -> Upload<ByteBuf> {
        Ok(library::read(self, caller, request)?)
    }

    pub fn delete_memory(&mut self, caller: Principal, memory_id: MemoryItemId) -> Upload<()> {
        Ok(library::delete_memory(self, caller, memory_id)?)
    }

    pub fn set_thumbnail(
        &mut self,
        caller: Principal,
        memory_id: MemoryItemId,
        thumbnail: Option<Thumbnail>,
    ) -> Upload<()> {
        Ok(library::set_thumbnail(self, caller, memory_id, thumbnail)?)
    }

    pub fn share(
        &mut self,
        caller: Principal,
        now: u64,
        memory_id: MemoryItemId,
        expires_at: Option<u64>,
        secret: [u8; SECRET_BYTES],
    ) -> Share<ShareLink> {
        Ok(serve::share(
            self, caller, now, memory_id, expires_at, secret,
        )?)
    }

    pub fn shares(&self, caller: Principal, memory_id: MemoryItemId) -> Share<Vec<ShareLink>> {
        Ok(serve::shares(self, caller, memory_id)?)
    }

    pub fn unshare(&mut self, caller: Principal, link_id: u64) -> Share<()> {
        Ok(serve::unshare(self, caller, link_id)?)
    }

    pub fn http_request(
        &self,
        request: &HttpRequest,
        now: u64,
        certificate: Option<&[u8]>,
    ) -> HttpResponse {
        serve::http_request(self, request, now, certificate)
    }

    pub fn certified_data(&self) -> [u8; 32] {
        serve::certified_data(self)
    }

    pub fn stats(&self, caller: Principal) -> Stats {
        admin::stats(self, caller)
    }

    pub fn admin_usage(
        &self,
        caller_is_controller: bool,
        after: Option<Principal>,
        limit: u32,
    ) -> Upload<Vec<(Principal, CallerUsage)>> {
        Ok(admin::admin_usage(
            self,
            caller_is_controller,
            after,
            limit,
        )?)
    }

    pub fn usage_page(
        &self,
        after: Option<Principal>,
        limit: u32,
    ) -> Vec<(Principal, CallerUsage)> {
        admin::usage_page(self, after, limit)
    }

    pub fn admin_capsule_creators(
        &self,
        caller_is_controller: bool,
        after: Option<Principal>,
        limit: u32,
    ) -> Upload<CapsuleCreators> {
        Ok(admin::admin_capsule_creators(
            self,
            caller_is_controller,
            after,
            limit,
        )?)
    }

    pub fn set_limits(&mut self, caller_is_controller: bool, limits: Limits) -> Upload<()> {
        Ok(admin::set_limits(self, caller_is_controller, limits)?)
    }

    pub fn set_capsule_creation_restricted(
        &mut self,
        caller_is_controller: bool,
        restricted: bool,
    ) -> Upload<()> {
        Ok(admin::set_capsule_creation_restricted(
            self,
            caller_is_controller,
            restricted,
        )?)
    }

    pub fn allow_capsule_creator(
        &mut self,
        caller_is_controller: bool,
        principal: Principal,
        allowed: bool,
    ) -> Upload<()> {
        Ok(admin::allow_capsule_creator(
            self,
            caller_is_controller,
            principal,
            allowed,
        )?)
    }

    /// The session jobs of one timer run (`jobs::sweep_sessions`).
    pub fn set_index(
        &mut self,
        caller_is_controller: bool,
        index: Option<Principal>,
    ) -> Upload<()> {
        Ok(bucket::set_index(self, caller_is_controller, index)?)
    }

    pub fn register_capsule(
        &mut self,
        caller: Principal,
        capsule: IndexCapsule,
    ) -> Bucket<Capsule> {
        Ok(bucket::register_capsule(self, caller, capsule)?)
    }

    pub fn set_bucket_state(&mut self, caller: Principal, state: BucketState) -> Bucket<()> {
        Ok(bucket::set_state(self, caller, state)?)
    }

    pub fn bucket_report(
        &self,
        caller: Principal,
        caller_is_controller: bool,
        now: u64,
        cycles: u128,
    ) -> Bucket<BucketReport> {
        Ok(bucket::report(
            self,
            caller,
            caller_is_controller,
            now,
            cycles,
        )?)
    }

    pub fn bucket_capsules(
        &self,
        caller: Principal,
        caller_is_controller: bool,
        after: Option<CapsuleId>,
        limit: u32,
    ) -> Bucket<Vec<IndexCapsule>> {
        Ok(bucket::capsules(
            self,
            caller,
            caller_is_controller,
            after,
            limit,
        )?)
    }

    pub fn bucket_health(
        &self,
        caller: Principal,
        caller_is_controller: bool,
    ) -> Bucket<BucketHealth> {
        Ok(bucket::health(self, caller, caller_is_controller)?)
    }

    pub fn maintenance(&mut self, now: u64) -> MaintenanceReport {
        jobs::sweep_sessions(self, now)
    }

    /// The sharing jobs of one timer run (`sharing::serve::certify_work`).
    pub fn sharing_maintenance(&mut self, now: u64) -> bool {
        serve::certify_work(self, now)
    }

    pub fn has_hashing_backlog(&self) -> bool {
        self.hashing.has_backlog()
    }

    pub fn has_sharing_work(&self) -> bool {
        self.shares.has_queued_work()
    }
}
