//! Redaction of secrets and personal data before a log line is written: by field name
//! (password, secret, token, api_key, authorization, and configured ones) and by value shape
//! (bearer tokens, card numbers that pass the Luhn check, e-mail addresses).

/// What replaces a redacted value.
pub const REDACTED: &str = "[REDACTED]";

/// Field-name fragments that mark a secret, matched case-insensitively anywhere in the name
/// (`db_password`, `X-Api-Key`, `refresh_token`).
pub const DEFAULT_SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "credential",
    "cookie",
];

/// Decides what must not reach a log line.
#[derive(Clone, Debug)]
pub struct Redactor {
    keys: Vec<String>,
    /// Unique per key set, so per-thread caches of verdicts never outlive the keys they were
    /// made for (an address could be reused by a later redactor with other keys).
    id: u64,
}

fn next_redactor_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Default for Redactor {
    fn default() -> Self {
        Self::new(DEFAULT_SECRET_KEYS.iter().copied())
    }
}

impl Redactor {
    /// A redactor for these key fragments (lower-cased; `-` and `_` are treated alike).
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            keys: keys.into_iter().map(normalize_key).collect(),
            id: next_redactor_id(),
        }
    }

    /// Identifies this key set (clones share it; adding keys makes a new one).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Adds key fragments to the defaults.
    pub fn with_keys<'a>(mut self, keys: impl IntoIterator<Item = &'a str>) -> Self {
        self.keys.extend(keys.into_iter().map(normalize_key));
        self.id = next_redactor_id();
        self
    }

    /// True when a field with this name holds a secret.
    pub fn is_secret_key(&self, key: &str) -> bool {
        if key.len() < 3 {
            return false;
        }
        // Allocation-free case-insensitive search, `-` matching `_`.
        self.keys.iter().any(|k| contains_normalized(key, k))
    }

    /// `value` with every bearer token, card number and e-mail address replaced; borrowed
    /// unchanged (the common case) when there is nothing to redact.
    pub fn scrub<'v>(&self, value: &'v str) -> std::borrow::Cow<'v, str> {
        if !might_hold_sensitive(value) {
            return std::borrow::Cow::Borrowed(value);
        }
        let mut out = String::with_capacity(value.len());
        let bytes = value.as_bytes();
        let mut i = 0;
        // Input from here on was copied to `out` verbatim (nothing replaced since).
        let mut verbatim_from = 0;
        while i < bytes.len() {
            if let Some(end) = bearer_at(bytes, i) {
                out.push_str("Bearer ");
                out.push_str(REDACTED);
                i = end;
                verbatim_from = i;
            } else if let Some(end) = card_at(bytes, i) {
                out.push_str(REDACTED);
                i = end;
                verbatim_from = i;
            } else if let Some((start, end)) = email_at(bytes, i) {
                // The local part, already copied, is taken back out (ASCII, so bytes = chars).
                let start = start.max(verbatim_from);
                out.truncate(out.len() - (i - start));
                out.push_str(REDACTED);
                i = end;
                verbatim_from = i;
            } else {
                let ch_len = utf8_len(bytes[i]);
                out.push_str(&value[i..i + ch_len]);
                i += ch_len;
            }
        }
        std::borrow::Cow::Owned(out)
    }
}

fn normalize_key(k: &str) -> String {
    k.to_ascii_lowercase().replace('-', "_")
}

fn contains_normalized(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    if n.len() > h.len() {
        return false;
    }
    let norm = |b: u8| {
        if b == b'-' {
            b'_'
        } else {
            b.to_ascii_lowercase()
        }
    };
    h.windows(n.len())
        .any(|w| w.iter().zip(n).all(|(a, b)| norm(*a) == *b))
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// Cheap pre-check, one pass and no allocation: with no `@`, no "bearer" and no run of 13 or
/// more digits (single spaces or dashes allowed between them, as cards are printed), there is
/// nothing to redact. Ids such as UUIDs have short digit runs and stay on this fast path.
/// Bytes that can start or make up something to redact: digits (cards), `@` (e-mail), and
/// `b`/`B` (bearer).
const INTERESTING: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = b'0';
    while b <= b'9' {
        table[b as usize] = true;
        b += 1;
    }
    table[b'@' as usize] = true;
    table[b'b' as usize] = true;
    table[b'B' as usize] = true;
    table
};

