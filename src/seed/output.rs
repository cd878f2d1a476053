//! What a seed run leaves for the load tools: `urls.txt` (the request mix, one
//! absolute signed URL a line), `vegeta.txt`, `wrk.lua` and `k6.js`.
//!
//! The mix, as shares of all requests (renormalised over the kinds seeded):
//!
//! | share | requests |
//! | --- | --- |
//! | 30% | hot avatars: the 120x120 (2/3, chat lists) and 200x200 (1/3) thumbnails of the first 3 avatars (the people in every chat list) |
//! | 10% | every avatar: original, 120x120, 200x200 thumbnails |
//! | 35% | chat picture thumbnails: 200x200 (3/4, the bubble) and 480x480 (1/4, the preview); picture *i* (in upload order) weighted 1/(i+10), a long tail |
//! | 7% | chat picture originals (tapped to view), weighted 1/(i+10) |
//! | 8% | voice: the MP3 transcode (3/4) and the AMR original (1/4) |
//! | 5% | video: the cover (`image_type=3`, 320x320; 4/5) and the MP4 original (1/5) |
//! | 5% | plain files: the original |
//!
//! `urls.txt` has max(1000, 10 × distinct URLs) lines; each URL appears in
//! proportion to its share and at least once, in a seeded shuffle, so a round-robin
//! replay (wrk.lua's default, vegeta, k6) sends the mix.

use std::collections::HashMap;
use std::path::Path;

use crate::auth::sdk_sign;
use crate::config::Secret;
use crate::query::encode_value;
use crate::query::Query;
use crate::seed::plan::{Kind, Rng};
use crate::seed::state::{write_atomically, UploadedFile};

/// The wrk script (reads `urls.txt` beside itself).
pub const WRK_LUA: &str = include_str!("wrk.lua");
/// The k6 script (reads `urls.txt` beside itself).
pub const K6_JS: &str = include_str!("k6.js");

/// Hot avatars: how many.
const HOT_AVATARS: usize = 3;
/// Fewest lines of urls.txt.
const MIN_LINES: usize = 1000;
/// Lines of urls.txt per distinct URL.
const LINES_PER_URL: usize = 10;

/// One distinct URL and its share of the requests.
#[derive(Debug, Clone)]
pub struct Target {
    /// The absolute signed URL.
    pub url: String,
    /// Its share of all requests (the shares add up to 1).
    pub share: f64,
}

/// How signed URLs are made.
pub struct Signer<'a> {
    /// `--url`, no trailing slash.
    pub base: &'a str,
    /// The app.
    pub app: &'a str,
    /// The app's first secret.
    pub secret: &'a Secret,
    /// Expiry of every sdk_sign (Unix seconds).
    pub expires: u64,
}

impl Signer<'_> {
    /// The download URL of `file` with `extra` query parameters, signed.
    pub fn url(&self, file: &UploadedFile, extra: &str) -> String {
        let (path, mut query) = match (&file.object_name, &file.file_sign) {
            (Some(name), _) => (
                "/file/download/avatar",
                format!(
                    "app_id={}&object_name={}",
                    encode_value(self.app),
                    encode_value(name)
                ),
            ),
            (None, sign) => (
                "/file/download/chat",
                format!(
                    "app_id={}&file_sign={}",
                    encode_value(self.app),
                    encode_value(sign.as_deref().unwrap_or(""))
                ),
            ),
        };
        if !extra.is_empty() {
            query.push('&');
            query.push_str(extra);
        }
        let sign = sdk_sign::sign(
            path,
            self.app,
            &Query::parse(&query),
            self.expires,
            self.secret,
        );
        format!("{}{path}?{query}&sdk_sign={sign}", self.base)
    }
}

const THUMB_120: &str = "image_type=2&w=120&h=120";
const THUMB_200: &str = "image_type=2&w=200&h=200";
const THUMB_480: &str = "image_type=2&w=480&h=480";
const COVER_320: &str = "image_type=3&w=320&h=320";
const MP3: &str = "format=mp3";

/// One URL of a category: the file, the extra query, its weight in the category.
type Weighted<'a> = (&'a UploadedFile, &'static str, f64);

