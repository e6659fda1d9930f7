//! Demo upload: builds the canister, installs it, uploads a file the way a
//! browser with several calls in flight would (chunks out of order, one
//! retried), finishes it with SHA-256 verification, upgrades the canister,
//! reads the file back and checks it byte for byte.
//!
//! ```text
//! cargo run --release -p upload-harness --bin upload-demo -- \
//!     [FILE] [--size BYTES] [--chunk BYTES] [--in-flight N] [--seed N]
//! ```

use backend::limits::{MAX_CHUNK_BYTES, MAX_READ_BYTES};
use backend::upload::{CommittedUpload, UploadError};
use candid::Principal;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fs::File;
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use upload_harness::client::{self, Reply, UploadClient};
use upload_harness::{backend_wasm_with, user, EmbeddedEnv, IcEnv};

const MIB: f64 = 1024.0 * 1024.0;
const DEFAULT_SIZE: u64 = 64 * 1024 * 1024;
const DEFAULT_IN_FLIGHT: u32 = 12;
/// Files larger than this are read from disk chunk by chunk, never whole.
const IN_MEMORY_LIMIT: u64 = 1 << 30;
/// The replica's per-update-message instruction limit.
const UPDATE_INSTRUCTION_LIMIT: u64 = 40_000_000_000;
/// How many times `uploads_finish` is retried while verification is pending.
const MAX_FINISH_ATTEMPTS: u32 = 1_000;

const USAGE: &str = "\
usage: upload-demo [FILE] [--size BYTES] [--chunk BYTES] [--in-flight N] [--seed N]

  FILE             upload this file (default: generate --size bytes)
  --size BYTES     size of the generated file (default 67108864 = 64 MiB)
  --chunk BYTES    chunk size (default and maximum 1900000)
  --in-flight N    calls a browser keeps in flight (default 12)
  --seed N         seed of the generated content and of the arrival jitter (default 1)";

struct Args {
    file: Option<PathBuf>,
    size: u64,
    chunk: u32,
    in_flight: u32,
    seed: u64,
}

fn parse_number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
    value
        .replace('_', "")
        .parse()
        .map_err(|_| format!("{flag}: not a number: {value}"))
}

/// `Ok(None)` when help was asked for.
fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        file: None,
        size: DEFAULT_SIZE,
        chunk: MAX_CHUNK_BYTES,
        in_flight: DEFAULT_IN_FLIGHT,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next());
        match flag.as_str() {
            "--size" => args.size = parse_number(&flag, value())?,
            "--chunk" => args.chunk = parse_number(&flag, value())?,
            "--in-flight" => args.in_flight = parse_number(&flag, value())?,
            "--seed" => args.seed = parse_number(&flag, value())?,
            "-h" | "--help" => return Ok(None),
            f if f.starts_with('-') => return Err(format!("unknown option {f}\n{USAGE}")),
            _ if args.file.is_none() => args.file = Some(PathBuf::from(arg)),
            _ => return Err(format!("more than one FILE given\n{USAGE}")),
        }
    }
    if args.chunk == 0 || args.chunk > MAX_CHUNK_BYTES {
        return Err(format!("--chunk must be in 1..={MAX_CHUNK_BYTES}"));
    }
    if args.in_flight == 0 {
        return Err("--in-flight must be at least 1".into());
    }
    Ok(Some(args))
}

/// The bytes being uploaded: in memory, or (when large) a file on disk
/// read piece by piece.
enum Source {
    Memory(Vec<u8>),
    Disk { file: File, len: u64 },
}

impl Source {
    fn len(&self) -> u64 {
        match self {
            Source::Memory(data) => data.len() as u64,
            Source::Disk { len, .. } => *len,
        }
    }

    fn read_at(&mut self, offset: u64, len: u64) -> Result<Cow<'_, [u8]>, String> {
        match self {
            Source::Memory(data) => Ok(Cow::Borrowed(
                &data[offset as usize..(offset + len) as usize],
            )),
            Source::Disk { file, .. } => {
                let mut buf = vec![0; len as usize];
                file.seek(SeekFrom::Start(offset))
                    .and_then(|_| file.read_exact(&mut buf))
                    .map_err(|e| format!("reading the file at {offset}: {e}"))?;
                Ok(Cow::Owned(buf))
            }
        }
    }

    fn sha256(&mut self) -> Result<[u8; 32], String> {
        if let Source::Memory(data) = self {
            return Ok(client::sha256(data));
        }
        let mut hasher = Sha256::new();
        let len = self.len();
        let mut offset = 0;
        while offset < len {
            let piece = (len - offset).min(MAX_CHUNK_BYTES as u64);
            hasher.update(&self.read_at(offset, piece)?);
            offset += piece;
        }
        Ok(hasher.finalize().into())
    }
}

