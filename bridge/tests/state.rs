//! `--state DIR`: a network stopped and started again over the same folder
//! has its canisters, their stable memory and its clock back.

use candid::{Decode, Encode, Principal};
use std::io::{Read, Write};
use std::net::TcpStream;
use upload_bridge::Bridge;

/// A raw Candid call on the bridge's test route (`x-caller` as the caller).
fn raw_call(
    url: &str,
    kind: &str,
    canister: Principal,
    method: &str,
    caller: Principal,
    arg: &[u8],
) -> Vec<u8> {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "POST /api/{kind}/{}/{method} HTTP/1.1\r\nhost: {addr}\r\nx-caller: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        canister.to_text(),
        caller.to_text(),
        arg.len()
    )
    .unwrap();
    s.write_all(arg).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    assert!(
        raw.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    raw[split + 4..].to_vec()
}

fn capsule_names(b: &Bridge, owner: Principal) -> Vec<String> {
    let reply = raw_call(
        &b.url(),
        "query",
        b.canister(),
        "capsules_mine",
        owner,
        &Encode!(&None::<u64>, &10u32).unwrap(),
    );
    Decode!(&reply, Vec<backend::upload::Capsule>)
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect()
}

#[test]
fn a_restarted_network_has_its_canisters_stable_memory_and_clock_back() {
    let dir = std::env::temp_dir().join(format!("upload-bridge-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let wasm = upload_harness::backend_wasm().to_vec();
    let owner = upload_harness::user(7);

    let first = Bridge::start_with_state("127.0.0.1:0", wasm.clone(), Some(dir.clone())).unwrap();
    let canister = first.canister();
    raw_call(
        &first.url(),
        "update",
        canister,
        "capsules_create",
        owner,
        &Encode!(&"kept").unwrap(),
    );
    first.save().unwrap();
    let time_before = first.time_ns();
    drop(first);

    let second = Bridge::start_with_state("127.0.0.1:0", wasm.clone(), Some(dir.clone())).unwrap();
    assert_eq!(
        second.canister(),
        canister,
        "the same canister, not a fresh one"
    );
    assert_eq!(capsule_names(&second, owner), vec!["kept".to_string()]);
    assert!(second.time_ns() >= time_before, "the clock went back");
    drop(second);

    // Without the folder: a new network, empty.
    let fresh = Bridge::start("127.0.0.1:0", wasm).unwrap();
    assert!(capsule_names(&fresh, owner).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
