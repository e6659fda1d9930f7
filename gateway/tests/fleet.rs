//! Share links of a scaled-out network, served by their bucket: the
//! bridge starts a fleet (`upload_bridge::Options::fleet`: the index on
//! the root subnet, buckets it created through the management canister
//! and the CMC on other subnets), an owner gets a capsule the index
//! placed on a bucket of another subnet than the root subnet, uploads a
//! file into it and shares it there (`memories_share`); the local gateway
//! (one gateway for the whole network, routing by canister id) serves the
//! link from that bucket, byte-exact, as `http://<bucket>.localhost:<port>/s/...`
//! and as `/s/...?canisterId=<bucket>`: 200 and a 206 range, each answer
//! verified against the network's root key (the bucket's certificate
//! carries the delegation to its subnet). DFINITY's `ic-http-gateway`
//! (ic-agent 0.46, verification on, the network's root key) serves it the
//! same.

use backend::upload::CapsuleId;
use bytes::Bytes;
use candid::{Decode, Encode, Principal};
use http_body_util::BodyExt;
use local_gateway::publish::{share, upload};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use upload_bridge::{Bridge, FleetWasm, Options};
use upload_harness::{user, IcEnv};
use upload_index::types::{CapsuleLocation, PlacementError};

/// The harness's `IcEnv` straight into the bridge's host.
struct Direct<'a>(&'a Bridge);

impl IcEnv for Direct<'_> {
    fn name(&self) -> &'static str {
        "the bridge's host"
    }
    fn controller(&self) -> Principal {
        self.0.controller()
    }
    fn install(&mut self, _wasm: &[u8]) -> Principal {
        unreachable!("the index installs the buckets")
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
        self.0.update(canister, caller, method, arg)
    }
    fn query_raw(
        &mut self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        self.0.query(canister, caller, method, arg)
    }
    fn advance_time(&mut self, by: Duration) {
        self.0.advance_time(by);
    }
    fn tick(&mut self) {
        self.0.advance_time(Duration::ZERO);
    }
}

/// A canister of the network, and those it routes to, checked against
/// another root key than the network's.
struct OtherRootKey(Arc<dyn local_gateway::HttpCanister>);

impl local_gateway::HttpCanister for OtherRootKey {
    fn canister_id(&self) -> Principal {
        self.0.canister_id()
    }
    fn http_request(
        &self,
        request: &ic_http_certification::HttpRequest<'static>,
    ) -> Result<local_gateway::CanisterResponse, String> {
        self.0.http_request(request)
    }
    fn root_key(&self) -> Vec<u8> {
        embedded_ic_host::certification::SubnetKey::from_seed(b"another network")
            .root_key_der()
            .to_vec()
    }
    fn time_ns(&self) -> u64 {
        self.0.time_ns()
    }
    fn route(&self, id: Principal) -> Option<Arc<dyn local_gateway::HttpCanister>> {
        self.0
            .route(id)
            .map(|c| Arc::new(OtherRootKey(c)) as Arc<dyn local_gateway::HttpCanister>)
    }
}

fn index_wasm() -> Vec<u8> {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    std::fs::read(embedded_ic_host::build_canister_wasm(
        &manifest,
        "upload-index",
    ))
    .expect("the index wasm")
}

