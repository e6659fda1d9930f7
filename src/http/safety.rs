//! Headers that keep user content from running as active content on the
//! canister's origin: whatever a file claims to be, it is never rendered
//! as HTML or SVG there, and the browser may not guess otherwise.

/// No scripts, no plugins, no forms, no loads: a user file viewed on its own
/// is a sandboxed, inert document. (Images and media embedded by another
/// page are unaffected: CSP applies to documents.)
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; sandbox";

/// The CSP a file of `content_type` is served with, if any. Plain media
/// (images other than SVG, audio, video) get none: opened on its own, such
/// a file becomes a document the browser builds around it, and that
/// document must load the file itself, which `default-src 'none'` forbids
/// (a video then sits black at 0:00). Those types cannot run anything (the
/// browser renders them only as media, `nosniff` keeps it from guessing
/// another type), so the policy protects nothing there. Everything else,
/// text and PDF included, keeps the sandbox.
pub fn content_security_policy(content_type: &str) -> Option<&'static str> {
    (!is_plain_media(content_type)).then_some(CONTENT_SECURITY_POLICY)
}

/// Images other than SVG, audio and video.
pub fn is_plain_media(content_type: &str) -> bool {
    let (kind, sub) = content_type.split_once('/').unwrap_or((content_type, ""));
    match kind {
        "image" => !sub.starts_with("svg"),
        "audio" | "video" => true,
        _ => false,
    }
}

/// Headers that let a page of another origin embed or fetch a share link
/// (`<video src>`, `<img>`, `fetch` of a range): the link is a capability
/// anyone holding it may read, so no origin is kept out.
pub const CROSS_ORIGIN_HEADERS: [(&str, &str); 3] = [
    ("Access-Control-Allow-Origin", "*"),
    (
        "Access-Control-Expose-Headers",
        "Content-Length, Content-Range, Accept-Ranges, ETag, Content-Disposition",
    ),
    ("Cross-Origin-Resource-Policy", "cross-origin"),
];

/// The `Content-Type` served for a stored MIME type: the declared
/// `type/subtype` in lower case when it is a valid token pair, otherwise
/// `application/octet-stream`. Parameters are dropped.
pub fn content_type(declared: &str) -> String {
    let essence = declared.split(';').next().unwrap_or("").trim();
    match essence.split_once('/') {
        Some((kind, sub)) if is_token(kind) && is_token(sub) => essence.to_ascii_lowercase(),
        _ => "application/octet-stream".to_string(),
    }
}

/// Whether a browser may show this type in place: images other than SVG,
/// audio, video, plain text and PDF. Everything else, HTML and SVG above
/// all, is downloaded.
pub fn is_inline(content_type: &str) -> bool {
    is_plain_media(content_type)
        || content_type == "text/plain"
        || content_type == "application/pdf"
}

/// `Content-Disposition` for a file named `name` of `content_type`: inline
/// only for the short list above, attachment otherwise. The name goes in
/// both an ASCII fallback and the UTF-8 form of RFC 6266.
pub fn content_disposition(content_type: &str, name: &str) -> String {
    let kind = if is_inline(content_type) {
        "inline"
    } else {
        "attachment"
    };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let ascii = if ascii.trim().is_empty() {
        "file".to_string()
    } else {
        ascii
    };
    format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}",
        percent_encode(if name.is_empty() { "file" } else { name })
    )
}

/// RFC 5987 `attr-char`s stay, every other byte is `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// RFC 9110 `token`.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_normalised_or_replaced() {
        assert_eq!(content_type("image/PNG"), "image/png");
        assert_eq!(content_type("text/html; charset=utf-8"), "text/html");
        assert_eq!(content_type(""), "application/octet-stream");
        assert_eq!(content_type("text"), "application/octet-stream");
        assert_eq!(
            content_type("text/html\r\nX-Evil: 1"),
            "application/octet-stream"
        );
        assert_eq!(content_type("a/b/c"), "application/octet-stream");
    }

    #[test]
    fn only_the_short_list_is_inline() {
        for inline in [
            "image/png",
            "image/jpeg",
            "image/webp",
            "audio/ogg",
            "video/webm",
            "text/plain",
            "application/pdf",
        ] {
            assert!(is_inline(inline), "{inline}");
        }
        for attachment in [
            "text/html",
            "image/svg+xml",
            "application/xhtml+xml",
            "text/xml",
            "application/javascript",
            "text/javascript",
            "application/octet-stream",
            "multipart/related",
        ] {
            assert!(!is_inline(attachment), "{attachment}");
        }
    }

    #[test]
    fn plain_media_alone_is_served_without_a_policy() {
        for media in [
            "image/png",
            "image/jpeg",
            "image/webp",
            "video/webm",
            "video/mp4",
            "audio/ogg",
        ] {
            assert_eq!(content_security_policy(media), None, "{media}");
        }
        for active in [
            "text/html",
            "image/svg+xml",
            "application/pdf",
            "text/plain",
            "application/octet-stream",
        ] {
            assert_eq!(
                content_security_policy(active),
                Some(CONTENT_SECURITY_POLICY),
                "{active}"
            );
        }
    }

    #[test]
    fn html_and_svg_are_attachments_with_safe_names() {
        let html = content_disposition("text/html", "page \"x\".html");
        assert!(html.starts_with("attachment; "), "{html}");
        assert!(html.contains("filename=\"page _x_.html\""), "{html}");
        assert!(
            html.contains("filename*=UTF-8''page%20%22x%22.html"),
            "{html}"
        );
        let svg = content_disposition("image/svg+xml", "a.svg");
        assert!(svg.starts_with("attachment; "), "{svg}");
        let png = content_disposition("image/png", "été\r\n.png");
        assert!(png.starts_with("inline; "), "{png}");
        assert!(!png.contains('\r') && !png.contains('\n'), "{png}");
        assert!(png.contains("%C3%A9t%C3%A9%0D%0A.png"), "{png}");
        assert!(content_disposition("image/png", "").contains("filename=\"file\""));
    }
}
