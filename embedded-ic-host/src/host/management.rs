//! The management canister (`aaaaa-aa`) as canisters call it, and a stand-in
//! of the cycles minting canister's `create_canister`.
//!
//! The methods follow the IC interface specification and mirror the HTTP
//! bridge's management canister for ingress (`bridge/src/network/management.rs`):
//! the same Candid types (`ic-management-canister-types`), the same
//! controller checks, and the replica's reject codes (its error code's
//! first digit): 5 for a caller that is not a controller (IC0512), a
//! canister that must be stopped first (IC0510), an empty canister
//! (IC0537), ...; 4 for too few cycles to create (IC0403), an unknown
//! method (IC0407) or an argument that does not decode (IC0408); 3 for a
//! canister that does not exist (IC0301).
//!
//! Cycles: `create_canister` keeps [`CREATE_CANISTER_FEE`] of the attached
//! cycles and gives the rest to the new canister, `deposit_cycles` accepts
//! all of them into the target; every other method (and every reject)
//! refunds them.

use super::*;
use candid::{CandidType, Decode, Encode, Nat};
use ic_management_canister_types::{
    CanisterIdRecord, CanisterInstallMode, CanisterSettings, CanisterStatusType,
    CreateCanisterArgs, DefiniteCanisterSettings, EnvironmentVariable, InstallCodeArgs,
    LogVisibility, MemoryMetrics, ProvisionalCreateCanisterWithCyclesArgs,
    ProvisionalTopUpCanisterArgs, QueryStats, SnapshotVisibility, UpdateSettingsArgs,
};
use serde::Deserialize;

/// At most this many controllers (the IC's limit).
pub const MAX_CONTROLLERS: usize = 10;

/// How a management call ends.
enum Outcome {
    Reply(Vec<u8>),
    Reject(u32, String),
    /// Answered later (`stop_canister` waiting for the canister to stop).
    Deferred,
}

type R<T> = Result<T, (u32, String)>;

fn decode<T: CandidType + for<'de> Deserialize<'de>>(method: &str, arg: &[u8]) -> R<T> {
    Decode!(arg, T).map_err(|e| {
        (
            4,
            format!("Error decoding candid of the management canister's {method}: {e} (IC0408)"),
        )
    })
}

fn encode(value: &impl CandidType) -> Vec<u8> {
    Encode!(value).expect("management replies encode")
}

fn nat_u128(n: &Nat) -> u128 {
    u128::try_from(n.0.clone()).unwrap_or(u128::MAX)
}

fn nat_u64(n: &Nat) -> u64 {
    u64::try_from(n.0.clone()).unwrap_or(u64::MAX)
}

/// `(code, message)` of a host error as a reject.
pub(super) fn reject_of(e: HostError) -> (u32, String) {
    match e {
        HostError::CanisterRejected { code, message } => (code, message),
        e => (5, e.to_string()),
    }
}

impl Host {
    /// Answers a call from canister `caller` to the management canister.
    pub(super) fn management_call(
        &mut self,
        ctx: u64,
        caller: Principal,
        method: &str,
        arg: &[u8],
        cycles: u128,
    ) {
        let outcome = match self.management(ctx, caller, method, arg, cycles) {
            Ok(o) => o,
            Err((code, message)) => Outcome::Reject(code, message),
        };
        self.finish(ctx, outcome);
    }

    fn finish(&mut self, ctx: u64, outcome: Outcome) {
        match outcome {
            Outcome::Reply(bytes) => {
                self.respond(ctx, Response::Reply(bytes));
                self.contexts.remove(&ctx);
            }
            Outcome::Reject(code, message) => {
                // Nothing was accepted: everything attached is refunded.
                self.reject_and_close(ctx, code, message);
            }
            Outcome::Deferred => {}
        }
    }

    /// Takes `amount` of the call's attached cycles (the rest is refunded).
    fn accept(&mut self, ctx: u64, amount: u128) -> u128 {
        let cc = self.contexts.get_mut(&ctx).expect("management context");
        let n = amount.min(cc.available);
        cc.available -= n;
        n
    }

