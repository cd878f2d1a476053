//! The demo page in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) loads `/file/demo` from one origin (`localhost`), gets a grant,
//! uploads with the POST form to the store on another origin (`127.0.0.1`), and shows
//! the downloaded image; the same over HTTPS (and h2) on the TLS listener, Chromium
//! trusting the test certificate by its public key.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use filegate::claims::TokenKind;
use serde_json::{json, Value};

use crate::harness::*;
use crate::tls_kit::TestCa;

/// chromedriver on a free port, stopped by PID when dropped.
struct Driver {
    child: Child,
    base: String,
    session: Option<String>,
    _profile: tempfile::TempDir,
    args: Vec<String>,
}

impl Driver {
    fn start() -> Driver {
        Driver::start_with(Vec::new())
    }

    /// With more Chromium arguments.
    fn start_with(args: Vec<String>) -> Driver {
        let profile = tempfile::tempdir().unwrap();
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver (Debian package chromium-driver) is needed");
            let base = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if client().get(format!("{base}/status")).send().is_ok() {
                    let mut d = Driver {
                        child,
                        base,
                        session: None,
                        _profile: profile,
                        args,
                    };
                    d.new_session();
                    return d;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("chromedriver did not start");
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let mut req = client().request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .unwrap_or_else(|e| panic!("webdriver {path}: {e}"));
        let v: Value = resp.json().expect("webdriver JSON");
        if v["value"].get("error").is_some() {
            panic!("webdriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    fn new_session(&mut self) {
        let profile = self._profile.path().to_str().unwrap().to_string();
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.push(format!("--user-data-dir={profile}"));
        args.extend(self.args.iter().cloned());
        let caps = json!({
            "capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": args
                }
            }}
        });
        let v = self.call(reqwest::Method::POST, "/session", Some(caps));
        self.session = Some(v["sessionId"].as_str().expect("session id").to_string());
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session.as_deref().unwrap())
    }

    fn go(&self, url: &str) {
        self.call(
            reqwest::Method::POST,
            &self.session_path("/url"),
            Some(json!({"url": url})),
        );
    }

    fn script(&self, js: &str, args: Vec<Value>) -> Value {
        self.call(
            reqwest::Method::POST,
            &self.session_path("/execute/sync"),
            Some(json!({"script": js, "args": args})),
        )
    }

    /// Scrolls the element `id` to the middle of the window and saves a screenshot
    /// as PNG at `file`; returns the element's box and the pixel ratio:
    /// [x, y, width, height, devicePixelRatio] in CSS pixels.
    fn screenshot_around(&self, id: &str, file: &std::path::Path) -> Value {
        let rect = self.script(
            "const el = document.getElementById(arguments[0]); el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect(); return [r.x, r.y, r.width, r.height, window.devicePixelRatio]",
            vec![json!(id)],
        );
        let shot = self.call(
            reqwest::Method::GET,
            &self.session_path("/screenshot"),
            None,
        );
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().expect("screenshot"))
            .unwrap();
        std::fs::write(file, &png).unwrap();
        rect
    }

    fn type_into(&self, css: &str, text: &str) {
        let el = self.call(
            reqwest::Method::POST,
            &self.session_path("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        let id = el
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("element id")
            .to_string();
        self.call(
            reqwest::Method::POST,
            &self.session_path(&format!("/element/{id}/value")),
            Some(json!({"text": text})),
        );
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if self.session.is_some() {
            let path = self.session_path("");
            let _ = client().delete(format!("{}{path}", self.base)).send();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Loads the demo page at `page`, uploads a picture as user `sub` and waits for it to
/// show; returns the page's status and log.
fn upload_with_demo_page(driver: &Driver, page: &str, sub: i64) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("photo.jpg");
    std::fs::write(&image, small_jpeg()).unwrap();
    upload_file_with_demo_page(driver, page, sub, &image)
}

/// [`upload_with_demo_page`] with a file of the caller's.
fn upload_file_with_demo_page(
    driver: &Driver,
    page: &str,
    sub: i64,
    image: &std::path::Path,
) -> (String, String) {
    driver.go(page);
    assert_eq!(
        driver.script("return document.title", vec![]),
        "filegate demo"
    );
    let t = token("demo", sub, TokenKind::User);
    driver.script(
        "document.getElementById('token').value = arguments[0]",
        vec![json!(t)],
    );
    driver.type_into("#file", image.to_str().unwrap());
    driver.script("document.getElementById('upload').click()", vec![]);

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut status = String::new();
    while Instant::now() < deadline {
        status = driver
            .script(
                "return document.getElementById('status').textContent",
                vec![],
            )
            .as_str()
            .unwrap_or("")
            .to_string();
        if status.starts_with("shown") || status.starts_with("error") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let page_log = driver.script("return document.getElementById('log').textContent", vec![]);
    (status, page_log.as_str().unwrap_or("").to_string())
}

#[test]
fn demo_page_uploads_across_origins_and_shows_the_image() {
    let fg = Filegate::start();
    let driver = Driver::start();
    // The page from `localhost`, the store (public_url) on `127.0.0.1`: two origins.
    let page = fg.base.replace("127.0.0.1", "localhost") + "/file/demo";
    let (status, log_text) = upload_with_demo_page(&driver, &page, 31);
    assert_eq!(status, "shown 64x48", "page log:\n{log_text}");
    // The upload crossed origins: the store is on 127.0.0.1, the page on localhost.
    assert!(
        log_text.contains(&format!("POST {}/ -> 200", fg.base)),
        "{log_text}"
    );
    let src = driver.script("return document.getElementById('downloaded').src", vec![]);
    assert!(src
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/file/download/avatar", fg.base)));
    // The object is really stored under the user's avatar prefix.
    assert!(
        std::fs::read_dir(fg.data_dir().join("objects/demo/avatar/user/31"))
            .unwrap()
            .count()
            == 1
    );
}

#[test]
fn demo_page_over_https_uploads_a_picture() {
    let ca = TestCa::new("filegate browser test CA");
    let leaf = ca.leaf("localhost");
    let fg = Filegate::start_with(Setup {
        tls: Some(leaf.setup(true, "")),
        ..Setup::default()
    });
    let tls_base = fg.tls_base.clone().unwrap();
    // Chromium trusts the test certificate by the hash of its public key (the flag
    // takes effect with a --user-data-dir, which the driver always sets).
    let driver = Driver::start_with(vec![format!(
        "--ignore-certificate-errors-spki-list={}",
        leaf.spki_sha256()
    )]);
    let page = tls_base.replace("127.0.0.1", "localhost") + "/file/demo";
    let (status, log_text) = upload_with_demo_page(&driver, &page, 32);
    assert_eq!(status, "shown 64x48", "page log:\n{log_text}");
    // The grant, the upload and the download were all https (public_url).
    assert!(
        log_text.contains(&format!("POST {tls_base}/ -> 200")),
        "{log_text}"
    );
    let src = driver.script("return document.getElementById('downloaded').src", vec![]);
    assert!(
        src.as_str()
            .unwrap()
            .starts_with(&format!("{tls_base}/file/download/avatar")),
        "{src}"
    );
    // Chromium spoke h2 to the TLS listener.
    let protocol = driver.script(
        "return performance.getEntriesByType('navigation')[0].nextHopProtocol",
        vec![],
    );
    assert_eq!(protocol, "h2", "{log_text}");
    assert!(fg.metric("filegate_tls_connections_total{protocol=\"h2\"}") >= 1.0);
    assert_eq!(
        std::fs::read_dir(fg.data_dir().join("objects/demo/avatar/user/32"))
            .unwrap()
            .count(),
        1
    );
}

/// The demo page draws the info's ThumbHash placeholder (at the displayed aspect, on the
/// average colour) before the picture loads: the page's own decoder gives the pixels the
/// reference implementation (npm `thumbhash` under node) gives, and a screenshot taken
/// while the picture is held back shows the picture's two halves (red left, blue right:
/// a flat average colour would be purple on both) at the placeholder's place; then the
/// picture replaces it.
#[test]
fn demo_page_draws_the_placeholder_before_the_picture() {
    let fg = Filegate::start();
    let driver = Driver::start();
    driver.go(&format!("{}/file/demo", fg.base));
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("halves.jpg");
    let picture = crate::fixtures::pillow_picture(
        "placeholder-halves.jpg",
        240,
        120,
        "im = Image.new('RGB', (w, h), (30, 40, 200))\n\
         im.paste((200, 40, 30), (0, 0, w // 2, h))\n\
         im.save(p, quality=92)",
    );
    std::fs::write(&image, &picture).unwrap();
    driver.script(
        "window.holdPicture = true; document.getElementById('token').value = arguments[0]",
        vec![json!(token("demo", 32, TokenKind::User))],
    );
    driver.type_into("#file", image.to_str().unwrap());
    driver.script("document.getElementById('upload').click()", vec![]);
    let status = |driver: &Driver| {
        driver
            .script(
                "return document.getElementById('status').textContent",
                vec![],
            )
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !status(&driver).starts_with("placeholder") {
        assert!(
            Instant::now() < deadline && !status(&driver).starts_with("error"),
            "no placeholder: {}",
            status(&driver)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // 240x120 shown at 240x120: the right aspect; no picture element yet.
    assert!(
        status(&driver).starts_with("placeholder 240x120 #"),
        "{}",
        status(&driver)
    );
    assert_eq!(
        driver.script("return document.getElementById('downloaded')", vec![]),
        Value::Null
    );

    // The page's decoder against the reference, pixel for pixel (rounding aside).
    let hash = driver.script("return window.lastInfo.thumbhash", vec![]);
    let hash = hash.as_str().expect("the info has a thumbhash");
    let page = driver.script(
        "const t = decodeThumbHash(arguments[0]); return [t.w, t.h, Array.from(t.rgba)]",
        vec![json!(hash)],
    );
    let (w, h, rgba) = crate::fixtures::reference_thumbhash_rgba(hash);
    assert_eq!(
        (page[0].as_u64(), page[1].as_u64()),
        (Some(u64::from(w)), Some(u64::from(h))),
        "decoded size"
    );
    let mine: Vec<i64> = page[2]
        .as_array()
        .expect("pixels")
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(mine.len(), rgba.len());
    let worst = mine
        .iter()
        .zip(&rgba)
        .map(|(a, b)| (a - i64::from(*b)).abs())
        .max()
        .unwrap_or(0);
    assert!(
        worst <= 1,
        "the page's ThumbHash differs from the reference by {worst}"
    );

    let file = dir.path().join("shot.png");
    let rect = driver.screenshot_around("placeholder", &file);
    let at = |i: usize| rect[i].as_f64().unwrap();
    let scale = rect[4].as_f64().unwrap_or(1.0);
    let point = |fx: f64| {
        (
            ((at(0) + at(2) * fx) * scale) as i64,
            ((at(1) + at(3) / 2.0) * scale) as i64,
        )
    };
    let (left, right) = (point(0.2), point(0.8));
    let script = format!(
        "from PIL import Image\nim = Image.open({file:?}).convert('RGB')\n\
         print(*im.getpixel({left:?}), *im.getpixel({right:?}))\n"
    );
    let out = crate::fixtures::run(crate::fixtures::venv_bin("python"), &["-c", &script]);
    let px: Vec<i64> = out.split_whitespace().map(|v| v.parse().unwrap()).collect();
    let (l, r) = (&px[..3], &px[3..]);
    assert!(
        l[0] > 120 && l[0] > l[2] + 60,
        "the placeholder's left is {l:?}, not the picture's red half (right {r:?})"
    );
    assert!(
        r[2] > 120 && r[2] > r[0] + 60,
        "the placeholder's right is {r:?}, not the picture's blue half (left {l:?})"
    );
    driver.script("window.releasePicture()", vec![]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !status(&driver).starts_with("shown") {
        assert!(Instant::now() < deadline, "{}", status(&driver));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status(&driver), "shown 240x120");
}

/// A HEIC photo from an iPhone (the corpus' pug.heic, 4032x3024, Display P3), uploaded
/// from the demo page, shows as a picture in Chromium, which cannot decode HEIC: the
/// page asks for `format=auto` and gets a WebP rendition. The screenshot of the picture
/// has the photo's colours (the reference decoder's mean colour of it).
#[test]
fn demo_page_shows_a_heic_photo_as_a_picture() {
    let fg = Filegate::start();
    let driver = Driver::start();
    let heic = crate::heif_corpus::corpus("pillow_heif-1.8.1/tests/images/heif_other/pug.heic");
    let (status, log_text) =
        upload_file_with_demo_page(&driver, &format!("{}/file/demo", fg.base), 33, &heic);
    assert_eq!(status, "shown 4032x3024", "page log:\n{log_text}");
    let src = driver.script("return document.getElementById('downloaded').src", vec![]);
    let src = src.as_str().unwrap().to_string();
    assert!(src.ends_with("&format=auto"), "{src}");
    // What Chromium was given for its Accept header: WebP, not the HEIC.
    let resp = client()
        .get(&src)
        .header(
            "accept",
            "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
        )
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/webp");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shot.png");
    let rect = driver.screenshot_around("downloaded", &file);
    let v = |i: usize| rect[i].as_f64().unwrap();
    let scale = rect[4].as_f64().unwrap_or(1.0);
    // The middle of the picture (its border and any clipping at the window's edge
    // left out), against the reference's decode of the same part.
    let script = format!(
        "import pillow_heif\nfrom PIL import Image, ImageCms, ImageStat\nimport io\n\
         pillow_heif.register_heif_opener()\n\
         shot = Image.open({file:?}).convert('RGB')\n\
         x, y, w, h, s = {x}, {y}, {w}, {h}, {scale}\n\
         W, H = shot.size\n\
         box = (int((x + w * .2) * s), int(max(y, 0) * s + h * s * .2), int((x + w * .8) * s), int(min(y + h, H / s) * s - h * s * .2))\n\
         ref = Image.open({heic:?})\n\
         icc = ref.info.get('icc_profile')\n\
         ref = ref.convert('RGB')\n\
         ref = ImageCms.profileToProfile(ref, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile('sRGB'), outputMode='RGB') if icc else ref\n\
         fx = lambda px: px / s\n\
         rbox = (int((fx(box[0]) - x) / w * ref.width), int((fx(box[1]) - y) / h * ref.height), int((fx(box[2]) - x) / w * ref.width), int((fx(box[3]) - y) / h * ref.height))\n\
         print(*ImageStat.Stat(shot.crop(box)).mean, *ImageStat.Stat(ref.crop(rbox)).mean)\n",
        x = v(0),
        y = v(1),
        w = v(2),
        h = v(3),
    );
    let out = crate::fixtures::run(
        crate::harness::tool("venv-heif/bin/python"),
        &["-c", &script],
    );
    let m: Vec<f64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    let (shown, want) = (&m[..3], &m[3..]);
    for i in 0..3 {
        assert!(
            (shown[i] - want[i]).abs() < 10.0,
            "the picture on screen has mean colour {shown:?}, the photo {want:?}"
        );
    }
}
