//! Native tests of the session engine on `VectorMemory`.

use super::*;
use candid::CandidType;
use ic_stable_structures::VectorMemory;
use proptest::prelude::*;
use serde::Deserialize;

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
struct Label(String);

impl SessionMeta for Label {
    fn same_request(&self, other: &Self) -> bool {
        self == other
    }
}

/// A sink over a heap buffer: the simplest faithful `ByteSink`.
struct VecSink(Vec<u8>);

impl ByteSink for VecSink {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), SinkError> {
        let end = offset as usize + bytes.len();
        if end > self.0.len() {
            return Err(SinkError::OutOfBounds {
                offset,
                len: bytes.len() as u64,
                capacity: self.0.len() as u64,
            });
        }
        self.0[offset as usize..end].copy_from_slice(bytes);
        Ok(())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SinkError> {
        buf.copy_from_slice(&self.0[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
}

const POLICY: SessionPolicy = SessionPolicy {
    idle_timeout_ns: 1_000,
    retention_ns: 10_000,
};

fn service() -> SessionService<VectorMemory, Label> {
    let memory = VectorMemory::default;
    let memories = SessionMemories {
        records: memory(),
        idempotency: memory(),
        bitmaps: memory(),
        deadlines: memory(),
        header: memory(),
    };
    SessionService::init(memories, POLICY)
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::new(b"alice", k.as_bytes())
}

fn start(
    svc: &mut SessionService<VectorMemory, Label>,
    total: u64,
    chunk: u32,
) -> (SessionId, VecSink) {
    let sid = svc.allocate_id();
    let spec = ChunkSpec::new(total, chunk, total.div_ceil(chunk as u64) as u32).unwrap();
    svc.create(sid, Label("f".into()), spec, key(&format!("k{}", sid.0)), 0)
        .unwrap();
    (sid, VecSink(vec![0; total as usize]))
}

#[test]
fn spec_rejects_disagreeing_declarations() {
    assert_eq!(
        ChunkSpec::new(10, 4, 2),
        Err(SpecError::ChunkCountMismatch {
            declared: 2,
            derived: 3
        })
    );
    assert_eq!(ChunkSpec::new(10, 0, 3), Err(SpecError::ZeroChunkSize));
    let spec = ChunkSpec::new(10, 4, 3).unwrap();
    assert_eq!(
        (spec.chunk_len(0), spec.chunk_len(2), spec.chunk_len(3)),
        (Some(4), Some(2), None)
    );
}

#[test]
fn idempotent_create_returns_the_same_session_and_conflicts_on_other_meta() {
    let mut svc = service();
    let spec = ChunkSpec::new(8, 4, 2).unwrap();
    let first = svc.allocate_id();
    let created = svc.create(first, Label("a".into()), spec, key("k"), 0);
    assert_eq!(created, Ok(CreateOutcome::Created(first)));
    let retry = svc.allocate_id();
    assert_eq!(
        svc.create(retry, Label("a".into()), spec, key("k"), 5),
        Ok(CreateOutcome::Existing(first))
    );
    assert_eq!(
        svc.create(retry, Label("b".into()), spec, key("k"), 5),
        Err(SessionError::IdempotencyConflict { existing: first })
    );
    assert_eq!(svc.len(), 1);
    // The key is forgotten with its session.
    svc.abort(first, 1).unwrap();
    svc.remove(first).unwrap();
    assert_eq!(
        svc.create(retry, Label("b".into()), spec, key("k"), 5),
        Ok(CreateOutcome::Created(retry))
    );
}

#[test]
fn chunks_are_validated_and_duplicates_are_harmless() {
    let mut svc = service();
    let (sid, mut sink) = start(&mut svc, 10, 4);
    assert_eq!(
        svc.put_chunk(sid, 3, b"xx", &mut sink, 1),
        Err(SessionError::IndexOutOfRange {
            index: 3,
            chunk_count: 3
        })
    );
    assert_eq!(
        svc.put_chunk(sid, 2, b"xxx", &mut sink, 1),
        Err(SessionError::WrongChunkLength {
            index: 2,
            expected: 2,
            actual: 3
        })
    );
    let receipt = svc.put_chunk(sid, 2, b"yz", &mut sink, 1).unwrap();
    assert_eq!(receipt.write, ChunkWrite::Stored);
    assert_eq!(receipt.expires_at, 1 + POLICY.idle_timeout_ns);
    let again = svc.put_chunk(sid, 2, b"yz", &mut sink, 2).unwrap();
    assert_eq!(
        (again.write, again.received_chunks),
        (ChunkWrite::Duplicate, 1)
    );
    assert_eq!(
        svc.put_chunk(sid, 2, b"YZ", &mut sink, 3),
        Err(SessionError::ChunkConflict { index: 2 })
    );
    assert_eq!(&sink.0[8..], b"yz");
    assert_eq!(
        svc.complete(sid, 3),
        Err(SessionError::Incomplete { missing_chunks: 2 })
    );
    svc.allow_rewrites(sid, 3).unwrap();
    let replaced = svc.put_chunk(sid, 2, b"YZ", &mut sink, 3).unwrap();
    assert_eq!(replaced.write, ChunkWrite::Replaced);
    assert_eq!(&sink.0[8..], b"YZ");
}

#[test]
fn state_machine_transitions_cannot_be_skipped_or_reversed() {
    let mut svc = service();
    let (sid, mut sink) = start(&mut svc, 4, 4);
    svc.put_chunk(sid, 0, b"abcd", &mut sink, 1).unwrap();
    let done = svc.complete(sid, 2).unwrap();
    assert_eq!(done.status, SessionStatus::Committed);
    assert_eq!(svc.abort(sid, 3), Err(SessionError::Committed(sid)));
    assert_eq!(
        svc.expire(sid, 10_000_000),
        Err(SessionError::Committed(sid))
    );
    assert_eq!(
        svc.put_chunk(sid, 0, b"abcd", &mut sink, 3),
        Err(SessionError::Committed(sid))
    );

    let (aborted, mut sink) = start(&mut svc, 4, 4);
    svc.abort(aborted, 1).unwrap();
    assert_eq!(
        svc.complete(aborted, 2),
        Err(SessionError::Aborted(aborted))
    );
    assert_eq!(
        svc.put_chunk(aborted, 0, b"abcd", &mut sink, 2),
        Err(SessionError::Aborted(aborted))
    );

    let (idle, mut sink) = start(&mut svc, 4, 4);
    assert_eq!(
        svc.expire(idle, 999),
        Err(SessionError::StillActive { expires_at: 1_000 })
    );
    assert_eq!(
        svc.put_chunk(idle, 0, b"abcd", &mut sink, 1_000),
        Err(SessionError::Expired(idle))
    );
    assert_eq!(
        svc.expire(idle, 1_000).unwrap().status,
        SessionStatus::Expired
    );
    assert_eq!(svc.abort(idle, 1_001), Err(SessionError::Expired(idle)));
}

#[test]
fn due_lists_expiring_then_prunable_sessions() {
    let mut svc = service();
    let (a, mut sink) = start(&mut svc, 4, 4);
    let (b, _) = start(&mut svc, 4, 4);
    svc.put_chunk(a, 0, b"abcd", &mut sink, 500).unwrap();
    assert_eq!(svc.due(999, 10), vec![]);
    assert_eq!(svc.due(1_000, 10), vec![b]);
    svc.expire(b, 1_000).unwrap();
    assert_eq!(svc.due(1_500, 10), vec![a]);
    assert_eq!(svc.due(11_000, 1), vec![a]);
    svc.remove(b).unwrap();
    assert!(svc.get(b).is_none());
}

/// What a session should look like, kept the simplest possible way.
#[derive(Debug, Default)]
struct Model {
    chunks: std::collections::BTreeMap<u32, Vec<u8>>,
}

#[derive(Debug, Clone)]
enum Op {
    Put { index: u32, variant: u8 },
    Abort,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => (0u32..12, 0u8..2).prop_map(|(index, variant)| Op::Put { index, variant }),
        1 => Just(Op::Abort),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Random order, duplicates, conflicting retries, out-of-range indices
    /// and aborts, checked against a model.
    #[test]
    fn sessions_match_a_simple_model(ops in proptest::collection::vec(op(), 1..80), total in 1u64..40) {
        let chunk = 4u32;
        let mut svc = service();
        let (sid, mut sink) = start(&mut svc, total, chunk);
        let spec = svc.get(sid).unwrap().spec;
        let mut model = Model::default();
        let mut aborted = false;
        for (t, op) in ops.into_iter().enumerate() {
            let now = t as u64;
            match op {
                Op::Abort => {
                    let result = svc.abort(sid, now);
                    prop_assert_eq!(result.is_ok(), !aborted);
                    aborted = true;
                }
                Op::Put { index, variant } => {
                    let len = spec.chunk_len(index).unwrap_or(1) as usize;
                    let data: Vec<u8> = (0..len).map(|i| (index as u8).wrapping_mul(31) ^ variant ^ i as u8).collect();
                    let result = svc.put_chunk(sid, index, &data, &mut sink, now);
                    let expected = if aborted {
                        Err(SessionError::Aborted(sid))
                    } else if index >= spec.chunk_count() {
                        Err(SessionError::IndexOutOfRange { index, chunk_count: spec.chunk_count() })
                    } else {
                        match model.chunks.get(&index) {
                            Some(prev) if *prev == data => Ok(ChunkWrite::Duplicate),
                            Some(_) => Err(SessionError::ChunkConflict { index }),
                            None => { model.chunks.insert(index, data.clone()); Ok(ChunkWrite::Stored) }
                        }
                    };
                    prop_assert_eq!(result.map(|r| r.write), expected);
                }
            }
        }
        let session = svc.get(sid).unwrap();
        prop_assert_eq!(session.received_chunks as usize, model.chunks.len());
        for (index, data) in &model.chunks {
            let at = spec.offset(*index) as usize;
            prop_assert_eq!(&sink.0[at..at + data.len()], &data[..]);
            prop_assert!(svc.is_received(sid, *index));
        }
        let (missing, _) = svc.missing_ranges(sid, 0, usize::MAX).unwrap();
        let missing_count: u32 = missing.iter().map(|r| r.end - r.start).sum();
        prop_assert_eq!(missing_count, session.missing_chunks());
    }
}