    fn authorize(&self, caller: Principal, id: Principal) -> R<()> {
        let controllers = self
            .controllers(id)
            .ok_or_else(|| (3, format!("Canister {id} not found (IC0301)")))?;
        if controllers.contains(&caller) {
            return Ok(());
        }
        let list: Vec<String> = controllers.iter().map(Principal::to_text).collect();
        Err((
            5,
            format!(
                "Only the controllers of the canister {id} can control it.\nCanister's controllers: {}\nSender's ID: {caller} (IC0512)",
                list.join(" ")
            ),
        ))
    }

    fn management(
        &mut self,
        ctx: u64,
        caller: Principal,
        method: &str,
        arg: &[u8],
        cycles: u128,
    ) -> R<Outcome> {
        match method {
            "raw_rand" => {
                if candid::decode_args::<()>(arg).is_err() {
                    return Err((
                        4,
                        "raw_rand: the argument must be the Candid encoding of ()".to_string(),
                    ));
                }
                let bytes = self.raw_rand();
                // `Vec<u8>` is Candid's `vec nat8`, the same type as `blob`.
                Ok(Outcome::Reply(encode(&bytes.to_vec())))
            }
            "create_canister" => {
                let a: CreateCanisterArgs = decode(method, arg)?;
                if cycles < CREATE_CANISTER_FEE {
                    return Err((
                        4,
                        format!(
                            "Creating a canister requires a fee of {CREATE_CANISTER_FEE} that is deducted from the canister's initial balance but only {cycles} cycles were received with the create_canister request. (IC0403)"
                        ),
                    ));
                }
                let subnet = self.subnet_index_of(caller);
                let id = self.create_empty(subnet, caller, a.settings.unwrap_or_default(), 0)?;
                let got = self.accept(ctx, cycles);
                self.meta.get_mut(&id).expect("created").empty_cycles = got - CREATE_CANISTER_FEE;
                Ok(Outcome::Reply(encode(&CanisterIdRecord {
                    canister_id: id,
                })))
            }
            "provisional_create_canister_with_cycles" => {
                let a: ProvisionalCreateCanisterWithCyclesArgs = decode(method, arg)?;
                if a.specified_id.is_some() {
                    return Err((
                        5,
                        "provisional_create_canister_with_cycles: specified_id is not supported by this host".into(),
                    ));
                }
                let amount = a.amount.map(|n| nat_u128(&n)).unwrap_or(DEFAULT_CYCLES);
                let subnet = self.subnet_index_of(caller);
                let id =
                    self.create_empty(subnet, caller, a.settings.unwrap_or_default(), amount)?;
                Ok(Outcome::Reply(encode(&CanisterIdRecord {
                    canister_id: id,
                })))
            }
            "provisional_top_up_canister" => {
                let a: ProvisionalTopUpCanisterArgs = decode(method, arg)?;
                self.add_cycles(a.canister_id, nat_u128(&a.amount))
                    .map_err(|_| (3, format!("Canister {} not found (IC0301)", a.canister_id)))?;
                Ok(Outcome::Reply(encode(&())))
            }
            "deposit_cycles" => {
                let a: CanisterIdRecord = decode(method, arg)?;
                if !self.exists(a.canister_id) {
                    return Err((3, format!("Canister {} not found (IC0301)", a.canister_id)));
                }
                let got = self.accept(ctx, cycles);
                self.add_cycles(a.canister_id, got).expect("exists");
                Ok(Outcome::Reply(encode(&())))
            }
            "install_code" => {
                let a: InstallCodeArgs = decode(method, arg)?;
                self.authorize(caller, a.canister_id)?;
                self.management_install(caller, a)?;
                Ok(Outcome::Reply(encode(&())))
            }
            "uninstall_code" => {
                let a: CanisterIdRecord = decode(method, arg)?;
                self.authorize(caller, a.canister_id)?;
                self.uninstall(a.canister_id);
                Ok(Outcome::Reply(encode(&())))
            }
            "update_settings" => {
                let a: UpdateSettingsArgs = decode(method, arg)?;
                self.authorize(caller, a.canister_id)?;
                self.apply_settings(a.canister_id, a.settings)?;
                Ok(Outcome::Reply(encode(&())))
            }
            "canister_status" => {
                let a: CanisterIdRecord = decode(method, arg)?;
                self.authorize(caller, a.canister_id)?;
                Ok(Outcome::Reply(encode(&self.status_reply(a.canister_id))))
            }
            "stop_canister" => {
                let a: CanisterIdRecord = decode(method, arg)?;
                self.authorize(caller, a.canister_id)?;
                let id = a.canister_id;
                let m = self.ensure_meta(id, caller);
                match m.status {
                    RunStatus::Stopped => Ok(Outcome::Reply(encode(&()))),
                    RunStatus::Running | RunStatus::Stopping => {
                        m.stop_waiters.push(ctx);
                        self.set_status(id, RunStatus::Stopping);
                        // Stops at once if nothing is open (see `check_stopping`).
                        Ok(Outcome::Deferred)
                    }
                }
            }
            "start_canister" => {
                let a: CanisterIdRecord = decode(method, arg)?;
                self.authorize(caller, a.canister_id)?;
                let id = a.canister_id;
                let waiters = std::mem::take(&mut self.ensure_meta(id, caller).stop_waiters);
                for w in waiters {
                    self.reject_and_close(
                        w,
                        5,
                        format!("Canister {id} was started again before it stopped: the stop_canister request was cancelled (IC0511)"),
                    );
                }
                self.set_status(id, RunStatus::Running);
                Ok(Outcome::Reply(encode(&())))
            }
            "delete_canister" => {
                let a: CanisterIdRecord = decode(method, arg)?;
                self.authorize(caller, a.canister_id)?;
                let id = a.canister_id;
                if id == caller {
                    return Err((5, format!("Canister {id} cannot delete itself")));
                }
                if !self.is_stopped(id) {
                    return Err((
                        5,
                        format!("Canister {id} must be stopped before it is deleted. (IC0510)"),
                    ));
                }
                self.remove_canister(id).expect("exists");
                Ok(Outcome::Reply(encode(&())))
            }
            other => Err((
                4,
                format!("Management canister has no method '{other}' in embedded-ic-host (IC0407)"),
            )),
        }
    }

