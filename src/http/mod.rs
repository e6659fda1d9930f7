//! Serving memories over the IC's HTTP interface (`http_request`), certified
//! with response verification v2.
//!
//! Every response the canister can give is known in advance and certified
//! in an `HttpCertificationTree`: for each share link, under the link's path
//! scope, the whole file (small files), each 2 MB serving chunk as a 206,
//! the HEAD reply, 304, 416, 404 and 405; under the root scope, 404 and 405
//! for everything else. Responses are certified "response only": the
//! request is not part of the certification, so one pre-certified 206 per
//! chunk answers every `Range` that starts in that chunk (the
//! `Content-Range` header, which is certified, says which bytes it holds).
//! This module shapes those responses; `crate::sharing::links` stores the
//! links and the chunk hashes and keeps the tree.

pub mod range;
pub mod safety;

use candid::CandidType;
use ic_http_certification::{
    DefaultCelBuilder, DefaultResponseCertification, DefaultResponseOnlyCelExpression, StatusCode,
    CERTIFICATE_EXPRESSION_HEADER_NAME,
};
use serde::Deserialize;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

/// `http_request`'s argument, as the HTTP gateway sends it.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: ByteBuf,
    /// Highest response-verification version the gateway understands.
    pub certificate_version: Option<u16>,
}

impl HttpRequest {
    /// A request as a gateway that verifies certificates of version 2 sends
    /// it, with no body: what the tests, the fuzzer and the benchmark make.
    pub fn new(method: &str, url: &str, headers: &[(&str, &str)]) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            body: ByteBuf::new(),
            certificate_version: Some(2),
        }
    }
}

/// `http_request`'s reply, as the HTTP gateway expects it.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status_code: u16,
    pub headers: Vec<(String, String)>,
    pub body: ByteBuf,
    /// Never set: every answer is a certified query answer.
    pub upgrade: Option<bool>,
}

impl HttpRequest {
    /// The URL's path, percent-decoded as response verification decodes it
    /// (`None` for a malformed URL).
    pub fn path(&self) -> Option<String> {
        ic_http_certification::HttpRequest::get(self.url.as_str())
            .build()
            .get_path()
            .ok()
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub use crate::limits::SERVE_CHUNK_BYTES;

/// Browsers may keep a file this long. Links can be revoked or expire, so
/// caches are private and bounded rather than "forever".
pub const CACHE_CONTROL: &str = "private, max-age=3600, immutable";

/// Number of serving chunks of a file of `byte_len` bytes.
pub fn chunk_count(byte_len: u64) -> u32 {
    u32::try_from(byte_len.div_ceil(SERVE_CHUNK_BYTES)).expect("bug: file too large to serve")
}

/// Byte range `[start, end)` of serving chunk `index`.
pub fn chunk_bounds(byte_len: u64, index: u32) -> (u64, u64) {
    let start = u64::from(index) * SERVE_CHUNK_BYTES;
    (start, (start + SERVE_CHUNK_BYTES).min(byte_len))
}

/// What a memory is, as far as its HTTP responses go.
#[derive(Debug, Clone, Copy)]
pub struct Served<'a> {
    pub byte_len: u64,
    pub sha256: &'a [u8],
    pub mime_type: &'a str,
    pub name: &'a str,
}

/// Every kind of response the canister gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// 200 with the whole file (files of at most one serving chunk).
    Whole,
    /// 206 with one serving chunk.
    Chunk(u32),
    /// 200 to a HEAD: the headers of the whole file, no body.
    Head,
    /// 304: the client's copy (`If-None-Match`) is current.
    NotModified,
    /// 416: no requested range overlaps the file.
    Unsatisfiable,
    /// 404: no such link, or expired, revoked, or the wrong key.
    NotFound,
    /// 405: only GET and HEAD are served.
    MethodNotAllowed,
}

const NOT_FOUND_BODY: &[u8] = b"Not found\n";
const METHOD_NOT_ALLOWED_BODY: &[u8] = b"Only GET and HEAD are served\n";
const UNSATISFIABLE_BODY: &[u8] = b"Range not satisfiable\n";

/// The certification of every response: response only, all headers but
/// `IC-Certificate` certified.
pub fn cel_expression() -> DefaultResponseOnlyCelExpression<'static> {
    DefaultCelBuilder::response_only_certification()
        .with_response_certification(DefaultResponseCertification::response_header_exclusions(
            vec![],
        ))
        .build()
}

