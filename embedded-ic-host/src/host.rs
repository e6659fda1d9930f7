//! The [`Host`]: a subnet-like environment holding canisters, the clock, the
//! queue of inter-canister messages and the call contexts.
//!
//! Message delivery: an update/timer/callback that commits hands its performed
//! calls to the queue; [`Host::update`] then delivers queued messages until its
//! own call context is answered (so `async` update methods awaiting calls
//! work), [`Host::tick`] runs due global timers and delivers everything until
//! quiescent. Calls to canisters not installed in this host (including the
//! management canister) are accepted by `call_perform` (it returns 0, as the
//! replica does for an unknown destination) and later answered by invoking the
//! reject callback with code 3 (`DESTINATION_INVALID`).

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
    responded: bool,
    outstanding: usize,
    response: Option<Response>,
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
    },
    Response {
        caller: Principal,
        caller_ctx: u64,
        caller_origin: Vec<u8>,
        callback: Callback,
        response: Response,
    },
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

/// One subnet-like environment holding canisters. Canister ids are plain
/// [`Principal`]s (`CanisterId` is not a separate type).
pub struct Host {
    engine: Engine,
    canisters: BTreeMap<Principal, Canister>,
    next_id: u64,
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
            next_id: 0,
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
        let state = state_tree(
            self.canisters
                .iter()
                .map(|(id, c)| (id, c.state().certified_data.as_slice())),
            self.time,
        );
        PendingCertificate::new(&state, &canister, self.subnet_key.clone())
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
    /// Sets the host time.
    pub fn set_time(&mut self, ns: u64) {
        self.time = ns;
    }
    /// Advances the host time. A jump of many timer intervals makes all
    /// of a repeating ic-cdk-timers timer's missed runs due at once; the
    /// library then logs "too many concurrent calls for single timer" and
    /// skips the runs in between. That line is expected after such jumps.
    pub fn advance_time(&mut self, d: Duration) {
        self.time += d.as_nanos() as u64;
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
    /// Ids of installed canisters.
    pub fn canisters(&self) -> Vec<Principal> {
        self.canisters.keys().copied().collect()
    }

    fn new_state(&self, id: Principal, controller: Principal) -> HostState {
        HostState::new(id, controller, self.limits.max_stable_bytes / WASM_PAGE)
    }

    fn lifecycle_msg(
        &self,
        kind: Kind,
        caller: Principal,
        arg: Vec<u8>,
        limit: u64,
    ) -> MessageContext {
        MessageContext {
            kind,
            caller: caller.as_slice().to_vec(),
            arg,
            time: self.time,
            instruction_limit: limit,
            max_reply: 0,
            stable_write_limit: self.limits.stable_bytes_per_upgrade,
            stable_access_limit: self.limits.stable_bytes_per_upgrade,
            max_heap_bytes: Some(self.limits.max_heap_bytes),
            wasm_memory_limit: self.wasm_memory_limit(kind),
            ..Default::default()
        }
    }

    /// The `wasm_memory_limit` enforced in a message of `kind`: install
    /// (`start`, `canister_init`), post-upgrade, updates, timers and
    /// reply/reject callbacks; not queries, cleanup or pre-upgrade.
    fn wasm_memory_limit(&self, kind: Kind) -> Option<u64> {
        match kind {
            Kind::Start
            | Kind::Init
            | Kind::PostUpgrade
            | Kind::Update
            | Kind::Timer
            | Kind::ReplyCallback
            | Kind::RejectCallback => Some(self.limits.wasm_memory_limit),
            Kind::PreUpgrade
            | Kind::Query
            | Kind::ReplicatedQuery
            | Kind::Cleanup
            | Kind::InspectMessage => None,
        }
    }

    /// Rejects an ingress message (update or query) whose method name +
    /// argument + envelope allowance exceed the ingress limit.
    fn check_ingress(&self, method: &str, arg: &[u8]) -> Result<(), HostError> {
        let l = &self.limits;
        let size = (method.len() as u64)
            .saturating_add(arg.len() as u64)
            .saturating_add(l.ingress_envelope_bytes);
        if size > l.ingress_bytes {
            return Err(HostError::IngressTooLarge {
                size,
                limit: l.ingress_bytes,
            });
        }
        Ok(())
    }

    /// Runs `start` + `canister_init`/`canister_post_upgrade` on a fresh instance
    /// with `budget` instructions; returns instructions used.
    fn run_install_code(
        &mut self,
        c: &mut Canister,
        kind: Kind,
        arg: Vec<u8>,
        caller: Principal,
        budget: u64,
        report_limit: u64,
    ) -> Result<u64, HostError> {
        let fix = |e: HostError| match e {
            HostError::InstructionLimitExceeded { .. } => HostError::InstructionLimitExceeded {
                limit: report_limit,
            },
            e => e,
        };
        let start_msg = self.lifecycle_msg(Kind::Start, caller, Vec::new(), budget);
        let (r, mut used) = c.run_start(start_msg);
        self.collect_logs(c);
        r.map_err(fix)?;
        let export = if kind == Kind::Init {
            "canister_init"
        } else {
            "canister_post_upgrade"
        };
        if c.has_export(export) {
            let msg = self.lifecycle_msg(kind, caller, arg, budget - used);
            let (r, u, _) = c.run(Entry::Export(export), msg);
            self.collect_logs(c);
            used += u;
            self.note(stats_of(c, kind, export, used, r.is_ok()));
            r.map_err(fix)?;
        }
        Ok(used)
    }

    fn collect_logs(&mut self, c: &mut Canister) {
        let lines = &mut c.state_mut().logs;
        if self.echo_logs {
            for line in lines.iter() {
                eprintln!("{line}");
            }
        }
        self.logs.append(lines);
    }

    /// Creates a canister, instantiates `wasm` and runs `canister_init(init_arg)`
    /// with `controller` as caller and only controller.
    pub fn install(
        &mut self,
        wasm: &[u8],
        init_arg: Vec<u8>,
        controller: Principal,
    ) -> Result<Principal, HostError> {
        let id = canister_id(self.next_id);
        let state = self.new_state(id, controller);
        let mut c = Canister::new(&self.engine, wasm, state)?;
        c.begin_tx();
        let budget = self.limits.upgrade_instructions;
        self.run_install_code(&mut c, Kind::Init, init_arg, controller, budget, budget)?;
        c.commit_tx();
        c.state_mut().canister_version = 1;
        self.next_id += 1;
        self.canisters.insert(id, c);
        Ok(id)
    }

    /// Replaces code and state (heap and stable memory wiped), runs `canister_init(arg)`.
    /// On failure the old canister is untouched.
    pub fn reinstall(
        &mut self,
        canister: Principal,
        wasm: &[u8],
        arg: Vec<u8>,
    ) -> Result<(), HostError> {
        let old = self
            .canisters
            .get(&canister)
            .ok_or(HostError::CanisterNotFound(canister))?;
        let controller = old.state().controller;
        let version = old.state().canister_version;
        let cycles = old.state().cycles;
        let mut state = self.new_state(canister, controller);
        state.canister_version = version + 1;
        state.cycles = cycles;
        let mut c = Canister::new(&self.engine, wasm, state)?;
        c.begin_tx();
        let budget = self.limits.upgrade_instructions;
        self.run_install_code(&mut c, Kind::Init, arg, controller, budget, budget)?;
        c.commit_tx();
        self.canisters.insert(canister, c);
        Ok(())
    }

    /// Upgrades: `canister_pre_upgrade` on the old instance, then a new instance
    /// (fresh heap, same stable memory) runs `canister_post_upgrade(arg)`; both
    /// share the upgrade instruction budget. Any failure leaves the old
    /// instance and its state (heap and stable memory) untouched. The global
    /// timer is cleared.
    pub fn upgrade(
        &mut self,
        canister: Principal,
        wasm: &[u8],
        arg: Vec<u8>,
    ) -> Result<(), HostError> {
        let budget = self.limits.upgrade_instructions;
        let mut old = self
            .canisters
            .remove(&canister)
            .ok_or(HostError::CanisterNotFound(canister))?;
        let result = self.upgrade_inner(&mut old, wasm, arg, budget);
        match result {
            Ok(new) => {
                self.canisters.insert(canister, new);
                Ok(())
            }
            Err(e) => {
                let rb = old.rollback_tx();
                self.canisters.insert(canister, old);
                rb?;
                Err(e)
            }
        }
    }

    fn upgrade_inner(
        &mut self,
        old: &mut Canister,
        wasm: &[u8],
        arg: Vec<u8>,
        budget: u64,
    ) -> Result<Canister, HostError> {
        let controller = old.state().controller;
        old.begin_tx();
        let mut used = 0;
        if old.has_export("canister_pre_upgrade") {
            let msg = self.lifecycle_msg(Kind::PreUpgrade, controller, Vec::new(), budget);
            let (r, u, _) = old.run(Entry::Export("canister_pre_upgrade"), msg);
            self.collect_logs(old);
            used = u;
            self.note(stats_of(
                old,
                Kind::PreUpgrade,
                "canister_pre_upgrade",
                used,
                r.is_ok(),
            ));
            r?;
        }
        let pre = (used > 0).then(|| self.last_stats.clone());
        let id = old.state().canister_id;
        let mut state = self.new_state(id, controller);
        state.canister_version = old.state().canister_version + 1;
        state.cycles = old.state().cycles;
        state.certified_data = old.state().certified_data.clone();
        let mut new = Canister::new(&self.engine, wasm, state)?;
        new.state_mut().stable = std::mem::take(&mut old.state_mut().stable);
        let r = self.run_install_code(
            &mut new,
            Kind::PostUpgrade,
            arg,
            controller,
            budget - used,
            budget,
        );
        if let Err(e) = r {
            old.state_mut().stable = std::mem::take(&mut new.state_mut().stable);
            return Err(e);
        }
        new.state_mut().stable.commit_tx();
        if let Some(pre) = pre {
            // One upgrade: both hooks share its budget and its limits.
            let post = &mut self.last_stats;
            post.instructions += pre.instructions;
            post.stable_dirty_pages += pre.stable_dirty_pages;
            post.stable_accessed_pages += pre.stable_accessed_pages;
            post.heap_dirty_pages += pre.heap_dirty_pages;
            self.last_instructions = post.instructions;
        }
        Ok(new)
    }

    fn new_context(&mut self, origin: Origin) -> u64 {
        let id = self.next_ctx;
        self.next_ctx += 1;
        self.contexts.insert(
            id,
            CallContext {
                origin,
                responded: false,
                outstanding: 0,
                response: None,
            },
        );
        id
    }

    /// Rejects a call context that will run nothing more, and forgets it.
    fn reject_and_close(&mut self, ctx: u64, code: u32, message: String) {
        self.respond(ctx, Response::Reject { code, message });
        self.contexts.remove(&ctx);
    }

    fn respond(&mut self, ctx: u64, response: Response) {
        let Some(cc) = self.contexts.get_mut(&ctx) else {
            return;
        };
        if cc.responded {
            return;
        }
        cc.responded = true;
        match &cc.origin {
            Origin::Ingress => cc.response = Some(response),
            Origin::System => {}
            Origin::Call {
                caller,
                caller_ctx,
                caller_origin,
                callback,
            } => self.queue.push_back(Task::Response {
                caller: *caller,
                caller_ctx: *caller_ctx,
                caller_origin: caller_origin.clone(),
                callback: *callback,
                response,
            }),
        }
    }

    /// After a message of `ctx` ran: answer "did not reply" if nothing is pending;
    /// forget finished non-ingress contexts.
    fn settle(&mut self, ctx: u64, canister: Principal) {
        let Some(cc) = self.contexts.get(&ctx) else {
            return;
        };
        if cc.outstanding > 0 {
            return;
        }
        if !cc.responded {
            self.respond(
                ctx,
                Response::Reject {
                    code: 5,
                    message: format!("Canister {canister} did not produce a response"),
                },
            );
        }
        if !matches!(self.contexts[&ctx].origin, Origin::Ingress) {
            self.contexts.remove(&ctx);
        }
    }

    /// Runs one message in its own transaction; commits on success (queries: never).
    #[allow(clippy::too_many_arguments)]
    fn execute(
        &mut self,
        canister: Principal,
        kind: Kind,
        entry: Entry,
        ctx: u64,
        caller: Vec<u8>,
        method: String,
        arg: Vec<u8>,
        reject: Option<(u32, String)>,
    ) -> Result<(), HostError> {
        let l = self.limits;
        let (limit, write_limit, access_limit, max_reply) = match kind {
            Kind::Query => (
                l.query_instructions,
                l.stable_bytes_accessed_per_query,
                l.stable_bytes_accessed_per_query,
                l.max_query_reply_bytes,
            ),
            // A query method executed as an update keeps the query
            // instruction limit (the replica's replicated query execution).
            Kind::ReplicatedQuery => (
                l.query_instructions,
                l.stable_bytes_written_per_update,
                l.stable_bytes_accessed_per_update,
                l.max_reply_bytes,
            ),
            _ => (
                l.update_instructions,
                l.stable_bytes_written_per_update,
                l.stable_bytes_accessed_per_update,
                l.max_reply_bytes,
            ),
        };
        let responded_before = self.contexts.get(&ctx).map(|c| c.responded).unwrap_or(true);
        let msg = MessageContext {
            kind,
            caller: caller.clone(),
            method,
            arg,
            reject,
            time: self.time,
            responded_before,
            instruction_limit: limit,
            max_reply,
            stable_write_limit: write_limit,
            stable_access_limit: access_limit,
            max_call_bytes: l.max_call_bytes,
            max_heap_bytes: Some(l.max_heap_bytes),
            wasm_memory_limit: self.wasm_memory_limit(kind),
            data_certificate: (kind == Kind::Query)
                .then(|| Arc::new(self.pending_certificate(canister))),
            ..Default::default()
        };
        let mut c = self
            .canisters
            .remove(&canister)
            .ok_or(HostError::CanisterNotFound(canister))?;
        c.begin_tx();
        let name = match entry {
            Entry::Export(export) if msg.method.is_empty() => export.to_string(),
            Entry::Table { .. } if msg.method.is_empty() => "callback".to_string(),
            _ => msg.method.clone(),
        };
        let (r, used, msg) = c.run(entry, msg);
        self.collect_logs(&mut c);
        let persist = r.is_ok() && !matches!(kind, Kind::Query | Kind::ReplicatedQuery);
        self.note(stats_of(&c, kind, &name, used, persist));
        let rb = if persist {
            c.commit_tx();
            Ok(())
        } else {
            c.rollback_tx()
        };
        self.canisters.insert(canister, c);
        rb?;
        r?;
        if let Some(resp) = msg.response {
            self.respond(ctx, resp);
        }
        if persist {
            for call in msg.calls {
                if let Some(cc) = self.contexts.get_mut(&ctx) {
                    cc.outstanding += 1;
                }
                self.queue.push_back(Task::Request {
                    caller: canister,
                    caller_ctx: ctx,
                    // The caller of this message is the original caller of
                    // its call context (callbacks are given it too).
                    caller_origin: caller.clone(),
                    callee: call.callee,
                    method: call.method,
                    arg: call.arg,
                    callback: call.callback,
                });
            }
        }
        Ok(())
    }

    fn method_kind(&self, canister: Principal, method: &str) -> Result<(Kind, String), HostError> {
        let c = self
            .canisters
            .get(&canister)
            .ok_or(HostError::CanisterNotFound(canister))?;
        let upd = format!("canister_update {method}");
        if c.has_export(&upd) {
            return Ok((Kind::Update, upd));
        }
        for q in [
            format!("canister_query {method}"),
            format!("canister_composite_query {method}"),
        ] {
            if c.has_export(&q) {
                return Ok((Kind::ReplicatedQuery, q));
            }
        }
        Err(HostError::MethodNotFound(format!(
            "Canister {canister} has no update method '{method}'"
        )))
    }

    /// Runs `canister_inspect_message` (if exported) before an ingress
    /// update call; see [`Host::update`].
    fn inspect_message(
        &mut self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: &[u8],
    ) -> Result<(), HostError> {
        const EXPORT: &str = "canister_inspect_message";
        let l = self.limits;
        let mut c = self
            .canisters
            .remove(&canister)
            .ok_or(HostError::CanisterNotFound(canister))?;
        if !c.has_export(EXPORT) {
            self.canisters.insert(canister, c);
            return Ok(());
        }
        let msg = MessageContext {
            kind: Kind::InspectMessage,
            caller: caller.as_slice().to_vec(),
            method: method.to_string(),
            arg: arg.to_vec(),
            time: self.time,
            instruction_limit: l.inspect_message_instructions,
            max_reply: 0,
            stable_write_limit: 0,
            stable_access_limit: l.stable_bytes_accessed_per_query,
            max_call_bytes: 0,
            max_heap_bytes: Some(l.max_heap_bytes),
            wasm_memory_limit: self.wasm_memory_limit(Kind::InspectMessage),
            ..Default::default()
        };
        c.begin_tx();
        let (r, used, msg) = c.run(Entry::Export(EXPORT), msg);
        self.note(stats_of(&c, Kind::InspectMessage, method, used, false));
        self.collect_logs(&mut c);
        let rb = c.rollback_tx();
        self.canisters.insert(canister, c);
        rb?;
        r?;
        if !msg.accepted {
            return Err(HostError::CanisterRejected {
                code: 4,
                message: format!(
                    "Requested canister rejected the message: Canister {canister} did not accept the message ({EXPORT} returned without calling ic0.accept_message for method '{method}')"
                ),
            });
        }
        Ok(())
    }

    /// An ingress update call. Rejected with `IngressTooLarge` before execution
    /// if method name + argument + [`Limits::ingress_envelope_bytes`] exceed
    /// [`Limits::ingress_bytes`]. If the method awaits calls, queued messages
    /// are delivered until it answers. A query method called this way runs
    /// as a replicated query: query instruction limit, nothing persisted.
    ///
    /// # `canister_inspect_message`
    /// If the canister exports it, it runs first, like the replica's ingress
    /// filter: a non-replicated execution (caller, argument and method name
    /// of the ingress message; `ic0.msg_method_name_*` and
    /// `ic0.accept_message` work only there) with its own limit
    /// ([`Limits::inspect_message_instructions`]) and the query's
    /// stable-access limit, whose changes are always discarded. Its
    /// instructions are not charged to the update: [`Host::last_instructions`]
    /// reports the update's (or inspect's if it refused the message). If it
    /// does not accept, the update does not run, nothing of the canister
    /// changes, and the error is:
    /// - returned without calling `ic0.accept_message`:
    ///   `CanisterRejected { code: 4, .. }` (the replica's
    ///   `CanisterRejectedMessage`, IC0406, reject code `CANISTER_REJECT`),
    ///   message `Requested canister rejected the message: Canister <id> did
    ///   not accept the message (...)`;
    /// - trapped: the trap's own error, as for any other message (the
    ///   replica too returns the trap's error): `CanisterTrapped`,
    ///   `InstructionLimitExceeded { limit: inspect_message_instructions }`,
    ///   `StableMemoryLimit` or `UnimplementedSystemApi`.
    ///
    /// Only ingress updates run `canister_inspect_message`: queries,
    /// inter-canister calls (self-calls included), callbacks and timers don't.
    pub fn update(
        &mut self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, HostError> {
        self.check_ingress(method, &arg)?;
        let (kind, export) = self.method_kind(canister, method)?;
        self.inspect_message(canister, caller, method, &arg)?;
        let ctx = self.new_context(Origin::Ingress);
        let r = self.execute(
            canister,
            kind,
            Entry::Export(&export),
            ctx,
            caller.as_slice().to_vec(),
            method.to_string(),
            arg,
            None,
        );
        let stats = self.last_stats.clone();
        if let Err(e) = r {
            self.contexts.remove(&ctx);
            return Err(e);
        }
        self.settle(ctx, canister);
        let mut n = 0;
        while !self.contexts[&ctx].responded && n < MAX_ROUNDS * 10 {
            let Some(task) = self.queue.pop_front() else {
                break;
            };
            self.deliver(task);
            n += 1;
        }
        self.last_instructions = stats.instructions;
        self.last_stats = stats;
        let cc = self.contexts.remove(&ctx).expect("ingress context");
        match cc.response {
            Some(Response::Reply(data)) => Ok(data),
            Some(Response::Reject { code, message }) => Err(HostError::CanisterRejected { code, message }),
            None => Err(HostError::CanisterRejected {
                code: 5,
                message: format!("Canister {canister} did not produce a response (message delivery bound reached)"),
            }),
        }
    }

    /// A query: runs on the current state and never persists any change.
    /// Subject to the same ingress size check as [`Host::update`].
    pub fn query(
        &mut self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, HostError> {
        self.check_ingress(method, &arg)?;
        let c = self
            .canisters
            .get(&canister)
            .ok_or(HostError::CanisterNotFound(canister))?;
        let export = [
            format!("canister_query {method}"),
            format!("canister_composite_query {method}"),
        ]
        .into_iter()
        .find(|e| c.has_export(e))
        .ok_or_else(|| {
            HostError::MethodNotFound(format!(
                "Canister {canister} has no query method '{method}'"
            ))
        })?;
        let ctx = self.new_context(Origin::Ingress);
        let r = self.execute(
            canister,
            Kind::Query,
            Entry::Export(&export),
            ctx,
            caller.as_slice().to_vec(),
            method.to_string(),
            arg,
            None,
        );
        let cc = self.contexts.remove(&ctx).expect("query context");
        r?;
        match cc.response {
            Some(Response::Reply(data)) => Ok(data),
            Some(Response::Reject { code, message }) => {
                Err(HostError::CanisterRejected { code, message })
            }
            None => Err(HostError::CanisterRejected {
                code: 5,
                message: format!("Canister {canister} did not produce a response"),
            }),
        }
    }

    fn deliver(&mut self, task: Task) {
        match task {
            Task::Request {
                caller,
                caller_ctx,
                caller_origin,
                callee,
                method,
                arg,
                callback,
            } => {
                let origin = Origin::Call {
                    caller,
                    caller_ctx,
                    caller_origin,
                    callback,
                };
                let ctx = self.new_context(origin);
                if callee.is_empty() && method == "raw_rand" {
                    self.management_raw_rand(ctx, &arg);
                    return;
                }
                let callee_p = Principal::try_from_slice(&callee)
                    .ok()
                    .filter(|p| self.canisters.contains_key(p));
                let Some(callee) = callee_p else {
                    let name = Principal::try_from_slice(&callee)
                        .map(|p| p.to_text())
                        .unwrap_or_else(|_| hex(&callee));
                    self.reject_and_close(ctx, 3, format!("Canister {name} not found (embedded-ic-host only delivers calls to canisters installed in it)"));
                    return;
                };
                let (kind, export) = match self.method_kind(callee, &method) {
                    Ok(x) => x,
                    Err(e) => {
                        self.reject_and_close(ctx, 5, e.to_string());
                        return;
                    }
                };
                match self.execute(
                    callee,
                    kind,
                    Entry::Export(&export),
                    ctx,
                    caller.as_slice().to_vec(),
                    method,
                    arg,
                    None,
                ) {
                    Ok(()) => self.settle(ctx, callee),
                    Err(e) => {
                        self.reject_and_close(ctx, 5, e.to_string());
                    }
                }
            }
            Task::Response {
                caller,
                caller_ctx,
                caller_origin,
                callback,
                response,
            } => {
                if let Some(cc) = self.contexts.get_mut(&caller_ctx) {
                    cc.outstanding = cc.outstanding.saturating_sub(1);
                }
                if !self.canisters.contains_key(&caller) {
                    return;
                }
                let (kind, (index, env), arg, reject) = match response {
                    Response::Reply(data) => (Kind::ReplyCallback, callback.reply, data, None),
                    Response::Reject { code, message } => (
                        Kind::RejectCallback,
                        callback.reject,
                        Vec::new(),
                        Some((code, message)),
                    ),
                };
                // Callbacks see the original caller of their call context.
                let r = self.execute(
                    caller,
                    kind,
                    Entry::Table { index, env },
                    caller_ctx,
                    caller_origin.clone(),
                    String::new(),
                    arg,
                    reject,
                );
                if let Err(e) = r {
                    self.logs
                        .push(format!("[Canister {caller}] callback failed: {e}"));
                    if let Some((index, env)) = callback.cleanup {
                        if let Err(e2) = self.execute(
                            caller,
                            Kind::Cleanup,
                            Entry::Table { index, env },
                            caller_ctx,
                            caller_origin,
                            String::new(),
                            Vec::new(),
                            None,
                        ) {
                            self.logs
                                .push(format!("[Canister {caller}] cleanup failed: {e2}"));
                        }
                    }
                    let pending = self
                        .contexts
                        .get(&caller_ctx)
                        .map(|c| !c.responded && c.outstanding == 0)
                        .unwrap_or(false);
                    if pending {
                        self.respond(
                            caller_ctx,
                            Response::Reject {
                                code: 5,
                                message: e.to_string(),
                            },
                        );
                    }
                }
                self.settle(caller_ctx, caller);
            }
        }
    }

    /// The management canister's `raw_rand`: argument `()`, reply a 32-byte
    /// `blob` (see [`Host::set_random_seed`]). The only management method
    /// this host implements; calls to others are rejected with code 3 as
    /// for any canister the host does not hold.
    fn management_raw_rand(&mut self, ctx: u64, arg: &[u8]) {
        if candid::decode_args::<()>(arg).is_err() {
            self.reject_and_close(
                ctx,
                4,
                "raw_rand: the argument must be the Candid encoding of ()".to_string(),
            );
            return;
        }
        let bytes = self.raw_rand();
        // `Vec<u8>` is Candid's `vec nat8`, the same type as `blob`.
        let reply = candid::encode_one(bytes.to_vec()).expect("a blob always encodes");
        self.respond(ctx, Response::Reply(reply));
        self.contexts.remove(&ctx);
    }

    /// Runs due global timers (`canister_global_timer`, deadline reset to 0
    /// first, as on the IC) and delivers queued calls with their callbacks,
    /// round after round until quiescent (bounded).
    pub fn tick(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let mut progressed = false;
            let due: Vec<Principal> = self
                .canisters
                .iter()
                .filter(|(_, c)| {
                    let t = c.state().global_timer;
                    t != 0 && self.time >= t
                })
                .map(|(id, _)| *id)
                .collect();
            for id in due {
                progressed = true;
                let c = self.canisters.get_mut(&id).expect("canister");
                c.state_mut().global_timer = 0;
                if !c.has_export("canister_global_timer") {
                    continue;
                }
                let ctx = self.new_context(Origin::System);
                // The replica runs the timer with the management canister as caller.
                let r = self.execute(
                    id,
                    Kind::Timer,
                    Entry::Export("canister_global_timer"),
                    ctx,
                    Principal::management_canister().as_slice().to_vec(),
                    String::new(),
                    Vec::new(),
                    None,
                );
                match r {
                    Ok(()) => {
                        self.respond(ctx, Response::Reply(Vec::new()));
                        self.settle(ctx, id);
                    }
                    Err(e) => {
                        self.logs
                            .push(format!("[Canister {id}] global timer failed: {e}"));
                        self.contexts.remove(&ctx);
                    }
                }
            }
            let n = self.queue.len();
            for _ in 0..n {
                if let Some(t) = self.queue.pop_front() {
                    progressed = true;
                    self.deliver(t);
                }
            }
            if !progressed {
                break;
            }
        }
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
