//! The demo page (`GET /file/demo`): paste a token, upload with the form filegate hands
//! out, see the file downloaded back. Served when `demo_page` is on.

/// The page, self-contained (no external scripts or styles).
pub const DEMO_PAGE: &str = include_str!("demo.html");
