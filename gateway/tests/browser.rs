//! Headless Chromium through the gateway: a page shows an uploaded PNG
//! (its pixels checked in a screenshot), plays an uploaded WebM video and
//! seeks into its middle (the gateway's log shows the `Range` requests),
//! and an uploaded HTML or SVG file is downloaded, never rendered.
//!
//! Needs Debian's `chromium`, `ffmpeg`, node and `npm install` in
//! `gateway/tests/browser` (`.ci/run` installs them), so it is ignored by
//! a plain `cargo test`; run it with
//! `cargo test -p local-gateway --test browser -- --ignored`.

use local_gateway::publish::{create_capsule, share, upload};
use local_gateway::{Gateway, HostCanister, SharedHost};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use upload_harness::{backend_wasm, user, IcEnv};

const PAGE: &str = "/demo.html";

/// The dapp's page (served by the gateway itself, as an asset canister
/// would serve it): the photo and the video of the links in its query.
const PAGE_HTML: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>demo</title>
<style>body{margin:0;background:#fff} img{display:block;image-rendering:pixelated}</style>
</head><body>
<img id="photo" width="120" height="80" alt="photo">
<video id="clip" muted playsinline width="320" height="180"></video>
<script>
const q = new URLSearchParams(location.search);
document.getElementById('photo').src = q.get('img');
document.getElementById('clip').src = q.get('video');
</script>
</body></html>
"#;

/// Quadrant colours of the test photo (top left, top right, bottom left,
/// bottom right).
const COLOURS: [[u8; 3]; 4] = [[230, 20, 20], [20, 200, 40], [30, 40, 220], [240, 220, 10]];

/// A 120×80 RGB PNG in four coloured quadrants, encoded here (zlib from
/// flate2, CRC-32 per chunk).
fn quadrant_png() -> Vec<u8> {
    let (w, h) = (120u32, 80u32);
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0); // filter: none
        for x in 0..w {
            let q = (y >= h / 2) as usize * 2 + (x >= w / 2) as usize;
            raw.extend_from_slice(&COLOURS[q]);
        }
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw).unwrap();
    let idat = z.finish().unwrap();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", &ihdr), (b"IDAT", &idat), (b"IEND", &Vec::new())] {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        png.extend_from_slice(&crc.sum().to_be_bytes());
    }
    png
}

/// An 8-second 640×360 VP8 WebM of about 3 MB (two 2 MB serving chunks,
/// so playing and seeking need a `Range` request past the first).
fn webm(dir: &Path) -> Vec<u8> {
    let out = dir.join("clip.webm");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=640x360:rate=25")
        .args(["-t", "8", "-an", "-c:v", "libvpx", "-b:v", "6M"])
        .args(["-qmin", "0", "-qmax", "4", "-g", "25"])
        .args(["-deadline", "realtime", "-cpu-used", "8"])
        .arg(&out)
        .status()
        .expect("ffmpeg (Debian's ffmpeg package) must be installed");
    assert!(status.success(), "ffmpeg failed");
    std::fs::read(&out).unwrap()
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn close(actual: &Value, expected: [u8; 3]) -> bool {
    let a: Vec<i64> = actual
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    a.len() == 3
        && a.iter()
            .zip(expected)
            .all(|(a, e)| (a - e as i64).abs() <= 8)
}

#[test]
#[ignore = "needs chromium, ffmpeg and npm install in gateway/tests/browser (.ci/run)"]
fn chromium_shows_the_photo_plays_and_seeks_the_video_and_downloads_html_and_svg() {
    let dir = std::env::temp_dir().join(format!("gateway-browser-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let video = webm(&dir);
    assert!(
        video.len() > 2_500_000,
        "the video must span several chunks ({} bytes)",
        video.len()
    );

    let mut env = SharedHost::shared(user(200));
    let canister = env.install(backend_wasm());
    let owner = user(1);
    let capsule = create_capsule(&mut env, canister, owner, "demo").unwrap();
    let mut publish = |name: &str, mime: &str, data: &[u8]| {
        let memory = upload(&mut env, canister, owner, capsule, name, mime, data).unwrap();
        share(&mut env, canister, owner, memory, None).unwrap().path
    };
    let img = publish("quadrants.png", "image/png", &quadrant_png());
    let clip = publish("clip.webm", "video/webm", &video);
    let html = publish(
        "page.html",
        "text/html",
        b"<html><head><title>pwned</title></head><body><script>window.__pwned = true</script>rendered</body></html>",
    );
    let svg = publish(
        "drawing.svg",
        "image/svg+xml",
        br#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><title>pwned</title><script>window.__pwned = true</script><rect width="10" height="10"/></svg>"#,
    );

    let gateway = Gateway::new(Arc::new(HostCanister::new(env.host(), canister))).with_page(
        PAGE,
        "text/html; charset=utf-8",
        PAGE_HTML.as_bytes().to_vec(),
    );
    let running = gateway.spawn(([127, 0, 0, 1], 0).into()).unwrap();
    let out = Command::new("node")
        .current_dir(browser_dir())
        .arg("check.mjs")
        .args([running.url().as_str(), PAGE, &img, &clip, &html, &svg])
        .output()
        .expect("node must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = running.gateway().log();
    drop(running);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "check.mjs failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("check.mjs printed no report ({e}):\n{stdout}"));
    let context = format!("report: {report:#}\ngateway log:\n{}", log.join("\n"));
    assert!(report.get("error").is_none(), "{context}");

    // The photo, pixel by pixel in the screenshot.
    let px = &report["pixels"];
    for (corner, colour) in ["topLeft", "topRight", "bottomLeft", "bottomRight"]
        .into_iter()
        .zip(COLOURS)
    {
        assert!(close(&px[corner], colour), "{corner}: {context}");
    }

    // The video played, then sought into its middle.
    let v = &report["video"];
    assert!(v.get("failed").is_none(), "{context}");
    let duration = v["duration"].as_f64().unwrap();
    assert!((7.5..8.5).contains(&duration), "{context}");
    assert!(v["played"].as_f64().unwrap() > 0.5, "{context}");
    assert!(
        (v["seekedTo"].as_f64().unwrap() - duration / 2.0).abs() < 0.1,
        "{context}"
    );
    assert!(v["readyState"].as_i64().unwrap() >= 2, "{context}");
    // The browser asked for ranges, and got bytes beyond the first chunk.
    let ranged: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with(&format!("client GET {clip} range=bytes=")))
        .collect();
    assert!(!ranged.is_empty(), "{context}");
    assert!(
        log.iter()
            .any(|l| l.starts_with(&format!("query GET {clip} range=bytes="))
                && !l.contains("range=bytes=0-")
                && l.ends_with("verified")),
        "no verified range past the first chunk: {context}"
    );

    // HTML and SVG: downloads, their scripts never ran.
    for (kind, name) in [("html", "page.html"), ("svg", "drawing.svg")] {
        let d = &report["downloads"][kind];
        assert_eq!(d["downloaded"], Value::Bool(true), "{kind}: {context}");
        assert_eq!(d["filename"].as_str(), Some(name), "{kind}: {context}");
        assert_eq!(d["scriptRan"], Value::Bool(false), "{kind}: {context}");
        assert_ne!(d["title"].as_str(), Some("pwned"), "{kind}: {context}");
    }
    eprintln!("{context}");
}
