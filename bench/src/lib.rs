//! Measuring the upload canister's costs on the embedded IC host.
//!
//! The host counts instructions as the replica does and reports, per
//! message, the 4 KiB heap and stable pages it dirtied
//! ([`embedded_ic_host::MessageStats`]). This crate drives the real
//! `.wasm` through uploads, reads, upgrades and timers and collects those
//! figures; the *floors* come from the probe canister
//! (`embedded-ic-host/probe-canister`), built with the same release profile:
//! `floor_put` decodes a blob, hashes it once and writes it to fresh stable
//! pages; `floor_read` reads a range and replies it.
//!
//! The `upload-bench` binary prints the full benchmark; the performance
//! tests of the `backend` package assert the same figures on small sizes.

use backend::http::{HttpRequest, HttpResponse};
use backend::limits::{Limits, MAX_CHUNK_BYTES};
use backend::sharing::links::{ShareError, ShareLink};
use backend::upload::*;
use candid::{Decode, Encode, Principal};
use embedded_ic_host::{Host, MessageStats};
use serde::Serialize;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;
use upload_harness::client::{test_file, UploadClient};
use upload_harness::{backend_wasm, EmbeddedEnv, IcEnv};

pub use upload_harness::user;

/// The full-size chunk: the largest the 2 MiB ingress limit allows.
pub const CHUNK: u32 = MAX_CHUNK_BYTES;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// The probe canister's release `.wasm` (it holds the floors).
pub fn probe_wasm() -> &'static [u8] {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../embedded-ic-host/probe-canister/Cargo.toml");
        let path = embedded_ic_host::build_canister_wasm(&manifest, "ic-host-probe-canister");
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    })
}

/// A principal per number, beyond the 255 of [`user`].
pub fn principal(n: u32) -> Principal {
    let mut bytes = [0xB5u8; 29];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    bytes[28] = 0x01;
    Principal::from_slice(&bytes)
}

/// The bytes of chunk `index` of test file `seed`.
pub fn chunk_bytes(seed: u64, file_len: u64, index: u32) -> Vec<u8> {
    let start = u64::from(index) * u64::from(CHUNK);
    let len = (file_len - start).min(u64::from(CHUNK));
    test_file(
        len as usize,
        seed.wrapping_mul(1_000_003).wrapping_add(u64::from(index)),
    )
}

/// SHA-256 of test file `seed` (computed chunk by chunk: files may be
/// larger than what is worth holding in memory).
pub fn file_sha256(seed: u64, file_len: u64) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for index in 0..chunk_count(file_len) {
        hasher.update(chunk_bytes(seed, file_len, index));
    }
    hasher.finalize().into()
}

pub fn chunk_count(file_len: u64) -> u32 {
    file_len.div_ceil(u64::from(CHUNK)).max(1) as u32
}

/// The order chunks arrive in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Order {
    InOrder,
    /// Last chunk first: every chunk waits for chunk 0, which comes last,
    /// so all hashing is read back from stable memory (the worst case).
    Reversed,
    /// A fixed pseudo-random permutation.
    Shuffled,
}

impl Order {
    pub fn indices(self, n: u32) -> Vec<u32> {
        let mut v: Vec<u32> = (0..n).collect();
        match self {
            Order::InOrder => {}
            Order::Reversed => v.reverse(),
            Order::Shuffled => {
                let mut state = 0x2545_F491_4F6C_DD1Du64;
                for i in (1..v.len()).rev() {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    v.swap(i, (state % (i as u64 + 1)) as usize);
                }
            }
        }
        v
    }

    pub fn name(self) -> &'static str {
        match self {
            Order::InOrder => "in order",
            Order::Reversed => "reversed",
            Order::Shuffled => "shuffled",
        }
    }
}

/// Totals over a set of messages.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Totals {
    pub messages: u64,
    pub instructions: u64,
    pub max_instructions: u64,
    pub min_instructions: u64,
    pub max_heap_dirty_pages: u64,
    pub max_stable_dirty_pages: u64,
    pub heap_dirty_pages: u64,
    pub stable_dirty_pages: u64,
}

