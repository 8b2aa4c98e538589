//! Structured logging: the `tracing` macros stay the API; [`JsonLayer`] writes one flat JSON
//! object per line (`docs/LOGGING.md`), redacts secrets and personal data before anything is written,
//! and hands the line to a writer that never blocks the calling thread.
//!
//! Owns formatting, redaction and the log writer. It must not block a caller on I/O, and it
//! does not decide what to log: that is the application's (see [`events`] for the helpers).

pub mod events;
mod format;
mod redact;
mod writer;

use std::cell::RefCell;
use std::time::Duration;

use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::{LookupSpan, SpanRef};
use tracing_subscriber::Layer;

pub use redact::{luhn, Redactor, DEFAULT_SECRET_KEYS, REDACTED};
pub use writer::{LineWriter, Sink};

pub use crate::time::rfc3339;

use crate::catalogue::{LogLevel, SelfMetrics};
use crate::metrics::{Counter, TraceIds};
use format::{write_json_str, write_timestamp, FieldEntry, FieldWriter};
use smallvec::SmallVec;

/// Spans whose fields a line carries, innermost first; deeper nesting drops the outermost.
const MAX_SPAN_DEPTH: usize = 16;

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The level filter does not parse.
    #[error("invalid log level filter `{filter}`: {reason} (use e.g. `info` or `info,rtx_engine=debug`)")]
    Filter {
        /// The filter given.
        filter: String,
        /// The parser's reason.
        reason: String,
    },
    /// A global subscriber is already installed.
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
    /// The writer thread could not start.
    #[error("cannot start the log writer: {0}")]
    Writer(#[from] std::io::Error),
}

/// How to log.
#[derive(Debug)]
pub struct LogConfig {
    /// `service` field.
    pub service: String,
    /// `version` field.
    pub version: String,
    /// Level filter, `info` or `info,rtx_engine=debug`.
    pub filter: String,
    /// Extra field-name fragments to redact, beyond [`DEFAULT_SECRET_KEYS`].
    pub redact_keys: Vec<String>,
    /// Bound of the write buffer, in bytes.
    pub buffer_bytes: usize,
    /// Where lines go.
    pub sink: Sink,
}

impl LogConfig {
    /// Stdout, `info`, a 4 MiB buffer.
    pub fn new(service: &str, version: &str) -> Self {
        Self {
            service: service.to_owned(),
            version: version.to_owned(),
            filter: "info".to_owned(),
            redact_keys: Vec::new(),
            buffer_bytes: 4 * 1024 * 1024,
            sink: Sink::Stdout,
        }
    }
}

/// Parses a level filter such as `info,rtx_engine=debug`.
///
/// # Errors
/// [`LogError::Filter`] naming the filter.
pub fn parse_filter(filter: &str) -> Result<Targets, LogError> {
    filter.parse::<Targets>().map_err(|e| LogError::Filter {
        filter: filter.to_owned(),
        reason: e.to_string(),
    })
}

/// Fields of a span, pre-rendered once as `,"key":value` so events never re-format them, with
/// where each one lies (a field recorded again later is appended, and the later one wins).
///
/// Both are held inline up to the size of a typical span's fields (an HTTP server span's four
/// fields take about 110 bytes), inside the one extension box the registry allocates anyway:
/// as two vectors they cost two more heap blocks per span, in every span the engine opens.
#[derive(Default)]
pub(crate) struct SpanFields {
    bytes: SmallVec<[u8; 128]>,
    entries: SmallVec<[FieldEntry; 6]>,
}

impl SpanFields {
    /// Fields recorded later (`Span::record`), appended after the earlier ones.
    pub(crate) fn append(&mut self, new_bytes: &[u8], new_entries: &[FieldEntry]) {
        // The entries' ranges move by what was already there.
        let base = u32::try_from(self.bytes.len()).unwrap_or(u32::MAX);
        self.bytes.extend_from_slice(new_bytes);
        self.entries.extend(new_entries.iter().map(|e| FieldEntry {
            start: e.start.saturating_add(base),
            end: e.end.saturating_add(base),
            ..*e
        }));
    }
}

