//! The [`Host`]: a subnet-like environment holding canisters, the clock, the
//! queue of inter-canister messages and the call contexts.
//!
//! Message delivery: an update/timer/callback that commits hands its performed
//! calls to the queue; [`Host::update`] then delivers queued messages until its
//! own call context is answered (so `async` update methods awaiting calls
//! work), [`Host::tick`] runs due global timers and delivers everything until
//! quiescent. Calls to canisters this host does not hold are accepted by
//! `call_perform` (it returns 0, as the replica does for an unknown
//! destination) and later answered by invoking the reject callback with code
//! 3 (`DESTINATION_INVALID`).
//!
//! The host answers two system canisters itself: the management canister
//! `aaaaa-aa` (create, install, settings, status, cycles, stop/start,
//! uninstall, delete, `raw_rand`: see `management.rs`) and a stand-in of the
//! cycles minting canister ([`cycles_minting_canister`], `create_canister`
//! with a subnet selection).
//!
//! Several subnets ([`Host::add_subnet`]): each has its own id, canister id
//! range and certification key; requests between subnets are limited to
//! [`Limits::max_call_bytes`], on one subnet to
//! [`Limits::max_same_subnet_call_bytes`].
//!
//! Cycles attached to calls move (accepted by the callee, the rest
//! refunded); charging for messages, calls and memory is optional
//! ([`Host::set_charge_cycles`]). [`Fault`]s can be injected into calls and
//! installs.

mod cycles;
mod delivery;
mod ingress;
mod install;
mod management;
pub use install::CanisterSnapshot;
mod subnets;
mod timers;
pub use cycles::{
    EXECUTION_FEE, INGRESS_BYTE_FEE, INGRESS_MESSAGE_FEE, STORAGE_FEE_PER_GIB_SECOND,
};
pub use management::{
    CmcCreateCanisterArg, CmcCreateCanisterError, CmcCreateCanisterResult, MemorySizes,
    StatusReply, SubnetFilter, SubnetSelection, MAX_CONTROLLERS,
};
pub use subnets::{default_settings, range_index_of, subnet_id_of_index, SUBNET_RANGE_BITS};

use crate::canister::{Canister, Entry};
use crate::certification::{state_tree, PendingCertificate, SubnetKey, DEFAULT_SUBNET_SEED};
use crate::limits::Limits;
use crate::stable_memory::WASM_PAGE;
use crate::state::{Callback, HostState, Kind, MessageContext, Response};
use crate::HostError;
use candid::Principal;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use wasmi::{CompilationMode, Config, Engine};

/// 2026-01-01T00:00:00Z in nanoseconds since the epoch.
pub const DEFAULT_TIME_NS: u64 = 1_767_225_600_000_000_000;

/// Bound on delivery rounds in one [`Host::tick`] (and on messages delivered
/// while an update waits for its reply).
const MAX_ROUNDS: usize = 10_000;

enum Origin {
    Ingress,
    System,
    Call {
        caller: Principal,
        caller_ctx: u64,
        /// `msg_caller` of the caller's call context (seen by its callbacks).
        caller_origin: Vec<u8>,
        callback: Callback,
    },
}

struct CallContext {
    origin: Origin,
    /// The canister the call context belongs to (the management canister
    /// or the CMC stand-in for calls the host answers itself).
    canister: Principal,
    responded: bool,
    outstanding: usize,
    response: Option<Response>,
    /// Cycles of the incoming call not (yet) accepted: refunded with the response.
    available: u128,
    /// `msg_deadline` of the incoming call (0: unbounded wait).
    deadline: u64,
    /// [`Fault::TimeoutAfterExecution`]: the caller gets "deadline expired"
    /// instead of the response.
    expire: bool,
}

enum Task {
    Request {
        caller: Principal,
        caller_ctx: u64,
        caller_origin: Vec<u8>,
        callee: Vec<u8>,
        method: String,
        arg: Vec<u8>,
        callback: Callback,
        cycles: u128,
        /// When the caller stops waiting (bounded-wait calls), else 0.
        deadline: u64,
    },
    Response {
        caller: Principal,
        caller_ctx: u64,
        caller_origin: Vec<u8>,
        callback: Callback,
        response: Response,
        /// Cycles going back to the caller.
        refund: u128,
        /// The call's deadline (0: unbounded wait), `msg_deadline` in its callbacks.
        deadline: u64,
    },
}

