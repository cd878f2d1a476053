//! HEIF as phones and cameras make it (issue 20, SPEC §11): a corpus of real files
//! that `setup.sh test` fetches (pillow-heif's and Pillow's test pictures: iPhone,
//! Sony, Xiaomi, Samsung; docs/media.md names them and their licences). Every
//! thumbnail and rendition is checked against an independent reference decoder
//! (pillow-heif's own libheif, Pillow's libavif: tests/e2e/heif_reference.py): the
//! exact size and a bound on the mean pixel error. Then the true type of an original
//! whose upload claimed JPEG, and hostile files: each a 4xx envelope within a second
//! of CPU while other requests are served.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::fixtures::*;
use crate::harness::*;
use crate::storage_suite::{uploaded, user_token};

/// A picture of the corpus: its path under the tools cache (present: setup fetched it).
pub fn corpus(rel: &str) -> PathBuf {
    tool(&format!("corpus/{rel}"))
}

const HEIF: &str = "pillow_heif-1.8.1/tests/images";
const AVIF: &str = "pillow-12.1.1/Tests/images/avif";

/// The reference decoder's answer about `original` (and `made`, when given).
fn reference(original: &std::path::Path, made: Option<&[u8]>) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/heif_reference.py");
    let python = tool("venv-heif/bin/python");
    let made_file = tempfile::NamedTempFile::new().unwrap();
    let out = match made {
        Some(bytes) => {
            std::fs::write(made_file.path(), bytes).unwrap();
            run(
                python,
                &[
                    script,
                    "compare",
                    original.to_str().unwrap(),
                    made_file.path().to_str().unwrap(),
                ],
            )
        }
        None => run(python, &[script, "size", original.to_str().unwrap()]),
    };
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("reference said {out}: {e}"))
}

/// The size a fit into `w` x `h` gives a `ref_w` x `ref_h` picture (never enlarged,
/// as thumbnails and renditions never are).
fn fitted(ref_w: u64, ref_h: u64, w: u64, h: u64) -> (u64, u64) {
    let scale = (w as f64 / ref_w as f64)
        .min(h as f64 / ref_h as f64)
        .min(1.0);
    (
        ((ref_w as f64 * scale).round() as u64).max(1),
        ((ref_h as f64 * scale).round() as u64).max(1),
    )
}

/// A picture of the corpus uploaded to the demo app under `mime` (named `name`);
/// the download path of the chat route.
fn upload(fg: &Filegate, name: &str, mime: &str, bytes: &[u8]) -> String {
    let g = uploaded(
        fg,
        "demo",
        &user_token("demo"),
        &format!("/file/upload/chat?file_type=102&to_id=1&file_name={name}&content_type={mime}"),
        name,
        mime,
        bytes,
    );
    format!(
        "/file/download/chat?app_id=demo&file_sign={}",
        g["file_sign"].as_str().unwrap()
    )
}

fn get(fg: &Filegate, path: &str, accept: Option<&str>) -> reqwest::blocking::Response {
    let mut req = client()
        .get(fg.url(path))
        .header("access-token", user_token("demo"))
        .timeout(Duration::from_secs(60));
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    req.send().unwrap()
}

/// The corpus the thumbnail and rendition test walks: (file, what it is, its type).
const PICTURES: &[(&str, &str, &str)] = &[
    (
        "heif_other/pug.heic",
        "iPhone 13 Pro grid, Display P3",
        "image/heic",
    ),
    (
        "heif_other/arrow.heic",
        "iPhone 8 Plus, irot and EXIF orientation 6",
        "image/heic",
    ),
    (
        "heif_special/guitar_cw90.hif",
        "Sony ILCE-7M4, 10-bit, irot 90",
        "image/heif",
    ),
    ("heif_other/cat.hif", "Sony, 10-bit", "image/heif"),
    ("heif_special/xiaomi.heic", "Xiaomi", "image/heic"),
    ("heif/RGBA_8__128x128.heif", "alpha", "image/heif"),
    ("avif/hopper.avif", "AVIF", "image/avif"),
    ("avif/rot1mir1.avif", "AVIF, irot and imir", "image/avif"),
    ("avif/rot3mir0.avif", "AVIF, irot", "image/avif"),
    ("avif/transparency.avif", "AVIF with alpha", "image/avif"),
    (
        "avif/xmp_tags_orientation.avif",
        "AVIF, XMP orientation",
        "image/avif",
    ),
    (
        "avif/icc_profile.avif",
        "AVIF with an ICC profile",
        "image/avif",
    ),
];

fn corpus_file(rel: &str) -> PathBuf {
    match rel.strip_prefix("avif/") {
        Some(name) => corpus(&format!("{AVIF}/{name}")),
        None => corpus(&format!("{HEIF}/{rel}")),
    }
}

