//! The demo's summary is true at the edges: an empty file, a one-byte file,
//! a file whose last chunk is short; and `--help` is not an error.

use std::process::Command;

/// Runs the demo with `args`; returns its exit code and stdout.
fn demo(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_upload-demo"))
        .args(args)
        .output()
        .expect("run upload-demo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.code().is_some(),
        "upload-demo was killed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or_default(), stdout)
}

fn line<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{stdout}"))
}

#[test]
fn help_is_not_an_error() {
    let (code, stdout) = demo(&["--help"]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("usage: upload-demo"), "{stdout}");
}

#[test]
fn an_empty_file_sends_no_chunk_and_claims_no_retry() {
    let (code, stdout) = demo(&["--size", "0"]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(
        line(&stdout, "chunks "),
        "chunks            0 chunks, 0 put_chunk call(s), 12 in flight"
    );
    assert!(line(&stdout, "arrival order:").contains("no chunk to send"));
    assert!(!stdout.contains("retried"), "{stdout}");
    let instructions = line(&stdout, "instructions ");
    assert!(!instructions.contains("per"), "{instructions}");
    assert_eq!(line(&stdout, "verification "), "verification      OK");
}

#[test]
fn a_one_byte_file_is_one_short_chunk_sent_twice() {
    let (code, stdout) = demo(&["--size", "1"]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(
        line(&stdout, "chunks "),
        "chunks            1 chunk of 1 bytes, 2 put_chunk call(s) (1 retry), 12 in flight"
    );
    assert!(line(&stdout, "arrival order:").contains("chunk 0 is retried at call 2"));
    assert!(line(&stdout, "retried chunk 0:").contains("newly_stored = false"));
    assert!(line(&stdout, "instructions ").ends_with("per byte"));
    assert_eq!(line(&stdout, "verification "), "verification      OK");
}

#[test]
fn a_short_last_chunk_is_named() {
    let (code, stdout) = demo(&["--size", "2500", "--chunk", "1000"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(line(&stdout, "chunks ").starts_with(
        "chunks            3 chunks: 2 x 1_000 + 1 x 500 bytes, 4 put_chunk call(s) (1 retry)"
    ));
}