/// Where a canister is in its lifecycle (`canister_status`'s `status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RunStatus {
    /// Executes calls (the state of a new canister).
    #[default]
    Running,
    /// `stop_canister` was called and call contexts are still open: new
    /// calls are rejected, responses are still executed.
    Stopping,
    /// Rejects every call and ingress message (code 5, IC0508).
    Stopped,
}

/// A fault to inject in the next matching call ([`Host::inject_fault`]);
/// each fires once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The next call (from a canister) to `callee.method` is rejected with
    /// `code` and `message` without executing.
    RejectCall {
        callee: Principal,
        method: String,
        code: u32,
        message: String,
    },
    /// The next bounded-wait call (`call_with_best_effort_response`) to
    /// `callee.method` executes and commits in the callee, but the caller
    /// gets reject code 6 (`SYS_UNKNOWN`) "deadline expired" instead of
    /// the response (cycles the callee did not accept are lost, as when a
    /// best-effort response is dropped). Unbounded-wait calls don't fire it.
    TimeoutAfterExecution { callee: Principal, method: String },
    /// The next install, reinstall or upgrade of `canister` fails as if
    /// `canister_init` / `canister_post_upgrade` trapped (nothing changes).
    TrapInstall { canister: Principal },
}

/// Cycles the management canister keeps for `create_canister` on a
/// 13-node application subnet (the rest of the attached cycles become the
/// new canister's balance).
pub const CREATE_CANISTER_FEE: u128 = 500_000_000_000;

/// The cycles minting canister's id on mainnet (counter 4 of the NNS
/// range), answered by the host's stand-in ([`Host`] never gives it to a
/// canister of its own).
pub fn cycles_minting_canister() -> Principal {
    canister_id(4)
}

/// What the host keeps of every canister, empty ones included.
pub(super) struct Meta {
    /// Index in `Host::subnets`.
    subnet: usize,
    status: RunStatus,
    /// The settings in effect (`controllers` mirrored into the module's
    /// `HostState` for `ic0.is_controller`).
    settings: ic_management_canister_types::DefiniteCanisterSettings,
    /// SHA-256 of the module as given to the install (compressed or not).
    module_hash: Option<[u8; 32]>,
    /// The balance while the canister has no module (afterwards the
    /// module's `HostState` holds it).
    empty_cycles: u128,
    /// `canister_version` while empty.
    empty_version: u64,
    /// Management call contexts of `stop_canister` waiting for the canister to stop.
    stop_waiters: Vec<u64>,
    /// `wasm_memory_limit` set through `update_settings` (`None`: the
    /// host's [`Limits::wasm_memory_limit`]; 0: no limit).
    wasm_memory_limit: Option<u64>,
}

/// The balance of a canister the host creates without being given cycles
/// ([`Host::install`], [`Host::install_at`]): 100 T.
pub const DEFAULT_CYCLES: u128 = 100_000_000_000_000;

pub(super) struct SubnetInfo {
    id: Principal,
    /// The counter the next canister id of this subnet is made from.
    next: u64,
    /// The subnet's signing key (the default subnet: `Host::subnet_key`, the root key).
    key: Option<Arc<SubnetKey>>,
    /// The root key's delegation to `key`, made when first needed.
    delegation: std::sync::OnceLock<Vec<u8>>,
}

/// What one message cost, counted as the replica accounts it: its
/// instructions and the 4 KiB pages it dirtied (heap and stable pages both
/// count toward the replica's per-round heap delta limit).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageStats {
    /// Which entry point ran.
    pub kind: Kind,
    /// The method called; for other messages the export or `callback`.
    pub method: String,
    /// Instructions charged, as [`Host::last_instructions`] reports them.
    pub instructions: u64,
    /// Distinct 4 KiB stable memory pages written.
    pub stable_dirty_pages: u64,
    /// Distinct 4 KiB stable memory pages read or written.
    pub stable_accessed_pages: u64,
    /// 4 KiB heap pages whose contents changed (see
    /// [`Canister::heap_dirty_pages`]: a lower bound of the replica's count,
    /// which also counts pages rewritten with the same bytes).
    pub heap_dirty_pages: u64,
    /// Whether its changes were kept (false: it trapped, or it was a query).
    pub committed: bool,
}

/// An IC-like environment of one or more subnets holding canisters. Canister
/// ids are plain [`Principal`]s (`CanisterId` is not a separate type).
pub struct Host {
    engine: Engine,
    canisters: BTreeMap<Principal, Canister>,
    meta: BTreeMap<Principal, Meta>,
    subnets: Vec<SubnetInfo>,
    faults: Vec<Fault>,
    charge_cycles: bool,
    time: u64,
    limits: Limits,
    last_instructions: u64,
    last_stats: MessageStats,
    message_log: Option<Vec<MessageStats>>,
    queue: VecDeque<Task>,
    contexts: HashMap<u64, CallContext>,
    next_ctx: u64,
    logs: Vec<String>,
    echo_logs: bool,
    subnet_key: Arc<SubnetKey>,
    random_seed: [u8; 32],
    random_draws: u64,
}

