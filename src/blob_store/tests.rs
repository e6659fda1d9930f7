//! The blob store's tests: allocation, reuse and the invariants under churn,
//! byte I/O through the sink, and the stored layouts.

use super::encoding::RECORD_HEAD;
use super::*;
use crate::stable_memory::StableMemories;
use ic_stable_structures::VectorMemory;
use proptest::prelude::*;
use std::collections::HashMap;

type Store = BlobStore<VectorMemory>;

const UNLIMITED: u64 = u64::MAX;

fn fresh() -> (VectorMemory, StableMemories<VectorMemory>, Store) {
    let memory = VectorMemory::default();
    let memories = StableMemories::init(memory.clone());
    let store = BlobStore::init(crate::state::blob_memories(&memories));
    (memory, memories, store)
}

/// Distinct bytes for each blob, so an overlap shows as a mismatch.
fn pattern(id: BlobId, len: u64) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let mut x = id.0.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(i / 8);
            x ^= x >> 31;
            x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x ^= x >> 29;
            (x >> ((i % 8) * 8)) as u8
        })
        .collect()
}

/// Writes `bytes` through the sink in `chunk`-sized pieces, last first.
fn write_reversed(store: &mut Store, id: BlobId, bytes: &[u8], chunk: usize) {
    let mut sink = store.sink(id).expect("blob exists");
    let pieces: Vec<(usize, &[u8])> = bytes
        .chunks(chunk.max(1))
        .enumerate()
        .map(|(i, c)| (i * chunk.max(1), c))
        .collect();
    for (offset, piece) in pieces.into_iter().rev() {
        sink.write_at(offset as u64, piece).expect("in bounds");
    }
}

fn read_all(store: &Store, id: BlobId) -> Vec<u8> {
    let len = store.byte_len(id).expect("blob exists");
    let mut buf = vec![0u8; len as usize];
    store.read(id, 0, &mut buf).expect("in bounds");
    buf
}

#[test]
fn chunks_written_out_of_order_read_back() {
    let (_, _, mut store) = fresh();
    let len = 3 * BLOB_BLOCK_BYTES + 1234;
    let id = store.allocate(len, UNLIMITED).unwrap();
    let bytes = pattern(id, len);
    write_reversed(&mut store, id, &bytes, 1000);
    assert_eq!(read_all(&store, id), bytes);

    let sink = store.sink(id).unwrap();
    let mut buf = vec![0u8; 5000];
    sink.read_at(2000, &mut buf).unwrap();
    assert_eq!(buf, bytes[2000..7000]);
    assert_eq!(sink.id(), id);
    assert_eq!(sink.byte_len(), len);
    store.check_invariants();
}

/// Chunks far apart used to take up to two 4 KiB blocks each, however
/// small; placed one after another they take the blocks their bytes fill.
#[test]
fn small_chunks_sent_far_apart_take_only_the_blocks_they_fill() {
    let (_, _, mut store) = fresh();
    let (chunk, chunks) = (1_000usize, 4_096usize);
    let len = (chunk * chunks) as u64;
    let id = store.allocate(len, UNLIMITED).unwrap();
    let bytes = pattern(id, len);
    let range = |i: usize| i * chunk..(i + 1) * chunk;
    let put = |store: &mut Store, indices: &[usize]| {
        let mut sink = store.sink(id).unwrap();
        for &i in indices {
            sink.write_at(range(i).start as u64, &bytes[range(i)])
                .unwrap();
        }
    };
    // Every eighth chunk, last first.
    let sparse: Vec<usize> = (0..chunks).step_by(8).rev().collect();
    put(&mut store, &sparse);
    let written = (sparse.len() * chunk) as u64;
    assert_eq!(store.mapped_blocks(), written.div_ceil(BLOB_BLOCK_BYTES));
    for &i in &sparse {
        let mut back = vec![0u8; chunk];
        store.read(id, range(i).start as u64, &mut back).unwrap();
        assert_eq!(back, bytes[range(i)]);
    }
    // Nothing was sent there: zeros, not another chunk's bytes.
    let mut gap = vec![7u8; 3 * chunk];
    store.read(id, chunk as u64, &mut gap).unwrap();
    assert_eq!(gap, vec![0u8; 3 * chunk]);
    store.check_invariants();

    // The rest, in a scrambled order: every byte where it belongs, a
    // block per 4 KiB of the file.
    let mut rest: Vec<usize> = (0..chunks).filter(|i| i % 8 != 0).collect();
    rest.sort_by_key(|i| (i * 2_654_435_761) % 4_099);
    put(&mut store, &rest);
    assert_eq!(read_all(&store, id), bytes);
    assert_eq!(store.mapped_blocks(), blocks_for(len));
    // A chunk sent again is written where it is, not placed again.
    let mut sink = store.sink(id).unwrap();
    sink.write_at(8 * chunk as u64, &vec![9u8; chunk]).unwrap();
    drop(sink);
    let mut back = vec![0u8; chunk];
    store.read(id, 8 * chunk as u64, &mut back).unwrap();
    assert_eq!(back, vec![9u8; chunk]);
    assert_eq!(store.mapped_blocks(), blocks_for(len));
    store.check_invariants();
}

