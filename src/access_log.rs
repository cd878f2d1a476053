//! The access log: one JSON line per request on the `filegate::access` log target.
//! It never holds a credential: the path is logged without its query string, and the
//! principal as `user:42` / `admin:1 as user:42` / `sdk_sign`.

use std::time::Duration;

use serde::Serialize;

/// One request, as logged.
#[derive(Debug, Serialize)]
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
    #[serde(rename = "duration_ms", serialize_with = "as_millis")]
    pub duration: Duration,
    /// The app_id, once known.
    pub app: Option<&'a str>,
    /// Who called, once authenticated.
    pub principal: Option<&'a str>,
    /// Client address.
    pub client: Option<String>,
    /// Error kind, when the request failed at the connection level.
    pub error: Option<&'a str>,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

/// Whether access lines are logged (`RUST_LOG` may turn them off): callers skip
/// building the record when not.
pub fn enabled() -> bool {
    log::log_enabled!(target: "filegate::access", log::Level::Info)
}

/// Writes the line.
pub fn write(record: &AccessRecord<'_>) {
    if let Ok(line) = serde_json::to_string(record) {
        log::info!(target: "filegate::access", "{line}");
    }
}