/// Every distinct URL of `files` with its share of the mix.
pub fn targets(files: &[UploadedFile], signer: &Signer<'_>) -> Vec<Target> {
    // (category share, its URLs).
    let mut categories: Vec<(f64, Vec<Weighted<'_>>)> = Vec::new();
    let of = |kind: Kind| files.iter().filter(move |f| f.kind == kind);
    let avatars: Vec<&UploadedFile> = of(Kind::Avatar).collect();
    let pictures: Vec<&UploadedFile> = of(Kind::Picture).collect();
    let hot = avatars
        .iter()
        .take(HOT_AVATARS)
        .flat_map(|f| [(*f, THUMB_120, 2.0), (*f, THUMB_200, 1.0)])
        .collect();
    categories.push((0.30, hot));
    categories.push((
        0.10,
        avatars
            .iter()
            .flat_map(|f| [(*f, "", 1.0), (*f, THUMB_120, 1.0), (*f, THUMB_200, 1.0)])
            .collect(),
    ));
    // Zipf-Mandelbrot: a long tail whose head is not one single picture.
    let zipf = |i: usize| 1.0 / (i as f64 + 10.0);
    categories.push((
        0.35,
        pictures
            .iter()
            .enumerate()
            .flat_map(|(i, f)| {
                [
                    (*f, THUMB_200, 0.75 * zipf(i)),
                    (*f, THUMB_480, 0.25 * zipf(i)),
                ]
            })
            .collect(),
    ));
    categories.push((
        0.07,
        pictures
            .iter()
            .enumerate()
            .map(|(i, f)| (*f, "", zipf(i)))
            .collect(),
    ));
    categories.push((
        0.08,
        of(Kind::Voice)
            .flat_map(|f| [(f, MP3, 0.75), (f, "", 0.25)])
            .collect(),
    ));
    categories.push((
        0.05,
        of(Kind::Video)
            .flat_map(|f| [(f, COVER_320, 0.8), (f, "", 0.2)])
            .collect(),
    ));
    categories.push((0.05, of(Kind::File).map(|f| (f, "", 1.0)).collect()));

    let present: f64 = categories
        .iter()
        .filter(|(_, items)| !items.is_empty())
        .map(|(share, _)| share)
        .sum();
    // One URL can be in two categories (a hot avatar's thumbnails): shares add up.
    let mut out: Vec<Target> = Vec::new();
    let mut at: HashMap<(usize, &str), usize> = HashMap::new();
    for (share, items) in &categories {
        let total: f64 = items.iter().map(|(_, _, w)| w).sum();
        for (file, extra, weight) in items {
            let add = share / present * weight / total;
            match at.get(&(file.index, *extra)) {
                Some(&i) => out[i].share += add,
                None => {
                    at.insert((file.index, *extra), out.len());
                    out.push(Target {
                        url: signer.url(file, extra),
                        share: add,
                    });
                }
            }
        }
    }
    out
}

/// The lines of urls.txt: every target in proportion to its share (at least once),
/// shuffled with `seed`.
pub fn request_lines(targets: &[Target], seed: u64) -> Vec<&str> {
    let total = MIN_LINES.max(LINES_PER_URL * targets.len());
    let mut lines: Vec<&str> = Vec::with_capacity(total + targets.len());
    for t in targets {
        let n = ((t.share * total as f64).round() as usize).max(1);
        lines.extend(std::iter::repeat_n(t.url.as_str(), n));
    }
    let mut rng = Rng::new(seed, 0x5EED_0075);
    for i in (1..lines.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        lines.swap(i, j);
    }
    lines
}

/// Writes the scripts, then `urls.txt` (each through a temp file and a rename, so
/// `urls.txt` appears only whole, and last).
pub fn write_outputs(dir: &Path, lines: &[&str]) -> Result<(), String> {
    let mut urls = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    let mut vegeta = String::with_capacity(urls.capacity() + 4 * lines.len());
    for line in lines {
        urls.push_str(line);
        urls.push('\n');
        vegeta.push_str("GET ");
        vegeta.push_str(line);
        vegeta.push('\n');
    }
    write_atomically(&dir.join("wrk.lua"), WRK_LUA.as_bytes())?;
    write_atomically(&dir.join("k6.js"), K6_JS.as_bytes())?;
    write_atomically(&dir.join("vegeta.txt"), vegeta.as_bytes())?;
    write_atomically(&dir.join("urls.txt"), urls.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(index: usize, kind: Kind) -> UploadedFile {
        UploadedFile {
            index,
            kind,
            variant: "v".into(),
            name: format!("f{index}"),
            content_type: "image/jpeg".into(),
            size: 1,
            sha256: String::new(),
            key: format!("demo/x/{index}"),
            object_name: (kind == Kind::Avatar).then(|| format!("avatar/user/{index}/a.jpg")),
            file_sign: (kind != Kind::Avatar).then(|| format!("sign{index}")),
            upload_method: "POST".into(),
            uploader: 1,
        }
    }

    #[test]
    fn mix_shares_add_up_and_hot_avatars_lead() {
        let secret = Secret::new("0123456789abcdef0123");
        let signer = Signer {
            base: "http://127.0.0.1:8080",
            app: "demo",
            secret: &secret,
            expires: 2_000_000_000,
        };
        let mut files: Vec<UploadedFile> = (0..5).map(|i| file(i, Kind::Avatar)).collect();
        files.extend((5..45).map(|i| file(i, Kind::Picture)));
        files.push(file(45, Kind::Voice));
        let targets = targets(&files, &signer);
        let sum: f64 = targets.iter().map(|t| t.share).sum();
        assert!((sum - 1.0).abs() < 1e-9, "{sum}");
        // 5 avatars × 3 + 40 pictures × 3 + voice × 2.
        assert_eq!(targets.len(), 15 + 120 + 2);
        let hottest = targets
            .iter()
            .max_by(|a, b| a.share.total_cmp(&b.share))
            .unwrap();
        assert!(hottest.url.contains("avatar") && hottest.url.contains("image_type=2"));
        assert!(targets
            .iter()
            .all(|t| t.url.contains("&sdk_sign=2000000000.")));
        let lines = request_lines(&targets, 1);
        assert!(lines.len() >= 1370);
        for t in &targets {
            assert!(lines.contains(&t.url.as_str()));
        }
        let hot = lines.iter().filter(|l| **l == hottest.url).count();
        assert!(hot > 50, "{hot}");
    }
}
