//! Share links served through DFINITY's own gateway library,
//! `ic-http-gateway` (0.4.3, over `ic-agent` 0.46), against the bridge's
//! local IC network (`upload_bridge::Bridge`: the IC's HTTP interface in
//! front of the upload canister's release `.wasm`): the same path a
//! boundary node takes for `https://<canister>.icp0.io/s/...`, with the
//! crate's response verification on and the agent's root key set to the
//! network's.
//!
//! Files are uploaded and shared through the bridge's raw Candid routes
//! (`/api/update/<canister>/<method>`, `x-caller`), which reach the same
//! host; every share-link request then goes through
//! `HttpGatewayClient::request(..).send()`, which makes the anonymous
//! query `http_request` with `ic-agent` (`/api/v3/canister/<id>/query`,
//! node signatures checked against the subnet's keys from `read_state`)
//! and verifies the answer (`verify_request_response_pair`, certification
//! v2). Each case asserts `response_verification_version == Some(2)`: the
//! crate verified it. A long file (a first `206` to a request without
//! `Range`) is streamed by the crate itself, one verified
//! `Range: bytes=N-` query per further chunk (counted in the bridge's
//! statistics).
//!
//! That the verification is real, not vacuous: under another root key the
//! crate answers 500, and a proxy between the agent and the network that
//! flips one byte of a chunk's reply gets the first chunk refused (500)
//! and a follow-up refused (the stream ends with an error after the
//! verified bytes).
//!
//! The ignored test at the end puts the crate behind a hyper server so
//! headless Chromium plays and seeks a video through it (like
//! `tests/browser.rs` for the hand-written gateway); it needs `chromium`,
//! `ffmpeg` and `npm install` in `tests/browser`.

#[path = "common/media.rs"]
mod media;

use backend::sharing::links::ShareLink;
use backend::upload::CapsuleId;
use bytes::Bytes;
use candid::Principal;
use http_body_util::BodyExt;
use ic_http_gateway::{HttpGatewayClient, HttpGatewayRequestArgs};
use local_gateway::publish::{create_capsule, share, unshare, upload};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use upload_bridge::Bridge;
use upload_harness::{backend_wasm, user, IcEnv};

/// The canister's serving chunk.
const CHUNK: usize = 2_000_000;

/// One HTTP/1.1 POST on its own connection: (status, body).
fn post(url: &str, path: &str, caller: Option<Principal>, body: &[u8]) -> (u16, Vec<u8>) {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect to the bridge");
    let caller = caller
        .map(|c| format!("x-caller: {}\r\n", c.to_text()))
        .unwrap_or_default();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\n{caller}content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the end of the head");
    let status = String::from_utf8_lossy(&raw[9..12]).parse().unwrap();
    (status, raw[split + 4..].to_vec())
}

/// The harness's `IcEnv` over the bridge's raw Candid routes: uploads
/// reach the very host the network serves.
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
        match post(&self.0.url(), &path, Some(caller), &arg) {
            (200, body) => Ok(body),
            (s, body) => Err(format!("{s}: {}", String::from_utf8_lossy(&body))),
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
        unreachable!("the bridge installs its own canister")
    }
    fn upgrade(&mut self, _canister: Principal, _wasm: &[u8]) -> Result<(), String> {
        unreachable!("not upgraded here")
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
        let path = format!("/admin/advance_time/{}", by.as_secs());
        assert_eq!(post(&self.0.url(), &path, None, b"").0, 200);
    }
    /// The bridge runs due timers after every update; advancing by zero
    /// seconds runs them too.
    fn tick(&mut self) {
        self.advance_time(Duration::ZERO);
    }
}

/// What came back from `ic-http-gateway`.
struct Got {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
    /// `metadata.response_verification_version`: `Some(2)` when the crate
    /// verified the response with certification v2.
    verified: Option<u16>,
    /// `metadata.internal_error`, as text.
    error: Option<String>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts that the crate verified this response (v2) and had no error.
    fn assert_verified(&self, what: &str) {
        assert_eq!(
            self.verified,
            Some(2),
            "{what}: not verified by ic-http-gateway (status {}, error {:?}): {}",
            self.status,
            self.error,
            self.text()
        );
        assert!(self.error.is_none(), "{what}: {:?}", self.error);
    }
}

