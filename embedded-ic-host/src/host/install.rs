//! Installing, reinstalling and upgrading canisters: the lifecycle
//! messages (`canister_init`, `canister_pre_upgrade`, `canister_post_upgrade`)
//! and what survives an upgrade.

use super::*;

/// A canister's state as a snapshot keeps it: everything but the heap.
pub struct CanisterSnapshot {
    pub controller: Principal,
    pub controllers: Vec<Principal>,
    pub canister_version: u64,
    pub cycles: u128,
    pub certified_data: Vec<u8>,
    pub stable: crate::stable_memory::StableMemory,
}

impl Host {
    pub(super) fn new_state(&self, id: Principal, controller: Principal) -> HostState {
        HostState::new(id, controller, self.limits.max_stable_bytes / WASM_PAGE)
    }

    pub(super) fn lifecycle_msg(
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
    pub(super) fn wasm_memory_limit(&self, kind: Kind) -> Option<u64> {
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

    /// Runs `start` + `canister_init`/`canister_post_upgrade` on a fresh instance
    /// with `budget` instructions; returns instructions used.
    pub(super) fn run_install_code(
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

    pub(super) fn collect_logs(&mut self, c: &mut Canister) {
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
        self.install_at(id, wasm, init_arg, controller)?;
        self.next_id += 1;
        Ok(id)
    }

    /// Allocates the next canister id without installing anything there
    /// (the management canister's `create_canister`: an empty canister,
    /// whose module comes later through [`Host::install_at`]).
    pub fn reserve_canister_id(&mut self) -> Principal {
        let id = canister_id(self.next_id);
        self.next_id += 1;
        id
    }

    /// [`Host::install`] at an id [`Host::reserve_canister_id`] gave (or
    /// of a canister [`Host::remove_canister`] took out).
    pub fn install_at(
        &mut self,
        id: Principal,
        wasm: &[u8],
        init_arg: Vec<u8>,
        controller: Principal,
    ) -> Result<(), HostError> {
        if self.canisters.contains_key(&id) {
            return Err(HostError::InvalidWasm(format!(
                "canister {id} already has a module"
            )));
        }
        let state = self.new_state(id, controller);
        let mut c = Canister::new(&self.engine, wasm, state)?;
        c.begin_tx();
        let budget = self.limits.upgrade_instructions;
        self.run_install_code(&mut c, Kind::Init, init_arg, controller, budget, budget)?;
        c.commit_tx();
        c.state_mut().canister_version = 1;
        self.canisters.insert(id, c);
        Ok(())
    }

    /// Brings back a canister from a snapshot (a network restarted with
    /// its state kept): `wasm` instantiated at `id` over `stable`, then
    /// `canister_post_upgrade(arg)`, as after an upgrade. The heap is not
    /// part of a snapshot: a canister whose state lives in stable memory
    /// comes back whole.
    pub fn restore_at(
        &mut self,
        id: Principal,
        wasm: &[u8],
        snapshot: CanisterSnapshot,
        arg: Vec<u8>,
    ) -> Result<(), HostError> {
        if self.canisters.contains_key(&id) {
            return Err(HostError::InvalidWasm(format!(
                "canister {id} already has a module"
            )));
        }
        let mut state = self.new_state(id, snapshot.controller);
        state.controllers = snapshot.controllers;
        state.canister_version = snapshot.canister_version;
        state.cycles = snapshot.cycles;
        state.certified_data = snapshot.certified_data;
        state.stable = snapshot.stable;
        let mut c = Canister::new(&self.engine, wasm, state)?;
        c.begin_tx();
        let budget = self.limits.upgrade_instructions;
        let controller = c.state().controller;
        self.run_install_code(&mut c, Kind::PostUpgrade, arg, controller, budget, budget)?;
        c.commit_tx();
        self.canisters.insert(id, c);
        Ok(())
    }

    /// What [`Host::restore_at`] needs of a canister, taken now.
    pub fn snapshot(&self, id: Principal) -> Option<CanisterSnapshot> {
        let c = self.canisters.get(&id)?;
        let s = c.state();
        Some(CanisterSnapshot {
            controller: s.controller,
            controllers: s.controllers.clone(),
            canister_version: s.canister_version,
            cycles: s.cycles,
            certified_data: s.certified_data.clone(),
            stable: crate::stable_memory::StableMemory::from_pages(
                s.stable.size_pages(),
                s.stable
                    .written_pages()
                    .into_iter()
                    .map(|(i, p)| (i, p.to_vec())),
            ),
        })
    }

    /// The index the next canister id is made from (kept across restarts,
    /// so ids are never given twice).
    pub fn next_canister_index(&self) -> u64 {
        self.next_id
    }

    pub fn set_next_canister_index(&mut self, next: u64) {
        self.next_id = self.next_id.max(next);
    }

    /// Takes a canister out of the host (`uninstall_code`, `delete_canister`):
    /// its module, heap and stable memory are gone.
    pub fn remove_canister(&mut self, id: Principal) -> Result<(), HostError> {
        self.canisters
            .remove(&id)
            .map(|_| ())
            .ok_or(HostError::CanisterNotFound(id))
    }

    /// Sets who `ic0.is_controller` accepts for this canister.
    pub fn set_controllers(
        &mut self,
        id: Principal,
        controllers: Vec<Principal>,
    ) -> Result<(), HostError> {
        let c = self
            .canisters
            .get_mut(&id)
            .ok_or(HostError::CanisterNotFound(id))?;
        c.state_mut().controllers = controllers;
        Ok(())
    }

    /// The canister's cycle balance.
    pub fn cycles(&self, id: Principal) -> Option<u128> {
        self.canisters.get(&id).map(|c| c.state().cycles)
    }

    /// Adds cycles to the canister's balance.
    pub fn add_cycles(&mut self, id: Principal, amount: u128) -> Result<(), HostError> {
        let c = self
            .canisters
            .get_mut(&id)
            .ok_or(HostError::CanisterNotFound(id))?;
        let state = c.state_mut();
        state.cycles = state.cycles.saturating_add(amount);
        Ok(())
    }

    /// The canister's `canister_version`.
    pub fn canister_version(&self, id: Principal) -> Option<u64> {
        self.canisters.get(&id).map(|c| c.state().canister_version)
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
        let controllers = old.state().controllers.clone();
        let mut state = self.new_state(canister, controller);
        state.canister_version = version + 1;
        state.cycles = cycles;
        state.controllers = controllers;
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

    pub(super) fn upgrade_inner(
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
        state.controllers = old.state().controllers.clone();
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
}
