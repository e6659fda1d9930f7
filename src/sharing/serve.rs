//! The sharing endpoints over the state: creating, listing and revoking
//! links (`memories_share`, `memories_shares`, `memories_unshare`), the
//! bounded certification work the timers run, and `http_request`.

use super::links::*;
use crate::blob_store::READ_RUN_COST_BYTES;
use crate::endpoint_error;
use crate::http::{self, range::RangeRequest, HttpRequest, HttpResponse, Reply};
use crate::limits::{
    CERTIFY_COST_BYTES, EXPIRY_BATCH, HASH_BYTES_PER_MESSAGE, MAX_LINKS_PER_MEMORY, SECRET_BYTES,
};
use crate::state::State;
use crate::types::{MemoryItemId, MemoryRecord};
use candid::Principal;
use ic_http_certification::HttpCertificationPath;
use ic_stable_structures::Memory;
use serde_bytes::ByteBuf;
use subtle::ConstantTimeEq;

endpoint_error! {
    /// What `memories_share` can answer.
    pub enum CreateShareError: ShareError for "memories_share" {
        RandomnessUnavailable { reason: String },
        AnonymousCaller,
        MemoryNotFound { memory_id: MemoryItemId },
        NotAuthorized,
        InvalidArgument { reason: String },
        TooManyLinks { limit: u64 },
        CapacityExhausted { needed: u64, available: u64 },
    }
}

endpoint_error! {
    /// What `memories_shares` can answer.
    pub enum ListSharesError: ShareError for "memories_shares" {
        AnonymousCaller,
        MemoryNotFound { memory_id: MemoryItemId },
        NotAuthorized,
    }
}

endpoint_error! {
    /// What `memories_unshare` can answer.
    pub enum UnshareError: ShareError for "memories_unshare" {
        LinkNotFound { link_id: u64 },
        AnonymousCaller,
        NotAuthorized,
    }
}

/// What `http_request` decided, before reading bytes or certifying.
struct Decision {
    scope: HttpCertificationPath<'static>,
    reply: Reply,
    /// The link's memory, for replies about a file.
    memory: Option<MemoryRecord>,
}

/// The memory, if `caller` may manage its links: the owner of its capsule
/// or its uploader.
fn managed_memory<M: Memory + Clone>(
    state: &State<M>,
    caller: Principal,
    memory_id: MemoryItemId,
) -> Result<MemoryRecord, ShareError> {
    if caller == Principal::anonymous() {
        return Err(ShareError::AnonymousCaller);
    }
    let record = state
        .memories
        .get(memory_id)
        .ok_or(ShareError::MemoryNotFound { memory_id })?;
    let owner = state
        .capsules
        .get(record.capsule_id)
        .map_err(|_| ShareError::MemoryNotFound { memory_id })?
        .owner;
    if caller != owner && caller != record.uploaded_by {
        return Err(ShareError::NotAuthorized);
    }
    Ok(record)
}

fn share_link<M: Memory + Clone>(
    state: &State<M>,
    link_id: u64,
    record: &ShareRecord,
) -> ShareLink {
    ShareLink {
        link_id,
        memory_id: record.memory_id,
        path: link_path(record.memory_id, link_id, &record.secret),
        created_by: record.created_by,
        created_at: record.created_at,
        expires_at: record.expires_at,
        ready: state.shares.chunks_certified(record.memory_id),
    }
}

/// Creates a link to a memory with the given secret (128 bits from the
/// canister's CSPRNG). The memory's first link certifies its responses at
/// once when its chunk hashes exist; otherwise hashes up to
/// `HASH_BYTES_PER_MESSAGE` now and leaves the rest to `certify_work`.
/// Further links certify nothing.
pub fn share<M: Memory + Clone>(
    state: &mut State<M>,
    caller: Principal,
    now: u64,
    memory_id: MemoryItemId,
    expires_at: Option<u64>,
    secret: [u8; SECRET_BYTES],
) -> Result<ShareLink, CreateShareError> {
    let mut create = || -> Result<ShareLink, ShareError> {
        let record = managed_memory(state, caller, memory_id)?;
        if expires_at.is_some_and(|at| at <= now) {
            return Err(ShareError::InvalidArgument {
                reason: "expires_at is not in the future".into(),
            });
        }
        if state.shares.links_of(memory_id).len() as u64 >= MAX_LINKS_PER_MEMORY {
            return Err(ShareError::TooManyLinks {
                limit: MAX_LINKS_PER_MEMORY,
            });
        }
        let entries = entries_for(record.byte_len);
        let available = state.shares.entries_available();
        let first = !state.shares.is_shared(memory_id);
        if first && entries > available {
            return Err(ShareError::CapacityExhausted {
                needed: entries,
                available,
            });
        }
        let stored = ShareRecord {
            memory_id,
            secret: ByteBuf::from(secret.to_vec()),
            created_by: caller,
            created_at: now,
            expires_at,
            entries,
        };
        let link_id = state.shares.insert(stored.clone());
        if first {
            start_certifying(state, &record);
        }
        Ok(share_link(state, link_id, &stored))
    };
    create().map_err(CreateShareError::narrow)
}

