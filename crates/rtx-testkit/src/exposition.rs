//! Reading a Prometheus text exposition back: samples with unescaped labels, and sums over
//! label subsets. Strict on purpose: the exposition is what is under test.

/// One sample of a Prometheus text exposition.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Sample name (with `_bucket`, `_sum`, … where the type adds one).
    pub name: String,
    /// Labels in exposition order, unescaped.
    pub labels: Vec<(String, String)>,
    /// Value.
    pub value: f64,
}

/// Parses the samples of a Prometheus text exposition (comments skipped).
///
/// # Panics
/// On a line that is not a sample: the exposition is what is under test.
pub fn parse_samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(parse_sample_line)
        .collect()
}

fn parse_sample_line(line: &str) -> Sample {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => panic!("not a sample line: {line}"),
    };
    let mut labels = Vec::new();
    let mut rest = rest;
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let mut key = String::new();
        let end;
        loop {
            let Some((i, c)) = chars.next() else {
                panic!("unterminated labels: {line}")
            };
            match c {
                '}' => {
                    end = i + 1;
                    break;
                }
                ',' => {}
                '=' => {
                    assert_eq!(
                        chars.next().map(|(_, c)| c),
                        Some('"'),
                        "label value must be quoted: {line}"
                    );
                    let mut value = String::new();
                    loop {
                        match chars.next().map(|(_, c)| c) {
                            Some('\\') => match chars.next().map(|(_, c)| c) {
                                Some('n') => value.push('\n'),
                                Some(other) => value.push(other),
                                None => panic!("dangling escape: {line}"),
                            },
                            Some('"') => break,
                            Some(other) => value.push(other),
                            None => panic!("unterminated label value: {line}"),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                c => key.push(c),
            }
        }
        rest = &body[end..];
    }
    let value = rest
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("no value: {line}"));
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("bad value in: {line}")),
    };
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}

/// Sum of every sample named `name` whose labels include all of `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    parse_samples(text)
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|s| s.value)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_parse_with_escaped_labels() {
        let text = "# HELP x y\nx_total{a=\"q\\\"uo\\\\te\",b=\"n\\nl\"} 3\nplain 1.5\ninf_bucket{le=\"+Inf\"} +Inf\n";
        let samples = parse_samples(text);
        assert_eq!(
            samples[0].labels,
            vec![
                ("a".into(), "q\"uo\\te".into()),
                ("b".into(), "n\nl".into())
            ]
        );
        assert_eq!(samples[1].value, 1.5);
        assert_eq!(metric_sum(text, "x_total", &[("b", "n\nl")]), 3.0);
    }
}
