//! Several subnets in one host: each has its own id and its own range of
//! canister ids (2^20 ids, as mainnet's ranges), and canisters learn theirs
//! from `ic0.subnet_self_copy`.
//!
//! Subnet `k` (0 is the default subnet every [`Host`] starts with) hands out
//! the counters `k << 20 ..` (8-byte big-endian counter + `0x01 0x01`), so the
//! default subnet keeps the ids the host always gave (`rwlgt-iiaaa-aaaaa-aaaaa-cai`
//! first), except that it skips the ids of the system canisters the host
//! answers for itself (the cycles minting canister, counter 4).

use super::*;

/// Canister ids per subnet: subnet `k` allocates counters from `k << 20`.
pub const SUBNET_RANGE_BITS: u32 = 20;

/// The id of the host's subnet number `index`: the self-authenticating
/// principal of SHA-256("subnet" ‖ index as 8 big-endian bytes) (an opaque
/// 29-byte id like the IC's subnet ids, deterministic).
pub fn subnet_id_of_index(index: u64) -> Principal {
    let mut h = Sha256::new();
    h.update(b"subnet");
    h.update(index.to_be_bytes());
    let digest: [u8; 32] = h.finalize().into();
    Principal::self_authenticating(digest)
}

/// The range a canister id of the host's form (8-byte counter + `0x01
/// 0x01`) falls in: `counter >> 20`; `None` for any other principal.
pub fn range_index_of(id: &[u8]) -> Option<u64> {
    if id.len() != 10 || id[8..] != [1, 1] {
        return None;
    }
    let n = u64::from_be_bytes(id[..8].try_into().expect("8 bytes"));
    Some(n >> SUBNET_RANGE_BITS)
}

/// Default settings of a new canister, as the IC gives them (the bridge's
/// management canister uses them too).
pub fn default_settings(
    controllers: Vec<Principal>,
) -> ic_management_canister_types::DefiniteCanisterSettings {
    use candid::Nat;
    use ic_management_canister_types::{LogVisibility, SnapshotVisibility};
    ic_management_canister_types::DefiniteCanisterSettings {
        controllers,
        compute_allocation: Nat::from(0u8),
        memory_allocation: Nat::from(0u8),
        freezing_threshold: Nat::from(2_592_000u64),
        reserved_cycles_limit: Nat::from(5_000_000_000_000u64),
        log_visibility: LogVisibility::Controllers,
        log_memory_limit: Nat::from(4096u64),
        snapshot_visibility: SnapshotVisibility::Controllers,
        wasm_memory_limit: Nat::from(3_221_225_472u64),
        wasm_memory_threshold: Nat::from(0u8),
        environment_variables: Vec::new(),
    }
}

impl Meta {
    pub(super) fn new(subnet: usize, controllers: Vec<Principal>, cycles: u128) -> Self {
        Meta {
            subnet,
            status: RunStatus::Running,
            settings: default_settings(controllers),
            module_hash: None,
            empty_cycles: cycles,
            empty_version: 0,
            stop_waiters: Vec::new(),
            wasm_memory_limit: None,
        }
    }
}

impl Host {
    /// Adds a subnet (with its own canister id range) and returns its id.
    pub fn add_subnet(&mut self) -> Principal {
        let index = self.subnets.len() as u64;
        let id = subnet_id_of_index(index);
        self.subnets.push(SubnetInfo {
            id,
            next: index << SUBNET_RANGE_BITS,
            key: Some(Arc::new(SubnetKey::from_seed(
                &crate::certification::subnet_seed(index),
            ))),
            delegation: std::sync::OnceLock::new(),
        });
        id
    }

    /// The canister ids of subnet `index`'s range (first, last).
    pub(super) fn canister_range(&self, index: usize) -> (Principal, Principal) {
        let first = (index as u64) << SUBNET_RANGE_BITS;
        (
            canister_id(first),
            canister_id(first + (1 << SUBNET_RANGE_BITS) - 1),
        )
    }

    /// The ids of the host's subnets, the default subnet first.
    pub fn subnets(&self) -> Vec<Principal> {
        self.subnets.iter().map(|s| s.id).collect()
    }

    /// The subnet every [`Host`] starts with, where [`Host::install`] puts canisters.
    pub fn default_subnet(&self) -> Principal {
        self.subnets[0].id
    }

    /// The subnet a canister (with a module or empty) is on.
    pub fn subnet_of(&self, canister: Principal) -> Option<Principal> {
        if !self.exists(canister) {
            return None;
        }
        Some(self.subnets[self.subnet_index_of(canister)].id)
    }

    pub(super) fn subnet_index(&self, subnet: Principal) -> Option<usize> {
        self.subnets.iter().position(|s| s.id == subnet)
    }

    /// The subnet index of a canister: recorded at creation, else its id's range.
    pub(super) fn subnet_index_of(&self, canister: Principal) -> usize {
        if let Some(m) = self.meta.get(&canister) {
            return m.subnet;
        }
        range_index_of(canister.as_slice())
            .map(|i| i as usize)
            .filter(|i| *i < self.subnets.len())
            .unwrap_or(0)
    }

    /// Whether the host answers calls to `id` itself (management canister
    /// aside): such ids are never given to canisters.
    pub(super) fn is_system_canister(&self, id: Principal) -> bool {
        id == cycles_minting_canister()
    }

    /// The id the next canister created on `subnet` gets (not taken yet).
    pub(super) fn peek_canister_id(&self, subnet: usize) -> (Principal, u64) {
        let mut n = self.subnets[subnet].next;
        loop {
            let id = canister_id(n);
            if !self.is_system_canister(id) && !self.exists(id) {
                return (id, n);
            }
            n += 1;
        }
    }

    /// Takes the id the next canister created on `subnet` gets.
    pub(super) fn allocate_canister_id(&mut self, subnet: usize) -> Principal {
        let (id, n) = self.peek_canister_id(subnet);
        self.subnets[subnet].next = n + 1;
        id
    }

    /// [`Host::install`] on another subnet: a new canister id of that
    /// subnet's range, `canister_init(init_arg)` run with `controller` as
    /// caller and only controller.
    pub fn install_on(
        &mut self,
        subnet: Principal,
        wasm: &[u8],
        init_arg: Vec<u8>,
        controller: Principal,
    ) -> Result<Principal, HostError> {
        let index = self
            .subnet_index(subnet)
            .ok_or_else(|| HostError::InvalidWasm(format!("the host has no subnet {subnet}")))?;
        let (id, n) = self.peek_canister_id(index);
        self.meta
            .insert(id, Meta::new(index, vec![controller], DEFAULT_CYCLES));
        if let Err(e) = self.install_at(id, wasm, init_arg, controller) {
            self.meta.remove(&id);
            return Err(e);
        }
        self.subnets[index].next = n + 1;
        Ok(id)
    }

    /// The host's record of a canister, made on first use for a canister
    /// installed at an id the host did not create (e.g. one
    /// [`Host::reserve_canister_id`] gave).
    pub(super) fn ensure_meta(&mut self, id: Principal, controller: Principal) -> &mut Meta {
        if !self.meta.contains_key(&id) {
            let subnet = self.subnet_index_of(id);
            self.meta
                .insert(id, Meta::new(subnet, vec![controller], DEFAULT_CYCLES));
        }
        self.meta.get_mut(&id).expect("just inserted")
    }
}
