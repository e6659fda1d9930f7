//! `cargo run --release -p upload-bench [-- --with-4gib | --quick]`
//!
//! Measures the upload canister on the embedded IC host (instructions as
//! the replica counts them, pages dirtied, stable memory) against floors
//! measured in a minimal canister, prints one table and writes the same
//! figures to `target/bench/upload-bench.json`.

use serde::Serialize;
use serde_json::json;
use std::time::Instant;
use upload_bench::*;

/// A goal from the issue: met or not, with the figure it was judged on.
#[derive(Serialize)]
struct Row {
    section: &'static str,
    what: String,
    value: String,
    goal: String,
    met: Option<bool>,
}

#[derive(Default)]
struct Table {
    rows: Vec<Row>,
}

impl Table {
    fn add(&mut self, section: &'static str, what: impl Into<String>, value: impl Into<String>) {
        self.goal(section, what, value, "", None);
    }

    fn goal(
        &mut self,
        section: &'static str,
        what: impl Into<String>,
        value: impl Into<String>,
        goal: impl Into<String>,
        met: Option<bool>,
    ) {
        self.rows.push(Row {
            section,
            what: what.into(),
            value: value.into(),
            goal: goal.into(),
            met,
        });
    }

    fn print(&self) {
        let w0 = self.rows.iter().map(|r| r.section.len()).max().unwrap_or(0);
        let w1 = self.rows.iter().map(|r| r.what.len()).max().unwrap_or(0);
        let w2 = self.rows.iter().map(|r| r.value.len()).max().unwrap_or(0);
        let mut last = "";
        for r in &self.rows {
            let section = if r.section == last { "" } else { r.section };
            last = r.section;
            let verdict = match r.met {
                Some(true) => "met",
                Some(false) => "NOT MET",
                None => "",
            };
            let goal = if r.goal.is_empty() {
                String::new()
            } else {
                format!("{} ({verdict})", r.goal)
            };
            println!("{section:<w0$}  {:<w1$}  {:>w2$}  {goal}", r.what, r.value);
        }
    }
}

fn n(x: u64) -> String {
    let s = x.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn size(bytes: u64) -> String {
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{} GiB", bytes / GIB)
    } else {
        format!("{} MiB", bytes / MIB)
    }
}

/// Instructions a message may take and still count as "constant" work.
const CONSTANT_BUDGET: u64 = 5_000_000;
/// No message may exceed this, whatever the order chunks arrive in.
const MESSAGE_BUDGET: u64 = 5_000_000_000;
/// put_chunk and read-back against their floors.
const FLOOR_RATIO: f64 = 1.05;

#[derive(Clone)]
struct Config {
    /// File sizes of the in-order uploads (one fresh canister each).
    sizes: Vec<u64>,
    /// File size of the out-of-order uploads.
    out_of_order: u64,
    /// Open sessions at which the upgrade hooks are measured.
    sessions: Vec<u32>,
    /// Bytes stored in the canister whose upgrades are measured with data.
    stored: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let with_4gib = args.iter().any(|a| a == "--with-4gib");
    if let Some(a) = args.iter().find(|a| *a != "--quick" && *a != "--with-4gib") {
        eprintln!("unknown argument {a}; use --with-4gib (adds a 4 GiB upload) or --quick");
        std::process::exit(2);
    }
    let mut config = if quick {
        Config {
            sizes: vec![2 * MIB, 16 * MIB, 64 * MIB],
            out_of_order: 64 * MIB,
            sessions: vec![0, 100, 1_000],
            stored: 64 * MIB,
        }
    } else {
        Config {
            sizes: vec![2 * MIB, 256 * MIB, GIB],
            out_of_order: 256 * MIB,
            sessions: vec![0, 1_000, 100_000],
            stored: GIB,
        }
    };
    if with_4gib {
        config.sizes.push(4 * GIB);
    }
    let started = Instant::now();
    // Build both canisters before anything runs.
    upload_harness::backend_wasm();
    probe_wasm();
    // Opening 100 000 sessions one uploads_begin at a time takes most of
    // the run: it goes on beside the uploads.
    let sessions_config = config.clone();
    let sessions = std::thread::spawn(move || sessions_and_upgrades(&sessions_config));
    let uploads = uploads(&config);
    let churn = churn(if quick { 1 } else { 4 });
    let adversarial = adversarial(if quick { 1 } else { 4 });
    let serving = serving(if quick { 8 } else { 64 } * u64::from(CHUNK));
    let sessions = sessions.join().expect("the sessions thread");

