//! W3C Trace Context Level 2: the `tracestate` header, a list of vendor entries passed on in
//! order. Reading is strict about the grammar (one malformed member discards the whole header,
//! which the specification allows and the W3C test harness expects) and lenient where the
//! specification is: empty members, optional whitespace, repeated keys.

use std::fmt;

/// What [`TraceState::insert`] refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TraceStateError {
    /// The key breaks the grammar.
    #[error(
        "invalid tracestate key {0:?}: 1 to 256 of a-z 0-9 _ - * / @, starting with a-z or 0-9"
    )]
    InvalidKey(String),
    /// The value breaks the grammar.
    #[error("invalid tracestate value {0:?}: 1 to 256 printable ASCII characters other than , and =, not ending in a space")]
    InvalidValue(String),
}

/// A validated `tracestate`: vendor entries, left-most (most recent) first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceState {
    entries: Vec<(String, String)>,
}

/// At most this many list members: a longer header is discarded on reading, and an entry
/// added at the left pushes the right-most one out.
pub const MAX_MEMBERS: usize = 32;
/// Longest key and longest value.
const MAX_KEY: usize = 256;
const MAX_VALUE: usize = 256;
/// Entries longer than this go first when a header must be shortened.
const LONG_ENTRY: usize = 128;

/// The Level 2 key grammar: `( lcalpha / DIGIT ) 0*255 ( keychar )`, where `keychar` takes
/// `@` anywhere after the first character. Level 1 split keys at `@` into a 241-character
/// tenant and a 14-character system; that split is gone, so `foo@`, `a@b@c` and a 242-character
/// tenant are all keys.
fn valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_KEY
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-*/@".contains(&c))
}

/// `0*255(chr) nblk-chr`: printable ASCII without `,` and `=`, not ending in a space. Leading
/// spaces belong to the value.
fn valid_value(value: &str) -> bool {
    let b = value.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_VALUE
        && b.iter()
            .all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
        && b.last() != Some(&b' ')
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

impl TraceState {
    /// Parses one `tracestate` field value. `None` when any member breaks the grammar or there
    /// are more than 32 members: the whole header is then discarded. Empty and whitespace-only
    /// members are skipped; a key that repeats keeps its first (left-most) value, since the
    /// specification lets a vendor drop duplicates it did not write.
    pub fn parse(header: &str) -> Option<Self> {
        Self::parse_fields([header])
    }

    /// Parses several `tracestate` header fields as the one list they form when combined in
    /// order (RFC 9110, section 5.3), with the rules of [`TraceState::parse`].
    pub fn parse_fields<'a>(fields: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let mut entries: Vec<(String, String)> = Vec::new();
        let mut members = 0usize;
        for member in fields.into_iter().flat_map(|field| field.split(',')) {
            let member = member.trim_matches(is_ows);
            if member.is_empty() {
                continue;
            }
            members += 1;
            if members > MAX_MEMBERS {
                return None;
            }
            let (key, value) = member.split_once('=')?;
            if !valid_key(key) || !valid_value(value) {
                return None;
            }
            if !entries.iter().any(|(k, _)| k == key) {
                entries.push((key.to_owned(), value.to_owned()));
            }
        }
        Some(Self { entries })
    }

    /// The entries in order, left-most first.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// True when there is no entry (nothing is sent then).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Sets this vendor's entry: a new or modified key goes to the left, as the specification
    /// requires, and when the list would pass 32 members the right-most (oldest) one is
    /// dropped.
    ///
    /// # Errors
    /// When `key` or `value` breaks the grammar; the list is then unchanged.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), TraceStateError> {
        if !valid_key(key) {
            return Err(TraceStateError::InvalidKey(key.to_owned()));
        }
        if !valid_value(value) {
            return Err(TraceStateError::InvalidValue(value.to_owned()));
        }
        self.entries.retain(|(k, _)| k != key);
        self.entries.insert(0, (key.to_owned(), value.to_owned()));
        self.entries.truncate(MAX_MEMBERS);
        Ok(())
    }

    /// Removes `key`'s entry and gives back its value. A vendor should remove only its own.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let at = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(at).1)
    }

    /// Shortens the formatted header to at most `max_len` characters the way the
    /// specification prescribes: whole entries only, those longer than 128 characters first,
    /// then from the right.
    pub fn truncate_to(&mut self, max_len: usize) {
        let entry_len = |(k, v): &(String, String)| k.len() + 1 + v.len();
        let total = |entries: &[(String, String)]| {
            entries.iter().map(entry_len).sum::<usize>() + entries.len().saturating_sub(1)
        };
        while total(&self.entries) > max_len {
            match self.entries.iter().position(|e| entry_len(e) > LONG_ENTRY) {
                Some(long) => {
                    self.entries.remove(long);
                }
                None => {
                    self.entries.pop();
                }
            }
        }
    }
}

