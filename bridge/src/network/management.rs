//! The management canister (`aaaaa-aa`) as ingress reaches it: the calls a
//! developer's tools make (create, install, upgrade, stop, start, settings,
//! status, delete, cycles), authorised by the target's controllers as on
//! the IC.
//!
//! Canisters the host created for canister callers (the index's buckets)
//! are managed here too: they get a record on first use ([`World`]'s
//! `adopt`), and their controllers, module hash, cycles and run status are
//! read from the host (controllers and cycles are written back to it).
//! What the host has no public handle for stays in the record: an ingress
//! `stop_canister` stops ingress to the canister, not calls from other
//! canisters; settings other than the controllers are the record's.
//! Ingress creates canisters on the root subnet (`/admin/install` with a
//! `subnet` or [`World::install_new_on`] for the others).

use super::errors::Reject;
use super::{CanisterRecord, RunState, World};
use candid::{CandidType, Decode, Encode, Nat, Principal};
use embedded_ic_host::host::{MemorySizes, StatusReply};
use ic_management_canister_types::{
    CanisterIdRecord, CanisterInstallMode, CanisterSettings, CanisterStatusType,
    DefiniteCanisterSettings, InstallCodeArgs, ProvisionalCreateCanisterWithCyclesArgs,
    ProvisionalTopUpCanisterArgs, UpdateSettingsArgs,
};
use sha2::{Digest, Sha256};

/// Cycles a canister gets from `provisional_create_canister_with_cycles`
/// without an amount (as the replica's default).
pub const DEFAULT_PROVISIONAL_CYCLES: u128 = 100_000_000_000_000;
/// At most this many controllers (the IC's limit).
pub const MAX_CONTROLLERS: usize = 10;

fn invalid_arg(method: &str, e: impl std::fmt::Display) -> Reject {
    Reject::new(
        4,
        "IC0406",
        format!("Error decoding candid of the management canister's {method}: {e}"),
    )
}

fn reply(value: &impl CandidType) -> Result<Vec<u8>, Reject> {
    Encode!(value).map_err(|e| Reject::new(5, "IC0503", format!("encoding the reply: {e}")))
}

/// The canister a management call is about, for the effective canister id
/// check (`None`: the call names no canister, e.g. a create).
pub fn target_of(method: &str, arg: &[u8]) -> Option<Principal> {
    match method {
        "install_code" => Decode!(arg, InstallCodeArgs).ok().map(|a| a.canister_id),
        "update_settings" => Decode!(arg, UpdateSettingsArgs).ok().map(|a| a.canister_id),
        "provisional_top_up_canister" => Decode!(arg, ProvisionalTopUpCanisterArgs)
            .ok()
            .map(|a| a.canister_id),
        "canister_status" | "stop_canister" | "start_canister" | "delete_canister"
        | "uninstall_code" => Decode!(arg, CanisterIdRecord).ok().map(|a| a.canister_id),
        _ => None,
    }
}

