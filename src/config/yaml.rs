//! Naming the key at fault in serde_yaml's error messages.

/// Pulls the field name out of serde's "unknown field `x`" / "missing field `x`".
pub(super) fn yaml_error_key(message: &str) -> String {
    // serde_yaml prefixes the path of the value at fault: "apps.demo: unknown field ..."
    if let Some((path, _)) = message.split_once(": ") {
        if !path.contains(' ') {
            if let Some(field) = backquoted_after(message, "unknown field ") {
                return format!("{path}.{field}");
            }
            return path.to_string();
        }
    }
    backquoted_after(message, "unknown field ")
        .or_else(|| backquoted_after(message, "missing field "))
        .unwrap_or_else(|| "(document)".to_string())
}

fn backquoted_after(message: &str, marker: &str) -> Option<String> {
    let start = message.find(marker)? + marker.len();
    let rest = message.get(start..)?.strip_prefix('`')?;
    let end = rest.find('`')?;
    Some(rest[..end].to_string())
}