/// One span enclosing an event, as the event's log line reads it: its trace ids and its
/// rendered fields, wherever the subscriber keeps them (a registry's extensions, or
/// [`SpanLogSubscriber`](crate::subscriber::SpanLogSubscriber)'s own records).
pub(crate) trait SpanView {
    /// The span's W3C ids, when it has them.
    fn ids(&self) -> Option<TraceIds>;
    /// Runs `f` on the span's rendered fields (`None` when the log filter left it out).
    fn with_fields<R>(&self, f: impl FnOnce(Option<&SpanFields>) -> R) -> R;
}

/// A span of a `tracing-subscriber` registry, for [`JsonLayer`] as a layer.
struct RegistrySpan<'a, S: for<'l> LookupSpan<'l>>(SpanRef<'a, S>);

impl<S: for<'l> LookupSpan<'l>> SpanView for RegistrySpan<'_, S> {
    fn ids(&self) -> Option<TraceIds> {
        crate::trace::ids_in(&self.0.extensions())
    }
    fn with_fields<R>(&self, f: impl FnOnce(Option<&SpanFields>) -> R) -> R {
        f(self.0.extensions().get::<SpanFields>())
    }
}

/// Most distinct field names one line tracks for writing each key once; past it (a line with
/// more fields than any real one), later duplicates are written rather than looked for.
const MAX_LINE_NAMES: usize = 64;

/// The names already written on a line, without allocating.
struct SeenNames {
    names: [&'static str; MAX_LINE_NAMES],
    len: usize,
}

impl SeenNames {
    fn new() -> Self {
        Self {
            names: [""; MAX_LINE_NAMES],
            len: 0,
        }
    }

    /// True when `name` is new (and now remembered) or cannot be tracked any more.
    fn first(&mut self, name: &'static str) -> bool {
        if self.names[..self.len].contains(&name) {
            return false;
        }
        if self.len < MAX_LINE_NAMES {
            self.names[self.len] = name;
            self.len += 1;
        }
        true
    }
}

/// Writes every event as one JSON line.
///
/// Inside spans, a line carries the fields of every enclosing span (outermost first) and the
/// `trace_id`/`span_id` of the innermost span that has them: from the tracing module's
/// [`SpanLayer`](crate::trace::SpanLayer), or from a [`TraceIds`](crate::metrics::TraceIds)
/// extension that another layer inserted.
pub struct JsonLayer {
    /// `,"service":"…","version":"…"`, rendered once.
    identity: Vec<u8>,
    redactor: Redactor,
    writer: LineWriter,
    metrics: Option<SelfMetrics>,
}

impl std::fmt::Debug for JsonLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLayer").finish_non_exhaustive()
    }
}

struct Buffers {
    line: Vec<u8>,
    fields: Vec<u8>,
    message: Vec<u8>,
    scratch: String,
    names: Vec<FieldEntry>,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers {
        line: Vec::with_capacity(512),
        fields: Vec::with_capacity(256),
        message: Vec::with_capacity(128),
        scratch: String::new(),
        names: Vec::with_capacity(32),
    });
}

fn level_of(level: &Level, fatal: bool) -> LogLevel {
    if fatal {
        return LogLevel::Fatal;
    }
    match *level {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warn,
        Level::INFO => LogLevel::Info,
        _ => LogLevel::Debug,
    }
}

impl JsonLayer {
    /// A layer writing through `writer`.
    pub fn new(
        service: &str,
        version: &str,
        redactor: Redactor,
        writer: LineWriter,
        metrics: Option<SelfMetrics>,
    ) -> Self {
        let mut identity = Vec::new();
        identity.extend_from_slice(b",\"service\":");
        write_json_str(&mut identity, service);
        identity.extend_from_slice(b",\"version\":");
        write_json_str(&mut identity, version);
        Self {
            identity,
            redactor,
            writer,
            metrics,
        }
    }

    /// The writer, to flush it.
    pub fn writer(&self) -> &LineWriter {
        &self.writer
    }

    /// A span's fields rendered once, for every line logged inside it.
    pub(crate) fn span_fields(&self, attrs: &Attributes<'_>) -> SpanFields {
        let mut fields = SpanFields::default();
        self.render_span_fields_into(&mut fields, attrs);
        fields
    }

    /// Renders a span's fields into `fields`, replacing what it held: a pooled span record
    /// reuses its storage this way instead of moving a new one in.
    pub(crate) fn render_span_fields_into(&self, fields: &mut SpanFields, attrs: &Attributes<'_>) {
        fields.bytes.clear();
        fields.entries.clear();
        self.render_fields(&Record::new(attrs.values()), |bytes, entries| {
            fields.append(bytes, entries);
        });
    }

