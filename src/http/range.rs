//! The `Range` request header (RFC 9110 section 14), reduced to what the
//! canister can answer with a certified response: the byte position the
//! client wants first. Responses are pre-certified per serving chunk, so a
//! satisfiable range is answered with the whole chunk that holds its first
//! byte (its `Content-Range` says which bytes those are).

/// What a `Range` header asks of a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable `Range` header: the header is absent, not a byte range, or
    /// malformed (RFC 9110 says to ignore such a header).
    Whole,
    /// The first requested byte, `< len`.
    From(u64),
    /// Syntactically valid, but no range overlaps the representation: 416.
    Unsatisfiable,
}

/// Parses `header` (the value of `Range`) against a representation of `len`
/// bytes. With several ranges, the first satisfiable one decides.
pub fn parse_range(header: Option<&str>, len: u64) -> RangeRequest {
    let Some(header) = header else {
        return RangeRequest::Whole;
    };
    let Some(specs) = strip_unit(header.trim()) else {
        return RangeRequest::Whole;
    };
    let mut first_satisfiable = None;
    for spec in specs.split(',') {
        let spec = spec.trim();
        if spec.is_empty() {
            continue;
        }
        let Some(start) = parse_spec(spec, len) else {
            // One invalid range-spec makes the whole header invalid.
            return RangeRequest::Whole;
        };
        if first_satisfiable.is_none() {
            first_satisfiable = start;
        }
    }
    match first_satisfiable {
        Some(start) => RangeRequest::From(start),
        None => RangeRequest::Unsatisfiable,
    }
}

/// `bytes=...` -> `...`; the unit is case-insensitive.
fn strip_unit(header: &str) -> Option<&str> {
    let (unit, specs) = header.split_once('=')?;
    unit.trim().eq_ignore_ascii_case("bytes").then_some(specs)
}

/// One range-spec: `None` if invalid, `Some(None)` if valid but not
/// satisfiable, `Some(Some(first byte))` otherwise.
fn parse_spec(spec: &str, len: u64) -> Option<Option<u64>> {
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // suffix-range: the last `n` bytes.
        let suffix = parse_digits(last)?;
        if suffix == 0 || len == 0 {
            return Some(None);
        }
        return Some(Some(len - suffix.min(len)));
    }
    let first = parse_digits(first)?;
    if !last.is_empty() {
        let last = parse_digits(last)?;
        if last < first {
            return None;
        }
    }
    Some((first < len).then_some(first))
}

/// Decimal digits only (no sign, no spaces); saturates instead of failing
/// on huge values, which are then simply unsatisfiable.
fn parse_digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::RangeRequest::*;
    use super::*;

    #[test]
    fn single_open_and_closed_ranges_give_their_first_byte() {
        assert_eq!(parse_range(Some("bytes=0-"), 10), From(0));
        assert_eq!(parse_range(Some("bytes=3-5"), 10), From(3));
        assert_eq!(parse_range(Some("bytes=9-"), 10), From(9));
        assert_eq!(parse_range(Some("BYTES = 4-100"), 10), From(4));
        assert_eq!(parse_range(Some("bytes=4-4"), 10), From(4));
    }

    #[test]
    fn suffix_ranges_count_from_the_end() {
        assert_eq!(parse_range(Some("bytes=-3"), 10), From(7));
        assert_eq!(parse_range(Some("bytes=-10"), 10), From(0));
        assert_eq!(parse_range(Some("bytes=-1000"), 10), From(0));
        assert_eq!(parse_range(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-5"), 0), Unsatisfiable);
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable() {
        assert_eq!(parse_range(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=10-20"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(
            parse_range(Some("bytes=99999999999999999999999-"), 10),
            Unsatisfiable
        );
    }

    #[test]
    fn several_ranges_take_the_first_satisfiable_one() {
        assert_eq!(parse_range(Some("bytes=2-3, 7-8"), 10), From(2));
        assert_eq!(parse_range(Some("bytes=20-30, 7-8"), 10), From(7));
        assert_eq!(parse_range(Some("bytes=20-30, 40-"), 10), Unsatisfiable);
    }

    #[test]
    fn malformed_or_foreign_headers_are_ignored() {
        assert_eq!(parse_range(None, 10), Whole);
        assert_eq!(parse_range(Some("items=0-5"), 10), Whole);
        assert_eq!(parse_range(Some("bytes=5-3"), 10), Whole);
        assert_eq!(parse_range(Some("bytes=a-"), 10), Whole);
        assert_eq!(parse_range(Some("bytes=-"), 10), Whole);
        assert_eq!(parse_range(Some("bytes=+1-2"), 10), Whole);
        assert_eq!(parse_range(Some("bytes"), 10), Whole);
        assert_eq!(parse_range(Some("bytes=1-2,x"), 10), Whole);
    }
}