impl World {
    /// Executes an ingress call to the management canister.
    pub fn management_call(
        &mut self,
        caller: Principal,
        method: &str,
        arg: &[u8],
    ) -> Result<Vec<u8>, Reject> {
        if let Some(target) = target_of(method, arg) {
            self.adopt(target);
        }
        match method {
            "provisional_create_canister_with_cycles" => {
                let a = Decode!(arg, ProvisionalCreateCanisterWithCyclesArgs)
                    .map_err(|e| invalid_arg(method, e))?;
                if a.specified_id.is_some() {
                    return Err(Reject::new(
                        5,
                        "IC0503",
                        "provisional_create_canister_with_cycles: specified_id is not supported by this network",
                    ));
                }
                let cycles = a
                    .amount
                    .map(|n| nat_to_u128(&n))
                    .unwrap_or(DEFAULT_PROVISIONAL_CYCLES);
                let id = self.create_canister(caller, a.settings.unwrap_or_default(), cycles)?;
                reply(&CanisterIdRecord { canister_id: id })
            }
            "provisional_top_up_canister" => {
                let a = Decode!(arg, ProvisionalTopUpCanisterArgs)
                    .map_err(|e| invalid_arg(method, e))?;
                let record = self.record_mut(a.canister_id)?;
                record.cycles = record.cycles.saturating_add(nat_to_u128(&a.amount));
                self.push_cycles(a.canister_id);
                reply(&())
            }
            "install_code" => {
                let a = Decode!(arg, InstallCodeArgs).map_err(|e| invalid_arg(method, e))?;
                self.authorize(caller, a.canister_id)?;
                self.install_code(caller, a)?;
                reply(&())
            }
            "uninstall_code" => {
                let a = Decode!(arg, CanisterIdRecord).map_err(|e| invalid_arg(method, e))?;
                self.authorize(caller, a.canister_id)?;
                self.uninstall(a.canister_id);
                reply(&())
            }
            "stop_canister" | "start_canister" => {
                let a = Decode!(arg, CanisterIdRecord).map_err(|e| invalid_arg(method, e))?;
                self.authorize(caller, a.canister_id)?;
                self.record_mut(a.canister_id)?.run_state = if method == "stop_canister" {
                    RunState::Stopped
                } else {
                    RunState::Running
                };
                reply(&())
            }
            "update_settings" => {
                let a = Decode!(arg, UpdateSettingsArgs).map_err(|e| invalid_arg(method, e))?;
                self.authorize(caller, a.canister_id)?;
                self.apply_settings(a.canister_id, a.settings)?;
                reply(&())
            }
            "canister_status" => {
                let a = Decode!(arg, CanisterIdRecord).map_err(|e| invalid_arg(method, e))?;
                self.authorize(caller, a.canister_id)?;
                reply(&self.status(a.canister_id)?)
            }
            "delete_canister" => {
                let a = Decode!(arg, CanisterIdRecord).map_err(|e| invalid_arg(method, e))?;
                self.authorize(caller, a.canister_id)?;
                if self.record(a.canister_id)?.run_state != RunState::Stopped {
                    return Err(Reject::new(
                        5,
                        "IC0510",
                        format!(
                            "Canister {} must be stopped before it is deleted.",
                            a.canister_id
                        ),
                    ));
                }
                self.uninstall(a.canister_id);
                self.canisters.remove(&a.canister_id);
                reply(&())
            }
            // On the IC only canisters may call these; ingress is refused.
            "raw_rand" | "create_canister" | "deposit_cycles" | "http_request" => Err(Reject::new(
                4,
                "IC0406",
                format!("Only canisters can call ic00 method {method}"),
            )),
            other => Err(Reject::new(
                5,
                "IC0536",
                format!("Management canister has no method '{other}' on this network"),
            )),
        }
    }

    /// Creates a canister controlled by `controller` and installs `wasm`
    /// in it with an empty argument, as `provisional_create_canister_with_cycles`
    /// and `install_code` would.
    pub fn install_new(&mut self, wasm: &[u8], controller: Principal) -> Result<Principal, Reject> {
        let id = self.create_canister(
            controller,
            CanisterSettings::default(),
            DEFAULT_PROVISIONAL_CYCLES,
        )?;
        let args = InstallCodeArgs {
            mode: CanisterInstallMode::Install,
            canister_id: id,
            wasm_module: wasm.to_vec(),
            arg: Encode!().expect("empty arguments"),
            sender_canister_version: None,
        };
        if let Err(e) = self.install_code(controller, args) {
            self.canisters.remove(&id);
            return Err(e);
        }
        Ok(id)
    }

    /// [`World::install_new`] with an init argument, controllers and a
    /// balance (`controllers[0]` runs `canister_init`).
    pub fn install_new_with(
        &mut self,
        wasm: &[u8],
        arg: Vec<u8>,
        controllers: Vec<Principal>,
        cycles: u128,
    ) -> Result<Principal, Reject> {
        self.install_new_on(None, wasm, arg, controllers, cycles)
    }

    /// [`World::install_new_with`] on the host's subnet `subnet` (`None`:
    /// the default subnet), the canister id from that subnet's range.
    pub fn install_new_on(
        &mut self,
        subnet: Option<Principal>,
        wasm: &[u8],
        arg: Vec<u8>,
        controllers: Vec<Principal>,
        cycles: u128,
    ) -> Result<Principal, Reject> {
        let installer = *controllers
            .first()
            .ok_or_else(|| Reject::new(4, "IC0406", "a canister needs a controller"))?;
        let settings = CanisterSettings {
            controllers: Some(controllers.clone()),
            ..CanisterSettings::default()
        };
        match subnet {
            Some(s) if s != self.host.default_subnet() => {
                let module = decompress(wasm)
                    .map_err(|e| Reject::new(5, "IC0505", format!("the module: {e}")))?;
                let id = self
                    .host
                    .install_on(s, &module, arg, installer)
                    .map_err(|e| Reject::new(5, "IC0505", format!("installing on {s}: {e}")))?;
                let mut record = CanisterRecord::new(controllers.clone(), cycles);
                record.module_hash = Some(Sha256::digest(wasm).into());
                record.installed_module = Some(wasm.to_vec());
                record.metadata = custom_sections(&module);
                self.canisters.insert(id, record);
                let err = |e: embedded_ic_host::HostError| super::errors::reject_of(&id, &e);
                self.host.set_controllers(id, controllers).map_err(err)?;
                self.host.set_cycles(id, cycles).map_err(err)?;
                Ok(id)
            }
            _ => {
                let id = self.create_canister(installer, settings, cycles)?;
                let args = InstallCodeArgs {
                    mode: CanisterInstallMode::Install,
                    canister_id: id,
                    wasm_module: wasm.to_vec(),
                    arg,
                    sender_canister_version: None,
                };
                if let Err(e) = self.install_code(installer, args) {
                    self.canisters.remove(&id);
                    return Err(e);
                }
                Ok(id)
            }
        }
    }

