//! W3C Trace Context: `traceparent` and `tracestate`, parsed strictly and formatted exactly.
//! Anything malformed parses to `None`, which callers treat as "start a new trace".

use std::fmt;

/// The `sampled` trace flag.
pub const FLAG_SAMPLED: u8 = 0x01;
/// The `random` trace flag (Trace Context Level 2): the trace id's right 7 bytes are random.
pub const FLAG_RANDOM: u8 = 0x02;

/// A parsed `traceparent` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// The trace id (never all zero).
    pub trace_id: [u8; 16],
    /// The caller's span id (never all zero).
    pub parent_id: [u8; 8],
    /// Trace flags, kept whole so that flags this version does not know pass through.
    pub flags: u8,
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None, // upper case is invalid in traceparent
    }
}

fn parse_hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = hex_value(pair[0])? << 4 | hex_value(pair[1])?;
    }
    Some(out)
}

impl TraceParent {
    /// Parses a `traceparent` value. Version `00` must be exactly 55 characters; a higher
    /// version (other than the invalid `ff`) is parsed by the `00` layout and may carry more
    /// fields after a `-`, as the specification requires of forward compatibility.
    pub fn parse(header: &str) -> Option<Self> {
        let h = header.trim_matches(|c| c == ' ' || c == '\t').as_bytes();
        if h.len() < 55 || h[2] != b'-' || h[35] != b'-' || h[52] != b'-' {
            return None;
        }
        let version = parse_hex::<1>(&h[0..2])?[0];
        match version {
            0xff => return None,
            0x00 if h.len() != 55 => return None,
            v if v > 0 && h.len() > 55 && h[55] != b'-' => return None,
            _ => {}
        }
        let trace_id = parse_hex::<16>(&h[3..35])?;
        let parent_id = parse_hex::<8>(&h[36..52])?;
        let flags = parse_hex::<1>(&h[53..55])?[0];
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// True when the caller sampled this trace.
    pub fn sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }

    /// True when the trace id is marked random (Level 2).
    pub fn random(&self) -> bool {
        self.flags & FLAG_RANDOM != 0
    }
}

impl fmt::Display for TraceParent {
    /// Always version `00`, the only one this implementation writes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("00-")?;
        for b in self.trace_id {
            write!(f, "{b:02x}")?;
        }
        f.write_str("-")?;
        for b in self.parent_id {
            write!(f, "{b:02x}")?;
        }
        write!(f, "-{:02x}", self.flags)
    }
}

/// A validated `tracestate`: vendor entries passed on unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceState {
    entries: Vec<(String, String)>,
}

/// At most this many list members, as the specification allows.
const MAX_MEMBERS: usize = 32;

fn valid_key(key: &str) -> bool {
    let simple = |k: &str, max: usize| {
        let b = k.as_bytes();
        !b.is_empty()
            && b.len() <= max
            && b[0].is_ascii_lowercase() | b[0].is_ascii_digit()
            && b.iter()
                .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-*/".contains(&c))
    };
    match key.split_once('@') {
        None => simple(key, 256),
        Some((tenant, system)) => simple(tenant, 241) && simple(system, 14),
    }
}

fn valid_value(value: &str) -> bool {
    let b = value.as_bytes();
    !b.is_empty()
        && b.len() <= 256
        && b.iter()
            .all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
        && b.last() != Some(&b' ')
}

impl TraceState {
    /// Parses a `tracestate` value; `None` when any member is malformed, there are too many, or
    /// a key repeats (the specification has the whole header discarded then).
    pub fn parse(header: &str) -> Option<Self> {
        let mut entries: Vec<(String, String)> = Vec::new();
        for member in header.split(',') {
            let member = member.trim_matches(|c| c == ' ' || c == '\t');
            if member.is_empty() {
                continue;
            }
            let (key, value) = member.split_once('=')?;
            if !valid_key(key) || !valid_value(value) || entries.iter().any(|(k, _)| k == key) {
                return None;
            }
            entries.push((key.to_owned(), value.to_owned()));
        }
        (entries.len() <= MAX_MEMBERS).then_some(Self { entries })
    }

    /// The entries in order.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }
}

impl fmt::Display for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_specification_examples() {
        let tp = TraceParent::parse(VALID).unwrap();
        assert!(tp.sampled() && !tp.random());
        assert_eq!(tp.to_string(), VALID);
        let random =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03").unwrap();
        assert!(
            random.sampled() && random.random(),
            "the random flag is kept"
        );
        assert_eq!(
            random.to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03"
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0", // short
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", // 00 must be 55
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", // upper case
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero parent id
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // separator
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", // not hex
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version not hex
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", // future, no dash
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
        let future = TraceParent::parse(
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds",
        )
        .unwrap();
        assert_eq!(
            future.to_string(),
            VALID,
            "a higher version is read by the 00 layout and written as 00"
        );
        assert!(
            TraceParent::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09").is_some()
        );
    }

    #[test]
    fn tracestate_keeps_valid_lists_and_drops_malformed_ones() {
        let ts =
            TraceState::parse("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE,tenant@vendor=x").unwrap();
        assert_eq!(
            ts.to_string(),
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,tenant@vendor=x"
        );
        assert_eq!(TraceState::parse("Rojo=1"), None, "keys are lower case");
        assert_eq!(TraceState::parse("a=1,a=2"), None, "duplicate keys");
        assert_eq!(TraceState::parse("a=1,b"), None);
        assert_eq!(TraceState::parse("a=x,y"), None);
        let many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert_eq!(
            TraceState::parse(&many.join(",")),
            None,
            "at most 32 members"
        );
        assert_eq!(TraceState::parse("").map(|t| t.entries().len()), Some(0));
    }

    proptest! {
        #[test]
        fn any_text_parses_or_is_refused_without_panicking(s in "\\PC{0,120}") {
            let _ = TraceParent::parse(&s);
            let _ = TraceState::parse(&s);
        }

        #[test]
        fn valid_headers_round_trip(trace in any::<[u8; 16]>(), parent in any::<[u8; 8]>(), flags in any::<u8>()) {
            prop_assume!(trace != [0; 16] && parent != [0; 8]);
            let tp = TraceParent { trace_id: trace, parent_id: parent, flags };
            let text = tp.to_string();
            prop_assert_eq!(text.len(), 55);
            prop_assert_eq!(TraceParent::parse(&text), Some(tp));
            let upper = text.to_uppercase();
            if upper != text {
                prop_assert_eq!(TraceParent::parse(&upper), None, "upper-case hex is refused");
            }
        }

        #[test]
        fn near_misses_of_a_valid_header_are_refused(pos in 0usize..55, byte in prop_oneof![Just(b'G'), Just(b'-'), Just(b' '), Just(b'A')]) {
            let mut bytes = VALID.as_bytes().to_vec();
            prop_assume!(bytes[pos] != byte && ![2, 35, 52].contains(&pos));
            bytes[pos] = byte;
            let text = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(TraceParent::parse(&text), None, "{}", text);
        }
    }
}
