//! Helpers shared by the multi-canister tests: the probe canister (built
//! once), its `forward` method (a call from a canister to anything, the
//! management canister included) and the Candid of its replies.
#![allow(dead_code)]

use candid::{CandidType, Decode, Encode, Principal};
use embedded_ic_host::{build_canister_wasm, Host, HostError};
use serde::Deserialize;
use std::path::Path;
use std::sync::OnceLock;

pub fn probe_wasm() -> &'static [u8] {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("probe-canister/Cargo.toml");
        let path = build_canister_wasm(&manifest, "ic-host-probe-canister");
        std::fs::read(path).expect("probe wasm")
    })
}

/// The probe gzip-compressed, as dfx and icp install modules.
pub fn probe_wasm_gz() -> &'static [u8] {
    static GZ: OnceLock<Vec<u8>> = OnceLock::new();
    GZ.get_or_init(|| {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(probe_wasm()).unwrap();
        e.finish().unwrap()
    })
}

pub fn user() -> Principal {
    Principal::from_slice(&[7; 29])
}

pub fn other_user() -> Principal {
    Principal::from_slice(&[8; 29])
}

/// What the probe's `forward` got back.
#[derive(CandidType, Deserialize, Debug, PartialEq, Eq)]
pub enum Forwarded {
    Reply {
        bytes: serde_bytes::ByteBuf,
        refunded: u128,
    },
    Reject {
        code: u32,
        message: String,
        refunded: u128,
    },
    NotSent {
        error: String,
    },
}

impl Forwarded {
    /// The reply's bytes (panics on anything else).
    pub fn reply(self) -> Vec<u8> {
        match self {
            Forwarded::Reply { bytes, .. } => bytes.into_vec(),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    /// Code and message of a reject (panics on anything else).
    pub fn reject(self) -> (u32, String) {
        match self {
            Forwarded::Reject { code, message, .. } => (code, message),
            other => panic!("expected a reject, got {other:?}"),
        }
    }

    pub fn refunded(&self) -> u128 {
        match self {
            Forwarded::Reply { refunded, .. } | Forwarded::Reject { refunded, .. } => *refunded,
            Forwarded::NotSent { .. } => 0,
        }
    }
}

/// `via` (a probe) calls `callee.method(arg)` with `cycles` attached
/// (bounded wait if `timeout` is given); the ingress call to `via` comes from [`user`].
pub fn forward_with(
    host: &mut Host,
    via: Principal,
    callee: Principal,
    method: &str,
    arg: Vec<u8>,
    cycles: u128,
    timeout: Option<u32>,
) -> Result<Forwarded, HostError> {
    let bytes = host.update(
        via,
        user(),
        "forward",
        Encode!(
            &callee,
            &method.to_string(),
            &serde_bytes::ByteBuf::from(arg),
            &cycles,
            &timeout
        )
        .unwrap(),
    )?;
    Ok(Decode!(&bytes, Forwarded).unwrap())
}

pub fn forward(
    host: &mut Host,
    via: Principal,
    callee: Principal,
    method: &str,
    arg: Vec<u8>,
    cycles: u128,
) -> Forwarded {
    forward_with(host, via, callee, method, arg, cycles, None)
        .unwrap_or_else(|e| panic!("forward {method}: {e}"))
}

/// A management canister call from canister `via`.
pub fn management(
    host: &mut Host,
    via: Principal,
    method: &str,
    arg: Vec<u8>,
    cycles: u128,
) -> Forwarded {
    forward(
        host,
        via,
        Principal::management_canister(),
        method,
        arg,
        cycles,
    )
}

/// `canister_self`'s subnet, `canister_status` and `msg_deadline` as the probe sees them.
pub fn whoami(host: &mut Host, probe: Principal) -> (Principal, u32, u64) {
    let b = host
        .update(probe, user(), "whoami", Encode!().unwrap())
        .unwrap();
    Decode!(&b, Principal, u32, u64).unwrap()
}

/// The probe's counter.
pub fn counter(host: &mut Host, probe: Principal) -> u64 {
    let b = host
        .query(probe, user(), "counter", Encode!().unwrap())
        .unwrap();
    Decode!(&b, u64).unwrap()
}

/// A probe installed on the default subnet, controlled by [`user`].
pub fn probe(host: &mut Host) -> Principal {
    host.install(probe_wasm(), Encode!().unwrap(), user())
        .expect("install probe")
}