    /// Renders `values` into this thread's buffers and hands the rendered bytes and their
    /// entries to `keep`, which copies them once where the span keeps them.
    ///
    /// Rendering runs the values' `Debug` and `Display`, which may log; `keep` runs after it,
    /// so that a caller may lock the span only there: a line logged while a value is formatted
    /// reads the span's fields too, and found them locked by the span's own record.
    pub(crate) fn render_fields(
        &self,
        values: &Record<'_>,
        keep: impl FnOnce(&[u8], &[FieldEntry]),
    ) {
        let render = |fields: &mut Vec<u8>, names: &mut Vec<FieldEntry>, scratch: &mut String| {
            fields.clear();
            names.clear();
            values.record(&mut FieldWriter {
                fields,
                message: None,
                redactor: &self.redactor,
                scratch,
                fatal: false,
                names,
            });
        };
        let mut keep = Some(keep);
        let _ = BUFFERS.try_with(|cell| {
            let mut buffers = cell.try_borrow_mut().ok()?;
            let Buffers {
                fields,
                names,
                scratch,
                ..
            } = &mut *buffers;
            render(fields, names, scratch);
            keep.take()?(fields, names);
            Some(())
        });
        if let Some(keep) = keep {
            // A span opened or recorded while this thread's buffers are in use (by a field's
            // `Debug` that opens one) or while the thread exits renders into buffers of its own.
            let (mut fields, mut names) = (Vec::new(), Vec::new());
            render(&mut fields, &mut names, &mut String::new());
            keep(&fields, &names);
        }
    }

    /// Renders `event` into `b.line`, with the fields and ids of the spans `scope` walks
    /// (innermost first).
    fn render<V: SpanView>(
        &self,
        event: &Event<'_>,
        scope: Option<impl Iterator<Item = V>>,
        b: &mut Buffers,
    ) -> LogLevel {
        let Buffers {
            line,
            fields,
            message,
            scratch,
            names,
        } = b;
        line.clear();
        fields.clear();
        message.clear();
        names.clear();
        let mut visitor = FieldWriter {
            fields,
            message: Some(message),
            redactor: &self.redactor,
            scratch,
            fatal: false,
            names,
        };
        event.record(&mut visitor);
        let fatal = visitor.fatal;
        let meta = event.metadata();
        let level = level_of(meta.level(), fatal);
        line.extend_from_slice(b"{\"timestamp\":");
        write_timestamp(line);
        line.extend_from_slice(b",\"level\":\"");
        line.extend_from_slice(crate::metrics::LabelValue::as_str(level).as_bytes());
        line.extend_from_slice(b"\",\"message\":");
        if message.is_empty() {
            line.extend_from_slice(b"\"\"");
        } else {
            line.extend_from_slice(message);
        }
        line.extend_from_slice(b",\"target\":");
        write_json_str(line, meta.target());
        line.extend_from_slice(&self.identity);
        if let Some(scope) = scope {
            // One walk, innermost span first: the first span with ids gives them, and the
            // spans are kept (up to MAX_SPAN_DEPTH, innermost ones) so their fields can be
            // written outermost first, where an inner span's field comes later and wins in
            // readers that keep the last duplicate key. Nothing is allocated.
            let mut chain: [Option<V>; MAX_SPAN_DEPTH] = Default::default();
            let mut depth = 0;
            let mut ids = None;
            for span in scope {
                if ids.is_none() {
                    ids = span.ids();
                }
                if depth == MAX_SPAN_DEPTH {
                    break;
                }
                chain[depth] = Some(span);
                depth += 1;
            }
            if let Some(ids) = ids {
                line.extend_from_slice(b",\"trace_id\":\"");
                push_hex(line, &ids.trace_id);
                line.extend_from_slice(b"\",\"span_id\":\"");
                push_hex(line, &ids.span_id);
                line.push(b'"');
            }
            // Each key once per line: the event's own fields win over any span's, an inner
            // span's over an outer one's, and a span's later record over its earlier one. The
            // survivors are found innermost first, then written outermost first.
            let mut seen = SeenNames::new();
            for entry in names.iter() {
                seen.first(entry.name);
            }
            let mut keep = [0u64; MAX_SPAN_DEPTH];
            for (d, span) in chain[..depth].iter().enumerate() {
                let Some(span) = span else { continue };
                span.with_fields(|f| {
                    let Some(f) = f else { return };
                    // Past 64 fields in one span, the rest are written as they are.
                    for (k, entry) in f.entries.iter().enumerate().take(64).rev() {
                        if seen.first(entry.name) {
                            keep[d] |= 1 << k;
                        }
                    }
                });
            }
            for d in (0..depth).rev() {
                let Some(span) = &chain[d] else { continue };
                span.with_fields(|f| {
                    let Some(f) = f else { return };
                    for (k, entry) in f.entries.iter().enumerate() {
                        if k >= 64 || keep[d] & (1 << k) != 0 {
                            let range = entry.start as usize..entry.end as usize;
                            line.extend_from_slice(f.bytes.get(range).unwrap_or_default());
                        }
                    }
                });
            }
        }
        line.extend_from_slice(fields);
        // A helper that logs for its caller gives the caller's `file` and `line` as fields.
        let located = names.iter().any(|e| e.name == "file");
        if matches!(level, LogLevel::Error | LogLevel::Fatal) && !located {
            line.extend_from_slice(b",\"file\":");
            write_json_str(line, meta.file().unwrap_or("unknown"));
            line.extend_from_slice(b",\"line\":");
            line.extend_from_slice(
                itoa::Buffer::new()
                    .format(meta.line().unwrap_or(0))
                    .as_bytes(),
            );
        }
        if level == LogLevel::Fatal {
            line.extend_from_slice(b",\"stack\":");
            write_json_str(
                line,
                &std::backtrace::Backtrace::force_capture().to_string(),
            );
        }
        line.extend_from_slice(b"}\n");
        level
    }
}

