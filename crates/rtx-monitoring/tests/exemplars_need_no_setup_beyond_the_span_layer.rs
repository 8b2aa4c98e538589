//! A histogram built `with_exemplars()` and observed inside a sampled span carries that span's
//! ids, with nothing installed but the span layer: no call to `set_exemplar_source`. In a binary
//! of its own, because the exemplar source is process-wide and another test could install it.

// A test's panics are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rtx_monitoring::metrics::{Format, MetricSpec, Registry};
use rtx_monitoring::trace::SpanLayer;
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn an_observation_in_a_sampled_span_carries_its_ids_with_only_the_span_layer_installed() {
    let registry = Registry::new();
    let latency = registry
        .histogram(
            MetricSpec::histogram(
                "gateway_latency_seconds",
                "Order gateway latency.",
                &[0.1, 1.0],
            )
            .with_unit("seconds")
            .with_exemplars(),
        )
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(SpanLayer::new(1.0, None));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("order");
        let _entered = span.enter();
        latency.observe(0.05);
    });
    let text = registry.encode_to_string(Format::OpenMetrics);
    let bucket = text
        .lines()
        .find(|l| l.starts_with("gateway_latency_seconds_bucket{le=\"0.1\"}"))
        .unwrap();
    assert!(
        bucket.contains("# {trace_id=\""),
        "no exemplar on the observed bucket: {text}"
    );
}