/// Each message builds its own sink: the pieces they write still place
/// after each other (the tail is read afresh).
#[test]
fn sinks_built_in_turn_on_one_blob_place_after_each_other() {
    let (_, _, mut store) = fresh();
    let id = store.allocate(4_000, UNLIMITED).unwrap();
    let bytes = pattern(id, 4_000);
    for i in (0..4).rev() {
        let mut sink = store.sink(id).unwrap();
        sink.write_at(
            i * 1_000,
            &bytes[i as usize * 1_000..(i as usize + 1) * 1_000],
        )
        .unwrap();
    }
    assert_eq!(read_all(&store, id), bytes);
    store.check_invariants();
}

#[test]
fn a_freed_blobs_pieces_are_forgotten_in_bounded_steps() {
    let (_, _, mut store) = fresh();
    let gone = store.allocate(10_000, UNLIMITED).unwrap();
    write_reversed(&mut store, gone, &pattern(gone, 10_000), 1_000);
    let kept = store.allocate(3_000, UNLIMITED).unwrap();
    write_reversed(&mut store, kept, &pattern(kept, 3_000), 3_000);
    store.free(gone).unwrap();
    store.check_invariants();
    // Ten pieces and the tail entry: four at a time.
    assert!(store.forget_freed_pieces(4));
    store.check_invariants();
    assert!(store.forget_freed_pieces(4));
    assert!(!store.forget_freed_pieces(4));
    assert!(!store.forget_freed_pieces(4));
    let placements = &store.placements;
    assert_eq!(placements.blobs_with_entries(), vec![(kept.0, false)]);
    assert_eq!(placements.pieces_of(kept), vec![(0, 0, 3_000)]);
    assert_eq!(read_all(&store, kept), pattern(kept, 3_000));
    // A blob freed before any byte arrived leaves nothing to forget.
    let unwritten = store.allocate(5_000, UNLIMITED).unwrap();
    store.free(unwritten).unwrap();
    assert!(!store.forget_freed_pieces(4));
    let placements = &store.placements;
    assert_eq!(placements.blobs_with_entries(), vec![(kept.0, false)]);
    store.check_invariants();
}

#[test]
fn a_blob_laid_out_before_placement_keeps_its_bytes_at_their_offsets() {
    let (_, _, mut store) = fresh();
    let len = 3 * BLOB_BLOCK_BYTES + 1234;
    let id = store.allocate(len, UNLIMITED).unwrap();
    store.placements.lay_out_at_offsets(id);
    let bytes = pattern(id, len);
    write_reversed(&mut store, id, &bytes, 1000);
    assert_eq!(read_all(&store, id), bytes);
    assert!(&store.placements.pieces_of(id).is_empty());
    assert_eq!(store.placements.tail(id), None);
    // Freed, it leaves nothing to forget.
    store.free(id).unwrap();
    assert!(!store.forget_freed_pieces(1));
    store.check_invariants();
}

