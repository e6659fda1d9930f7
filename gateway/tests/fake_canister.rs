//! The gateway's protocol against a native stand-in canister that certifies
//! its responses with `ic-http-certification` and gets its data certificate
//! from the embedded host's subnet key: verified responses pass, long
//! assets stream as verified follow-up `Range` requests, and a response
//! whose body, headers or certificate were altered, or that carries no
//! certificate, is never passed on. (The upload canister's own
//! `http_request` is tested end to end in `serving.rs`.)

mod common;

use candid::Principal;
use common::{get, request};
use embedded_ic_host::certification::{state_tree, PendingCertificate, SubnetKey};
use embedded_ic_host::{certification::DEFAULT_SUBNET_SEED, DEFAULT_TIME_NS};
use ic_http_certification::{
    utils::add_v2_certificate_header, DefaultCelBuilder, DefaultResponseCertification,
    DefaultResponseOnlyCelExpression, HttpCertification, HttpCertificationPath,
    HttpCertificationTree, HttpCertificationTreeEntry, HttpRequest, HttpResponse, StatusCode,
    CERTIFICATE_EXPRESSION_HEADER_NAME,
};
use local_gateway::{CanisterResponse, Gateway, HttpCanister};
use std::sync::{Arc, Mutex};

const CHUNK: usize = 1000;

fn long_asset() -> Vec<u8> {
    (0..4321u32).map(|i| (i * 7 % 251) as u8).collect()
}

/// Serves `/small` (200) and `/long` (206 chunks of `CHUNK` bytes: the
/// first without `Range`, the chunk at N for `Range: bytes=N-`), every
/// response certified (status, body, `content-type`, `content-range`).
/// `/uncertified` has no certificate at all.
struct FakeCanister {
    id: Principal,
    key: Arc<SubnetKey>,
    tree: HttpCertificationTree,
    cel: DefaultResponseOnlyCelExpression<'static>,
    tamper: Mutex<Tamper>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tamper {
    None,
    /// Flip a byte of the body of responses starting at this offset.
    Body {
        chunk_at: usize,
    },
    /// Change the certified Content-Type.
    Header,
    /// Flip a byte inside the certificate header's value.
    Certificate,
    /// Answer a chunk of `/long` as if it were another.
    WrongChunk {
        chunk_at: usize,
    },
}

impl FakeCanister {
    fn new() -> Self {
        let cel = DefaultCelBuilder::response_only_certification()
            .with_response_certification(DefaultResponseCertification::certified_response_headers(
                vec!["content-type", "content-range"],
            ))
            .build();
        let mut fake = FakeCanister {
            id: Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 7, 1, 1]),
            key: Arc::new(SubnetKey::from_seed(DEFAULT_SUBNET_SEED)),
            tree: HttpCertificationTree::default(),
            cel,
            tamper: Mutex::new(Tamper::None),
        };
        let mut entries = vec![("/small", fake.response_small())];
        let long = long_asset();
        for at in (0..long.len()).step_by(CHUNK) {
            entries.push(("/long", fake.response_chunk(&long, at)));
        }
        for (path, response) in entries {
            let entry = fake.entry(path, &response);
            fake.tree.insert(&entry);
        }
        fake
    }

    fn entry(
        &self,
        path: &'static str,
        response: &HttpResponse,
    ) -> HttpCertificationTreeEntry<'static> {
        let certification = HttpCertification::response_only(&self.cel, response, None).unwrap();
        HttpCertificationTreeEntry::new(HttpCertificationPath::exact(path), certification)
    }

    fn headers(&self, content_type: &str) -> Vec<(String, String)> {
        vec![
            ("content-type".into(), content_type.into()),
            (
                CERTIFICATE_EXPRESSION_HEADER_NAME.into(),
                self.cel.to_string(),
            ),
        ]
    }

    fn response_small(&self) -> HttpResponse<'static> {
        HttpResponse::builder()
            .with_status_code(StatusCode::OK)
            .with_headers(self.headers("text/plain"))
            .with_body(b"hello".to_vec())
            .build()
    }

    fn response_chunk(&self, long: &[u8], at: usize) -> HttpResponse<'static> {
        let end = (at + CHUNK).min(long.len());
        let mut headers = self.headers("application/octet-stream");
        headers.push((
            "content-range".into(),
            format!("bytes {at}-{}/{}", end - 1, long.len()),
        ));
        HttpResponse::builder()
            .with_status_code(StatusCode::PARTIAL_CONTENT)
            .with_headers(headers)
            .with_body(long[at..end].to_vec())
            .build()
    }

    fn certify(
        &self,
        path: &'static str,
        mut response: HttpResponse<'static>,
    ) -> HttpResponse<'static> {
        let entry = self.entry(path, &response);
        let witness = self.tree.witness(&entry, path).unwrap();
        let state = state_tree(
            [(&self.id, self.tree.root_hash().as_slice())],
            self.time_ns(),
        );
        let certificate = PendingCertificate::new(&state, &self.id, self.key.clone());
        add_v2_certificate_header(
            certificate.bytes(),
            &mut response,
            &witness,
            &HttpCertificationPath::exact(path).to_expr_path(),
        );
        response
    }

    fn set_tamper(&self, t: Tamper) {
        *self.tamper.lock().unwrap() = t;
    }
}

