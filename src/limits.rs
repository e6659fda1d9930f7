//! The limits in force, with their defaults. Controllers change them with
//! `admin_set_limits`; they are stored in stable memory.

use crate::stable_memory::{BLOB_STORE_CAPACITY_BYTES, STABLE_MEMORY_CAPACITY_BYTES};
use candid::CandidType;
use serde::{Deserialize, Serialize};

/// The unit of the blob store's space management: blobs occupy whole
/// blocks.
pub const BLOB_BLOCK_BYTES: u64 = 4096;

/// Bytes a blob of `byte_len` bytes reserves (rounded up to whole blocks,
/// saturating at `u64::MAX`): what it counts against a capacity.
pub const fn reserved_bytes(byte_len: u64) -> u64 {
    byte_len
        .div_ceil(BLOB_BLOCK_BYTES)
        .saturating_mul(BLOB_BLOCK_BYTES)
}

/// What reading one run of a blob costs beside its bytes, in bytes of
/// hashing (about 76 instructions each): a map step and a stable read,
/// measured at about 3 800 instructions on the release `.wasm`. Budgets
/// counted in bytes add it per run, so chunks sent far apart (one run
/// each) cannot make a bounded step unbounded.
pub const READ_RUN_COST_BYTES: u64 = 64;

/// Most extents one blob may occupy. The record is decoded on every chunk
/// write, so it must stay small (here at most 522 bytes).
pub const MAX_EXTENTS_PER_BLOB: usize = 32;

/// The largest chunk any upload may use: the IC accepts ingress messages of
/// up to 2 MiB, and the signed request envelope plus the Candid encoding of
/// the other arguments need room beside the bytes (dfx and Juno use the
/// same figure).
pub const MAX_CHUNK_BYTES: u32 = 1_900_000;

/// The largest byte range one read returns: a replicated reply may be 2 MiB.
pub const MAX_READ_BYTES: u64 = 1_900_000;

/// Hashing costs about 76 instructions a byte, 80 with reading it back from
/// stable memory. Messages hash at most this many bytes beyond the chunk they
/// carry (measured: at most 2.7 B instructions for the whole message), so a
/// message that catches up on out-of-order chunks stays far below the 40 B
/// instruction limit whatever the file size.
pub const HASH_BYTES_PER_MESSAGE: u64 = 32 * 1024 * 1024;

/// Times one upload may have its whole file re-hashed after replacing
/// chunks that were already hashed: each `uploads_finish` after such a
/// replacement starts one re-hash, so the hashing a client can make the
/// canister do in repair mode is at most this many hashes of its file.
pub const MAX_REPAIR_ROUNDS: u32 = 8;

/// Sessions expired or pruned per timer run; more wait for the next run.
pub const SWEEP_BATCH: usize = 64;

/// Uploads whose hashing one timer run advances.
pub const HASH_BACKLOG_BATCH: usize = 16;

/// Placement entries of freed blobs one timer run removes (a blob has one
/// per chunk it received; measured at about 0.1 B instructions a batch).
pub const FORGET_PIECES_BATCH: usize = 4_096;

/// How often the timer expires idle sessions, prunes old records and
/// catches up on hashing and certification.
pub const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Longest file name, MIME type and idempotency key an upload may have.
pub const MAX_NAME_BYTES: usize = 1024;
pub const MAX_MIME_BYTES: usize = 256;
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 128;

/// Longest capsule name accepted.
pub const MAX_CAPSULE_NAME_BYTES: usize = 256;

/// Largest thumbnail: a JPEG or WebP preview, not a second copy.
pub const MAX_THUMBNAIL_BYTES: usize = 32 * 1024;

/// Bytes of a link's secret: 128 random bits.
pub const SECRET_BYTES: usize = 16;
/// Links one memory may have at once.
pub const MAX_LINKS_PER_MEMORY: u64 = 32;
/// Certified responses all shared memories together may have: a memory
/// has one per serving chunk plus 5 (6 for a file of one chunk) whatever
/// its number of links. Caps the certification tree's heap (about 185
/// bytes a response) and the work of rebuilding it after an upgrade (0.6
/// to 0.7 M instructions a response, growing with the log of the tree: see
/// docs/serving.md).
pub const MAX_CERTIFIED_ENTRIES: u64 = 50_000;
/// What certifying one response counts against the hashing budget of a
/// message (`HASH_BYTES_PER_MESSAGE`): measured about 0.6 M instructions
/// (a response hash and a tree insertion), the price of hashing 8 KiB;
/// counted double.
pub const CERTIFY_COST_BYTES: u64 = 16 * 1024;
/// Expired links removed per maintenance run.
pub const EXPIRY_BATCH: usize = 64;
/// Bytes per serving chunk: the asset canister's `ASSET_CHUNK_SIZE`, so the
/// HTTP gateway streams a long memory exactly as it streams a long asset
/// (first a 206 for `bytes 0-1999999/len`, then `Range: bytes=N-`
/// requests for the rest). A chunk fits a query reply with room to spare.
pub const SERVE_CHUNK_BYTES: u64 = 2_000_000;

/// Argument sizes `canister_inspect_message` admits (`crate::admission`).
/// Room for the Candid header, type table and the small fields beside a
/// chunk's bytes (a full `uploads_put_chunk` uses under 300 bytes of it).
pub const CHUNK_ARG_OVERHEAD_BYTES: usize = 1024;
/// Largest argument of every method but those that carry bytes
/// (`uploads_put_chunk`, and `uploads_begin` and `memories_set_thumbnail`
/// with a thumbnail): the longest valid `uploads_begin` without a
/// thumbnail (name, MIME type, key and digest at their maxima) encodes to
/// under 2 KiB.
pub const SMALL_ARG_BYTES: usize = 8 * 1024;
/// Largest `uploads_begin` argument: the rest of the record as for any
/// small argument, and a thumbnail.
pub const BEGIN_ARG_BYTES: usize = SMALL_ARG_BYTES + MAX_THUMBNAIL_BYTES;
/// Room for the Candid header, type table, memory id and MIME type beside
/// a thumbnail's bytes (a full `memories_set_thumbnail` uses under 100).
pub const THUMBNAIL_ARG_OVERHEAD_BYTES: usize = 1024;

