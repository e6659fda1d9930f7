//! The bucket's settings: the index canister that manages this canister
//! (none: standalone), the state the index set, and the bytes
//! `uploads_put_chunk` ever accepted.
//!
//! One small cell in a fixed binary encoding: `uploads_begin` reads the
//! state from the cell's heap copy, and `uploads_put_chunk` rewrites 41
//! bytes to count its chunk (no Candid on either path).

use crate::stable_memory::Vm;
use crate::storable::read_u64;
use candid::{CandidType, Principal};
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{Memory, StableCell, Storable};
use serde::Deserialize;
use std::borrow::Cow;

/// Where a bucket stands for the index that manages it.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BucketState {
    /// Takes new capsules and new uploads.
    #[default]
    Open,
    /// The index places no new capsules here; nothing changes on the
    /// bucket itself.
    Closed,
    /// No new capsule and no new upload session; uploads in progress
    /// finish, and everything else goes on.
    Sealed,
}

/// What the cell holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BucketSettings {
    /// The index canister managing this bucket; `None`: standalone.
    pub index: Option<Principal>,
    /// Always `Open` when there is no index.
    pub state: BucketState,
    /// Bytes ever accepted by `uploads_put_chunk` (new or replacing
    /// bytes; a duplicate chunk is not counted). Only grows.
    pub uploaded_bytes_total: u64,
}

const SETTINGS_VERSION: u8 = 1;
const PRINCIPAL_BYTES: usize = 29;
/// Version, state, whether there is an index, its length, the principal
/// padded to 29 bytes, the counter.
const SETTINGS_LEN: usize = 4 + PRINCIPAL_BYTES + 8;

impl Storable for BucketSettings {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut bytes = vec![0u8; SETTINGS_LEN];
        bytes[0] = SETTINGS_VERSION;
        bytes[1] = match self.state {
            BucketState::Open => 0,
            BucketState::Closed => 1,
            BucketState::Sealed => 2,
        };
        if let Some(index) = self.index {
            let principal = index.as_slice();
            bytes[2] = 1;
            bytes[3] = principal.len() as u8;
            bytes[4..4 + principal.len()].copy_from_slice(principal);
        }
        bytes[4 + PRINCIPAL_BYTES..].copy_from_slice(&self.uploaded_bytes_total.to_be_bytes());
        bytes
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        // A later version may append fields; the prefix keeps its meaning.
        assert!(
            bytes.len() >= SETTINGS_LEN && bytes[0] >= SETTINGS_VERSION,
            "bug: the bucket settings have an unknown layout"
        );
        let state = match bytes[1] {
            0 => BucketState::Open,
            1 => BucketState::Closed,
            2 => BucketState::Sealed,
            other => panic!("bug: unknown bucket state {other}"),
        };
        let len = usize::from(bytes[3]).min(PRINCIPAL_BYTES);
        BucketSettings {
            index: (bytes[2] == 1).then(|| Principal::from_slice(&bytes[4..4 + len])),
            state,
            uploaded_bytes_total: read_u64(&bytes, 4 + PRINCIPAL_BYTES),
        }
    }

    const BOUND: Bound = Bound::Unbounded;
}

/// The bucket's settings over their cell (`stable_memory::BUCKET`).
pub struct BucketStore<M: Memory> {
    cell: StableCell<BucketSettings, Vm<M>>,
}

impl<M: Memory + Clone> BucketStore<M> {
    /// Opens the cell, or lays it out (standalone, open, nothing counted).
    pub fn init(memory: Vm<M>) -> Self {
        Self {
            cell: StableCell::init(memory, BucketSettings::default()),
        }
    }
}

impl<M: Memory> BucketStore<M> {
    /// The settings, from the cell's heap copy.
    pub fn settings(&self) -> &BucketSettings {
        self.cell.get()
    }

    pub fn index(&self) -> Option<Principal> {
        self.settings().index
    }

    pub fn state(&self) -> BucketState {
        self.settings().state
    }

    /// Whether `caller` is the index managing this bucket.
    pub fn is_index(&self, caller: &Principal) -> bool {
        self.index().as_ref() == Some(caller)
    }

    /// Managed by `index` from now on, or standalone again (`None`, which
    /// is `Open`).
    pub fn set_index(&mut self, index: Option<Principal>) {
        let mut settings = *self.settings();
        settings.index = index;
        if index.is_none() {
            settings.state = BucketState::Open;
        }
        self.cell.set(settings);
    }

    pub fn set_state(&mut self, state: BucketState) {
        let mut settings = *self.settings();
        settings.state = state;
        self.cell.set(settings);
    }

    /// `bytes` more accepted by `uploads_put_chunk`.
    pub fn count_uploaded(&mut self, bytes: u64) {
        let mut settings = *self.settings();
        settings.uploaded_bytes_total = settings.uploaded_bytes_total.saturating_add(bytes);
        self.cell.set(settings);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the stored encoding: changing it would misread every bucket's
    /// settings after an upgrade.
    #[test]
    fn settings_encoding_is_pinned() {
        let index = Principal::from_slice(&[0xAB, 0xCD]);
        let settings = BucketSettings {
            index: Some(index),
            state: BucketState::Sealed,
            uploaded_bytes_total: 0x0102,
        };
        let bytes = settings.into_bytes();
        let mut expected = vec![0u8; SETTINGS_LEN];
        expected[..6].copy_from_slice(&[1, 2, 1, 2, 0xAB, 0xCD]);
        expected[SETTINGS_LEN - 2..].copy_from_slice(&[1, 2]);
        assert_eq!(bytes, expected);
        assert_eq!(BucketSettings::from_bytes(Cow::Owned(bytes)), settings);
        let standalone = BucketSettings::default();
        assert_eq!(
            BucketSettings::from_bytes(standalone.to_bytes()),
            standalone
        );
        let longest = BucketSettings {
            index: Some(Principal::from_slice(&[7; 29])),
            state: BucketState::Closed,
            uploaded_bytes_total: u64::MAX,
        };
        assert_eq!(BucketSettings::from_bytes(longest.to_bytes()), longest);
    }
}