fn requested_offset(request: &HttpRequest) -> usize {
    request
        .headers()
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("range"))
        .and_then(|(_, v)| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl HttpCanister for FakeCanister {
    fn canister_id(&self) -> Principal {
        self.id
    }

    fn http_request(&self, request: &HttpRequest<'static>) -> Result<CanisterResponse, String> {
        let tamper = *self.tamper.lock().unwrap();
        let path = request.get_path().map_err(|e| e.to_string())?;
        let (response, at) = match path.as_str() {
            "/small" => (self.certify("/small", self.response_small()), 0),
            "/long" => {
                let at = requested_offset(request);
                let served_at = match tamper {
                    Tamper::WrongChunk { chunk_at } if chunk_at == at => at + CHUNK,
                    _ => at,
                };
                let chunk = self.response_chunk(&long_asset(), served_at);
                (self.certify("/long", chunk), at)
            }
            "/uncertified" => (self.response_small(), 0),
            _ => return Err(format!("no such path {path}")),
        };
        let mut r = CanisterResponse {
            status_code: response.status_code().as_u16(),
            headers: response.headers().to_vec(),
            body: response.body().to_vec(),
            upgrade: None,
            has_streaming_strategy: false,
        };
        match tamper {
            Tamper::Body { chunk_at } if chunk_at == at => r.body[3] ^= 1,
            Tamper::Header => {
                for (n, v) in &mut r.headers {
                    if n == "content-type" {
                        *v = "text/html".into();
                    }
                }
            }
            Tamper::Certificate => {
                for (n, v) in &mut r.headers {
                    if n.eq_ignore_ascii_case("ic-certificate") {
                        // Inside the base64 of `certificate=:...:`: a
                        // different letter of the same alphabet.
                        let mut bytes = v.clone().into_bytes();
                        let i = 40;
                        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
                        *v = String::from_utf8(bytes).unwrap();
                    }
                }
            }
            _ => {}
        }
        Ok(r)
    }

    fn root_key(&self) -> Vec<u8> {
        self.key.root_key_der().to_vec()
    }

    fn time_ns(&self) -> u64 {
        DEFAULT_TIME_NS
    }
}

fn serve() -> (Arc<FakeCanister>, local_gateway::RunningGateway) {
    let fake = Arc::new(FakeCanister::new());
    let running = Gateway::new(fake.clone())
        .spawn(([127, 0, 0, 1], 0).into())
        .unwrap();
    (fake, running)
}

#[test]
fn a_certified_response_is_passed_on_with_its_certified_headers() {
    let (_fake, gw) = serve();
    let r = get(gw.addr(), "/small");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, b"hello");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    // The certificate is the gateway's business, not the browser's.
    assert_eq!(r.header("ic-certificate"), None);
}