    /// A new empty canister on subnet `subnet`, controlled by `caller`
    /// unless `settings` names controllers.
    fn create_empty(
        &mut self,
        subnet: usize,
        caller: Principal,
        settings: CanisterSettings,
        cycles: u128,
    ) -> R<Principal> {
        let mut meta = Meta::new(subnet, vec![caller], cycles);
        merge_settings(&mut meta, settings)?;
        let id = self.allocate_canister_id(subnet);
        self.meta.insert(id, meta);
        Ok(id)
    }

    fn set_status(&mut self, id: Principal, status: RunStatus) {
        if let Some(m) = self.meta.get_mut(&id) {
            m.status = status;
        }
        if let Some(c) = self.canisters.get_mut(&id) {
            c.state_mut().run_status = install::status_code(status);
        }
    }

    /// Stopping canisters without open call contexts become stopped, and
    /// their `stop_canister` calls are answered.
    pub(super) fn check_stopping(&mut self) {
        let stopping: Vec<Principal> = self
            .meta
            .iter()
            .filter(|(_, m)| m.status == RunStatus::Stopping)
            .map(|(id, _)| *id)
            .collect();
        for id in stopping {
            if self.has_open_contexts(id) {
                continue;
            }
            self.set_status(id, RunStatus::Stopped);
            let waiters = std::mem::take(&mut self.meta.get_mut(&id).expect("meta").stop_waiters);
            for w in waiters {
                self.finish(w, Outcome::Reply(encode(&())));
            }
        }
    }

    fn management_install(&mut self, caller: Principal, a: InstallCodeArgs) -> R<()> {
        let id = a.canister_id;
        let has_module = self.canisters.contains_key(&id);
        let err = |e: HostError| (5, format!("Error from Canister {id}: {e}"));
        match a.mode {
            CanisterInstallMode::Install => {
                if has_module {
                    return Err((
                        5,
                        format!("Canister {id} cannot be installed because the canister is not empty. Try installing with mode='reinstall' instead. (IC0538)"),
                    ));
                }
                self.install_empty(id, &a.wasm_module, a.arg, caller)
                    .map_err(err)
            }
            CanisterInstallMode::Reinstall if has_module => self
                .reinstall_as(id, &a.wasm_module, a.arg, caller)
                .map_err(err),
            CanisterInstallMode::Reinstall => self
                .install_empty(id, &a.wasm_module, a.arg, caller)
                .map_err(err),
            CanisterInstallMode::Upgrade(flags) => {
                if !has_module {
                    return Err((
                        5,
                        format!(
                            "Attempted to upgrade canister {id}, but it contains no Wasm module. (IC0537)"
                        ),
                    ));
                }
                let skip = flags.and_then(|f| f.skip_pre_upgrade).unwrap_or(false);
                self.upgrade_as(id, &a.wasm_module, a.arg, caller, skip)
                    .map_err(err)
            }
        }
    }