/// The links of a memory (owner or uploader).
pub fn shares<M: Memory + Clone>(
    state: &State<M>,
    caller: Principal,
    memory_id: MemoryItemId,
) -> Result<Vec<ShareLink>, ListSharesError> {
    managed_memory(state, caller, memory_id).map_err(ListSharesError::narrow)?;
    Ok(state
        .shares
        .links_of(memory_id)
        .into_iter()
        .filter_map(|id| Some(share_link(state, id, &state.shares.link(id)?)))
        .collect())
}

/// Revokes a link: from this message on its path answers 404.
pub fn unshare<M: Memory + Clone>(
    state: &mut State<M>,
    caller: Principal,
    link_id: u64,
) -> Result<(), UnshareError> {
    let mut revoke = || -> Result<(), ShareError> {
        let record = state
            .shares
            .link(link_id)
            .ok_or(ShareError::LinkNotFound { link_id })?;
        managed_memory(state, caller, record.memory_id)?;
        state.shares.remove(link_id);
        Ok(())
    };
    revoke().map_err(UnshareError::narrow)
}

/// Removes a deleted memory's links and chunk hashes: `memories_delete`
/// calls it.
pub fn forget<M: Memory + Clone>(state: &mut State<M>, record: &MemoryRecord) {
    for link_id in state.shares.links_of(record.memory_id) {
        state.shares.remove(link_id);
    }
    state
        .shares
        .forget_hashes(record.memory_id, http::chunk_count(record.byte_len));
}

/// Bounded sharing work for a timer: certifies queued chunks (hashing
/// those without a stored hash), and removes up to `EXPIRY_BATCH` expired
/// links. True when work is left.
pub fn certify_work<M: Memory + Clone>(state: &mut State<M>, now: u64) -> bool {
    let expired = state.shares.expired(now, EXPIRY_BATCH);
    let more_expired = expired.len() == EXPIRY_BATCH;
    for link_id in expired {
        state.shares.remove(link_id);
    }
    certify_queued(state, HASH_BYTES_PER_MESSAGE);
    more_expired || state.shares.has_queued_work()
}

/// A memory's first link: its fixed replies are certified now (so its scope
/// answers a certified 404 until the rest is done), its chunks in
/// `certify_queued` steps, starting in this message.
fn start_certifying<M: Memory + Clone>(state: &mut State<M>, record: &MemoryRecord) {
    let memory_id = record.memory_id;
    state
        .shares
        .certify_without_chunk_hashes(memory_id, &served(record));
    if http::chunk_count(record.byte_len) > 1 {
        state.shares.queue_chunks(memory_id);
        certify_queued(state, HASH_BYTES_PER_MESSAGE);
    }
}

/// Certifies queued chunks for about `budget` bytes of work: a chunk whose
/// hash must be computed costs its length and its runs
/// (`READ_RUN_COST_BYTES` each), one whose hash is stored costs
/// `CERTIFY_COST_BYTES`. A memory no longer shared leaves the queue (its
/// hashes so far are kept for a later link).
fn certify_queued<M: Memory + Clone>(state: &mut State<M>, budget: u64) {
    let mut spent = 0u64;
    let mut buf = Vec::new();
    while spent < budget {
        let Some((memory_id, index)) = state.shares.next_queued() else {
            return;
        };
        let record = match state.memories.get(memory_id) {
            Some(record) if state.shares.is_shared(memory_id) => record,
            _ => {
                state.shares.set_queued(memory_id, None);
                continue;
            }
        };
        if state.shares.stored_chunk_hash(memory_id, index).is_none() {
            let (start, end) = http::chunk_bounds(record.byte_len, index);
            buf.resize((end - start) as usize, 0);
            let runs = state
                .blobs
                .read(record.blob_id, start, &mut buf)
                .expect("bug: a memory's blob is shorter than the memory");
            state
                .shares
                .store_chunk_hash(memory_id, index, http::sha256(&buf));
            spent += end - start + runs * READ_RUN_COST_BYTES;
        }
        state
            .shares
            .certify(memory_id, &served(&record), Reply::Chunk(index));
        spent += CERTIFY_COST_BYTES;
        let next = index + 1;
        let left = next < http::chunk_count(record.byte_len);
        state.shares.set_queued(memory_id, left.then_some(next));
    }
}

/// The certified data: the certification tree's root hash.
pub fn certified_data<M: Memory + Clone>(state: &State<M>) -> [u8; 32] {
    state.shares.root_hash()
}

