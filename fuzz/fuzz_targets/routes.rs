//! The query of every `/file` route: `query::Query` and `routes::Route::parse`, with
//! the upload, forward and download parameter parsers (`w`/`h` doubles included).
//!
//! Asserts, beyond "no panic":
//! - `Query::parse` decodes exactly as `form_urlencoded::parse` (its fast path for
//!   names and values without `%` or `+` included);
//! - `Query::get` answers one value only when every occurrence agrees, and refuses
//!   a parameter given twice with different values;
//! - an accepted download has `w`/`h` finite and above 0 and a non-empty object name or
//!   file_sign; an accepted upload has a known file_type and a `file_name` of at most
//!   255 bytes without control characters; a forward has a file_sign;
//! - refusals are 400 (a named parameter), 404 (unknown path) or 405 (method).
#![no_main]

use filegate::file_type::FileType;
use filegate::query::Query;
use filegate::Route;
use filegate::UploadTarget;
use filegate::{wanted, DownloadTarget};
use http::Method;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

const PATHS: [&str; 7] = [
    "/file/upload/avatar/user",
    "/file/upload/avatar/group",
    "/file/upload/chat",
    "/file/upload/forward",
    "/file/download/avatar",
    "/file/download/chat",
    "/file/demo",
];

const FILE_TYPES: [u16; 9] = [100, 101, 102, 103, 104, 200, 201, 202, 203];

#[derive(Debug, Arbitrary)]
struct Input {
    path: u8,
    other_path: String,
    method: u8,
    query: String,
}

fn check_get(q: &Query, name: &str) {
    let values: Vec<&str> = q
        .pairs()
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect();
    match q.get(name) {
        Ok(None) => assert!(values.is_empty()),
        Ok(Some(v)) => assert!(values.iter().all(|x| *x == v)),
        Err(e) => {
            assert_eq!(e.status(), 400);
            assert!(values.windows(2).any(|w| w[0] != w[1]));
        }
    }
}

fuzz_target!(|input: Input| {
    let path = PATHS
        .get(input.path as usize)
        .copied()
        .unwrap_or(input.other_path.as_str());
    let method = match input.method % 4 {
        0 | 1 => Method::GET,
        2 => Method::HEAD,
        _ => Method::POST,
    };
    let q = Query::parse(&input.query);
    let reference: Vec<(String, String)> = form_urlencoded::parse(input.query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(q.pairs(), reference.as_slice());
    for (name, _) in q.pairs() {
        check_get(&q, name);
    }
    match Route::parse(&method, path, &q) {
        Ok(Route::Download(p)) => {
            for d in [p.repr.w, p.repr.h].into_iter().flatten() {
                assert!(d.is_finite() && d > 0.0, "dimension {d}");
            }
            match &p.target {
                DownloadTarget::Avatar { object_name } => assert!(!object_name.is_empty()),
                DownloadTarget::Chat { file_sign } => assert!(!file_sign.is_empty()),
            }
            for code in FILE_TYPES {
                if let Some(ft) = FileType::from_code(code) {
                    let _ = wanted(&p, ft);
                }
            }
            let _ = wanted(&p, FileType::Avatar);
        }
        Ok(Route::Upload(p)) => {
            if let Some(name) = &p.file_name {
                assert!(!name.is_empty() && name.len() <= 255);
                assert!(!name.chars().any(char::is_control));
            }
            if let UploadTarget::Chat { file_type, .. } = p.target {
                assert!(FILE_TYPES.contains(&file_type.code()));
            }
        }
        Ok(Route::Forward(p)) => assert!(!p.file_sign.is_empty()),
        Ok(Route::Demo) => assert_eq!(path, "/file/demo"),
        Err(e) => {
            let status = e.status().as_u16();
            assert!(matches!(status, 400 | 404 | 405), "{status}");
            if status == 400 {
                // Names the parameter at fault: "name: why".
                assert!(e.message().contains(": "), "{}", e.message());
            }
        }
    }
});
