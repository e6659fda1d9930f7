//! `package-canister [--canister backend|index] [--wasm PATH] [--did PATH] [--out-dir DIR]`
//!
//! Builds the canister's release `.wasm` (unless `--wasm` names one; the
//! upload canister `backend` by default, or the `index`), checks it
//! against its `.did` (`backend.did`, `index/index.did`), shrinks it, adds
//! public `candid:service` and `candid:args` metadata and writes
//! `<name>.wasm` and `<name>.wasm.gz` into `target/canister/` (or
//! `--out-dir`). dfx.json's and icp.yaml's build step.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str =
    "usage: package-canister [--canister backend|index] [--wasm PATH] [--did PATH] [--out-dir DIR]";

struct Args {
    canister: packager::Canister,
    wasm: Option<PathBuf>,
    did: Option<PathBuf>,
    out_dir: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let root = packager::workspace_root();
    let mut args = Args {
        canister: packager::Canister::Backend,
        wasm: None,
        did: None,
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
            "--did" => args.did = Some(value),
            "--canister" => {
                let name = value.to_string_lossy();
                args.canister = packager::Canister::parse(&name)
                    .ok_or_else(|| format!("unknown canister {name}\n{USAGE}"))?;
            }
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
        None => packager::build_wasm(args.canister),
    };
    let did_path = args
        .did
        .unwrap_or_else(|| packager::workspace_root().join(args.canister.did()));
    let wasm =
        std::fs::read(&wasm_path).map_err(|e| format!("reading {}: {e}", wasm_path.display()))?;
    let did = std::fs::read_to_string(&did_path)
        .map_err(|e| format!("reading {}: {e}", did_path.display()))?;
    let packaged = packager::package_all(&wasm, &did)?;
    let (raw, gz) = packager::write_outputs_of(args.canister, &args.out_dir, &packaged)?;
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
