//! The bridge over a real socket: calls reach the real canister, and each
//! fault does what it says.

use backend::upload::{Capsule, UploadError};
use candid::Principal;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use upload_bridge::Bridge;
use upload_harness::client::{ok, test_file, UploadClient};
use upload_harness::IcEnv;

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

/// The harness's `IcEnv` over the bridge's HTTP routes, so the harness's
/// typed client drives the canister through the same socket as a browser.
struct OverHttp<'a>(&'a Bridge);

impl OverHttp<'_> {
    fn call(
        &self,
        kind: &str,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let path = format!("/api/{kind}/{}/{method}", canister.to_text());
        let r = http(&self.0.url(), "POST", &path, Some(caller), &arg);
        match r.status {
            200 => Ok(r.body),
            s => Err(format!("{s}: {}", String::from_utf8_lossy(&r.body))),
        }
    }
}

impl IcEnv for OverHttp<'_> {
    fn name(&self) -> &'static str {
        "bridge over HTTP"
    }
    fn controller(&self) -> Principal {
        self.0.controller()
    }
    fn install(&mut self, _wasm: &[u8]) -> Principal {
        unreachable!("the bridge installs its own canisters")
    }
    fn upgrade(&mut self, canister: Principal, _wasm: &[u8]) -> Result<(), String> {
        let r = http(
            &self.0.url(),
            "POST",
            &format!("/admin/upgrade/{}", canister.to_text()),
            None,
            b"",
        );
        if r.status == 200 {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&r.body).into())
        }
    }
    fn update_raw(
        &mut self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        self.call("update", canister, caller, method, arg)
    }
    fn query_raw(
        &mut self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        self.call("query", canister, caller, method, arg)
    }
    fn advance_time(&mut self, by: Duration) {
        let r = http(
            &self.0.url(),
            "POST",
            &format!("/admin/advance_time/{}", by.as_secs()),
            None,
            b"",
        );
        assert_eq!(r.status, 200);
    }
    fn tick(&mut self) {}
}

#[test]
fn corrupt_reads_flip_the_last_byte_of_read_bytes_only() {
    let b = start();
    let data = test_file(3000, 1);
    let mut env = OverHttp(&b);
    let mut client = UploadClient::new(&mut env, b.canister(), user(1));
    let capsule = ok(client.create_capsule("c")).capsule_id;
    let session = ok(client.begin(capsule, "f", 3000, 1000, "k")).session_id;
    for i in 0..3 {
        ok(client.put_chunk_of(session, &data, 1000, i));
    }
    let memory = ok(client.finish(session, &data)).memory_id;
    assert_eq!(ok(client.read(memory, 0, 3000)).into_vec(), data);

    set_faults(&b, r#"{"corrupt_reads": true}"#);
    let read = ok(client.read(memory, 1000, 1000)).into_vec();
    assert_eq!(read[..999], data[1000..1999]);
    assert_eq!(read[999], data[1999] ^ 0xFF);
    // An error reply is left alone: it still decodes to the canister's error.
    assert!(matches!(
        client.read(memory, 2999, 10),
        Ok(Err(UploadError::RangeOutOfBounds { .. }))
    ));
    assert_eq!(b.stats().corrupted_reads, 1);
}

/// One process for both halves of a dapp's local setup: what the client
/// uploads through the Candid routes is served, verified, by the local
/// HTTP gateway over the same host, through a share link only.
#[test]
fn share_links_are_served_verified_by_the_gateway_on_the_same_host() {
    let b = start();
    let gateway = local_gateway::Gateway::new(std::sync::Arc::new(b.http_canister()))
        .spawn("127.0.0.1:0".parse().unwrap())
        .expect("gateway starts");
    let data = test_file(5000, 7);
    let mut env = OverHttp(&b);
    let capsule =
        local_gateway::publish::create_capsule(&mut env, b.canister(), user(1), "c").unwrap();
    let memory = local_gateway::publish::upload(
        &mut env,
        b.canister(),
        user(1),
        capsule,
        "note.txt",
        "text/plain",
        &data,
    )
    .unwrap();

    // Nothing is public by default.
    let unshared = http(
        &gateway.url(),
        "GET",
        &format!("/s/{}", memory.0),
        None,
        b"",
    );
    assert_eq!(unshared.status, 404, "{}", unshared.headers);

    let link =
        local_gateway::publish::share(&mut env, b.canister(), user(1), memory, None).unwrap();
    let served = http(&gateway.url(), "GET", &link.path, None, b"");
    assert_eq!(served.status, 200, "{}", served.headers);
    assert!(served.headers.contains("content-type: text/plain"));
    assert_eq!(served.body, data);

    // A key one character off is refused like an unknown link.
    let mut wrong = link.path.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'a' { 'b' } else { 'a' });
    assert_eq!(http(&gateway.url(), "GET", &wrong, None, b"").status, 404);

    assert!(
        gateway.gateway().log().iter().any(|l| l.contains("query")),
        "the gateway asked the bridge's canister: {:?}",
        gateway.gateway().log()
    );
}