/// `"<hex sha256>"`.
pub fn etag(sha256: &[u8]) -> String {
    let mut tag = String::with_capacity(2 + 2 * sha256.len());
    tag.push('"');
    for byte in sha256 {
        tag.push_str(&format!("{byte:02x}"));
    }
    tag.push('"');
    tag
}

/// Whether `If-None-Match` names `etag` (weak comparison, `*` matches).
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// The status of `reply`.
pub fn status(reply: Reply) -> StatusCode {
    match reply {
        Reply::Whole | Reply::Head => StatusCode::OK,
        Reply::Chunk(_) => StatusCode::PARTIAL_CONTENT,
        Reply::NotModified => StatusCode::NOT_MODIFIED,
        Reply::Unsatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        Reply::NotFound => StatusCode::NOT_FOUND,
        Reply::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
    }
}

/// The body of replies that do not carry file bytes.
pub fn fixed_body(reply: Reply) -> &'static [u8] {
    match reply {
        Reply::NotFound => NOT_FOUND_BODY,
        Reply::MethodNotAllowed => METHOD_NOT_ALLOWED_BODY,
        Reply::Unsatisfiable => UNSATISFIABLE_BODY,
        _ => b"",
    }
}

/// The file bytes `[start, end)` a reply carries, if any.
pub fn body_range(reply: Reply, byte_len: u64) -> Option<(u64, u64)> {
    match reply {
        Reply::Whole => Some((0, byte_len)),
        Reply::Chunk(index) => Some(chunk_bounds(byte_len, index)),
        _ => None,
    }
}

/// The headers of `reply` for `served` (`None` for the replies that do not
/// depend on a file). Deterministic: the same headers are certified and
/// served.
pub fn headers(reply: Reply, served: Option<&Served>, cel: &str) -> Vec<(String, String)> {
    let mut headers = vec![
        ("X-Content-Type-Options".into(), "nosniff".into()),
        (CERTIFICATE_EXPRESSION_HEADER_NAME.into(), cel.into()),
    ];
    let content_type = served
        .filter(|_| {
            !matches!(
                reply,
                Reply::NotFound | Reply::MethodNotAllowed | Reply::Unsatisfiable
            )
        })
        .map(|s| safety::content_type(s.mime_type));
    // Our own text (404, 405, 416) and every type but plain media: sandboxed.
    if let Some(csp) = content_type.as_deref().map_or(
        Some(safety::CONTENT_SECURITY_POLICY),
        safety::content_security_policy,
    ) {
        headers.push(("Content-Security-Policy".into(), csp.into()));
    }
    let served = match (reply, served) {
        (Reply::NotFound | Reply::MethodNotAllowed, _) | (_, None) => {
            headers.push(("Content-Type".into(), "text/plain; charset=utf-8".into()));
            headers.push(("Cache-Control".into(), "no-store".into()));
            headers.push(("Content-Length".into(), fixed_body(reply).len().to_string()));
            if reply == Reply::MethodNotAllowed {
                headers.push(("Allow".into(), "GET, HEAD".into()));
            }
            return headers;
        }
        (_, Some(served)) => served,
    };
    // A file's replies (not the canister's own 404 and 405, certified at
    // every upgrade) may be embedded or fetched by another origin's page.
    headers.extend(
        safety::CROSS_ORIGIN_HEADERS
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string())),
    );
    let len = served.byte_len;
    headers.push(("ETag".into(), etag(served.sha256)));
    headers.push(("Cache-Control".into(), CACHE_CONTROL.into()));
    headers.push(("Accept-Ranges".into(), "bytes".into()));
    if reply == Reply::Unsatisfiable {
        headers.push(("Content-Type".into(), "text/plain; charset=utf-8".into()));
        headers.push(("Content-Range".into(), format!("bytes */{len}")));
        headers.push((
            "Content-Length".into(),
            UNSATISFIABLE_BODY.len().to_string(),
        ));
        return headers;
    }
    let content_type = content_type.unwrap_or_else(|| safety::content_type(served.mime_type));
    headers.push((
        "Content-Disposition".into(),
        safety::content_disposition(&content_type, served.name),
    ));
    headers.push(("Content-Type".into(), content_type));
    match reply {
        Reply::Whole | Reply::Head => headers.push(("Content-Length".into(), len.to_string())),
        Reply::Chunk(index) => {
            let (start, end) = chunk_bounds(len, index);
            headers.push(("Content-Length".into(), (end - start).to_string()));
            headers.push((
                "Content-Range".into(),
                format!("bytes {start}-{}/{len}", end - 1),
            ));
        }
        _ => {}
    }
    headers
}

