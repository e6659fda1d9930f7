//! The canister's state: every store, opened once over one stable memory.
//!
//! `State::open` is the composition root. It hands each structure the
//! stable memories it lives in (`stable_memory` names them), and it holds
//! every layout migration, each under the layout number it moves to. The
//! feature modules (`upload`, `library`, `admin`, `sharing::serve`, `jobs`)
//! are functions over `&State` or `&mut State`; nothing here knows an
//! endpoint.

use crate::blob_store::{BlobMemories, BlobStore};
use crate::error::UploadError;
use crate::layout::{self, Found, LayoutError, CURRENT_LAYOUT};
use crate::limits::{Limits, DEFAULT_MAX_RESERVED_BYTES_TOTAL, GIB};
use crate::session::{SessionMemories, SessionPolicy, SessionService};
use crate::sharing::links::{ShareMemories, ShareStore};
use crate::stable_memory::{self as ids, Headroom, StableMemories, Vm};
use crate::storable::SCOPED_KEY_BYTES;
use crate::stores::accounting::Accounting;
use crate::stores::bucket::BucketStore;
use crate::stores::capsules::CapsuleStore;
use crate::stores::hashing::HashTracker;
use crate::stores::memories::MemoryStore;
use crate::stores::thumbnails::ThumbnailStore;
use crate::types::UploadSessionMeta;
use ic_stable_structures::{Memory, StableBTreeMap};

/// Every store of the canister over stable memory `M`.
pub struct State<M: Memory> {
    pub sessions: SessionService<Vm<M>, UploadSessionMeta>,
    pub blobs: BlobStore<M>,
    pub hashing: HashTracker<M>,
    /// (caller, session) of each pending upload, for `uploads_mine`.
    pub open_by_caller: StableBTreeMap<[u8; SCOPED_KEY_BYTES], (), Vm<M>>,
    pub capsules: CapsuleStore<M>,
    pub memories: MemoryStore<M>,
    pub accounting: Accounting<M>,
    pub shares: ShareStore<M>,
    pub thumbnails: ThumbnailStore<M>,
    /// The index managing this canister as a bucket, if any, and its
    /// counters (`crate::bucket`).
    pub bucket: BucketStore<M>,
    headroom: Headroom<M>,
    /// The layout version record, for the bucket's health check.
    layout_record: Vm<M>,
}

/// How long sessions live, from the limits in force.
pub fn session_policy(limits: &Limits) -> SessionPolicy {
    SessionPolicy {
        idle_timeout_ns: limits.session_idle_timeout_ns,
        retention_ns: limits.finished_retention_ns,
    }
}

/// The blob store's memories in the canister's memory map.
pub fn blob_memories<M: Memory + Clone>(memories: &StableMemories<M>) -> BlobMemories<M> {
    BlobMemories {
        dense_data: memories.get(ids::BLOB_DATA),
        block_table: memories.get(ids::BLOB_BLOCK_TABLE),
        blocks: memories.get(ids::BLOB_BLOCKS),
        records: memories.get(ids::BLOB_TABLE),
        free_by_start: memories.get(ids::BLOB_FREE_BY_START),
        free_by_size: memories.get(ids::BLOB_FREE_BY_SIZE),
        header: memories.get(ids::BLOB_HEADER),
        pieces: memories.get(ids::BLOB_PIECES),
        pieces_forgotten: memories.get(ids::BLOB_PIECES_FORGOTTEN),
        headroom: memories.headroom(),
    }
}

fn session_memories<M: Memory + Clone>(memories: &StableMemories<M>) -> SessionMemories<Vm<M>> {
    SessionMemories {
        records: memories.get(ids::SESSION_RECORDS),
        idempotency: memories.get(ids::SESSION_IDEMPOTENCY),
        bitmaps: memories.get(ids::SESSION_CHUNK_BITMAPS),
        deadlines: memories.get(ids::SESSION_DEADLINES),
        header: memories.get(ids::SESSION_HEADER),
    }
}

fn share_memories<M: Memory + Clone>(memories: &StableMemories<M>) -> ShareMemories<M> {
    ShareMemories {
        links: memories.get(ids::SHARE_LINKS),
        by_memory: memories.get(ids::SHARES_BY_MEMORY),
        by_expiry: memories.get(ids::SHARES_BY_EXPIRY),
        chunk_hashes: memories.get(ids::SHARE_CHUNK_HASHES),
        queue: memories.get(ids::SHARE_HASH_QUEUE),
        counters: memories.get(ids::SHARE_COUNTERS),
    }
}

/// A session engine and a blob store on the canister's memory map, for
/// tests of the two alone.
#[cfg(test)]
pub fn session_and_blob_stores<M: Memory + Clone>(
    memories: &StableMemories<M>,
    policy: SessionPolicy,
) -> (SessionService<Vm<M>, UploadSessionMeta>, BlobStore<M>) {
    (
        SessionService::init(session_memories(memories), policy),
        BlobStore::init(blob_memories(memories)),
    )
}

/// Defaults of earlier releases (file size, a caller's reservations):
/// limits still at one of them were never chosen by a controller, so an
/// upgrade moves them to today's.
const RETIRED_DEFAULTS: [(u64, u64); 2] = [(32 * GIB, 64 * GIB), (8 * GIB, 8 * GIB)];

