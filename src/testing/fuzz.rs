//! Bodies of the fuzz targets in `fuzz/` (`cargo +nightly fuzz run <target>`).
//! Each takes arbitrary bytes and may not panic. `fuzz/fuzz_targets/*.rs`
//! are one-line wrappers around them, and the tests below replay the corpus
//! kept in `fuzz/corpus/<target>/` under a plain `cargo test`.

use crate::limits::Limits;
use crate::testing::model::{Harness, Op};
use crate::upload::*;
use candid::utils::{ArgumentDecoder, ArgumentEncoder};
use candid::{DecoderConfig, Principal};

/// Most ops one `upload_ops` input runs: enough for long histories, short
/// enough that every input runs in milliseconds.
pub const MAX_OPS: usize = 256;

/// The skipping quota the `ic-cdk` 0.20 entry points decode arguments with
/// (extra arguments, extra fields, mismatched options). They set no
/// decoding quota.
pub const ENTRY_POINT_SKIPPING_QUOTA: usize = 10_000;

/// What every entry point decodes its arguments with.
pub fn entry_point_config() -> DecoderConfig {
    let mut config = DecoderConfig::new();
    config.set_skipping_quota(ENTRY_POINT_SKIPPING_QUOTA);
    config
}

/// Decodes `bytes` as `Args` the way an entry point does; what decodes must
/// encode again, and decode to the same encoding.
fn round_trip<Args>(bytes: &[u8])
where
    Args: for<'a> ArgumentDecoder<'a> + ArgumentEncoder,
{
    // As the generated entry points: no argument bytes mean `()`.
    let bytes: &[u8] = if bytes.is_empty() {
        b"DIDL\x00\x00"
    } else {
        bytes
    };
    let Ok(args) = candid::utils::decode_args_with_config::<Args>(bytes, &entry_point_config())
    else {
        return;
    };
    let encoded = candid::utils::encode_args(args).expect("decoded arguments encode");
    let again: Args = candid::utils::decode_args_with_config(&encoded, &entry_point_config())
        .expect("encoded arguments decode");
    let reencoded = candid::utils::encode_args(again).expect("arguments encode twice");
    assert_eq!(encoded, reencoded, "arguments changed in a round trip");
}

macro_rules! endpoints {
    ($($name:ident: ($($arg:ty),*);)*) => {
        /// Every Candid method of `backend.did`, in the order the first
        /// input byte selects them.
        pub const ENDPOINTS: &[&str] = &[$(stringify!($name)),*];

        /// Decodes `bytes` as the arguments of `ENDPOINTS[method]`.
        fn decode_arguments(method: usize, bytes: &[u8]) {
            let decoders: &[fn(&[u8])] = &[$(round_trip::<($($arg,)*)>),*];
            decoders[method](bytes);
        }

        /// Argument counts, to check against `backend.did`.
        #[cfg(test)]
        const ARITIES: &[usize] = &[$(0 $(+ { let _ = stringify!($arg); 1 })*),*];
    };
}

endpoints! {
    capsules_create: (String);
    capsules_get: (CapsuleId);
    capsules_mine: (Option<CapsuleId>, u32);
    capsules_grant_write: (CapsuleId, Principal);
    capsules_revoke_write: (CapsuleId, Principal);
    uploads_begin: (BeginUploadRequest);
    uploads_put_chunk: (PutChunk);
    uploads_finish: (FinishUpload);
    uploads_abort: (SessionId);
    uploads_status: (StatusRequest);
    uploads_mine: ();
    uploads_chunk_sha256: (SessionId, u32);
    memories_get: (MemoryItemId);
    memories_list: (ListMemories);
    memories_read: (ReadRange);
    memories_delete: (MemoryItemId);
    stats: ();
    admin_usage: (Option<Principal>, u32);
    admin_set_limits: (Limits);
    admin_set_capsule_creation_restricted: (bool);
    admin_allow_capsule_creator: (Principal, bool);
    admin_capsule_creators: (Option<Principal>, u32);
    memories_share: (MemoryItemId, Option<u64>);
    memories_shares: (MemoryItemId);
    memories_unshare: (u64);
    http_request: (crate::http::HttpRequest);
    memories_set_thumbnail: (MemoryItemId, Option<Thumbnail>);
    admin_set_index: (Option<Principal>);
    bucket_register_capsule: (crate::bucket::IndexCapsule);
    bucket_set_state: (crate::bucket::BucketState);
    bucket_report: ();
    bucket_capsules: (Option<CapsuleId>, u32);
    bucket_health: ();
}

