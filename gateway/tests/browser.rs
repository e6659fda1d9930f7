//! Headless Chromium through the gateway: a page shows an uploaded PNG
//! (its pixels checked in a screenshot), plays an uploaded WebM video and
//! seeks into its middle (the gateway's log shows the `Range` requests);
//! the WebM and an Ogg audio file opened directly (a share link followed)
//! play and seek, the photo shows; and an uploaded HTML or SVG file is
//! downloaded, never rendered.
//!
//! Needs Debian's `chromium`, `ffmpeg`, node and `npm install` in
//! `gateway/tests/browser` (`.ci/run` installs them), so it is ignored by
//! a plain `cargo test`; run it with
//! `cargo test -p local-gateway --test browser -- --ignored`.

#[path = "common/media.rs"]
mod media;

use local_gateway::publish::{create_capsule, share, upload};
use local_gateway::{Gateway, HostCanister, SharedHost};
use media::{browser_dir, close, ogg, quadrant_png, webm, COLOURS, PAGE, PAGE_HTML};
use serde_json::Value;
use std::process::Command;
use std::sync::Arc;
use upload_harness::{backend_wasm, user, IcEnv};

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
    let tone = publish("tone.ogg", "audio/ogg", &ogg(&dir));
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
        .args([
            running.url().as_str(),
            PAGE,
            &img,
            &clip,
            &html,
            &svg,
            &tone,
        ])
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

    // Opened directly, as a person following a share link does: the WebM
    // and the Ogg play and seek, the photo shows.
    for kind in ["webm", "ogg"] {
        let d = &report["direct"][kind];
        assert!(
            d.get("failed").is_none(),
            "{kind} opened directly: {context}"
        );
        assert!(d["played"].as_f64().unwrap() > 0.5, "{kind}: {context}");
        assert!(
            (d["seekedTo"].as_f64().unwrap() - d["target"].as_f64().unwrap()).abs() < 0.1,
            "{kind}: {context}"
        );
    }
    assert_eq!(report["direct"]["photo"]["naturalWidth"], 120, "{context}");

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