#[test]
fn fragmented_blob_crosses_extent_boundaries() {
    let (_, _, mut store) = fresh();
    let ids: Vec<BlobId> = (0..6)
        .map(|_| store.allocate(BLOB_BLOCK_BYTES, UNLIMITED).unwrap())
        .collect();
    for id in &ids {
        write_reversed(&mut store, *id, &pattern(*id, BLOB_BLOCK_BYTES), 4096);
    }
    for i in [0, 2, 4] {
        store.free(ids[i]).unwrap();
    }
    assert_eq!(store.free_extents().len(), 3);

    let len = 5 * BLOB_BLOCK_BYTES - 17;
    let big = store.allocate(len, UNLIMITED).unwrap();
    let extents = store.extents_of(big);
    // Three one-block holes, then two fresh blocks at the mark.
    assert_eq!(extents.len(), 4);
    assert_eq!(
        extents[3],
        Extent {
            start_block: 6,
            blocks: 2
        }
    );
    assert!(store.free_extents().is_empty());
    assert_eq!(store.stats().high_water_bytes, 8 * BLOB_BLOCK_BYTES);

    let bytes = pattern(big, len);
    // 3000-byte chunks straddle every extent boundary.
    write_reversed(&mut store, big, &bytes, 3000);
    assert_eq!(read_all(&store, big), bytes);
    let mut piece = vec![0u8; 3 * BLOB_BLOCK_BYTES as usize];
    store.read(big, 100, &mut piece).unwrap();
    assert_eq!(piece, bytes[100..100 + piece.len()]);
    for i in [1, 3, 5] {
        assert_eq!(read_all(&store, ids[i]), pattern(ids[i], BLOB_BLOCK_BYTES));
    }
    store.check_invariants();
}

#[test]
fn best_fit_takes_the_smallest_hole_that_holds() {
    let (_, _, mut store) = fresh();
    // Holes of 3, 5 and 2 blocks separated by live one-block blobs.
    let mut holes = Vec::new();
    for blocks in [3, 5, 2] {
        holes.push(
            store
                .allocate(blocks * BLOB_BLOCK_BYTES, UNLIMITED)
                .unwrap(),
        );
        store.allocate(1, UNLIMITED).unwrap();
    }
    for id in holes {
        store.free(id).unwrap();
    }
    let high_water = store.stats().high_water_bytes;
    let two = store.allocate(2 * BLOB_BLOCK_BYTES, UNLIMITED).unwrap();
    assert_eq!(
        store.extents_of(two),
        vec![Extent {
            start_block: 10,
            blocks: 2
        }]
    );
    let four = store.allocate(4 * BLOB_BLOCK_BYTES, UNLIMITED).unwrap();
    // The tail of the 5-block hole at block 4; its first block stays free.
    assert_eq!(
        store.extents_of(four),
        vec![Extent {
            start_block: 5,
            blocks: 4
        }]
    );
    assert_eq!(
        store.free_extents(),
        vec![
            Extent {
                start_block: 0,
                blocks: 3
            },
            Extent {
                start_block: 4,
                blocks: 1
            }
        ]
    );
    assert_eq!(store.stats().high_water_bytes, high_water);
    store.check_invariants();
}

#[test]
fn churn_does_not_raise_the_high_water_mark() {
    let (_, _, mut store) = fresh();
    let sizes = [1u64, 7000, 40_000, 4096, 12_345, 100_000, 3, 65_536, 0];
    let mut live: Vec<BlobId> = Vec::new();
    for len in sizes {
        let id = store.allocate(len, UNLIMITED).unwrap();
        write_reversed(&mut store, id, &pattern(id, len), 5000);
        live.push(id);
    }
    let peak = store.stats().high_water_bytes;
    assert_eq!(peak, store.stats().used_bytes);
    for round in 0..300usize {
        // Free one blob and allocate one of the same size: the live total
        // stays the same, and so must the mark.
        let victim = live.remove((round * 7) % live.len());
        let len = store.byte_len(victim).unwrap();
        store.free(victim).unwrap();
        let id = store.allocate(len, UNLIMITED).unwrap();
        write_reversed(&mut store, id, &pattern(id, len), 3000);
        live.push(id);
        store.check_invariants();
        assert!(store.stats().high_water_bytes <= peak);
    }
    for id in live {
        let len = store.byte_len(id).unwrap();
        assert_eq!(read_all(&store, id), pattern(id, len));
    }
}

