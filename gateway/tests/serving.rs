//! The upload canister's release `.wasm` behind the gateway: every kind of
//! response `http_request` gives passes `ic-response-verification` (the
//! gateway answers 502 for anything that does not), a long file streams
//! byte-exact, and altered responses are refused.

mod common;

use backend::sharing::links::ShareLink;
use backend::upload::{CapsuleId, MemoryItemId};
use candid::Principal;
use common::{get, request, Reply};
use ic_http_certification::HttpRequest;
use local_gateway::publish::{create_capsule, share, unshare, upload};
use local_gateway::{
    CanisterResponse, Gateway, HostCanister, HttpCanister, RunningGateway, SharedHost,
};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use upload_harness::{backend_wasm, user, IcEnv};

const CHUNK: usize = 2_000_000;

struct World {
    env: SharedHost,
    canister: Principal,
    owner: Principal,
    capsule: CapsuleId,
    gw: RunningGateway,
}

fn world() -> World {
    world_with(|c| Arc::new(c))
}

fn world_with(wrap: impl FnOnce(HostCanister) -> Arc<dyn HttpCanister>) -> World {
    let mut env = SharedHost::shared(user(200));
    let canister = env.install(backend_wasm());
    let owner = user(1);
    let capsule = create_capsule(&mut env, canister, owner, "photos").unwrap();
    let gw = Gateway::new(wrap(HostCanister::new(env.host(), canister)))
        .spawn(([127, 0, 0, 1], 0).into())
        .unwrap();
    World {
        env,
        canister,
        owner,
        capsule,
        gw,
    }
}

impl World {
    fn publish(&mut self, name: &str, mime: &str, data: &[u8]) -> (MemoryItemId, ShareLink) {
        let memory = upload(
            &mut self.env,
            self.canister,
            self.owner,
            self.capsule,
            name,
            mime,
            data,
        )
        .unwrap();
        let link = share(&mut self.env, self.canister, self.owner, memory, None).unwrap();
        (memory, link)
    }

    fn get(&self, path: &str) -> Reply {
        get(self.gw.addr(), path)
    }

    fn range(&self, path: &str, range: &str) -> Reply {
        request(self.gw.addr(), "GET", path, &[("Range", range)])
    }

    fn log(&self) -> Vec<String> {
        self.gw.gateway().log()
    }
}

fn test_file(len: usize, seed: u64) -> Vec<u8> {
    upload_harness::client::test_file(len, seed)
}

/// The verified query behind `path` (with `range`) is in the log.
fn assert_verified(w: &World, path: &str, range: &str, status: u16) {
    let log = w.log();
    let line = format!("query GET {path} range={range} -> {status} (");
    assert!(
        log.iter()
            .any(|l| l.starts_with(&line) && l.ends_with("verified")),
        "no verified `{line}` in {log:#?}"
    );
}

#[test]
fn a_small_file_is_served_whole_with_its_safety_headers() {
    let mut w = world();
    let data = test_file(10_000, 1);
    let (_, link) = w.publish("cat.png", "image/png", &data);
    let r = w.get(&link.path);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, data);
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(r.header("content-length"), Some("10000"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    // A photo opened on its own must load itself: plain media carry no CSP
    // (HTML and SVG keep the sandbox: tests/serving.rs,
    // `html_and_svg_are_attachments_never_inline`), and
    // another origin may embed the link.
    assert_eq!(r.header("content-security-policy"), None);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r.header("cache-control").unwrap().contains("immutable"));
    let etag = format!("\"{}\"", hex(&Sha256::digest(&data)));
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_verified(&w, &link.path, "-", 200);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn content_range(r: &Reply) -> (usize, usize, usize) {
    let v = r.header("content-range").expect("Content-Range");
    let v = v.strip_prefix("bytes ").unwrap();
    let (range, total) = v.split_once('/').unwrap();
    let (a, b) = range.split_once('-').unwrap();
    (
        a.parse().unwrap(),
        b.parse().unwrap(),
        total.parse().unwrap(),
    )
}

#[test]
fn ranges_at_the_first_a_middle_and_the_last_chunk_suffix_and_open() {
    let mut w = world();
    let len = 2 * CHUNK + 123_457;
    let data = test_file(len, 2);
    let (_, link) = w.publish("clip.webm", "video/webm", &data);
    // (Range asked, the chunk whose start must be served)
    let cases = [
        ("bytes=0-99", 0),
        ("bytes=0-", 0),
        ("bytes=2500000-2500099", CHUNK),
        ("bytes=2000000-", CHUNK),
        ("bytes=4100000-", 2 * CHUNK),
        ("bytes=-1000", 2 * CHUNK),
        (&*format!("bytes={}-", len - 1), 2 * CHUNK),
    ];
    for (range, chunk_start) in cases {
        let r = w.range(&link.path, range);
        assert_eq!(r.status, 206, "{range}: {}", r.text());
        let (first, last, total) = content_range(&r);
        assert_eq!(total, len, "{range}");
        assert_eq!(first, chunk_start, "{range}");
        assert_eq!(last, (chunk_start + CHUNK).min(len) - 1, "{range}");
        assert_eq!(r.body, &data[first..=last], "{range}");
        assert_eq!(r.header("content-type"), Some("video/webm"));
        assert_verified(&w, &link.path, range, 206);
    }
}

#[test]
fn unsatisfiable_not_modified_and_head_are_verified_too() {
    let mut w = world();
    let data = test_file(3 * CHUNK + 5, 3);
    let (_, link) = w.publish("film.webm", "video/webm", &data);

    let r = w.range(&link.path, &format!("bytes={}-", data.len()));
    assert_eq!(r.status, 416, "{}", r.text());
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{}", data.len()).as_str())
    );

    let etag = w.get(&link.path).header("etag").unwrap().to_string();
    let r = request(
        w.gw.addr(),
        "GET",
        &link.path,
        &[("If-None-Match", etag.as_str())],
    );
    assert_eq!(r.status, 304, "{}", r.text());
    assert!(r.body.is_empty());

    let r = request(w.gw.addr(), "HEAD", &link.path, &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-length"),
        Some(data.len().to_string().as_str())
    );
    assert!(r.body.is_empty());
    let log = w.log();
    for status in ["416", "304"] {
        assert!(
            log.iter()
                .any(|l| l.contains(&format!("-> {status} (")) && l.ends_with("verified")),
            "{status} not verified: {log:#?}"
        );
    }
    assert!(log
        .iter()
        .any(|l| l.starts_with("query HEAD ") && l.ends_with("verified")));
}

