//! One flat JSON object per line, written straight into a reused buffer: no intermediate
//! value tree, no allocation once the thread's buffers have grown.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};

use super::redact::{Redactor, REDACTED};

/// Appends `s` as a JSON string (with quotes).
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Most values need no escaping: one scan, one copy.
    if !needs_escape(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(b"\\u00");
                out.push(b"0123456789abcdef"[usize::from(b >> 4)]);
                out.push(b"0123456789abcdef"[usize::from(b & 0xf)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// True when `bytes` holds a control character, `"` or `\\`. Eight bytes per step (SWAR), as
/// every key and value of every line passes through here: a byte-at-a-time scan was 13% of
/// the logging bench.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // A byte of `x` below `n` (n <= 0x80) sets its high bit in the result; exact, not heuristic,
    // once bytes with their own high bit set are masked out (`!x`).
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_ne_bytes(word);
        let hit = below(x, 0x20)
            | zero_byte(x ^ (ONES * u64::from(b'"')))
            | zero_byte(x ^ (ONES * u64::from(b'\\')));
        if hit != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

thread_local! {
    /// The formatted date and time up to the second, and the second it is for.
    static SECOND: RefCell<(u64, [u8; 20])> = const { RefCell::new((u64::MAX, [0; 20])) };
}

/// Appends the current time as an RFC 3339 UTC string with microseconds, formatting the date
/// only once per second per thread.
pub(crate) fn write_timestamp(out: &mut Vec<u8>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (secs, micros) = (now.as_secs(), now.subsec_micros());
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            // Written in place: a line that starts a new second must not allocate either.
            crate::time::write_second_prefix(secs, &mut cached.1);
            cached.0 = secs;
        }
        out.push(b'"');
        out.extend_from_slice(&cached.1);
    });
    let mut digits = [b'0'; 6];
    let mut m = micros;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (m % 10) as u8;
        m /= 10;
    }
    out.extend_from_slice(&digits);
    out.extend_from_slice(b"Z\"");
}

/// Writes the fields of an event or span as `,"key":value` pairs, redacting as it goes.
pub(crate) struct FieldWriter<'a> {
    pub(crate) fields: &'a mut Vec<u8>,
    /// Where the `message` field goes (events only); `None` writes it as a field.
    pub(crate) message: Option<&'a mut Vec<u8>>,
    pub(crate) redactor: &'a Redactor,
    pub(crate) scratch: &'a mut String,
    /// Set when the event carries `fatal = true`.
    pub(crate) fatal: bool,
    /// Where each written field's name and byte range in `fields` go, so that a line can write
    /// each key once (see `JsonLayer`).
    pub(crate) names: &'a mut Vec<FieldEntry>,
}

/// A field written into a buffer: its name and where its `,"key":value` bytes lie.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FieldEntry {
    pub(crate) name: &'static str,
    pub(crate) start: u32,
    pub(crate) end: u32,
}

/// What is remembered about a field name: whether it is secret, and whether it can be written
/// between quotes as it is.
#[derive(Clone, Copy)]
struct NameVerdict {
    secret: bool,
    plain: bool,
}

/// One remembered verdict, keyed by (redactor id, name address, name length).
type CachedVerdict = ((u64, usize, usize), NameVerdict);

/// Slots in the per-thread cache of field-name verdicts (a power of two).
const NAME_SLOTS: usize = 256;

thread_local! {
    /// Field names already judged, by address: names are `&'static str` from the call site, so
    /// the secret search and the escape scan run about once per field per thread.
    /// Direct-mapped: a lookup is one slot, whatever the number of names (a linear list cost
    /// ~8 ns per event).
    static NAMES: RefCell<[Option<CachedVerdict>; NAME_SLOTS]> =
        const { RefCell::new([None; NAME_SLOTS]) };
}