/// Frees A, B, C (adjacent, 1, 2 and 3 blocks) in the given order.
fn free_three_adjacent(order: [usize; 3], keep_tail: bool) {
    let (_, _, mut store) = fresh();
    let abc: Vec<BlobId> = (1..=3)
        .map(|blocks| {
            store
                .allocate(blocks * BLOB_BLOCK_BYTES, UNLIMITED)
                .unwrap()
        })
        .collect();
    let tail = store.allocate(10, UNLIMITED).unwrap();
    if !keep_tail {
        store.free(tail).unwrap();
    }
    for i in order {
        store.free(abc[i]).unwrap();
        store.check_invariants();
    }
    let stats = store.stats();
    if keep_tail {
        assert_eq!(
            store.free_extents(),
            vec![Extent {
                start_block: 0,
                blocks: 6
            }]
        );
        assert_eq!(stats.high_water_bytes, 7 * BLOB_BLOCK_BYTES);
        assert_eq!(stats.free_bytes, 6 * BLOB_BLOCK_BYTES);
        // The whole run is reused by one blob, in one extent.
        let again = store.allocate(6 * BLOB_BLOCK_BYTES, UNLIMITED).unwrap();
        assert_eq!(
            store.extents_of(again),
            vec![Extent {
                start_block: 0,
                blocks: 6
            }]
        );
    } else {
        assert!(store.free_extents().is_empty());
        assert_eq!(stats, BlobStoreStats::default());
    }
}

#[test]
fn freeing_adjacent_blobs_coalesces_in_any_order() {
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in orders {
        free_three_adjacent(order, true);
        free_three_adjacent(order, false);
    }
}

#[test]
fn capacity_exceeded_changes_nothing() {
    let (_, _, mut store) = fresh();
    let a = store
        .allocate(3 * BLOB_BLOCK_BYTES, 10 * BLOB_BLOCK_BYTES)
        .unwrap();
    let b = store
        .allocate(2 * BLOB_BLOCK_BYTES, 10 * BLOB_BLOCK_BYTES)
        .unwrap();
    store.allocate(1, 10 * BLOB_BLOCK_BYTES).unwrap();
    store.free(a).unwrap();
    let before = (
        store.stats(),
        store.free_extents(),
        store.data.stable_bytes(),
    );

    let err = store
        .allocate(7 * BLOB_BLOCK_BYTES + 1, 10 * BLOB_BLOCK_BYTES)
        .unwrap_err();
    assert_eq!(
        err,
        BlobStoreError::CapacityExceeded {
            requested: 8 * BLOB_BLOCK_BYTES,
            available: 7 * BLOB_BLOCK_BYTES
        }
    );
    assert_eq!(
        (
            store.stats(),
            store.free_extents(),
            store.data.stable_bytes()
        ),
        before
    );
    // The refused request took no id.
    let next = store
        .allocate(7 * BLOB_BLOCK_BYTES, 10 * BLOB_BLOCK_BYTES)
        .unwrap();
    assert_eq!(next, BlobId(b.0 + 2));
    // A capacity below current use still admits zero-length blobs.
    assert!(store.allocate(0, 0).is_ok());
    assert_eq!(
        store.allocate(u64::MAX, u64::MAX),
        Err(BlobStoreError::CapacityExceeded {
            requested: u64::MAX,
            available: u64::MAX - 10 * BLOB_BLOCK_BYTES
        })
    );
    store.check_invariants();
}

#[test]
fn allocation_beyond_the_addressable_space_changes_nothing() {
    let (_, _, mut store) = fresh();
    let a = store.allocate(2 * BLOB_BLOCK_BYTES, UNLIMITED).unwrap();
    store.allocate(1, UNLIMITED).unwrap();
    store.free(a).unwrap();
    let before = (
        store.stats(),
        store.free_extents(),
        store.data.stable_bytes(),
    );
    // More than the memory manager's 256 GiB: the hole would be taken
    // first, so a change made before the refusal would show.
    let err = store.allocate(300 << 30, UNLIMITED).unwrap_err();
    assert_eq!(err, BlobStoreError::OutOfSpace);
    assert_eq!(
        (
            store.stats(),
            store.free_extents(),
            store.data.stable_bytes()
        ),
        before
    );
    store.check_invariants();
}