    let mut table = report(&config, &uploads, &sessions, &churn);
    report_serving(&mut table, &serving);
    let section = "stable memory after adversarial orders";
    for case in &adversarial {
        table.goal(
            section,
            format!(
                "{}: {} declared, {} written",
                case.name,
                size_exact(case.declared),
                size_exact(case.written)
            ),
            format!("grew {}", size_exact(case.grown)),
            format!(
                "<= 1.05x written + declared / 1024 + 16 MiB = {}",
                size_exact(case.allowed)
            ),
            Some(case.grown <= case.allowed),
        );
    }
    println!();
    table.print();
    println!(
        "\n(took {:.0} s; figures in target/bench/upload-bench.json)",
        started.elapsed().as_secs_f64()
    );
    let json = json!({
        "quick": quick,
        "sizes": config.sizes,
        "floor": uploads.floor,
        "uploads": uploads.runs,
        "lifecycle": uploads.lifecycle,
        "put_chunk_split": uploads.split,
        "read": uploads.read,
        "upgrades": sessions.upgrades,
        "sessions_opened": sessions.opened,
        "upload_with_sessions_open": sessions.upload,
        "expiry": sessions.expiry,
        "prune": sessions.prune,
        "churn": churn,
        "adversarial": adversarial,
        "serving": serving,
        "table": table.rows,
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&dir).expect("create target/bench");
    std::fs::write(
        dir.join("upload-bench.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .expect("write upload-bench.json");
}

#[derive(Serialize)]
struct Split {
    decode_dispatch: u64,
    hash: u64,
    write: u64,
    /// One `compress256` call per 64-byte block instead of one per run of
    /// blocks, as the canister's midstate hashing does (see the probe).
    blockwise_hashing: u64,
    bookkeeping: f64,
    median_full_chunk: u64,
}

#[derive(Serialize)]
struct Read {
    bytes: u64,
    start: u64,
    middle: u64,
    floor: u64,
    per_byte: f64,
    ratio: f64,
}

struct Uploads {
    floor: Floor,
    runs: Vec<UploadRun>,
    lifecycle: Vec<Lifecycle>,
    split: Split,
    read: Read,
}

/// The floors, then for each size a fresh canister (so every size starts
/// from the same state): begin, status, one chunk, status, abort, then a
/// whole upload in order; then uploads out of order.
fn uploads(config: &Config) -> Uploads {
    let mut bench = Bench::new();
    let floor = bench.floor(5);
    drop(bench);
    let owner = user(1);
    let mut runs = Vec::new();
    let mut lifecycle = Vec::new();
    let mut largest = None;
    for (i, &len) in config.sizes.iter().enumerate() {
        let mut bench = Bench::new();
        let (costs, run) = bench.lifecycle(owner, 100 + i as u64, len);
        eprintln!(
            "uploaded {} in order in {:.1} s",
            size(len),
            run.wall_seconds
        );
        lifecycle.push(costs);
        // Read back from the largest file but one (the 4 GiB run is optional).
        if len <= GIB {
            largest = Some((bench, run.memory_id, len));
        }
        runs.push(run);
    }
    for order in [Order::Reversed, Order::Shuffled] {
        let mut bench = Bench::new();
        let capsule = bench.create_capsule(owner);
        let run = bench.upload(owner, capsule, 200, config.out_of_order, order);
        eprintln!(
            "uploaded {} {} in {:.1} s",
            size(config.out_of_order),
            order.name(),
            run.wall_seconds
        );
        runs.push(run);
    }

    // put_chunk split: decode and dispatch measured on the real canister
    // (a full chunk for an unknown session), hash and write as in the
    // floor, the rest is bookkeeping.
    let (mut bench, memory, len) = largest.expect("a file of at most 1 GiB");
    let unknown = bench
        .client(owner)
        .put_chunk(
            backend::upload::SessionId(u64::MAX),
            0,
            &chunk_bytes(1, u64::from(CHUNK), 0),
        )
        .unwrap();
    assert!(unknown.is_err());
    let decode_dispatch = bench.last().instructions;
    let in_order = runs
        .iter()
        .rfind(|r| r.order == Order::InOrder && r.bytes == len)
        .expect("the in-order run");
    let median_full_chunk = in_order.median_full_chunk;
    let blockwise_hashing = bench
        .sha256_blockwise(&chunk_bytes(1, u64::from(CHUNK), 0))
        .saturating_sub(floor.hash);
    let split = Split {
        decode_dispatch,
        hash: floor.hash,
        write: floor.write,
        blockwise_hashing,
        bookkeeping: median_full_chunk as f64
            - (decode_dispatch + floor.hash + floor.write + blockwise_hashing) as f64,
        median_full_chunk,
    };

    let bytes = u64::from(CHUNK);
    let start = bench.read(owner, memory, 0, bytes);
    let middle = bench.read(owner, memory, len / 2 + 12_345, bytes);
    let per_byte = start.max(middle) as f64 / bytes as f64;
    let read = Read {
        bytes,
        start,
        middle,
        floor: floor.read_instructions,
        per_byte,
        ratio: per_byte / floor.read_per_byte(),
    };
    Uploads {
        floor,
        runs,
        lifecycle,
        split,
        read,
    }
}

#[derive(Serialize)]
struct Upgrade {
    stored_bytes: u64,
    open_sessions: u64,
    session_records: u64,
    instructions: u64,
    heap_dirty_pages: u64,
    stable_dirty_pages: u64,
}

struct Sessions {
    upgrades: Vec<Upgrade>,
    /// (sessions opened, seconds it took).
    opened: Vec<(u32, f64)>,
    upload: UploadRun,
    expiry: Sweep,
    prune: Sweep,
}

/// One canister: upgrades with 0, 1 000 and 100 000 open sessions and
/// nothing stored; a 1 GiB upload beside them; the expiry timer reclaiming
/// them and pruning their records, with upgrades in between; upgrades with
/// 1 GiB stored and 0 and 1 000 sessions.
fn sessions_and_upgrades(config: &Config) -> Sessions {
    let mut bench = Bench::new();
    bench.set_limits(|l| l.max_open_sessions_per_caller = 1_000);
    let mut upgrades = Vec::new();
    let mut upgrade = |bench: &mut Bench| {
        let stats = bench.stats();
        let m = bench.upgrade();
        upgrades.push(Upgrade {
            stored_bytes: stats.stored_bytes,
            open_sessions: stats.open_sessions,
            session_records: stats.session_records,
            instructions: m.instructions,
            heap_dirty_pages: m.heap_dirty_pages,
            stable_dirty_pages: m.stable_dirty_pages,
        });
    };
    let mut opened = Vec::new();
    let mut open = 0;
    let mut next_caller = 1_000_000;
    for &target in &config.sessions {
        if target > open {
            let took = bench.open_sessions(next_caller, target - open, 1_000);
            next_caller += (target - open).div_ceil(1_000);
            eprintln!(
                "opened {} sessions in {:.1} s",
                target - open,
                took.as_secs_f64()
            );
            opened.push((target - open, took.as_secs_f64()));
            open = target;
        }
        upgrade(&mut bench);
    }
    let owner = user(3);
    let capsule = bench.create_capsule(owner);
    let upload = bench.upload(owner, capsule, 500, config.stored, Order::InOrder);
    eprintln!(
        "uploaded {} beside {} open sessions in {:.1} s",
        size(config.stored),
        open,
        upload.wall_seconds
    );
    upgrade(&mut bench);
    let expiry = sweep(&mut bench);
    upgrade(&mut bench);
    let prune = sweep(&mut bench);
    upgrade(&mut bench);
    let few = config.sessions[1];
    let took = bench.open_sessions(next_caller, few, 1_000);
    opened.push((few, took.as_secs_f64()));
    upgrade(&mut bench);
    Sessions {
        upgrades,
        opened,
        upload,
        expiry,
        prune,
    }
}

fn report(config: &Config, uploads: &Uploads, sessions: &Sessions, churn: &Churn) -> Table {
    let mut table = Table::default();
    let floor = &uploads.floor;
    let chunk = f64::from(CHUNK);
    let section = "floor (probe, opt-level 3)";
    table.add(
        section,
        format!("floor_put of {} B: total / byte", n(CHUNK.into())),
        format!("{:.2}", floor.per_byte()),
    );
    for (what, v) in [
        ("  decode (arg copy + Candid ByteBuf) / byte", floor.decode),
        ("  SHA-256 / byte", floor.hash),
        ("  stable write (fresh pages) / byte", floor.write),
    ] {
        table.add(section, what, format!("{:.2}", v as f64 / chunk));
    }
    table.add(
        section,
        "floor_read of the same bytes / byte",
        format!("{:.2}", floor.read_per_byte()),
    );

    let section = "put_chunk (full chunks)";
    let mut worst = 0;
    let mut all_runs: Vec<&UploadRun> = uploads.runs.iter().collect();
    all_runs.push(&sessions.upload);
    for run in &all_runs {
        worst = worst.max(run.largest_message);
    }
    for (i, run) in all_runs.iter().enumerate() {
        if run.bytes < 64 * MIB {
            continue;
        }
        let beside = if i == all_runs.len() - 1 {
            format!(
                ", {} sessions open",
                n(u64::from(*config.sessions.last().unwrap()))
            )
        } else {
            String::new()
        };
        let amortised = run.amortised_per_byte();
        let ratio = amortised / floor.per_byte();
        table.goal(
            section,
            format!(
                "{} {}{beside}: amortised / byte",
                size(run.bytes),
                run.order.name()
            ),
            format!("{amortised:.2} = {ratio:.3}x floor"),
            format!("<= {FLOOR_RATIO}x"),
            Some(ratio <= FLOOR_RATIO),
        );
        let p = run.full_chunks;
        table.add(
            section,
            format!(
                "  full chunk's message / byte: min mean max ({} timer msgs)",
                run.background.messages
            ),
            format!(
                "{:.2} {:.2} {:.2}",
                p.min_instructions as f64 / chunk,
                p.mean_instructions() / chunk,
                p.max_instructions as f64 / chunk
            ),
        );
    }
    table.goal(
        section,
        "largest message of any upload (chunks, timers, finish)",
        n(worst),
        format!("<= {}", n(MESSAGE_BUDGET)),
        Some(worst <= MESSAGE_BUDGET),
    );
    let s = &uploads.split;
    for (what, v) in [
        (
            "  decode + dispatch (chunk for an unknown session)",
            s.decode_dispatch as f64,
        ),
        ("  SHA-256 (measured in the floor)", s.hash as f64),
        ("  stable write (measured in the floor)", s.write as f64),
        (
            "  SHA-256 called per 64-byte block (probe)",
            s.blockwise_hashing as f64,
        ),
        ("  bookkeeping (the rest)", s.bookkeeping),
    ] {
        table.add(
            "put_chunk split (in order)",
            format!("{what} / byte"),
            format!("{:.2}", v / chunk),
        );
    }

    let section = "pages dirtied (4 KiB)";
    let big = uploads
        .runs
        .iter()
        .filter(|r| r.order == Order::InOrder)
        .max_by_key(|r| r.bytes)
        .unwrap();
    let (heap, stable) = (
        big.put_chunk.max_heap_dirty_pages,
        big.put_chunk.max_stable_dirty_pages,
    );
    table.add(
        section,
        "put_chunk: heap + stable (max)",
        format!(
            "{heap} + {stable} = {:.1} MiB",
            ((heap + stable) * 4096) as f64 / MIB as f64
        ),
    );
    table.add(
        section,
        "floor_put: heap + stable",
        format!("{} + {}", floor.heap_dirty_pages, floor.stable_dirty_pages),
    );
    table.add(
        section,
        "put_chunks per round within the 75 MiB heap delta",
        n(75 * MIB / ((heap + stable) * 4096).max(1)),
    );

    let sizes = config
        .sizes
        .iter()
        .map(|s| size(*s))
        .collect::<Vec<_>>()
        .join(" / ");
    let section = "per call, by file size";
    type Pick = (&'static str, fn(&Lifecycle) -> u64);
    let pick: [Pick; 5] = [
        ("uploads_begin", |l| l.begin),
        ("uploads_status, no chunk", |l| l.status_fresh),
        ("uploads_status, one chunk", |l| l.status_one_chunk),
        ("uploads_abort", |l| l.abort),
        ("uploads_finish", |l| l.finish),
    ];
    for (what, f) in pick {
        let values: Vec<u64> = uploads.lifecycle.iter().map(f).collect();
        let (min, max) = (*values.iter().min().unwrap(), *values.iter().max().unwrap());
        table.goal(
            section,
            format!("{what} ({sizes})"),
            values.iter().map(|v| n(*v)).collect::<Vec<_>>().join(" / "),
            format!("constant, < {}", n(CONSTANT_BUDGET)),
            Some(constant(min, max) && max < CONSTANT_BUDGET),
        );
    }

    let r = &uploads.read;
    table.goal(
        "read back",
        format!("memories_read of {} B / byte", n(r.bytes)),
        format!("{:.2} = {:.3}x floor", r.per_byte, r.ratio),
        format!("<= {FLOOR_RATIO}x"),
        Some(r.ratio <= FLOOR_RATIO),
    );

    let section = "upgrade (pre + post)";
    for u in &sessions.upgrades {
        table.add(
            section,
            format!(
                "{} stored, {} open sessions, {} records",
                size_exact(u.stored_bytes),
                n(u.open_sessions),
                n(u.session_records)
            ),
            n(u.instructions),
        );
    }
    let all: Vec<u64> = sessions.upgrades.iter().map(|u| u.instructions).collect();
    let (min, max) = (*all.iter().min().unwrap(), *all.iter().max().unwrap());
    table.goal(
        section,
        "spread over all cases",
        format!("{} .. {}", n(min), n(max)),
        format!("constant, < {}", n(CONSTANT_BUDGET)),
        Some(constant(min, max) && max < CONSTANT_BUDGET),
    );
    for (count, secs) in &sessions.opened {
        table.add(
            section,
            format!(
                "  (opening {} sessions took, wall time)",
                n(u64::from(*count))
            ),
            format!("{secs:.0} s"),
        );
    }

    for (section, sweep, what) in [
        ("expiry timer", &sessions.expiry, "expired"),
        ("pruning timer", &sessions.prune, "pruned"),
    ] {
        let runs = sweep.maintenance_runs.max(1);
        table.goal(
            section,
            format!(
                "{} sessions {what}: instructions per run, mean / max",
                n(sweep.reclaimed)
            ),
            format!(
                "{} / {}",
                n(sweep.maintenance.instructions / runs),
                n(sweep.maintenance.max_instructions)
            ),
            format!("< {}", n(MESSAGE_BUDGET)),
            Some(sweep.maintenance.max_instructions < MESSAGE_BUDGET),
        );
        table.add(
            section,
            "sessions per run; runs; all timer messages",
            format!(
                "{:.1}; {}; {}",
                sweep.reclaimed as f64 / runs as f64,
                n(runs),
                n(sweep.all.messages)
            ),
        );
        table.add(
            section,
            "instructions per session, all timer messages",
            n(sweep.all.instructions / sweep.reclaimed.max(1)),
        );
    }

    let section = "stable memory after churn";
    let fixed = churn.fixed_overhead + churn.bucket_rounding;
    let allowed = churn.live_bytes as f64 * FLOOR_RATIO
        + (churn.blobs * churn.per_blob_overhead) as f64
        + fixed as f64;
    table.add(
        section,
        "fixed: each structure's first 8 MiB bucket + one of rounding",
        format!(
            "{} + {}",
            size_exact(churn.fixed_overhead),
            size_exact(churn.bucket_rounding)
        ),
    );
    table.goal(
        section,
        format!(
            "live {} in {} blobs: stable memory",
            size_exact(churn.live_bytes),
            churn.blobs
        ),
        format!(
            "{} = first buckets + {:.3}x live",
            size_exact(churn.stable_bytes),
            (churn.stable_bytes.saturating_sub(churn.fixed_overhead)) as f64
                / churn.live_bytes as f64
        ),
        format!(
            "<= 1.05x live + {} B/blob + fixed = {}",
            n(churn.per_blob_overhead),
            size_exact(allowed as u64)
        ),
        Some(churn.stable_bytes as f64 <= allowed),
    );
    table.add(
        section,
        "blob store: used / free / high water",
        format!(
            "{} / {} / {}",
            size_exact(churn.used),
            size_exact(churn.free),
            size_exact(churn.high_water)
        ),
    );
    table
}

/// Equal within 5 % (and 20 000 instructions): noise from the state of
/// the trees, not growth.
fn constant(min: u64, max: u64) -> bool {
    max - min <= max / 20 + 20_000
}

fn size_exact(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

/// Serving over HTTP and share links (`upload_bench::serving`).
fn report_serving(table: &mut Table, s: &Serving) {
    use backend::limits::MAX_CERTIFIED_ENTRIES;
    let section = "serving and sharing";
    let ratio = s.chunk as f64 / s.chunk_floor as f64;
    table.goal(
        section,
        "http_request of a 2 MB chunk / floor_read of it",
        format!("{} = {ratio:.3}x", n(s.chunk)),
        "<= 1.05x",
        Some(ratio <= 1.05),
    );
    table.add(section, "http_request answered 404", n(s.not_found));
    let hashing = s.bytes as f64 * s.hash_floor_per_byte;
    table.add(
        section,
        format!(
            "first link of a {} memory (hash + {} responses)",
            size(s.bytes),
            s.first_share_responses
        ),
        format!(
            "{} = SHA-256 floor x {:.3} + {:.0} M",
            n(s.first_share),
            s.first_share as f64 / hashing,
            (s.first_share as f64 - hashing) / 1e6
        ),
    );
    table.add(
        section,
        format!("further link: 1 link / {} links", s.many_links),
        format!("{} / {}", n(s.further_link_few), n(s.further_link_many)),
    );
    table.add(section, "certifying one response", n(s.per_response as u64));
    table.add(
        section,
        format!(
            "heap after an upgrade: none / with {} responses / per response",
            n(s.upgrade_responses)
        ),
        format!(
            "{} / {} / {:.0} B",
            size_exact(s.heap_without_links),
            size_exact(s.heap_with_links),
            s.heap_per_response()
        ),
    );
    let at_cap =
        s.upgrade_without_links as f64 + s.upgrade_per_response() * MAX_CERTIFIED_ENTRIES as f64;
    table.goal(
        section,
        format!(
            "upgrade: none / per certified response / at the cap of {}",
            n(MAX_CERTIFIED_ENTRIES)
        ),
        format!(
            "{} / {} / {:.1} B",
            n(s.upgrade_without_links),
            n(s.upgrade_per_response() as u64),
            at_cap / 1e9
        ),
        "<= 100 B at the cap",
        Some(at_cap <= 100e9),
    );
}