    /// `uninstall_code`: the module and its memories go; the canister
    /// stays (empty) with its balance, settings and status, its open call
    /// contexts are rejected.
    fn uninstall(&mut self, id: Principal) {
        let Some(c) = self.canisters.remove(&id) else {
            return;
        };
        let (cycles, version) = (c.state().cycles, c.state().canister_version);
        let m = self.ensure_meta(id, c.state().controller);
        m.empty_cycles = cycles;
        m.empty_version = version + 1;
        m.module_hash = None;
        let open: Vec<u64> = self
            .contexts
            .iter()
            .filter(|(_, cc)| cc.canister == id && !cc.responded)
            .map(|(k, _)| *k)
            .collect();
        for ctx in open {
            self.respond(
                ctx,
                Response::Reject {
                    code: 4,
                    message: format!("Canister {id} has been uninstalled."),
                },
            );
            if self
                .contexts
                .get(&ctx)
                .is_some_and(|cc| cc.outstanding == 0 && cc.response.is_none())
            {
                self.contexts.remove(&ctx);
            }
        }
    }

    fn apply_settings(&mut self, id: Principal, settings: CanisterSettings) -> R<()> {
        let controller = self
            .controllers(id)
            .and_then(|c| c.first().copied())
            .unwrap_or_else(Principal::anonymous);
        let m = self.ensure_meta(id, controller);
        merge_settings(m, settings)?;
        let controllers = m.settings.controllers.clone();
        if let Some(c) = self.canisters.get_mut(&id) {
            c.state_mut().controllers = controllers;
        }
        Ok(())
    }

    fn status_reply(&self, id: Principal) -> StatusReply {
        let m = self.meta.get(&id);
        let stable = self.stable_memory_bytes(id);
        let heap = self.heap_bytes(id);
        let mut settings = m
            .map(|m| m.settings.clone())
            .unwrap_or_else(|| subnets::default_settings(self.controllers(id).unwrap_or_default()));
        settings.wasm_memory_limit = Nat::from(
            m.and_then(|m| m.wasm_memory_limit)
                .unwrap_or(self.limits.wasm_memory_limit),
        );
        let status = match self.run_status(id).unwrap_or_default() {
            RunStatus::Running => CanisterStatusType::Running,
            RunStatus::Stopping => CanisterStatusType::Stopping,
            RunStatus::Stopped => CanisterStatusType::Stopped,
        };
        StatusReply::new(
            status,
            self.canister_version(id).unwrap_or(0),
            settings,
            self.module_hash(id),
            MemorySizes { stable, heap },
            self.cycles(id).unwrap_or(0),
            self.idle_cycles_burned_per_day(id),
        )
    }

    /// Answers a call from canister `caller` to the cycles minting canister.
    pub(super) fn cmc_call(
        &mut self,
        ctx: u64,
        caller: Principal,
        method: &str,
        arg: &[u8],
        cycles: u128,
    ) {
        let outcome = match method {
            "create_canister" => match Decode!(arg, CmcCreateCanisterArg) {
                Err(e) => Outcome::Reject(
                    5,
                    format!("Canister {} trapped: failed to decode the argument of create_canister: {e}", cycles_minting_canister()),
                ),
                Ok(a) => {
                    let result = self.cmc_create(ctx, caller, a, cycles);
                    Outcome::Reply(encode(&result))
                }
            },
            "get_default_subnets" => Outcome::Reply(encode(&vec![self.default_subnet()])),
            other => Outcome::Reject(
                5,
                format!(
                    "Canister {} has no update method '{other}' (the host's cycles minting canister stand-in answers only create_canister and get_default_subnets)",
                    cycles_minting_canister()
                ),
            ),
        };
        self.finish(ctx, outcome);
    }

