//! A span field or a message whose formatting logs (a `Debug` or `Display` that calls `warn!`)
//! must not deadlock `SpanLogSubscriber`: the line it logs reads the very span whose record is
//! being written. In a binary of its own, with the subscriber as the global default as the
//! engine installs it: `tracing` lets a thread re-enter only a global dispatcher from inside a
//! callback (a scoped one answers such an event with no subscriber at all), so only this setup
//! reaches the hazard.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use rtx_monitoring::logging::{span_log_subscriber, LogConfig, Sink};
use rtx_monitoring::trace::{AttributeValue, FinishedSpan, SpanLayer, SpanSink};
use rtx_testkit::CapturedLines;

/// Logs a line each time it is formatted.
struct Loud;

impl std::fmt::Debug for Loud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        tracing::warn!(detail = "debug", "formatting a loud value");
        f.write_str("loud")
    }
}

impl std::fmt::Display for Loud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        tracing::warn!(detail = "display", "formatting a loud value");
        f.write_str("loud")
    }
}

#[test]
fn fields_and_messages_that_log_while_formatted_finish_and_are_logged() {
    let lines = CapturedLines::default();
    let config = LogConfig {
        sink: Sink::Writer(Box::new(lines.clone())),
        ..LogConfig::new("rtx-engine", "0.1.0")
    };
    // A sink, so that the sampled spans keep records (with no exporter they keep none).
    let exported = Arc::new(Exported::default());
    let sink = Arc::clone(&exported) as Arc<dyn SpanSink>;
    let (subscriber, guard) =
        span_log_subscriber(config, None, SpanLayer::new(1.0, Some(sink))).unwrap();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        {
            let order = tracing::info_span!("order", account = tracing::field::Empty);
            let _entered = order.enter();
            // Recorded on a sampled span with log fields: both records are written while the
            // value is formatted.
            order.record("account", tracing::field::debug(&Loud));
            // A message formatted for the line and for the sampled span's event.
            tracing::info!("filled for {}", Loud);
            // A child opened with such a field, inside the span.
            let _child = tracing::info_span!("risk.check", limit = ?Loud).entered();
            tracing::info!("checked");
        }
        // Sent once the spans have closed, and so been handed to the sink.
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(Duration::from_secs(20))
        .expect("the thread finished: formatting a field that logs deadlocked the subscriber");

    assert!(guard.flush(Duration::from_secs(5)));
    let text = lines.text();
    for expected in [
        "\"account\":\"loud\"",
        "\"detail\":\"debug\"",
        "\"detail\":\"display\"",
        "filled for loud",
        "\"limit\":\"loud\"",
        "\"message\":\"checked\"",
    ] {
        assert!(text.contains(expected), "no {expected} in:\n{text}");
    }
    // The sampled spans' records were written too: the recorded field and the event whose
    // message logged while it was formatted.
    let spans = exported.0.lock().unwrap();
    let order = spans
        .iter()
        .find(|s| s.name == "order")
        .expect("the order span was exported");
    assert!(
        order
            .attributes
            .iter()
            .any(|(k, v)| *k == "account" && *v == AttributeValue::Str("loud".into())),
        "{order:?}"
    );
    assert!(
        order.events.iter().any(|(_, m)| m == "filled for loud"),
        "{order:?}"
    );
}

/// Keeps every span it is handed.
#[derive(Default)]
struct Exported(Mutex<Vec<FinishedSpan>>);

impl SpanSink for Exported {
    fn push(&self, span: FinishedSpan) {
        self.0.lock().unwrap().push(span);
    }
}
