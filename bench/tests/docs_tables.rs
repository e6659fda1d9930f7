//! docs/performance.md's table, rendered from the benchmark's JSON
//! (`docs/bench/upload-bench.json`, a copy of what `cargo run --release -p
//! upload-bench -- --quick` writes to `target/bench/upload-bench.json`):
//! this test fails when the committed table differs from the JSON, and
//! `UPDATE_DOCS=1 cargo test -p upload-bench --test docs_tables` rewrites
//! it.

use serde_json::Value;
use std::path::Path;

const START: &str =
    "<!-- generated: performance (UPDATE_DOCS=1 cargo test -p upload-bench --test docs_tables) -->";
const END: &str = "<!-- end generated -->";

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
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

fn num(value: &Value, path: &[&str]) -> u64 {
    let mut v = value;
    for key in path {
        v = &v[*key];
    }
    v.as_u64()
        .or_else(|| v.as_f64().map(|f| f.round() as u64))
        .unwrap_or_else(|| panic!("{path:?} is not a number in the benchmark's JSON"))
}

fn render(bench: &Value) -> String {
    let mut out = String::from(
        "Instructions per message on the release `.wasm` (figures of a `--quick` run).\n\n\
         | file | chunks | order | `uploads_begin` | median full chunk | largest message | `uploads_finish` |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for upload in bench["uploads"].as_array().expect("uploads") {
        out.push_str(&format!(
            "| {} MiB | {} | {} | {} | {} | {} | {} |\n",
            num(upload, &["bytes"]) >> 20,
            num(upload, &["chunks"]),
            upload["order"].as_str().unwrap_or("?"),
            grouped(num(upload, &["begin"])),
            grouped(num(upload, &["median_full_chunk"])),
            grouped(num(upload, &["largest_message"])),
            grouped(num(upload, &["final_finish"])),
        ));
    }
    let lifecycle = &bench["lifecycle"][0];
    let upgrade = &bench["upgrades"][0];
    out.push_str(&format!(
        "\n| call | instructions |\n|---|---|\n\
         | `uploads_status` (fresh) | {} |\n\
         | `uploads_abort` | {} |\n\
         | upgrade (`post_upgrade`, empty) | {} |\n\
         | floor: decode, hash and write a full chunk | {} |\n\
         | `memories_read` of a full chunk | {} (floor {}) |\n\
         | `http_request`, one serving chunk | {} (floor {}) |\n",
        grouped(num(lifecycle, &["status_fresh"])),
        grouped(num(lifecycle, &["abort"])),
        grouped(num(upgrade, &["instructions"])),
        grouped(num(&bench["floor"], &["instructions"])),
        grouped(num(&bench["read"], &["middle"])),
        grouped(num(&bench["read"], &["floor"])),
        grouped(num(&bench["serving"], &["chunk"])),
        grouped(num(&bench["serving"], &["chunk_floor"])),
    ));
    out
}

#[test]
fn performance_table_is_what_the_benchmark_measured() {
    let json = std::fs::read_to_string(root().join("docs/bench/upload-bench.json"))
        .expect("read docs/bench/upload-bench.json");
    let bench: Value = serde_json::from_str(&json).expect("the benchmark's JSON parses");
    let path = root().join("docs/performance.md");
    let doc = std::fs::read_to_string(&path).expect("read docs/performance.md");
    let start = doc
        .find(START)
        .expect("docs/performance.md has the markers")
        + START.len();
    let end = start + doc[start..].find(END).expect("the end marker");
    let generated = format!("\n{}", render(&bench));
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let updated = format!("{}{generated}{}", &doc[..start], &doc[end..]);
        std::fs::write(&path, updated).expect("write docs/performance.md");
        return;
    }
    assert_eq!(
        &doc[start..end],
        generated,
        "docs/performance.md is stale: UPDATE_DOCS=1 cargo test -p upload-bench --test docs_tables"
    );
}