#[test]
fn unknown_expired_and_revoked_links_are_a_verified_404() {
    let mut w = world();
    let data = test_file(1000, 4);
    let memory = upload(
        &mut w.env,
        w.canister,
        w.owner,
        w.capsule,
        "note.txt",
        "text/plain",
        &data,
    )
    .unwrap();
    let now = w.env.lock().time();
    let expiring = share(
        &mut w.env,
        w.canister,
        w.owner,
        memory,
        Some(now + 60_000_000_000),
    )
    .unwrap();
    let revoked = share(&mut w.env, w.canister, w.owner, memory, None).unwrap();
    let kept = share(&mut w.env, w.canister, w.owner, memory, None).unwrap();
    for link in [&expiring, &revoked, &kept] {
        assert_eq!(w.get(&link.path).body, data);
    }
    unshare(&mut w.env, w.canister, w.owner, revoked.link_id).unwrap();
    w.env.advance_time(Duration::from_secs(120));
    w.env.tick();

    // A wrong secret of the right form for a real link id, and paths that
    // were never links.
    let mut wrong_secret = kept.path.clone();
    let last = wrong_secret.pop().unwrap();
    wrong_secret.push(if last == '0' { '1' } else { '0' });
    for path in [
        expiring.path.as_str(),
        revoked.path.as_str(),
        wrong_secret.as_str(),
        "/s/999999/abcdef",
        "/s/999999/0/00000000000000000000000000000000",
        "/",
        "/index.html",
    ] {
        let r = w.get(path);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(!r.body.windows(10).any(|x| x == &data[..10]));
        assert_verified(&w, path, "-", 404);
    }
    assert_eq!(w.get(&kept.path).body, data, "the other link still works");
}

#[test]
fn a_64_mib_file_streams_through_the_gateway_byte_exact() {
    let mut w = world();
    let len = 64 << 20;
    let data = test_file(len, 5);
    let (_, link) = w.publish("big.bin", "application/octet-stream", &data);
    let r = w.get(&link.path);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.complete);
    assert_eq!(r.header("content-length"), Some(len.to_string().as_str()));
    assert_eq!(r.body.len(), len);
    assert_eq!(Sha256::digest(&r.body), Sha256::digest(&data));
    // One first query and one verified follow-up per further 2 MB chunk.
    let chunks = len.div_ceil(CHUNK);
    let log = w.log();
    let follow_ups = log
        .iter()
        .filter(|l| {
            l.contains(&format!("GET {} range=bytes=", link.path)) && l.ends_with("verified")
        })
        .count();
    assert_eq!(follow_ups, chunks - 1, "{log:#?}");
}

/// Alters the real canister's answers on their way to the gateway.
struct Tampering {
    inner: HostCanister,
    what: Arc<Mutex<Option<Alter>>>,
}

#[derive(Clone, Copy, Debug)]
enum Alter {
    Body,
    Header,
    Certificate,
}

impl HttpCanister for Tampering {
    fn canister_id(&self) -> Principal {
        self.inner.canister_id()
    }

