//! The version of the stable-memory layout, recorded beside the data it
//! describes. A build opens stable memory only if it knows the recorded
//! version: one that meets a newer layout refuses (its upgrade traps and the
//! IC keeps the running canister) rather than misread the data. An older
//! layout is migrated forward, then the new version is recorded.

use crate::stable_memory::{self, StableMemories};
use ic_stable_structures::Memory;
use std::fmt;

/// The layout this build writes.
///
/// - 1: v0.1.0, which recorded no version.
/// - 2: adds the version record and `Limits::max_reserved_bytes_total`.
/// - 3: capsule creators and repair state (new memories, created when
///   opened), the capsule-creation flag in the ledger (absent: open); blob
///   bytes in blocks mapped as they are written (`upload::sparse`), the
///   dense bytes written before kept in place as legacy blocks;
///   limits still at the old defaults move to the new ones (a caller's
///   reservation and the file size: 8 GiB).
/// - 4: blobs begun from now on place each new chunk where the previous one
///   ended in their space, mapped by `BLOB_PIECES` (new memories, created
///   when opened); blobs begun before keep their bytes at their offsets;
///   limits still at the defaults of layout 2 or 3 move to today's (a
///   caller's reservation and the file size: 4 GiB).
/// - 5: memory thumbnails in `THUMBNAILS`, and the thumbnail each upload
///   was begun with in `UPLOAD_THUMBNAILS` (new memories, created when
///   opened; a memory or session without an entry has none, so no record
///   is rewritten), charged to the stored bytes of the principal who gave
///   them. A build of layout 4 would not release a thumbnail's quota when
///   its memory is deleted, so it must not open this layout.
/// - 6: the bucket's settings in `BUCKET_SETTINGS` (a new memory, created
///   when opened: standalone, `Open`, no bytes counted): the index
///   canister managing this canister, the state it set, and the bytes
///   ever accepted by `uploads_put_chunk`. A build of layout 5 would let
///   capsules be created on a managed bucket and uploads begin on a sealed
///   one, and not count uploaded bytes, so it must not open this layout.
pub const CURRENT_LAYOUT: u32 = 6;

/// The layout this build writes, as public metadata of the module
/// (`icp:public upload:layout`, 4 bytes little-endian): an index reads it
/// from a new bucket Wasm and never rolls out one whose layout is older
/// than a bucket's (a build from before the layout record, v0.1.0, would
/// not refuse newer data by itself).
#[cfg(target_arch = "wasm32")]
#[link_section = "icp:public upload:layout"]
#[used]
static LAYOUT_METADATA: [u8; 4] = CURRENT_LAYOUT.to_le_bytes();

/// What a canister with state but no version record has.
const UNRECORDED_LAYOUT: u32 = 1;

/// Marks the record, so a damaged or foreign memory is not taken for one.
const MAGIC: [u8; 8] = *b"UPLAYOUT";
const RECORD_BYTES: usize = MAGIC.len() + 4;

/// Why stable memory cannot be opened by this build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutError {
    /// Written by a newer build: opening it could corrupt data.
    Newer { found: u32, known: u32 },
    /// The record is not one this code wrote.
    Unreadable,
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::Newer { found, known } => write!(
                f,
                "stable memory has layout version {found}, newer than the {known} this build \
                 knows; refusing to open it (install a build that knows layout {found})"
            ),
            LayoutError::Unreadable => write!(f, "the stable layout version record is unreadable"),
        }
    }
}

/// The layout found when stable memory was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Empty stable memory: everything is laid out by this build.
    Fresh,
    /// Data of this version, at most `CURRENT_LAYOUT`.
    Version(u32),
}

/// Reads the recorded version. `was_empty` tells whether stable memory had
/// no pages before the `MemoryManager` laid itself out.
pub fn read<M: Memory + Clone>(
    memories: &StableMemories<M>,
    was_empty: bool,
) -> Result<Found, LayoutError> {
    if was_empty {
        return Ok(Found::Fresh);
    }
    let found = match recorded(&memories.get(stable_memory::LAYOUT_VERSION)) {
        Recorded::None => return Ok(Found::Version(UNRECORDED_LAYOUT)),
        Recorded::Unreadable => return Err(LayoutError::Unreadable),
        Recorded::Version(found) => found,
    };
    if found > CURRENT_LAYOUT {
        return Err(LayoutError::Newer {
            found,
            known: CURRENT_LAYOUT,
        });
    }
    Ok(Found::Version(found))
}

/// What the version record (`LAYOUT_VERSION`'s memory) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// No record: an empty memory, or v0.1.0's state.
    None,
    /// A record this code did not write.
    Unreadable,
    Version(u32),
}

/// Reads the version record from its memory (one read of 12 bytes).
pub fn recorded(record: &impl Memory) -> Recorded {
    if record.size() == 0 {
        return Recorded::None;
    }
    let mut bytes = [0u8; RECORD_BYTES];
    record.read(0, &mut bytes);
    if bytes[..MAGIC.len()] != MAGIC {
        return Recorded::Unreadable;
    }
    Recorded::Version(crate::storable::read_u32(&bytes, MAGIC.len()))
}

