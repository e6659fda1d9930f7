//! One verified exchange with the canister, and the follow-up requests of a
//! long asset. Synchronous: the server runs these on blocking threads.
//!
//! # Long assets
//! Like the IC's HTTP gateway (`ic-http-gateway`), a request *without*
//! `Range` whose answer is `206 Partial Content` means "this is the first
//! chunk of a longer body": the gateway reads `Content-Range: bytes
//! a-b/total` and asks again with the client's headers plus `Range:
//! bytes=N-` (N the next byte) until it has `total` bytes, and hands the
//! client one body of `total` bytes. Every follow-up is verified like the
//! first (as `ic-http-gateway` 0.4 does too) and, stricter than the crate,
//! must be a 206 continuing exactly where the previous one ended (certified
//! `Content-Range`, same total, body of the announced length). A client
//! that sends `Range` itself gets the canister's verified 206 as it is (a
//! video element seeking).

use crate::canister::{CanisterResponse, HttpCanister};
use http::StatusCode;
use ic_http_certification::{HttpRequest, HttpResponse};
use ic_response_verification::verify_request_response_pair;
use std::fmt;

/// Certificates older or newer than this (relative to the canister's
/// clock) are refused, as by the IC's gateway.
pub const MAX_CERT_TIME_OFFSET_NS: u128 = 300_000_000_000;

/// Response verification version asked for and required.
pub const VERIFICATION_VERSION: u16 = 2;

/// Bound on follow-up requests for one long asset (the IC's gateway stops
/// at 1000 as well).
pub const MAX_FOLLOW_UPS: u64 = 1000;

/// Why the gateway answers with an error instead of the canister's
/// response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayError {
    /// The query failed (reject, trap, undecodable reply).
    Canister(String),
    /// The response failed verification: it is never passed on.
    Verification(String),
    /// The response is verified but not usable (a broken chunk sequence,
    /// callback streaming, an upgrade to an update call).
    Protocol(String),
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GatewayError::Canister(m) => write!(f, "canister error: {m}"),
            GatewayError::Verification(m) => write!(f, "response verification failed: {m}"),
            GatewayError::Protocol(m) => write!(f, "unusable response: {m}"),
        }
    }
}

impl std::error::Error for GatewayError {}

/// A response that passed verification: only what the certificate covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedResponse {
    /// Certified status code.
    pub status_code: u16,
    /// Certified headers (`IC-Certificate` among them).
    pub headers: Vec<(String, String)>,
    /// Certified body.
    pub body: Vec<u8>,
}

impl VerifiedResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// The first value of header `name` (case-insensitive) in `headers`.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Asks the canister and verifies its answer against its certificate, the
/// root key and the clock (certification v2: status, the certified headers
/// and the body).
pub fn fetch_verified(
    canister: &dyn HttpCanister,
    request: &HttpRequest<'static>,
) -> Result<VerifiedResponse, GatewayError> {
    let response = canister
        .http_request(request)
        .map_err(GatewayError::Canister)?;
    verify(canister, request, response)
}

/// Verifies `response` as the answer to `request`.
pub fn verify(
    canister: &dyn HttpCanister,
    request: &HttpRequest<'static>,
    response: CanisterResponse,
) -> Result<VerifiedResponse, GatewayError> {
    if response.upgrade == Some(true) {
        return Err(GatewayError::Protocol(
            "the canister asks for an update call (upgrade), which this gateway does not make"
                .into(),
        ));
    }
    if response.has_streaming_strategy {
        return Err(GatewayError::Protocol(
            "callback streaming cannot be verified; long assets must be served in ranges".into(),
        ));
    }
    let status = StatusCode::from_u16(response.status_code).map_err(|_| {
        GatewayError::Protocol(format!("invalid status code {}", response.status_code))
    })?;
    let raw_headers = response.headers.clone();
    let candidate = HttpResponse::builder()
        .with_status_code(status)
        .with_headers(response.headers)
        .with_body(response.body)
        .build();
    let info = verify_request_response_pair(
        request.clone(),
        candidate.clone(),
        canister.canister_id().as_slice(),
        canister.time_ns() as u128,
        MAX_CERT_TIME_OFFSET_NS,
        &canister.root_key(),
        VERIFICATION_VERSION as u8,
    )
    .map_err(|e| GatewayError::Verification(with_causes(&e)))?;
    if info.verification_version < VERIFICATION_VERSION {
        return Err(GatewayError::Verification(format!(
            "verified with version {} only; version {VERIFICATION_VERSION} is required",
            info.verification_version
        )));
    }
    Ok(match info.response {
        Some(v) => VerifiedResponse {
            status_code: v.status_code.unwrap_or(response.status_code),
            headers: v.headers,
            body: v.body,
        },
        // The canister certified that this response needs no verification
        // (the `skip` certification); it is passed on as it came.
        None => VerifiedResponse {
            status_code: response.status_code,
            headers: raw_headers
                .into_iter()
                .filter(|(n, _)| !is_certificate_header(n))
                .collect(),
            body: candidate.body().to_vec(),
        },
    })
}