/// Seed of `raw_rand`'s generator in a new [`Host`].
pub const DEFAULT_RANDOM_SEED: [u8; 32] = [0x5e; 32];

impl Default for Host {
    fn default() -> Self {
        Self::new()
    }
}

fn canister_id(n: u64) -> Principal {
    let mut b = n.to_be_bytes().to_vec();
    b.extend_from_slice(&[1, 1]);
    Principal::from_slice(&b)
}

impl Host {
    /// A host with no canisters; time starts at 2026-01-01T00:00:00Z.
    pub fn new() -> Self {
        let mut config = Config::default();
        config.compilation_mode(CompilationMode::LazyTranslation);
        Host {
            engine: Engine::new(&config),
            canisters: BTreeMap::new(),
            meta: BTreeMap::new(),
            subnets: vec![SubnetInfo {
                id: subnet_id_of_index(0),
                next: 0,
                key: None,
                delegation: std::sync::OnceLock::new(),
            }],
            faults: Vec::new(),
            charge_cycles: false,
            time: DEFAULT_TIME_NS,
            limits: Limits::default(),
            last_instructions: 0,
            last_stats: MessageStats::default(),
            message_log: None,
            queue: VecDeque::new(),
            contexts: HashMap::new(),
            next_ctx: 0,
            logs: Vec::new(),
            echo_logs: true,
            subnet_key: Arc::new(SubnetKey::from_seed(DEFAULT_SUBNET_SEED)),
            random_seed: DEFAULT_RANDOM_SEED,
            random_draws: 0,
        }
    }

    /// The subnet's public key, DER-encoded as the IC publishes its root
    /// key (133 bytes): what verifiers of this host's data certificates
    /// (`ic-response-verification`, `ic-certificate-verification`) take as
    /// the root key. See [`crate::certification`].
    pub fn root_key(&self) -> Vec<u8> {
        self.subnet_key.root_key_der().to_vec()
    }

    /// Replaces the subnet key with the one derived from `seed` (hosts built
    /// with the same seed share their root key; the default seed is
    /// [`DEFAULT_SUBNET_SEED`]).
    pub fn set_subnet_seed(&mut self, seed: &[u8]) {
        self.subnet_key = Arc::new(SubnetKey::from_seed(seed));
        for s in &mut self.subnets {
            // Delegations are signed by the root key.
            s.delegation = std::sync::OnceLock::new();
        }
    }

    /// The data certificate a query of `canister` would see now: the state
    /// tree with its certified data and the host time, signed by the subnet
    /// key (CBOR, as `ic0.data_certificate_copy` returns it).
    pub fn data_certificate(&self, canister: Principal) -> Result<Vec<u8>, HostError> {
        if !self.canisters.contains_key(&canister) {
            return Err(HostError::CanisterNotFound(canister));
        }
        Ok(self.pending_certificate(canister).bytes().to_vec())
    }

    fn pending_certificate(&self, canister: Principal) -> PendingCertificate {
        let subnet = self.subnet_index_of(canister);
        let state = state_tree(
            self.canisters
                .iter()
                .filter(|(id, _)| self.subnet_index_of(**id) == subnet)
                .map(|(id, c)| (id, c.state().certified_data.as_slice())),
            self.time,
        );
        let info = &self.subnets[subnet];
        match &info.key {
            None => PendingCertificate::new(&state, &canister, self.subnet_key.clone()),
            Some(key) => {
                let delegation = info.delegation.get_or_init(|| {
                    crate::certification::delegation_certificate(
                        &self.subnet_key,
                        &info.id,
                        key,
                        &[self.canister_range(subnet)],
                        self.time,
                    )
                });
                PendingCertificate::new(&state, &canister, key.clone())
                    .with_delegation(&info.id, delegation.clone())
            }
        }
    }

    /// The public key (DER, as the root key) that signs the certificates of
    /// `subnet`'s canisters: the root key for the default subnet, the
    /// subnet's own key (delegated to by the root key) for the others.
    pub fn subnet_public_key(&self, subnet: Principal) -> Option<Vec<u8>> {
        let info = &self.subnets[self.subnet_index(subnet)?];
        Some(match &info.key {
            None => self.root_key(),
            Some(k) => k.root_key_der().to_vec(),
        })
    }

