//! Serving memories over HTTP on the embedded host, with the real release
//! `.wasm`: every kind of response is checked with `ic-response-verification`
//! (the verifier the IC's HTTP gateway uses) against the host's subnet key,
//! and altered responses are shown to fail verification.

use backend::http::{HttpRequest, HttpResponse, SERVE_CHUNK_BYTES};
use backend::sharing::links::{ShareError, ShareLink};
use backend::upload::*;
use candid::Principal;
use std::time::Duration;
use upload_harness::client::{ok, sha256, test_file, UploadClient};
use upload_harness::{backend_wasm, query, update, user, EmbeddedEnv, IcEnv};

const CHUNK: u32 = 1_900_000;
const MINUTE_NS: u128 = 60_000_000_000;

struct Served {
    env: EmbeddedEnv,
    canister: Principal,
    capsule: CapsuleId,
}

fn alice() -> Principal {
    user(1)
}

fn bob() -> Principal {
    user(2)
}

impl Served {
    fn new() -> Self {
        let mut env = EmbeddedEnv::new();
        let canister = env.install(backend_wasm());
        let capsule =
            ok(UploadClient::new(&mut env, canister, alice()).create_capsule("photos")).capsule_id;
        Self {
            env,
            canister,
            capsule,
        }
    }

    fn upload(&mut self, name: &str, mime: &str, data: &[u8]) -> MemoryItemId {
        let capsule = self.capsule;
        let mut alice = UploadClient::new(&mut self.env, self.canister, alice());
        let started = ok(alice.begin_request(BeginUpload {
            capsule_id: capsule,
            asset: AssetMetadata {
                name: name.into(),
                mime_type: mime.into(),
                byte_len: data.len() as u64,
                sha256: None,
            },
            chunk_size: CHUNK,
            expected_chunks: data.len().div_ceil(CHUNK as usize) as u32,
            idempotency_key: name.into(),
        }));
        for index in 0..started.expected_chunks {
            ok(alice.put_chunk_of(started.session_id, data, CHUNK, index));
        }
        loop {
            match alice.finish(started.session_id, data).expect("transport") {
                Ok(done) => return done.memory_id,
                Err(UploadError::VerificationPending { .. }) => alice.env.tick(),
                Err(other) => panic!("finish: {other:?}"),
            }
        }
    }

    fn share_as(
        &mut self,
        who: Principal,
        memory: MemoryItemId,
        expires_at: Option<u64>,
    ) -> Result<ShareLink, ShareError> {
        let (reply,): (Result<ShareLink, ShareError>,) = update(
            &mut self.env,
            self.canister,
            who,
            "memories_share",
            (memory, expires_at),
        )
        .expect("transport");
        reply
    }

    /// Shares and waits (timer steps) until the link is certified.
    fn share(&mut self, memory: MemoryItemId, expires_at: Option<u64>) -> ShareLink {
        let link = self.share_as(alice(), memory, expires_at).expect("share");
        for _ in 0..100 {
            let links = self.shares_as(alice(), memory).expect("list");
            let now = links
                .into_iter()
                .find(|l| l.link_id == link.link_id)
                .unwrap();
            if now.ready {
                return now;
            }
            self.env.tick();
        }
        panic!("link never became ready");
    }

    fn shares_as(
        &mut self,
        who: Principal,
        memory: MemoryItemId,
    ) -> Result<Vec<ShareLink>, ShareError> {
        let (reply,): (Result<Vec<ShareLink>, ShareError>,) = query(
            &mut self.env,
            self.canister,
            who,
            "memories_shares",
            (memory,),
        )
        .expect("transport");
        reply
    }