/// An error's message followed by those of its causes (the verifier's
/// "Certificate verification failed" says why only in its source).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// `IC-Certificate` or `IC-CertificateExpression`.
pub fn is_certificate_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("ic-certificate")
        || name.eq_ignore_ascii_case("ic-certificateexpression")
}

/// A parsed `Content-Range: bytes first-last/total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRange {
    /// First byte.
    pub first: u64,
    /// Last byte (inclusive).
    pub last: u64,
    /// Length of the whole representation.
    pub total: u64,
}

impl ContentRange {
    /// Parses `bytes first-last/total` (RFC 9110 §14.4); `None` for
    /// anything else (an unsatisfied `bytes */total` included).
    pub fn parse(value: &str) -> Option<ContentRange> {
        let rest = value.trim().strip_prefix("bytes")?.trim_start();
        let (range, total) = rest.split_once('/')?;
        let (first, last) = range.split_once('-')?;
        let number = |s: &str| -> Option<u64> {
            let s = s.trim();
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let r = ContentRange {
            first: number(first)?,
            last: number(last)?,
            total: number(total)?,
        };
        (r.first <= r.last && r.last < r.total).then_some(r)
    }

    /// Bytes in the range.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never empty (`first <= last`); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The certified `Content-Range` of a 206 response, checked against its
/// body.
pub fn chunk_range(response: &VerifiedResponse) -> Result<ContentRange, GatewayError> {
    let value = response.header("content-range").ok_or_else(|| {
        GatewayError::Protocol("206 response without a certified Content-Range".into())
    })?;
    let range = ContentRange::parse(value).ok_or_else(|| {
        GatewayError::Protocol(format!(
            "malformed Content-Range {value:?} in a 206 response"
        ))
    })?;
    if range.len() != response.body.len() as u64 {
        return Err(GatewayError::Protocol(format!(
            "Content-Range {value:?} announces {} bytes, the body has {}",
            range.len(),
            response.body.len()
        )));
    }
    Ok(range)
}

/// Whether the client asked for a part itself (`Range` or `If-Range`):
/// then a 206 is passed on as it is.
pub fn is_range_request(request: &HttpRequest<'static>) -> bool {
    request
        .headers()
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("range") || n.eq_ignore_ascii_case("if-range"))
}

/// The request for the bytes from `next` on: the client's request plus
/// `Range: bytes=next-`.
pub fn follow_up_request(original: &HttpRequest<'static>, next: u64) -> HttpRequest<'static> {
    let mut headers = original.headers().to_vec();
    headers.push(("Range".to_string(), format!("bytes={next}-")));
    HttpRequest::builder()
        .with_method(original.method().clone())
        .with_url(original.url())
        .with_headers(headers)
        .with_body(original.body().to_vec())
        .with_certificate_version(VERIFICATION_VERSION)
        .build()
}

/// Fetches and verifies the chunk that starts at `next` of a long asset of
/// `total` bytes.
pub fn fetch_follow_up(
    canister: &dyn HttpCanister,
    original: &HttpRequest<'static>,
    next: u64,
    total: u64,
) -> Result<Vec<u8>, GatewayError> {
    let request = follow_up_request(original, next);
    let response = fetch_verified(canister, &request)?;
    if response.status_code != 206 {
        return Err(GatewayError::Protocol(format!(
            "follow-up request for bytes {next}- answered {} instead of 206",
            response.status_code
        )));
    }
    let range = chunk_range(&response)?;
    if range.first != next || range.total != total {
        return Err(GatewayError::Protocol(format!(
            "follow-up for bytes {next}- of {total} answered bytes {}-{}/{}",
            range.first, range.last, range.total
        )));
    }
    Ok(response.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parses_only_satisfied_byte_ranges() {
        assert_eq!(
            ContentRange::parse("bytes 0-9/10"),
            Some(ContentRange {
                first: 0,
                last: 9,
                total: 10
            })
        );
        assert_eq!(
            ContentRange::parse("bytes  100-2000/3000").map(|r| r.len()),
            Some(1901)
        );
        for bad in [
            "bytes */10",
            "bytes 5-4/10",
            "bytes 0-10/10",
            "bytes 1-2",
            "items 0-1/2",
            "bytes -1-2/3",
            "bytes 0-+1/3",
            "bytes 0-99999999999999999999999/3",
        ] {
            assert_eq!(ContentRange::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_follow_up_request_adds_an_open_range() {
        let original = HttpRequest::get("/s/x?a=1")
            .with_headers(vec![("Accept".into(), "*/*".into())])
            .build();
        let r = follow_up_request(&original, 2_000_000);
        assert_eq!(r.url(), "/s/x?a=1");
        assert_eq!(
            r.headers(),
            &[
                ("Accept".to_string(), "*/*".to_string()),
                ("Range".to_string(), "bytes=2000000-".to_string())
            ]
        );
        assert!(is_range_request(&r) && !is_range_request(&original));
        assert_eq!(r.certificate_version(), Some(2));
    }
}
