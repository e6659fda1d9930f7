//! Encodings of the index's stable records.

use crate::types::BucketNo;
use candid::{CandidType, Decode, Encode, Principal};
use ic_stable_structures::storable::{Bound, Storable};
use serde::de::DeserializeOwned;
use std::borrow::Cow;

/// A record stored as Candid: registry rows that change shape with
/// versions (Candid decoding tolerates added `opt` fields).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candid<T>(pub T);

impl<T: CandidType + DeserializeOwned> Storable for Candid<T> {
    const BOUND: Bound = Bound::Unbounded;

    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.clone_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        self.clone_bytes()
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        // A record the index wrote itself: failing to read it is a broken
        // invariant, not a user error.
        Candid(Decode!(&bytes, T).expect("a stable record the index wrote"))
    }
}

impl<T: CandidType> Candid<T> {
    fn clone_bytes(&self) -> Vec<u8> {
        Encode!(&self.0).expect("a record encodes")
    }
}

/// Most buckets one capsule spans (a capsule continues in a new bucket
/// each time its bucket seals: 3 × 224 GiB at the default thresholds).
pub const MAX_BUCKETS_PER_CAPSULE: usize = 3;

/// One capsule in 16 bytes: its owner's number, flags, the numbers of the
/// buckets holding it (1-based; 0 = none), oldest first, and the owner's
/// capsule recorded before it (0 = none): each owner's capsules form a
/// list from `OwnerRecord::newest`, so no per-capsule index is needed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapsuleSlot {
    pub owner_no: u32,
    pub flags: u16,
    pub buckets: [BucketNo; MAX_BUCKETS_PER_CAPSULE],
    pub previous_of_owner: u32,
}

impl CapsuleSlot {
    /// The slot holds a capsule.
    pub const IN_USE: u16 = 1;
    /// Its registration on its newest bucket is not confirmed yet.
    pub const REGISTERING: u16 = 2;
    /// Being registered on a further bucket (a continuation in flight).
    pub const CONTINUING: u16 = 4;

    pub fn in_use(&self) -> bool {
        self.flags & Self::IN_USE != 0
    }

    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    /// The bucket numbers (0-based) holding the capsule, oldest first.
    pub fn bucket_nos(&self) -> impl Iterator<Item = BucketNo> + '_ {
        self.buckets.iter().take_while(|b| **b != 0).map(|b| *b - 1)
    }

    pub fn newest_bucket(&self) -> Option<BucketNo> {
        self.bucket_nos().last()
    }

    /// Adds a bucket (0-based number); false when the slot is full.
    pub fn push_bucket(&mut self, bucket_no: BucketNo) -> bool {
        match self.buckets.iter_mut().find(|b| **b == 0) {
            Some(free) => {
                *free = bucket_no + 1;
                true
            }
            None => false,
        }
    }

    pub fn pop_bucket(&mut self) {
        if let Some(last) = self.buckets.iter_mut().rev().find(|b| **b != 0) {
            *last = 0;
        }
    }
}

impl Storable for CapsuleSlot {
    const BOUND: Bound = Bound::Bounded {
        max_size: 16,
        is_fixed_size: true,
    };

    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.into_bytes_array().to_vec())
    }

    fn into_bytes(self) -> Vec<u8> {
        self.into_bytes_array().to_vec()
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        let mut buckets = [0; MAX_BUCKETS_PER_CAPSULE];
        for (n, b) in buckets.iter_mut().enumerate() {
            *b = u16_at(6 + 2 * n);
        }
        CapsuleSlot {
            owner_no: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            flags: u16_at(4),
            buckets,
            previous_of_owner: u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]),
        }
    }
}

impl CapsuleSlot {
    fn into_bytes_array(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..4].copy_from_slice(&self.owner_no.to_le_bytes());
        out[4..6].copy_from_slice(&self.flags.to_le_bytes());
        for (n, b) in self.buckets.iter().enumerate() {
            out[6 + 2 * n..8 + 2 * n].copy_from_slice(&b.to_le_bytes());
        }
        out[12..].copy_from_slice(&self.previous_of_owner.to_le_bytes());
        out
    }
}

/// An owner: their number (capsule slots name owners by it), how many
/// capsules they own (the per-owner limit reads it in O(1)) and the one
/// recorded last (the head of their list).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OwnerRecord {
    pub owner_no: u32,
    pub capsules: u32,
    pub newest: u32,
}

impl Storable for OwnerRecord {
    const BOUND: Bound = Bound::Bounded {
        max_size: 12,
        is_fixed_size: true,
    };

    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut out = self.owner_no.to_le_bytes().to_vec();
        out.extend_from_slice(&self.capsules.to_le_bytes());
        out.extend_from_slice(&self.newest.to_le_bytes());
        out
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        OwnerRecord {
            owner_no: u32_at(0),
            capsules: u32_at(4),
            newest: u32_at(8),
        }
    }
}

/// A principal in a fixed 30-byte slot (length, then at most 29 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrincipalSlot(pub [u8; 30]);

impl From<Principal> for PrincipalSlot {
    fn from(p: Principal) -> Self {
        let bytes = p.as_slice();
        let mut out = [0u8; 30];
        out[0] = bytes.len() as u8;
        out[1..1 + bytes.len()].copy_from_slice(bytes);
        PrincipalSlot(out)
    }
}

impl PrincipalSlot {
    pub fn principal(&self) -> Principal {
        let len = usize::from(self.0[0]).min(29);
        Principal::from_slice(&self.0[1..1 + len])
    }
}

impl Storable for PrincipalSlot {
    const BOUND: Bound = Bound::Bounded {
        max_size: 30,
        is_fixed_size: true,
    };

    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }

    fn into_bytes(self) -> Vec<u8> {
        self.0.to_vec()
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let mut out = [0u8; 30];
        out.copy_from_slice(&bytes);
        PrincipalSlot(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capsule_slot_round_trips_in_16_bytes() {
        let mut slot = CapsuleSlot {
            owner_no: 0x0102_0304,
            flags: CapsuleSlot::IN_USE | CapsuleSlot::REGISTERING,
            buckets: [0; MAX_BUCKETS_PER_CAPSULE],
            previous_of_owner: 77,
        };
        assert!(slot.push_bucket(0));
        assert!(slot.push_bucket(65_000));
        let bytes = slot.to_bytes();
        assert_eq!(bytes.len(), 16);
        let back = CapsuleSlot::from_bytes(bytes);
        assert_eq!(back, slot);
        assert_eq!(back.bucket_nos().collect::<Vec<_>>(), vec![0, 65_000]);
        assert_eq!(back.newest_bucket(), Some(65_000));
    }

    #[test]
    fn a_full_slot_takes_no_further_bucket() {
        let mut slot = CapsuleSlot::default();
        for n in 0..MAX_BUCKETS_PER_CAPSULE as u16 {
            assert!(slot.push_bucket(n));
        }
        assert!(!slot.push_bucket(9));
        slot.pop_bucket();
        assert_eq!(slot.bucket_nos().count(), MAX_BUCKETS_PER_CAPSULE - 1);
    }

    #[test]
    fn principal_slots_keep_every_length() {
        for p in [
            Principal::anonymous(),
            Principal::management_canister(),
            Principal::from_slice(&[7; 29]),
            Principal::from_text("rwlgt-iiaaa-aaaaa-aaaaa-cai").unwrap(),
        ] {
            let slot = PrincipalSlot::from(p);
            assert_eq!(PrincipalSlot::from_bytes(slot.to_bytes()).principal(), p);
        }
    }
}
