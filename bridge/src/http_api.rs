//! The IC's HTTP interface over tiny_http: `/api/v2/status`, `call` (v2
//! asynchronous, v3 and v4 synchronous), `query` (v2, v3) and `read_state`
//! (v2, v3, for canisters and subnets). The faults apply to calls and
//! queries, here, so the real agents meet them.

use crate::network::envelope::{self, Envelope};
use crate::network::errors::HttpRefusal;
use crate::network::{certify::cbor, CallResult, Target, MAX_REQUEST_BYTES};
use crate::{lock, reply, sync_clock, text, Reply, Shared};
use candid::Principal;
use serde::Serialize;
use std::time::Duration;

/// What `/api/v2/status` says.
#[derive(Serialize)]
struct Status<'a> {
    ic_api_version: &'static str,
    impl_version: &'static str,
    replica_health_status: &'static str,
    #[serde(with = "serde_bytes")]
    root_key: &'a [u8],
}

fn refusal(r: HttpRefusal) -> Reply {
    text(r.status, r.message)
}

fn cbor_reply(status: u16, value: &impl Serialize) -> Reply {
    reply(status, cbor(value), "application/cbor")
}

pub fn status(shared: &Shared) -> Reply {
    cbor_reply(
        200,
        &Status {
            ic_api_version: "0.18.0",
            impl_version: env!("CARGO_PKG_VERSION"),
            replica_health_status: "healthy",
            root_key: shared.keys.root_key_der(),
        },
    )
}

/// Routes `/api/<version>/<canister|subnet>/<id>/<endpoint>`.
pub fn route(
    shared: &Shared,
    version: &str,
    scope: &str,
    id: &str,
    endpoint: &str,
    body: Vec<u8>,
) -> Reply {
    if body.len() > MAX_REQUEST_BYTES {
        return text(
            413,
            format!(
                "Payload Too Large: the request of {} bytes is over the limit of {MAX_REQUEST_BYTES} bytes",
                body.len()
            ),
        );
    }
    let Ok(id) = Principal::from_text(id) else {
        return text(400, format!("`{id}` is not a principal"));
    };
    let response = match (version, scope, endpoint) {
        ("v2", "canister", "call") => call(shared, id, &body, false),
        ("v3" | "v4", "canister", "call") => call(shared, id, &body, true),
        ("v2" | "v3", "canister", "query") => query(shared, id, &body),
        ("v2" | "v3", "canister", "read_state") => read_state(shared, Target::Canister(id), &body),
        ("v2" | "v3", "subnet", "read_state") => read_state(shared, Target::Subnet(id), &body),
        _ => text(
            404,
            format!("no endpoint /api/{version}/{scope}/<id>/{endpoint}"),
        ),
    };
    if std::env::var_os("UPLOAD_BRIDGE_TRACE").is_some() {
        trace(
            &format!("/api/{version}/{scope}/{id}/{endpoint}"),
            endpoint,
            &body,
            &response,
        );
    }
    response
}

/// `UPLOAD_BRIDGE_TRACE=1`: one line on stderr per request, what a tool
/// asked of the network (`canister method` or the read_state paths) and
/// the HTTP status it got.
fn trace(path: &str, endpoint: &str, body: &[u8], response: &Reply) {
    let label = |l: &Vec<u8>| match Principal::try_from_slice(l) {
        Ok(p) if l.len() == 10 || l.len() == 29 => p.to_text(),
        _ if l.iter().all(|b| b.is_ascii_graphic()) => String::from_utf8_lossy(l).into_owned(),
        _ => l.iter().map(|b| format!("{b:02x}")).collect(),
    };
    let kind = match endpoint {
        "call" => "call",
        "query" => "query",
        _ => "read_state",
    };
    let what = match envelope::decode(body, kind) {
        Ok(e) => match e.content {
            envelope::Content::Call(c) | envelope::Content::Query(c) => {
                format!("{} {}", c.canister_id, c.method_name)
            }
            envelope::Content::ReadState { paths } => paths
                .iter()
                .map(|p| p.iter().map(label).collect::<Vec<_>>().join("/"))
                .collect::<Vec<_>>()
                .join(", "),
        },
        Err(e) => format!("undecodable: {}", e.0),
    };
    eprintln!(
        "upload-bridge: POST {path}: {what} -> {}",
        response.status_code().0
    );
}