#[test]
fn zero_length_blob() {
    let (_, _, mut store) = fresh();
    let id = store.allocate(0, UNLIMITED).unwrap();
    assert_eq!(store.byte_len(id), Some(0));
    assert!(store.extents_of(id).is_empty());
    store.read(id, 0, &mut []).unwrap();
    assert_eq!(
        store.read(id, 0, &mut [0u8; 1]),
        Err(BlobStoreError::OutOfBounds {
            offset: 0,
            len: 1,
            byte_len: 0
        })
    );
    let mut sink = store.sink(id).unwrap();
    sink.write_at(0, &[]).unwrap();
    assert_eq!(
        sink.write_at(0, &[1]),
        Err(SinkError::OutOfBounds {
            offset: 0,
            len: 1,
            capacity: 0
        })
    );
    let stats = store.stats();
    assert_eq!((stats.used_bytes, stats.blob_count), (0, 1));
    assert_eq!(store.free(id), Ok(0));
    assert_eq!(store.stats(), BlobStoreStats::default());
    store.check_invariants();
}

#[test]
fn bounds_and_unknown_blobs_are_refused() {
    let (_, _, mut store) = fresh();
    let id = store.allocate(5000, UNLIMITED).unwrap();
    let mut sink = store.sink(id).unwrap();
    assert_eq!(
        sink.write_at(4999, &[1, 2]),
        Err(SinkError::OutOfBounds {
            offset: 4999,
            len: 2,
            capacity: 5000
        })
    );
    assert!(sink.write_at(u64::MAX, &[1]).is_err());
    let mut buf = [0u8; 2];
    assert!(sink.read_at(5000, &mut buf[..1]).is_err());
    sink.write_at(4998, &[7, 8]).unwrap();
    sink.read_at(4998, &mut buf).unwrap();
    assert_eq!(buf, [7, 8]);
    assert!(matches!(
        store.read(id, u64::MAX, &mut buf),
        Err(BlobStoreError::OutOfBounds { .. })
    ));

    assert_eq!(store.free(id), Ok(2 * BLOB_BLOCK_BYTES));
    let gone = BlobStoreError::UnknownBlob(id);
    assert_eq!(store.free(id), Err(gone.clone()));
    assert_eq!(store.read(id, 0, &mut buf), Err(gone.clone()));
    assert_eq!(store.sink(id).err(), Some(gone));
    assert_eq!(store.byte_len(id), None);
    assert_eq!(
        store.free(BlobId(0)),
        Err(BlobStoreError::UnknownBlob(BlobId(0)))
    );
}

#[test]
fn state_survives_reinit() {
    let (memory, memories, mut store) = fresh();
    let ids: Vec<BlobId> = [10_000u64, 1, 70_000, 0, 9000]
        .iter()
        .map(|len| store.allocate(*len, UNLIMITED).unwrap())
        .collect();
    for id in &ids {
        let len = store.byte_len(*id).unwrap();
        write_reversed(&mut store, *id, &pattern(*id, len), 777);
    }
    store.free(ids[1]).unwrap();
    let stats = store.stats();
    let free = store.free_extents();
    drop(store);
    drop(memories);

    // As after an upgrade: the same stable memory, everything re-opened.
    let memories = StableMemories::init(memory);
    let mut store: Store = BlobStore::init(crate::state::blob_memories(&memories));
    assert_eq!(store.stats(), stats);
    assert_eq!(store.free_extents(), free);
    for id in [ids[0], ids[2], ids[3], ids[4]] {
        let len = store.byte_len(id).unwrap();
        assert_eq!(read_all(&store, id), pattern(id, len));
    }
    let next = store.allocate(1, UNLIMITED).unwrap();
    assert_eq!(next, BlobId(ids[4].0 + 1));
    // The one-block hole left by ids[1] is reused.
    assert_eq!(
        store.extents_of(next),
        vec![Extent {
            start_block: 3,
            blocks: 1
        }]
    );
    store.check_invariants();
}