    /// Reseeds the generator behind the management canister's `raw_rand`.
    ///
    /// `raw_rand` here is deterministic, for reproducible tests: the n-th
    /// call (counting from 0 since the last reseed) answers
    /// SHA-256(seed ‖ n as 8 big-endian bytes), 32 bytes. A new host starts
    /// with [`DEFAULT_RANDOM_SEED`]. On the IC the bytes come from the
    /// subnet's random beacon and nobody can predict them; here anyone who
    /// knows the seed can.
    pub fn set_random_seed(&mut self, seed: [u8; 32]) {
        self.random_seed = seed;
        self.random_draws = 0;
    }

    fn raw_rand(&mut self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.random_seed);
        h.update(self.random_draws.to_be_bytes());
        self.random_draws += 1;
        h.finalize().into()
    }

    /// Whether `debug_print` lines are also written to stderr as they are
    /// collected (the default). They are always kept in [`Host::logs`];
    /// a benchmark turns the echo off so its table stays readable.
    pub fn set_echo_logs(&mut self, echo: bool) {
        self.echo_logs = echo;
    }

    /// Current host time (ns since the epoch).
    pub fn time(&self) -> u64 {
        self.time
    }

    /// Sets the host time. With [`Host::set_charge_cycles`] on, moving it
    /// forward charges every canister for its memory over the interval.
    pub fn set_time(&mut self, ns: u64) {
        let dt = ns.saturating_sub(self.time);
        self.time = ns;
        self.charge_storage(dt);
    }

    /// Advances the host time. A jump of many timer intervals makes all
    /// of a repeating ic-cdk-timers timer's missed runs due at once; the
    /// library then logs "too many concurrent calls for single timer" and
    /// skips the runs in between. That line is expected after such jumps.
    pub fn advance_time(&mut self, d: Duration) {
        let dt = d.as_nanos() as u64;
        self.time += dt;
        self.charge_storage(dt);
    }

    /// Instructions the last executed message used (for `update`: the ingress
    /// message itself, not the callbacks it triggered).
    pub fn last_instructions(&self) -> u64 {
        self.last_instructions
    }

    /// Instructions and dirtied pages of the last executed message (for
    /// `update`: the ingress message itself, not the callbacks it
    /// triggered; for `upgrade`: pre- and post-upgrade together).
    pub fn last_message_stats(&self) -> &MessageStats {
        &self.last_stats
    }

    /// Starts (or stops, dropping it) a log of every message executed from
    /// now on, timers and callbacks included; see [`Host::take_message_log`].
    pub fn record_messages(&mut self, on: bool) {
        self.message_log = on.then(Vec::new);
    }

    /// The messages executed since the log was started or last taken.
    pub fn take_message_log(&mut self) -> Vec<MessageStats> {
        self.message_log
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn note(&mut self, stats: MessageStats) {
        self.last_instructions = stats.instructions;
        if let Some(log) = &mut self.message_log {
            log.push(stats.clone());
        }
        self.last_stats = stats;
    }

    /// Replaces the limits.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
        let max_pages = limits.max_stable_bytes / WASM_PAGE;
        for c in self.canisters.values_mut() {
            c.state_mut().max_stable_pages = max_pages;
        }
    }

    /// Current limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Stable memory size of a canister in bytes (0 if unknown).
    pub fn stable_memory_bytes(&self, canister: Principal) -> u64 {
        self.canisters
            .get(&canister)
            .map(|c| c.state().stable.size_pages() * WASM_PAGE)
            .unwrap_or(0)
    }

    /// Wasm heap size of a canister in bytes (0 if unknown).
    pub fn heap_bytes(&self, canister: Principal) -> u64 {
        self.canisters
            .get(&canister)
            .map(|c| c.heap_bytes())
            .unwrap_or(0)
    }

    /// Reads stable memory without charging the canister (zeros beyond what was written).
    pub fn read_stable_memory(&self, canister: Principal, offset: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        if let Some(c) = self.canisters.get(&canister) {
            c.state().stable.read_untracked(offset, &mut v);
        }
        v
    }

    /// Writes stable memory outside any message, growing it if needed: for
    /// tests that need state no canister API makes (data from a future
    /// version, damage).
    pub fn write_stable_memory(&mut self, canister: Principal, offset: u64, bytes: &[u8]) {
        let c = self
            .canisters
            .get_mut(&canister)
            .unwrap_or_else(|| panic!("no canister {canister}"));
        let stable = &mut c.state_mut().stable;
        let end_pages = (offset + bytes.len() as u64).div_ceil(WASM_PAGE);
        if end_pages > stable.size_pages() {
            stable.grow(end_pages - stable.size_pages(), u64::MAX);
        }
        stable
            .write(offset, bytes)
            .expect("in bounds after growing");
        stable.start_message();
    }

    /// A fingerprint of all of a canister's state a message can change
    /// (heap, globals, stable memory, certified data, timer): equal before
    /// and after a message that left no trace.
    pub fn state_fingerprint(&self, canister: Principal) -> u64 {
        use std::hash::Hasher;
        let mut state = std::collections::hash_map::DefaultHasher::new();
        if let Some(c) = self.canisters.get(&canister) {
            c.hash_state(&mut state);
        }
        state.finish()
    }

    /// The key that signs this host's certificates (the root key's secret
    /// half), for a network in front of the host that certifies its own
    /// state tree (request statuses) with the same key.
    pub fn subnet_key(&self) -> Arc<SubnetKey> {
        self.subnet_key.clone()
    }

    /// The canister's certified data.
    pub fn certified_data(&self, canister: Principal) -> Vec<u8> {
        self.canisters
            .get(&canister)
            .map(|c| c.state().certified_data.clone())
            .unwrap_or_default()
    }

    /// The canister's global timer deadline (0 = none).
    pub fn global_timer(&self, canister: Principal) -> u64 {
        self.canisters
            .get(&canister)
            .map(|c| c.state().global_timer)
            .unwrap_or(0)
    }

    /// All `debug_print` lines so far (each prefixed with `[Canister <id>]`).
    pub fn logs(&self) -> &[String] {
        &self.logs
    }

    /// Ids of installed canisters (those with a module).
    pub fn canisters(&self) -> Vec<Principal> {
        self.canisters.keys().copied().collect()
    }

    /// Ids of every canister, empty ones (created, no module) included.
    pub fn all_canisters(&self) -> Vec<Principal> {
        let mut v: Vec<Principal> = self.meta.keys().copied().collect();
        v.extend(
            self.canisters
                .keys()
                .filter(|id| !self.meta.contains_key(id)),
        );
        v.sort();
        v
    }

    /// Whether a canister exists, with a module or empty.
    pub fn exists(&self, id: Principal) -> bool {
        self.canisters.contains_key(&id) || self.meta.contains_key(&id)
    }

    /// The canister's controllers (`None`: no such canister).
    pub fn controllers(&self, id: Principal) -> Option<Vec<Principal>> {
        if let Some(m) = self.meta.get(&id) {
            return Some(m.settings.controllers.clone());
        }
        self.canisters
            .get(&id)
            .map(|c| c.state().controllers.clone())
    }

    /// SHA-256 of the installed module as it was given (compressed or
    /// not), as `canister_status` reports it; `None` for an empty or
    /// unknown canister.
    pub fn module_hash(&self, id: Principal) -> Option<[u8; 32]> {
        self.meta.get(&id).and_then(|m| m.module_hash)
    }

    /// The canister's lifecycle status (`None`: no such canister).
    pub fn run_status(&self, id: Principal) -> Option<RunStatus> {
        if let Some(m) = self.meta.get(&id) {
            return Some(m.status);
        }
        self.canisters
            .contains_key(&id)
            .then_some(RunStatus::Running)
    }

    /// Whether the canister is stopped (`stop_canister` completed).
    pub fn is_stopped(&self, id: Principal) -> bool {
        self.run_status(id) == Some(RunStatus::Stopped)
    }

    /// Arms a fault for the next matching call or install (see [`Fault`]).
    pub fn inject_fault(&mut self, fault: Fault) {
        self.faults.push(fault);
    }

    /// Takes the first armed fault `matches` accepts.
    pub(super) fn take_fault(&mut self, matches: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let i = self.faults.iter().position(matches)?;
        Some(self.faults.remove(i))
    }
}

/// The costs of the message `c` just ran (before commit or rollback).
fn stats_of(
    c: &Canister,
    kind: Kind,
    method: &str,
    instructions: u64,
    committed: bool,
) -> MessageStats {
    let stable = &c.state().stable;
    MessageStats {
        kind,
        method: method.to_string(),
        instructions,
        stable_dirty_pages: stable.msg_dirty_pages(),
        stable_accessed_pages: stable.msg_accessed_pages(),
        heap_dirty_pages: c.heap_dirty_pages(),
        committed,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