impl fmt::Display for TraceState {
    /// The single field value: entries joined by `,` without optional whitespace.
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

    #[test]
    fn valid_lists_are_kept_in_order_without_optional_whitespace() {
        let ts =
            TraceState::parse("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE,tenant@vendor=x").unwrap();
        assert_eq!(
            ts.to_string(),
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,tenant@vendor=x"
        );
        let ows = TraceState::parse("foo=1 \t , \t bar=2,\t \tbaz=3\t").unwrap();
        assert_eq!(ows.to_string(), "foo=1,bar=2,baz=3");
        assert_eq!(TraceState::parse("").map(|t| t.len()), Some(0));
        assert_eq!(
            TraceState::parse(" , ,\t,").map(|t| t.len()),
            Some(0),
            "empty members are allowed"
        );
    }

    #[test]
    fn leading_spaces_belong_to_the_value_and_trailing_ones_do_not() {
        let ts = TraceState::parse("foo=  1 ").unwrap();
        assert_eq!(ts.get("foo"), Some("  1"));
        assert_eq!(TraceState::parse("foo= "), None, "a value of spaces only");
    }

    #[test]
    fn keys_follow_the_level_2_grammar() {
        for key in [
            "foo@".to_owned(),
            "foo@@bar".to_owned(),
            "foo@bar@baz".to_owned(),
            "t".repeat(241) + "@" + &"v".repeat(14),
            "t".repeat(242) + "@v",
            "t@".to_owned() + &"v".repeat(15),
            "z".repeat(256),
            "0abcdefghijklmnopqrstuvwxyz0123456789_-*/@a-z0-9_-*/".to_owned(),
        ] {
            let ts = TraceState::parse(&format!("{key}=1,bar=2"))
                .unwrap_or_else(|| panic!("{key:?} refused"));
            assert_eq!(ts.get(&key), Some("1"));
        }
        for key in [
            "@foo", "Foo", "FOO", "foo ", "foo.bar", "_foo", "*foo", "/foo", "-foo", "",
        ] {
            assert_eq!(
                TraceState::parse(&format!("{key}=1,bar=2")),
                None,
                "{key:?}"
            );
        }
        assert_eq!(
            TraceState::parse(&format!("{}=1", "z".repeat(257))),
            None,
            "257-character key"
        );
    }