/// `GET path` with a `Host` header: (status, headers, body).
fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect to the gateway");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(
            std::str::from_utf8(&b[..line_end])
                .unwrap()
                .split(';')
                .next()
                .unwrap(),
            16,
        )
        .unwrap();
        b = &b[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// `Content-Range: bytes first-last/total` (total checked).
fn content_range(value: Option<&str>, total: usize) -> (usize, usize) {
    let value = value.expect("a Content-Range");
    let (span, of) = value
        .strip_prefix("bytes ")
        .and_then(|v| v.split_once('/'))
        .expect("bytes first-last/total");
    assert_eq!(of.parse::<usize>().unwrap(), total, "{value}");
    let (first, last) = span.split_once('-').unwrap();
    (first.parse().unwrap(), last.parse().unwrap())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_share_link_on_a_bucket_of_another_subnet_is_served_by_its_bucket_verified() {
    let bridge = Bridge::start_with(
        "127.0.0.1:0",
        upload_harness::backend_wasm().to_vec(),
        Options {
            fleet: Some(FleetWasm {
                index: index_wasm(),
                bucket: upload_harness::backend_wasm().to_vec(),
            }),
            ..Options::default()
        },
    )
    .expect("the network and its fleet start");
    let fleet = bridge.fleet().expect("a fleet");
    let root_subnet = bridge.subnets()[0];

    // Owners get capsules from the index until one lands on a bucket of
    // another subnet.
    let mut placed = None;
    for n in 1..=20u8 {
        let owner = user(n);
        let reply = bridge
            .update(
                fleet.index,
                owner,
                "capsules_create",
                Encode!(&format!("capsule {n}")).unwrap(),
            )
            .expect("capsules_create");
        let location = Decode!(&reply, Result<CapsuleLocation, PlacementError>)
            .unwrap()
            .expect("placed");
        if bridge.subnet_of(location.upload_bucket) != Some(root_subnet) {
            placed = Some((owner, location));
            break;
        }
    }
    let (owner, location) = placed.expect("a capsule on a bucket of another subnet");
    let bucket = location.upload_bucket;
    assert!(fleet.buckets.contains(&bucket));
    assert_ne!(bucket, bridge.canister());

    // A file of a few serving chunks (2 MB each) uploaded and shared there.
    let data = upload_harness::client::test_file(5_000_000, 3);
    let memory = upload(
        &mut Direct(&bridge),
        bucket,
        owner,
        CapsuleId(location.capsule_id),
        "far.bin",
        "application/octet-stream",
        &data,
    )
    .expect("uploaded into the bucket");
    let link = share(&mut Direct(&bridge), bucket, owner, memory, None).expect("shared");

    let gateway = local_gateway::Gateway::new(Arc::new(bridge.http_canister()))
        .spawn("127.0.0.1:0".parse().unwrap())
        .expect("the gateway listens");
    let addr = gateway.addr();
    let by_host = format!("{}.localhost:{}", bucket.to_text(), addr.port());

    // By host name: the whole file (a long asset, streamed chunk by
    // chunk, each chunk verified) and a range.
    let (status, headers, body) = get(addr, &by_host, &link.path, &[]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body.len(), data.len());
    assert!(body == data, "byte-exact");
    assert_eq!(
        header(&headers, "content-length"),
        Some(data.len().to_string().as_str())
    );
    // The bucket answers a range with the serving chunk that holds its
    // start (Content-Range says which bytes).
    let (status, headers, body) = get(
        addr,
        &by_host,
        &link.path,
        &[("range", "bytes=2999990-3000009")],
    );
    assert_eq!(status, 206, "{}", String::from_utf8_lossy(&body));
    let (first, last) = content_range(header(&headers, "content-range"), data.len());
    assert!(first <= 2_999_990 && 3_000_009 <= last, "{first}-{last}");
    assert!(body == data[first..=last], "{} bytes", body.len());

    // By query parameter, on the gateway's own address.
    let by_param = format!("{}?canisterId={}", link.path, bucket.to_text());
    let (status, headers, body) = get(
        addr,
        &addr.to_string(),
        &by_param,
        &[("range", "bytes=0-99")],
    );
    assert_eq!(status, 206);
    let (first, last) = content_range(header(&headers, "content-range"), data.len());
    assert_eq!(first, 0);
    assert!(body == data[..=last], "{} bytes", body.len());
    let log = gateway.gateway().log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("query") && l.contains("verified")),
        "{log:?}"
    );
    assert!(!log.iter().any(|l| l.contains("REFUSED")), "{log:?}");

    // The link is the bucket's: the network's default canister does not
    // know it, and an unknown canister id is a 404 of the gateway.
    let (status, _, _) = get(addr, &addr.to_string(), &link.path, &[]);
    assert_eq!(status, 404);
    let nobody = Principal::from_slice(&[0, 0, 0, 0, 0, 0x0a, 0, 0, 1, 1]);
    let (status, _, _) = get(
        addr,
        &format!("{}.localhost:{}", nobody.to_text(), addr.port()),
        &link.path,
        &[],
    );
    assert_eq!(status, 404);

    // The check is real: the same network trusted under another root key
    // serves nothing of the bucket (502: its delegated certificate does
    // not verify).
    let other_key =
        local_gateway::Gateway::new(Arc::new(OtherRootKey(Arc::new(bridge.http_canister()))))
            .spawn("127.0.0.1:0".parse().unwrap())
            .expect("the gateway listens");
    let (status, _, _) = get(
        other_key.addr(),
        &format!("{}.localhost:{}", bucket.to_text(), other_key.addr().port()),
        &link.path,
        &[("range", "bytes=0-99")],
    );
    assert_eq!(status, 502);

    // DFINITY's ic-http-gateway over the network's IC interface, with
    // verification on and the network's root key.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let agent = {
        let _guard = runtime.enter();
        let agent = ic_agent::Agent::builder()
            .with_url(bridge.url())
            .with_verify_query_signatures(true)
            .build()
            .unwrap();
        agent.set_root_key(bridge.root_key());
        agent
    };
    let client = ic_http_gateway::HttpGatewayClient::builder()
        .with_agent(agent)
        .build()
        .unwrap();
    let fetch = |range: Option<&str>| {
        let mut request = http::Request::builder()
            .method("GET")
            .uri(link.path.as_str());
        if let Some(r) = range {
            request = request.header("range", r);
        }
        let request = request.body(Bytes::new()).unwrap();
        runtime.block_on(async {
            let response = client
                .request(ic_http_gateway::HttpGatewayRequestArgs {
                    canister_request: request,
                    canister_id: bucket,
                })
                .send()
                .await;
            let (parts, body) = response.canister_response.into_parts();
            let body = body.collect().await.expect("the body").to_bytes().to_vec();
            (
                parts.status.as_u16(),
                parts
                    .headers
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                body,
                response.metadata.response_verification_version,
            )
        })
    };
    let (status, _, body, verified) = fetch(None);
    assert_eq!((status, verified), (200, Some(2)));
    assert!(body == data, "byte-exact through ic-http-gateway");
    let (status, range, body, verified) = fetch(Some("bytes=4000000-4000099"));
    assert_eq!((status, verified), (206, Some(2)));
    let (first, last) = content_range(range.as_deref(), data.len());
    assert_eq!(first, 4_000_000);
    assert!(body == data[first..=last], "{} bytes", body.len());
}