    fn record(&self, id: Principal) -> Result<&CanisterRecord, Reject> {
        self.canisters
            .get(&id)
            .ok_or_else(|| Reject::new(3, "IC0301", format!("Canister {id} not found")))
    }

    fn record_mut(&mut self, id: Principal) -> Result<&mut CanisterRecord, Reject> {
        self.canisters
            .get_mut(&id)
            .ok_or_else(|| Reject::new(3, "IC0301", format!("Canister {id} not found")))
    }

    /// Gives a canister the host made itself (through the management
    /// canister or the CMC, for a canister caller) a record, so ingress
    /// can manage it: its facts are read from the host.
    fn adopt(&mut self, id: Principal) {
        if self.canisters.contains_key(&id) || !self.host.exists(id) {
            return;
        }
        let mut record = CanisterRecord::new(
            self.host.controllers(id).unwrap_or_default(),
            self.host.cycles(id).unwrap_or(0),
        );
        record.module_hash = self.host.module_hash(id);
        if self.host.is_stopped(id) {
            record.run_state = RunState::Stopped;
        }
        self.canisters.insert(id, record);
    }

    fn authorize(&self, caller: Principal, id: Principal) -> Result<(), Reject> {
        self.record(id)?;
        let controllers = self.controllers_of(&id).unwrap_or_default();
        if controllers.contains(&caller) {
            return Ok(());
        }
        let controllers: Vec<String> = controllers.iter().map(Principal::to_text).collect();
        Err(Reject::new(
            5,
            "IC0512",
            format!(
                "Only the controllers of the canister {id} can control it.\nCanister's controllers: {}\nSender's ID: {caller}",
                controllers.join(" ")
            ),
        ))
    }

    pub fn create_canister(
        &mut self,
        caller: Principal,
        settings: CanisterSettings,
        cycles: u128,
    ) -> Result<Principal, Reject> {
        let id = self.host.reserve_canister_id();
        let mut record = CanisterRecord::new(vec![caller], cycles);
        merge_settings(&mut record.settings, settings)?;
        self.canisters.insert(id, record);
        Ok(id)
    }

    fn apply_settings(&mut self, id: Principal, settings: CanisterSettings) -> Result<(), Reject> {
        let host_controllers = self.host.controllers(id);
        let record = self.record_mut(id)?;
        if let Some(c) = host_controllers {
            record.settings.controllers = c;
        }
        merge_settings(&mut record.settings, settings)?;
        let controllers = record.settings.controllers.clone();
        if self.host.exists(id) {
            self.host
                .set_controllers(id, controllers)
                .map_err(|e| super::errors::reject_of(&id, &e))?;
        }
        Ok(())
    }

    fn install_code(&mut self, caller: Principal, a: InstallCodeArgs) -> Result<(), Reject> {
        let id = a.canister_id;
        let module = decompress(&a.wasm_module)
            .map_err(|e| Reject::new(5, "IC0505", format!("Error from Canister {id}: {e}")))?;
        let metadata = custom_sections(&module);
        let has_module = self.record(id)?.module_hash.is_some();
        let host_error = |e: embedded_ic_host::HostError| super::errors::reject_of(&id, &e);
        match a.mode {
            CanisterInstallMode::Install => {
                if has_module {
                    return Err(Reject::new(
                        5,
                        "IC0538",
                        format!("Canister {id} cannot be installed because the canister is not empty. Try installing with mode='reinstall' instead."),
                    ));
                }
                self.host
                    .install_at(id, &module, a.arg, caller)
                    .map_err(host_error)?;
            }
            CanisterInstallMode::Reinstall if has_module => {
                self.host
                    .reinstall(id, &module, a.arg)
                    .map_err(host_error)?;
            }
            CanisterInstallMode::Reinstall => {
                self.host
                    .install_at(id, &module, a.arg, caller)
                    .map_err(host_error)?;
            }
            CanisterInstallMode::Upgrade(_) => {
                if !has_module {
                    return Err(Reject::new(
                        5,
                        "IC0537",
                        format!(
                            "Attempted to upgrade canister {id}, but it contains no Wasm module."
                        ),
                    ));
                }
                self.host.upgrade(id, &module, a.arg).map_err(host_error)?;
            }
        }
        let record = self.record_mut(id)?;
        record.module_hash = Some(Sha256::digest(&a.wasm_module).into());
        record.installed_module = Some(a.wasm_module.clone());
        record.metadata = metadata;
        let (controllers, cycles) = (record.settings.controllers.clone(), record.cycles);
        self.host
            .set_controllers(id, controllers)
            .map_err(host_error)?;
        if let Some(now) = self.host.cycles(id) {
            // The host counts cycles once a module runs; the record holds
            // them while the canister is empty.
            if now != cycles {
                let _ = self.host.add_cycles(id, cycles.saturating_sub(now));
            }
        }
        Ok(())
    }

