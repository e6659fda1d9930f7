//! Placing capsules: the steps of `capsules_create` and of a sealed
//! bucket's capsule continuing elsewhere that happen inside the index.
//! The call to the bucket sits between `begin_*` and `confirm`/`undo`;
//! everything is recorded before it, so a lost answer leaves a pending
//! registration that a retry (idempotent on the bucket) completes.

use crate::registry::{PendingRegistration, Registry};
use crate::storable::{CapsuleSlot, MAX_BUCKETS_PER_CAPSULE};
use crate::types::*;
use candid::Principal;
use ic_stable_structures::Memory;

/// Longest capsule name (the bucket's own limit).
pub const MAX_CAPSULE_NAME_BYTES: usize = 256;

/// A registration to send to a bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub bucket: Principal,
    pub pending: PendingRegistration,
}

pub fn may_create<M: Memory + Clone>(
    r: &Registry<M>,
    caller: Principal,
) -> Result<(), PlacementError> {
    if caller == Principal::anonymous() {
        return Err(PlacementError::AnonymousCaller);
    }
    if r.settings().creation_restricted && !r.creators.contains_key(&caller) {
        return Err(PlacementError::NotAuthorized);
    }
    let limit = r.settings().max_capsules_per_owner;
    if r.owned_count(&caller) >= limit {
        return Err(PlacementError::CapsulesPerOwnerExceeded { limit });
    }
    Ok(())
}

fn no_open_bucket<M: Memory + Clone>(r: &Registry<M>, treasury: u128) -> PlacementError {
    let reason = match r.creation_blocked(treasury) {
        Some(why) => format!("no bucket takes new capsules, and none can be created: {why}"),
        None => "no bucket takes new capsules; the index is creating one".to_string(),
    };
    PlacementError::NoOpenBucket { reason }
}

/// Checks the caller and the name, picks a bucket and records the
/// capsule there as registering.
pub fn begin_create<M: Memory + Clone>(
    r: &mut Registry<M>,
    caller: Principal,
    now: u64,
    name: String,
    treasury: u128,
) -> Result<Registration, PlacementError> {
    may_create(r, caller)?;
    if name.len() > MAX_CAPSULE_NAME_BYTES {
        return Err(PlacementError::InvalidArgument {
            reason: format!("a capsule name is at most {MAX_CAPSULE_NAME_BYTES} bytes"),
        });
    }
    let bucket_no = r
        .choose_bucket()
        .ok_or_else(|| no_open_bucket(r, treasury))?;
    let bucket = r.bucket_id(bucket_no).expect("an open bucket has an id");
    let capsule_id = r.next_capsule_id();
    r.record_capsule(capsule_id, caller, bucket_no, true);
    let pending = PendingRegistration {
        bucket_no,
        capsule: IndexCapsule {
            capsule_id,
            owner: caller,
            name,
            writers: Vec::new(),
            created_at: now,
        },
        continuation: false,
    };
    r.pending
        .insert(capsule_id, crate::storable::Candid(pending.clone()));
    Ok(Registration { bucket, pending })
}

/// Whether the capsule's newest bucket is sealed, so new uploads need a
/// further bucket.
pub fn needs_continuation<M: Memory + Clone>(r: &Registry<M>, capsule_id: CapsuleId) -> bool {
    let Some(slot) = r.slot(capsule_id) else {
        return false;
    };
    if slot.has(CapsuleSlot::REGISTERING) || slot.has(CapsuleSlot::CONTINUING) {
        return false;
    }
    slot.newest_bucket()
        .and_then(|no| r.bucket(no))
        .is_some_and(|b| b.state == BucketState::Sealed)
}

/// Picks a further bucket for a capsule whose newest bucket is sealed and
/// records it as continuing; `capsule` is the capsule as its newest
/// bucket holds it (name, writers).
pub fn begin_continuation<M: Memory + Clone>(
    r: &mut Registry<M>,
    capsule: IndexCapsule,
    treasury: u128,
) -> Result<Registration, PlacementError> {
    let capsule_id = capsule.capsule_id;
    let mut slot = r
        .slot(capsule_id)
        .ok_or(PlacementError::CapsuleNotFound { capsule_id })?;
    if slot.bucket_nos().count() >= MAX_BUCKETS_PER_CAPSULE {
        return Err(PlacementError::CapsuleSpansTooManyBuckets { capsule_id });
    }
    let bucket_no = r
        .choose_bucket()
        .ok_or_else(|| no_open_bucket(r, treasury))?;
    if slot.bucket_nos().any(|b| b == bucket_no) {
        return Err(no_open_bucket(r, treasury));
    }
    slot.push_bucket(bucket_no);
    slot.flags |= CapsuleSlot::CONTINUING;
    r.set_slot(capsule_id, slot);
    if let Some(mut b) = r.bucket(bucket_no) {
        b.capsules += 1;
        b.placed_since_report = b.placed_since_report.saturating_add(1);
        r.set_bucket(bucket_no, b);
    }
    let pending = PendingRegistration {
        bucket_no,
        capsule,
        continuation: true,
    };
    r.pending
        .insert(capsule_id, crate::storable::Candid(pending.clone()));
    let bucket = r.bucket_id(bucket_no).expect("an open bucket has an id");
    Ok(Registration { bucket, pending })
}

/// The bucket holds the capsule now.
pub fn confirm<M: Memory + Clone>(r: &mut Registry<M>, capsule_id: CapsuleId) {
    r.pending.remove(&capsule_id);
    if let Some(mut slot) = r.slot(capsule_id) {
        slot.flags &= !(CapsuleSlot::REGISTERING | CapsuleSlot::CONTINUING);
        r.set_slot(capsule_id, slot);
    }
}

/// The bucket definitely did not register the capsule: take the step back.
pub fn undo<M: Memory + Clone>(r: &mut Registry<M>, pending: &PendingRegistration) {
    let capsule_id = pending.capsule.capsule_id;
    if !pending.continuation {
        r.forget_capsule(capsule_id);
        return;
    }
    r.pending.remove(&capsule_id);
    if let Some(mut slot) = r.slot(capsule_id) {
        if slot.newest_bucket() == Some(pending.bucket_no) {
            slot.pop_bucket();
        }
        slot.flags &= !CapsuleSlot::CONTINUING;
        r.set_slot(capsule_id, slot);
    }
    if let Some(mut b) = r.bucket(pending.bucket_no) {
        b.capsules = b.capsules.saturating_sub(1);
        r.set_bucket(pending.bucket_no, b);
    }
}

/// The bucket refused because it is sealed: record it so placement skips
/// it until its next report says otherwise.
pub fn mark_sealed<M: Memory + Clone>(r: &mut Registry<M>, bucket_no: BucketNo) {
    if let Some(mut b) = r.bucket(bucket_no) {
        b.state = BucketState::Sealed;
        r.set_bucket(bucket_no, b);
    }
}
