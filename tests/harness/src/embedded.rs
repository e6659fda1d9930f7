//! `IcEnv` over the embedded IC host: one the environment owns, or one
//! shared behind a mutex with another user of the same host (the local
//! HTTP gateway serving what the tests upload).

use crate::IcEnv;
use candid::Principal;
use embedded_ic_host::{Host, Limits};
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How an [`EmbeddedEnv`] reaches its host.
pub trait HostAccess {
    /// The host, to read.
    fn read(&self) -> impl Deref<Target = Host> + '_;
    /// The host, to change.
    fn write(&mut self) -> impl DerefMut<Target = Host> + '_;
}

impl HostAccess for Host {
    fn read(&self) -> impl Deref<Target = Host> + '_ {
        self
    }
    fn write(&mut self) -> impl DerefMut<Target = Host> + '_ {
        self
    }
}

/// A host shared with others. A panic while it was held leaves it usable:
/// every host operation is atomic.
impl HostAccess for Arc<Mutex<Host>> {
    fn read(&self) -> impl Deref<Target = Host> + '_ {
        lock(self)
    }
    fn write(&mut self) -> impl DerefMut<Target = Host> + '_ {
        lock(self)
    }
}

fn lock(host: &Mutex<Host>) -> MutexGuard<'_, Host> {
    host.lock().unwrap_or_else(|e| e.into_inner())
}

/// The embedded host with one controller.
pub struct EmbeddedEnv<H: HostAccess = Host> {
    host: H,
    controller: Principal,
    name: &'static str,
}

impl EmbeddedEnv {
    pub fn new() -> Self {
        Self {
            host: Host::new(),
            controller: crate::user(200),
            name: "embedded host",
        }
    }

    /// The host itself, for what only it can do (lower limits, inspect).
    pub fn host(&mut self) -> &mut Host {
        &mut self.host
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.host.set_limits(limits);
    }
}

impl Default for EmbeddedEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl EmbeddedEnv<Arc<Mutex<Host>>> {
    /// A new host behind a mutex, its canister output kept out of stderr;
    /// canisters installed through it are controlled by `controller`.
    pub fn shared(controller: Principal) -> Self {
        let mut host = Host::new();
        host.set_echo_logs(false);
        Self {
            host: Arc::new(Mutex::new(host)),
            controller,
            name: "embedded host (shared)",
        }
    }

    /// The shared host, to hand to its other user.
    pub fn host(&self) -> Arc<Mutex<Host>> {
        self.host.clone()
    }

    /// Locks the host.
    pub fn lock(&self) -> MutexGuard<'_, Host> {
        lock(&self.host)
    }
}

impl<H: HostAccess> IcEnv for EmbeddedEnv<H> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn controller(&self) -> Principal {
        self.controller
    }

    fn install(&mut self, wasm: &[u8]) -> Principal {
        let controller = self.controller;
        self.host
            .write()
            .install(
                wasm,
                candid::encode_args(()).expect("empty args"),
                controller,
            )
            .unwrap_or_else(|e| panic!("install failed: {e}"))
    }

    fn upgrade(&mut self, canister: Principal, wasm: &[u8]) -> Result<(), String> {
        self.host
            .write()
            .upgrade(canister, wasm, candid::encode_args(()).expect("empty args"))
            .map_err(|e| e.to_string())
    }

    fn update_raw(
        &mut self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        self.host
            .write()
            .update(canister, caller, method, arg)
            .map_err(|e| e.to_string())
    }

    fn query_raw(
        &mut self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        self.host
            .write()
            .query(canister, caller, method, arg)
            .map_err(|e| e.to_string())
    }

    fn advance_time(&mut self, by: Duration) {
        self.host.write().advance_time(by);
    }

    fn tick(&mut self) {
        self.host.write().tick();
    }

    fn last_instructions(&self) -> Option<u64> {
        Some(self.host.read().last_instructions())
    }

    fn stable_memory_bytes(&self, canister: Principal) -> Option<u64> {
        Some(self.host.read().stable_memory_bytes(canister))
    }

    fn limit_update_instructions(&mut self, limit: Option<u64>) -> bool {
        let mut host = self.host.write();
        let mut limits = host.limits();
        limits.update_instructions = limit.unwrap_or(Limits::default().update_instructions);
        host.set_limits(limits);
        true
    }
}