    fn uninstall(&mut self, id: Principal) {
        if let Some(cycles) = self.host.cycles(id) {
            if let Some(r) = self.canisters.get_mut(&id) {
                r.cycles = cycles;
            }
        }
        let _ = self.host.remove_canister(id);
        if let Some(r) = self.canisters.get_mut(&id) {
            r.module_hash = None;
            r.metadata.clear();
            r.installed_module = None;
        }
    }

    fn push_cycles(&mut self, id: Principal) {
        if let (Some(now), Some(r)) = (self.host.cycles(id), self.canisters.get(&id)) {
            let _ = self.host.add_cycles(id, r.cycles.saturating_sub(now));
        }
    }

    fn status(&self, id: Principal) -> Result<StatusReply, Reject> {
        let record = self.record(id)?;
        let stable = self.host.stable_memory_bytes(id);
        let heap = self.host.heap_bytes(id);
        let cycles = self.host.cycles(id).unwrap_or(record.cycles);
        let mut settings = record.settings.clone();
        if let Some(c) = self.host.controllers(id) {
            settings.controllers = c;
        }
        let host_status = self.host.run_status(id);
        let status = match (record.run_state, host_status) {
            (RunState::Stopped, _) | (_, Some(embedded_ic_host::RunStatus::Stopped)) => {
                CanisterStatusType::Stopped
            }
            (_, Some(embedded_ic_host::RunStatus::Stopping)) => CanisterStatusType::Stopping,
            _ => CanisterStatusType::Running,
        };
        Ok(StatusReply::new(
            status,
            self.host.canister_version(id).unwrap_or(0),
            settings,
            self.module_hash_of(&id),
            MemorySizes { stable, heap },
            cycles,
            0,
        ))
    }
}

pub use embedded_ic_host::host::default_settings;

fn merge_settings(into: &mut DefiniteCanisterSettings, s: CanisterSettings) -> Result<(), Reject> {
    if let Some(c) = s.controllers {
        if c.len() > MAX_CONTROLLERS {
            return Err(Reject::new(
                4,
                "IC0406",
                format!(
                    "Invalid settings: at most {MAX_CONTROLLERS} controllers are allowed, {} given",
                    c.len()
                ),
            ));
        }
        into.controllers = c;
    }
    if let Some(v) = s.compute_allocation {
        into.compute_allocation = v;
    }
    if let Some(v) = s.memory_allocation {
        into.memory_allocation = v;
    }
    if let Some(v) = s.freezing_threshold {
        into.freezing_threshold = v;
    }
    if let Some(v) = s.reserved_cycles_limit {
        into.reserved_cycles_limit = v;
    }
    if let Some(v) = s.log_visibility {
        into.log_visibility = v;
    }
    if let Some(v) = s.wasm_memory_limit {
        into.wasm_memory_limit = v;
    }
    if let Some(v) = s.wasm_memory_threshold {
        into.wasm_memory_threshold = v;
    }
    if let Some(v) = s.environment_variables {
        into.environment_variables = v;
    }
    Ok(())
}

fn nat_to_u128(n: &Nat) -> u128 {
    u128::try_from(n.0.clone()).unwrap_or(u128::MAX)
}

/// The module as installed: gzip-compressed modules are unpacked, as the
/// IC does (by the host's own unpacking).
pub(super) fn decompress(module: &[u8]) -> Result<Vec<u8>, String> {
    if module.starts_with(&[0x1f, 0x8b]) {
        embedded_ic_host::canister::decompress(module).map_err(|e| e.to_string())
    } else {
        Ok(module.to_vec())
    }
}

/// `icp:public <name>` and `icp:private <name>` custom sections: the
/// canister's metadata, by name, with whether anyone may read it.
pub(super) fn custom_sections(
    module: &[u8],
) -> std::collections::BTreeMap<String, (bool, Vec<u8>)> {
    let mut out = std::collections::BTreeMap::new();
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        let Ok(wasmparser::Payload::CustomSection(section)) = payload else {
            continue;
        };
        let name = section.name();
        if let Some(n) = name.strip_prefix("icp:public ") {
            out.insert(n.to_string(), (true, section.data().to_vec()));
        } else if let Some(n) = name.strip_prefix("icp:private ") {
            out.insert(n.to_string(), (false, section.data().to_vec()));
        }
    }
    out
}
