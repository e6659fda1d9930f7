//! How the network answers what went wrong, as the IC does: reject codes
//! and `error_code`s for what a canister or the system did, HTTP statuses
//! for requests refused before they execute.

use embedded_ic_host::HostError;

/// A reject, as `request_status` or a query reply carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    /// 1 system fatal, 2 system transient, 3 destination invalid, 4 canister
    /// reject, 5 canister error.
    pub code: u64,
    pub message: String,
    /// The IC's error code, e.g. `IC0503`.
    pub error_code: &'static str,
}

impl Reject {
    pub fn new(code: u64, error_code: &'static str, message: impl Into<String>) -> Self {
        Reject {
            code,
            message: message.into(),
            error_code,
        }
    }
}

/// A request refused before it executes: an HTTP status and a text body.
#[derive(Debug, PartialEq, Eq)]
pub struct HttpRefusal {
    pub status: u16,
    pub message: String,
}

impl HttpRefusal {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        HttpRefusal {
            status,
            message: message.into(),
        }
    }
}

/// The IC's reject for what the host reports of a message to `canister`.
pub fn reject_of(canister: &candid::Principal, e: &HostError) -> Reject {
    match e {
        HostError::CanisterTrapped(m) => Reject::new(
            5,
            "IC0503",
            format!("Error from Canister {canister}: Canister called `ic0.trap` with message: '{m}'"),
        ),
        // A canister's own `msg_reject` text reaches the caller unchanged.
        HostError::CanisterRejected { code: 4, message } => {
            Reject::new(4, "IC0406", message.clone())
        }
        HostError::CanisterRejected { code, message } => {
            Reject::new(u64::from(*code), "IC0503", message.clone())
        }
        HostError::InstructionLimitExceeded { limit } => Reject::new(
            5,
            "IC0522",
            format!(
                "Error from Canister {canister}: Canister exceeded the limit of {limit} instructions for single message execution."
            ),
        ),
        HostError::StableMemoryLimit(m) => Reject::new(
            5,
            "IC0503",
            format!("Error from Canister {canister}: {m}"),
        ),
        HostError::MethodNotFound(m) => Reject::new(
            5,
            "IC0536",
            format!("Error from Canister {canister}: {m}"),
        ),
        HostError::UnimplementedSystemApi(name) => Reject::new(
            5,
            "IC0504",
            format!("Error from Canister {canister}: the canister called {name}, which this network does not implement"),
        ),
        HostError::CanisterNotFound(id) => {
            Reject::new(3, "IC0301", format!("Canister {id} not found"))
        }
        HostError::InvalidWasm(m) => Reject::new(
            5,
            "IC0505",
            format!("Error from Canister {canister}: invalid Wasm module: {m}"),
        ),
        HostError::IngressTooLarge { size, limit } => Reject::new(
            5,
            "IC0504",
            format!("the message of {size} bytes is over the limit of {limit} bytes"),
        ),
    }
}
