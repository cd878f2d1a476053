//! Decoded query parameters, with typed getters whose errors name the parameter.
//!
//! Decoding follows the WHATWG form-urlencoded rules (`+` is a space), as every
//! browser and HTTP library encodes; `sdk_sign` canonicalization uses the same values.

use std::str::FromStr;

use crate::error::ApiError;

/// One name or value: `+` is a space, `%XX` a byte, invalid UTF-8 replaced. Most
/// carry neither (tokens, signs, ids): those are taken as they are.
fn decode(raw: &str) -> String {
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return raw.to_owned();
    }
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// The query string of one request, decoded into (name, value) pairs in order.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Decodes a raw query string (without the `?`), as `form_urlencoded::parse` does:
    /// pairs split at `&` (empty ones skipped), then at the first `=`.
    pub fn parse(raw: &str) -> Query {
        Query {
            pairs: raw
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(name), decode(value))
                })
                .collect(),
        }
    }

    /// A query of these (name, value) pairs, already decoded (the config's eager sizes
    /// are parsed as the download query they stand for).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Query {
        Query { pairs }
    }

    /// Every pair, in request order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The single value of `name`. Repeating a parameter is allowed only with the same
    /// value (clients that append `app_id` to a URL that has it already).
    pub fn get(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut found: Option<&str> = None;
        for (k, v) in &self.pairs {
            if k == name {
                match found {
                    Some(prev) if prev != v => {
                        return Err(ApiError::bad_param(
                            name,
                            "given twice with different values",
                        ))
                    }
                    _ => found = Some(v),
                }
            }
        }
        Ok(found)
    }

    /// The value of `name`, or a 400 naming it. An empty value counts as missing.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        match self.get(name)? {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ApiError::bad_param(name, "required")),
        }
    }

    /// `name` parsed as `T` (an integer type, usually); absent or empty → `None`.
    pub fn parsed<T: FromStr>(&self, name: &str, what: &str) -> Result<Option<T>, ApiError> {
        match self.get(name)? {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_param(name, &format!("must be {what}"))),
        }
    }

    /// `name` parsed as `T`, required.
    pub fn required_parsed<T: FromStr>(&self, name: &str, what: &str) -> Result<T, ApiError> {
        self.parsed(name, what)?
            .ok_or_else(|| ApiError::bad_param(name, "required"))
    }
}

/// A value as a query string carries it (form-urlencoded: the encoding
/// [`Query::parse`] decodes).
pub fn encode_value(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_as_form_urlencoded_does() {
        for raw in [
            "",
            "a=1&b=2",
            "&&a=1&&",
            "a",
            "a=",
            "=v",
            "a=b=c",
            "name=%E4%BD%A0%E5%A5%BD+there&x=%2B%26%3D",
            "bad=%ZZ%4&utf=%FF%FE&plus=a+b++c",
            "k%3Dx=v%26y",
        ] {
            let ours: Vec<(String, String)> = Query::parse(raw).pairs().to_vec();
            let theirs: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            assert_eq!(ours, theirs, "{raw}");
        }
    }

    #[test]
    fn decodes_and_names_errors() {
        let q = Query::parse("a=1&b=x%2Fy&c=a+b&a=1&d=");
        assert_eq!(q.get("a").unwrap(), Some("1"));
        assert_eq!(q.get("b").unwrap(), Some("x/y"));
        assert_eq!(q.get("c").unwrap(), Some("a b"));
        assert!(q.required("d").unwrap_err().message().starts_with("d:"));
        let q = Query::parse("to_id=1&to_id=2");
        assert_eq!(q.get("to_id").unwrap_err().status(), 400);
        let q = Query::parse("to_id=abc");
        let e = q.parsed::<i64>("to_id", "an int64").unwrap_err();
        assert_eq!(e.message(), "to_id: must be an int64");
    }
}
