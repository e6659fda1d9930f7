//! The README's limits table, rendered from `Limits::default()` and the
//! constants of `crate::limits`: a test fails when the committed table
//! differs, and `UPDATE_DOCS=1 cargo test -p backend --lib limits_table`
//! rewrites it.

use crate::limits::*;
use crate::state::State;
use ic_stable_structures::VectorMemory;

const START: &str =
    "<!-- generated: limits (UPDATE_DOCS=1 cargo test -p backend --lib limits_table) -->";
const END: &str = "<!-- end generated -->";

/// `bytes` as a person reads it: whole GiB or MiB, else digits in groups.
fn size(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{} GiB", bytes / GIB)
    } else if bytes >= MIB && bytes.is_multiple_of(MIB / 2) {
        let mib = bytes as f64 / MIB as f64;
        format!("{mib} MiB")
    } else {
        format!("{} bytes", grouped(bytes))
    }
}

fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn hours(ns: u64) -> String {
    format!("{} h", ns / 3_600_000_000_000)
}

pub fn render() -> String {
    let l = Limits::default();
    let fixed = State::open(VectorMemory::default())
        .expect("an empty memory opens")
        .fixed_stable_bytes();
    let rows: Vec<(&str, String)> = vec![
        ("file size", size(l.max_file_bytes)),
        (
            "chunk size",
            format!(
                "{} (never more than {})",
                size(u64::from(l.max_chunk_bytes)),
                grouped(u64::from(MAX_CHUNK_BYTES))
            ),
        ),
        (
            "chunks per session",
            grouped(u64::from(l.max_chunks_per_session)),
        ),
        (
            "open sessions per caller",
            l.max_open_sessions_per_caller.to_string(),
        ),
        (
            "bytes reserved by a caller's open sessions",
            size(l.max_reserved_bytes_per_caller),
        ),
        (
            "bytes a caller holds (reserved and committed)",
            size(l.max_stored_bytes_per_caller),
        ),
        ("capsules per owner", l.max_capsules_per_owner.to_string()),
        (
            "bytes reserved by all open sessions together",
            l.max_reserved_bytes_total.map_or("no cap".into(), size),
        ),
        (
            "bytes reserved and stored in total",
            format!(
                "{} (at most {})",
                size(l.max_total_bytes),
                size(MAX_TOTAL_BYTES)
            ),
        ),
        ("writers per capsule", l.max_writers_per_capsule.to_string()),
        (
            "idle time before a session expires",
            format!(
                "{} (each chunk with new bytes refreshes it)",
                hours(l.session_idle_timeout_ns)
            ),
        ),
        (
            "repair rounds (re-hashes after replacing hashed chunks)",
            format!("{MAX_REPAIR_ROUNDS} per session"),
        ),
        (
            "how long finished session records are kept",
            hours(l.finished_retention_ns),
        ),
        ("bytes per `memories_read`", size(MAX_READ_BYTES)),
        (
            "bytes of a thumbnail",
            format!("{} (JPEG or WebP)", size(MAX_THUMBNAIL_BYTES as u64)),
        ),
        (
            "bytes of records (thumbnails included) in a `memories_list` page",
            format!(
                "{} (and at most {} records)",
                size(MAX_LIST_REPLY_BYTES as u64),
                grouped(u64::from(MAX_PAGE))
            ),
        ),
        (
            "stable memory an empty canister holds (`stats().fixed_stable_bytes`)",
            format!(
                "{} ({} bytes)",
                size(fixed - 65_536) + " and a 64 KiB page",
                grouped(fixed)
            ),
        ),
    ];
    let mut table = String::from("| limit | default |\n|---|---|\n");
    for (name, value) in rows {
        table.push_str(&format!("| {name} | {value} |\n"));
    }
    table
}

#[test]
fn limits_table_in_the_readme_is_what_the_code_says() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("read README.md");
    let start = readme
        .find(START)
        .expect("the README has the limits markers")
        + START.len();
    let end = start + readme[start..].find(END).expect("the end marker");
    let generated = format!("\n{}", render());
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let updated = format!("{}{generated}{}", &readme[..start], &readme[end..]);
        std::fs::write(&path, updated).expect("write README.md");
        return;
    }
    assert_eq!(
        &readme[start..end],
        generated,
        "README.md's limits table is stale: UPDATE_DOCS=1 cargo test -p backend --lib limits_table"
    );
}

#[test]
fn sizes_read_as_a_person_writes_them() {
    assert_eq!(size(4 * GIB), "4 GiB");
    assert_eq!(size(1_536 * 1024), "1.5 MiB");
    assert_eq!(size(1_900_000), "1 900 000 bytes");
    assert_eq!(size(32 * 1024), "32 768 bytes");
}