impl Totals {
    pub fn of<'a>(messages: impl IntoIterator<Item = &'a MessageStats>) -> Self {
        let mut t = Totals {
            min_instructions: u64::MAX,
            ..Totals::default()
        };
        for m in messages {
            t.messages += 1;
            t.instructions += m.instructions;
            t.max_instructions = t.max_instructions.max(m.instructions);
            t.min_instructions = t.min_instructions.min(m.instructions);
            t.max_heap_dirty_pages = t.max_heap_dirty_pages.max(m.heap_dirty_pages);
            t.max_stable_dirty_pages = t.max_stable_dirty_pages.max(m.stable_dirty_pages);
            t.heap_dirty_pages += m.heap_dirty_pages;
            t.stable_dirty_pages += m.stable_dirty_pages;
        }
        if t.messages == 0 {
            t.min_instructions = 0;
        }
        t
    }

    pub fn mean_instructions(&self) -> f64 {
        self.instructions as f64 / self.messages.max(1) as f64
    }
}

/// Everything one upload cost.
#[derive(Clone, Debug, Serialize)]
pub struct UploadRun {
    pub order: Order,
    pub bytes: u64,
    pub chunks: u32,
    pub begin: u64,
    /// The `uploads_put_chunk` messages.
    pub put_chunk: Totals,
    /// Those of full-size chunks (all but a shorter last one).
    pub full_chunks: Totals,
    /// The median instructions of a full-size chunk's message.
    pub median_full_chunk: u64,
    /// Timer and self-call messages the upload caused (hashing catching up).
    pub background: Totals,
    /// The `uploads_finish` messages (more than one if hashing lagged).
    pub finish: Totals,
    /// The last `uploads_finish`, the one that committed.
    pub final_finish: u64,
    /// The largest message of the upload, begin to commit, timers included.
    pub largest_message: u64,
    pub memory_id: MemoryItemId,
    pub wall_seconds: f64,
}

impl UploadRun {
    /// Instructions of put_chunk, background and finish, per byte (begin,
    /// constant at about 1.4 M, is left out).
    pub fn amortised_per_byte(&self) -> f64 {
        (self.put_chunk.instructions + self.background.instructions + self.finish.instructions)
            as f64
            / self.bytes as f64
    }
}

/// What the calls around an upload cost for one file size.
#[derive(Clone, Debug, Serialize)]
pub struct Lifecycle {
    pub bytes: u64,
    pub begin: u64,
    /// `uploads_status` of a session with no chunk yet, and with one.
    pub status_fresh: u64,
    pub status_one_chunk: u64,
    /// `uploads_abort` of a session holding one chunk.
    pub abort: u64,
    /// The `uploads_finish` that committed the upload.
    pub finish: u64,
}

/// The upload canister and the probe in one embedded host, with the
/// message log on.
pub struct Bench {
    pub env: EmbeddedEnv,
    pub canister: Principal,
    pub probe: Principal,
    next_key: u64,
}

fn ok<T, E: std::fmt::Debug>(what: &str, r: Result<Result<T, E>, String>) -> T {
    match r {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("{what}: {e:?}"),
        Err(e) => panic!("{what}: {e}"),
    }
}

impl Bench {
    pub fn new() -> Self {
        let mut env = EmbeddedEnv::new();
        // The canister's debug output would interleave with the table; it
        // stays in `Host::logs` and is echoed only on request.
        env.host()
            .set_echo_logs(std::env::var_os("BENCH_CANISTER_LOG").is_some());
        let canister = env.install(backend_wasm());
        let probe = env
            .host()
            .install(probe_wasm(), Encode!().unwrap(), Principal::anonymous())
            .expect("install probe");
        env.host().record_messages(true);
        Self {
            env,
            canister,
            probe,
            next_key: 0,
        }
    }

    pub fn host(&mut self) -> &mut Host {
        self.env.host()
    }