    #[test]
    fn values_follow_the_grammar() {
        let all: String = (0x20u8..=0x7e)
            .filter(|c| *c != b',' && *c != b'=')
            .map(char::from)
            .collect();
        assert_eq!(
            TraceState::parse(&format!("foo={all}")).unwrap().get("foo"),
            Some(all.as_str())
        );
        assert!(TraceState::parse(&format!("foo={}", "v".repeat(256))).is_some());
        for bad in [
            "foo=bar=baz".to_owned(),
            "foo=,bar=3".to_owned(),
            "foo".to_owned(),
            "foo=\u{7f}".to_owned(),
            "foo=é".to_owned(),
            "foo=a\tb".to_owned(),
            format!("foo={}", "v".repeat(257)),
        ] {
            assert_eq!(TraceState::parse(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn thirty_two_members_pass_and_thirty_three_discard_the_header() {
        let members: Vec<String> = (1..=33).map(|i| format!("bar{i:02}={i:02}")).collect();
        let fields: Vec<String> = members[..32].chunks(10).map(|c| c.join(",")).collect();
        let ts = TraceState::parse_fields(fields.iter().map(String::as_str)).unwrap();
        assert_eq!(ts.len(), 32);
        assert_eq!(ts.entries()[0].0, "bar01", "fields combine in order");
        assert_eq!(ts.entries()[31].0, "bar32");
        assert_eq!(TraceState::parse(&members.join(",")), None);
    }

    #[test]
    fn a_repeated_key_keeps_its_first_value_and_the_rest_of_the_list() {
        assert_eq!(
            TraceState::parse("foo=1,bar=2,foo=3").unwrap().to_string(),
            "foo=1,bar=2"
        );
        let ts = TraceState::parse_fields(["foo=1", "foo=2"]).unwrap();
        assert_eq!(ts.to_string(), "foo=1");
    }

    #[test]
    fn inserting_moves_the_key_left_and_drops_the_oldest_past_32() {
        let mut ts = TraceState::parse("congo=1,rojo=2").unwrap();
        ts.insert("rojo", "3").unwrap();
        assert_eq!(
            ts.to_string(),
            "rojo=3,congo=1",
            "a modified key moves left"
        );
        ts.insert("rtx", "x").unwrap();
        assert_eq!(ts.to_string(), "rtx=x,rojo=3,congo=1");
        let members: Vec<String> = (1..=32).map(|i| format!("k{i}=v")).collect();
        let mut full = TraceState::parse(&members.join(",")).unwrap();
        full.insert("rtx", "x").unwrap();
        assert_eq!(full.len(), 32);
        assert_eq!(full.entries()[0].0, "rtx");
        assert_eq!(
            full.entries()[31].0,
            "k31",
            "k32, the right-most, is dropped"
        );
        assert_eq!(
            full.insert("Bad", "x"),
            Err(TraceStateError::InvalidKey("Bad".to_owned()))
        );
        assert!(full.insert("ok", "a,b").is_err());
        assert_eq!(
            full.entries()[0].0,
            "rtx",
            "a refused entry changes nothing"
        );
        assert_eq!(full.remove("rtx").as_deref(), Some("x"));
        assert_eq!(full.len(), 31);
    }

    #[test]
    fn truncation_drops_long_entries_first_then_from_the_right() {
        let long = "l".repeat(130);
        let mut ts = TraceState::parse(&format!("a=1,big={long},b=2,c=3")).unwrap();
        ts.truncate_to(100);
        assert_eq!(ts.to_string(), "a=1,b=2,c=3");
        ts.truncate_to(7);
        assert_eq!(ts.to_string(), "a=1,b=2");
        ts.truncate_to(0);
        assert!(ts.is_empty());
    }

    proptest! {
        #[test]
        fn any_text_parses_or_is_refused_without_panicking(s in "\\PC{0,120}") {
            let _ = TraceState::parse(&s);
        }

        #[test]
        fn what_is_written_reads_back_the_same(
            entries in proptest::collection::vec(("[a-z0-9][a-z0-9_*/@-]{0,20}", "[ -+\\--<>-~]{0,20}[!-+\\--<>-~]"), 0..40)
        ) {
            let mut ts = TraceState::default();
            for (k, v) in entries.iter().rev() {
                ts.insert(k, v).unwrap();
            }
            prop_assert!(ts.len() <= MAX_MEMBERS);
            prop_assert_eq!(TraceState::parse(&ts.to_string()), Some(ts));
        }
    }
}
