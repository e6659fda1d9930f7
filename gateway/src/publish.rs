//! Putting files behind the gateway: upload with the project's Rust client,
//! share, and wait until the link is served (the canister hashes a
//! memory's serving chunks in timer steps before it certifies a link).

use backend::sharing::links::{ShareError, ShareLink};
use backend::upload::{AssetMetadata, BeginUpload, CapsuleId, MemoryItemId, UploadError};
use candid::Principal;
use upload_harness::client::UploadClient;
use upload_harness::{query, update, IcEnv};

/// Upload chunk size (the canister's maximum is 1.9 MB).
pub const UPLOAD_CHUNK: u32 = 1_000_000;

/// Bound on timer rounds while waiting for finish or a link.
const MAX_ROUNDS: usize = 10_000;

/// Uploads `data` as `name` (`mime_type`) into `capsule` as `caller`;
/// returns the memory id.
pub fn upload(
    env: &mut dyn IcEnv,
    canister: Principal,
    caller: Principal,
    capsule: CapsuleId,
    name: &str,
    mime_type: &str,
    data: &[u8],
) -> Result<MemoryItemId, String> {
    let len = data.len() as u64;
    let mut client = UploadClient::new(env, canister, caller);
    let started = client
        .begin_request(BeginUpload {
            capsule_id: capsule,
            asset: AssetMetadata {
                name: name.into(),
                mime_type: mime_type.into(),
                byte_len: len,
                sha256: None,
            },
            chunk_size: UPLOAD_CHUNK,
            expected_chunks: len.div_ceil(u64::from(UPLOAD_CHUNK)) as u32,
            idempotency_key: format!("publish-{name}-{len}"),
        })?
        .map_err(|e| format!("uploads_begin: {e:?}"))?;
    for index in 0..started.expected_chunks {
        client
            .put_chunk_of(started.session_id, data, UPLOAD_CHUNK, index)?
            .map_err(|e| format!("uploads_put_chunk {index}: {e:?}"))?;
    }
    for _ in 0..MAX_ROUNDS {
        match client.finish(started.session_id, data)? {
            Ok(committed) => return Ok(committed.memory_id),
            Err(UploadError::VerificationPending { .. }) => client.env.tick(),
            Err(e) => return Err(format!("uploads_finish: {e:?}")),
        }
    }
    Err("uploads_finish: still pending".into())
}

/// Shares `memory` (`memories_share`) and waits (running timers) until
/// the link is served.
pub fn share(
    env: &mut dyn IcEnv,
    canister: Principal,
    caller: Principal,
    memory: MemoryItemId,
    expires_at: Option<u64>,
) -> Result<ShareLink, String> {
    let (link,): (Result<ShareLink, ShareError>,) = update(
        env,
        canister,
        caller,
        "memories_share",
        (memory, expires_at),
    )?;
    let link = link.map_err(|e| format!("memories_share: {e:?}"))?;
    for _ in 0..MAX_ROUNDS {
        let (links,): (Result<Vec<ShareLink>, ShareError>,) =
            query(env, canister, caller, "memories_shares", (memory,))?;
        let links = links.map_err(|e| format!("memories_shares: {e:?}"))?;
        match links.into_iter().find(|l| l.link_id == link.link_id) {
            Some(l) if l.ready => return Ok(l),
            Some(_) => env.tick(),
            None => return Err("the new link is not listed".into()),
        }
    }
    Err("the link never became ready".into())
}

/// Revokes a link (`memories_unshare`).
pub fn unshare(
    env: &mut dyn IcEnv,
    canister: Principal,
    caller: Principal,
    link_id: u64,
) -> Result<(), String> {
    let (r,): (Result<(), ShareError>,) =
        update(env, canister, caller, "memories_unshare", (link_id,))?;
    r.map_err(|e| format!("memories_unshare: {e:?}"))
}

/// Creates a capsule owned by `caller`.
pub fn create_capsule(
    env: &mut dyn IcEnv,
    canister: Principal,
    caller: Principal,
    name: &str,
) -> Result<CapsuleId, String> {
    let capsule = UploadClient::new(env, canister, caller)
        .create_capsule(name)?
        .map_err(|e| format!("capsules_create: {e:?}"))?;
    Ok(capsule.capsule_id)
}