/// Answers an HTTP request. `certificate` is the subnet's certificate of
/// the certified data (`data_certificate()` in a query); without it (a
/// replicated call) the response carries no `IC-Certificate`.
pub fn http_request<M: Memory + Clone>(
    state: &State<M>,
    request: &HttpRequest,
    now: u64,
    certificate: Option<&[u8]>,
) -> HttpResponse {
    // A URL that does not parse, or whose path is not absolute, is
    // answered as the root.
    let path = request
        .path()
        .filter(|p| p.starts_with('/'))
        .unwrap_or_else(|| "/".into());
    let decision = decide(state, request, &path, now);
    let served = decision.memory.as_ref().map(served);
    let body = match (
        http::body_range(decision.reply, served.map_or(0, |s| s.byte_len)),
        &decision.memory,
    ) {
        (Some((start, end)), Some(record)) => {
            let mut buf = vec![0u8; (end - start) as usize];
            state
                .blobs
                .read(record.blob_id, start, &mut buf)
                .expect("bug: a memory's blob is shorter than the memory");
            buf
        }
        _ => http::fixed_body(decision.reply).to_vec(),
    };
    let mut response = http::response(decision.reply, served.as_ref(), state.shares.cel(), body);
    if let Some(certificate) = certificate {
        let body_hash = match (&decision.memory, &served) {
            (Some(record), Some(served)) => {
                state
                    .shares
                    .body_hash(record.memory_id, served, decision.reply)
            }
            _ => http::sha256(http::fixed_body(decision.reply)),
        };
        let entry = state
            .shares
            .entry(decision.scope, decision.reply, served.as_ref(), body_hash);
        // Cannot fail for a path starting with `/` (every scope chosen is a
        // prefix of it); a response without a certificate is refused by the
        // gateway, which is all a malformed URL deserves.
        let Ok(witness) = state.shares.tree().witness(&entry, &path) else {
            return response;
        };
        let expr_path =
            ic_http_certification::utils::cbor_encode_to_base64(&entry.path.to_expr_path());
        response.headers.push((
            ic_http_certification::CERTIFICATE_HEADER_NAME.into(),
            ic_http_certification::utils::build_v2_certificate_header_value(
                certificate,
                &witness,
                &expr_path,
            ),
        ));
    }
    response
}

/// Which certified reply answers `request`.
fn decide<M: Memory + Clone>(
    state: &State<M>,
    request: &HttpRequest,
    path: &str,
    now: u64,
) -> Decision {
    let is_head = request.method.eq_ignore_ascii_case("HEAD");
    let allowed = is_head || request.method.eq_ignore_ascii_case("GET");
    let not_found = |scope| Decision {
        scope,
        reply: if allowed {
            Reply::NotFound
        } else {
            Reply::MethodNotAllowed
        },
        memory: None,
    };
    // The most specific certified scope covering the path: the
    // memory's while it is shared and certified, else the root.
    let (scope, ready) = match path_memory(path) {
        Some(memory_id) if state.shares.is_shared(memory_id) => (
            memory_scope(memory_id),
            state.shares.chunks_certified(memory_id),
        ),
        _ => return not_found(root_scope()),
    };
    if !ready {
        // Certification still running: only the fixed replies are in.
        return not_found(scope);
    }
    let Some((memory_id, link_id, secret)) = parse_link_path(path) else {
        return not_found(scope);
    };
    let Some(link) = state.shares.link(link_id) else {
        return not_found(scope);
    };
    let secret_matches: bool = link.secret.as_slice().ct_eq(&secret[..]).into();
    let live = link.expires_at.is_none_or(|at| now < at);
    let record = match state.memories.get(memory_id) {
        Some(record) if link.memory_id == memory_id && secret_matches && live && allowed => record,
        _ => return not_found(scope),
    };
    let etag = http::etag(&record.sha256);
    let reply = if request
        .header("If-None-Match")
        .is_some_and(|h| http::etag_matches(h, &etag))
    {
        Reply::NotModified
    } else if is_head {
        Reply::Head
    } else {
        // A stale `If-Range` validator means: send the whole file.
        let range = match request.header("If-Range") {
            Some(validator) if validator.trim() != etag => None,
            _ => request.header("Range"),
        };
        let whole = if record.byte_len <= http::SERVE_CHUNK_BYTES {
            Reply::Whole
        } else {
            Reply::Chunk(0)
        };
        match http::range::parse_range(range, record.byte_len) {
            RangeRequest::Whole => whole,
            RangeRequest::Unsatisfiable => Reply::Unsatisfiable,
            RangeRequest::From(first) => Reply::Chunk((first / http::SERVE_CHUNK_BYTES) as u32),
        }
    };
    Decision {
        scope,
        reply,
        memory: Some(record),
    }
}
