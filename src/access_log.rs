//! The access log: one JSON line per request on stdout. It never holds a credential:
//! the path is logged without its query string, and the principal as `user:42` /
//! `admin:1 as user:42` / `sdk_sign`.
//!
//! Lines are formatted on the request's thread into a shared buffer; a flusher thread
//! writes the buffer out every 100 ms (or as soon as 64 KiB are pending), so a request
//! never waits on a write to a pipe or a terminal: it costs what a buffered writer
//! costs. [`flush`] writes what is pending (on shutdown).

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

/// One request, as logged.
pub struct AccessRecord<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path without the query (the query may hold credentials).
    pub path: &'a str,
    /// Route label.
    pub route: &'a str,
    /// HTTP status written (0: none).
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// Time to the end of the answer.
    pub duration: Duration,
    /// The app_id, once known.
    pub app: Option<&'a str>,
    /// Who called, once authenticated.
    pub principal: Option<&'a dyn std::fmt::Display>,
    /// Client address.
    pub client: Option<&'a dyn std::fmt::Display>,
    /// `X-Cache-Status`, for downloads and pass-through GETs.
    pub cache: Option<&'a str>,
    /// Error kind, when the request failed at the connection level.
    pub error: Option<&'a str>,
}

/// Pending bytes past which the writer is woken at once.
const WAKE_AT: usize = 64 * 1024;
/// Pending bytes past which lines are dropped (a stuck stdout must not grow memory),
/// counted in `filegate_access_log_dropped_total`.
const DROP_AT: usize = 8 * 1024 * 1024;
/// Longest a line waits.
const INTERVAL: Duration = Duration::from_millis(100);

struct Sink {
    pending: Mutex<Vec<u8>>,
    wake: Condvar,
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static SINK: OnceLock<Sink> = OnceLock::new();
static DROPPED: OnceLock<prometheus::IntCounter> = OnceLock::new();

fn sink() -> &'static Sink {
    SINK.get_or_init(|| {
        let _ = std::thread::Builder::new()
            .name("filegate-access-log".into())
            .spawn(|| loop {
                write_pending(true);
            });
        Sink {
            pending: Mutex::new(Vec::with_capacity(WAKE_AT * 2)),
            wake: Condvar::new(),
        }
    })
}

/// Writes what is pending; with `wait`, first waits up to [`INTERVAL`] for more.
fn write_pending(wait: bool) {
    let sink = sink();
    let out = {
        let mut pending = sink.pending.lock().unwrap_or_else(|e| e.into_inner());
        if wait && pending.len() < WAKE_AT {
            pending = sink
                .wake
                .wait_timeout(pending, INTERVAL)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        std::mem::replace(&mut *pending, Vec::with_capacity(WAKE_AT * 2))
    };
    if !out.is_empty() {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&out);
        let _ = stdout.flush();
    }
}

/// Turns the access log on (the default, unless `RUST_LOG` filters
/// `filegate::access` out) or off; lines dropped are counted in `dropped`.
pub fn init(on: bool, dropped: prometheus::IntCounter) {
    let _ = DROPPED.set(dropped);
    let on = on && log::log_enabled!(target: "filegate::access", log::Level::Info);
    if on {
        sink();
    }
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether access lines are written: callers skip building the record when not.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Writes whatever is pending (before the process exits).
pub fn flush() {
    if SINK.get().is_some() {
        write_pending(false);
    }
}

thread_local! {
    static LINE: std::cell::RefCell<String> = std::cell::RefCell::new(String::with_capacity(512));
    /// The formatted time of the current second, and which second it is.
    static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
}

/// Queues the line of `record`.
pub fn write(record: &AccessRecord<'_>) {
    if !enabled() {
        return;
    }
    LINE.with(|line| {
        let mut line = line.borrow_mut();
        line.clear();
        format_line(&mut line, record, SystemTime::now());
        let sink = sink();
        let mut pending = sink.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.len() > DROP_AT {
            if let Some(dropped) = DROPPED.get() {
                dropped.inc();
            }
            return;
        }
        pending.extend_from_slice(line.as_bytes());
        if pending.len() >= WAKE_AT {
            sink.wake.notify_one();
        }
    });
}

/// The JSON line (with its newline).
pub fn format_line(out: &mut String, r: &AccessRecord<'_>, now: SystemTime) {
    let since = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    out.push_str("{\"time\":\"");
    SECOND.with(|s| {
        let mut s = s.borrow_mut();
        if s.0 != since.as_secs() {
            let t = time::OffsetDateTime::from_unix_timestamp(since.as_secs() as i64)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            s.1.clear();
            let _ = write!(
                s.1,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            );
            s.0 = since.as_secs();
        }
        out.push_str(&s.1);
    });
    let _ = write!(out, ".{:03}Z\",\"method\":", since.subsec_millis());
    string(out, r.method);
    out.push_str(",\"path\":");
    string(out, r.path);
    out.push_str(",\"route\":");
    string(out, r.route);
    let micros = r.duration.as_micros();
    // Milliseconds with three decimals, from integers (no float formatting).
    let _ = write!(
        out,
        ",\"status\":{},\"bytes\":{},\"duration_ms\":{}.{:03}",
        r.status,
        r.bytes,
        micros / 1000,
        micros % 1000
    );
    out.push_str(",\"app\":");
    optional(out, r.app);
    out.push_str(",\"principal\":");
    display(out, r.principal);
    out.push_str(",\"client\":");
    display(out, r.client);
    out.push_str(",\"cache\":");
    optional(out, r.cache);
    out.push_str(",\"error\":");
    optional(out, r.error);
    out.push_str("}\n");
}

fn optional(out: &mut String, v: Option<&str>) {
    match v {
        Some(s) => string(out, s),
        None => out.push_str("null"),
    }
}

fn display(out: &mut String, v: Option<&dyn std::fmt::Display>) {
    match v {
        Some(d) => {
            out.push('"');
            let _ = write!(Escaped(out), "{d}");
            out.push('"');
        }
        None => out.push_str("null"),
    }
}

/// A JSON string literal.
fn string(out: &mut String, s: &str) {
    out.push('"');
    let _ = Escaped(out).write_str(s);
    out.push('"');
}

/// Writes into a JSON string body, escaping what JSON needs escaped.
struct Escaped<'a>(&'a mut String);

impl std::fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
            self.0.push_str(s);
            return Ok(());
        }
        for c in s.chars() {
            match c {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                c if (c as u32) < 0x20 => write!(self.0, "\\u{:04x}", c as u32)?,
                c => self.0.push(c),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_with_every_field() {
        let principal = "admin:1 as user:42";
        let client = "127.0.0.1:5000";
        let r = AccessRecord {
            method: "GET",
            path: "/file/download/chat\"\\\u{1}",
            route: "download_chat",
            status: 200,
            bytes: 3000,
            duration: Duration::from_micros(1234),
            app: Some("demo"),
            principal: Some(&principal),
            client: Some(&client),
            cache: Some("HIT"),
            error: None,
        };
        let mut line = String::new();
        format_line(
            &mut line,
            &r,
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_115_249_123),
        );
        assert!(line.ends_with("}\n"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["time"], "2026-12-01T08:54:09.123Z");
        assert_eq!(v["path"], "/file/download/chat\"\\\u{1}");
        assert_eq!(v["principal"], "admin:1 as user:42");
        assert_eq!(v["cache"], "HIT");
        assert_eq!(v["duration_ms"], 1.234);
        assert!(v["error"].is_null());
    }
}
