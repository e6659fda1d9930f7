//! The harness's [`IcEnv`] over a host the gateway shares, so the
//! project's Rust client ([`upload_harness::client::UploadClient`]) can
//! upload and share files in the very host the gateway serves from.

use candid::Principal;
use embedded_ic_host::{Host, Limits};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use upload_harness::IcEnv;

/// An embedded host behind a mutex, with one controller.
#[derive(Clone)]
pub struct SharedHost {
    host: Arc<Mutex<Host>>,
    controller: Principal,
}

impl SharedHost {
    /// A new host; canisters installed through it are controlled by
    /// `controller`.
    pub fn new(controller: Principal) -> Self {
        let mut host = Host::new();
        host.set_echo_logs(false);
        SharedHost {
            host: Arc::new(Mutex::new(host)),
            controller,
        }
    }

    /// The host, to hand to [`crate::HostCanister`].
    pub fn host(&self) -> Arc<Mutex<Host>> {
        self.host.clone()
    }

    /// Locks the host (a panic while it was held leaves it usable: every
    /// host operation is atomic).
    pub fn lock(&self) -> MutexGuard<'_, Host> {
        self.host.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl IcEnv for SharedHost {
    fn name(&self) -> &'static str {
        "embedded host (shared with the gateway)"
    }

    fn controller(&self) -> Principal {
        self.controller
    }

    fn install(&mut self, wasm: &[u8]) -> Principal {
        let controller = self.controller;
        self.lock()
            .install(
                wasm,
                candid::encode_args(()).expect("empty args"),
                controller,
            )
            .unwrap_or_else(|e| panic!("install failed: {e}"))
    }

    fn upgrade(&mut self, canister: Principal, wasm: &[u8]) -> Result<(), String> {
        self.lock()
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
        self.lock()
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
        self.lock()
            .query(canister, caller, method, arg)
            .map_err(|e| e.to_string())
    }

    fn advance_time(&mut self, by: Duration) {
        self.lock().advance_time(by);
    }

    fn tick(&mut self) {
        self.lock().tick();
    }

    fn last_instructions(&self) -> Option<u64> {
        Some(self.lock().last_instructions())
    }

    fn stable_memory_bytes(&self, canister: Principal) -> Option<u64> {
        Some(self.lock().stable_memory_bytes(canister))
    }

    fn limit_update_instructions(&mut self, limit: Option<u64>) -> bool {
        let mut host = self.lock();
        let mut limits = host.limits();
        limits.update_instructions = limit.unwrap_or(Limits::default().update_instructions);
        host.set_limits(limits);
        true
    }
}
