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
    /// A fresh `HostState` for a module at `id`: its subnet, and (for a
    /// canister the host knows) its controllers, balance and status.
    pub(super) fn new_state(&self, id: Principal, controller: Principal) -> HostState {
        let mut st = HostState::new(id, controller, self.limits.max_stable_bytes / WASM_PAGE);
        let subnet = self.subnet_index_of(id);
        st.subnet_id = self.subnets[subnet].id;
        st.subnet_index = subnet as u64;
        if let Some(m) = self.meta.get(&id) {
            st.controllers = m.settings.controllers.clone();
            st.cycles = m.empty_cycles;
            st.canister_version = m.empty_version;
            st.run_status = status_code(m.status);
        }
        st
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
        self.wasm_memory_limit_of(None, kind)
    }

    /// [`Host::wasm_memory_limit`] for `canister`, whose `update_settings`
    /// may have set its own (0: no limit).
    pub(super) fn wasm_memory_limit_of(
        &self,
        canister: Option<Principal>,
        kind: Kind,
    ) -> Option<u64> {
        let own = canister
            .and_then(|id| self.meta.get(&id))
            .and_then(|m| m.wasm_memory_limit);
        let limit = match own {
            Some(0) => return None,
            Some(l) => l,
            None => self.limits.wasm_memory_limit,
        };
        match kind {
            Kind::Start
            | Kind::Init
            | Kind::PostUpgrade
            | Kind::Update
            | Kind::Timer
            | Kind::ReplyCallback
            | Kind::RejectCallback => Some(limit),
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
        let (id, n) = self.peek_canister_id(0);
        self.install_at(id, wasm, init_arg, controller)?;
        self.subnets[0].next = n + 1;
        Ok(id)
    }

    /// Allocates the next canister id without installing anything there
    /// (the management canister's `create_canister`: an empty canister,
    /// whose module comes later through [`Host::install_at`]).
    ///
    /// The id is only reserved: the host knows no canister there until a
    /// module is installed (the caller keeps the empty canister's record).
    /// Canisters that canisters create through the management canister
    /// are the host's own ([`Host::exists`] while empty).
    pub fn reserve_canister_id(&mut self) -> Principal {
        self.allocate_canister_id(0)
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
        let had_meta = self.meta.contains_key(&id);
        let r = self.install_empty(id, wasm, init_arg, controller);
        if r.is_err() && !had_meta {
            self.meta.remove(&id);
        }
        r
    }

    /// Installs `wasm` in the empty canister `id` (created now if the host
    /// does not know it), `caller` running `canister_init`.
    pub(super) fn install_empty(
        &mut self,
        id: Principal,
        wasm: &[u8],
        init_arg: Vec<u8>,
        caller: Principal,
    ) -> Result<(), HostError> {
        if self.canisters.contains_key(&id) {
            return Err(HostError::InvalidWasm(format!(
                "canister {id} already has a module"
            )));
        }
        self.ensure_meta(id, caller);
        self.install_fault(id)?;
        let state = self.new_state(id, caller);
        let version = state.canister_version;
        let mut c = Canister::new(&self.engine, wasm, state)?;
        c.begin_tx();
        let budget = self.limits.upgrade_instructions;
        self.run_install_code(&mut c, Kind::Init, init_arg, caller, budget, budget)?;
        c.commit_tx();
        c.state_mut().canister_version = version + 1;
        self.canisters.insert(id, c);
        let m = self.meta.get_mut(&id).expect("ensured");
        m.module_hash = Some(Sha256::digest(wasm).into());
        m.empty_cycles = 0;
        Ok(())
    }

    /// Fails like a trapping `canister_init` if a [`Fault::TrapInstall`] is armed for `id`.
    pub(super) fn install_fault(&mut self, id: Principal) -> Result<(), HostError> {
        match self.take_fault(|f| matches!(f, Fault::TrapInstall { canister } if *canister == id)) {
            Some(_) => Err(HostError::CanisterTrapped(format!(
                "Canister {id} trapped explicitly: injected fault (Fault::TrapInstall)"
            ))),
            None => Ok(()),
        }
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
        self.ensure_meta(id, snapshot.controller)
            .settings
            .controllers = snapshot.controllers.clone();
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
        self.ensure_meta(id, controller).module_hash = Some(Sha256::digest(wasm).into());
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
    /// (Of the default subnet.)
    pub fn next_canister_index(&self) -> u64 {
        self.subnets[0].next
    }

    /// Never lowers the default subnet's counter.
    pub fn set_next_canister_index(&mut self, next: u64) {
        self.subnets[0].next = self.subnets[0].next.max(next);
    }

    /// Takes a canister out of the host (`uninstall_code`, `delete_canister`):
    /// its module, heap and stable memory are gone, and the host forgets
    /// the canister (an empty one included).
    pub fn remove_canister(&mut self, id: Principal) -> Result<(), HostError> {
        let had_module = self.canisters.remove(&id).is_some();
        let had_meta = self.meta.remove(&id).is_some();
        if had_module || had_meta {
            Ok(())
        } else {
            Err(HostError::CanisterNotFound(id))
        }
    }

    /// Sets who `ic0.is_controller` accepts for this canister.
    pub fn set_controllers(
        &mut self,
        id: Principal,
        controllers: Vec<Principal>,
    ) -> Result<(), HostError> {
        if !self.exists(id) {
            return Err(HostError::CanisterNotFound(id));
        }
        if let Some(c) = self.canisters.get_mut(&id) {
            c.state_mut().controllers = controllers.clone();
        }
        if let Some(m) = self.meta.get_mut(&id) {
            m.settings.controllers = controllers;
        }
        Ok(())
    }

    /// The canister's cycle balance (also of an empty canister the host created).
    pub fn cycles(&self, id: Principal) -> Option<u128> {
        match self.canisters.get(&id) {
            Some(c) => Some(c.state().cycles),
            None => self.meta.get(&id).map(|m| m.empty_cycles),
        }
    }

    /// Adds cycles to the canister's balance.
    pub fn add_cycles(&mut self, id: Principal, amount: u128) -> Result<(), HostError> {
        let now = self.cycles(id).ok_or(HostError::CanisterNotFound(id))?;
        self.set_cycles(id, now.saturating_add(amount))
    }

    /// Sets the canister's balance (for tests of cycles and freezing).
    pub fn set_cycles(&mut self, id: Principal, amount: u128) -> Result<(), HostError> {
        if let Some(c) = self.canisters.get_mut(&id) {
            c.state_mut().cycles = amount;
            return Ok(());
        }
        let m = self
            .meta
            .get_mut(&id)
            .ok_or(HostError::CanisterNotFound(id))?;
        m.empty_cycles = amount;
        Ok(())
    }

    /// The canister's `canister_version`.
    pub fn canister_version(&self, id: Principal) -> Option<u64> {
        match self.canisters.get(&id) {
            Some(c) => Some(c.state().canister_version),
            None => self.meta.get(&id).map(|m| m.empty_version),
        }
    }

    /// Replaces code and state (heap and stable memory wiped), runs `canister_init(arg)`.
    /// On failure the old canister is untouched.
    pub fn reinstall(
        &mut self,
        canister: Principal,
        wasm: &[u8],
        arg: Vec<u8>,
    ) -> Result<(), HostError> {
        let controller = self
            .canisters
            .get(&canister)
            .ok_or(HostError::CanisterNotFound(canister))?
            .state()
            .controller;
        self.reinstall_as(canister, wasm, arg, controller)
    }

    /// [`Host::reinstall`] with `caller` running `canister_init`.
    pub(super) fn reinstall_as(
        &mut self,
        canister: Principal,
        wasm: &[u8],
        arg: Vec<u8>,
        caller: Principal,
    ) -> Result<(), HostError> {
        self.install_fault(canister)?;
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
        self.run_install_code(&mut c, Kind::Init, arg, caller, budget, budget)?;
        c.commit_tx();
        self.canisters.insert(canister, c);
        self.ensure_meta(canister, controller).module_hash = Some(Sha256::digest(wasm).into());
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
        let controller = self
            .canisters
            .get(&canister)
            .ok_or(HostError::CanisterNotFound(canister))?
            .state()
            .controller;
        self.upgrade_as(canister, wasm, arg, controller, false)
    }

    /// [`Host::upgrade`] with `caller` running the hooks; `skip_pre_upgrade`
    /// as the management canister's `UpgradeFlags`.
    pub(super) fn upgrade_as(
        &mut self,
        canister: Principal,
        wasm: &[u8],
        arg: Vec<u8>,
        caller: Principal,
        skip_pre_upgrade: bool,
    ) -> Result<(), HostError> {
        self.install_fault(canister)?;
        let budget = self.limits.upgrade_instructions;
        let mut old = self
            .canisters
            .remove(&canister)
            .ok_or(HostError::CanisterNotFound(canister))?;
        let result = self.upgrade_inner(&mut old, wasm, arg, budget, caller, skip_pre_upgrade);
        match result {
            Ok(new) => {
                let controller = new.state().controller;
                self.canisters.insert(canister, new);
                self.ensure_meta(canister, controller).module_hash =
                    Some(Sha256::digest(wasm).into());
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
        caller: Principal,
        skip_pre_upgrade: bool,
    ) -> Result<Canister, HostError> {
        let controller = old.state().controller;
        old.begin_tx();
        let mut used = 0;
        if !skip_pre_upgrade && old.has_export("canister_pre_upgrade") {
            let msg = self.lifecycle_msg(Kind::PreUpgrade, caller, Vec::new(), budget);
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
        state.run_status = old.state().run_status;
        let mut new = Canister::new(&self.engine, wasm, state)?;
        new.state_mut().stable = std::mem::take(&mut old.state_mut().stable);
        let r = self.run_install_code(
            &mut new,
            Kind::PostUpgrade,
            arg,
            caller,
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

/// `ic0.canister_status`'s number for a status.
pub(super) fn status_code(s: RunStatus) -> u32 {
    match s {
        RunStatus::Running => 1,
        RunStatus::Stopping => 2,
        RunStatus::Stopped => 3,
    }
}