/// The network, the crate's client in front of it, and an owner's capsule.
struct World {
    bridge: Bridge,
    client: HttpGatewayClient,
    runtime: tokio::runtime::Runtime,
    owner: Principal,
    capsule: CapsuleId,
}

/// An `ic-agent` 0.46 agent for the network, anonymous (the gateway's
/// queries are anonymous on the IC too), trusting `root_key`.
fn agent(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    root_key: Vec<u8>,
    verify_queries: bool,
) -> ic_agent::Agent {
    let _guard = runtime.enter();
    let agent = ic_agent::Agent::builder()
        .with_url(url)
        .with_verify_query_signatures(verify_queries)
        .build()
        .expect("an agent for the network");
    agent.set_root_key(root_key);
    agent
}

fn world() -> World {
    let bridge = Bridge::start("127.0.0.1:0", backend_wasm().to_vec()).expect("the bridge starts");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = HttpGatewayClient::builder()
        .with_agent(agent(&runtime, &bridge.url(), bridge.root_key(), true))
        .build()
        .expect("the gateway client");
    let owner = user(1);
    let capsule =
        create_capsule(&mut OverHttp(&bridge), bridge.canister(), owner, "photos").unwrap();
    World {
        bridge,
        client,
        runtime,
        owner,
        capsule,
    }
}