    fn http_request(&self, request: &HttpRequest<'static>) -> Result<CanisterResponse, String> {
        let mut r = self.inner.http_request(request)?;
        match *self.what.lock().unwrap() {
            Some(Alter::Body) => r.body[0] ^= 1,
            Some(Alter::Header) => {
                for (n, v) in &mut r.headers {
                    if n.eq_ignore_ascii_case("content-type") {
                        *v = "text/html".into();
                    }
                }
            }
            Some(Alter::Certificate) => {
                for (n, v) in &mut r.headers {
                    if n.eq_ignore_ascii_case("ic-certificate") {
                        let mut b = v.clone().into_bytes();
                        b[40] = if b[40] == b'A' { b'B' } else { b'A' };
                        *v = String::from_utf8(b).unwrap();
                    }
                }
            }
            None => {}
        }
        Ok(r)
    }

    fn root_key(&self) -> Vec<u8> {
        self.inner.root_key()
    }

    fn time_ns(&self) -> u64 {
        self.inner.time_ns()
    }
}

#[test]
fn an_altered_body_header_or_certificate_from_the_canister_is_refused() {
    let what = Arc::new(Mutex::new(None));
    let mut w = world_with(|inner| {
        Arc::new(Tampering {
            inner,
            what: what.clone(),
        })
    });
    let data = test_file(5000, 6);
    let (_, link) = w.publish("a.png", "image/png", &data);
    assert_eq!(w.get(&link.path).body, data);
    for alter in [Alter::Body, Alter::Header, Alter::Certificate] {
        *what.lock().unwrap() = Some(alter);
        let r = w.get(&link.path);
        assert_eq!(r.status, 502, "{alter:?}: {}", r.text());
        assert!(
            r.text().contains("response verification failed"),
            "{}",
            r.text()
        );
        assert!(!r.body.windows(16).any(|x| x == &data[..16]));
    }
    *what.lock().unwrap() = None;
    assert_eq!(w.get(&link.path).status, 200);
}

/// A mistyped link (a key of the wrong length) for a live link: the
/// canister must answer a 404 certified under the most specific scope
/// that covers the path; the root scope's 404 fails verification when a
/// more specific scope exists.
#[test]
fn a_malformed_secret_for_a_live_link_is_a_verified_404() {
    let mut w = world();
    let data = test_file(1000, 7);
    let (_, link) = w.publish("note.txt", "text/plain", &data);
    // `/s/<memory>/<link>/` followed by the key.
    let prefix = &link.path[..=link.path.rfind('/').unwrap()];
    for path in [
        format!("{prefix}x"),
        format!("{prefix}{}", &link.path[prefix.len()..prefix.len() + 31]),
        format!("{prefix}{}0", &link.path[prefix.len()..]),
    ] {
        let r = w.get(&path);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert_verified(&w, &path, "-", 404);
    }
}

/// The real canister seen with another root key, or with a clock far from
/// the certificate's time.
struct Skewed {
    inner: HostCanister,
    other_key: Option<Vec<u8>>,
    clock_ahead_ns: u64,
}

impl HttpCanister for Skewed {
    fn canister_id(&self) -> Principal {
        self.inner.canister_id()
    }

    fn http_request(&self, request: &HttpRequest<'static>) -> Result<CanisterResponse, String> {
        self.inner.http_request(request)
    }

    fn root_key(&self) -> Vec<u8> {
        self.other_key
            .clone()
            .unwrap_or_else(|| self.inner.root_key())
    }

    fn time_ns(&self) -> u64 {
        self.inner.time_ns() + self.clock_ahead_ns
    }
}

#[test]
fn a_certificate_from_another_subnet_key_or_too_old_is_refused() {
    let mut other = embedded_ic_host::Host::new();
    other.set_subnet_seed(b"another subnet");
    let cases = [
        (Some(other.root_key()), 0, "signature verification failed"),
        (None, 10 * 60 * 1_000_000_000, "too far in the past"),
        (None, 0, ""),
    ];
    for (other_key, clock_ahead_ns, reason) in cases {
        let mut w = world_with(|inner| {
            Arc::new(Skewed {
                inner,
                other_key: other_key.clone(),
                clock_ahead_ns,
            })
        });
        let data = test_file(100, 8);
        let (_, link) = w.publish("a.txt", "text/plain", &data);
        let r = w.get(&link.path);
        if reason.is_empty() {
            assert_eq!(r.body, data, "the unskewed control case is served");
            continue;
        }
        eprintln!("{reason}: {}", r.text().trim());
        assert_eq!(r.status, 502, "{reason}: {}", r.text());
        assert!(
            r.text().to_lowercase().contains(reason),
            "{reason}: {}",
            r.text()
        );
    }
}