#[test]
fn phone_pictures_make_thumbnails_and_renditions_like_the_reference() {
    let fg = Filegate::start();
    let mut failures = Vec::new();
    for &(rel, what, mime) in PICTURES {
        let file = corpus_file(rel);
        let bytes = std::fs::read(&file).unwrap();
        let name = file.file_name().unwrap().to_str().unwrap();
        let path = upload(&fg, name, mime, &bytes);
        let r = reference(&file, None);
        let (rw, rh) = (r["ref"][0].as_u64().unwrap(), r["ref"][1].as_u64().unwrap());
        let checks: [(&str, &str, (u64, u64), f64); 3] = [
            (
                "a JPEG thumbnail",
                "&image_type=2&w=200&h=200&thumbnail_strategy=2",
                fitted(rw, rh, 200, 200),
                6.0,
            ),
            (
                "a JPEG rendition",
                "&format=jpg",
                fitted(rw, rh, 4096, 4096),
                6.0,
            ),
            (
                "a PNG rendition",
                "&format=png",
                fitted(rw, rh, 4096, 4096),
                4.0,
            ),
        ];
        for (label, query, want, bound) in checks {
            let resp = get(&fg, &format!("{path}{query}"), None);
            let status = resp.status().as_u16();
            let body = resp.bytes().unwrap().to_vec();
            if status != 200 {
                failures.push(format!(
                    "{rel} ({what}): {label} answered {status}: {}",
                    String::from_utf8_lossy(&body)
                ));
                continue;
            }
            let c = reference(&file, Some(&body));
            let made = (
                c["made"][0].as_u64().unwrap(),
                c["made"][1].as_u64().unwrap(),
            );
            let mae = c["mae"].as_f64().unwrap();
            eprintln!("{rel}: {label} {made:?}, mean error {mae:.2}");
            if made != want || mae > bound {
                failures.push(format!(
                    "{rel} ({what}): {label} is {made:?} (want {want:?}), mean error {mae:.2} (bound {bound})"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn heif_originals_are_served_as_what_they_are_whatever_the_upload_claimed() {
    let fg = Filegate::start();
    for (rel, mime) in [
        ("heif_other/pug.heic", "image/heic"),
        ("heif_special/xiaomi.heic", "image/heic"),
        ("avif/hopper.avif", "image/avif"),
    ] {
        let bytes = std::fs::read(corpus_file(rel)).unwrap();
        let path = upload(&fg, "photo.jpg", "image/jpeg", &bytes);
        for _ in 0..2 {
            // The first answer fills the cache, the second is a hit: both say the truth.
            let resp = get(&fg, &path, None);
            assert_eq!(resp.status(), 200, "{rel}");
            assert_eq!(resp.headers()["content-type"], mime, "{rel}");
        }
        let v = expect_envelope(get(&fg, &format!("{path}&info=1"), None), 200, 200);
        assert_eq!(v["data"]["mime"], mime, "{rel}: {v}");
    }
}

/// A HEIF file with one box's bytes changed: `edit` gets the whole file and the
/// offset of the first box of type `kind`, and changes it in place.
fn edited(bytes: &[u8], kind: &[u8; 4], edit: impl FnOnce(&mut Vec<u8>, usize)) -> Vec<u8> {
    let at = bytes
        .windows(4)
        .position(|w| w == kind)
        .unwrap_or_else(|| panic!("no {:?} box", std::str::from_utf8(kind)))
        - 4;
    let mut out = bytes.to_vec();
    edit(&mut out, at);
    out
}

/// The hostile files: (what, bytes).
fn hostile_files() -> Vec<(&'static str, Vec<u8>)> {
    let read = |rel: &str| std::fs::read(corpus_file(rel)).unwrap();
    let pug = read("heif_other/pug.heic");
    vec![
        (
            "a picture of 200 megapixels",
            read("heif_special/200MP.heic"),
        ),
        ("zero bytes", Vec::new()),
        ("a truncated file", read("heif_truncated/truncated.heic")),
        (
            "corrupted boxes (HEIC)",
            read("heif_corrupted/corrupted.heic"),
        ),
        (
            "corrupted boxes (Sony)",
            read("heif_corrupted/corrupted.hif"),
        ),
        ("an empty HEIC", read("heif_corrupted/empty.heic")),
        // The grid's tiles are items the file no longer has: every `dimg` reference
        // of the iref box points at item ids nobody declared.
        ("a grid whose tiles are missing", {
            edited(&pug, b"iref", |out, at| {
                let size = u32::from_be_bytes(out[at..at + 4].try_into().unwrap()) as usize;
                let end = at + size;
                let mut i = at + 12;
                while i + 8 <= end {
                    let ref_size = u32::from_be_bytes(out[i..i + 4].try_into().unwrap()) as usize;
                    if &out[i + 4..i + 8] == b"dimg" {
                        // from_item_ID (16 bits), count, then the tile ids.
                        let count = u16::from_be_bytes([out[i + 10], out[i + 11]]) as usize;
                        for t in 0..count {
                            let p = i + 12 + 2 * t;
                            out[p..p + 2].copy_from_slice(&(60_000u16 - t as u16).to_be_bytes());
                        }
                    }
                    i += ref_size.max(8);
                }
            })
        }),
        // The grid says 256 x 256 tiles making a picture 65535 pixels square.
        (
            "a grid of absurd tile counts",
            regridded(&pug, [0, 0, 255, 255, 0xff, 0xff, 0xff, 0xff]),
        ),
        // Its own 6 x 8 tiles, said to make a picture 65535 pixels square (the item's
        // `ispe` still says 4032x3024, which is what a header read sees).
        (
            "a grid whose picture is far larger than its tiles",
            regridded(&pug, [0, 0, 5, 7, 0xff, 0xff, 0xff, 0xff]),
        ),
    ]
}

/// pug.heic with its grid descriptor replaced by `descriptor`: version, flags, rows - 1,
/// columns - 1, then the output width and height (16 bits each when flags is 0).
fn regridded(pug: &[u8], descriptor: [u8; 8]) -> Vec<u8> {
    // iPhone files keep the grid descriptor in idat: version 0, flags 0,
    // then rows-1 and columns-1 of the 512-pixel tiles of a 4032x3024 picture.
    let original = [0u8, 0, 5, 7, 0x0f, 0xc0, 0x0b, 0xd0];
    let at = pug
        .windows(original.len())
        .position(|w| w == original)
        .expect("pug.heic's grid descriptor (rows 6, columns 8, 4032x3024)");
    let mut out = pug.to_vec();
    out[at..at + 8].copy_from_slice(&descriptor);
    out
}

/// CPU seconds the process has used so far (user + system, from /proc).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// The download path of each hostile file (an empty upload refused at the door is
/// left out: nothing is stored to ask for).
fn hostile_paths(fg: &Filegate) -> Vec<(&'static str, String)> {
    let mut paths = Vec::new();
    for (what, bytes) in hostile_files() {
        if bytes.is_empty() {
            let g = grant(
                fg,
                "demo",
                &user_token("demo"),
                "/file/upload/chat?file_type=102&to_id=1&file_name=e.heic&content_type=image/heic",
            );
            let (status, body) = post_upload(&g, "e.heic", "image/heic", Vec::new());
            if status != 200 {
                assert!(
                    (400..500).contains(&status),
                    "{what}: upload answered {status} {body}"
                );
                continue;
            }
            let sign = g["file_sign"].as_str().unwrap();
            paths.push((
                what,
                format!("/file/download/chat?app_id=demo&file_sign={sign}"),
            ));
        } else {
            paths.push((what, upload(fg, "h.heic", "image/heic", &bytes)));
        }
    }
    paths
}

/// Asks for a thumbnail, a rendition and the info of a hostile file: each a 4xx
/// envelope. Returns the most CPU one request took.
fn refused_everywhere(fg: &Filegate, what: &str, path: &str, w: u32) -> f64 {
    let mut most = 0f64;
    for query in [
        format!("&image_type=2&w={w}&thumbnail_strategy=2"),
        "&format=jpg".to_string(),
        "&info=1".to_string(),
    ] {
        let cpu = cpu_seconds(fg.pid());
        let resp = get(fg, &format!("{path}{query}"), None);
        let status = resp.status().as_u16();
        let body: Value = resp.json().unwrap_or(Value::Null);
        most = most.max(cpu_seconds(fg.pid()) - cpu);
        assert!(
            (400..500).contains(&status) && body["code"].as_u64() == Some(status as u64),
            "{what} {query}: answered {status} {body}"
        );
    }
    most
}

#[test]
fn hostile_heif_is_refused_quickly_while_others_are_served() {
    let fg = Filegate::start();
    let good = std::fs::read(corpus_file("heif_other/arrow.heic")).unwrap();
    let good_path = upload(&fg, "good.heic", "image/heic", &good);
    let hostile = hostile_paths(&fg);
    // Alone: each refusal within a second of the process's CPU.
    for (what, path) in &hostile {
        let used = refused_everywhere(&fg, what, path, 200);
        assert!(used < 1.0, "{what}: {used:.2} s of CPU for one refusal");
    }
    // Then all again, with other sizes (nothing cached), while someone else's
    // picture is asked for all the while and always served.
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let served = s.spawn(|| {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || n == 0 {
                let w = 100 + n % 50;
                let resp = get(
                    &fg,
                    &format!("{good_path}&image_type=2&w={w}&thumbnail_strategy=2"),
                    None,
                );
                assert_eq!(
                    resp.status(),
                    200,
                    "another user's thumbnail while hostile files ran"
                );
                n += 1;
            }
            n
        });
        for (what, path) in &hostile {
            refused_everywhere(&fg, what, path, 201);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(served.join().unwrap() > 0);
    });
    let (_, peak) = rss_kib(fg.pid());
    assert!(
        peak < 600 * 1024,
        "peak RSS {peak} KiB over the hostile files (a 200-megapixel decode would show)"
    );
}