/// The response for `reply` with `body`.
pub fn response(reply: Reply, served: Option<&Served>, cel: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse {
        status_code: status(reply).as_u16(),
        headers: headers(reply, served, cel),
        body: ByteBuf::from(body),
        upgrade: None,
    }
}

/// The response-verification hash of `reply`'s response whose body has
/// SHA-256 `body_hash` (the body itself is not needed).
pub fn response_hash(
    reply: Reply,
    served: Option<&Served>,
    cel: &str,
    body_hash: [u8; 32],
) -> [u8; 32] {
    let shape = ic_http_certification::HttpResponse::builder()
        .with_status_code(status(reply))
        .with_headers(headers(reply, served, cel))
        .build();
    ic_http_certification::response_hash(&shape, &cel_expression().response, Some(body_hash))
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(len: u64) -> Served<'static> {
        Served {
            byte_len: len,
            sha256: &[0xab; 32],
            mime_type: "video/webm",
            name: "clip.webm",
        }
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn chunks_cover_the_file_exactly() {
        assert_eq!(chunk_count(0), 0);
        assert_eq!(chunk_count(1), 1);
        assert_eq!(chunk_count(SERVE_CHUNK_BYTES), 1);
        assert_eq!(chunk_count(SERVE_CHUNK_BYTES + 1), 2);
        assert_eq!(chunk_bounds(5_000_000, 2), (4_000_000, 5_000_000));
        assert_eq!(chunk_bounds(5_000_000, 0), (0, 2_000_000));
    }

    #[test]
    fn chunk_replies_say_which_bytes_they_hold() {
        let h = headers(Reply::Chunk(1), Some(&served(5_000_000)), "cel");
        assert_eq!(
            header(&h, "Content-Range"),
            Some("bytes 2000000-3999999/5000000")
        );
        assert_eq!(header(&h, "Content-Length"), Some("2000000"));
        assert_eq!(header(&h, "Accept-Ranges"), Some("bytes"));
        assert_eq!(header(&h, "Content-Type"), Some("video/webm"));
        assert_eq!(header(&h, "X-Content-Type-Options"), Some("nosniff"));
        // A video opened on its own must load itself: no CSP for plain media.
        assert_eq!(header(&h, "Content-Security-Policy"), None);
        assert_eq!(header(&h, "Access-Control-Allow-Origin"), Some("*"));
        assert!(header(&h, "Cache-Control").unwrap().contains("immutable"));
        assert_eq!(header(&h, "ETag").unwrap().len(), 66);
        let last = headers(Reply::Chunk(2), Some(&served(5_000_000)), "cel");
        assert_eq!(
            header(&last, "Content-Range"),
            Some("bytes 4000000-4999999/5000000")
        );
        assert_eq!(header(&last, "Content-Length"), Some("1000000"));
    }

    #[test]
    fn head_unsatisfiable_and_errors_have_their_headers() {
        let head = headers(Reply::Head, Some(&served(7)), "cel");
        assert_eq!(header(&head, "Content-Length"), Some("7"));
        assert_eq!(header(&head, "Content-Range"), None);
        let unsat = headers(Reply::Unsatisfiable, Some(&served(7)), "cel");
        assert_eq!(header(&unsat, "Content-Range"), Some("bytes */7"));
        let gone = headers(Reply::NotFound, Some(&served(7)), "cel");
        assert_eq!(header(&gone, "ETag"), None);
        assert_eq!(header(&gone, "Cache-Control"), Some("no-store"));
        let method = headers(Reply::MethodNotAllowed, None, "cel");
        assert_eq!(header(&method, "Allow"), Some("GET, HEAD"));
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let tag = etag(&[1, 2]);
        assert_eq!(tag, "\"0102\"");
        assert!(etag_matches("\"0102\"", &tag));
        assert!(etag_matches("W/\"0102\"", &tag));
        assert!(etag_matches("\"ffff\", \"0102\"", &tag));
        assert!(etag_matches("*", &tag));
        assert!(!etag_matches("\"0103\"", &tag));
        assert!(!etag_matches("0102", &tag));
    }
}