    pub fn client(&mut self, caller: Principal) -> UploadClient<'_> {
        UploadClient::new(&mut self.env, self.canister, caller)
    }

    /// The stats of the last message, and the log emptied.
    pub fn last(&mut self) -> MessageStats {
        let stats = self.host().last_message_stats().clone();
        self.host().take_message_log();
        stats
    }

    pub fn create_capsule(&mut self, owner: Principal) -> CapsuleId {
        ok(
            "capsules_create",
            self.client(owner).create_capsule("bench"),
        )
        .capsule_id
    }

    fn key(&mut self) -> String {
        self.next_key += 1;
        format!("bench-{}", self.next_key)
    }

    /// Starts an upload of `len` bytes in full-size chunks.
    pub fn begin(&mut self, caller: Principal, capsule: CapsuleId, len: u64) -> (SessionId, u64) {
        let key = self.key();
        let started = ok(
            "uploads_begin",
            self.client(caller)
                .begin(capsule, "bench.bin", len, CHUNK, &key),
        );
        (started.session_id, self.last().instructions)
    }

    /// Uploads test file `seed` of `len` bytes, chunks in `order`, letting
    /// timers run after every chunk, then finishes it.
    pub fn upload(
        &mut self,
        caller: Principal,
        capsule: CapsuleId,
        seed: u64,
        len: u64,
        order: Order,
    ) -> UploadRun {
        let started = std::time::Instant::now();
        let digest = file_sha256(seed, len);
        let (session, begin) = self.begin(caller, capsule, len);
        let mut put = Vec::new();
        let mut full = Vec::new();
        let mut background = Vec::new();
        for index in order.indices(chunk_count(len)) {
            let bytes = chunk_bytes(seed, len, index);
            ok(
                "uploads_put_chunk",
                self.client(caller).put_chunk(session, index, &bytes),
            );
            if bytes.len() == CHUNK as usize {
                full.push(self.host().last_message_stats().clone());
            }
            self.env.tick();
            self.sort_log(&mut put, &mut background);
        }
        let mut full_instructions: Vec<u64> = full.iter().map(|m| m.instructions).collect();
        full_instructions.sort_unstable();
        let mut finish = Vec::new();
        let committed = loop {
            let r = self.client(caller).finish_with(session, digest, len);
            self.sort_log(&mut finish, &mut background);
            match r {
                Ok(Ok(c)) => break c,
                Ok(Err(UploadError::VerificationPending { .. })) => self.env.tick(),
                other => panic!("uploads_finish: {other:?}"),
            }
            self.sort_log(&mut finish, &mut background);
        };
        let final_finish = finish.last().map(|m| m.instructions).unwrap_or(0);
        let largest = put
            .iter()
            .chain(&background)
            .chain(&finish)
            .map(|m| m.instructions)
            .max()
            .unwrap_or(0)
            .max(begin);
        UploadRun {
            order,
            bytes: len,
            chunks: chunk_count(len),
            begin,
            put_chunk: Totals::of(&put),
            full_chunks: Totals::of(&full),
            median_full_chunk: full_instructions
                .get(full_instructions.len() / 2)
                .copied()
                .unwrap_or(0),
            background: Totals::of(&background),
            finish: Totals::of(&finish),
            final_finish,
            largest_message: largest,
            memory_id: committed.memory_id,
            wall_seconds: started.elapsed().as_secs_f64(),
        }
    }

    /// Moves the logged messages into `ingress` (updates called by a user)
    /// or `background` (timers, callbacks, self-calls).
    fn sort_log(&mut self, ingress: &mut Vec<MessageStats>, background: &mut Vec<MessageStats>) {
        let canister_method = |m: &MessageStats| m.method.starts_with("uploads_");
        for m in self.host().take_message_log() {
            use embedded_ic_host::state::Kind;
            match m.kind {
                Kind::InspectMessage => {}
                Kind::Update if canister_method(&m) => ingress.push(m),
                _ => background.push(m),
            }
        }
    }

    /// On a session of `len` bytes: begin, status, one chunk, status and
    /// abort; then test file `seed` uploaded in order. Run it on a fresh
    /// `Bench` so that only the size differs between sizes.
    pub fn lifecycle(&mut self, owner: Principal, seed: u64, len: u64) -> (Lifecycle, UploadRun) {
        let capsule = self.create_capsule(owner);
        let (sid, begin) = self.begin(owner, capsule, len);
        let status_fresh = self.status(owner, sid);
        ok(
            "uploads_put_chunk",
            self.client(owner)
                .put_chunk(sid, 0, &chunk_bytes(seed, len, 0)),
        );
        self.last();
        let status_one_chunk = self.status(owner, sid);
        let abort = self.abort(owner, sid);
        let run = self.upload(owner, capsule, seed, len, Order::InOrder);
        let lifecycle = Lifecycle {
            bytes: len,
            begin,
            status_fresh,
            status_one_chunk,
            abort,
            finish: run.final_finish,
        };
        (lifecycle, run)
    }

    /// `uploads_status` of a session (first page of 100 ranges).
    pub fn status(&mut self, caller: Principal, session: SessionId) -> u64 {
        ok(
            "uploads_status",
            self.client(caller).status(session, 0, 100),
        );
        self.last().instructions
    }

    pub fn abort(&mut self, caller: Principal, session: SessionId) -> u64 {
        ok("uploads_abort", self.client(caller).abort(session));
        self.last().instructions
    }

    /// `memories_read` of `len` bytes at `offset`.
    pub fn read(&mut self, caller: Principal, memory: MemoryItemId, offset: u64, len: u64) -> u64 {
        let bytes = ok(
            "memories_read",
            self.client(caller).read(memory, offset, len),
        );
        assert_eq!(bytes.len() as u64, len);
        self.last().instructions
    }

    /// `memories_share` of a memory, then the timer steps that hash its
    /// serving chunks: (the link, the share call's stats, every background
    /// message until the link is certified).
    pub fn share(
        &mut self,
        caller: Principal,
        memory: MemoryItemId,
    ) -> (ShareLink, MessageStats, Vec<MessageStats>) {
        let canister = self.canister;
        let (reply,): (Result<ShareLink, ShareError>,) = upload_harness::update(
            &mut self.env,
            canister,
            caller,
            "memories_share",
            (memory, None::<u64>),
        )
        .expect("memories_share");
        let link = reply.expect("memories_share");
        // The share call awaits raw_rand the first time: its messages are
        // the call and its callback; the callback does the work.
        let log = self.host().take_message_log();
        let call = log
            .iter()
            .filter(|m| m.method == "memories_share" || m.method == "callback")
            .max_by_key(|m| m.instructions)
            .cloned()
            .expect("the share message");
        let background = if link.ready {
            Vec::new()
        } else {
            self.run_timers()
        };
        (link, call, background)
    }

    /// An anonymous `http_request` GET of `path` with an optional `Range`,
    /// and its instructions.
    pub fn http_get(&mut self, path: &str, range: Option<&str>) -> (HttpResponse, u64) {
        let canister = self.canister;
        let request = HttpRequest::new("GET", path, range.map(|r| ("Range", r)).as_slice());
        let (response,): (HttpResponse,) = upload_harness::query(
            &mut self.env,
            canister,
            Principal::anonymous(),
            "http_request",
            (request,),
        )
        .expect("http_request");
        (response, self.last().instructions)
    }

    /// Upgrades the upload canister to the same `.wasm`; the stats of
    /// pre- and post-upgrade together.
    pub fn upgrade(&mut self) -> MessageStats {
        let canister = self.canister;
        self.env.upgrade(canister, backend_wasm()).expect("upgrade");
        self.last()
    }

    pub fn stats(&mut self) -> Stats {
        let stats = self
            .client(upload_harness::user(250))
            .stats()
            .expect("stats");
        self.host().take_message_log();
        stats
    }

    /// Raises limits as a controller would (for benchmarks that need many
    /// sessions).
    pub fn set_limits(&mut self, change: impl FnOnce(&mut Limits)) {
        let mut limits = self.stats().limits;
        change(&mut limits);
        let controller = self.env.controller();
        ok(
            "admin_set_limits",
            self.client(controller).set_limits(limits),
        );
        self.host().take_message_log();
    }

    /// Opens `count` small upload sessions (one chunk of 4 KiB each), spread
    /// over callers `first_caller..` with `per_caller` sessions each (each
    /// caller gets a capsule on first use). Returns the wall time taken.
    pub fn open_sessions(&mut self, first_caller: u32, count: u32, per_caller: u32) -> Duration {
        let started = std::time::Instant::now();
        let mut caller = principal(first_caller);
        let mut capsule = self.create_capsule(caller);
        for n in 0..count {
            if n > 0 && n % per_caller == 0 {
                caller = principal(first_caller + n / per_caller);
                capsule = self.create_capsule(caller);
            }
            let key = self.key();
            ok(
                "uploads_begin",
                self.client(caller).begin(capsule, "s", 4096, 4096, &key),
            );
            self.host().take_message_log();
        }
        started.elapsed()
    }

    /// Runs timers until no message is left to run; returns the messages.
    pub fn run_timers(&mut self) -> Vec<MessageStats> {
        let mut all = Vec::new();
        loop {
            self.env.tick();
            let log = self.host().take_message_log();
            if log.is_empty() {
                return all;
            }
            all.extend(log);
        }
    }

    /// Stable memory of the upload canister, in bytes.
    pub fn stable_bytes(&mut self) -> u64 {
        let canister = self.canister;
        self.host().stable_memory_bytes(canister)
    }

    /// The floor of a chunk upload for `bytes`.
    pub fn floor_put(&mut self, bytes: &[u8]) -> (MessageStats, FloorCosts) {
        let probe = self.probe;
        let arg = Encode!(&ByteBuf::from(bytes.to_vec())).unwrap();
        let reply = self
            .host()
            .update(probe, upload_harness::user(1), "floor_put", arg)
            .expect("floor_put");
        let costs = Decode!(&reply, FloorCosts).expect("floor_put reply");
        (self.last(), costs)
    }

    /// Instructions of SHA-256 over `bytes` called once per 64-byte block.
    pub fn sha256_blockwise(&mut self, bytes: &[u8]) -> u64 {
        let probe = self.probe;
        let arg = Encode!(&ByteBuf::from(bytes.to_vec())).unwrap();
        let reply = self
            .host()
            .update(probe, upload_harness::user(1), "sha256_blockwise", arg)
            .expect("sha256_blockwise");
        self.host().take_message_log();
        Decode!(&reply, u64).expect("sha256_blockwise reply")
    }

    /// The floor of reading `len` bytes back (a stable read replied as a blob).
    pub fn floor_read(&mut self, offset: u64, len: u64) -> MessageStats {
        let probe = self.probe;
        let reply = self
            .host()
            .query(
                probe,
                upload_harness::user(1),
                "floor_read",
                Encode!(&offset, &len).unwrap(),
            )
            .expect("floor_read");
        let bytes = Decode!(&reply, ByteBuf).expect("floor_read reply");
        assert_eq!(bytes.len() as u64, len);
        self.last()
    }

    /// The floor of a full-size chunk, per byte, in steady state (the first
    /// calls allocate; the median of `calls` is taken).
    pub fn floor(&mut self, calls: usize) -> Floor {
        let mut runs: Vec<(MessageStats, FloorCosts)> = (0..calls.max(3))
            .map(|i| self.floor_put(&chunk_bytes(99, u64::from(CHUNK) * 64, i as u32)))
            .collect();
        runs.sort_by_key(|(m, _)| m.instructions);
        let (stats, costs) = runs.swap_remove(runs.len() / 2);
        let offset = costs.offset;
        let read = self.floor_read(offset, u64::from(CHUNK));
        Floor {
            bytes: u64::from(CHUNK),
            instructions: stats.instructions,
            decode: costs.decode,
            hash: costs.hash,
            write: costs.write,
            heap_dirty_pages: stats.heap_dirty_pages,
            stable_dirty_pages: stats.stable_dirty_pages,
            read_instructions: read.instructions,
        }
    }
}