/// Records `version` (after any migration to it has run).
pub fn record<M: Memory + Clone>(memories: &StableMemories<M>, version: u32) {
    let record = memories.get(stable_memory::LAYOUT_VERSION);
    if record.size() == 0 && record.grow(1) < 0 {
        panic!("bug: no stable memory for the layout record");
    }
    let mut bytes = [0u8; RECORD_BYTES];
    bytes[..MAGIC.len()].copy_from_slice(&MAGIC);
    bytes[MAGIC.len()..].copy_from_slice(&version.to_be_bytes());
    record.write(0, &bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_stable_structures::VectorMemory;

    fn opened(memory: &VectorMemory) -> (StableMemories<VectorMemory>, bool) {
        let was_empty = memory.size() == 0;
        (StableMemories::init(memory.clone()), was_empty)
    }

    #[test]
    fn fresh_then_recorded_then_refused_when_newer() {
        let memory = VectorMemory::default();
        let (memories, was_empty) = opened(&memory);
        assert_eq!(read(&memories, was_empty), Ok(Found::Fresh));
        record(&memories, CURRENT_LAYOUT);

        let (memories, was_empty) = opened(&memory);
        assert_eq!(
            read(&memories, was_empty),
            Ok(Found::Version(CURRENT_LAYOUT))
        );

        record(&memories, CURRENT_LAYOUT + 1);
        let (memories, was_empty) = opened(&memory);
        let refused = read(&memories, was_empty).unwrap_err();
        assert_eq!(
            refused,
            LayoutError::Newer {
                found: CURRENT_LAYOUT + 1,
                known: CURRENT_LAYOUT
            }
        );
        assert!(refused
            .to_string()
            .contains(&format!("newer than the {CURRENT_LAYOUT} this build knows")));
    }

    #[test]
    fn state_without_a_record_is_the_first_layout() {
        let memory = VectorMemory::default();
        let (memories, _) = opened(&memory);
        // Another structure has data, as a v0.1.0 canister would.
        memories.get(stable_memory::UPLOAD_CONFIG).grow(1);
        let (memories, was_empty) = opened(&memory);
        assert_eq!(read(&memories, was_empty), Ok(Found::Version(1)));
    }

    #[test]
    fn the_service_migrates_layout_1_and_refuses_newer_ones() {
        use crate::limits::{Limits, DEFAULT_MAX_RESERVED_BYTES_TOTAL};
        use crate::stores::accounting::Accounting;
        use crate::testing::service::UploadService;

        // A v0.1.0 canister: structures laid out, no record, no reservation cap.
        let memory = VectorMemory::default();
        let memories = StableMemories::init(memory.clone());
        Accounting::init(
            memories.get(crate::stable_memory::UPLOAD_CONFIG),
            memories.get(crate::stable_memory::CALLER_USAGE),
        )
        .set_limits(Limits {
            max_reserved_bytes_total: None,
            ..Limits::default()
        })
        .expect("valid limits");
        let service = UploadService::open(memory.clone()).expect("layout 1 opens");
        assert_eq!(
            service
                .stats(candid::Principal::anonymous())
                .limits
                .max_reserved_bytes_total,
            Some(DEFAULT_MAX_RESERVED_BYTES_TOTAL)
        );
        let (memories, was_empty) = opened(&memory);
        assert_eq!(
            read(&memories, was_empty),
            Ok(Found::Version(CURRENT_LAYOUT))
        );

        record(&memories, CURRENT_LAYOUT + 1);
        assert!(matches!(
            UploadService::open(memory),
            Err(LayoutError::Newer { .. })
        ));
    }

    #[test]
    fn limits_at_an_earlier_default_move_to_the_current_ones() {
        use crate::limits::Limits;
        use crate::stores::accounting::Accounting;
        use crate::testing::service::UploadService;
        const GIB: u64 = 1 << 30;
        let at = |file: u64, reserved: u64| Limits {
            max_file_bytes: file * GIB,
            max_reserved_bytes_per_caller: reserved * GIB,
            ..Limits::default()
        };
        let chosen = at(32, 40);
        let cases = [
            (2, at(32, 64), Limits::default()),
            (3, at(8, 8), Limits::default()),
            (2, at(8, 8), Limits::default()),
            (3, chosen.clone(), chosen.clone()),
            // A controller may choose a retired default on today's layout.
            (CURRENT_LAYOUT, at(8, 8), at(8, 8)),
        ];
        for (version, limits, expected) in cases {
            let memory = VectorMemory::default();
            let memories = StableMemories::init(memory.clone());
            Accounting::init(
                memories.get(crate::stable_memory::UPLOAD_CONFIG),
                memories.get(crate::stable_memory::CALLER_USAGE),
            )
            .set_limits(limits)
            .expect("valid limits");
            record(&memories, version);
            let service = UploadService::open(memory).expect("an older layout opens");
            assert_eq!(
                service.stats(candid::Principal::anonymous()).limits,
                expected,
                "layout {version}"
            );
        }
    }

    #[test]
    fn a_foreign_record_is_unreadable() {
        let memory = VectorMemory::default();
        let (memories, _) = opened(&memory);
        let record = memories.get(stable_memory::LAYOUT_VERSION);
        record.grow(1);
        record.write(0, b"something else");
        let (memories, was_empty) = opened(&memory);
        assert_eq!(read(&memories, was_empty), Err(LayoutError::Unreadable));
    }
}
