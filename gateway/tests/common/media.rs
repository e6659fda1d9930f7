//! What the browser tests show Chromium, shared by `browser.rs` (the
//! hand-written gateway) and `ic_http_gateway.rs` (DFINITY's crate): the
//! dapp's page, a PNG made in code, a WebM made by ffmpeg.

#![allow(dead_code)]

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const PAGE: &str = "/demo.html";

/// The dapp's page (served by the gateway itself, as an asset canister
/// would serve it): the photo and the video of the links in its query.
pub const PAGE_HTML: &str = r#"<!doctype html>
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
pub const COLOURS: [[u8; 3]; 4] = [[230, 20, 20], [20, 200, 40], [30, 40, 220], [240, 220, 10]];

/// A 120×80 RGB PNG in four coloured quadrants, encoded here (zlib from
/// flate2, CRC-32 per chunk).
pub fn quadrant_png() -> Vec<u8> {
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
pub fn webm(dir: &Path) -> Vec<u8> {
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

/// Eight seconds of a 440 Hz tone, Ogg Vorbis (audio/ogg), by ffmpeg.
pub fn ogg(dir: &Path) -> Vec<u8> {
    let out = dir.join("tone.ogg");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("sine=frequency=440:duration=8")
        .args(["-c:a", "libvorbis", "-q:a", "4"])
        .arg(&out)
        .status()
        .expect("ffmpeg (Debian's ffmpeg package) must be installed");
    assert!(status.success(), "ffmpeg failed");
    std::fs::read(&out).unwrap()
}

pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

pub fn close(actual: &Value, expected: [u8; 3]) -> bool {
    let a: Vec<i64> = actual
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    a.len() == 3
        && a.iter()
            .zip(expected)
            .all(|(a, e)| (a - e as i64).abs() <= 8)
}
