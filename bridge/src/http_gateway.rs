//! The bridge's canister seen through the local HTTP gateway: one process
//! serves both the Candid calls of the TypeScript client and the verified
//! `http_request` traffic of share links, over the same embedded host.

use crate::{lock, sync_clock, Shared};
use candid::Principal;
use ic_http_certification::HttpRequest;
use local_gateway::{CanisterResponse, HttpCanister};
use std::sync::Arc;

/// [`HttpCanister`] over the bridge's host: each `http_request` is a
/// query by the anonymous principal, as the IC's gateway makes it, on the
/// clock the bridge keeps.
///
/// Routed by canister id ([`HttpCanister::route`]): any canister of the
/// network with a module, on any subnet (its certificates then carry the
/// delegation to its subnet, checked against the network's root key).
pub struct BridgeCanister {
    pub(crate) shared: Arc<Shared>,
    /// `None`: the canister installed at start.
    pub(crate) canister: Option<Principal>,
}

impl BridgeCanister {
    fn id(&self) -> Principal {
        self.canister.unwrap_or(self.shared.canister)
    }
}

impl HttpCanister for BridgeCanister {
    fn canister_id(&self) -> Principal {
        self.id()
    }

    fn route(&self, id: Principal) -> Option<Arc<dyn HttpCanister>> {
        let world = lock(&self.shared.world);
        world.net.module_hash_of(&id).map(|_| {
            Arc::new(BridgeCanister {
                shared: self.shared.clone(),
                canister: Some(id),
            }) as Arc<dyn HttpCanister>
        })
    }

    fn http_request(&self, request: &HttpRequest<'static>) -> Result<CanisterResponse, String> {
        let arg = candid::encode_one(request).map_err(|e| e.to_string())?;
        let reply = {
            let mut world = lock(&self.shared.world);
            sync_clock(&self.shared, &mut world);
            world
                .net
                .host
                .query(self.id(), Principal::anonymous(), "http_request", arg)
                .map_err(|e| e.to_string())?
        };
        local_gateway::canister::decode_http_response(&reply)
    }

    fn root_key(&self) -> Vec<u8> {
        lock(&self.shared.world).net.host.root_key()
    }

    fn time_ns(&self) -> u64 {
        lock(&self.shared.world).net.host.time()
    }
}