    fn cmc_create(
        &mut self,
        ctx: u64,
        caller: Principal,
        a: CmcCreateCanisterArg,
        cycles: u128,
    ) -> CmcCreateCanisterResult {
        let refunded = |create_error: String| {
            CmcCreateCanisterResult::Err(CmcCreateCanisterError::Refunded {
                refund_amount: Nat::from(cycles),
                create_error,
            })
        };
        let subnet = match a.subnet_selection {
            Some(SubnetSelection::Subnet { subnet }) => match self.subnet_index(subnet) {
                Some(i) => i,
                None => {
                    return refunded(format!(
                        "Subnet {subnet} does not exist or {caller} is not authorized to create canisters on it"
                    ))
                }
            },
            // Any subnet type: the default subnet.
            Some(SubnetSelection::Filter(_)) | None => 0,
        };
        if cycles < CREATE_CANISTER_FEE {
            return refunded(format!(
                "Creating a canister requires a fee of {CREATE_CANISTER_FEE} cycles, but only {cycles} cycles were attached"
            ));
        }
        match self.create_empty(subnet, caller, a.settings.unwrap_or_default(), 0) {
            Ok(id) => {
                let got = self.accept(ctx, cycles);
                self.meta.get_mut(&id).expect("created").empty_cycles = got - CREATE_CANISTER_FEE;
                CmcCreateCanisterResult::Ok(id)
            }
            Err((_, e)) => refunded(e),
        }
    }
}

fn merge_settings(into: &mut Meta, s: CanisterSettings) -> R<()> {
    let d = &mut into.settings;
    if let Some(c) = s.controllers {
        if c.len() > MAX_CONTROLLERS {
            return Err((
                4,
                format!(
                    "Invalid settings: at most {MAX_CONTROLLERS} controllers are allowed, {} given",
                    c.len()
                ),
            ));
        }
        d.controllers = c;
    }
    if let Some(v) = s.compute_allocation {
        if nat_u64(&v) > 100 {
            return Err((
                4,
                "Invalid settings: compute_allocation must be 0..=100".into(),
            ));
        }
        d.compute_allocation = v;
    }
    if let Some(v) = s.memory_allocation {
        d.memory_allocation = v;
    }
    if let Some(v) = s.freezing_threshold {
        d.freezing_threshold = v;
    }
    if let Some(v) = s.reserved_cycles_limit {
        d.reserved_cycles_limit = v;
    }
    if let Some(v) = s.log_visibility {
        d.log_visibility = v;
    }
    if let Some(v) = s.wasm_memory_limit {
        into.wasm_memory_limit = Some(nat_u64(&v));
        d.wasm_memory_limit = v;
    }
    if let Some(v) = s.wasm_memory_threshold {
        d.wasm_memory_threshold = v;
    }
    if let Some(v) = s.environment_variables {
        d.environment_variables = v;
    }
    Ok(())
}

/// The cycles minting canister's `create_canister` argument.
#[derive(CandidType, Deserialize, Debug, Clone, Default)]
pub struct CmcCreateCanisterArg {
    pub settings: Option<CanisterSettings>,
    pub subnet_selection: Option<SubnetSelection>,
    pub subnet_type: Option<String>,
}

/// Where the cycles minting canister creates a canister.
#[derive(CandidType, Deserialize, Debug, Clone)]
pub enum SubnetSelection {
    Subnet { subnet: Principal },
    Filter(SubnetFilter),
}

/// A subnet type filter (`subnet_type = "application"`, ...).
#[derive(CandidType, Deserialize, Debug, Clone, Default)]
pub struct SubnetFilter {
    pub subnet_type: Option<String>,
}

/// The cycles minting canister's `create_canister` reply.
#[derive(CandidType, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum CmcCreateCanisterResult {
    Ok(Principal),
    Err(CmcCreateCanisterError),
}

/// Why the cycles minting canister did not create a canister.
#[derive(CandidType, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum CmcCreateCanisterError {
    Refunded {
        refund_amount: Nat,
        create_error: String,
    },
    RefundFailed {
        initial_error: String,
        refund_error: String,
    },
}