/// Fuzz target `candid_args`: the first byte picks an endpoint, the rest
/// are its argument bytes.
pub fn candid_args(data: &[u8]) {
    let Some((selector, bytes)) = data.split_first() else {
        return;
    };
    decode_arguments(usize::from(*selector) % ENDPOINTS.len(), bytes);
}

/// Ops between two full invariant checks in `upload_ops` (every reply is
/// still compared with the model's): about four times the executions.
pub const CHECK_EVERY: usize = 4;

/// Fuzz target `upload_ops`: the bytes decode to ops (`Op::decode`), run
/// against the model, the invariants checked every `CHECK_EVERY` ops.
pub fn upload_ops(data: &[u8]) {
    Harness::run_checking_every(&Op::decode_all(data, MAX_OPS), CHECK_EVERY);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    use std::path::{Path, PathBuf};

    fn corpus_dir(target: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target)
    }

    /// Runs `body` on every file of the target's corpus.
    fn replay(target: &str, body: fn(&[u8])) {
        let dir = corpus_dir(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("corpus entry").path())
            .collect();
        files.sort();
        assert!(files.len() >= 10, "{target}: the corpus is nearly empty");
        for file in files {
            let bytes = std::fs::read(&file).expect("corpus file");
            let outcome = std::panic::catch_unwind(|| body(&bytes));
            assert!(outcome.is_ok(), "{target}: {} fails", file.display());
        }
    }

    #[test]
    fn candid_args_corpus_replays() {
        replay("candid_args", candid_args);
    }

    #[test]
    fn upload_ops_corpus_replays() {
        replay("upload_ops", upload_ops);
    }

    /// The endpoint table is every method of `backend.did`, with its
    /// number of arguments: a new endpoint must be fuzzed too.
    #[test]
    fn endpoints_are_those_of_backend_did() {
        let did =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("backend.did"))
                .expect("read backend.did");
        let (env, actor) = candid_parser::utils::CandidSource::Text(&did)
            .load()
            .expect("backend.did parses");
        let actor = actor.expect("backend.did has a service");
        let service = env.as_service(&actor).expect("a service");
        let mut declared: Vec<(String, usize)> = service
            .iter()
            .map(|(name, ty)| {
                let func = env.as_func(ty).expect("a method");
                (name.to_string(), func.args.len())
            })
            .collect();
        declared.sort();
        let mut fuzzed: Vec<(String, usize)> = ENDPOINTS
            .iter()
            .zip(ARITIES)
            .map(|(name, arity)| (name.to_string(), *arity))
            .collect();
        fuzzed.sort();
        assert_eq!(fuzzed, declared);
    }

    /// One table of endpoints: `crate::admission::RULES` (what
    /// `inspect_message` admits) is it, and the fuzzer's table names the
    /// same methods (its order is the corpus's, so it stays its own list).
    /// Both are also checked against `backend.did`, which is generated from
    /// the entry points.
    #[test]
    fn endpoints_are_the_admission_rules() {
        let mut fuzzed: Vec<&str> = ENDPOINTS.to_vec();
        let mut admitted: Vec<&str> = crate::admission::RULES.iter().map(|r| r.method).collect();
        fuzzed.sort_unstable();
        admitted.sort_unstable();
        assert_eq!(fuzzed, admitted);
    }

    /// Ops survive the byte encoding the fuzzer's corpus uses.
    #[test]
    fn ops_encode_to_what_decodes_back() {
        let mut runner = TestRunner::deterministic();
        let strategy = proptest::collection::vec(crate::testing::model::op_strategy(), 1..50);
        for _ in 0..200 {
            let ops = strategy.new_tree(&mut runner).expect("ops").current();
            let mut bytes = Vec::new();
            for op in &ops {
                op.encode(&mut bytes);
            }
            let back = Op::decode_all(&bytes, usize::MAX);
            let mut again = Vec::new();
            for op in &back {
                op.encode(&mut again);
            }
            assert_eq!(back.len(), ops.len());
            assert_eq!(bytes, again);
        }
    }

    fn leb(mut n: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// A `uploads_put_chunk` argument whose record carries one more field,
    /// `extra`, of type `wire` (type table entries after the record's)
    /// holding `value`.
    fn put_chunk_with_extra(extra_types: &[u8], value: &[u8]) -> Vec<u8> {
        let mut fields: Vec<(u32, Vec<u8>, Vec<u8>)> = vec![
            (
                candid::idl_hash("session_id"),
                vec![0x78],
                1u64.to_le_bytes().to_vec(),
            ),
            (
                candid::idl_hash("index"),
                vec![0x79],
                0u32.to_le_bytes().to_vec(),
            ),
            (candid::idl_hash("bytes"), vec![0x01], vec![1, 7]),
            (candid::idl_hash("sha256"), vec![0x02], vec![0]),
            (candid::idl_hash("extra"), vec![0x03], value.to_vec()),
        ];
        fields.sort_by_key(|f| f.0);
        let mut out = b"DIDL".to_vec();
        // Types: 0 the record, 1 blob, 2 opt blob, 3.. the extra field's.
        out.push(
            3 + extra_types
                .iter()
                .filter(|b| **b == 0x6d || **b == 0x6e)
                .count() as u8,
        );
        out.push(0x6c);
        out.push(fields.len() as u8);
        for (id, ty, _) in &fields {
            leb(u64::from(*id), &mut out);
            out.extend(ty);
        }
        out.extend([0x6d, 0x7b, 0x6e, 0x01]);
        out.extend(extra_types);
        out.extend([1, 0]);
        for (_, _, value) in &fields {
            out.extend(value);
        }
        out
    }

    /// Hostile arguments that would make the decoder skip unbounded work
    /// are refused after at most the entry points' skipping quota: an extra
    /// field `vec null` of 2^40 elements (no bytes on the wire) and the
    /// same nested in vectors.
    #[test]
    fn hostile_arguments_stop_at_the_skipping_quota() {
        let started = std::time::Instant::now();
        let mut huge = Vec::new();
        leb(1 << 40, &mut huge);
        let vec_null = put_chunk_with_extra(&[0x6d, 0x7f], &huge);
        let mut nested_value = Vec::new();
        leb(1 << 20, &mut nested_value);
        for _ in 0..1 << 20 {
            nested_value.push(0x80);
            nested_value.push(0x80);
            nested_value.push(0x04);
        }
        let vec_vec_null = put_chunk_with_extra(&[0x6d, 0x04, 0x6d, 0x7f], &nested_value);
        for (what, bytes) in [("vec null", vec_null), ("vec vec null", vec_vec_null)] {
            let decoded = candid::utils::decode_args_with_config::<(PutChunk,)>(
                &bytes,
                &entry_point_config(),
            );
            let error = format!("{:?}", decoded.expect_err(what));
            assert!(
                error.contains("Skipping cost exceeds the limit"),
                "{what}: {error}"
            );
        }
        // Without the quota the first would run for hours.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    /// Writes seed inputs for both corpora (valid arguments of every
    /// endpoint; op sequences drawn as the property test draws them).
    /// `cargo test -p backend --lib write_fuzz_seeds -- --ignored`, then
    /// fuzz and `cargo fuzz cmin`.
    #[test]
    #[ignore = "writes files under fuzz/corpus"]
    fn write_fuzz_seeds() {
        use candid::utils::encode_args;
        use serde_bytes::ByteBuf;
        let p = Principal::from_slice(&[1; 29]);
        let seeds: Vec<(&str, Vec<u8>)> = vec![
            (
                "capsules_create",
                encode_args(("family".to_string(),)).unwrap(),
            ),
            ("capsules_get", encode_args((CapsuleId(1),)).unwrap()),
            (
                "capsules_mine",
                encode_args((Some(CapsuleId(1)), 10u32)).unwrap(),
            ),
            (
                "capsules_grant_write",
                encode_args((CapsuleId(1), p)).unwrap(),
            ),
            (
                "capsules_revoke_write",
                encode_args((CapsuleId(1), p)).unwrap(),
            ),
            (
                "uploads_begin",
                encode_args((BeginUpload {
                    capsule_id: CapsuleId(1),
                    asset: AssetMetadata {
                        name: "a.jpg".into(),
                        mime_type: "image/jpeg".into(),
                        byte_len: 6,
                        sha256: Some(ByteBuf::from(vec![1; 32])),
                    },
                    chunk_size: 4,
                    expected_chunks: 2,
                    idempotency_key: "k".into(),
                }
                .with_thumbnail(Some(Thumbnail {
                    mime_type: "image/webp".into(),
                    bytes: ByteBuf::from(b"RIFF\x04\0\0\0WEBP".to_vec()),
                })),))
                .unwrap(),
            ),
            (
                "uploads_put_chunk",
                encode_args((PutChunk {
                    session_id: SessionId(1),
                    index: 0,
                    bytes: ByteBuf::from(b"hell".to_vec()),
                    sha256: None,
                },))
                .unwrap(),
            ),
            (
                "uploads_finish",
                encode_args((FinishUpload {
                    session_id: SessionId(1),
                    sha256: ByteBuf::from(vec![2; 32]),
                    byte_len: 6,
                },))
                .unwrap(),
            ),
            ("uploads_abort", encode_args((SessionId(1),)).unwrap()),
            (
                "uploads_status",
                encode_args((StatusRequest {
                    session_id: SessionId(1),
                    from_chunk: 0,
                    max_ranges: 10,
                },))
                .unwrap(),
            ),
            ("uploads_mine", encode_args(()).unwrap()),
            (
                "uploads_chunk_sha256",
                encode_args((SessionId(1), 0u32)).unwrap(),
            ),
            ("memories_get", encode_args((MemoryItemId(1),)).unwrap()),
            (
                "memories_list",
                encode_args((ListMemories {
                    capsule_id: CapsuleId(1),
                    after: None,
                    limit: 10,
                },))
                .unwrap(),
            ),
            (
                "memories_read",
                encode_args((ReadRange {
                    memory_id: MemoryItemId(1),
                    offset: 0,
                    length: 6,
                },))
                .unwrap(),
            ),
            ("memories_delete", encode_args((MemoryItemId(1),)).unwrap()),
            ("stats", encode_args(()).unwrap()),
            ("admin_usage", encode_args((Some(p), 10u32)).unwrap()),
            (
                "admin_set_limits",
                encode_args((Limits::default(),)).unwrap(),
            ),
            (
                "memories_share",
                encode_args((MemoryItemId(1), Some(5u64))).unwrap(),
            ),
            ("memories_shares", encode_args((MemoryItemId(1),)).unwrap()),
            ("memories_unshare", encode_args((3u64,)).unwrap()),
            (
                "memories_set_thumbnail",
                encode_args((
                    MemoryItemId(1),
                    Some(Thumbnail {
                        mime_type: "image/jpeg".into(),
                        bytes: ByteBuf::from(vec![0xFF, 0xD8, 0xFF, 0xE0]),
                    }),
                ))
                .unwrap(),
            ),
            (
                "http_request",
                encode_args((crate::http::HttpRequest::new(
                    "GET",
                    "/s/1/2/00000000000000000000000000000000",
                    &[("Range", "bytes=0-")],
                ),))
                .unwrap(),
            ),
        ];
        let dir = corpus_dir("candid_args");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, args) in seeds {
            let index = ENDPOINTS.iter().position(|e| *e == name).unwrap();
            let mut bytes = vec![index as u8];
            bytes.extend(args);
            std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        }

        let dir = corpus_dir("upload_ops");
        std::fs::create_dir_all(&dir).unwrap();
        let mut runner = TestRunner::deterministic();
        let strategy = proptest::collection::vec(crate::testing::model::op_strategy(), 1..120);
        for i in 0..24 {
            let ops = strategy.new_tree(&mut runner).unwrap().current();
            let mut bytes = Vec::new();
            for op in &ops {
                op.encode(&mut bytes);
            }
            std::fs::write(dir.join(format!("seed-{i:02}")), bytes).unwrap();
        }
    }
}