impl World {
    fn env(&self) -> OverHttp<'_> {
        OverHttp(&self.bridge)
    }

    fn publish(&self, name: &str, mime: &str, data: &[u8]) -> ShareLink {
        let canister = self.bridge.canister();
        let memory = upload(
            &mut self.env(),
            canister,
            self.owner,
            self.capsule,
            name,
            mime,
            data,
        )
        .unwrap();
        share(&mut self.env(), canister, self.owner, memory, None).unwrap()
    }

    /// `method path` with `headers` through `client` (the crate), the body
    /// collected (a streamed one frame by frame).
    fn request_with(
        &self,
        client: &HttpGatewayClient,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Got {
        let mut request = http::Request::builder().method(method).uri(path);
        for (n, v) in headers {
            request = request.header(*n, *v);
        }
        let request = request.body(Bytes::new()).unwrap();
        self.runtime.block_on(async {
            let response = client
                .request(HttpGatewayRequestArgs {
                    canister_request: request,
                    canister_id: self.bridge.canister(),
                })
                .send()
                .await;
            let (parts, body) = response.canister_response.into_parts();
            let body = body
                .collect()
                .await
                .unwrap_or_else(|e| panic!("{method} {path}: the body stream failed: {e:?}"))
                .to_bytes()
                .to_vec();
            Got {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
                verified: response.metadata.response_verification_version,
                error: response.metadata.internal_error.map(|e| format!("{e:?}")),
            }
        })
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Got {
        self.request_with(&self.client, method, path, headers)
    }

    fn get(&self, path: &str) -> Got {
        self.request("GET", path, &[])
    }

    /// The headers the canister itself answers a plain `GET path` with
    /// (the anonymous query `http_request` through the bridge's raw route,
    /// nothing verified), to compare with what the crate passes on.
    fn canister_headers(&self, path: &str) -> Vec<(String, String)> {
        let request = ic_http_certification::HttpRequest::get(path)
            .with_certificate_version(2)
            .build();
        let route = format!(
            "/api/query/{}/http_request",
            self.bridge.canister().to_text()
        );
        let (status, reply) = post(
            &self.bridge.url(),
            &route,
            None,
            &candid::encode_one(&request).unwrap(),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
        local_gateway::canister::decode_http_response(&reply)
            .unwrap()
            .headers
    }

    /// `http_request` queries the network executed so far.
    fn http_queries(&self) -> u64 {
        self.bridge
            .stats()
            .calls
            .get("http_request")
            .copied()
            .unwrap_or(0)
    }
}

fn test_file(len: usize, seed: u64) -> Vec<u8> {
    upload_harness::client::test_file(len, seed)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn content_range(g: &Got) -> (usize, usize, usize) {
    let v = g.header("content-range").expect("Content-Range");
    let v = v.strip_prefix("bytes ").unwrap();
    let (range, total) = v.split_once('/').unwrap();
    let (a, b) = range.split_once('-').unwrap();
    (
        a.parse().unwrap(),
        b.parse().unwrap(),
        total.parse().unwrap(),
    )
}

/// The certificate headers, which the crate passes on to its caller (the
/// hand-written gateway keeps them to itself).
fn assert_certificate_headers_passed_on(g: &Got) {
    let certificate = g.header("ic-certificate").unwrap_or("");
    assert!(
        certificate.contains("version=2") && certificate.contains("expr_path="),
        "IC-Certificate: {certificate:?}"
    );
    assert!(g
        .header("ic-certificateexpression")
        .is_some_and(|e| e.contains("response_header_exclusions")));
}

#[test]
fn a_small_file_is_a_verified_200_with_its_certified_headers() {
    let w = world();
    let data = test_file(10_000, 1);
    let link = w.publish("cat.png", "image/png", &data);
    let before = w.http_queries();
    let g = w.get(&link.path);
    g.assert_verified("GET");
    assert_eq!(g.status, 200, "{}", g.text());
    assert_eq!(g.body, data);
    assert_eq!(w.http_queries() - before, 1, "one query");
    assert_eq!(g.header("content-type"), Some("image/png"));
    assert_eq!(g.header("content-length"), Some("10000"));
    assert_eq!(g.header("accept-ranges"), Some("bytes"));
    assert_eq!(g.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        g.header("cache-control"),
        Some("private, max-age=3600, immutable")
    );
    assert!(g
        .header("content-disposition")
        .is_some_and(|d| d.starts_with("inline;") && d.contains("filename=\"cat.png\"")));
    // Every header the canister certified (all of them but IC-Certificate:
    // `response_header_exclusions([])`) reaches the caller unchanged.
    let direct = w.canister_headers(&link.path);
    assert!(direct.len() >= 8, "{direct:?}");
    for (name, value) in &direct {
        if name.eq_ignore_ascii_case("ic-certificate") {
            continue; // signed anew for each query (the time in it)
        }
        let passed: Vec<&str> = g
            .headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(passed, [value.as_str()], "{name}");
    }
    let etag = format!("\"{}\"", hex(&Sha256::digest(&data)));
    assert_eq!(g.header("etag"), Some(etag.as_str()));
    assert_certificate_headers_passed_on(&g);

    // HEAD: the whole file's headers, no body.
    let h = w.request("HEAD", &link.path, &[]);
    h.assert_verified("HEAD");
    assert_eq!(h.status, 200, "{}", h.text());
    assert_eq!(h.header("content-length"), Some("10000"));
    assert!(h.body.is_empty());
}

#[test]
fn ranges_at_the_first_a_middle_and_the_last_chunk_are_the_canisters_verified_206s() {
    let w = world();
    let len = 2 * CHUNK + 123_457;
    let data = test_file(len, 2);
    let link = w.publish("clip.webm", "video/webm", &data);
    // (Range asked, the serving chunk whose start must be served)
    let last_byte = format!("bytes={}-", len - 1);
    let cases = [
        ("bytes=0-99", 0),
        ("bytes=0-", 0),
        ("bytes=2500000-2500099", CHUNK),
        ("bytes=2000000-", CHUNK),
        ("bytes=4100000-", 2 * CHUNK),
        ("bytes=-1000", 2 * CHUNK),
        (last_byte.as_str(), 2 * CHUNK),
    ];
    for (range, chunk_start) in cases {
        let before = w.http_queries();
        let g = w.request("GET", &link.path, &[("Range", range)]);
        g.assert_verified(range);
        assert_eq!(g.status, 206, "{range}: {}", g.text());
        // A client's own Range: the crate passes the canister's 206 on as
        // it is, one query, no streaming.
        assert_eq!(w.http_queries() - before, 1, "{range}");
        let (first, last, total) = content_range(&g);
        assert_eq!(total, len, "{range}");
        assert_eq!(first, chunk_start, "{range}");
        assert_eq!(last, (chunk_start + CHUNK).min(len) - 1, "{range}");
        assert_eq!(g.body, &data[first..=last], "{range}");
        assert_eq!(
            g.header("content-length"),
            Some((last - first + 1).to_string().as_str()),
            "{range}"
        );
        assert_eq!(g.header("content-type"), Some("video/webm"));
    }
}

#[test]
fn an_unsatisfiable_range_is_a_verified_416() {
    let w = world();
    let data = test_file(3 * CHUNK + 5, 3);
    let link = w.publish("film.webm", "video/webm", &data);
    for range in [format!("bytes={}-", data.len()), "bytes=-0".to_string()] {
        let g = w.request("GET", &link.path, &[("Range", &range)]);
        g.assert_verified(&range);
        assert_eq!(g.status, 416, "{range}: {}", g.text());
        assert_eq!(
            g.header("content-range"),
            Some(format!("bytes */{}", data.len()).as_str()),
            "{range}"
        );
        assert!(g.body.len() < 1000, "{range}: no file bytes");
    }
}

#[test]
fn if_none_match_with_the_etag_is_a_verified_304() {
    let w = world();
    // A long file: without If-None-Match its first answer is a 206 that
    // the crate would stream; with it, the canister answers 304 at once.
    let data = test_file(2 * CHUNK + 10, 4);
    let link = w.publish("film.webm", "video/webm", &data);
    let etag = format!("\"{}\"", hex(&Sha256::digest(&data)));
    for value in [etag.as_str(), "*"] {
        let before = w.http_queries();
        let g = w.request("GET", &link.path, &[("If-None-Match", value)]);
        g.assert_verified(value);
        assert_eq!(g.status, 304, "{value}: {}", g.text());
        assert!(g.body.is_empty(), "{value}");
        assert_eq!(g.header("etag"), Some(etag.as_str()), "{value}");
        assert_eq!(w.http_queries() - before, 1, "{value}");
    }
    // Another ETag: the whole file.
    let g = w.request("GET", &link.path, &[("If-None-Match", "\"other\"")]);
    assert_eq!(g.status, 200, "{}", g.text());
    assert_eq!(g.body, data);
}

#[test]
fn unknown_wrong_key_expired_and_revoked_links_are_a_verified_404() {
    let w = world();
    let data = test_file(1000, 5);
    let canister = w.bridge.canister();
    let memory = upload(
        &mut w.env(),
        canister,
        w.owner,
        w.capsule,
        "note.txt",
        "text/plain",
        &data,
    )
    .unwrap();
    let revoked = share(&mut w.env(), canister, w.owner, memory, None).unwrap();
    let kept = share(&mut w.env(), canister, w.owner, memory, None).unwrap();
    // The network's clock is the wall clock (the crate checks
    // certificates' times against it): an expiry three seconds ahead,
    // waited for in real time.
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let expiring = share(
        &mut w.env(),
        canister,
        w.owner,
        memory,
        Some(now_ns + 3_000_000_000),
    )
    .unwrap();
    for link in [&revoked, &kept, &expiring] {
        let g = w.get(&link.path);
        g.assert_verified(&link.path);
        assert_eq!(g.body, data);
    }
    unshare(&mut w.env(), canister, w.owner, revoked.link_id).unwrap();
    std::thread::sleep(Duration::from_millis(3500));

    let mut wrong_key = kept.path.clone();
    let last = wrong_key.pop().unwrap();
    wrong_key.push(if last == '0' { '1' } else { '0' });
    for path in [
        revoked.path.as_str(),
        expiring.path.as_str(),
        wrong_key.as_str(),
        "/s/999999/0/00000000000000000000000000000000",
        "/s/999999/abcdef",
        "/",
        "/index.html",
    ] {
        let g = w.get(path);
        g.assert_verified(path);
        assert_eq!(g.status, 404, "{path}: {}", g.text());
        assert!(!g.body.windows(10).any(|x| x == &data[..10]), "{path}");
    }
    let g = w.get(&kept.path);
    g.assert_verified("the kept link");
    assert_eq!(g.body, data, "the other link still works");
}

#[test]
fn a_64_mib_file_streams_through_ic_http_gateway_byte_exact() {
    let w = world();
    let len = 64 << 20;
    let data = test_file(len, 6);
    let link = w.publish("big.bin", "application/octet-stream", &data);
    let before = w.http_queries();
    let started = Instant::now();
    let g = w.get(&link.path);
    let took = started.elapsed();
    // The first 206 (bytes 0-1999999) is what the crate verified and
    // reports; each follow-up is verified inside the stream, and one that
    // failed would have ended the body with an error (collecting it
    // panics then).
    g.assert_verified("GET");
    assert_eq!(g.status, 200, "{}", g.text());
    assert_eq!(g.header("content-length"), Some(len.to_string().as_str()));
    assert_eq!(g.header("content-range"), None);
    assert_eq!(g.body.len(), len);
    assert_eq!(Sha256::digest(&g.body), Sha256::digest(&data));
    let chunks = len.div_ceil(CHUNK) as u64;
    assert_eq!(
        w.http_queries() - before,
        chunks,
        "one query for the first chunk and one `Range: bytes=N-` query per further chunk"
    );
    eprintln!(
        "64 MiB through ic-http-gateway: {chunks} verified http_request queries in {:.2} s",
        took.as_secs_f64()
    );
}

#[test]
fn a_follow_up_that_fails_ends_the_stream_with_an_error_after_correct_bytes() {
    let w = world();
    let len = 4 * CHUNK + 1;
    let data = test_file(len, 7);
    let link = w.publish("big.bin", "application/octet-stream", &data);
    // The network drops every third call or query before executing it
    // (HTTP 503, which ic-agent 0.46 does not retry): the first query and
    // one follow-up answer, the next follow-up fails.
    let (status, body) = post(
        &w.bridge.url(),
        "/admin/faults",
        None,
        br#"{"drop_every": 3, "drop_point": "before"}"#,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let f = get_frames(&w, &w.client, &link.path);
    assert_eq!(f.verified, Some(2));
    // The head (200, the whole length) went out before the failure.
    assert_eq!(f.status, 200);
    assert_eq!(f.content_length, Some(len.to_string()));
    let error = f.error.expect("the stream ends with an error");
    assert!(error.contains("503"), "{error}");
    assert_eq!(f.body.len(), 2 * CHUNK, "two chunks arrived");
    assert_eq!(f.body, &data[..2 * CHUNK]);
}

#[test]
fn responses_are_refused_under_another_root_key() {
    let w = world();
    let data = test_file(5000, 8);
    let link = w.publish("a.png", "image/png", &data);
    let mut other = embedded_ic_host::Host::new();
    other.set_subnet_seed(b"another subnet");
    let other_key = other.root_key();
    assert_ne!(other_key, w.bridge.root_key());

    // The control: the network's key, query signatures unchecked.
    let (url, key) = (w.bridge.url(), w.bridge.root_key());
    let trusting = HttpGatewayClient::builder()
        .with_agent(agent(&w.runtime, &url, key, false))
        .build()
        .unwrap();
    let g = w.request_with(&trusting, "GET", &link.path, &[]);
    g.assert_verified("the network's key");
    assert_eq!(g.body, data);

    // Another key, query signatures unchecked: only the crate's response
    // verification stands between the canister's bytes and the caller.
    let fooled = HttpGatewayClient::builder()
        .with_agent(agent(&w.runtime, &url, other_key.clone(), false))
        .build()
        .unwrap();
    let g = w.request_with(&fooled, "GET", &link.path, &[]);
    assert_eq!(g.status, 500, "{}", g.text());
    assert_eq!(g.verified, None);
    assert!(
        g.text().starts_with("Response verification failed"),
        "{}",
        g.text()
    );
    assert!(!g.body.windows(16).any(|x| x == &data[..16]));
    eprintln!("another root key, query signatures unchecked: {}", g.text());

    // Another key, query signatures checked (the default): ic-agent
    // itself refuses the subnet's certificate before the crate verifies.
    let checked = HttpGatewayClient::builder()
        .with_agent(agent(&w.runtime, &url, other_key, true))
        .build()
        .unwrap();
    let g = w.request_with(&checked, "GET", &link.path, &[]);
    assert_eq!(g.status, 500, "{}", g.text());
    assert_eq!(g.verified, None);
    assert!(!g.body.windows(16).any(|x| x == &data[..16]));
    eprintln!("another root key, query signatures checked: {}", g.text());
}

/// A proxy between the agent and the network that alters one answer: the
/// `nth` (1-based) reply to `/query` longer than 1 MB (a serving chunk)
/// gets one byte flipped in its middle, inside the chunk's bytes (the
/// CBOR and the Candid stay well formed). Its replica signature no longer
/// matches, so the agent must not check query signatures for the crate's
/// own verification to be what refuses it.
struct Tamperer {
    url: String,
}

impl Tamperer {
    fn start(upstream: String, nth: usize) -> Tamperer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (upstream, seen) = (upstream.clone(), seen.clone());
                std::thread::spawn(move || {
                    let _ = Self::relay(stream, &upstream, &seen, nth);
                });
            }
        });
        Tamperer { url }
    }

    /// One request per connection, relayed with `connection: close`.
    fn relay(
        mut client: TcpStream,
        upstream: &str,
        seen: &std::sync::atomic::AtomicUsize,
        nth: usize,
    ) -> std::io::Result<()> {
        let (head, body) = read_message(&mut client)?;
        let path = head.split(' ').nth(1).unwrap_or("").to_string();
        let mut server = TcpStream::connect(upstream.trim_start_matches("http://"))?;
        server.write_all(&with_connection_close(&head))?;
        server.write_all(&body)?;
        let mut raw = Vec::new();
        server.read_to_end(&mut raw)?;
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0);
        let (head, mut body) = (
            String::from_utf8_lossy(&raw[..split]).into_owned(),
            raw[split + 4..].to_vec(),
        );
        if path.ends_with("/query")
            && body.len() > 1_000_000
            && seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == nth
        {
            let middle = body.len() / 2;
            body[middle] ^= 0x01;
        }
        client.write_all(&with_connection_close(&head))?;
        client.write_all(&body)
    }
}