#[test]
fn record_and_header_round_trip() {
    let record = BlobRecord {
        byte_len: 123_456_789,
        extents: (0..MAX_EXTENTS_PER_BLOB as u64)
            .map(|i| Extent {
                start_block: i * 1000 + 7,
                blocks: i + 1,
            })
            .collect(),
    };
    let bytes = record.to_bytes();
    assert_eq!(bytes.len(), RECORD_HEAD + 16 * MAX_EXTENTS_PER_BLOB);
    assert_eq!(BlobRecord::from_bytes(bytes), record);
    let header = Header {
        next_blob_id: 5,
        high_water_blocks: 6,
        used_blocks: 4,
        free_blocks: 2,
    };
    assert_eq!(Header::from_bytes(header.to_bytes()), header);
    assert_eq!(BlobId::from_bytes(BlobId(42).to_bytes()), BlobId(42));
    assert_eq!(reserved_bytes(0), 0);
    assert_eq!(reserved_bytes(1), BLOB_BLOCK_BYTES);
    assert_eq!(reserved_bytes(BLOB_BLOCK_BYTES), BLOB_BLOCK_BYTES);
    assert_eq!(reserved_bytes(u64::MAX), u64::MAX);
}

#[test]
fn extents_per_blob_are_capped() {
    let (_, _, mut store) = fresh();
    // 40 one-block holes between live one-block blobs.
    let mut holes = Vec::new();
    for _ in 0..40 {
        holes.push(store.allocate(1, UNLIMITED).unwrap());
        store.allocate(1, UNLIMITED).unwrap();
    }
    for id in holes {
        store.free(id).unwrap();
    }
    let len = 50 * BLOB_BLOCK_BYTES;
    let id = store.allocate(len, UNLIMITED).unwrap();
    let extents = store.extents_of(id);
    assert_eq!(extents.len(), MAX_EXTENTS_PER_BLOB);
    assert_eq!(
        extents[MAX_EXTENTS_PER_BLOB - 1],
        Extent {
            start_block: 80,
            blocks: 50 - (MAX_EXTENTS_PER_BLOB as u64 - 1)
        }
    );
    assert_eq!(store.free_extents().len(), 40 - (MAX_EXTENTS_PER_BLOB - 1));
    let bytes = pattern(id, len);
    write_reversed(&mut store, id, &bytes, 2500);
    assert_eq!(read_all(&store, id), bytes);
    store.check_invariants();
}

#[derive(Clone, Debug)]
enum Op {
    Allocate(u64),
    Free(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0u64..3 * BLOB_BLOCK_BYTES).prop_map(Op::Allocate),
        2 => (0u64..24 * BLOB_BLOCK_BYTES).prop_map(Op::Allocate),
        3 => any::<usize>().prop_map(Op::Free),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random churn against a model of the live blobs' bytes.
    #[test]
    fn churn_matches_model(ops in prop::collection::vec(op(), 1..120), chunk in 500usize..6000) {
        let (_, _, mut store) = fresh();
        let mut model: HashMap<BlobId, Vec<u8>> = HashMap::new();
        let mut live: Vec<BlobId> = Vec::new();
        let mut peak_live_blocks = 0u64;
        // The high-water bound below holds while every allocation that
        // raises the mark finds fewer than MAX_EXTENTS_PER_BLOB free
        // extents (then it takes them all, leaving no free space).
        let mut bound_applies = true;
        for op in ops {
            match op {
                Op::Allocate(len) => {
                    let free_count = store.free_by_start.len();
                    let before = store.stats();
                    let id = store.allocate(len, UNLIMITED).unwrap();
                    let after = store.stats();
                    prop_assert_eq!(after.used_bytes, before.used_bytes + reserved_bytes(len));
                    if after.high_water_bytes > before.high_water_bytes {
                        if free_count < MAX_EXTENTS_PER_BLOB as u64 {
                            prop_assert_eq!(after.free_bytes, 0);
                        } else {
                            bound_applies = false;
                        }
                    }
                    let bytes = pattern(id, len);
                    write_reversed(&mut store, id, &bytes, chunk);
                    model.insert(id, bytes);
                    live.push(id);
                }
                Op::Free(pick) => {
                    if live.is_empty() {
                        continue;
                    }
                    let id = live.swap_remove(pick % live.len());
                    let bytes = model.remove(&id).unwrap();
                    prop_assert_eq!(store.free(id), Ok(reserved_bytes(bytes.len() as u64)));
                }
            }
            store.check_invariants();
            let live_blocks: u64 = model.values().map(|b| blocks_for(b.len() as u64)).sum();
            peak_live_blocks = peak_live_blocks.max(live_blocks);
            let stats = store.stats();
            prop_assert_eq!(stats.used_bytes, live_blocks * BLOB_BLOCK_BYTES);
            prop_assert_eq!(stats.used_bytes + stats.free_bytes, stats.high_water_bytes);
            prop_assert_eq!(stats.blob_count, model.len() as u64);
            if bound_applies {
                prop_assert!(stats.high_water_bytes <= peak_live_blocks * BLOB_BLOCK_BYTES);
            }
            for (id, bytes) in &model {
                prop_assert_eq!(&read_all(&store, *id), bytes);
            }
        }
    }
}

