//! The canister behind the gateway: something that answers `http_request`
//! queries and publishes the key and clock its certificates are checked
//! against.

use candid::{CandidType, Deserialize, Principal};
use embedded_ic_host::Host;
use ic_http_certification::HttpRequest;
use std::sync::{Arc, Mutex};

/// A canister's answer to `http_request`, as decoded from Candid, before
/// any verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanisterResponse {
    /// HTTP status code.
    pub status_code: u16,
    /// Headers, in the canister's order (`IC-Certificate` among them).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// `upgrade = opt true`: the canister asks for the update call
    /// `http_request_update`.
    pub upgrade: Option<bool>,
    /// Whether the response carried a `streaming_strategy` (callback
    /// streaming, which cannot be verified chunk by chunk).
    pub has_streaming_strategy: bool,
}

/// The Candid reply of `http_request`. `streaming_strategy` is taken as
/// `reserved`: only its presence matters.
#[derive(CandidType, Deserialize)]
struct CandidHttpResponse {
    status_code: u16,
    headers: Vec<(String, String)>,
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
    upgrade: Option<bool>,
    streaming_strategy: Option<candid::Reserved>,
}

/// Decodes the Candid reply of `http_request` (before any verification).
pub fn decode_http_response(reply: &[u8]) -> Result<CanisterResponse, String> {
    let r: CandidHttpResponse = candid::decode_one(reply)
        .map_err(|e| format!("the reply of http_request is not an HttpResponse: {e}"))?;
    Ok(CanisterResponse {
        status_code: r.status_code,
        headers: r.headers,
        body: r.body,
        upgrade: r.upgrade,
        has_streaming_strategy: r.streaming_strategy.is_some(),
    })
}

/// What the gateway needs of a canister.
pub trait HttpCanister: Send + Sync + 'static {
    /// The canister's id (certificates are checked to speak for it).
    fn canister_id(&self) -> Principal;
    /// Runs the query `http_request(request)` as the anonymous principal
    /// (the gateway's requests are anonymous on the IC too).
    fn http_request(&self, request: &HttpRequest<'static>) -> Result<CanisterResponse, String>;
    /// The root key certificates must be signed with (DER).
    fn root_key(&self) -> Vec<u8>;
    /// The current time in nanoseconds, against which a certificate's time
    /// is checked.
    fn time_ns(&self) -> u64;
    /// Another canister of the same network (routing by canister id:
    /// `http://<id>.localhost:<port>/...` or `?canisterId=<id>`), checked
    /// against the same root key: its certificates must speak for `id`
    /// (through the delegation to its subnet, for a canister on another
    /// subnet than the root subnet). `None`: no such canister, or this
    /// canister serves alone (the default).
    fn route(&self, id: Principal) -> Option<std::sync::Arc<dyn HttpCanister>> {
        let _ = id;
        None
    }
}

/// A canister installed in an embedded [`Host`] shared with others (the
/// tests that upload into it, a loopback bridge).
#[derive(Clone)]
pub struct HostCanister {
    host: Arc<Mutex<Host>>,
    canister: Principal,
}

impl HostCanister {
    /// `canister` of `host`.
    pub fn new(host: Arc<Mutex<Host>>, canister: Principal) -> Self {
        HostCanister { host, canister }
    }

    /// The shared host.
    pub fn host(&self) -> &Arc<Mutex<Host>> {
        &self.host
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Host> {
        // A panic elsewhere while holding the host leaves it usable: every
        // host operation is atomic.
        self.host.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl HttpCanister for HostCanister {
    fn canister_id(&self) -> Principal {
        self.canister
    }

    fn http_request(&self, request: &HttpRequest<'static>) -> Result<CanisterResponse, String> {
        let arg = candid::encode_one(request).map_err(|e| e.to_string())?;
        let reply = self
            .lock()
            .query(self.canister, Principal::anonymous(), "http_request", arg)
            .map_err(|e| e.to_string())?;
        decode_http_response(&reply)
    }

    fn root_key(&self) -> Vec<u8> {
        self.lock().root_key()
    }

    fn time_ns(&self) -> u64 {
        self.lock().time()
    }

    /// Any canister of the same host with a module.
    fn route(&self, id: Principal) -> Option<Arc<dyn HttpCanister>> {
        self.lock()
            .module_hash(id)
            .map(|_| Arc::new(HostCanister::new(self.host.clone(), id)) as Arc<dyn HttpCanister>)
    }
}