fn push_hex<const N: usize>(out: &mut Vec<u8>, bytes: &[u8; N]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Spelled out on the stack and appended once: a push per digit paid a capacity check each,
    // 48 of them per line.
    let mut text = [[0u8; 2]; N];
    for (pair, b) in text.iter_mut().zip(bytes) {
        *pair = [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]];
    }
    out.extend_from_slice(text.as_flattened());
}

impl<S> Layer<S> for JsonLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let fields = self.span_fields(attrs);
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if span.extensions().get::<SpanFields>().is_none() {
            return;
        }
        // Rendered before the span's extensions are locked: formatting a value may log a
        // line, which reads them.
        self.render_fields(values, |bytes, entries| {
            if let Some(fields) = span.extensions_mut().get_mut::<SpanFields>() {
                fields.append(bytes, entries);
            }
        });
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.write_event(event, ctx.event_scope(event).map(|s| s.map(RegistrySpan)));
    }
}

impl JsonLayer {
    /// Renders `event` with the spans `scope` walks (innermost first), queues the line, and
    /// counts it.
    pub(crate) fn write_event<V: SpanView>(
        &self,
        event: &Event<'_>,
        scope: Option<impl Iterator<Item = V>>,
    ) {
        let outcome = BUFFERS.try_with(|cell| {
            let Ok(mut buffers) = cell.try_borrow_mut() else {
                return None;
            };
            let level = self.render(event, scope, &mut buffers);
            let important = !matches!(level, LogLevel::Debug | LogLevel::Info);
            let written = self.writer.push(&buffers.line, important);
            Some((level, written))
        });
        let Ok(Some((level, written))) = outcome else {
            return;
        };
        if written {
            if let Some(m) = &self.metrics {
                m.record_log_event(level);
            }
        }
        if level == LogLevel::Fatal {
            // The caller is about to exit: everything queued must reach the sink first.
            self.writer.flush(Duration::from_secs(5));
        }
    }
}

/// Keeps logging alive; flushes what is queued when dropped (for at most 5 s).
#[derive(Debug)]
#[must_use = "dropping the guard flushes and stops nothing else; keep it for the life of the process"]
pub struct LogGuard {
    writer: LineWriter,
}

impl LogGuard {
    /// Waits until every line queued so far is written, for at most `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.writer.flush(timeout)
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.writer.close(Duration::from_secs(5));
    }
}

