//! Reading series back out of the registry by family name: what the in-process alert
//! evaluator uses, so that it sees exactly what a scrape would.

use std::sync::PoisonError;

use super::histogram::HistogramSnapshot;
use super::registry::{Registry, SeriesValue};

/// The value of one series.
#[derive(Clone, Debug, PartialEq)]
pub enum ReadingValue {
    /// A counter or gauge.
    Scalar(f64),
    /// A histogram.
    Histogram(HistogramSnapshot),
}

/// One series as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    /// Label pairs, unescaped, in declaration order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: ReadingValue,
}

impl Reading {
    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The scalar value (0 for a histogram).
    pub fn scalar(&self) -> f64 {
        match &self.value {
            ReadingValue::Scalar(v) => *v,
            ReadingValue::Histogram(_) => 0.0,
        }
    }
}

/// Parses labels rendered by `render_label_pairs` (`a="x",b="y\"z"`).
pub(crate) fn parse_rendered_labels(rendered: &str) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    let mut chars = rendered.chars().peekable();
    loop {
        let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if name.is_empty() {
            break;
        }
        chars.next(); // opening quote
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.push((name.trim_start_matches(',').to_owned(), value));
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels
}

impl Registry {
    /// Every series of the family `name` (after running the collect hooks is the caller's
    /// choice: see [`Registry::refresh`]). Empty when no such family exists.
    pub fn read(&self, name: &str) -> Vec<Reading> {
        let Some(family) = self.families().into_iter().find(|f| f.spec.name == name) else {
            return Vec::new();
        };
        let series = family.series.read().unwrap_or_else(PoisonError::into_inner);
        series
            .iter()
            .map(|s| Reading {
                labels: parse_rendered_labels(&s.labels),
                value: match &s.value {
                    SeriesValue::Counter(c) => ReadingValue::Scalar(c.get() as f64),
                    SeriesValue::FloatCounter(c) => ReadingValue::Scalar(c.get()),
                    SeriesValue::Gauge(g) => ReadingValue::Scalar(g.get()),
                    SeriesValue::Histogram(h) => ReadingValue::Histogram(h.snapshot()),
                },
            })
            .collect()
    }

    /// Runs the collect hooks (process, runtime, uptime, SLO window) so that values read
    /// between scrapes are current.
    pub fn refresh(&self) {
        self.run_hooks();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::labels::render_label_pairs;

    #[test]
    fn rendered_labels_parse_back() {
        let rendered = render_label_pairs(&["a", "b", "c"], &["x", "q\"u,o=te\\", "line\nbreak"]);
        let parsed = parse_rendered_labels(&rendered);
        assert_eq!(
            parsed,
            vec![
                ("a".into(), "x".into()),
                ("b".into(), "q\"u,o=te\\".into()),
                ("c".into(), "line\nbreak".into())
            ]
        );
        assert!(parse_rendered_labels("").is_empty());
    }
}
