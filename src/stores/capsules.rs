//! Capsules: who owns them and who may write to them.
//!
//! Any signed-in principal creates capsules and owns them; the owner grants
//! and revokes write access. Owner and writers read and upload; only the
//! owner manages access.

use crate::candid_storable;
use crate::error::{Quota, UploadError};
use crate::stable_memory::Vm;
use crate::storable::{scoped_key, scoped_key_id, SCOPED_KEY_BYTES};
use crate::types::{Capsule, CapsuleId};
use candid::Principal;
use ic_stable_structures::{Memory, StableBTreeMap};

candid_storable!(Capsule);

/// Capsule records, the owner index, and who may create capsules when the
/// controllers restrict it.
pub struct CapsuleStore<M: Memory> {
    capsules: StableBTreeMap<CapsuleId, Capsule, Vm<M>>,
    by_owner: StableBTreeMap<[u8; SCOPED_KEY_BYTES], (), Vm<M>>,
    creators: StableBTreeMap<Principal, (), Vm<M>>,
}

impl<M: Memory + Clone> CapsuleStore<M> {
    pub fn init(capsules: Vm<M>, by_owner: Vm<M>, creators: Vm<M>) -> Self {
        Self {
            capsules: StableBTreeMap::init(capsules),
            by_owner: StableBTreeMap::init(by_owner),
            creators: StableBTreeMap::init(creators),
        }
    }
}

impl<M: Memory> CapsuleStore<M> {
    /// Whether `principal` is on the controllers' list of capsule creators.
    pub fn may_create(&self, principal: &Principal) -> bool {
        self.creators.contains_key(principal)
    }

    /// Puts `principal` on the list of capsule creators, or takes it off.
    pub fn allow_creator(&mut self, principal: Principal, allowed: bool) {
        if allowed {
            self.creators.insert(principal, ());
        } else {
            self.creators.remove(&principal);
        }
    }

    /// Allowed capsule creators after `after`, at most `limit`, and whether
    /// more follow.
    pub fn creators(&self, after: Option<Principal>, limit: usize) -> (Vec<Principal>, bool) {
        let mut keys: Box<dyn Iterator<Item = Principal> + '_> = match after {
            Some(p) => Box::new(
                self.creators
                    .keys_range((std::ops::Bound::Excluded(p), std::ops::Bound::Unbounded)),
            ),
            None => Box::new(self.creators.keys()),
        };
        let page: Vec<Principal> = keys.by_ref().take(limit).collect();
        (page, keys.next().is_some())
    }

    pub fn insert(&mut self, capsule: Capsule) {
        self.by_owner
            .insert(scoped_key(&capsule.owner, capsule.capsule_id.0), ());
        self.capsules.insert(capsule.capsule_id, capsule);
    }

    pub fn get(&self, capsule_id: CapsuleId) -> Result<Capsule, UploadError> {
        self.capsules
            .get(&capsule_id)
            .ok_or(UploadError::CapsuleNotFound { capsule_id })
    }

    /// The capsule, if `caller` may upload into it and read it.
    pub fn writable_by(
        &self,
        capsule_id: CapsuleId,
        caller: Principal,
    ) -> Result<Capsule, UploadError> {
        let capsule = self.get(capsule_id)?;
        if capsule.owner == caller || capsule.writers.contains(&caller) {
            Ok(capsule)
        } else {
            Err(UploadError::NotAuthorized)
        }
    }

    /// The capsule, if `caller` owns it.
    pub fn owned_by(
        &self,
        capsule_id: CapsuleId,
        caller: Principal,
    ) -> Result<Capsule, UploadError> {
        let capsule = self.get(capsule_id)?;
        if capsule.owner == caller {
            Ok(capsule)
        } else {
            Err(UploadError::NotAuthorized)
        }
    }

    pub fn grant(
        &mut self,
        capsule_id: CapsuleId,
        owner: Principal,
        writer: Principal,
        max_writers: u32,
    ) -> Result<Capsule, UploadError> {
        let mut capsule = self.owned_by(capsule_id, owner)?;
        if writer == Principal::anonymous() {
            return Err(UploadError::InvalidArgument {
                reason: "the anonymous principal cannot be granted write access".into(),
            });
        }
        if writer != capsule.owner && !capsule.writers.contains(&writer) {
            if capsule.writers.len() as u32 >= max_writers {
                return Err(UploadError::QuotaExceeded {
                    quota: Quota::WritersPerCapsule,
                    limit: u64::from(max_writers),
                    requested: capsule.writers.len() as u64 + 1,
                });
            }
            capsule.writers.push(writer);
            self.capsules.insert(capsule_id, capsule.clone());
        }
        Ok(capsule)
    }

    pub fn revoke(
        &mut self,
        capsule_id: CapsuleId,
        owner: Principal,
        writer: Principal,
    ) -> Result<Capsule, UploadError> {
        let mut capsule = self.owned_by(capsule_id, owner)?;
        capsule.writers.retain(|w| *w != writer);
        self.capsules.insert(capsule_id, capsule.clone());
        Ok(capsule)
    }

    /// How many capsules there are.
    pub fn len(&self) -> u64 {
        self.capsules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.capsules.is_empty()
    }

    /// The largest capsule id in use.
    pub fn last_id(&self) -> Option<CapsuleId> {
        self.capsules.last_key_value().map(|(id, _)| id)
    }

    /// Every capsule after `after`, in id order.
    pub fn all_after(&self, after: Option<CapsuleId>) -> impl Iterator<Item = Capsule> + '_ {
        let start = after.map_or(Some(0), |id| id.0.checked_add(1));
        // After the largest id there is nothing: an empty range.
        let range = match start {
            Some(start) => (
                std::ops::Bound::Included(CapsuleId(start)),
                std::ops::Bound::Unbounded,
            ),
            None => (
                std::ops::Bound::Excluded(CapsuleId(u64::MAX)),
                std::ops::Bound::Unbounded,
            ),
        };
        self.capsules.range(range).map(|entry| entry.into_pair().1)
    }

    /// How many capsules `owner` owns, counting at most `max`.
    pub fn count_owned(&self, owner: &Principal, max: usize) -> usize {
        self.by_owner
            .keys_range(scoped_key(owner, 0)..=scoped_key(owner, u64::MAX))
            .take(max)
            .count()
    }

    /// Capsules `owner` owns, after `after`, at most `limit`.
    pub fn owned(&self, owner: &Principal, after: Option<CapsuleId>, limit: usize) -> Vec<Capsule> {
        let start = scoped_key(owner, after.map_or(0, |id| id.0.saturating_add(1)));
        let end = scoped_key(owner, u64::MAX);
        self.by_owner
            .keys_range(start..=end)
            .take(limit)
            .filter_map(|key| self.capsules.get(&CapsuleId(scoped_key_id(&key))))
            .collect()
    }
}