fn dropped_line(count: u64) -> Vec<u8> {
    let mut line = Vec::with_capacity(160);
    line.extend_from_slice(b"{\"timestamp\":");
    write_timestamp(&mut line);
    line.extend_from_slice(b",\"level\":\"WARN\",\"message\":");
    write_json_str(&mut line, &format!("{count} log events dropped"));
    line.extend_from_slice(
        b",\"target\":\"rtx_monitoring::logging\",\"event\":\"log_dropped\",\"dropped\":",
    );
    line.extend_from_slice(itoa::Buffer::new().format(count).as_bytes());
    line.extend_from_slice(b"}\n");
    line
}

/// Builds the layer and its writer without installing anything (for tests and custom stacks).
///
/// # Errors
/// When the writer thread cannot start.
pub fn layer(
    config: LogConfig,
    metrics: Option<SelfMetrics>,
) -> Result<(JsonLayer, LogGuard), LogError> {
    let dropped = metrics
        .as_ref()
        .map_or_else(Counter::noop, |m| m.log_events_dropped.clone());
    let writer = LineWriter::start(config.sink, config.buffer_bytes, dropped, dropped_line)?;
    let redactor = Redactor::default().with_keys(config.redact_keys.iter().map(String::as_str));
    let layer = JsonLayer::new(
        &config.service,
        &config.version,
        redactor,
        writer.clone(),
        metrics,
    );
    Ok((layer, LogGuard { writer }))
}