/// `canister_status`'s reply as the IC gives it today: the crate's
/// `CanisterStatusResult` (0.8) with the two settings it lacks and that
/// current agents require (icp-cli 1.5, ic-utils 0.49:
/// `minimum_incoming_canister_call_cycles`, `status_visibility`); older
/// agents skip them. The bridge answers ingress `canister_status` with it
/// too.
#[derive(CandidType)]
pub struct StatusReply {
    status: CanisterStatusType,
    ready_for_migration: bool,
    version: u64,
    settings: StatusSettings,
    module_hash: Option<Vec<u8>>,
    memory_size: Nat,
    memory_metrics: MemoryMetrics,
    cycles: Nat,
    reserved_cycles: Nat,
    idle_cycles_burned_per_day: Nat,
    query_stats: QueryStats,
}

#[derive(CandidType)]
struct StatusSettings {
    controllers: Vec<Principal>,
    compute_allocation: Nat,
    memory_allocation: Nat,
    freezing_threshold: Nat,
    reserved_cycles_limit: Nat,
    log_visibility: LogVisibility,
    log_memory_limit: Nat,
    snapshot_visibility: SnapshotVisibility,
    wasm_memory_limit: Nat,
    wasm_memory_threshold: Nat,
    environment_variables: Vec<EnvironmentVariable>,
    minimum_incoming_canister_call_cycles: Nat,
    status_visibility: StatusVisibility,
}

#[derive(CandidType, serde::Serialize)]
enum StatusVisibility {
    #[serde(rename = "controllers")]
    Controllers,
}

/// A canister's memory, as `canister_status` reports it.
#[derive(Clone, Copy, Debug)]
pub struct MemorySizes {
    pub stable: u64,
    pub heap: u64,
}

impl StatusReply {
    /// The reply for these facts; what this host does not track
    /// (reservations, query statistics, chunk stores, snapshots) is 0.
    pub fn new(
        status: CanisterStatusType,
        version: u64,
        settings: DefiniteCanisterSettings,
        module_hash: Option<[u8; 32]>,
        memory: MemorySizes,
        cycles: u128,
        idle_cycles_burned_per_day: u128,
    ) -> Self {
        let zero = || Nat::from(0u8);
        StatusReply {
            status,
            ready_for_migration: false,
            version,
            settings: StatusSettings::from(settings),
            module_hash: module_hash.map(|h| h.to_vec()),
            memory_size: Nat::from(memory.stable + memory.heap),
            memory_metrics: MemoryMetrics {
                wasm_memory_size: Nat::from(memory.heap),
                stable_memory_size: Nat::from(memory.stable),
                global_memory_size: zero(),
                wasm_binary_size: zero(),
                custom_sections_size: zero(),
                canister_history_size: zero(),
                wasm_chunk_store_size: zero(),
                snapshots_size: zero(),
                log_memory_store_size: zero(),
            },
            cycles: Nat::from(cycles),
            reserved_cycles: zero(),
            idle_cycles_burned_per_day: Nat::from(idle_cycles_burned_per_day),
            query_stats: QueryStats {
                num_calls_total: zero(),
                num_instructions_total: zero(),
                request_payload_bytes_total: zero(),
                response_payload_bytes_total: zero(),
            },
        }
    }
}

impl From<DefiniteCanisterSettings> for StatusSettings {
    fn from(s: DefiniteCanisterSettings) -> Self {
        StatusSettings {
            controllers: s.controllers,
            compute_allocation: s.compute_allocation,
            memory_allocation: s.memory_allocation,
            freezing_threshold: s.freezing_threshold,
            reserved_cycles_limit: s.reserved_cycles_limit,
            log_visibility: s.log_visibility,
            log_memory_limit: s.log_memory_limit,
            snapshot_visibility: s.snapshot_visibility,
            wasm_memory_limit: s.wasm_memory_limit,
            wasm_memory_threshold: s.wasm_memory_threshold,
            environment_variables: s.environment_variables,
            minimum_incoming_canister_call_cycles: Nat::from(0u8),
            status_visibility: StatusVisibility::Controllers,
        }
    }
}
