//! The real `icp` CLI (icp-cli, dfx's successor) drives the canister on the
//! local network: a project whose `icp.yaml` declares the network as
//! connected (its API URL and root key), an identity in plaintext storage,
//! a canister created through the management canister by that identity,
//! `icp canister link` and `icp deploy` into it, the README's upload flow
//! with Candid text arguments, `icp canister status` by the controller, and
//! an upgrade by `icp deploy` that keeps the memory.
//!
//! Runs when `ICP_BIN` names the `icp` binary (CI sets it to the one it
//! installs from npm); without it the test prints a line and passes.

use sha2::Digest as _;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use upload_bridge::Bridge;

/// The icp.yaml environment (and network) the project declares.
const ENV: &str = "bridge";
/// No single command takes this long unless it hangs (a prompt, a poll
/// that never ends).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);
/// The cycles minting canister: where `icp deploy` looks for subnets when
/// it has a canister to create.
const CMC: &str = "rkp4c-7iaaa-aaaaa-aaaca-cai";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("hex {s}: {e}")))
        .collect()
}

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

/// The `icp` binary with its own home (identities, settings), in a project.
struct Icp {
    bin: PathBuf,
    home: PathBuf,
    project: PathBuf,
}

impl Icp {
    fn run(&self, args: &[&str]) -> Run {
        let mut child = Command::new(&self.bin)
            .args(args)
            .current_dir(&self.project)
            // Nothing of the user's: identities and settings live here.
            .env("ICP_HOME", &self.home)
            .env("HOME", &self.home)
            .env("ICP_PROJECT_ROOT", &self.project)
            .env_remove("ICP_NETWORK")
            .env_remove("ICP_ENVIRONMENT")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_CACHE_HOME")
            .env("ICP_TELEMETRY_DISABLED", "1")
            .env("DO_NOT_TRACK", "1")
            .env("RUST_BACKTRACE", "0")
            .env("NO_COLOR", "1")
            // A prompt reads end of input and fails instead of waiting.
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.bin.display()));
        let drain = |mut r: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut s = Vec::new();
                let _ = r.read_to_end(&mut s);
                String::from_utf8_lossy(&s).into_owned()
            })
        };
        let out = drain(Box::new(child.stdout.take().expect("piped stdout")));
        let err = drain(Box::new(child.stderr.take().expect("piped stderr")));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for icp") {
                break status;
            }
            if started.elapsed() > COMMAND_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`icp {}` took over {COMMAND_TIMEOUT:?}\nstdout: {}\nstderr: {}",
                    args.join(" "),
                    out.join().unwrap_or_default(),
                    err.join().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Run {
            success: status.success(),
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        }
    }

    /// Runs a command that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert!(
            run.success,
            "`icp {}` failed\nstdout: {}\nstderr: {}",
            args.join(" "),
            run.stdout,
            run.stderr
        );
        run.stdout
    }

    /// `icp canister call <canister> <method> <args> -e bridge`, typed by
    /// the canister's own candid:service metadata (no warning that it is
    /// missing); the pretty-printed reply.
    fn call(&self, canister: &str, method: &str, args: &str) -> String {
        let run = self.run(&["canister", "call", canister, method, args, "-e", ENV]);
        assert!(
            run.success,
            "`icp canister call {canister} {method} {args}` failed\nstdout: {}\nstderr: {}",
            run.stdout, run.stderr
        );
        assert!(
            !run.stderr.contains("no Candid interface"),
            "icp did not find the canister's candid:service: {}",
            run.stderr
        );
        run.stdout
    }
}

fn assert_contains(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(haystack.contains(needle), "no `{needle}` in:\n{haystack}");
    }
}

/// The first `principal "…"` in a Candid reply.
fn principal_in(reply: &str) -> String {
    let start = reply
        .find("principal \"")
        .unwrap_or_else(|| panic!("no principal in {reply}"))
        + "principal \"".len();
    let len = reply[start..].find('"').expect("a closing quote");
    reply[start..start + len].to_string()
}

fn backend_did() -> String {
    let path = packager::workspace_root().join("backend.did");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The project: the packaged module as a pre-built canister, the network
/// as connected (API URL and root key, as the repository's icp.yaml
/// declares it for `upload-bridge --listen 127.0.0.1:4943`).
fn write_project(dir: &Path, bridge: &Bridge, module: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("backend.wasm.gz"), module).unwrap();
    let manifest = format!(
        "canisters:
  - name: backend
    build:
      steps:
        - type: pre-built
          path: backend.wasm.gz
networks:
  - name: {ENV}
    mode: connected
    api-url: {url}
    root-key: {root_key}
environments:
  - name: {ENV}
    network: {ENV}
",
        url = bridge.url(),
        root_key = hex(&bridge.root_key()),
    );
    std::fs::write(dir.join("icp.yaml"), manifest).unwrap();
}