/// The subscriber [`try_init_with`] installs, without installing it: the registry, `extra`
/// layers (such as the tracing module's [`SpanLayer`](crate::trace::SpanLayer)) and the JSON
/// layer behind the configured level filter. Benchmarks and tests measure this exact stack.
///
/// # Errors
/// A bad filter, or a writer that cannot start.
pub fn subscriber_with<L>(
    config: LogConfig,
    metrics: Option<SelfMetrics>,
    extra: L,
) -> Result<(impl Subscriber + Send + Sync + 'static, LogGuard), LogError>
where
    L: Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
{
    let filter = parse_filter(&config.filter)?;
    let (json, guard) = layer(config, metrics)?;
    let subscriber = tracing_subscriber::registry()
        .with(extra)
        .with(json.with_filter(filter));
    Ok((subscriber, guard))
}

/// The subscriber [`try_init_with_spans`] installs, without installing it: spans as `spans` is
/// configured and the JSON layer behind the configured level filter, in one purpose-built
/// [`SpanLogSubscriber`](crate::subscriber::SpanLogSubscriber). Benchmarks and tests measure
/// this exact stack.
///
/// # Errors
/// A bad filter, or a writer that cannot start.
pub fn span_log_subscriber(
    config: LogConfig,
    metrics: Option<SelfMetrics>,
    spans: crate::trace::SpanLayer,
) -> Result<(crate::subscriber::SpanLogSubscriber, LogGuard), LogError> {
    let filter = parse_filter(&config.filter)?;
    let (json, guard) = layer(config, metrics)?;
    let subscriber = crate::subscriber::SpanLogSubscriber::new(spans).with_logs(json, filter);
    Ok((subscriber, guard))
}

/// Installs spans and JSON logging as the global `tracing` subscriber: what the engine runs
/// ([`span_log_subscriber`]). Faster than [`try_init_with`] with the same layers, which stays
/// for stacks that add layers of their own.
///
/// # Errors
/// A bad filter, an already installed subscriber, or a writer that cannot start.
pub fn try_init_with_spans(
    config: LogConfig,
    metrics: Option<SelfMetrics>,
    spans: crate::trace::SpanLayer,
) -> Result<LogGuard, LogError> {
    let (subscriber, guard) = span_log_subscriber(config, metrics, spans)?;
    tracing::subscriber::set_global_default(subscriber).map_err(|_| LogError::AlreadyInstalled)?;
    Ok(guard)
}

/// Installs JSON logging as the global `tracing` subscriber, with `extra` layers (such as the
/// tracing module's span exporter) beside it.
///
/// # Errors
/// A bad filter, an already installed subscriber, or a writer that cannot start.
pub fn try_init_with<L>(
    config: LogConfig,
    metrics: Option<SelfMetrics>,
    extra: L,
) -> Result<LogGuard, LogError>
where
    L: Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
{
    let (subscriber, guard) = subscriber_with(config, metrics, extra)?;
    tracing::subscriber::set_global_default(subscriber).map_err(|_| LogError::AlreadyInstalled)?;
    Ok(guard)
}

/// Installs JSON logging as the global `tracing` subscriber.
///
/// # Errors
/// A bad filter, an already installed subscriber, or a writer that cannot start.
pub fn try_init(config: LogConfig, metrics: Option<SelfMetrics>) -> Result<LogGuard, LogError> {
    try_init_with(config, metrics, tracing_subscriber::layer::Identity::new())
}

/// Logs at FATAL: an `ERROR` event marked `fatal = true`, written with file, line and a
/// backtrace, after which every queued line is flushed. The caller then exits.
///
/// ```no_run
/// rtx_monitoring::fatal!(reason = "database schema is newer than this build", "cannot start");
/// std::process::exit(1);
/// ```
#[macro_export]
macro_rules! fatal {
    ($($arg:tt)+) => {
        $crate::__private::tracing::error!(fatal = true, $($arg)+)
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::TraceIds;
    use rtx_testkit::CapturedLines;

    fn capture(f: impl FnOnce()) -> Vec<serde_json::Value> {
        capture_text(f)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// The lines as written: a JSON parser would hide a repeated key by keeping one of them.
    fn capture_text(f: impl FnOnce()) -> String {
        let out = CapturedLines::default();
        let config = LogConfig {
            sink: Sink::Writer(Box::new(out.clone())),
            ..LogConfig::new("svc", "1.2.3")
        };
        let (layer, guard) = layer(config, None).unwrap();
        let subscriber =
            tracing_subscriber::registry().with(layer.with_filter(parse_filter("debug").unwrap()));
        tracing::subscriber::with_default(subscriber, f);
        assert!(guard.flush(Duration::from_secs(5)));
        out.text()
    }

    #[test]
    fn each_key_appears_once_and_the_innermost_value_wins() {
        let text = capture_text(|| {
            let request = tracing::info_span!(
                "HTTP",
                otel.kind = "server",
                http.route = "/api/orders",
                status = tracing::field::Empty
            );
            let _request = request.enter();
            request.record("status", 200);
            request.record("status", 201);
            let order = tracing::info_span!("order", otel.kind = "internal", symbol = "EURUSD");
            let _order = order.enter();
            tracing::info!(symbol = "GBPUSD", "placed");
        });
        let line = text.lines().next().unwrap();
        for key in ["otel.kind", "http.route", "status", "symbol"] {
            assert_eq!(
                line.matches(&format!("\"{key}\":")).count(),
                1,
                "{key} once: {line}"
            );
        }
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["otel.kind"], "internal", "the inner span wins: {line}");
        assert_eq!(v["symbol"], "GBPUSD", "the event wins: {line}");
        assert_eq!(v["status"], 201, "a span's later record wins: {line}");
        assert_eq!(v["http.route"], "/api/orders");
    }

    #[test]
    fn an_error_logged_through_a_helper_names_the_callers_file_and_line() {
        let mut call_line = 0;
        let text = capture_text(|| {
            call_line = line!() + 1;
            events::order_execution(&events::OrderExecution {
                order_id: "o-1",
                account_id: "demo-1",
                symbol: "EURUSD",
                side: "buy",
                order_type: "market",
                volume: 0.1,
                status: "error",
                route: "ABOOK",
                reason: Some("lp_timeout"),
                latency: Duration::from_millis(3),
            });
        });
        let line = text.lines().next().unwrap();
        assert_eq!(line.matches("\"file\":").count(), 1, "{line}");
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["level"], "ERROR");
        assert_eq!(v["file"], file!(), "{line}");
        assert_eq!(v["line"], call_line, "{line}");
    }

    #[test]
    fn empty_values_are_left_out() {
        let lines = capture(|| {
            let span = tracing::info_span!("HTTP", traceparent = "", route = "/health");
            let _entered = span.enter();
            tracing::info!(lp = "", order_id = "o-1", "");
        });
        assert!(lines[0].get("traceparent").is_none(), "{}", lines[0]);
        assert!(lines[0].get("lp").is_none(), "{}", lines[0]);
        assert_eq!(lines[0]["order_id"], "o-1");
        assert_eq!(lines[0]["message"], "", "the message key is always there");
    }

    #[test]
    fn events_are_flat_json_with_the_spec_fields() {
        let lines = capture(|| {
            let span = tracing::info_span!("order", order_id = "o-1", account = "demo-4");
            let _entered = span.enter();
            tracing::info!(
                symbol = "EURUSD",
                qty = 0.5,
                latency_us = 42u64,
                filled = true,
                "order filled"
            );
            tracing::error!(code = 7, "boom \"quoted\"");
        });
        assert_eq!(lines.len(), 2);
        let info = &lines[0];
        for key in [
            "timestamp",
            "level",
            "message",
            "target",
            "service",
            "version",
        ] {
            assert!(info.get(key).is_some(), "{key} missing: {info}");
        }
        assert_eq!(info["level"], "INFO");
        assert_eq!(info["message"], "order filled");
        assert_eq!(info["service"], "svc");
        assert_eq!(info["symbol"], "EURUSD");
        assert_eq!(info["qty"], 0.5);
        assert_eq!(info["latency_us"], 42);
        assert_eq!(info["filled"], true);
        assert_eq!(
            info["order_id"], "o-1",
            "span fields are flattened into the line"
        );
        assert!(info.get("file").is_none());
        let error = &lines[1];
        assert_eq!(error["level"], "ERROR");
        assert_eq!(error["message"], "boom \"quoted\"");
        assert!(
            error["file"].as_str().unwrap().ends_with("mod.rs")
                && error["line"].as_u64().unwrap() > 0
        );
    }

    #[test]
    fn secrets_are_redacted_in_fields_spans_and_messages() {
        let lines = capture(|| {
            let span = tracing::info_span!("req", api_key = "k-123", user = "jane@example.com");
            let _entered = span.enter();
            tracing::warn!(
                Password = "hunter2",
                authorization = "Bearer abc.def",
                note = "card 4111 1111 1111 1111",
                "login by bob@example.org"
            );
        });
        let line = serde_json::to_string(&lines[0]).unwrap();
        for secret in [
            "k-123",
            "jane@example.com",
            "hunter2",
            "abc.def",
            "4111 1111 1111 1111",
            "bob@example.org",
        ] {
            assert!(!line.contains(secret), "{secret} leaked: {line}");
        }
        assert_eq!(lines[0]["Password"], REDACTED);
    }

    #[test]
    fn odd_field_names_are_escaped_and_every_value_kind_is_json() {
        let lines = capture(|| {
            for _ in 0..2 {
                // Twice: the second line is written from the per-thread name cache.
                tracing::info!(
                    "we\"ird\\name" = 1u64,
                    price = 1.08505,
                    neg = -0.0001,
                    big = 12345678.5,
                    tiny = 1e-9,
                    nan = f64::NAN,
                    "odd"
                );
            }
        });
        for line in &lines {
            assert_eq!(line["we\"ird\\name"], 1, "{line}");
            assert_eq!(line["price"], 1.08505);
            assert_eq!(line["neg"], -0.0001);
            assert_eq!(line["big"], 12345678.5);
            assert_eq!(line["tiny"], 1e-9);
            assert_eq!(line["nan"], "NaN");
        }
    }

    #[test]
    fn fatal_lines_carry_a_stack() {
        let lines = capture(|| crate::fatal!(reason = "test", "giving up"));
        assert_eq!(lines[0]["level"], "FATAL");
        assert!(lines[0]["stack"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(lines[0].get("fatal").is_none());
    }

    #[test]
    fn trace_ids_in_a_span_reach_its_lines() {
        struct Ids;
        impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Ids {
            fn on_new_span(&self, _: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
                ctx.span(id).unwrap().extensions_mut().insert(TraceIds {
                    trace_id: [0xab; 16],
                    span_id: [0x01; 8],
                });
            }
        }
        let out = CapturedLines::default();
        let config = LogConfig {
            sink: Sink::Writer(Box::new(out.clone())),
            ..LogConfig::new("svc", "1")
        };
        let (json, guard) = layer(config, None).unwrap();
        let subscriber = tracing_subscriber::registry().with(Ids).with(json);
        tracing::subscriber::with_default(subscriber, || {
            let _s = tracing::info_span!("work").entered();
            tracing::info!("inside");
        });
        guard.flush(Duration::from_secs(5));
        let text = out.text();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["trace_id"], "ab".repeat(16));
        assert_eq!(line["span_id"], "01".repeat(8));
    }

    #[test]
    fn a_bad_filter_names_itself() {
        let e = parse_filter("info,rtx_engine=loud").unwrap_err();
        assert!(e.to_string().contains("info,rtx_engine=loud"), "{e}");
    }
}