/// What serving and sharing cost (see [`serving`]).
#[derive(Clone, Debug, Serialize)]
pub struct Serving {
    /// The shared video's length.
    pub bytes: u64,
    /// Its first link: one SHA-256 pass over the file and the
    /// certification of every response.
    pub first_share: u64,
    /// Responses that first link certified.
    pub first_share_responses: u64,
    /// SHA-256 of the floor, per byte.
    pub hash_floor_per_byte: f64,
    /// `http_request` of a 2 MB middle chunk (`Range: bytes=2000000-`).
    pub chunk: u64,
    /// `floor_read` of as many bytes.
    pub chunk_floor: u64,
    /// `http_request` answered with the root 404.
    pub not_found: u64,
    /// A further link of a shared memory, with one link in the canister
    /// and with `many_links`.
    pub further_link_few: u64,
    pub further_link_many: u64,
    pub many_links: u64,
    /// Certifying one response (first link of a one-chunk memory, less a
    /// further link, over its 7 responses).
    pub per_response: f64,
    /// Upgrades without links and with `upgrade_responses` certified.
    pub upgrade_without_links: u64,
    pub upgrade_with_links: u64,
    pub upgrade_responses: u64,
    /// Wasm heap after those two upgrades (the tree is rebuilt on it).
    pub heap_without_links: u64,
    pub heap_with_links: u64,
}

