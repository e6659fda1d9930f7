//! `local-gateway`: installs the upload canister's release `.wasm` in an
//! embedded IC host and serves it on 127.0.0.1 through the verifying
//! gateway.

use local_gateway::{Gateway, HostCanister, SharedHost};
use std::net::SocketAddr;
use std::sync::Arc;
use upload_harness::IcEnv;

const USAGE: &str = "usage: local-gateway [--listen 127.0.0.1:8080] [--wasm backend.wasm]

Installs the upload canister (the given .wasm, or the workspace's release
build) in an embedded IC host and serves its http_request interface on the
address, verifying every response against the host's root key.";

fn main() {
    let mut listen: SocketAddr = ([127, 0, 0, 1], 8080).into();
    let mut wasm_path = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => {
                let v = args.next().unwrap_or_default();
                listen = v
                    .parse()
                    .unwrap_or_else(|e| fail(&format!("--listen {v}: {e}")));
            }
            "--wasm" => wasm_path = args.next(),
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => fail(&format!("unknown argument {other}")),
        }
    }
    if !listen.ip().is_loopback() {
        fail("the gateway serves the loopback interface only");
    }
    let wasm = match wasm_path {
        Some(p) => std::fs::read(&p).unwrap_or_else(|e| fail(&format!("reading {p}: {e}"))),
        None => upload_harness::backend_wasm_with(true).to_vec(),
    };
    let mut env = SharedHost::new(upload_harness::user(200));
    let canister = env.install(&wasm);
    let gateway = Gateway::new(Arc::new(HostCanister::new(env.host(), canister))).echo_log(true);
    let running = gateway
        .spawn(listen)
        .unwrap_or_else(|e| fail(&format!("listening on {listen}: {e}")));
    println!("canister {canister} served at {}", running.url());
    loop {
        std::thread::park();
    }
}

fn fail(message: &str) -> ! {
    eprintln!("local-gateway: {message}\n\n{USAGE}");
    std::process::exit(2)
}
