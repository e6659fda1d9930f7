//! What a bucket Wasm says about itself: the layout it writes, from its
//! public metadata section `icp:public upload:layout` (4 bytes, little
//! endian). The module may be gzipped, as install_code takes it.

use std::io::Read;

pub const LAYOUT_SECTION: &str = "icp:public upload:layout";

/// The layout the module declares; `None` for a module that declares none
/// (a build from before the section, or not a bucket at all).
pub fn declared_layout(module: &[u8]) -> Option<u32> {
    let raw;
    let wasm = if module.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(module)
            .take(100 << 20)
            .read_to_end(&mut out)
            .ok()?;
        raw = out;
        &raw[..]
    } else {
        module
    };
    custom_section(wasm, LAYOUT_SECTION)
        .filter(|b| b.len() == 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn leb128(bytes: &[u8], at: &mut usize) -> Option<usize> {
    let mut value = 0usize;
    for shift in (0..35).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        value |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The payload of the first custom section named `name`.
fn custom_section<'a>(wasm: &'a [u8], name: &str) -> Option<&'a [u8]> {
    if wasm.get(..8)? != b"\0asm\x01\0\0\0" {
        return None;
    }
    let mut at = 8;
    while at < wasm.len() {
        let id = wasm[at];
        at += 1;
        let size = leb128(wasm, &mut at)?;
        let end = at.checked_add(size).filter(|e| *e <= wasm.len())?;
        if id == 0 {
            let mut p = at;
            let len = leb128(wasm, &mut p)?;
            let name_end = p.checked_add(len).filter(|e| *e <= end)?;
            if &wasm[p..name_end] == name.as_bytes() {
                return Some(&wasm[name_end..end]);
            }
        }
        at = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn module_with(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        // A type section first, as real modules have.
        m.extend_from_slice(&[1, 1, 0]);
        for (name, payload) in sections {
            let mut body = vec![name.len() as u8];
            body.extend_from_slice(name.as_bytes());
            body.extend_from_slice(payload);
            m.push(0);
            m.push(body.len() as u8);
            m.extend_from_slice(&body);
        }
        m
    }

    #[test]
    fn the_declared_layout_is_read_plain_and_gzipped() {
        let m = module_with(&[
            ("icp:public candid:service", b"service : {}"),
            (LAYOUT_SECTION, &6u32.to_le_bytes()),
        ]);
        assert_eq!(declared_layout(&m), Some(6));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&m).unwrap();
        assert_eq!(declared_layout(&gz.finish().unwrap()), Some(6));
    }

    #[test]
    fn a_module_without_the_section_or_malformed_declares_none() {
        assert_eq!(declared_layout(&module_with(&[("name", b"x")])), None);
        assert_eq!(declared_layout(b"not wasm"), None);
        assert_eq!(
            declared_layout(&module_with(&[(LAYOUT_SECTION, &[6, 0])])),
            None
        );
        let mut truncated = module_with(&[(LAYOUT_SECTION, &6u32.to_le_bytes())]);
        truncated.truncate(truncated.len() - 2);
        assert_eq!(declared_layout(&truncated), None);
    }
}
