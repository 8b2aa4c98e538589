//! Label values: typed enums for fixed sets, configured name sets resolved to dense indices,
//! and the escaping and naming rules of the exposition formats.

use std::collections::HashMap;
use std::fmt;

/// A label value drawn from a fixed, compile-time set: the type fixes the cardinality.
pub trait LabelValue: Copy + fmt::Debug + 'static {
    /// Every value, in exposition order.
    const ALL: &'static [Self];
    /// The value as it appears in the exposition.
    fn as_str(self) -> &'static str;
    /// Dense position of the value in [`Self::ALL`].
    fn index(self) -> usize;
}

/// Declares a label enum: each variant with its exposition string.
macro_rules! label_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name { $($(#[$vmeta])* #[doc = concat!("\n\nExposed as `", $text, "`.")] $variant),+ }

        impl $crate::metrics::LabelValue for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];
            #[inline]
            fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            #[inline]
            fn index(self) -> usize {
                self as usize
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::metrics::LabelValue::as_str(*self))
            }
        }
    };
}
pub(crate) use label_enum;

/// Sets up to this size are searched by comparison rather than hashing.
const LINEAR_SCAN_MAX: usize = 16;

/// A set of label values fixed by configuration (symbols, LPs), each resolved once to a dense
/// id so that recording indexes an array instead of hashing a string.
#[derive(Clone, Debug, Default)]
pub struct ConfiguredValues {
    names: Vec<Box<str>>,
    ids: HashMap<Box<str>, u16>,
}

impl ConfiguredValues {
    /// Builds the set; duplicates are kept once, in first-seen order.
    ///
    /// # Panics
    /// When more than 65,535 distinct values are given: a label that large is a configuration
    /// mistake, not a set of symbols.
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = Self::default();
        for value in values {
            let value = value.as_ref();
            if !set.ids.contains_key(value) {
                let id =
                    u16::try_from(set.names.len()).expect("at most 65,535 configured label values");
                set.names.push(value.into());
                set.ids.insert(value.into(), id);
            }
        }
        set
    }

    /// The dense id of `name`, if it is configured.
    #[inline]
    pub fn id(&self, name: &str) -> Option<u16> {
        // Configured sets are small (ten symbols, three LPs): comparing a few short strings is
        // several times faster than hashing one with SipHash (see BENCHMARKS.md).
        if self.names.len() <= LINEAR_SCAN_MAX {
            self.names
                .iter()
                .position(|n| n.as_bytes() == name.as_bytes())
                .and_then(|i| u16::try_from(i).ok())
        } else {
            self.ids.get(name).copied()
        }
    }

    /// The name of a dense id.
    pub fn name(&self, id: u16) -> Option<&str> {
        self.names.get(usize::from(id)).map(|s| &**s)
    }

    /// How many values are configured.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when nothing is configured.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The names in id order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|s| &**s)
    }
}

/// True when `name` is a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// True when `name` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`,
/// which Prometheus reserves).
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    !name.starts_with("__")
        && matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Appends a label value escaped for both text formats: `\`, `"` and line feed.
pub fn escape_label_value(out: &mut Vec<u8>, value: &str) {
    escape(out, value, true);
}

/// Appends help text escaped for the Prometheus text format (`\` and line feed; quotes stay).
pub(crate) fn escape_help_text(out: &mut Vec<u8>, help: &str) {
    escape(out, help, false);
}

/// Appends help text escaped for OpenMetrics, which also escapes `"`.
pub(crate) fn escape_help_openmetrics(out: &mut Vec<u8>, help: &str) {
    escape(out, help, true);
}

fn escape(out: &mut Vec<u8>, value: &str, quotes: bool) {
    let bytes = value.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let replacement: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'"' if quotes => b"\\\"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(replacement);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Renders `name="value",…` (without braces), escaped, for a series' fixed labels.
pub(crate) fn render_label_pairs(names: &[&str], values: &[&str]) -> Box<str> {
    let mut out = Vec::new();
    for (i, (name, value)) in names.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"=\"");
        escape_label_value(&mut out, value);
        out.push(b'"');
    }
    // Only ASCII bytes were inserted between UTF-8 pieces, so this cannot fail.
    String::from_utf8(out).unwrap_or_default().into_boxed_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unescape(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    proptest! {
        #[test]
        fn escaped_label_values_round_trip_and_never_end_a_quoted_string(value in any::<String>()) {
            let mut out = Vec::new();
            escape_label_value(&mut out, &value);
            let escaped = String::from_utf8(out).unwrap();
            prop_assert!(!escaped.contains('\n'));
            // Every quote is preceded by an odd run of backslashes.
            let bytes = escaped.as_bytes();
            for (i, &b) in bytes.iter().enumerate() {
                if b == b'"' {
                    let run = bytes[..i].iter().rev().take_while(|&&c| c == b'\\').count();
                    prop_assert!(run % 2 == 1);
                }
            }
            prop_assert_eq!(unescape(&escaped), value);
        }

        #[test]
        fn help_text_keeps_one_line(value in any::<String>()) {
            let mut out = Vec::new();
            escape_help_text(&mut out, &value);
            let escaped = String::from_utf8(out).unwrap();
            prop_assert!(!escaped.contains('\n'));
        }

        #[test]
        fn metric_names_follow_the_prometheus_grammar(name in "\\PC{0,12}") {
            let expected = regex_like_metric_name(&name);
            prop_assert_eq!(is_valid_metric_name(&name), expected);
        }

        #[test]
        fn generated_valid_names_are_accepted(name in "[a-zA-Z_:][a-zA-Z0-9_:]{0,20}") {
            prop_assert!(is_valid_metric_name(&name));
        }

        #[test]
        fn label_names_reject_reserved_and_bad_characters(name in "[a-zA-Z_][a-zA-Z0-9_]{0,20}") {
            prop_assert_eq!(is_valid_label_name(&name), !name.starts_with("__"));
        }
    }

    fn regex_like_metric_name(name: &str) -> bool {
        !name.is_empty()
            && name.char_indices().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    }

    #[test]
    fn configured_values_resolve_to_dense_ids() {
        let symbols = ConfiguredValues::new(["EURUSD", "GBPUSD", "EURUSD"]);
        assert_eq!(symbols.len(), 2);
        assert_eq!(symbols.id("GBPUSD"), Some(1));
        assert_eq!(symbols.name(0), Some("EURUSD"));
        assert_eq!(symbols.id("XAUUSD"), None);
        let many = ConfiguredValues::new((0..100).map(|i| format!("S{i}")));
        assert_eq!(many.id("S57"), Some(57));
        assert_eq!(many.id("S100"), None);
    }
}