fn might_hold_sensitive(value: &str) -> bool {
    let bytes = value.as_bytes();
    // Most messages, symbols and names hold none of the bytes that matter: one table lookup
    // per byte settles them without the state machine below.
    if !bytes.iter().any(|&b| INTERESTING[usize::from(b)]) {
        return false;
    }
    let mut run = 0;
    let mut after_separator = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'@' => return true,
            b'0'..=b'9' => {
                run += 1;
                after_separator = false;
                if run >= 13 {
                    return true;
                }
            }
            b' ' | b'-' if run > 0 && !after_separator => after_separator = true,
            b'b' | b'B'
                if bytes.len() - i >= 6 && bytes[i..i + 6].eq_ignore_ascii_case(b"bearer") =>
            {
                return true
            }
            _ => {
                run = 0;
                after_separator = false;
            }
        }
    }
    false
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)
}

/// `Bearer <token>` starting at `i`: the end of the token.
fn bearer_at(bytes: &[u8], i: usize) -> Option<usize> {
    // No word-boundary test before "bearer": redacting a little too much beats leaking a token.
    if bytes.len() < i + 7 || !bytes[i..i + 6].eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let mut j = i + 6;
    if !matches!(bytes.get(j), Some(b' ' | b'\t' | b':' | b'=')) {
        return None;
    }
    while matches!(bytes.get(j), Some(b' ' | b'\t' | b':' | b'=')) {
        j += 1;
    }
    let start = j;
    while j < bytes.len() && is_token_byte(bytes[j]) {
        j += 1;
    }
    (j > start).then_some(j)
}

/// A card number starting at `i`: 13–19 digits passing the Luhn check, either unbroken or
/// grouped the way cards are printed (4-4-4-4[-3], or 4-6-5 / 4-6-4 with spaces or dashes),
/// and standing alone (not inside a longer word such as a UUID). Returns its end.
fn card_at(bytes: &[u8], i: usize) -> Option<usize> {
    if !bytes[i].is_ascii_digit() || (i > 0 && bytes[i - 1].is_ascii_alphanumeric()) {
        return None;
    }
    // The fraction of a decimal number (`164.39600000000002`) is no card, however its digits
    // add up: nobody prints a card after a decimal point.
    if i >= 2 && bytes[i - 1] == b'.' && bytes[i - 2].is_ascii_digit() {
        return None;
    }
    let mut digits = [0u8; 19];
    let mut groups = [0usize; 6];
    let (mut n, mut g) = (0usize, 0usize);
    let mut j = i;
    let mut best = None;
    while j < bytes.len() {
        let b = bytes[j];
        if b.is_ascii_digit() {
            if n == 19 {
                // Longer than any card: keep the card found so far (found by fuzzing: dropping
                // it let a second pass find what the first had missed).
                break;
            }
            digits[n] = b - b'0';
            n += 1;
            groups[g] += 1;
            j += 1;
            // Nor is the whole part of one (`4111111111111111.5`).
            let alone = j == bytes.len()
                || !(bytes[j].is_ascii_alphanumeric() || decimal_point_at(bytes, j));
            if alone && (13..=19).contains(&n) && card_grouping(&groups[..=g]) && luhn(&digits[..n])
            {
                best = Some(j);
            }
        } else if (b == b' ' || b == b'-')
            && j + 1 < bytes.len()
            && bytes[j + 1].is_ascii_digit()
            && g < 5
        {
            g += 1;
            j += 1;
        } else {
            break;
        }
    }
    best
}

/// A decimal point at `j`: a `.` with a digit after it.
fn decimal_point_at(bytes: &[u8], j: usize) -> bool {
    bytes[j] == b'.' && bytes.get(j + 1).is_some_and(u8::is_ascii_digit)
}

