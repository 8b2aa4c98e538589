//! W3C Trace Context Level 2: the `traceparent` header, parsed strictly and formatted exactly.
//! Anything malformed parses to `None`, which callers treat as "start a new trace".

use std::fmt;

/// The `sampled` trace flag.
pub const FLAG_SAMPLED: u8 = 0x01;
/// The `random` trace flag (Trace Context Level 2): the trace id's right 7 bytes are random.
pub const FLAG_RANDOM: u8 = 0x02;
/// The flags this version of the specification defines. The others are reserved: the
/// specification has vendors set them to zero, so they are dropped when a header is read and
/// never sent on.
pub const KNOWN_FLAGS: u8 = FLAG_SAMPLED | FLAG_RANDOM;

/// A parsed `traceparent` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// The trace id (never all zero).
    pub trace_id: [u8; 16],
    /// The caller's span id (never all zero).
    pub parent_id: [u8; 8],
    /// Trace flags: [`FLAG_SAMPLED`] and [`FLAG_RANDOM`] as received; reserved bits read as zero.
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
    /// fields after a `-`, as the specification requires of forward compatibility. Spaces and
    /// tabs around the value are optional whitespace. Reserved flag bits are dropped: the
    /// specification has a vendor read only the flags its version defines and send the others
    /// as zero.
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
        let flags = parse_hex::<1>(&h[53..55])?[0] & KNOWN_FLAGS;
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
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0", // future, short
            "000-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version too long
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version too short
            "00-4bf92f3577b34da6a3ce929d0e0e47361-00f067aa0ba902b7-01", // trace id too long
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b71-01", // parent id too long
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-001", // flags too long
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-.1", // flags not hex
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
    fn reserved_flags_read_as_zero_and_are_never_written() {
        for (flags, known) in [("ff", 0x03), ("fc", 0x00), ("09", 0x01), ("06", 0x02)] {
            let tp = TraceParent::parse(&format!(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}"
            ))
            .unwrap();
            assert_eq!(tp.flags, known, "flags {flags}");
            assert!(tp.to_string().ends_with(&format!("-{known:02x}")));
        }
    }

    #[test]
    fn optional_whitespace_around_the_value_is_ignored_and_nowhere_else() {
        for ows in [" ", "\t", " \t", "\t \t"] {
            assert!(
                TraceParent::parse(&format!("{ows}{VALID}{ows}")).is_some(),
                "{ows:?}"
            );
        }
        assert_eq!(
            TraceParent::parse("00- 4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(TraceParent::parse(&format!("{VALID}\n")), None);
    }

    proptest! {
        #[test]
        fn any_text_parses_or_is_refused_without_panicking(s in "\\PC{0,120}") {
            let _ = TraceParent::parse(&s);
        }

        #[test]
        fn valid_headers_round_trip(trace in any::<[u8; 16]>(), parent in any::<[u8; 8]>(), flags in any::<u8>()) {
            prop_assume!(trace != [0; 16] && parent != [0; 8]);
            let tp = TraceParent { trace_id: trace, parent_id: parent, flags: flags & KNOWN_FLAGS };
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
