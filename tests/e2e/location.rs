//! No location leaks through served originals (issue 20, SPEC §11): JPEG, PNG and WebP
//! pictures with GPS in EXIF and XMP (written by Pillow) and an iPhone HEIC of the
//! corpus are served without it, read back by exiftool; orientation, ICC profile and
//! make are kept, the decoded pixels are identical, Range slices the stripped bytes,
//! and an app with `strip_location: false` gets the bytes as uploaded.

use filegate::claims::TokenKind;
use serde_json::Value;

use crate::fixtures::run;
use crate::harness::*;
use crate::heif_corpus::corpus;
use crate::storage_suite::{uploaded, Backend, Env};

both_stores!(served_originals_carry_no_location);

/// A 320x240 picture in `format` (JPEG, PNG or WEBP) with EXIF (make, orientation 6,
/// a GPS position), an XMP packet naming a position and a city, and an sRGB profile.
fn located_picture(format: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    let script = format!(
        r#"
from PIL import Image, ImageCms, PngImagePlugin
im = Image.linear_gradient('L').resize((320, 240)).convert('RGB')
exif = Image.Exif()
exif[0x010F] = 'TestMaker'
exif[0x0112] = 6
gps = exif.get_ifd(0x8825)
gps[1] = 'N'; gps[2] = (52.0, 31.0, 12.5); gps[3] = 'E'; gps[4] = (13.0, 24.0, 1.25)
xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"'
       b' exif:GPSLatitude="52,31.2083N" exif:GPSLongitude="13,24.0208E" photoshop:City="Berlin"/>'
       b'</rdf:RDF></x:xmpmeta>')
icc = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()
fmt = {format:?}
if fmt == 'PNG':
    info = PngImagePlugin.PngInfo()
    info.add_itxt('XML:com.adobe.xmp', xmp.decode())
    im.save({out:?}, 'PNG', exif=exif, pnginfo=info, icc_profile=icc)
else:
    im.save({out:?}, fmt, exif=exif, xmp=xmp, icc_profile=icc)
"#
    );
    run(tool("venv-heif/bin/python"), &["-c", &script]);
    std::fs::read(out).unwrap()
}

/// What exiftool reads from `bytes`: every tag, grouped (`-G1`), numbers as numbers.
fn exiftool(bytes: &[u8]) -> serde_json::Map<String, Value> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let out = run(
        "exiftool",
        &["-j", "-G1", "-n", file.path().to_str().unwrap()],
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0].as_object().unwrap().clone()
}

/// The tags that say where a picture was taken.
fn location_tags(tags: &serde_json::Map<String, Value>) -> Vec<String> {
    tags.iter()
        .filter(|(k, _)| {
            let name = k.rsplit(':').next().unwrap_or(k);
            // GPSVersionID alone says nothing of a place; exiftool also derives
            // composite GPS tags, which need the real ones.
            (name.starts_with("GPS") && name != "GPSVersionID")
                || ["City", "State", "Country", "Location", "CountryCode"].contains(&name)
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

/// The decoded pixels of a picture (Pillow, with pillow-heif for HEIF).
fn pixels(bytes: &[u8]) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let script = format!(
        "import hashlib, pillow_heif\nfrom PIL import Image\npillow_heif.register_heif_opener()\n\
         im = Image.open({:?}); im.load()\nprint(im.size, im.mode, hashlib.sha256(im.tobytes()).hexdigest())",
        file.path()
    );
    run(tool("venv-heif/bin/python"), &["-c", &script])
}

fn served_originals_carry_no_location(backend: Backend) {
    let env = Env::new(backend, |setup| {
        setup.apps = setup.apps.replace(
            "    secrets: [\"other-secret-0123456789\"]\n",
            "    secrets: [\"other-secret-0123456789\"]\n    strip_location: false\n",
        );
    });
    let fg = &env.fg;
    let pictures = [
        ("p.jpg", "image/jpeg", located_picture("JPEG")),
        ("p.png", "image/png", located_picture("PNG")),
        ("p.webp", "image/webp", located_picture("WEBP")),
        (
            "pug.heic",
            "image/heic",
            std::fs::read(corpus("pillow_heif-1.8.1/tests/images/heif_other/pug.heic")).unwrap(),
        ),
    ];
    for (name, mime, bytes) in &pictures {
        let before = exiftool(bytes);
        assert!(
            !location_tags(&before).is_empty(),
            "{name}: the source has no location to strip: {before:?}"
        );
        for app in ["demo", "other"] {
            let token = token(app, 7, TokenKind::User);
            let g = uploaded(
                fg,
                app,
                &token,
                &format!(
                    "/file/upload/chat?file_type=102&to_id=1&file_name={name}&content_type={mime}"
                ),
                name,
                mime,
                bytes,
            );
            let path = format!(
                "/file/download/chat?app_id={app}&file_sign={}",
                g["file_sign"].as_str().unwrap()
            );
            let get = |range: Option<&str>| {
                let mut req = client().get(fg.url(&path)).header("access-token", &token);
                if let Some(r) = range {
                    req = req.header("range", r);
                }
                req.send().unwrap()
            };
            let resp = get(None);
            assert_eq!(resp.status(), 200, "{name} ({app})");
            assert_eq!(resp.headers()["content-type"], *mime, "{name} ({app})");
            let etag = resp.headers()["etag"].to_str().unwrap().to_string();
            let length: usize = resp.headers()["content-length"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let served = resp.bytes().unwrap().to_vec();
            assert_eq!(length, served.len(), "{name} ({app}): Content-Length");
            if app == "other" {
                assert_eq!(
                    &served, bytes,
                    "{name}: strip_location: false serves the upload"
                );
                continue;
            }
            assert_ne!(
                &served, bytes,
                "{name}: served as uploaded, location and all"
            );
            let after = exiftool(&served);
            let left = location_tags(&after);
            eprintln!(
                "{name}: location before {:?}; after {left:?}",
                location_tags(&before)
            );
            assert!(
                left.is_empty(),
                "{name}: location left in the served original: {left:?}"
            );
            for kept in ["Make", "Orientation", "ProfileDescription"] {
                let had = before.keys().any(|k| k.ends_with(&format!(":{kept}")));
                let has = after.keys().any(|k| k.ends_with(&format!(":{kept}")));
                assert!(!had || has, "{name}: {kept} was lost");
            }
            assert_eq!(pixels(&served), pixels(bytes), "{name}: pixels changed");
            // Range describes the stripped bytes, under the same validator.
            let end = served.len().min(5000) - 1;
            let resp = get(Some(&format!("bytes=100-{end}")));
            assert_eq!(resp.status(), 206, "{name}");
            assert_eq!(resp.headers()["etag"].to_str().unwrap(), etag, "{name}");
            assert_eq!(
                resp.headers()["content-range"].to_str().unwrap(),
                format!("bytes 100-{end}/{}", served.len())
            );
            assert_eq!(resp.bytes().unwrap().as_ref(), &served[100..=end], "{name}");
        }
    }
}