/// Moves the records of an older layout forward, each step under the
/// layout it reaches. Constant work: only the ledger is rewritten.
///
/// The other layout changes need no step: new structures are laid out
/// empty when opened (3: capsule creators, repair state; 4: blob
/// placement; 5: thumbnails; 6: the bucket's settings), and the blob store keeps reading what older
/// layouts wrote where they wrote it (the dense bytes of layouts 1 and 2,
/// `blob_store::block_map`'s legacy blocks; the blobs begun before layout
/// 4 at their stream offsets, `blob_store::placement`).
fn migrate<M: Memory>(found: Found, accounting: &mut Accounting<M>) {
    // 2: the global reservation cap did not exist; it gets its default.
    if found == Found::Version(1) && accounting.limits().max_reserved_bytes_total.is_none() {
        accounting.migrate_limits(|limits| {
            limits.max_reserved_bytes_total = Some(DEFAULT_MAX_RESERVED_BYTES_TOTAL)
        });
    }
    // 4: limits nobody changed from an earlier release's defaults (32 GiB
    // files and 64 GiB reserved per caller, then 8 GiB and 8 GiB: three,
    // then twelve principals filled every reservation) take today's.
    // Limits a controller chose stay.
    if matches!(found, Found::Version(1..=3)) {
        let limits = accounting.limits();
        let current = (limits.max_file_bytes, limits.max_reserved_bytes_per_caller);
        if RETIRED_DEFAULTS.contains(&current) {
            let defaults = Limits::default();
            accounting.migrate_limits(|limits| {
                limits.max_file_bytes = defaults.max_file_bytes;
                limits.max_reserved_bytes_per_caller = defaults.max_reserved_bytes_per_caller;
            });
        }
    }
}

impl<M: Memory + Clone> State<M> {
    /// Opens the state on `memory`, laying out its structures on first use
    /// and migrating an older layout. Constant work but for the rebuild of
    /// the share links' certification tree (bounded by
    /// `MAX_CERTIFIED_ENTRIES`).
    ///
    /// # Panics
    /// When stable memory holds a layout newer than this build knows: in
    /// `post_upgrade` that traps, and the IC keeps the running canister.
    pub fn init(memory: M) -> Self {
        Self::open(memory).unwrap_or_else(|error| panic!("{error}"))
    }

    /// `init`, with a refused layout as an error.
    pub fn open(memory: M) -> Result<Self, LayoutError> {
        let was_empty = memory.size() == 0;
        let memories = StableMemories::init(memory);
        let found = layout::read(&memories, was_empty)?;
        let mut accounting = Accounting::init(
            memories.get(ids::UPLOAD_CONFIG),
            memories.get(ids::CALLER_USAGE),
        );
        migrate(found, &mut accounting);
        if found != Found::Version(CURRENT_LAYOUT) {
            layout::record(&memories, CURRENT_LAYOUT);
        }
        let policy = session_policy(accounting.limits());
        let mut state = Self {
            sessions: SessionService::init(session_memories(&memories), policy),
            blobs: BlobStore::init(blob_memories(&memories)),
            hashing: HashTracker::init(
                memories.get(ids::UPLOAD_HASH_PROGRESS),
                memories.get(ids::UPLOAD_HASH_BACKLOG),
                memories.get(ids::UPLOAD_REPAIRS),
            ),
            open_by_caller: StableBTreeMap::init(memories.get(ids::UPLOAD_CALLER_SESSIONS)),
            capsules: CapsuleStore::init(
                memories.get(ids::CAPSULES),
                memories.get(ids::CAPSULES_BY_OWNER),
                memories.get(ids::CAPSULE_CREATORS),
            ),
            memories: MemoryStore::init(
                memories.get(ids::MEMORY_RECORDS),
                memories.get(ids::CAPSULE_MEMORIES),
            ),
            accounting,
            shares: ShareStore::init(share_memories(&memories)),
            thumbnails: ThumbnailStore::init(
                memories.get(ids::THUMBNAILS),
                memories.get(ids::UPLOAD_THUMBNAILS),
            ),
            bucket: BucketStore::init(memories.get(ids::BUCKET_SETTINGS)),
            headroom: memories.headroom(),
            layout_record: memories.get(ids::LAYOUT_VERSION),
        };
        // The certification tree is heap state: bounded rebuild.
        state.shares.certify_all(&state.memories);
        Ok(state)
    }
}

impl<M: Memory> State<M> {
    /// For updates that may grow stable memory, before they change
    /// anything: `OutOfSpace` if the subnet will not give the memory they
    /// may need.
    pub fn ensure_room(&self) -> Result<(), UploadError> {
        if self.headroom.ensure() {
            Ok(())
        } else {
            Err(UploadError::OutOfSpace)
        }
    }

    /// Bytes of raw stable memory the canister has now.
    pub fn stable_memory_bytes(&self) -> u64 {
        self.headroom.raw_bytes()
    }

    /// The part of it an empty canister already has (constant).
    pub fn fixed_stable_bytes(&self) -> u64 {
        self.headroom.fixed_bytes()
    }

    /// The layout version recorded in stable memory (`crate::layout`):
    /// `CURRENT_LAYOUT` once the state is open.
    pub fn recorded_layout(&self) -> layout::Recorded {
        layout::recorded(&self.layout_record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_stable_structures::VectorMemory;

    /// What an empty canister holds before any data: the memory manager's
    /// header page and one 8 MiB bucket for each structure laid out when it
    /// opens. The README states the figure; it must not grow unnoticed.
    #[test]
    fn an_empty_canister_holds_only_the_fixed_stable_memory() {
        let memory = VectorMemory::default();
        let state = State::open(memory.clone()).expect("an empty memory opens");
        let held = memory.size() * 65_536;
        assert_eq!(held, state.fixed_stable_bytes());
        assert_eq!(state.stable_memory_bytes(), held);
        assert_eq!(
            state.fixed_stable_bytes(),
            276_889_600,
            "264 MiB and a page"
        );
        // Reopening (an upgrade) lays out nothing more.
        drop(state);
        let again = State::open(memory.clone()).expect("reopens");
        assert_eq!(memory.size() * 65_536, again.fixed_stable_bytes());
    }
}