#[test]
fn icp_cli_drives_the_canister_on_the_local_network() {
    let Some(bin) = std::env::var_os("ICP_BIN") else {
        // Past the test harness's capture, so the skip shows in the log.
        let _ = writeln!(std::io::stderr(), "skipped: ICP_BIN not set");
        return;
    };
    let bin = PathBuf::from(bin);
    assert!(bin.is_file(), "ICP_BIN={} is not a file", bin.display());

    // What `icp build` makes of the repository's icp.yaml: the module with
    // backend.did as candid:service, which `icp canister call` types
    // Candid text arguments by (`capsule_id = 1` is a nat64, not an int).
    let packaged = packager::package_all(upload_harness::backend_wasm(), &backend_did())
        .expect("the canister packages");
    let bridge = Bridge::start("127.0.0.1:0", upload_harness::backend_wasm().to_vec())
        .expect("the network starts");
    let tmp = TempDir::new("upload-icp-cli");
    let icp = Icp {
        bin,
        home: tmp.0.join("home"),
        project: tmp.0.join("project"),
    };
    std::fs::create_dir_all(&icp.home).unwrap();
    write_project(&icp.project, &bridge, &packaged.gzipped);

    let version = icp.ok(&["--version"]);
    eprintln!("{}", version.trim());
    icp.ok(&["settings", "update-check", "false"]);
    icp.ok(&["settings", "telemetry", "false"]);
    // A new identity (secp256k1, icp's default) in plaintext storage: the
    // keyring needs a desktop session.
    let seed = tmp.0.join("seed.txt");
    icp.ok(&[
        "identity",
        "new",
        "ci",
        "--storage",
        "plaintext",
        "--output-seed",
        seed.to_str().unwrap(),
    ]);
    icp.ok(&["identity", "default", "ci"]);
    let me = icp.ok(&["identity", "principal"]).trim().to_string();
    assert!(candid::Principal::from_text(&me).is_ok(), "{me}");

    // `icp deploy` with a canister to create asks the cycles minting
    // canister for subnets (then would pay the cycles ledger): neither
    // runs on this network, so it stops there.
    let refused = icp.run(&["deploy", "backend", "-e", ENV, "-y"]);
    assert!(
        !refused.success,
        "deploy created a canister: {}",
        refused.stdout
    );
    assert_contains(&refused.stderr, &[CMC, "not found"]);

    // So the identity creates the canister through the management
    // canister (and controls it), links it, and `icp deploy` installs the
    // project's module into it.
    let created = icp.ok(&[
        "canister",
        "call",
        "aaaaa-aa",
        "provisional_create_canister_with_cycles",
        "(record { amount = null; settings = null })",
        "-e",
        ENV,
    ]);
    let id = principal_in(&created);
    let id = id.as_str();
    icp.ok(&["canister", "link", "backend", id, "-e", ENV]);
    let deployed = icp.ok(&["deploy", "backend", "-e", ENV, "-y"]);
    assert_contains(&deployed, &["backend", id]);

    // The README's flow, argument for argument.
    let capsule = icp.call(id, "capsules_create", r#"("family")"#);
    assert_contains(
        &capsule,
        &[
            "Ok = record",
            "capsule_id = 1 : nat64",
            r#"name = "family""#,
            &format!(r#"owner = principal "{me}""#),
        ],
    );
    let begun = icp.call(
        id,
        "uploads_begin",
        r#"(record {
  capsule_id = 1; chunk_size = 4; expected_chunks = 2; idempotency_key = "note-1";
  asset = record { name = "note.txt"; mime_type = "text/plain"; byte_len = 6; sha256 = null } })"#,
    );
    assert_contains(
        &begun,
        &[
            "Ok = record",
            "session_id = 1 : nat64",
            "provisional_memory_id = 1 : nat64",
            "expires_at = ",
        ],
    );
    let second = icp.call(
        id,
        "uploads_put_chunk",
        r#"(record { session_id = 1; index = 1; bytes = blob "o!"; sha256 = null })"#,
    );
    assert_contains(&second, &["Ok = record", "received_chunks = 1 : nat32"]);
    let first = icp.call(
        id,
        "uploads_put_chunk",
        r#"(record { session_id = 1; index = 0; bytes = blob "hell"; sha256 = null })"#,
    );
    assert_contains(
        &first,
        &[
            "Ok = record",
            "received_chunks = 2 : nat32",
            "hashed_bytes = 6 : nat64",
        ],
    );
    let status = icp.call(
        id,
        "uploads_status",
        r#"(record { session_id = 1; from_chunk = 0; max_ranges = 10 })"#,
    );
    assert_contains(&status, &["Ok = record", "missing = vec {}"]);
    let sha256 = r#"blob "\ce\06\09\2f\b9\48\d9\ff\ac\7d\1a\37\6e\40\4b\26\b7\57\5b\cc\11\ee\05\a4\61\5f\ef\4f\ec\3a\30\8b""#;
    assert_eq!(
        hex(&sha2::Sha256::digest(b"hello!")),
        sha256
            .trim_start_matches("blob \"")
            .trim_end_matches('"')
            .replace('\\', ""),
        "the README's sha256 is that of \"hello!\""
    );
    let finished = icp.call(
        id,
        "uploads_finish",
        &format!("(record {{ session_id = 1; byte_len = 6;\n  sha256 = {sha256} }})"),
    );
    assert_contains(
        &finished,
        &[
            "Ok = record",
            "memory_id = 1 : nat64",
            "byte_len = 6 : nat64",
            &format!("sha256 = {sha256}"),
        ],
    );
    let read_arg = "(record { memory_id = 1; offset = 0; length = 6 })";
    let read = icp.call(id, "memories_read", read_arg);
    assert_contains(&read, &[r#"variant { Ok = blob "hello!" }"#]);
    // The reply's bytes, not only their rendering.
    let read_json = icp.ok(&[
        "canister",
        "call",
        id,
        "memories_read",
        read_arg,
        "-e",
        ENV,
        "--json",
    ]);
    let read_json: serde_json::Value =
        serde_json::from_str(&read_json).unwrap_or_else(|e| panic!("{e}: {read_json}"));
    let bytes = unhex(
        read_json["response_bytes"]
            .as_str()
            .expect("response_bytes"),
    );
    let decoded: Result<serde_bytes::ByteBuf, candid::Reserved> =
        candid::decode_one(&bytes).expect("a memories_read reply");
    assert_eq!(decoded.expect("Ok").into_vec(), b"hello!");

    // The controller reads the canister's status from the management
    // canister.
    let status = icp.ok(&["canister", "status", id, "-e", ENV, "--json"]);
    let status: serde_json::Value =
        serde_json::from_str(&status).unwrap_or_else(|e| panic!("{e}: {status}"));
    assert_eq!(status["id"], id, "{status}");
    assert_eq!(status["status"], "Running", "{status}");
    assert_eq!(
        status["settings"]["controllers"],
        serde_json::json!([me]),
        "{status}"
    );
    assert_eq!(
        status["module_hash"],
        format!("0x{}", hex(&sha2::Sha256::digest(&packaged.gzipped))),
        "{status}"
    );
    let text = icp.ok(&["canister", "status", id, "-e", ENV]);
    assert_contains(&text, &["Status: Running", &me]);

    // `icp deploy` again upgrades the canister (its `auto` mode: stop,
    // install_code as an upgrade, start): the memory is still there, read
    // by the canister's name in the environment.
    icp.ok(&["deploy", "backend", "-e", ENV, "-y"]);
    let read = icp.call("backend", "memories_read", read_arg);
    assert_contains(&read, &[r#"variant { Ok = blob "hello!" }"#]);
}

/// The repository's icp.yaml declares the network `upload-bridge --listen
/// 127.0.0.1:4943` serves, with its root key written out: the key is the
/// same in every run (the embedded host's subnet key comes from a fixed
/// seed), so a literal is right.
#[test]
fn icp_yaml_declares_the_local_network_with_its_fixed_root_key() {
    let wasm = upload_harness::backend_wasm().to_vec();
    let one = Bridge::start("127.0.0.1:0", wasm.clone()).expect("the network starts");
    let two = Bridge::start("127.0.0.1:0", wasm).expect("the network starts");
    assert_eq!(
        one.root_key(),
        two.root_key(),
        "the root key changes per run"
    );
    let path = packager::workspace_root().join("icp.yaml");
    let manifest = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let field = |name: &str| -> Vec<String> {
        manifest
            .lines()
            .filter_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
            .collect()
    };
    assert_eq!(field("root-key:"), [hex(&one.root_key())], "{manifest}");
    assert_eq!(field("api-url:"), ["http://127.0.0.1:4943"], "{manifest}");
    assert_eq!(field("mode:"), ["connected"], "{manifest}");
}