/// Reads one HTTP/1.1 message with a `Content-Length` body (or none).
fn read_message(s: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let end = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = raw[end + 4..].to_vec();
    while body.len() < length {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&buf[..n]);
    }
    Ok((head, body))
}

/// A message head with its `Connection` header replaced by `close`.
fn with_connection_close(head: &str) -> Vec<u8> {
    let mut out: Vec<&str> = head
        .split("\r\n")
        .filter(|l| {
            !l.split_once(':')
                .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("connection"))
        })
        .collect();
    out.push("connection: close");
    format!("{}\r\n\r\n", out.join("\r\n")).into_bytes()
}

/// A response read frame by frame, up to the end or the first error.
struct Frames {
    status: u16,
    content_length: Option<String>,
    verified: Option<u16>,
    body: Vec<u8>,
    error: Option<String>,
}

/// GETs `path` through `client`, reading frames until the end or the
/// first error.
fn get_frames(w: &World, client: &HttpGatewayClient, path: &str) -> Frames {
    let request = http::Request::builder()
        .uri(path)
        .body(Bytes::new())
        .unwrap();
    w.runtime.block_on(async {
        let response = client
            .request(HttpGatewayRequestArgs {
                canister_request: request,
                canister_id: w.bridge.canister(),
            })
            .send()
            .await;
        let verified = response.metadata.response_verification_version;
        let (parts, mut body) = response.canister_response.into_parts();
        let mut received = Vec::new();
        let mut error = None;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => received.extend_from_slice(f.data_ref().unwrap()),
                Err(e) => {
                    error = Some(format!("{e:?}"));
                    break;
                }
            }
        }
        Frames {
            status: parts.status.as_u16(),
            content_length: parts
                .headers
                .get("content-length")
                .map(|v| v.to_str().unwrap().to_string()),
            verified,
            body: received,
            error,
        }
    })
}