/// xorshift64: deterministic jitter without a dependency.
struct Jitter(u64);

impl Jitter {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The order in which chunk calls reach the canister when a browser keeps
/// `lanes` calls in flight: lane `k` sends chunks `k, k + lanes, ...` one
/// after the other; some lanes run a round or two behind the others and
/// each call arrives with a little jitter. One chunk is sent twice (a retry
/// after a lost reply). Returns the order and the retried position (none
/// for an empty file: it has no chunk to send).
fn arrival_order(chunks: u32, lanes: u32, seed: u64) -> (Vec<u32>, Option<usize>) {
    let mut jitter = Jitter::new(seed ^ 0xA5A5);
    let lag: Vec<u64> = (0..lanes)
        .map(|_| match jitter.below(6) {
            0 => 2,
            1 | 2 => 1,
            _ => 0,
        })
        .collect();
    let mut timed: Vec<(u64, u32)> = (0..chunks)
        .map(|i| {
            let round = u64::from(i / lanes);
            let lane = (i % lanes) as usize;
            ((round + lag[lane]) * 1_000 + jitter.below(1_500), i)
        })
        .collect();
    timed.sort_unstable();
    let mut order: Vec<u32> = timed.into_iter().map(|(_, i)| i).collect();
    // Retry: a chunk sent around the middle arrives again a few calls later.
    if order.is_empty() {
        return (order, None);
    }
    let original = order.len() / 2;
    let retry_at = (original + 1 + lanes as usize / 2).min(order.len());
    order.insert(retry_at, order[original]);
    (order, Some(retry_at))
}

/// How a file of `len` bytes splits into chunks of `chunk` bytes, naming
/// a short last chunk: "2 chunks: 1 x 1_900_000 + 1 x 100 bytes".
fn chunk_sizes(len: u64, chunk: u32) -> String {
    let chunk = u64::from(chunk);
    let (full, rest) = (len / chunk, len % chunk);
    match (full, rest) {
        (0, 0) => "0 chunks".into(),
        (0, r) => format!("1 chunk of {} bytes", count(r)),
        (1, 0) => format!("1 chunk of {} bytes", count(chunk)),
        (f, 0) => format!("{f} chunks of {} bytes", count(chunk)),
        (f, r) => format!(
            "{} chunks: {f} x {} + 1 x {} bytes",
            f + 1,
            count(chunk),
            count(r)
        ),
    }
}

/// Instructions relative to the file's size: per MiB for files of a MiB
/// or more, per byte below, nothing for an empty file.
fn per_size(instructions: u64, len: u64) -> String {
    if len == 0 {
        String::new()
    } else if (len as f64) < MIB {
        format!(", {} per byte", count(instructions / len))
    } else {
        format!(
            ", {} per MiB",
            count((instructions as f64 / (len as f64 / MIB)) as u64)
        )
    }
}

/// A progress line on stderr: redrawn in place on a terminal, printed
/// every 10 % otherwise.
struct Progress {
    total_bytes: u64,
    total_chunks: u32,
    start: Instant,
    last_draw: Option<Instant>,
    last_decile: u64,
    /// What the last line showed: the same line is not printed twice.
    shown: Option<(u64, u32, u64)>,
    tty: bool,
}

impl Progress {
    fn new(total_bytes: u64, total_chunks: u32) -> Self {
        Self {
            total_bytes,
            total_chunks,
            start: Instant::now(),
            last_draw: None,
            last_decile: 0,
            shown: None,
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn update(&mut self, bytes: u64, chunks: u32, hashed: u64) {
        if self.shown == Some((bytes, chunks, hashed)) {
            return;
        }
        let done = chunks == self.total_chunks;
        let fraction = if self.total_bytes == 0 {
            1.0
        } else {
            bytes as f64 / self.total_bytes as f64
        };
        if self.tty {
            let due = self
                .last_draw
                .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
            if !due && !done {
                return;
            }
        } else {
            let decile = (fraction * 10.0) as u64;
            if decile == self.last_decile && !done && self.last_draw.is_some() {
                return;
            }
            self.last_decile = decile;
        }
        self.last_draw = Some(Instant::now());
        self.shown = Some((bytes, chunks, hashed));
        const WIDTH: usize = 30;
        let filled = ((fraction * WIDTH as f64) as usize).min(WIDTH);
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let line = format!(
            "[{}{}] {:>8.1}/{:.1} MiB {:>3.0}% {:>7.1} MiB/s  chunks {}/{}  hashed {:.1} MiB",
            "#".repeat(filled),
            "-".repeat(WIDTH - filled),
            bytes as f64 / MIB,
            self.total_bytes as f64 / MIB,
            fraction * 100.0,
            bytes as f64 / MIB / secs,
            chunks,
            self.total_chunks,
            hashed as f64 / MIB,
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r{line}");
            if done {
                let _ = writeln!(err);
            }
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }
}

/// Instructions of the upload's update calls.
#[derive(Default)]
struct Instructions {
    known: bool,
    total: u64,
    max: u64,
    max_call: String,
    finish: Vec<u64>,
}

impl Instructions {
    fn record(&mut self, env: &dyn IcEnv, call: impl FnOnce() -> String) {
        if let Some(n) = env.last_instructions() {
            self.known = true;
            self.total += n;
            if n > self.max {
                self.max = n;
                self.max_call = call();
            }
        }
    }
}

fn ok<T>(what: &str, reply: Reply<T>) -> Result<T, String> {
    match reply {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("{what}: the canister answered {e:?}")),
        Err(e) => Err(format!("{what}: the call failed: {e}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB)
}

fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('_');
        }
        out.push(c);
    }
    out
}

fn opt_mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "n/a (not reported by this host)".into(), mib)
}

fn make_env() -> Box<dyn IcEnv> {
    #[cfg(feature = "pocket-ic")]
    match upload_harness::PocketIcEnv::from_env() {
        Ok(env) => return Box::new(env),
        Err(why) => println!(
            "NOTE: built with the pocket-ic feature, but PocketIC is unavailable: {why}.\n      \
             Using the embedded host instead."
        ),
    }
    Box::new(EmbeddedEnv::new())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            println!("VERIFICATION FAILED");
            ExitCode::from(1)
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Runs the demo; `Ok(false)` when the bytes read back are not the source.
fn run(args: Args) -> Result<bool, String> {
    // The source.
    let (mut source, name) = match &args.file {
        Some(path) => {
            let len = std::fs::metadata(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .len();
            let name = path
                .file_name()
                .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
            let source = if len > IN_MEMORY_LIMIT {
                let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
                Source::Disk { file, len }
            } else {
                Source::Memory(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?)
            };
            (source, name)
        }
        None => {
            let size = usize::try_from(args.size).map_err(|_| "--size too large".to_string())?;
            (
                Source::Memory(client::test_file(size, args.seed)),
                format!("generated-{}.bin", args.size),
            )
        }
    };
    let len = source.len();
    let chunk = args.chunk;
    let chunks =
        u32::try_from(len.div_ceil(u64::from(chunk))).map_err(|_| "too many chunks".to_string())?;
    match (&args.file, &source) {
        (Some(path), Source::Disk { .. }) => println!(
            "source: {} ({} bytes, {}), read from disk chunk by chunk",
            path.display(),
            count(len),
            mib(len)
        ),
        (Some(path), _) => println!(
            "source: {} ({} bytes, {}), read into memory",
            path.display(),
            count(len),
            mib(len)
        ),
        (None, _) => println!(
            "source: generated test file, seed {} ({} bytes, {})",
            args.seed,
            count(len),
            mib(len)
        ),
    }
    let hashing = Instant::now();
    let digest = source.sha256()?;
    println!(
        "source sha256: {} ({:.2} s)",
        hex(&digest),
        hashing.elapsed().as_secs_f64()
    );

    // The canister.
    println!(
        "canister: building the release .wasm (cargo's progress below; about a minute the first time, a second once built)"
    );
    let building = Instant::now();
    let wasm = backend_wasm_with(true);
    println!(
        "canister: backend.wasm, {} bytes (built in {:.1} s)",
        count(wasm.len() as u64),
        building.elapsed().as_secs_f64()
    );
    let mut env = make_env();
    let canister: Principal = env.install(wasm);
    println!("installed in the {} as {canister}", env.name());
    let mut client = UploadClient::new(env.as_mut(), canister, user(1));

    // The upload.
    let capsule = ok("capsules_create", client.create_capsule("upload-demo"))?;
    let (order, retry_at) = arrival_order(chunks, args.in_flight, args.seed);
    let late = {
        let mut highest = None;
        order
            .iter()
            .filter(|&&i| {
                let is_late = highest.is_some_and(|h| i < h);
                highest = highest.max(Some(i));
                is_late
            })
            .count()
    };
    let shown: Vec<String> = order.iter().take(24).map(u32::to_string).collect();
    println!(
        "upload: capsule {}, {}, {} calls in flight",
        capsule.capsule_id.0,
        chunk_sizes(len, chunk),
        args.in_flight
    );
    match retry_at {
        Some(at) => println!(
            "arrival order: {}{} ({late} of {} calls arrive after a later chunk; chunk {} is retried at call {})",
            shown.join(" "),
            if order.len() > shown.len() { " ..." } else { "" },
            order.len(),
            order[at],
            at + 1,
        ),
        None => println!("arrival order: no chunk to send (an empty file is begun and finished)"),
    }

    let uploading = Instant::now();
    let mut instructions = Instructions::default();
    let started = ok(
        "uploads_begin",
        client.begin(
            capsule.capsule_id,
            &name,
            len,
            chunk,
            &format!("upload-demo-{}", args.seed),
        ),
    )?;
    let session = started.session_id;
    let mut progress = Progress::new(len, chunks);
    let mut seen = vec![false; chunks as usize];
    let (mut sent_bytes, mut stored_chunks) = (0u64, 0u32);
    let mut retry_report = None;
    for (call, &index) in order.iter().enumerate() {
        let offset = u64::from(index) * u64::from(chunk);
        let piece = (len - offset).min(u64::from(chunk));
        let bytes = source.read_at(offset, piece)?;
        let reply = client.put_chunk(session, index, &bytes);
        instructions.record(&*client.env, || {
            format!("uploads_put_chunk (chunk {index})")
        });
        let accepted = ok(&format!("uploads_put_chunk (chunk {index})"), reply)?;
        let first_time = !std::mem::replace(&mut seen[index as usize], true);
        if first_time {
            sent_bytes += piece;
            stored_chunks += 1;
        }
        if Some(call) == retry_at {
            retry_report = Some((index, accepted.newly_stored));
        } else if !accepted.newly_stored {
            println!("WARNING: chunk {index}, sent once, was answered newly_stored = false");
        }
        progress.update(sent_bytes, stored_chunks, accepted.hashed_bytes);
    }
    match retry_report {
        Some((index, false)) => {
            println!("retried chunk {index}: accepted as a duplicate (newly_stored = false)")
        }
        Some((index, true)) => {
            println!("WARNING: retried chunk {index} was answered newly_stored = true")
        }
        None => {}
    }

    // Finish, verifying the SHA-256; while the canister's hashing has not
    // caught up, let its timers run and ask again.
    let mut committed: Option<CommittedUpload> = None;
    let mut pending = 0u32;
    for attempt in 1..=MAX_FINISH_ATTEMPTS {
        let reply = client.finish_with(session, digest, len);
        instructions.record(&*client.env, || {
            format!("uploads_finish (attempt {attempt})")
        });
        if let Some(n) = client.env.last_instructions() {
            instructions.finish.push(n);
        }
        match reply {
            Ok(Err(UploadError::VerificationPending {
                hashed_bytes,
                total_bytes,
            })) => {
                pending += 1;
                println!(
                    "finish: VerificationPending ({} of {} hashed); ticking timers and calling finish again",
                    mib(hashed_bytes),
                    mib(total_bytes)
                );
                client.env.tick();
            }
            reply => {
                committed = Some(ok("uploads_finish", reply)?);
                break;
            }
        }
    }
    let committed = committed.ok_or_else(|| {
        format!("uploads_finish still VerificationPending after {MAX_FINISH_ATTEMPTS} attempts")
    })?;
    let upload_time = uploading.elapsed();
    if pending == 0 {
        println!("finish: verified and committed on the first call (hashing had kept up)");
    }
    println!(
        "committed: memory {}, blob {}, {} bytes, sha256 {}",
        committed.memory_id.0,
        committed.blob_id.0,
        count(committed.byte_len),
        hex(&committed.sha256)
    );
    let mut ok_so_far = true;
    if committed.sha256[..] != digest[..] || committed.byte_len != len {
        println!("MISMATCH: the committed sha256/length differ from the source");
        ok_so_far = false;
    }

    // Upgrade, then read back.
    let upgrading = Instant::now();
    client
        .env
        .upgrade(canister, wasm)
        .map_err(|e| format!("upgrade failed: {e}"))?;
    println!(
        "upgraded the canister ({:.2} s)",
        upgrading.elapsed().as_secs_f64()
    );
    let record = ok("memories_get", client.memory(committed.memory_id))?;
    if record.byte_len != len || record.sha256[..] != digest[..] {
        println!(
            "MISMATCH: after the upgrade memories_get says {} bytes, sha256 {}",
            record.byte_len,
            hex(&record.sha256)
        );
        ok_so_far = false;
    }
    let reading = Instant::now();
    let (first_difference, read_digest) = match &mut source {
        Source::Memory(data) => {
            let back = client.read_all(committed.memory_id, len)?;
            let first = if back.len() != data.len() {
                Some(back.len().min(data.len()) as u64)
            } else {
                back.iter()
                    .zip(data.iter())
                    .position(|(a, b)| a != b)
                    .map(|p| p as u64)
            };
            (first, client::sha256(&back))
        }
        Source::Disk { .. } => {
            // Too large to hold twice: compare range by range.
            let mut hasher = Sha256::new();
            let mut first = None;
            let mut offset = 0;
            while offset < len {
                let length = (len - offset).min(MAX_READ_BYTES);
                let back = ok(
                    "memories_read",
                    client.read(committed.memory_id, offset, length),
                )?;
                hasher.update(&back);
                let expected = source.read_at(offset, length)?;
                if first.is_none() {
                    first = if back.len() as u64 != length {
                        Some(offset + back.len().min(expected.len()) as u64)
                    } else {
                        back.iter()
                            .zip(expected.iter())
                            .position(|(a, b)| a != b)
                            .map(|p| offset + p as u64)
                    };
                }
                offset += length;
            }
            (first, hasher.finalize().into())
        }
    };
    let read_time = reading.elapsed();
    match first_difference {
        None => println!(
            "read back {} bytes after the upgrade: identical",
            count(len)
        ),
        Some(at) => {
            println!("MISMATCH: the bytes read back differ from the source at offset {at}");
            ok_so_far = false;
        }
    }
    if read_digest != digest {
        println!(
            "MISMATCH: sha256 of the bytes read back is {}",
            hex(&read_digest)
        );
        ok_so_far = false;
    } else {
        println!("sha256 of the bytes read back matches");
    }

    // Summary.
    let stats = client.stats()?;
    let stable = client.env.stable_memory_bytes(canister);
    let size_mib = len as f64 / MIB;
    println!();
    println!("summary ({})", client.env.name());
    println!("  size              {} bytes ({})", count(len), mib(len));
    println!(
        "  chunks            {}, {} put_chunk call(s){}, {} in flight",
        chunk_sizes(len, chunk),
        order.len(),
        if retry_at.is_some() { " (1 retry)" } else { "" },
        args.in_flight
    );
    println!(
        "  upload            {:.2} s ({:.1} MiB/s), {} finish call(s), {} VerificationPending",
        upload_time.as_secs_f64(),
        size_mib / upload_time.as_secs_f64().max(1e-9),
        pending + 1,
        pending
    );
    println!(
        "  read-back         {:.2} s ({:.1} MiB/s)",
        read_time.as_secs_f64(),
        size_mib / read_time.as_secs_f64().max(1e-9)
    );
    if instructions.known {
        println!(
            "  instructions      {} total for put_chunk + finish{}",
            count(instructions.total),
            per_size(instructions.total, len)
        );
        if pending > 0 {
            println!(
                "                    (not counting the hashing timers did between finish calls)"
            );
        }
        println!(
            "  largest message   {} ({}) = {:.2} % of the {} limit",
            count(instructions.max),
            instructions.max_call,
            instructions.max as f64 * 100.0 / UPDATE_INSTRUCTION_LIMIT as f64,
            count(UPDATE_INSTRUCTION_LIMIT)
        );
        let finishes: Vec<String> = instructions.finish.iter().map(|&n| count(n)).collect();
        println!("  finish            {}", finishes.join(", "));
    } else {
        println!("  instructions      n/a (not reported by this host)");
    }
    println!("  stable memory     {}", opt_mib(stable));
    println!(
        "  canister stats    used {}, free {}, high water {}, stored {}, reserved {}, memories {}, open sessions {}",
        mib(stats.used_bytes),
        mib(stats.free_bytes),
        mib(stats.high_water_bytes),
        mib(stats.stored_bytes),
        mib(stats.reserved_bytes),
        stats.memories,
        stats.open_sessions
    );
    println!(
        "  verification      {}",
        if ok_so_far { "OK" } else { "FAILED" }
    );
    Ok(ok_so_far)
}
