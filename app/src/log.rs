//! Logs. Under an iExec worker (stdout and stderr are published with the result) stdout
//! carries one JSON object per line; locally, progress goes to stderr as plain lines and stdout
//! carries the streamed answer. Callers pass digests and counts, never prompt or answer text.

use serde_json::{Map, Value};
use std::io::Write;

/// Where and how events are written.
#[derive(Debug, Clone, Copy)]
pub struct Log {
    json: bool,
}

impl Log {
    /// JSON lines on stdout (`true`, for iExec) or plain lines on stderr (`false`).
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether events go to stdout as JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Writes one event with its fields (an object; other values are ignored).
    pub fn event(&self, event: &str, fields: Value) {
        let fields = match fields {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        if self.json {
            let mut m = Map::new();
            m.insert("event".into(), Value::String(event.into()));
            m.extend(fields);
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", Value::Object(m));
            let _ = out.flush();
        } else {
            let parts: Vec<String> = fields
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    v => format!("{k}={v}"),
                })
                .collect();
            eprintln!("[{event}] {}", parts.join(" "));
        }
    }

    /// Reports an error: as an event, and always as a plain `error:` line on stderr.
    pub fn error(&self, kind: &str, message: &str) {
        if self.json {
            self.event(
                "error",
                serde_json::json!({ "kind": kind, "message": message }),
            );
        }
        eprintln!("error: {message}");
    }
}