impl FieldWriter<'_> {
    fn judge(&self, name: &'static str) -> NameVerdict {
        // Keyed by the redactor too: two layers may redact different keys.
        let id = (self.redactor.id(), name.as_ptr() as usize, name.len());
        // Two ways per set, the set from the top bits of a multiplicative hash: with one way
        // and the address bits as the index, two names of one span that met in a slot evicted
        // each other on every span, and the redaction search ran for both each time (a third
        // of an unsampled span's cost through the engine's subscriber in one bench binary).
        let set = ((id.1 ^ id.2).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) & (NAME_SLOTS - 2);
        let cached = NAMES.with(|c| {
            let names = c.borrow();
            [set, set + 1]
                .into_iter()
                .find_map(|slot| match names[slot] {
                    Some((key, verdict)) if key == id => Some(verdict),
                    _ => None,
                })
        });
        if let Some(verdict) = cached {
            return verdict;
        }
        let verdict = NameVerdict {
            secret: self.redactor.is_secret_key(name),
            plain: !needs_escape(name.as_bytes()),
        };
        // The newest in the first way, the one it displaces in the second.
        NAMES.with(|c| {
            let mut names = c.borrow_mut();
            names[set + 1] = names[set].replace((id, verdict));
        });
        verdict
    }

    /// Writes `,"name":` and says whether the value must be redacted; `None` for the `fatal`
    /// marker, which is not written as a field.
    fn key(&mut self, field: &Field) -> Option<bool> {
        let name = field.name();
        if name == "fatal" {
            return None;
        }
        let verdict = self.judge(name);
        if verdict.plain {
            self.fields.extend_from_slice(b",\"");
            self.fields.extend_from_slice(name.as_bytes());
            self.fields.extend_from_slice(b"\":");
        } else {
            self.fields.push(b',');
            write_json_str(self.fields, name);
            self.fields.push(b':');
        }
        Some(verdict.secret)
    }

    fn text(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            if let Some(message) = self.message.as_deref_mut() {
                message.clear();
                write_json_str(message, &self.redactor.scrub(value));
                return;
            }
        }
        // An empty value says nothing (an absent header, no LP for a B-book fill): the key is
        // left out rather than written as `""`.
        if value.is_empty() {
            return;
        }
        let start = self.fields.len();
        let Some(secret) = self.key(field) else {
            return;
        };
        if secret {
            write_json_str(self.fields, REDACTED);
        } else {
            write_json_str(self.fields, &self.redactor.scrub(value));
        }
        self.entry(field, start);
    }

    fn number(&mut self, field: &Field, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.fields.len();
        let Some(secret) = self.key(field) else {
            return;
        };
        if secret {
            write_json_str(self.fields, REDACTED);
        } else {
            write(self.fields);
        }
        self.entry(field, start);
    }

    fn entry(&mut self, field: &Field, start: usize) {
        // Lines and spans are far below 4 GiB; a wrapped offset would only misplace a key.
        let offset = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.names.push(FieldEntry {
            name: field.name(),
            start: offset(start),
            end: offset(self.fields.len()),
        });
    }
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, |o| {
            o.extend_from_slice(itoa::Buffer::new().format(value).as_bytes())
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        // A long digit string could be a card number: route big ones through the scrubber.
        if value >= 100_000_000_000 {
            let text = itoa::Buffer::new().format(value).to_owned();
            if self.redactor.scrub(&text) != text.as_str() {
                self.text(field, &text);
                return;
            }
        }
        self.number(field, |o| {
            o.extend_from_slice(itoa::Buffer::new().format(value).as_bytes())
        });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.number(field, |o| {
            if value.is_finite() {
                write_f64(o, value);
            } else {
                // JSON has no NaN or infinity; a string keeps the information.
                write_json_str(
                    o,
                    if value.is_nan() {
                        "NaN"
                    } else if value > 0.0 {
                        "+Inf"
                    } else {
                        "-Inf"
                    },
                );
            }
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "fatal" {
            self.fatal = value;
            return;
        }
        self.number(field, |o| {
            o.extend_from_slice(if value { b"true" } else { b"false" })
        });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut scratch = std::mem::take(self.scratch);
        scratch.clear();
        let _ = write!(scratch, "{value}");
        self.text(field, &scratch);
        *self.scratch = scratch;
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut scratch = std::mem::take(self.scratch);
        scratch.clear();
        let _ = write!(scratch, "{value:?}");
        self.text(field, &scratch);
        *self.scratch = scratch;
    }
}

/// Writes a finite float in its shortest round-trip form. Prices and lots usually have at most
/// six decimals; those are printed from an integer (several times faster than the general
/// algorithm), and everything else goes through `ryu`.
fn write_f64(out: &mut Vec<u8>, value: f64) {
    let scaled = (value * 1e6).round();
    // The division is correctly rounded, so equality proves the decimal parses back to `value`.
    if scaled.abs() < 9e15 && scaled / 1e6 == value {
        let n = scaled as i64;
        if n < 0 {
            out.push(b'-');
        }
        let n = n.unsigned_abs();
        let (int, mut frac) = (n / 1_000_000, n % 1_000_000);
        out.extend_from_slice(itoa::Buffer::new().format(int).as_bytes());
        if frac != 0 {
            let mut width = 6;
            while frac % 10 == 0 {
                frac /= 10;
                width -= 1;
            }
            out.push(b'.');
            let digits = itoa::Buffer::new().format(frac).len();
            out.extend(std::iter::repeat_n(b'0', width - digits));
            out.extend_from_slice(itoa::Buffer::new().format(frac).as_bytes());
        } else {
            out.extend_from_slice(b".0");
        }
        return;
    }
    out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn floats_round_trip(v in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
            let mut out = Vec::new();
            write_f64(&mut out, v);
            let text = String::from_utf8(out).unwrap();
            prop_assert_eq!(text.parse::<f64>().unwrap(), v, "{}", text);
        }

        #[test]
        fn short_decimals_round_trip(n in -9_000_000_000_000i64..9_000_000_000_000, scale in 0u32..7) {
            let v = n as f64 / 10f64.powi(scale as i32);
            let mut out = Vec::new();
            write_f64(&mut out, v);
            let text = String::from_utf8(out).unwrap();
            prop_assert_eq!(text.parse::<f64>().unwrap(), v, "{}", text);
        }
    }

    #[test]
    fn prices_print_as_written() {
        for (v, s) in [
            (1.08505, "1.08505"),
            (0.5, "0.5"),
            (151.5, "151.5"),
            (-0.0001, "-0.0001"),
            (3.0, "3.0"),
            (1e-9, "1e-9"),
        ] {
            let mut out = Vec::new();
            write_f64(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), s);
        }
    }

    proptest! {
        #[test]
        fn the_word_scan_agrees_with_the_byte_scan(s in any::<Vec<u8>>()) {
            let bytewise = s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
            prop_assert_eq!(needs_escape(&s), bytewise);
        }
    }

    #[test]
    fn secret_verdicts_are_remembered_per_key_set() {
        let verdict = |redactor: &Redactor, name: &'static str| {
            let (mut fields, mut scratch) = (Vec::new(), String::new());
            let mut names = Vec::new();
            let writer = FieldWriter {
                fields: &mut fields,
                message: None,
                redactor,
                scratch: &mut scratch,
                fatal: false,
                names: &mut names,
            };
            writer.judge(name).secret
        };
        let plain = Redactor::default();
        let with_pin = Redactor::default().with_keys(["pin"]);
        for _ in 0..2 {
            assert!(!verdict(&plain, "card_pin"));
            assert!(verdict(&with_pin, "card_pin"));
            assert!(verdict(&plain, "db_password"));
        }
        // A later redactor at a reused address gets its own verdicts.
        drop(with_pin);
        let again = Redactor::default();
        assert!(!verdict(&again, "card_pin"));
    }

    #[test]
    fn the_word_scan_finds_each_special_byte_at_each_position() {
        for special in (0u8..0x20).chain([b'"', b'\\']) {
            for len in 1..20 {
                for at in 0..len {
                    let mut s = vec![b'a'; len];
                    s[at] = special;
                    assert!(needs_escape(&s), "{special:#x} at {at} of {len}");
                }
            }
        }
        // Neighbours of the special bytes, and high bytes (UTF-8), need nothing.
        let plain: Vec<u8> = (0x20u8..=0xff)
            .filter(|b| *b != b'"' && *b != b'\\')
            .collect();
        assert!(!needs_escape(&plain));
    }

    #[test]
    fn json_strings_escape_quotes_and_controls() {
        let mut out = Vec::new();
        write_json_str(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(String::from_utf8(out).unwrap(), r#""a\"b\\c\nd\u0001é""#);
    }

    #[test]
    fn timestamps_are_rfc3339_with_microseconds() {
        let mut out = Vec::new();
        write_timestamp(&mut out);
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s.len(), 29, "{s}");
        assert!(
            s.starts_with("\"20")
                && s.ends_with("Z\"")
                && s.as_bytes()[11] == b'T'
                && s.as_bytes()[20] == b'.'
        );
    }
}