#[test]
fn the_crate_refuses_an_altered_first_chunk_and_an_altered_follow_up() {
    let w = world();
    let len = 3 * CHUNK + 7;
    let data = test_file(len, 9);
    let link = w.publish("big.bin", "application/octet-stream", &data);
    let root_key = w.bridge.root_key();

    // The control: through the proxy, nothing altered.
    let honest = Tamperer::start(w.bridge.url(), usize::MAX);
    let client = HttpGatewayClient::builder()
        .with_agent(agent(&w.runtime, &honest.url, root_key.clone(), false))
        .build()
        .unwrap();
    let f = get_frames(&w, &client, &link.path);
    assert_eq!((f.status, f.verified, f.error), (200, Some(2), None));
    assert_eq!(f.content_length, Some(len.to_string()));
    assert_eq!(Sha256::digest(&f.body), Sha256::digest(&data));

    // The first chunk altered: refused before anything is passed on.
    let first = Tamperer::start(w.bridge.url(), 1);
    let client = HttpGatewayClient::builder()
        .with_agent(agent(&w.runtime, &first.url, root_key.clone(), false))
        .build()
        .unwrap();
    let f = get_frames(&w, &client, &link.path);
    let text = String::from_utf8_lossy(&f.body);
    assert_eq!(f.status, 500, "{text}");
    assert_eq!((f.verified, f.error.as_deref()), (None, None));
    assert!(!f.body.windows(16).any(|x| x == &data[..16]));
    assert!(text.starts_with("Response verification failed"), "{text}");

    // The second chunk (the first follow-up, `Range: bytes=2000000-`)
    // altered: the crate verifies follow-ups too, so the stream ends with
    // an error after the first, correct, chunk.
    let second = Tamperer::start(w.bridge.url(), 2);
    let client = HttpGatewayClient::builder()
        .with_agent(agent(&w.runtime, &second.url, root_key, false))
        .build()
        .unwrap();
    let f = get_frames(&w, &client, &link.path);
    assert_eq!((f.status, f.verified), (200, Some(2)));
    let error = f
        .error
        .expect("the altered follow-up ends the stream with an error");
    assert!(
        error.contains("CertificateVerificationFailed for a chunk starting at 2000000"),
        "{error}"
    );
    assert_eq!(f.body, &data[..CHUNK], "only the first, verified chunk");
    eprintln!("an altered follow-up: {error}");
}

