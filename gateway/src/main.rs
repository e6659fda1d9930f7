//! `local-gateway`: installs the upload canister's release `.wasm` in an
//! embedded IC host, optionally uploads and shares files into it, and
//! serves it on 127.0.0.1 through the verifying gateway.

use local_gateway::publish::{create_capsule, share, upload};
use local_gateway::{Gateway, HostCanister, SharedHost};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use upload_harness::IcEnv;

const USAGE: &str =
    "usage: local-gateway [--listen 127.0.0.1:4945] [--wasm backend.wasm] [--upload FILE]...

Installs the upload canister (the given .wasm, or the workspace's release
build) in an embedded IC host and serves its http_request interface on the
address, verifying every response against the host's root key. Each
--upload FILE is uploaded (MIME type from its extension) and shared; its
link is printed. Requests and verification results are logged on stderr.";

fn main() {
    let mut listen: SocketAddr = ([127, 0, 0, 1], 4945).into();
    let mut wasm_path = None;
    let mut uploads = Vec::new();
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
            "--upload" => match args.next() {
                Some(f) => uploads.push(f),
                None => fail("--upload needs a file"),
            },
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
    let mut env = SharedHost::shared(upload_harness::user(200));
    let canister = env.install(&wasm);
    let mut links = Vec::new();
    if !uploads.is_empty() {
        let owner = upload_harness::user(1);
        let capsule =
            create_capsule(&mut env, canister, owner, "local-gateway").unwrap_or_else(|e| fail(&e));
        for file in &uploads {
            let data =
                std::fs::read(file).unwrap_or_else(|e| fail(&format!("reading {file}: {e}")));
            let name = Path::new(file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| file.clone());
            let memory = upload(
                &mut env,
                canister,
                owner,
                capsule,
                &name,
                mime_type(&name),
                &data,
            )
            .unwrap_or_else(|e| fail(&format!("uploading {file}: {e}")));
            let link = share(&mut env, canister, owner, memory, None)
                .unwrap_or_else(|e| fail(&format!("sharing {file}: {e}")));
            links.push((file, link.path));
        }
    }
    let gateway = Gateway::new(Arc::new(HostCanister::new(env.host(), canister))).echo_log(true);
    let running = gateway
        .spawn(listen)
        .unwrap_or_else(|e| fail(&format!("listening on {listen}: {e}")));
    println!("canister {canister} served at {}", running.url());
    for (file, path) in links {
        println!("{file}: {}{path}", running.url());
    }
    loop {
        std::thread::park();
    }
}

/// The MIME type the upload declares, from the file name's extension.
fn mime_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("svg") => "image/svg+xml",
        Some("webm") => "video/webm",
        Some("mp4") => "video/mp4",
        Some("mp3") => "audio/mpeg",
        Some("ogg") => "audio/ogg",
        Some("txt") => "text/plain",
        Some("html" | "htm") => "text/html",
        Some("pdf") => "application/pdf",
        _ => "application/octet-stream",
    }
}

fn fail(message: &str) -> ! {
    eprintln!("local-gateway: {message}\n\n{USAGE}");
    std::process::exit(2)
}
