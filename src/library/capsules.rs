//! `capsules_*`: creating capsules, reading them, and who may write.

use crate::error::{Quota, UploadError};
use crate::limits::{MAX_CAPSULE_NAME_BYTES, MAX_PAGE};
use crate::state::State;
use crate::types::{Capsule, CapsuleId};
use crate::validate::{check_text, signed_in};
use crate::{endpoint_error, quota_subset};
use candid::Principal;
use ic_stable_structures::Memory;

quota_subset! {
    /// The limit `capsules_create` checks.
    pub enum CreateCapsuleQuota {
        CapsulesPerOwner,
    }
}

quota_subset! {
    /// The limit `capsules_grant_write` checks.
    pub enum GrantWriteQuota {
        WritersPerCapsule,
    }
}

endpoint_error! {
    /// What `capsules_create` can answer.
    pub enum CreateCapsuleError: UploadError for "capsules_create" {
        AnonymousCaller,
        OutOfSpace,
        InvalidArgument { reason: String },
        NotAuthorized,
        QuotaExceeded { quota: CreateCapsuleQuota, limit: u64, requested: u64 },
        ManagedByIndex { index: Principal },
    }
}

endpoint_error! {
    /// What `capsules_get` can answer.
    pub enum GetCapsuleError: UploadError for "capsules_get" {
        CapsuleNotFound { capsule_id: CapsuleId },
        NotAuthorized,
    }
}

endpoint_error! {
    /// What `capsules_grant_write` can answer.
    pub enum GrantWriteError: UploadError for "capsules_grant_write" {
        AnonymousCaller,
        OutOfSpace,
        CapsuleNotFound { capsule_id: CapsuleId },
        NotAuthorized,
        InvalidArgument { reason: String },
        QuotaExceeded { quota: GrantWriteQuota, limit: u64, requested: u64 },
    }
}

endpoint_error! {
    /// What `capsules_revoke_write` can answer.
    pub enum RevokeWriteError: UploadError for "capsules_revoke_write" {
        AnonymousCaller,
        OutOfSpace,
        CapsuleNotFound { capsule_id: CapsuleId },
        NotAuthorized,
    }
}

/// Creates a capsule owned by `caller`; on a bucket an index manages,
/// capsules are created through the index (`ManagedByIndex`).
pub fn create_capsule<M: Memory + Clone>(
    state: &mut State<M>,
    caller: Principal,
    now: u64,
    name: String,
) -> Result<Capsule, CreateCapsuleError> {
    let create = || -> Result<Capsule, UploadError> {
        signed_in(caller)?;
        if let Some(index) = state.bucket.index() {
            return Err(UploadError::ManagedByIndex { index });
        }
        state.ensure_room()?;
        check_text("capsule name", &name, MAX_CAPSULE_NAME_BYTES)?;
        if state.accounting.capsule_creation_restricted() && !state.capsules.may_create(&caller) {
            return Err(UploadError::NotAuthorized);
        }
        let max = state.accounting.limits().max_capsules_per_owner;
        if state.capsules.count_owned(&caller, max as usize) >= max as usize {
            return Err(UploadError::QuotaExceeded {
                quota: Quota::CapsulesPerOwner,
                limit: u64::from(max),
                requested: u64::from(max) + 1,
            });
        }
        let capsule = Capsule {
            capsule_id: state.accounting.next_capsule_id(),
            name,
            owner: caller,
            writers: Vec::new(),
            created_at: now,
        };
        state.capsules.insert(capsule.clone());
        Ok(capsule)
    };
    create().map_err(CreateCapsuleError::narrow)
}

/// A capsule, for its owner and writers.
pub fn capsule<M: Memory + Clone>(
    state: &State<M>,
    caller: Principal,
    capsule_id: CapsuleId,
) -> Result<Capsule, GetCapsuleError> {
    state
        .capsules
        .writable_by(capsule_id, caller)
        .map_err(GetCapsuleError::narrow)
}

/// The capsules `caller` owns, a page at a time.
pub fn my_capsules<M: Memory + Clone>(
    state: &State<M>,
    caller: Principal,
    after: Option<CapsuleId>,
    limit: u32,
) -> Vec<Capsule> {
    state
        .capsules
        .owned(&caller, after, limit.clamp(1, MAX_PAGE) as usize)
}

/// The owner lets `writer` upload into the capsule.
pub fn grant_write<M: Memory + Clone>(
    state: &mut State<M>,
    caller: Principal,
    capsule_id: CapsuleId,
    writer: Principal,
) -> Result<Capsule, GrantWriteError> {
    let mut grant = || -> Result<Capsule, UploadError> {
        signed_in(caller)?;
        state.ensure_room()?;
        let max = state.accounting.limits().max_writers_per_capsule;
        state.capsules.grant(capsule_id, caller, writer, max)
    };
    grant().map_err(GrantWriteError::narrow)
}

/// The owner takes a writer's access away.
pub fn revoke_write<M: Memory + Clone>(
    state: &mut State<M>,
    caller: Principal,
    capsule_id: CapsuleId,
    writer: Principal,
) -> Result<Capsule, RevokeWriteError> {
    let mut revoke = || -> Result<Capsule, UploadError> {
        signed_in(caller)?;
        state.ensure_room()?;
        state.capsules.revoke(capsule_id, caller, writer)
    };
    revoke().map_err(RevokeWriteError::narrow)
}