/// Not the canister's answer: the crate turns the network's reject of a
/// query to a canister that does not exist ("destination invalid") into
/// a 404 of its own, which nothing certifies (the hand-written gateway
/// serves one canister and answers any reject 502).
#[test]
fn a_missing_canister_is_the_crates_own_unverified_404() {
    let w = world();
    // In the subnet's canister range, never allocated.
    let missing = Principal::from_slice(&[0, 0, 0, 0, 0, 0x0f, 0, 0, 1, 1]);
    let request = http::Request::builder()
        .uri("/s/1/2/3")
        .body(Bytes::new())
        .unwrap();
    let (status, verified, error, body) = w.runtime.block_on(async {
        let r = w
            .client
            .request(HttpGatewayRequestArgs {
                canister_request: request,
                canister_id: missing,
            })
            .send()
            .await;
        let (parts, body) = r.canister_response.into_parts();
        let body = body.collect().await.unwrap().to_bytes().to_vec();
        (
            parts.status.as_u16(),
            r.metadata.response_verification_version,
            r.metadata.internal_error.map(|e| format!("{e:?}")),
            String::from_utf8_lossy(&body).into_owned(),
        )
    });
    assert_eq!(status, 404, "{body}");
    assert_eq!(verified, None, "nothing verified");
    assert!(body.contains("not found"), "{body}");
    assert!(error.is_some_and(|e| e.contains("DestinationInvalid")));
}