/// Hex of stored bytes, for the pinned layouts below.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes a pinned hex string stands for.
fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Pins the stored blob record: version 1, length, extent count, then each
/// extent's start and size (big-endian). Changing it would misread every
/// blob after an upgrade.
#[test]
fn stored_blob_record_layout_is_pinned() {
    let record = BlobRecord {
        byte_len: 0x0102,
        extents: vec![
            Extent {
                start_block: 3,
                blocks: 4,
            },
            Extent {
                start_block: 0x10,
                blocks: 1,
            },
        ],
    };
    let golden = concat!(
        "01",
        "0000000000000102",
        "02",
        "0000000000000003",
        "0000000000000004",
        "0000000000000010",
        "0000000000000001",
    );
    assert_eq!(hex(&record.to_bytes()), golden);
    assert_eq!(BlobRecord::from_bytes(Cow::Owned(unhex(golden))), record);
}

/// Pins the stored store header: version 1, next blob id, high-water mark,
/// used and free blocks (big-endian).
#[test]
fn stored_blob_store_header_layout_is_pinned() {
    let header = Header {
        next_blob_id: 5,
        high_water_blocks: 9,
        used_blocks: 7,
        free_blocks: 2,
    };
    let golden = concat!(
        "01",
        "0000000000000005",
        "0000000000000009",
        "0000000000000007",
        "0000000000000002",
    );
    assert_eq!(hex(&header.to_bytes()), golden);
    assert_eq!(Header::from_bytes(Cow::Owned(unhex(golden))), header);
}

/// What placement costs: one entry per run of chunks that arrived in
/// order, each under 96 bytes of stable memory (the README's figure).
#[test]
fn placement_takes_an_entry_per_run_of_chunks_in_order() {
    let (_, memories, mut store) = fresh();
    let in_order = store.allocate(20_000, UNLIMITED).unwrap();
    let scattered = store.allocate(40_000, UNLIMITED).unwrap();
    let mut sink = store.sink(in_order).unwrap();
    for i in 0..20_000u64 {
        sink.write_at(i, &[i as u8]).unwrap();
    }
    drop(sink);
    let placements = &store.placements;
    assert_eq!(placements.pieces_of(in_order), vec![(0, 0, 20_000)]);
    // One byte in every other position, last first: no two pieces join.
    let mut sink = store.sink(scattered).unwrap();
    for i in (0..20_000u64).rev() {
        sink.write_at(2 * i, &[1]).unwrap();
    }
    drop(sink);
    let pieces = store.placements.pieces_of(scattered).len() as u64;
    assert_eq!(pieces, 20_000);
    let map_bytes = memories.get(crate::stable_memory::BLOB_PIECES).size() * 65_536;
    assert!(
        map_bytes < 96 * pieces,
        "{} bytes per piece",
        map_bytes / pieces
    );
    store.check_invariants();
}
