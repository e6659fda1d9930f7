//! The canister as a *bucket* of an index canister: the `bucket_*`
//! endpoints the index calls, and `admin_set_index`, by which the
//! controllers hand the canister to an index (or take it back; its
//! errors are those of the other controller-only settings,
//! `AdminSetError`).
//!
//! Deployed alone (no index) the canister works as it always did. Managed
//! by an index, capsules are created through the index
//! (`bucket_register_capsule`; `capsules_create` answers
//! `ManagedByIndex`), and once the index seals the bucket no new upload
//! session begins (`uploads_begin` answers `BucketSealed`; a retried
//! begin of an open session still returns it, and everything else goes
//! on). The settings live in one stable cell (`stores::bucket`).

use crate::admin::AdminSetError;
use crate::endpoint_error;
use crate::error::UploadError;
use crate::layout::{Recorded, CURRENT_LAYOUT};
use crate::limits::{MAX_CAPSULE_NAME_BYTES, MAX_LIST_REPLY_BYTES, MAX_PAGE};
use crate::stable_memory::BLOB_STORE_CAPACITY_BYTES;
use crate::state::State;
use crate::types::{Capsule, CapsuleId};
use crate::validate::{check_text, controllers_only};
use candid::{CandidType, Nat, Principal};
use ic_stable_structures::Memory;
use serde::Deserialize;

pub use crate::stores::bucket::BucketState;

#[cfg(test)]
mod tests;

/// A capsule as the index knows it: the index chooses its id.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct IndexCapsule {
    pub capsule_id: CapsuleId,
    pub owner: Principal,
    pub name: String,
    pub writers: Vec<Principal>,
    pub created_at: u64,
}

impl From<Capsule> for IndexCapsule {
    fn from(capsule: Capsule) -> Self {
        IndexCapsule {
            capsule_id: capsule.capsule_id,
            owner: capsule.owner,
            name: capsule.name,
            writers: capsule.writers,
            created_at: capsule.created_at,
        }
    }
}

/// What the index reads of a bucket to place capsules and watch its load.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BucketReport {
    /// The index managing this bucket; `null`: standalone.
    pub index: Option<Principal>,
    pub state: BucketState,
    /// The stable-layout version this build writes.
    pub layout_version: u32,
    /// The crate version of this build.
    pub package_version: String,
    /// Bytes reserved and stored the bucket takes in all (the `TotalBytes`
    /// quota's limit).
    pub capacity_bytes: u64,
    /// Bytes of committed memories (thumbnails included).
    pub used_bytes: u64,
    /// Bytes reserved by open upload sessions.
    pub reserved_bytes: u64,
    pub capsule_count: u64,
    pub memory_count: u64,
    pub open_sessions: u64,
    /// Bytes ever accepted by `uploads_put_chunk` (a duplicate chunk not
    /// counted). Only grows: the index derives the upload load from it.
    pub uploaded_bytes_total: u64,
    /// The canister's cycle balance.
    pub cycles: Nat,
    /// Raw stable memory the canister holds.
    pub stable_memory_bytes: u64,
    /// The canister's time when it answered.
    pub time: u64,
}

/// A bucket's self check, e.g. after an upgrade: bounded work, whatever
/// the data.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BucketHealth {
    /// The layout version recorded in stable memory.
    pub layout_version: u32,
    pub package_version: String,
    pub capsule_count: u64,
    pub memory_count: u64,
    /// Whether every check passed.
    pub invariants_ok: bool,
    /// `ok`, or the checks that failed.
    pub detail: String,
}

/// Every error case of the bucket endpoints; each endpoint answers its
/// own subset (`endpoint_error!`).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum BucketError {
    /// The caller is not the index managing this bucket (or, for the
    /// reads, one of its controllers); a standalone bucket has no index.
    NotIndex,
    /// Another owner's capsule has this id.
    CapsuleIdTaken {
        capsule_id: CapsuleId,
    },
    /// The bucket is sealed: it takes no new capsule.
    Sealed,
    OutOfSpace,
    InvalidArgument {
        reason: String,
    },
}

impl From<UploadError> for BucketError {
    fn from(error: UploadError) -> Self {
        match error {
            UploadError::OutOfSpace => BucketError::OutOfSpace,
            UploadError::InvalidArgument { reason } => BucketError::InvalidArgument { reason },
            other => panic!("bug: a bucket endpoint met {other:?}"),
        }
    }
}

endpoint_error! {
    /// What `bucket_register_capsule` can answer.
    pub enum RegisterCapsuleError: BucketError for "bucket_register_capsule" {
        NotIndex,
        CapsuleIdTaken { capsule_id: CapsuleId },
        Sealed,
        OutOfSpace,
        InvalidArgument { reason: String },
    }
}

endpoint_error! {
    /// What the endpoints only the index (and, for reads, the
    /// controllers) may call can answer.
    pub enum IndexOnlyError: BucketError for "bucket_set_state, bucket_report, bucket_capsules, bucket_health" {
        NotIndex,
    }
}