#[test]
fn a_long_asset_is_streamed_from_verified_follow_up_range_requests() {
    let (_fake, gw) = serve();
    let r = get(gw.addr(), "/long");
    assert_eq!(r.status, 200);
    assert!(r.complete);
    assert_eq!(r.body, long_asset());
    assert_eq!(r.header("content-length"), Some("4321"));
    assert_eq!(r.header("content-range"), None);
    let log = gw.gateway().log();
    let follow_ups: Vec<_> = log
        .iter()
        .filter(|l| l.starts_with("query GET /long range=bytes="))
        .collect();
    assert_eq!(follow_ups.len(), 4, "{log:#?}");
    assert!(follow_ups[0].contains("range=bytes=1000- -> 206 (1000 bytes) verified"));
    assert!(follow_ups[3].contains("range=bytes=4000- -> 206 (321 bytes) verified"));
}

#[test]
fn a_client_range_request_gets_the_verified_206_as_it_is() {
    let (_fake, gw) = serve();
    let r = request(gw.addr(), "GET", "/long", &[("Range", "bytes=2000-")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 2000-2999/4321"));
    assert_eq!(r.body, &long_asset()[2000..3000]);
}

#[test]
fn an_altered_body_header_or_certificate_is_refused() {
    let (fake, gw) = serve();
    for tamper in [
        Tamper::Body { chunk_at: 0 },
        Tamper::Header,
        Tamper::Certificate,
    ] {
        fake.set_tamper(tamper);
        let r = get(gw.addr(), "/small");
        assert_eq!(r.status, 502, "{tamper:?} passed: {}", r.text());
        assert!(
            r.text().contains("response verification failed"),
            "{tamper:?}: {}",
            r.text()
        );
        assert!(!r.body.windows(5).any(|w| w == b"hello"));
    }
    fake.set_tamper(Tamper::None);
    assert_eq!(get(gw.addr(), "/small").status, 200);
}

#[test]
fn a_response_without_a_certificate_is_refused() {
    let (_fake, gw) = serve();
    let r = get(gw.addr(), "/uncertified");
    assert_eq!(r.status, 502);
    assert!(
        r.text().contains("response verification failed"),
        "{}",
        r.text()
    );
}

#[test]
fn a_stream_stops_before_a_chunk_that_fails_verification() {
    let (fake, gw) = serve();
    fake.set_tamper(Tamper::Body { chunk_at: 2000 });
    let r = get(gw.addr(), "/long");
    // 200 and a short body, or (when the cut comes before hyper wrote
    // anything) no response at all.
    assert!(matches!(r.status, 0 | 200), "{}", r.status);
    assert!(!r.complete, "the cut stream must not look complete");
    // What arrived is verified: at most the first two chunks (hyper may
    // drop what it had buffered when the stream is cut), nothing after.
    assert!(r.body.len() <= 2000 && long_asset().starts_with(&r.body));
    let log = gw.gateway().log();
    assert!(
        log.iter()
            .any(|l| l.contains("range=bytes=2000- -> REFUSED: response verification failed")),
        "{log:#?}"
    );
}

#[test]
fn a_follow_up_that_does_not_continue_the_asset_is_refused() {
    let (fake, gw) = serve();
    fake.set_tamper(Tamper::WrongChunk { chunk_at: 1000 });
    let r = get(gw.addr(), "/long");
    assert!(matches!(r.status, 0 | 200), "{}", r.status);
    assert!(!r.complete);
    assert!(r.body.len() <= 1000 && long_asset().starts_with(&r.body));
    let log = gw.gateway().log();
    assert!(
        log.iter()
            .any(|l| l.contains("follow-up for bytes 1000- of 4321 answered bytes 2000-2999/4321")),
        "{log:#?}"
    );
}