impl Serving {
    pub fn upgrade_per_response(&self) -> f64 {
        (self.upgrade_with_links - self.upgrade_without_links) as f64
            / self.upgrade_responses as f64
    }

    /// Heap per certified response (64 KiB pages: a coarse figure).
    pub fn heap_per_response(&self) -> f64 {
        self.heap_with_links.saturating_sub(self.heap_without_links) as f64
            / self.upgrade_responses as f64
    }
}

/// On a fresh canister: a `len`-byte video shared, one of its middle chunks
/// served, a 404; 100 small memories shared, and 300 more links over 10 of
/// them; upgrades before and after.
pub fn serving(len: u64) -> Serving {
    use backend::http::SERVE_CHUNK_BYTES;
    use backend::sharing::links::entries_for;
    let mut bench = Bench::new();
    let floor = bench.floor(3);
    let owner = user(1);
    let capsule = bench.create_capsule(owner);
    let upgrade_without_links = bench.upgrade().instructions;
    let canister = bench.canister;
    let heap_without_links = bench.host().heap_bytes(canister);
    let run = bench.upload(owner, capsule, 1, len, Order::InOrder);
    let (link, first_share, background) = bench.share(owner, run.memory_id);
    assert!(
        link.ready && background.is_empty(),
        "certified in one message"
    );

    let (response, chunk) = bench.http_get(&link.path, Some("bytes=2000000-"));
    assert_eq!(response.status_code, 206);
    assert_eq!(response.body.len() as u64, SERVE_CHUNK_BYTES);
    let (_, probe) = bench.floor_put(&vec![7u8; SERVE_CHUNK_BYTES as usize]);
    let chunk_floor = bench
        .floor_read(probe.offset, SERVE_CHUNK_BYTES)
        .instructions;
    let (missing, not_found) = bench.http_get("/s/999/0/00000000000000000000000000000000", None);
    assert_eq!(missing.status_code, 404);

    let (_, few, _) = bench.share(owner, run.memory_id);
    let memories: Vec<MemoryItemId> = (0..100)
        .map(|seed| {
            bench
                .upload(owner, capsule, 100 + seed, 1_000, Order::InOrder)
                .memory_id
        })
        .collect();
    let (_, first_small, _) = bench.share(owner, memories[0]);
    for memory in &memories[1..] {
        bench.share(owner, *memory);
    }
    for memory in &memories[..10] {
        for _ in 0..30 {
            bench.share(owner, *memory);
        }
    }
    let (_, many, _) = bench.share(owner, run.memory_id);
    let upgrade_with_links = bench.upgrade().instructions;
    let heap_with_links = bench.host().heap_bytes(canister);
    Serving {
        bytes: len,
        first_share: first_share.instructions,
        first_share_responses: entries_for(len),
        hash_floor_per_byte: floor.hash as f64 / floor.bytes as f64,
        chunk,
        chunk_floor,
        not_found,
        further_link_few: few.instructions,
        further_link_many: many.instructions,
        many_links: 2 + 100 + 10 * 30,
        per_response: (first_small.instructions - few.instructions) as f64
            / entries_for(1_000) as f64,
        upgrade_without_links,
        upgrade_with_links,
        upgrade_responses: entries_for(len) + 100 * entries_for(1_000),
        heap_without_links,
        heap_with_links,
    }
}