/// The crate version of this build.
pub const PACKAGE_VERSION: &str = env!("CARGO_PKG_VERSION");

fn index_only<M: Memory>(state: &State<M>, caller: Principal) -> Result<(), BucketError> {
    if state.bucket.is_index(&caller) {
        Ok(())
    } else {
        Err(BucketError::NotIndex)
    }
}

fn index_or_controller<M: Memory>(
    state: &State<M>,
    caller: Principal,
    caller_is_controller: bool,
) -> Result<(), BucketError> {
    if caller_is_controller {
        Ok(())
    } else {
        index_only(state, caller)
    }
}

/// Controllers: the bucket is managed by `index` from now on (a standalone
/// canister adopted, or set by the index right after it installed the
/// bucket), or standalone again (`None`, which also makes it `Open`). A
/// controller-only setting like the others (`AdminSetError`); the
/// anonymous principal is never authorized as an index (anyone could act
/// as it).
pub fn set_index<M: Memory + Clone>(
    state: &mut State<M>,
    caller_is_controller: bool,
    index: Option<Principal>,
) -> Result<(), AdminSetError> {
    let mut set = || -> Result<(), UploadError> {
        controllers_only(caller_is_controller)?;
        if index == Some(Principal::anonymous()) {
            return Err(UploadError::NotAuthorized);
        }
        state.ensure_room()?;
        state.bucket.set_index(index);
        Ok(())
    };
    set().map_err(AdminSetError::narrow)
}

/// The index: stores a capsule it placed here, under the index's id.
/// Idempotent: the same id with the same owner again returns the stored
/// capsule (sealed or not: it changes nothing); another owner's capsule
/// under that id is `CapsuleIdTaken`. Capsules this canister creates
/// itself afterwards (were it standalone again) get ids above it.
pub fn register_capsule<M: Memory + Clone>(
    state: &mut State<M>,
    caller: Principal,
    capsule: IndexCapsule,
) -> Result<Capsule, RegisterCapsuleError> {
    register(state, caller, capsule).map_err(RegisterCapsuleError::narrow)
}

fn register<M: Memory + Clone>(
    state: &mut State<M>,
    caller: Principal,
    capsule: IndexCapsule,
) -> Result<Capsule, BucketError> {
    index_only(state, caller)?;
    let IndexCapsule {
        capsule_id,
        owner,
        name,
        writers,
        created_at,
    } = capsule;
    let invalid = |reason: &str| BucketError::InvalidArgument {
        reason: reason.into(),
    };
    if capsule_id.0 == 0 || capsule_id.0 == u64::MAX {
        return Err(invalid("capsule_id must be in 1..2^64-1"));
    }
    if owner == Principal::anonymous() {
        return Err(invalid("the anonymous principal cannot own a capsule"));
    }
    check_text("capsule name", &name, MAX_CAPSULE_NAME_BYTES)?;
    let mut kept: Vec<Principal> = Vec::with_capacity(writers.len());
    for writer in writers {
        if writer == Principal::anonymous() {
            return Err(invalid(
                "the anonymous principal cannot be granted write access",
            ));
        }
        if writer != owner && !kept.contains(&writer) {
            kept.push(writer);
        }
        let max = state.accounting.limits().max_writers_per_capsule;
        if kept.len() as u64 > u64::from(max) {
            return Err(BucketError::InvalidArgument {
                reason: format!("a capsule has at most {max} writers"),
            });
        }
    }
    if let Ok(existing) = state.capsules.get(capsule_id) {
        return if existing.owner == owner {
            Ok(existing)
        } else {
            Err(BucketError::CapsuleIdTaken { capsule_id })
        };
    }
    if state.bucket.state() == BucketState::Sealed {
        return Err(BucketError::Sealed);
    }
    state.ensure_room()?;
    let capsule = Capsule {
        capsule_id,
        name,
        owner,
        writers: kept,
        created_at,
    };
    state.capsules.insert(capsule.clone());
    state.accounting.skip_capsule_ids_through(capsule_id);
    Ok(capsule)
}

/// The index: sets the bucket's state.
pub fn set_state<M: Memory + Clone>(
    state: &mut State<M>,
    caller: Principal,
    bucket_state: BucketState,
) -> Result<(), IndexOnlyError> {
    index_only(state, caller).map_err(IndexOnlyError::narrow)?;
    state.bucket.set_state(bucket_state);
    Ok(())
}