fn card_grouping(groups: &[usize]) -> bool {
    match groups {
        [_] => true,
        [4, 6, 5] | [4, 6, 4] => true,
        [first @ .., last] => first.iter().all(|&len| len == 4) && (1..=4).contains(last),
        [] => false,
    }
}

/// The Luhn checksum used by card numbers.
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(k, &d)| {
            let d = u32::from(d);
            if k % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._%+-".contains(&b)
}

/// An e-mail address whose `@` is at `i`: where it starts and ends.
fn email_at(bytes: &[u8], i: usize) -> Option<(usize, usize)> {
    if bytes[i] != b'@' {
        return None;
    }
    let mut start = i;
    while start > 0 && is_local_byte(bytes[start - 1]) {
        start -= 1;
    }
    if start == i {
        return None;
    }
    let mut end = i + 1;
    let mut dots = 0;
    while end < bytes.len()
        && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'-' || bytes[end] == b'.')
    {
        if bytes[end] == b'.' {
            dots += 1;
        }
        end += 1;
    }
    while end > i + 1 && bytes[end - 1] == b'.' {
        end -= 1;
        dots -= 1;
    }
    (dots >= 1 && end > i + 3).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_shapes_are_redacted() {
        let r = Redactor::default();
        assert_eq!(
            r.scrub("auth: Bearer eyJhbGciOi.JIUzI1-NiJ9"),
            "auth: Bearer [REDACTED]"
        );
        assert_eq!(r.scrub("card 4111 1111 1111 1111 ok"), "card [REDACTED] ok");
        assert_eq!(r.scrub("card 4111-1111-1111-1111"), "card [REDACTED]");
        assert_eq!(
            r.scrub("mail jane.doe+fx@example.co.uk now"),
            "mail [REDACTED] now"
        );
        assert_eq!(
            r.scrub("order 4111111111111112 id"),
            "order 4111111111111112 id",
            "fails Luhn: not a card"
        );
        assert_eq!(r.scrub("EURUSD 1.08505 filled"), "EURUSD 1.08505 filled");
        // 14 of the fraction's digits pass the Luhn check; it is still a price.
        let price = "trade sell 0.01 USDCHF @ 164.39600000000002";
        assert_eq!(r.scrub(price), price);
        assert_eq!(
            r.scrub("4111111111111111.25 lots"),
            "4111111111111111.25 lots"
        );
        assert_eq!(
            r.scrub("paid with 4111111111111111."),
            "paid with [REDACTED].",
            "a full stop after a card is no decimal point"
        );
        assert!(matches!(
            r.scrub("plain message"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert!(r.is_secret_key("DB_Password"));
        assert!(r.is_secret_key("x-api-key"));
        assert!(r.is_secret_key("Authorization"));
        assert!(!r.is_secret_key("order_id"));
        assert!(Redactor::default()
            .with_keys(["iban"])
            .is_secret_key("client_IBAN"));
        assert_eq!(r.scrub("4111111111111111x@example.com"), "[REDACTED]");
        assert_eq!(r.scrub("card=4111111111111111;"), "card=[REDACTED];");
        let tricky = "+)B110-1139-333339-33303-3-911-1139-333339-33303-3,9110-11@";
        assert_eq!(
            r.scrub(&r.scrub(tricky)),
            r.scrub(tricky),
            "redaction is a fixed point"
        );
    }

    fn luhn_complete(prefix: &[u8]) -> Vec<u8> {
        (0..10u8)
            .map(|d| [prefix, &[d]].concat())
            .find(|c| luhn(c))
            .unwrap()
    }

    proptest! {
        #[test]
        fn no_email_survives(local in "[a-zA-Z0-9._%+-]{1,20}", domain in "[a-z0-9-]{1,15}", tld in "[a-z]{2,6}", pre in "[ a-zA-Z:=,(]{0,10}", post in "[ ,.;)!]{0,5}") {
            let email = format!("{local}@{domain}.{tld}");
            let text = format!("{pre}{email}{post}");
            let scrubbed = Redactor::default().scrub(&text).into_owned();
            prop_assert!(!scrubbed.contains(&email), "{text} -> {scrubbed}");
            prop_assert!(!scrubbed.contains(&format!("@{domain}.{tld}")), "{text} -> {scrubbed}");
        }

        #[test]
        fn no_card_survives(prefix in proptest::collection::vec(0u8..10, 12..18), sep in prop_oneof![Just(""), Just(" "), Just("-")], pre in "([a-zA-Z :=]{0,7}[ :=(])?") {
            let digits = luhn_complete(&prefix);
            let card: String = digits.iter().enumerate().map(|(k, d)| {
                let s = if k > 0 && k % 4 == 0 { sep } else { "" };
                format!("{s}{d}")
            }).collect();
            let text = format!("{pre}{card} end");
            let scrubbed = Redactor::default().scrub(&text).into_owned();
            let plain: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
            prop_assert!(!scrubbed.replace([' ', '-'], "").contains(&plain), "{text} -> {scrubbed}");
        }

        #[test]
        fn uuids_and_order_ids_are_left_alone(a in any::<u32>(), b in any::<u16>(), c in any::<u16>(), d in any::<u16>(), e in any::<u64>()) {
            let uuid = format!("{a:08x}-{b:04x}-{c:04x}-{d:04x}-{:012x}", e & 0xffff_ffff_ffff);
            let text = format!("order {uuid} filled");
            let scrubbed = Redactor::default().scrub(&text).into_owned();
            prop_assert_eq!(scrubbed, text);
        }

        #[test]
        fn no_bearer_token_survives(token in "[A-Za-z0-9._~+/=-]{8,64}", scheme in prop_oneof![Just("Bearer"), Just("bearer"), Just("BEARER")], pre in "[a-z :]{0,10}") {
            let text = format!("{pre}{scheme} {token}");
            let scrubbed = Redactor::default().scrub(&text).into_owned();
            prop_assert!(!scrubbed.contains(&token), "{text} -> {scrubbed}");
        }

        #[test]
        fn secret_keys_match_whatever_the_case(key in prop_oneof![Just("password"), Just("api_key"), Just("token"), Just("secret"), Just("authorization")], pre in "[a-z_]{0,6}", upper in any::<bool>()) {
            let name = format!("{pre}{key}");
            let name = if upper { name.to_uppercase() } else { name };
            prop_assert!(Redactor::default().is_secret_key(&name));
        }

        #[test]
        fn numbers_printed_as_numbers_survive(x in any::<f64>(), decimals in 0usize..8, volume in 0.01f64..100.0) {
            let r = Redactor::default();
            // Every way the engine prints a number: shortest round trip (`{:?}`), a price at its
            // instrument's precision, and in a trade message (the first of these once lost the
            // digits of `164.39600000000002` to the card rule).
            let fraction = x.fract() != 0.0 && x.is_finite();
            let mut printed = vec![format!("{x:?}"), format!("{x:.decimals$}")];
            if fraction {
                printed.push(format!("{x}"));
            }
            for text in printed.iter().filter(|t| t.contains('.') || t.contains('e') || t.len() < 13) {
                let message = format!("trade sell {volume} USDCHF @ {text}");
                let (alone, in_message) = (r.scrub(text), r.scrub(&message));
                prop_assert_eq!(alone.as_ref(), text.as_str());
                prop_assert_eq!(in_message.as_ref(), message.as_str());
            }
        }

        #[test]
        fn scrubbing_never_panics_and_keeps_clean_text(text in "\\PC{0,80}") {
            let r = Redactor::default();
            let out = r.scrub(&text);
            if !text.contains('@') && text.chars().filter(char::is_ascii_digit).count() < 13 && !text.to_ascii_lowercase().contains("bearer") {
                prop_assert_eq!(out.as_ref(), text.as_str());
            }
        }
    }
}