/// 200 capsules of 50 principals placed by the index over the fleet's
/// buckets on three subnets, a file of its own size in each: every memory
/// comes back byte-exact through a share link, served by its bucket via
/// the gateway (by host name), each answer verified.
#[test]
fn every_memory_of_two_hundred_capsules_is_served_through_its_share_link() {
    let bridge = Bridge::start_with(
        "127.0.0.1:0",
        upload_harness::backend_wasm().to_vec(),
        Options {
            fleet: Some(FleetWasm {
                index: index_wasm(),
                bucket: upload_harness::backend_wasm().to_vec(),
            }),
            ..Options::default()
        },
    )
    .expect("the network and its fleet start");
    let fleet = bridge.fleet().expect("a fleet");
    let mut shared = Vec::new();
    for n in 0..200usize {
        let owner = user(1 + (n % 50) as u8);
        let reply = bridge
            .update(
                fleet.index,
                owner,
                "capsules_create",
                Encode!(&format!("capsule {n}")).unwrap(),
            )
            .expect("capsules_create");
        let location = Decode!(&reply, Result<CapsuleLocation, PlacementError>)
            .unwrap()
            .expect("placed");
        let data = upload_harness::client::test_file(1_000 + (n * 7_919) % 40_000, n as u64);
        let bucket = location.upload_bucket;
        let memory = upload(
            &mut Direct(&bridge),
            bucket,
            owner,
            CapsuleId(location.capsule_id),
            "photo.bin",
            "application/octet-stream",
            &data,
        )
        .expect("uploaded");
        let link = share(&mut Direct(&bridge), bucket, owner, memory, None).expect("shared");
        shared.push((bucket, link.path, data));
    }
    let mut buckets: Vec<Principal> = shared.iter().map(|s| s.0).collect();
    buckets.sort();
    buckets.dedup();
    let mut subnets: Vec<_> = buckets
        .iter()
        .filter_map(|b| bridge.subnet_of(*b))
        .collect();
    subnets.sort();
    subnets.dedup();
    assert!(
        buckets.len() >= 2 && subnets.len() >= 2,
        "{buckets:?} on {subnets:?}"
    );
    let gateway = local_gateway::Gateway::new(Arc::new(bridge.http_canister()))
        .spawn("127.0.0.1:0".parse().unwrap())
        .expect("the gateway listens");
    let addr = gateway.addr();
    for (bucket, path, data) in &shared {
        let host = format!("{}.localhost:{}", bucket.to_text(), addr.port());
        let (status, _, body) = get(addr, &host, path, &[]);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert!(body == *data, "{path} on {bucket} differs");
    }
    let log = gateway.gateway().log();
    assert!(!log.iter().any(|l| l.contains("REFUSED")), "{log:?}");
}