impl Default for Bench {
    fn default() -> Self {
        Self::new()
    }
}

/// `floor_put`'s reply (see the probe canister).
#[derive(candid::CandidType, serde::Deserialize, Debug, Clone)]
pub struct FloorCosts {
    pub decode: u64,
    pub hash: u64,
    pub write: u64,
    pub offset: u64,
    pub sha256: ByteBuf,
}

/// The floors for one full-size chunk.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Floor {
    pub bytes: u64,
    /// The whole `floor_put` message.
    pub instructions: u64,
    /// Its parts, by `performance_counter`: everything before the method
    /// body (argument copy and Candid decode), the SHA-256 pass, the write.
    pub decode: u64,
    pub hash: u64,
    pub write: u64,
    pub heap_dirty_pages: u64,
    pub stable_dirty_pages: u64,
    /// `floor_read` of the same bytes.
    pub read_instructions: u64,
}

impl Floor {
    pub fn per_byte(&self) -> f64 {
        self.instructions as f64 / self.bytes as f64
    }
    pub fn read_per_byte(&self) -> f64 {
        self.read_instructions as f64 / self.bytes as f64
    }
}

#[derive(Serialize)]
pub struct Sweep {
    /// The timer tasks that did maintenance work (expired sessions).
    pub maintenance: Totals,
    pub maintenance_runs: u64,
    /// Every message of the sweep (global timer, self-calls, tasks).
    pub all: Totals,
    /// Open sessions expired, or (when none was open) records pruned.
    pub reclaimed: u64,
}

