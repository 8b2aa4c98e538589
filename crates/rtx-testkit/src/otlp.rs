//! An OTLP/HTTP receiver on a real socket, standing in for a collector: it decodes each export
//! with the official OpenTelemetry protobuf definitions (never by matching strings) and keeps
//! the spans for the test to inspect.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::ports::loopback_listener;

/// A minimal OTLP/HTTP receiver on a real socket: HTTP/1.1 with keep-alive, bodies (gzip or
/// not, as OTLP/HTTP allows) decoded as `ExportTraceServiceRequest`.
///
/// # Panics
/// In its threads, when a request is not an OTLP trace export or its body does not decode.
pub fn otlp_receiver() -> (SocketAddr, Arc<Mutex<Vec<Span>>>) {
    let listener = loopback_listener();
    let addr = listener.local_addr().expect("the receiver's address");
    let spans = Arc::new(Mutex::new(Vec::new()));
    let store = Arc::clone(&spans);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let mut reader =
                    BufReader::new(stream.try_clone().expect("a second handle on the stream"));
                let mut writer = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0usize;
                    let mut gzip = false;
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            return;
                        }
                        if header == "\r\n" {
                            break;
                        }
                        let header = header.to_ascii_lowercase();
                        if let Some(v) = header.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if let Some(v) = header.strip_prefix("content-encoding:") {
                            gzip = v.trim() == "gzip";
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    if gzip {
                        let mut plain = Vec::new();
                        flate2::read::GzDecoder::new(body.as_slice())
                            .read_to_end(&mut plain)
                            .expect("a gzip body");
                        body = plain;
                    }
                    assert!(
                        line.starts_with("POST /v1/traces "),
                        "unexpected request {line}"
                    );
                    let request = ExportTraceServiceRequest::decode(body.as_slice())
                        .expect("a valid OTLP protobuf body");
                    for rs in request.resource_spans {
                        let service = rs
                            .resource
                            .expect("a resource on every ResourceSpans")
                            .attributes
                            .iter()
                            .any(|a| a.key == "service.name");
                        assert!(service, "service.name resource attribute");
                        for ss in rs.scope_spans {
                            store
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .extend(ss.spans);
                        }
                    }
                    let _ = writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                }
            });
        }
    });
    (addr, spans)
}

/// A trace or span id as the lowercase hex W3C headers and logs print it.
pub fn hex_id(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
