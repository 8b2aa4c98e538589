//! A writer that keeps what it is given, for a log sink a test reads back.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

/// Everything written to it (or to any of its clones), kept in memory: hand a clone to a log
/// sink and read the lines back with [`CapturedLines::text`].
#[derive(Clone, Debug, Default)]
pub struct CapturedLines(Arc<Mutex<Vec<u8>>>);

impl CapturedLines {
    /// What has been written so far, as text.
    ///
    /// # Panics
    /// When it is not UTF-8: log lines always are, so a test fails on bytes that are not.
    pub fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => panic!("the captured lines are not UTF-8: {e}"),
        }
    }
}

impl Write for CapturedLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