/// Moves time 25 hours on (beyond the idle timeout and the retention of
/// finished records) and lets the timers do what became due.
pub fn sweep(bench: &mut Bench) -> Sweep {
    let before = bench.stats();
    bench
        .env
        .advance_time(std::time::Duration::from_secs(25 * 3600));
    let log = bench.run_timers();
    let all = Totals::of(&log);
    // The task messages are the self-calls that run maintenance; the
    // global-timer messages only dispatch them.
    let tasks: Vec<_> = log
        .iter()
        .filter(|m| m.method != "canister_global_timer" && m.method != "callback")
        .cloned()
        .collect();
    let after = bench.stats();
    let expired = before.open_sessions - after.open_sessions;
    let pruned = before.session_records - after.session_records;
    Sweep {
        maintenance: Totals::of(&tasks),
        maintenance_runs: tasks.len() as u64,
        all,
        reclaimed: if expired > 0 { expired } else { pruned },
    }
}

#[derive(Serialize)]
pub struct Churn {
    pub live_bytes: u64,
    pub blobs: u64,
    pub stable_bytes: u64,
    /// Stable memory once every structure was used once.
    pub fixed_overhead: u64,
    /// The blob store grows in whole `MemoryManager` buckets.
    pub bucket_rounding: u64,
    pub per_blob_overhead: u64,
    pub used: u64,
    pub free: u64,
    pub high_water: u64,
}

/// Uploads, aborts, lets expire, deletes and uploads again (files of
/// `scale` times 1 to 17 MiB); then compares stable memory with the live
/// data.
pub fn churn(scale: u64) -> Churn {
    let mut bench = Bench::new();
    let owner = user(2);
    let capsule = bench.create_capsule(owner);
    // Touch every structure once (commit, delete, abort, expire, prune), so
    // each has its first 8 MiB bucket: the fixed overhead, with one more
    // bucket for the blob store's growth in whole buckets.
    let run = bench.upload(owner, capsule, 1, 1, Order::InOrder);
    bench
        .client(owner)
        .delete_memory(run.memory_id)
        .unwrap()
        .unwrap();
    let (sid, _) = bench.begin(owner, capsule, 1);
    bench.abort(owner, sid);
    bench.begin(owner, capsule, 1);
    sweep(&mut bench);
    sweep(&mut bench);
    let fixed_overhead = bench.stable_bytes();
    let sizes: Vec<u64> = [3, 17, 1, 9, 5, 12, 2, 7]
        .iter()
        .map(|m| m * MIB * scale + 1_234)
        .collect();
    let mut memories = Vec::new();
    for (i, len) in sizes.iter().enumerate() {
        let run = bench.upload(owner, capsule, 300 + i as u64, *len, Order::InOrder);
        memories.push((run.memory_id, *len));
    }
    // Abort two half-done uploads, let one expire.
    for len in [6 * MIB * scale, 4 * MIB * scale] {
        let (sid, _) = bench.begin(owner, capsule, len);
        for index in 0..chunk_count(len) / 2 {
            bench
                .client(owner)
                .put_chunk(sid, index, &chunk_bytes(5, len, index))
                .unwrap()
                .unwrap();
        }
        bench.abort(owner, sid);
    }
    let len = 5 * MIB * scale;
    let (sid, _) = bench.begin(owner, capsule, len);
    bench
        .client(owner)
        .put_chunk(sid, 0, &chunk_bytes(6, len, 0))
        .unwrap()
        .unwrap();
    sweep(&mut bench);
    // Delete every other memory, then upload again.
    for (memory, _) in memories.iter().step_by(2) {
        bench.client(owner).delete_memory(*memory).unwrap().unwrap();
    }
    let mut live: Vec<u64> = memories.iter().skip(1).step_by(2).map(|m| m.1).collect();
    for (i, m) in [8, 4, 11, 1].iter().enumerate() {
        let len = m * MIB * scale + 77;
        bench.upload(owner, capsule, 400 + i as u64, len, Order::Shuffled);
        live.push(len);
    }
    bench.host().take_message_log();
    let stats = bench.stats();
    Churn {
        live_bytes: live.iter().sum(),
        blobs: live.len() as u64,
        stable_bytes: bench.stable_bytes(),
        fixed_overhead,
        bucket_rounding: 8 * MIB,
        // A blob's last block is rounded up to 4 KiB; its records (memory,
        // blob and extents) take well under 1 KiB more.
        per_blob_overhead: 5 * 1024,
        used: stats.used_bytes,
        free: stats.free_bytes,
        high_water: stats.high_water_bytes,
    }
}