/// `ic-http-gateway` behind a hyper server: what a boundary node is, as
/// small as it gets. Every request but the dapp's page (served here, as
/// an asset canister would serve it) goes to the crate as it came; its
/// response goes back as the crate gives it (certified headers,
/// `IC-Certificate` among them). One log line per request: `GET <path>
/// range=<Range or -> -> <status> v<verification version or ->`.
struct CrateServer {
    url: String,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

type ServerBody =
    http_body_util::combinators::UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

impl CrateServer {
    fn start(w: &World, page: &'static str, html: &'static str) -> CrateServer {
        use hyper::service::service_fn;
        let listener = w
            .runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (client, canister, server_log) = (w.client.clone(), w.bridge.canister(), log.clone());
        w.runtime.spawn(async move {
            let accept = async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let (client, log) = (client.clone(), server_log.clone());
                    tokio::spawn(async move {
                        let service = service_fn(move |req| {
                            let (client, log) = (client.clone(), log.clone());
                            async move {
                                Ok::<_, std::convert::Infallible>(
                                    Self::handle(client, canister, log, page, html, req).await,
                                )
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
            };
            tokio::select! {
                _ = accept => {}
                _ = stopped => {}
            }
        });
        CrateServer {
            url,
            log,
            _stop: stop,
        }
    }

    async fn handle(
        client: HttpGatewayClient,
        canister: Principal,
        log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
        page: &'static str,
        html: &'static str,
        req: http::Request<hyper::body::Incoming>,
    ) -> http::Response<ServerBody> {
        let (parts, body) = req.into_parts();
        if parts.uri.path() == page {
            let mut response = http::Response::new(
                http_body_util::Full::new(Bytes::from_static(html.as_bytes()))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            );
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/html; charset=utf-8"),
            );
            return response;
        }
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let range = parts
            .headers
            .get(http::header::RANGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string();
        let line = format!("{} {} range={range}", parts.method, parts.uri);
        let response = client
            .request(HttpGatewayRequestArgs {
                canister_request: http::Request::from_parts(parts, body),
                canister_id: canister,
            })
            .send()
            .await;
        let verified = response
            .metadata
            .response_verification_version
            .map_or("-".to_string(), |v| v.to_string());
        let (parts, body) = response.canister_response.into_parts();
        log.lock()
            .unwrap()
            .push(format!("{line} -> {} v{verified}", parts.status.as_u16()));
        http::Response::from_parts(parts, body.boxed_unsync())
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

#[test]
#[ignore = "needs chromium, ffmpeg and npm install in gateway/tests/browser (.ci/run)"]
fn chromium_plays_and_seeks_a_video_served_through_ic_http_gateway() {
    use serde_json::Value;
    let dir = std::env::temp_dir().join(format!("ic-http-gateway-browser-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let video = media::webm(&dir);
    assert!(
        video.len() > 2_500_000,
        "the video spans several chunks ({} bytes)",
        video.len()
    );
    let w = world();
    let img = w
        .publish("quadrants.png", "image/png", &media::quadrant_png())
        .path;
    let clip = w.publish("clip.webm", "video/webm", &video).path;
    let html = w
        .publish(
            "page.html",
            "text/html",
            b"<html><head><title>pwned</title></head><body><script>window.__pwned = true</script>rendered</body></html>",
        )
        .path;
    let svg = w
        .publish(
            "drawing.svg",
            "image/svg+xml",
            br#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><title>pwned</title><script>window.__pwned = true</script><rect width="10" height="10"/></svg>"#,
        )
        .path;
    let server = CrateServer::start(&w, media::PAGE, media::PAGE_HTML);
    let out = std::process::Command::new("node")
        .current_dir(media::browser_dir())
        .arg("check.mjs")
        .args([server.url.as_str(), media::PAGE, &img, &clip, &html, &svg])
        .output()
        .expect("node must be installed");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = server.log();
    assert!(
        out.status.success(),
        "check.mjs failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("check.mjs printed no report ({e}):\n{stdout}"));
    let context = format!("report: {report:#}\nserver log:\n{}", log.join("\n"));
    assert!(report.get("error").is_none(), "{context}");

    // The photo, pixel by pixel in the screenshot.
    let px = &report["pixels"];
    for (corner, colour) in ["topLeft", "topRight", "bottomLeft", "bottomRight"]
        .into_iter()
        .zip(media::COLOURS)
    {
        assert!(media::close(&px[corner], colour), "{corner}: {context}");
    }

    // The video played, then sought into its middle.
    let v = &report["video"];
    assert!(v.get("failed").is_none(), "{context}");
    let duration = v["duration"].as_f64().unwrap();
    assert!((7.5..8.5).contains(&duration), "{context}");
    assert!(v["played"].as_f64().unwrap() > 0.5, "{context}");
    assert!(
        (v["seekedTo"].as_f64().unwrap() - duration / 2.0).abs() < 0.1,
        "{context}"
    );
    assert!(v["readyState"].as_i64().unwrap() >= 2, "{context}");
    // Chromium asked for ranges and got verified 206s, one past the first
    // chunk among them.
    let clip_lines: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with(&format!("GET {clip} range=bytes=")))
        .collect();
    assert!(!clip_lines.is_empty(), "{context}");
    assert!(
        clip_lines.iter().all(|l| l.ends_with("-> 206 v2")),
        "every range answered a verified 206: {context}"
    );
    assert!(
        clip_lines.iter().any(|l| !l.contains("range=bytes=0-")),
        "no range past the first chunk: {context}"
    );

    // HTML and SVG: downloads, their scripts never ran.
    for (kind, name) in [("html", "page.html"), ("svg", "drawing.svg")] {
        let d = &report["downloads"][kind];
        assert_eq!(d["downloaded"], Value::Bool(true), "{kind}: {context}");
        assert_eq!(d["filename"].as_str(), Some(name), "{kind}: {context}");
        assert_eq!(d["scriptRan"], Value::Bool(false), "{kind}: {context}");
        assert_ne!(d["title"].as_str(), Some("pwned"), "{kind}: {context}");
    }
    eprintln!("{context}");
}
