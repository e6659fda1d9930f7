//! `stats` and the `admin_*` endpoints: usage, limits and who may create
//! capsules. Controllers only, but `stats`.

use crate::blob_store::BLOB_BLOCK_BYTES;
use crate::endpoint_error;
use crate::error::UploadError;
use crate::limits::{Limits, MAX_PAGE};
use crate::state::{session_policy, State};
use crate::types::*;
use crate::validate::controllers_only;
use candid::Principal;
use ic_stable_structures::Memory;

endpoint_error! {
    /// What the controller-only reads can answer.
    pub enum AdminReadError: UploadError for "admin_usage, admin_capsule_creators" {
        NotAuthorized,
    }
}

endpoint_error! {
    /// What the controller-only settings can answer.
    pub enum AdminSetError: UploadError for "admin_set_capsule_creation_restricted, admin_allow_capsule_creator, admin_set_index" {
        NotAuthorized,
        OutOfSpace,
    }
}

endpoint_error! {
    /// What `admin_set_limits` can answer.
    pub enum SetLimitsError: UploadError for "admin_set_limits" {
        NotAuthorized,
        OutOfSpace,
        InvalidArgument { reason: String },
    }
}

/// Totals of the store, its limits, the caller's usage, and the stable
/// memory the canister holds.
pub fn stats<M: Memory + Clone>(state: &State<M>, caller: Principal) -> Stats {
    let blobs = state.blobs.stats();
    let ledger = state.accounting.ledger();
    Stats {
        used_bytes: blobs.used_bytes,
        free_bytes: blobs.free_bytes,
        high_water_bytes: blobs.high_water_bytes,
        mapped_bytes: Some(state.blobs.mapped_blocks() * BLOB_BLOCK_BYTES),
        reserved_bytes: ledger.reserved_bytes,
        stored_bytes: ledger.stored_bytes,
        open_sessions: ledger.open_sessions,
        session_records: state.sessions.len(),
        memories: state.memories.len(),
        caller: state.accounting.usage(&caller),
        limits: ledger.limits.clone(),
        stable_memory_bytes: Some(state.stable_memory_bytes()),
        fixed_stable_bytes: Some(state.fixed_stable_bytes()),
    }
}

/// Every caller's usage, a page at a time.
pub fn admin_usage<M: Memory + Clone>(
    state: &State<M>,
    caller_is_controller: bool,
    after: Option<Principal>,
    limit: u32,
) -> Result<Vec<(Principal, CallerUsage)>, AdminReadError> {
    controllers_only(caller_is_controller).map_err(AdminReadError::narrow)?;
    Ok(usage_page(state, after, limit))
}

/// Usage of every caller, a page at a time.
pub fn usage_page<M: Memory + Clone>(
    state: &State<M>,
    after: Option<Principal>,
    limit: u32,
) -> Vec<(Principal, CallerUsage)> {
    state
        .accounting
        .usage_page(after, limit.clamp(1, MAX_PAGE) as usize)
}

/// Whether capsule creation is restricted, and a page of the allowed
/// creators.
pub fn admin_capsule_creators<M: Memory + Clone>(
    state: &State<M>,
    caller_is_controller: bool,
    after: Option<Principal>,
    limit: u32,
) -> Result<CapsuleCreators, AdminReadError> {
    controllers_only(caller_is_controller).map_err(AdminReadError::narrow)?;
    let (allowed, more) = state
        .capsules
        .creators(after, limit.clamp(1, MAX_PAGE) as usize);
    Ok(CapsuleCreators {
        restricted: state.accounting.capsule_creation_restricted(),
        next_after: if more { allowed.last().copied() } else { None },
        allowed,
    })
}

/// Whether only allowed principals may create capsules from now on
/// (capsules that exist stay as they are).
pub fn set_capsule_creation_restricted<M: Memory + Clone>(
    state: &mut State<M>,
    caller_is_controller: bool,
    restricted: bool,
) -> Result<(), AdminSetError> {
    let mut set = || -> Result<(), UploadError> {
        controllers_only(caller_is_controller)?;
        state.ensure_room()?;
        state.accounting.set_capsule_creation_restricted(restricted);
        Ok(())
    };
    set().map_err(AdminSetError::narrow)
}

/// Allows `principal` to create capsules, or stops allowing it.
pub fn allow_capsule_creator<M: Memory + Clone>(
    state: &mut State<M>,
    caller_is_controller: bool,
    principal: Principal,
    allowed: bool,
) -> Result<(), AdminSetError> {
    let mut allow = || -> Result<(), UploadError> {
        controllers_only(caller_is_controller)?;
        state.ensure_room()?;
        state.capsules.allow_creator(principal, allowed);
        Ok(())
    };
    allow().map_err(AdminSetError::narrow)
}

/// Sets the limits; sessions begun from now on expire by the new ones.
pub fn set_limits<M: Memory + Clone>(
    state: &mut State<M>,
    caller_is_controller: bool,
    limits: Limits,
) -> Result<(), SetLimitsError> {
    let mut set = || -> Result<(), UploadError> {
        controllers_only(caller_is_controller)?;
        state.ensure_room()?;
        state.accounting.set_limits(limits.clone())?;
        state.sessions.set_policy(session_policy(&limits));
        Ok(())
    };
    set().map_err(SetLimitsError::narrow)
}
