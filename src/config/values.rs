//! Checks of values shared by several sections: addresses and base URLs.

use std::net::SocketAddr;

use super::error::ConfigError;

pub(super) fn parse_socket_addr(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError::new(
            key,
            format!("`{value}` is not an address like 127.0.0.1:8080 or [::1]:8080"),
        )
    })
}

pub(super) fn validate_base_url(key: &str, value: &str) -> Result<(), ConfigError> {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') && !host.contains(['?', '#']) => {
            Ok(())
        }
        _ => Err(ConfigError::new(
            key,
            format!("`{value}` is not an http:// or https:// URL"),
        )),
    }
}