/// Stable memory one adversarial order of chunks grew, against what it
/// wrote.
#[derive(Serialize, Clone)]
pub struct AdversarialCase {
    pub name: &'static str,
    /// Bytes the uploads declared (reserved).
    pub declared: u64,
    pub written: u64,
    pub grown: u64,
    /// `1.05 x written + declared / 1024 (block table) + two 8 MiB
    /// buckets of rounding (blocks and table)`.
    pub allowed: u64,
}

/// Chunks sent in orders that once grew stable memory by whole
/// reservations: only the last chunk (then abort), one far chunk per
/// session, every other chunk. Each on a fresh canister whose structures
/// were touched once, so only the blob bytes grow.
pub fn adversarial(scale: u64) -> Vec<AdversarialCase> {
    let owner = user(2);
    let fresh = || {
        let mut bench = Bench::new();
        let capsule = bench.create_capsule(owner);
        let run = bench.upload(owner, capsule, 1, 1, Order::InOrder);
        bench
            .client(owner)
            .delete_memory(run.memory_id)
            .unwrap()
            .unwrap();
        (bench, capsule)
    };
    let mut cases = Vec::new();
    let mut case = |name: &'static str, files: Vec<(u64, Vec<u32>)>, abort: bool| {
        let (mut bench, capsule) = fresh();
        let before = bench.stable_bytes();
        let (mut declared, mut written) = (0, 0);
        for (len, indices) in files {
            let (sid, _) = bench.begin(owner, capsule, len);
            declared += len;
            for index in indices {
                let bytes = chunk_bytes(9, len, index);
                written += bytes.len() as u64;
                ok(
                    "uploads_put_chunk",
                    bench.client(owner).put_chunk(sid, index, &bytes),
                );
            }
            if abort {
                bench.abort(owner, sid);
            }
        }
        let grown = bench.stable_bytes() - before;
        let allowed = (written as f64 * 1.05) as u64 + declared / 1024 + 16 * MIB;
        cases.push(AdversarialCase {
            name,
            declared,
            written,
            grown,
            allowed,
        });
    };
    let large = 1024 * MIB * scale;
    case(
        "last chunk only, then abort",
        vec![(large, vec![chunk_count(large) - 1])],
        true,
    );
    let far = 128 * MIB * scale;
    case(
        "one far chunk in each of 8 sessions",
        (0..8).map(|_| (far, vec![chunk_count(far) - 2])).collect(),
        false,
    );
    let sparse = 64 * MIB * scale;
    case(
        "every other chunk, last first",
        vec![(sparse, (0..chunk_count(sparse)).rev().step_by(2).collect())],
        false,
    );
    cases
}
