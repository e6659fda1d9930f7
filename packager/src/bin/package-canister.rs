//! `package-canister [--wasm PATH] [--did PATH] [--out-dir DIR]`
//!
//! Builds the release `backend.wasm` (unless `--wasm` names one), checks it
//! against `backend.did`, shrinks it, adds public `candid:service` and
//! `candid:args` metadata and writes `backend.wasm` and `backend.wasm.gz`
//! into `target/canister/` (or `--out-dir`). dfx.json's build step.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: package-canister [--wasm PATH] [--did PATH] [--out-dir DIR]";

struct Args {
    wasm: Option<PathBuf>,
    did: PathBuf,
    out_dir: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let root = packager::workspace_root();
    let mut args = Args {
        wasm: None,
        did: root.join("backend.did"),
        out_dir: root.join(packager::DEFAULT_OUT_DIR),
    };
    let mut it = std::env::args_os().skip(1);
    while let Some(flag) = it.next() {
        let flag = flag.to_string_lossy().into_owned();
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_string());
        }
        let value = it
            .next()
            .map(PathBuf::from)
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--wasm" => args.wasm = Some(value),
            "--did" => args.did = value,
            "--out-dir" => args.out_dir = value,
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let wasm_path = match args.wasm {
        Some(p) => p,
        None => packager::build_backend_wasm(),
    };
    let wasm =
        std::fs::read(&wasm_path).map_err(|e| format!("reading {}: {e}", wasm_path.display()))?;
    let did = std::fs::read_to_string(&args.did)
        .map_err(|e| format!("reading {}: {e}", args.did.display()))?;
    let packaged = packager::package_all(&wasm, &did)?;
    let (raw, gz) = packager::write_outputs(&args.out_dir, &packaged)?;
    eprintln!(
        "package-canister: {} ({} bytes) -> {} ({} bytes shrunk, with candid:service) -> {} ({} bytes)",
        wasm_path.display(),
        wasm.len(),
        raw.display(),
        packaged.wasm.len(),
        gz.display(),
        packaged.gzipped.len()
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("package-canister: {e}");
            ExitCode::FAILURE
        }
    }
}
