//! The bridge over a real socket: calls reach the real canister, and each
//! fault does what it says.

use backend::upload::{Capsule, UploadError};
use candid::Principal;
use std::io::{Read, Write};
use std::net::TcpStream;
use upload_bridge::Bridge;

struct Response {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

/// One HTTP/1.1 request on its own connection.
fn http(url: &str, method: &str, path: &str, caller: Option<Principal>, body: &[u8]) -> Response {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect");
    let caller = caller
        .map(|c| format!("x-caller: {}\r\n", c.to_text()))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{caller}content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let headers = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let status = headers[9..12].parse().unwrap();
    Response {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn user(n: u8) -> Principal {
    upload_harness::user(n)
}

fn start() -> Bridge {
    Bridge::start("127.0.0.1:0", upload_harness::backend_wasm().to_vec()).expect("bridge starts")
}

fn create_capsule(b: &Bridge, caller: Principal, name: &str) -> Response {
    let path = format!("/api/update/{}/capsules_create", b.canister().to_text());
    http(
        &b.url(),
        "POST",
        &path,
        Some(caller),
        &candid::encode_one(name.to_string()).unwrap(),
    )
}

fn my_capsules(b: &Bridge, caller: Principal) -> Vec<Capsule> {
    let path = format!("/api/query/{}/capsules_mine", b.canister().to_text());
    let r = http(
        &b.url(),
        "POST",
        &path,
        Some(caller),
        &candid::encode_args((None::<u64>, 100u32)).unwrap(),
    );
    assert_eq!(r.status, 200);
    candid::decode_one(&r.body).unwrap()
}

fn set_faults(b: &Bridge, json: &str) {
    let r = http(&b.url(), "POST", "/admin/faults", None, json.as_bytes());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn raw_candid_in_and_out_with_the_caller_given_per_call() {
    let b = start();
    let r = create_capsule(&b, user(1), "holiday");
    assert_eq!(r.status, 200);
    let created: Result<Capsule, UploadError> = candid::decode_one(&r.body).unwrap();
    let created = created.unwrap();
    assert_eq!(created.owner, user(1));
    assert_eq!(my_capsules(&b, user(1)), vec![created]);
    assert!(my_capsules(&b, user(2)).is_empty());
    // No x-caller: anonymous, which the canister refuses before executing.
    let path = format!("/api/update/{}/capsules_create", b.canister().to_text());
    let r = http(
        &b.url(),
        "POST",
        &path,
        None,
        &candid::encode_one("x".to_string()).unwrap(),
    );
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("anonymous"));
}

#[test]
fn rejects_carry_the_ic_reject_code() {
    let b = start();
    let path = format!("/api/update/{}/no_such_method", b.canister().to_text());
    let r = http(&b.url(), "POST", &path, Some(user(1)), b"DIDL\0\0");
    assert_eq!(r.status, 400);
    assert!(r.headers.contains("x-reject-code: 3"), "{}", r.headers);
    // Not Candid at all: the canister traps decoding it (code 5).
    let path = format!("/api/update/{}/capsules_create", b.canister().to_text());
    let r = http(&b.url(), "POST", &path, Some(user(1)), b"garbage");
    assert_eq!(r.status, 400);
    assert!(r.headers.contains("x-reject-code: 5"), "{}", r.headers);
}

#[test]
fn dropped_before_never_executes_dropped_after_does() {
    let b = start();
    set_faults(&b, r#"{"drop_every": 2, "drop_point": "before"}"#);
    assert_eq!(create_capsule(&b, user(1), "a").status, 200);
    assert_eq!(create_capsule(&b, user(1), "b").status, 503);
    set_faults(&b, r#"{"drop_every": 2, "drop_point": "after"}"#);
    assert_eq!(create_capsule(&b, user(1), "c").status, 200);
    assert_eq!(create_capsule(&b, user(1), "d").status, 503);
    set_faults(&b, "{}");
    let names: Vec<String> = my_capsules(&b, user(1))
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, vec!["a", "c", "d"]);
    let stats = b.stats();
    assert_eq!((stats.dropped_before, stats.dropped_after), (1, 1));
    assert_eq!(stats.calls["capsules_create"], 4);
    assert_eq!(stats.executed["capsules_create"], 3);
}

#[test]
fn reorder_sends_replies_in_another_order_than_execution() {
    let b = start();
    set_faults(&b, r#"{"reorder_ms": 60}"#);
    std::thread::scope(|s| {
        for i in 0..12 {
            let b = &b;
            s.spawn(move || {
                let r = create_capsule(b, user(1), &format!("c{i}"));
                assert_eq!(r.status, 200);
            });
        }
    });
    assert_eq!(my_capsules(&b, user(1)).len(), 12);
    assert!(b.stats().replies_out_of_order > 0, "{:?}", b.stats());
}

#[test]
fn upgrade_keeps_the_state_and_fresh_canisters_are_separate() {
    let b = start();
    assert_eq!(create_capsule(&b, user(1), "kept").status, 200);
    let path = format!("/admin/upgrade/{}", b.canister().to_text());
    assert_eq!(http(&b.url(), "POST", &path, None, b"").status, 200);
    assert_eq!(b.stats().upgrades, 1);
    assert_eq!(my_capsules(&b, user(1)).len(), 1);

    let r = http(&b.url(), "POST", "/admin/install", None, b"");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let other = Principal::from_text(v["canister"].as_str().unwrap()).unwrap();
    assert_ne!(other, b.canister());
    let path = format!("/api/query/{}/capsules_mine", other.to_text());
    let r = http(
        &b.url(),
        "POST",
        &path,
        Some(user(1)),
        &candid::encode_args((None::<u64>, 100u32)).unwrap(),
    );
    assert!(candid::decode_one::<Vec<Capsule>>(&r.body)
        .unwrap()
        .is_empty());
}

#[test]
fn unknown_fault_fields_are_refused() {
    let b = start();
    let r = http(
        &b.url(),
        "POST",
        "/admin/faults",
        None,
        br#"{"drop_evry": 7}"#,
    );
    assert_eq!(r.status, 400);
}