/// The index and the controllers: the bucket's figures at `now`, with
/// the cycle balance the entry point read.
pub fn report<M: Memory + Clone>(
    state: &State<M>,
    caller: Principal,
    caller_is_controller: bool,
    now: u64,
    cycles: u128,
) -> Result<BucketReport, IndexOnlyError> {
    index_or_controller(state, caller, caller_is_controller).map_err(IndexOnlyError::narrow)?;
    let ledger = state.accounting.ledger();
    let settings = state.bucket.settings();
    Ok(BucketReport {
        index: settings.index,
        state: settings.state,
        layout_version: CURRENT_LAYOUT,
        package_version: PACKAGE_VERSION.into(),
        capacity_bytes: ledger.limits.max_total_bytes.min(BLOB_STORE_CAPACITY_BYTES),
        used_bytes: ledger.stored_bytes,
        reserved_bytes: ledger.reserved_bytes,
        capsule_count: state.capsules.len(),
        memory_count: state.memories.len(),
        open_sessions: ledger.open_sessions,
        uploaded_bytes_total: settings.uploaded_bytes_total,
        cycles: Nat::from(cycles),
        stable_memory_bytes: state.stable_memory_bytes(),
        time: now,
    })
}

/// Bytes a capsule takes in a reply, about (Candid is more compact).
fn reply_bytes(capsule: &IndexCapsule) -> usize {
    64 + capsule.name.len() + 30 * capsule.writers.len()
}

/// The index and the controllers: the capsules after `after` in id order,
/// at most `limit` (1 to `MAX_PAGE`) and about 1.5 MiB; an empty page is
/// the end. How an index adopts a canister that already has capsules.
pub fn capsules<M: Memory + Clone>(
    state: &State<M>,
    caller: Principal,
    caller_is_controller: bool,
    after: Option<CapsuleId>,
    limit: u32,
) -> Result<Vec<IndexCapsule>, IndexOnlyError> {
    index_or_controller(state, caller, caller_is_controller).map_err(IndexOnlyError::narrow)?;
    let mut page = Vec::new();
    let mut bytes = 0;
    for capsule in state
        .capsules
        .all_after(after)
        .take(limit.clamp(1, MAX_PAGE) as usize)
    {
        let capsule = IndexCapsule::from(capsule);
        bytes += reply_bytes(&capsule);
        if !page.is_empty() && bytes > MAX_LIST_REPLY_BYTES {
            break;
        }
        page.push(capsule);
    }
    Ok(page)
}

/// The index and the controllers: a self check of bounded cost (counters
/// and headers only, never a walk over the data).
pub fn health<M: Memory + Clone>(
    state: &State<M>,
    caller: Principal,
    caller_is_controller: bool,
) -> Result<BucketHealth, IndexOnlyError> {
    index_or_controller(state, caller, caller_is_controller).map_err(IndexOnlyError::narrow)?;
    let problems = failed_checks(state);
    let layout_version = match state.recorded_layout() {
        Recorded::Version(version) => version,
        Recorded::None | Recorded::Unreadable => 0,
    };
    Ok(BucketHealth {
        layout_version,
        package_version: PACKAGE_VERSION.into(),
        capsule_count: state.capsules.len(),
        memory_count: state.memories.len(),
        invariants_ok: problems.is_empty(),
        detail: if problems.is_empty() {
            "ok".into()
        } else {
            problems.join("; ")
        },
    })
}

/// The checks `health` runs, each a few reads: what failed.
fn failed_checks<M: Memory + Clone>(state: &State<M>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    let recorded = state.recorded_layout();
    check(
        recorded == Recorded::Version(CURRENT_LAYOUT),
        format!("the layout record is {recorded:?}, this build writes {CURRENT_LAYOUT}"),
    );
    let blobs = state.blobs.stats();
    check(
        blobs.used_bytes + blobs.free_bytes == blobs.high_water_bytes,
        format!(
            "blob store: used {} + free {} is not the high-water mark {}",
            blobs.used_bytes, blobs.free_bytes, blobs.high_water_bytes
        ),
    );
    check(
        blobs.high_water_bytes <= BLOB_STORE_CAPACITY_BYTES,
        format!(
            "blob store: high-water mark {} above its capacity",
            blobs.high_water_bytes
        ),
    );
    let ledger = state.accounting.ledger();
    check(
        ledger.open_sessions <= state.sessions.len(),
        format!(
            "{} open sessions counted, {} session records",
            ledger.open_sessions,
            state.sessions.len()
        ),
    );
    let last_capsule = state.capsules.last_id().map_or(0, |id| id.0);
    check(
        ledger.next_capsule_id >= last_capsule,
        format!(
            "the capsule id counter {} is below capsule {last_capsule}",
            ledger.next_capsule_id
        ),
    );
    let last_memory = state.memories.last_id().map_or(0, |id| id.0);
    check(
        ledger.next_memory_id >= last_memory,
        format!(
            "the memory id counter {} is below memory {last_memory}",
            ledger.next_memory_id
        ),
    );
    let settings = state.bucket.settings();
    check(
        settings.index.is_some() || settings.state == BucketState::Open,
        format!("standalone but {:?}", settings.state),
    );
    check(
        state.stable_memory_bytes() >= state.fixed_stable_bytes(),
        format!(
            "stable memory {} below the fixed {}",
            state.stable_memory_bytes(),
            state.fixed_stable_bytes()
        ),
    );
    problems
}