fn decoded(body: &[u8], kind: &'static str) -> Result<Envelope, Reply> {
    envelope::decode(body, kind).map_err(|m| text(400, m.0))
}

fn method_of(e: &Envelope) -> String {
    match &e.content {
        envelope::Content::Call(c) | envelope::Content::Query(c) => c.method_name.clone(),
        envelope::Content::ReadState { .. } => "read_state".into(),
    }
}

fn call(shared: &Shared, effective: Principal, body: &[u8], synchronous: bool) -> Reply {
    let envelope = match decoded(body, "call") {
        Ok(e) => e,
        Err(r) => return r,
    };
    let method = method_of(&envelope);
    let run = |world: &mut crate::World| {
        let result = world.net.call(&envelope, effective);
        world.changes += 1;
        let certificate = match (&result, synchronous) {
            (Ok(CallResult::Certified { .. }), true) => Some(world.net.call_certificate(
                &envelope.request_id,
                effective,
                &shared.keys,
            )),
            _ => None,
        };
        (result, certificate)
    };
    // A repeated request id reached the network but did not run again.
    let ran = |(result, _): &(_, _)| matches!(result, Ok(CallResult::Certified { repeat: false }));
    let (result, certificate) = match shared.through_faults(&method, run, ran) {
        Ok(outcome) => outcome,
        Err(fault) => return fault,
    };
    match result {
        Err(r) => refusal(r),
        Ok(CallResult::NonReplicatedRejection(r)) => cbor_reply(
            200,
            &NonReplicated {
                status: "non_replicated_rejection",
                reject_code: r.code,
                reject_message: r.message,
                error_code: r.error_code,
            },
        ),
        Ok(CallResult::Certified { .. }) => match certificate {
            Some(certificate) => cbor_reply(
                200,
                &SyncReply {
                    status: "replied",
                    certificate: serde_bytes::ByteBuf::from(certificate),
                },
            ),
            None => reply(202, Vec::new(), "application/cbor"),
        },
    }
}

#[derive(Serialize)]
struct NonReplicated {
    status: &'static str,
    reject_code: u64,
    reject_message: String,
    error_code: &'static str,
}

#[derive(Serialize)]
struct SyncReply {
    status: &'static str,
    certificate: serde_bytes::ByteBuf,
}

#[derive(Serialize)]
struct ReadStateReply {
    certificate: serde_bytes::ByteBuf,
}

fn query(shared: &Shared, effective: Principal, body: &[u8]) -> Reply {
    let envelope = match decoded(body, "query") {
        Ok(e) => e,
        Err(r) => return r,
    };
    let method = method_of(&envelope);
    let corrupt_reads = lock(&shared.faults).faults.corrupt_reads;
    let run = |world: &mut crate::World| {
        world
            .net
            .query(&envelope, effective, &shared.keys, |method, reply| {
                corrupt_reads && method == "memories_read" && crate::corrupt_read(reply)
            })
    };
    let result = match shared.through_faults(&method, run, Result::is_ok) {
        Ok(result) => result,
        Err(fault) => return fault,
    };
    match result {
        Ok((reply, corrupted)) => {
            if corrupted {
                lock(&shared.stats).0.corrupted_reads += 1;
            }
            cbor_reply(200, &reply)
        }
        Err(r) => refusal(r),
    }
}

fn read_state(shared: &Shared, target: Target, body: &[u8]) -> Reply {
    let envelope = match decoded(body, "read_state") {
        Ok(e) => e,
        Err(r) => return r,
    };
    let mut world = lock(&shared.world);
    sync_clock(shared, &mut world);
    match world.net.read_state(&envelope, target, &shared.keys) {
        Ok(certificate) => cbor_reply(
            200,
            &ReadStateReply {
                certificate: serde_bytes::ByteBuf::from(certificate),
            },
        ),
        Err(r) => refusal(r),
    }
}

/// Holds a reply as the faults say (outside every lock).
pub fn hold(ms: u64) {
    if ms > 0 {
        std::thread::sleep(Duration::from_millis(ms));
    }
}