/// Most ranges or records one paginated reply carries.
pub const MAX_PAGE: u32 = 1_000;

/// Most bytes of memory records (thumbnails included) one `memories_list`
/// page carries: replies may be 2 MiB, and this leaves room for the rest
/// of the reply and for the estimate's slack.
pub const MAX_LIST_REPLY_BYTES: usize = 1_536 * 1024;

/// Chunks a session may ever have: bounds the bitmap a session keeps (and
/// clears when pruned) to 256 blocks.
pub const MAX_CHUNKS_PER_SESSION: u32 = 1 << 20;

/// Every upload is charged at least one block, and whole blocks: the blob
/// store hands out whole blocks, and records cost space too.
pub const MIN_CHARGED_BYTES: u64 = BLOB_BLOCK_BYTES;

/// Bytes an upload of `byte_len` bytes counts against the quotas: what its
/// blob reserves, and at least one block.
pub fn charged_bytes(byte_len: u64) -> u64 {
    reserved_bytes(byte_len).max(MIN_CHARGED_BYTES)
}

pub const GIB: u64 = 1 << 30;

/// The highest `max_total_bytes` accepted: the blob store's capacity less a
/// margin, so that block rounding and mapping overhead stay within it.
pub const MAX_TOTAL_BYTES: u64 = BLOB_STORE_CAPACITY_BYTES - 8 * GIB;
const HOUR_NS: u64 = 3_600 * 1_000_000_000;

/// Half the default total: open sessions can never hold more than that.
pub const DEFAULT_MAX_RESERVED_BYTES_TOTAL: u64 = 96 * GIB;

/// A caller's reservations by default: one twenty-fourth of the cap on all
/// reservations, so that holding every reservation (and blocking others'
/// uploads) takes twenty-four principals, each of which keeps its sessions
/// only while they make progress. The largest file is what one caller may
/// reserve.
pub const DEFAULT_MAX_RESERVED_BYTES_PER_CALLER: u64 = DEFAULT_MAX_RESERVED_BYTES_TOTAL / 24;

/// Limits enforced at `uploads_begin` and on every chunk.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_file_bytes: u64,
    /// At most `MAX_CHUNK_BYTES`.
    pub max_chunk_bytes: u32,
    pub max_chunks_per_session: u32,
    pub max_open_sessions_per_caller: u32,
    /// Bytes a caller may have reserved by open sessions at once.
    pub max_reserved_bytes_per_caller: u64,
    /// Bytes reserved and stored by everyone together.
    pub max_total_bytes: u64,
    /// Bytes reserved by everyone's open sessions together, so uploads in
    /// flight (not yet paid for with data) cannot crowd out the rest.
    /// Optional in Candid only because layout 1 had no such field: layout
    /// 2 sets it when it migrates, and `None` means no cap of its own.
    pub max_reserved_bytes_total: Option<u64>,
    pub max_writers_per_capsule: u32,
    /// Bytes of committed memories a caller may have uploaded.
    pub max_stored_bytes_per_caller: u64,
    pub max_capsules_per_owner: u32,
    /// A pending session with no chunk for this long expires.
    pub session_idle_timeout_ns: u64,
    /// Finished session records are kept this long, then pruned.
    pub finished_retention_ns: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_bytes: DEFAULT_MAX_RESERVED_BYTES_PER_CALLER,
            max_chunk_bytes: MAX_CHUNK_BYTES,
            max_chunks_per_session: 65_536,
            max_open_sessions_per_caller: 16,
            max_reserved_bytes_per_caller: DEFAULT_MAX_RESERVED_BYTES_PER_CALLER,
            // Well below MAX_TOTAL_BYTES.
            max_total_bytes: 192 * GIB,
            max_reserved_bytes_total: Some(DEFAULT_MAX_RESERVED_BYTES_TOTAL),
            max_writers_per_capsule: 32,
            max_stored_bytes_per_caller: 128 * GIB,
            max_capsules_per_owner: 64,
            session_idle_timeout_ns: 24 * HOUR_NS,
            finished_retention_ns: 24 * HOUR_NS,
        }
    }
}

impl Limits {
    /// Rejects settings the canister could not honour.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_chunk_bytes == 0 || self.max_chunk_bytes > MAX_CHUNK_BYTES {
            return Err(format!("max_chunk_bytes must be in 1..={MAX_CHUNK_BYTES}"));
        }
        if self.max_chunks_per_session == 0 || self.max_chunks_per_session > MAX_CHUNKS_PER_SESSION
        {
            return Err(format!(
                "max_chunks_per_session must be in 1..={MAX_CHUNKS_PER_SESSION}"
            ));
        }
        if self.max_capsules_per_owner > MAX_PAGE {
            return Err(format!("max_capsules_per_owner must be at most {MAX_PAGE}"));
        }
        if self.session_idle_timeout_ns == 0 {
            return Err("session_idle_timeout_ns must be positive".into());
        }
        if self.max_total_bytes > MAX_TOTAL_BYTES {
            return Err(format!(
                "max_total_bytes must be at most {MAX_TOTAL_BYTES} bytes, leaving room below \
                 the {} GiB the MemoryManager addresses",
                STABLE_MEMORY_CAPACITY_BYTES / GIB
            ));
        }
        Ok(())
    }
}