    fn unshare_as(&mut self, who: Principal, link_id: u64) -> Result<(), ShareError> {
        let (reply,): (Result<(), ShareError>,) = update(
            &mut self.env,
            self.canister,
            who,
            "memories_unshare",
            (link_id,),
        )
        .expect("transport");
        reply
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpRequest {
        HttpRequest::new(method, path, headers)
    }

    /// The raw response of an anonymous `http_request` query (as the
    /// gateway makes it).
    fn raw(&mut self, request: &HttpRequest) -> HttpResponse {
        let (response,): (HttpResponse,) = query(
            &mut self.env,
            self.canister,
            Principal::anonymous(),
            "http_request",
            (request.clone(),),
        )
        .expect("http_request");
        response
    }

    /// Verifies `response` to `request` as the HTTP gateway does.
    fn verify(&mut self, request: &HttpRequest, response: &HttpResponse) -> Result<(), String> {
        let root_key = self.env.host().root_key();
        let now = u128::from(self.env.host().time());
        let mut certified_request = ic_http_certification::HttpRequest::builder()
            .with_method(
                ic_http_certification::Method::from_bytes(request.method.as_bytes()).unwrap(),
            )
            .with_url(request.url.clone())
            .with_headers(request.headers.clone())
            .with_body(request.body.to_vec());
        if let Some(version) = request.certificate_version {
            certified_request = certified_request.with_certificate_version(version);
        }
        let certified_response = ic_http_certification::HttpResponse::builder()
            .with_status_code(
                ic_http_certification::StatusCode::from_u16(response.status_code).unwrap(),
            )
            .with_headers(response.headers.clone())
            .with_body(response.body.to_vec())
            .build();
        let info = ic_response_verification::verify_request_response_pair(
            certified_request.build(),
            certified_response,
            self.canister.as_slice(),
            now,
            5 * MINUTE_NS,
            &root_key,
            2,
        )
        .map_err(|e| e.to_string())?;
        if info.verification_version != 2 {
            return Err(format!("verified as v{}", info.verification_version));
        }
        let verified = info.response.ok_or("no certified response")?;
        if verified.status_code != Some(response.status_code) || verified.body != *response.body {
            return Err("the verified response is not the one served".into());
        }
        Ok(())
    }

    /// A verified response.
    fn get(&mut self, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        let request = self.request(method, path, headers);
        let response = self.raw(&request);
        self.verify(&request, &response)
            .unwrap_or_else(|e| panic!("{method} {path} {headers:?}: {e}"));
        response
    }
}

fn header<'a>(response: &'a HttpResponse, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn etag_of(data: &[u8]) -> String {
    format!(
        "\"{}\"",
        sha256(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

#[test]
fn a_small_image_is_served_whole_inline_and_certified() {
    let mut s = Served::new();
    let data = test_file(70_000, 1);
    let memory = s.upload("cat.png", "image/png", &data);
    let link = s.share(memory, None);
    let prefix = format!("/s/{}/{}/", memory.0, link.link_id);
    assert!(link.path.starts_with(&prefix), "{}", link.path);
    assert_eq!(link.path.len(), prefix.len() + 32);

    let response = s.get("GET", &link.path, &[]);
    assert_eq!(response.status_code, 200);
    assert_eq!(*response.body, data);
    assert_eq!(header(&response, "Content-Type"), Some("image/png"));
    assert_eq!(header(&response, "Content-Length"), Some("70000"));
    assert_eq!(header(&response, "ETag"), Some(etag_of(&data).as_str()));
    assert_eq!(header(&response, "Accept-Ranges"), Some("bytes"));
    assert_eq!(header(&response, "X-Content-Type-Options"), Some("nosniff"));
    assert!(header(&response, "Cache-Control")
        .unwrap()
        .contains("immutable"));
    // A photo opened on its own shows: plain media carry no CSP, and any
    // origin may embed the link.
    assert_eq!(header(&response, "Content-Security-Policy"), None);
    assert_eq!(header(&response, "Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(
        header(&response, "Cross-Origin-Resource-Policy"),
        Some("cross-origin")
    );
    assert!(header(&response, "Content-Disposition")
        .unwrap()
        .starts_with("inline; filename=\"cat.png\""));

    // A file name after the key is allowed (and certified by the same scope).
    let named = s.get("GET", &format!("{}/cat.png", link.path), &[]);
    assert_eq!(*named.body, data);

    // A range in a one-chunk file: 206 for the whole file.
    let ranged = s.get("GET", &link.path, &[("Range", "bytes=100-200")]);
    assert_eq!(ranged.status_code, 206);
    assert_eq!(
        header(&ranged, "Content-Range"),
        Some("bytes 0-69999/70000")
    );
    assert_eq!(*ranged.body, data);

    let head = s.get("HEAD", &link.path, &[]);
    assert_eq!(head.status_code, 200);
    assert!(head.body.is_empty());
    assert_eq!(header(&head, "Content-Length"), Some("70000"));

    let etag = etag_of(&data);
    let cached = s.get("GET", &link.path, &[("If-None-Match", &etag)]);
    assert_eq!(cached.status_code, 304);
    assert!(cached.body.is_empty());
    let stale = s.get("GET", &link.path, &[("If-None-Match", "\"00\"")]);
    assert_eq!(stale.status_code, 200);

    let post = s.get("POST", &link.path, &[]);
    assert_eq!(post.status_code, 405);
}

#[test]
fn a_long_video_is_served_chunk_by_chunk_as_the_gateway_streams_it() {
    let mut s = Served::new();
    let len = 2 * SERVE_CHUNK_BYTES as usize + 1_000_001;
    let data = test_file(len, 2);
    let memory = s.upload("clip.webm", "video/webm", &data);
    let link = s.share(memory, None);
    let total = format!("/{len}");
    let chunk = SERVE_CHUNK_BYTES as usize;

    // The gateway's first request has no Range: the first chunk, as a 206.
    let first = s.get("GET", &link.path, &[]);
    assert_eq!(first.status_code, 206);
    assert_eq!(
        header(&first, "Content-Range"),
        Some(format!("bytes 0-{}{total}", chunk - 1).as_str())
    );
    assert_eq!(*first.body, data[..chunk]);
    assert!(header(&first, "Content-Disposition")
        .unwrap()
        .starts_with("inline"));

    // Its follow-ups: `Range: bytes=N-` at each chunk boundary.
    let mut streamed = first.body.to_vec();
    while streamed.len() < len {
        let range = format!("bytes={}-", streamed.len());
        let next = s.get("GET", &link.path, &[("Range", &range)]);
        assert_eq!(next.status_code, 206);
        let expected_end = (streamed.len() + chunk).min(len) - 1;
        assert_eq!(
            header(&next, "Content-Range"),
            Some(format!("bytes {}-{expected_end}{total}", streamed.len()).as_str())
        );
        streamed.extend_from_slice(&next.body);
    }
    assert_eq!(streamed, data);

    // A browser's ranges: the chunk that holds the first requested byte.
    for (range, chunk_index) in [
        ("bytes=0-99", 0usize),
        ("bytes=2500000-2600000", 1),
        ("bytes=3999999-", 1),
        ("bytes=4500000-", 2),
        ("bytes=-10", 2),
        ("bytes=-1000000000", 0),
        ("bytes=4200000-4200001, 0-5", 2),
    ] {
        let response = s.get("GET", &link.path, &[("Range", range)]);
        assert_eq!(response.status_code, 206, "{range}");
        let start = chunk_index * chunk;
        let end = (start + chunk).min(len);
        assert_eq!(
            header(&response, "Content-Range"),
            Some(format!("bytes {start}-{}{total}", end - 1).as_str()),
            "{range}"
        );
        assert_eq!(
            header(&response, "Content-Length"),
            Some((end - start).to_string().as_str())
        );
        assert_eq!(*response.body, data[start..end], "{range}");
    }

    let unsatisfiable = s.get("GET", &link.path, &[("Range", &format!("bytes={len}-"))]);
    assert_eq!(unsatisfiable.status_code, 416);
    assert_eq!(
        header(&unsatisfiable, "Content-Range"),
        Some(format!("bytes */{len}").as_str())
    );

    let head = s.get("HEAD", &link.path, &[("Range", "bytes=0-")]);
    assert_eq!(head.status_code, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        header(&head, "Content-Length"),
        Some(len.to_string().as_str())
    );

    let etag = etag_of(&data);
    let cached = s.get(
        "GET",
        &link.path,
        &[("If-None-Match", &etag), ("Range", "bytes=5-")],
    );
    assert_eq!(cached.status_code, 304);

    // A stale If-Range validator: the whole representation (first chunk).
    let stale = s.get(
        "GET",
        &link.path,
        &[("If-Range", "\"00\""), ("Range", "bytes=4500000-")],
    );
    assert_eq!(
        header(&stale, "Content-Range"),
        Some(format!("bytes 0-{}{total}", chunk - 1).as_str())
    );
}

#[test]
fn unknown_wrong_key_expired_and_revoked_links_are_certified_404s() {
    let mut s = Served::new();
    let data = test_file(1_000, 3);
    let memory = s.upload("notes.txt", "text/plain", &data);

    // Nothing is public by default: the memory exists but no path serves it.
    for path in [
        "/",
        "/index.html",
        "/s/0",
        "/s/0/00000000000000000000000000000000",
    ] {
        let response = s.get("GET", path, &[]);
        assert_eq!(response.status_code, 404, "{path}");
    }

    let now = s.env.host().time();
    let expiring = s.share(memory, Some(now + 3_600_000_000_000));
    let revoked = s.share(memory, None);
    let kept = s.share(memory, None);
    assert_eq!(s.get("GET", &expiring.path, &[]).status_code, 200);

    // A wrong key for a real link.
    let mut wrong = kept.path.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    let response = s.get("GET", &wrong, &[]);
    assert_eq!(response.status_code, 404);
    assert!(response.body.len() < 100);

    // A real link and key under another memory's id.
    let other = s.upload("other.txt", "text/plain", b"other");
    let _other_link = s.share(other, None);
    let moved = kept
        .path
        .replacen(&format!("/s/{}/", memory.0), &format!("/s/{}/", other.0), 1);
    assert_ne!(moved, kept.path);
    let response = s.get("GET", &moved, &[]);
    assert_eq!(response.status_code, 404);

    ok_unit(s.unshare_as(alice(), revoked.link_id));
    assert_eq!(s.get("GET", &revoked.path, &[]).status_code, 404);
    assert_eq!(s.get("HEAD", &revoked.path, &[]).status_code, 404);

    s.env.advance_time(Duration::from_secs(3_601));
    // Expired before the sweep removed it: the link's own 404.
    assert_eq!(s.get("GET", &expiring.path, &[]).status_code, 404);
    s.env.tick();
    // After the sweep: the root 404.
    assert_eq!(s.get("GET", &expiring.path, &[]).status_code, 404);
    let listed: Vec<u64> = s
        .shares_as(alice(), memory)
        .unwrap()
        .iter()
        .map(|l| l.link_id)
        .collect();
    assert_eq!(listed, vec![kept.link_id]);
    assert_eq!(*s.get("GET", &kept.path, &[]).body, data);

    // Deleting the memory revokes its links.
    ok(UploadClient::new(&mut s.env, s.canister, alice()).delete_memory(memory));
    assert_eq!(s.get("GET", &kept.path, &[]).status_code, 404);
}

fn ok_unit(reply: Result<(), ShareError>) {
    reply.expect("share call");
}

#[test]
fn altered_bodies_headers_and_certificates_fail_verification() {
    let mut s = Served::new();
    let data = test_file(3_000, 4);
    let memory = s.upload("a.bin", "application/octet-stream", &data);
    let link = s.share(memory, None);
    let request = s.request("GET", &link.path, &[]);
    let genuine = s.raw(&request);
    s.verify(&request, &genuine).expect("genuine response");

    let mut body = genuine.clone();
    body.body[0] ^= 1;
    assert!(s.verify(&request, &body).is_err(), "altered body accepted");

    let mut content_type = genuine.clone();
    for (name, value) in &mut content_type.headers {
        if name.eq_ignore_ascii_case("Content-Type") {
            *value = "text/html".into();
        }
    }
    assert!(
        s.verify(&request, &content_type).is_err(),
        "altered header accepted"
    );

    let mut disposition = genuine.clone();
    disposition
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("Content-Disposition"));
    assert!(
        s.verify(&request, &disposition).is_err(),
        "dropped header accepted"
    );

    let mut status = genuine.clone();
    status.status_code = 206;
    assert!(
        s.verify(&request, &status).is_err(),
        "altered status accepted"
    );

    let mut certificate = genuine.clone();
    for (name, value) in &mut certificate.headers {
        if name.eq_ignore_ascii_case("IC-Certificate") {
            // Flip one base64 digit inside the certificate's signature area.
            let start = value.find("certificate=:").unwrap() + "certificate=:".len();
            let end = start + value[start..].find(':').unwrap();
            let at = end - 8;
            let flipped = if &value[at..at + 1] == "A" { "B" } else { "A" };
            value.replace_range(at..at + 1, flipped);
        }
    }
    assert!(
        s.verify(&request, &certificate).is_err(),
        "altered certificate accepted"
    );

    // Another link's response for this link's path is not certified for it.
    let other_memory = s.upload("b.bin", "application/octet-stream", &test_file(3_000, 5));
    let other = s.share(other_memory, None);
    let other_response = s.raw(&s.request("GET", &other.path, &[]));
    assert!(
        s.verify(&request, &other_response).is_err(),
        "foreign response accepted"
    );
}

#[test]
fn html_and_svg_are_attachments_never_inline() {
    let mut s = Served::new();
    for (name, mime) in [
        ("page.html", "text/html"),
        ("logo.svg", "image/svg+xml"),
        ("x.xhtml", "application/xhtml+xml"),
    ] {
        let memory = s.upload(name, mime, b"<svg onload=alert(1)></svg>");
        let link = s.share(memory, None);
        let response = s.get("GET", &link.path, &[]);
        let disposition = header(&response, "Content-Disposition").unwrap();
        assert!(
            disposition.starts_with("attachment;"),
            "{mime}: {disposition}"
        );
        assert_eq!(header(&response, "X-Content-Type-Options"), Some("nosniff"));
        assert!(header(&response, "Content-Security-Policy")
            .unwrap()
            .contains("sandbox"));
    }
}

#[test]
fn only_the_owner_or_uploader_shares_lists_and_revokes() {
    let mut s = Served::new();
    let memory = s.upload("a.bin", "application/octet-stream", &test_file(10, 6));
    // Anonymous calls are refused before execution (inspect_message).
    let anonymous: Result<(Result<ShareLink, ShareError>,), String> = update(
        &mut s.env,
        s.canister,
        Principal::anonymous(),
        "memories_share",
        (memory, None::<u64>),
    );
    assert!(anonymous.unwrap_err().contains("anonymous"));
    assert_eq!(
        s.share_as(bob(), memory, None),
        Err(ShareError::NotAuthorized)
    );
    assert_eq!(
        s.share_as(alice(), MemoryItemId(999), None),
        Err(ShareError::MemoryNotFound {
            memory_id: MemoryItemId(999)
        })
    );
    let past = s.env.host().time() - 1;
    assert!(matches!(
        s.share_as(alice(), memory, Some(past)),
        Err(ShareError::InvalidArgument { .. })
    ));
    let link = s.share(memory, None);
    assert_eq!(s.shares_as(bob(), memory), Err(ShareError::NotAuthorized));
    assert_eq!(
        s.unshare_as(bob(), link.link_id),
        Err(ShareError::NotAuthorized)
    );
    assert_eq!(
        s.unshare_as(alice(), 12345),
        Err(ShareError::LinkNotFound { link_id: 12345 })
    );
    // Two links never share a key.
    let again = s.share(memory, None);
    assert_ne!(
        link.path[link.path.rfind('/').unwrap()..],
        again.path[again.path.rfind('/').unwrap()..]
    );
}

#[test]
fn links_keep_working_across_upgrades() {
    let mut s = Served::new();
    let data = test_file(2 * SERVE_CHUNK_BYTES as usize + 5, 7);
    let memory = s.upload("v.webm", "video/webm", &data);
    let link = s.share(memory, None);
    let before = s.get("GET", &link.path, &[("Range", "bytes=4000000-")]);
    let canister = s.canister;
    s.env.upgrade(canister, backend_wasm()).expect("upgrade");
    let after = s.get("GET", &link.path, &[("Range", "bytes=4000000-")]);
    assert_eq!(after.body, before.body);
    assert_eq!(*after.body, data[4_000_000..]);
    // New links after the upgrade draw fresh randomness.
    let fresh = s.share(memory, None);
    assert_ne!(fresh.path, link.path);
    assert_eq!(
        *s.get("GET", &fresh.path, &[]).body,
        data[..SERVE_CHUNK_BYTES as usize]
    );
}

#[test]
fn a_long_file_answers_a_verified_404_until_its_chunks_are_certified() {
    let mut s = Served::new();
    // 36 MB: more than the 32 MiB of work one message does.
    let data = test_file(18 * SERVE_CHUNK_BYTES as usize, 8);
    let memory = s.upload("long.webm", "video/webm", &data);
    let link = s.share_as(alice(), memory, None).expect("share");
    assert!(!link.ready);
    let pending = s.get("GET", &link.path, &[("Range", "bytes=0-")]);
    assert_eq!(pending.status_code, 404);
    s.env.tick();
    let listed = s.shares_as(alice(), memory).expect("list");
    assert!(listed.iter().all(|l| l.ready), "{listed:?}");
    let last = s.get("GET", &link.path, &[("Range", "bytes=-1")]);
    assert_eq!(last.status_code, 206);
    assert_eq!(*last.body, data[17 * SERVE_CHUNK_BYTES as usize..]);
}
