//! Small synthetic files for the tests, assembled byte by byte: a TIFF block with
//! Make, Orientation and a GPS IFD, an XMP packet with location in both forms, each
//! wrapped as JPEG APP1, PNG eXIf/iTXt, WebP EXIF/XMP and HEIF items.

use std::ops::Range;

/// Where things are in [`tiff`]'s block.
pub(super) struct TiffLayout {
    pub make: usize,
    pub gps_pointer_entry: usize,
    pub gps_ifd: usize,
    pub latitude: usize,
    pub len: usize,
}

/// A test file and where its metadata sits.
pub(super) struct Sample {
    pub name: String,
    pub bytes: Vec<u8>,
    tiff_at: usize,
    tiff: TiffLayout,
    /// The XMP packet's parts in the file, in packet order.
    xmp: Vec<Range<usize>>,
    /// Other bytes an edit may change (PNG CRCs).
    crcs: Vec<Range<usize>>,
}

impl Sample {
    fn new(name: &str, bytes: Vec<u8>, tiff: (Vec<u8>, TiffLayout), xmp: &[&[u8]]) -> Sample {
        let at = |part: &[u8]| find(&bytes, part);
        let xmp = xmp.iter().map(|p| at(p)..at(p) + p.len()).collect();
        Sample {
            name: name.to_string(),
            tiff_at: at(&tiff.0),
            tiff: tiff.1,
            xmp,
            crcs: Vec::new(),
            bytes,
        }
    }

    /// Asserts `out` is this file without location and otherwise the same.
    pub fn check(&self, out: &[u8]) {
        let name = &self.name;
        assert_eq!(out.len(), self.bytes.len(), "{name}");
        let t = self.tiff_at;
        let gps = t + self.tiff.gps_ifd..t + self.tiff.len;
        // The GPS IFD (count, entries, next offset) and its rationals are zero; the
        // header, IFD0 (Orientation 6, the pointer) and Make are as they were.
        assert!(out[gps.clone()].iter().all(|&b| b == 0), "{name}");
        assert!(self.bytes[t + self.tiff.latitude..gps.end]
            .iter()
            .any(|&b| b != 0));
        assert_eq!(out[t..gps.start], self.bytes[t..gps.start], "{name}");
        assert_eq!(&out[t + self.tiff.make..t + self.tiff.make + 6], b"Canon\0");
        let in_xmp = |i: usize| self.xmp.iter().any(|r| r.contains(&i));
        for (i, (&was, &is)) in self.bytes.iter().zip(out).enumerate() {
            if was != is {
                let allowed = gps.contains(&i)
                    || (in_xmp(i) && is == b' ')
                    || self.crcs.iter().any(|r| r.contains(&i));
                assert!(allowed, "{name}: byte {i} changed from {was:#x} to {is:#x}");
            }
        }
        let text: Vec<u8> = self
            .xmp
            .iter()
            .flat_map(|r| out[r.clone()].to_vec())
            .collect();
        check_xmp(&text);
    }
}

/// Asserts the [`xmp`] packet `text` has lost its location and kept the rest.
pub(super) fn check_xmp(text: &[u8]) {
    let s = String::from_utf8_lossy(text);
    for gone in [
        "GPS", "35,40", "139,45", "Tokyo", "Kanto", "Japan", "Shibuya", "JPN",
    ] {
        assert!(!s.contains(gone), "{gone} left in {s}");
    }
    for kept in [
        r#"tiff:Make="Canon""#,
        r#"xmp:CreatorTool="filegate test""#,
        r#"<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Crossing</rdf:li></rdf:Alt></dc:title>"#,
        r#"xmlns:exif="http://ns.adobe.com/exif/1.0/""#,
        r#"<?xpacket end="w"?>"#,
    ] {
        assert!(s.contains(kept), "{kept} missing from {s}");
    }
}

pub(super) fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle)))
}

pub(super) fn find_str(hay: &[u8], needle: &str) -> usize {
    find(hay, needle.as_bytes())
}

/// TIFF writer in either byte order.
struct Writer {
    big_endian: bool,
    out: Vec<u8>,
}

impl Writer {
    fn u16(&self, v: u16) -> [u8; 2] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u32(&self, v: usize) -> [u8; 4] {
        let v = v as u32;
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    fn entry(&mut self, tag: u16, kind: u16, count: usize, value: [u8; 4]) {
        let (t, k, c) = (self.u16(tag), self.u16(kind), self.u32(count));
        self.put(&t);
        self.put(&k);
        self.put(&c);
        self.put(&value);
    }

    fn rationals(&mut self, values: [(usize, usize); 3]) {
        for (n, d) in values {
            let (n, d) = (self.u32(n), self.u32(d));
            self.put(&n);
            self.put(&d);
        }
    }
}

/// A TIFF block: IFD0 with Make "Canon" (out of line), Orientation 6 and, with `gps`,
/// the GPS pointer; then the GPS IFD (version, latitude and longitude with their
/// references) and its rationals.
pub(super) fn tiff(big_endian: bool, gps: bool) -> (Vec<u8>, TiffLayout) {
    let mut w = Writer {
        big_endian,
        out: Vec::new(),
    };
    let ifd0_entries = if gps { 3 } else { 2 };
    let make = 8 + 2 + 12 * ifd0_entries + 4;
    let gps_ifd = make + 6;
    let latitude = gps_ifd + 2 + 12 * 5 + 4;
    let longitude = latitude + 24;
    let layout = TiffLayout {
        make,
        gps_pointer_entry: 8 + 2 + 12 * 2,
        gps_ifd,
        latitude,
        len: if gps { longitude + 24 } else { gps_ifd },
    };
    w.put(if big_endian { b"MM\0*" } else { b"II*\0" });
    let ifd0 = w.u32(8);
    w.put(&ifd0);
    let n = w.u16(ifd0_entries as u16);
    w.put(&n);
    w.entry(0x010F, 2, 6, w.u32(make));
    let mut orientation = [0; 4];
    orientation[..2].copy_from_slice(&w.u16(6));
    w.entry(0x0112, 3, 1, orientation);
    if gps {
        w.entry(0x8825, 4, 1, w.u32(gps_ifd));
    }
    w.put(&[0; 4]);
    w.put(b"Canon\0");
    if gps {
        let n = w.u16(5);
        w.put(&n);
        w.entry(0x0000, 1, 4, [2, 2, 0, 0]);
        w.entry(0x0001, 2, 2, *b"N\0\0\0");
        w.entry(0x0002, 5, 3, w.u32(latitude));
        w.entry(0x0003, 2, 2, *b"E\0\0\0");
        w.entry(0x0004, 5, 3, w.u32(longitude));
        w.put(&[0; 4]);
        w.rationals([(35, 1), (40, 1), (1234, 100)]);
        w.rationals([(139, 1), (45, 1), (5678, 100)]);
    }
    assert_eq!(w.out.len(), layout.len);
    (w.out, layout)
}

/// An XMP packet; with `location`, GPS and place names as attributes and elements.
pub(super) fn xmp(location: bool) -> Vec<u8> {
    let attributes = if location {
        r#"
    exif:GPSLatitude="35,40.2N"
    exif:GPSLongitude='139,45.9E'
    photoshop:City="Tokyo""#
    } else {
        ""
    };
    let elements = if location {
        r#"
   <exif:GPSAltitude>12/1</exif:GPSAltitude>
   <exif:GPSVersionID>2.2.0.0</exif:GPSVersionID>
   <exif:GPSTimeStamp>2024-05-01T10:00:00Z</exif:GPSTimeStamp>
   <photoshop:State><rdf:Alt><rdf:li xml:lang="x-default">Kanto</rdf:li></rdf:Alt></photoshop:State>
   <photoshop:Country>Japan</photoshop:Country>
   <Iptc4xmpCore:Location>Shibuya</Iptc4xmpCore:Location>
   <Iptc4xmpCore:CountryCode>JPN</Iptc4xmpCore:CountryCode>"#
    } else {
        ""
    };
    let bom = '\u{feff}';
    format!(
        r#"<?xpacket begin="{bom}" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:exif="http://ns.adobe.com/exif/1.0/"
    xmlns:tiff="http://ns.adobe.com/tiff/1.0/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"
    xmlns:Iptc4xmpCore="http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/"
    tiff:Make="Canon"{attributes}
    xmp:CreatorTool="filegate test">{elements}
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">Crossing</rdf:li></rdf:Alt></dc:title>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"#
    )
    .into_bytes()
}

fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut s = vec![0xFF, marker];
    s.extend_from_slice(&(payload.len() as u16 + 2).to_be_bytes());
    s.extend_from_slice(payload);
    s
}

/// A JPEG with these APP1 payloads, a table, a scan and EOI.
pub(super) fn jpeg_with(app1: &[Vec<u8>]) -> Vec<u8> {
    let mut f = vec![0xFF, 0xD8];
    f.extend(segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
    for payload in app1 {
        f.extend(segment(0xE1, payload));
    }
    f.extend(segment(0xDB, &[0x01; 65]));
    f.extend(segment(0xDA, &[1, 1, 0, 0, 63, 0]));
    f.extend([0x12, 0x34, 0xFF, 0x00, 0x56, 0xFF, 0xD0, 0x78, 0xFF, 0xD9]);
    f
}

fn jpeg_file(tiff: &[u8], xmp: &[u8]) -> Vec<u8> {
    jpeg_with(&[
        [&b"Exif\0\0"[..], tiff].concat(),
        [&b"http://ns.adobe.com/xap/1.0/\0"[..], xmp].concat(),
    ])
}

pub(super) fn jpeg(big_endian: bool) -> Sample {
    let (t, x) = (tiff(big_endian, true), xmp(true));
    Sample::new("jpeg", jpeg_file(&t.0, &x), t, &[&x])
}

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    c.extend_from_slice(&crc32fast::hash(&c[4..]).to_be_bytes());
    c
}

fn png_file(tiff: &[u8], xmp: &[u8]) -> Vec<u8> {
    let ihdr = [0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0];
    let itxt = [&b"XML:com.adobe.xmp\0\0\0\0\0"[..], xmp].concat();
    [
        &b"\x89PNG\r\n\x1a\n"[..],
        &chunk(b"IHDR", &ihdr),
        &chunk(b"eXIf", tiff),
        &chunk(b"iTXt", &itxt),
        &chunk(b"IDAT", b"\x78\x9c\x63\x60\x60\x60\x00\x00\x00\x04\x00\x01"),
        &chunk(b"IEND", b""),
    ]
    .concat()
}

pub(super) fn png(big_endian: bool) -> Sample {
    let (t, x) = (tiff(big_endian, true), xmp(true));
    let mut sample = Sample::new("png", png_file(&t.0, &x), t, &[&x]);
    let exif_crc = sample.tiff_at + sample.tiff.len;
    let itxt_crc = sample.xmp[0].end;
    sample.crcs = vec![exif_crc..exif_crc + 4, itxt_crc..itxt_crc + 4];
    sample
}

fn riff_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = kind.to_vec();
    c.extend_from_slice(&(data.len() as u32).to_le_bytes());
    c.extend_from_slice(data);
    if data.len() % 2 == 1 {
        c.push(0);
    }
    c
}

/// A WebP; with `exif_header`, its EXIF chunk starts with "Exif\0\0" as some
/// writers do.
fn webp_file(tiff: &[u8], xmp: &[u8], exif_header: bool) -> Vec<u8> {
    let exif = if exif_header {
        [&b"Exif\0\0"[..], tiff].concat()
    } else {
        tiff.to_vec()
    };
    let body = [
        &b"WEBP"[..],
        &riff_chunk(b"VP8X", &[0x0C, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        &riff_chunk(b"VP8 ", &[1, 2, 3, 4, 5]),
        &riff_chunk(b"EXIF", &exif),
        &riff_chunk(b"XMP ", xmp),
    ]
    .concat();
    [&b"RIFF"[..], &(body.len() as u32).to_le_bytes(), &body].concat()
}

pub(super) fn webp(big_endian: bool) -> Sample {
    let (t, x) = (tiff(big_endian, true), xmp(true));
    Sample::new("webp", webp_file(&t.0, &x, big_endian), t, &[&x])
}

fn iso_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(body);
    b
}

fn full_box(kind: &[u8; 4], version: u8, body: &[u8]) -> Vec<u8> {
    iso_box(kind, &[&[version, 0, 0, 0][..], body].concat())
}

fn infe(id: u16, kind: &[u8; 4], extra: &[u8]) -> Vec<u8> {
    let body = [&id.to_be_bytes()[..], &[0, 0], kind, b"\0", extra].concat();
    full_box(b"infe", 2, &body)
}

/// Where [`heif_file`] splits the XMP item in two extents: inside a GPS attribute.
fn xmp_split(xmp: &[u8]) -> usize {
    xmp.windows(12)
        .position(|w| w == b"GPSLongitude")
        .map_or(xmp.len() / 2, |i| i + 3)
}

/// A HEIF: ftyp, meta (hdlr, iinf, iloc, idat with `exif_in_idat`), mdat. Items: 1 the
/// image, 2 EXIF (in mdat, or in idat), 3 XMP in two extents stored in reverse order.
fn heif_file(tiff: &[u8], xmp: &[u8], exif_in_idat: bool) -> Vec<u8> {
    let exif = [&[0, 0, 0, 6][..], b"Exif\0\0", tiff].concat();
    let image = [0xAB; 16];
    let (xmp1, xmp2) = xmp.split_at(xmp_split(xmp));
    let ftyp = iso_box(b"ftyp", b"heic\0\0\0\0mif1heic");
    let meta = |mdat_body: usize| {
        let hdlr = full_box(
            b"hdlr",
            0,
            &[&[0; 4][..], b"pict", &[0; 12], b"\0"].concat(),
        );
        let mut iinf = 3u16.to_be_bytes().to_vec();
        iinf.extend(infe(1, b"hvc1", b""));
        iinf.extend(infe(2, b"Exif", b""));
        iinf.extend(infe(3, b"mime", b"application/rdf+xml\0"));
        let mut iloc = vec![0x44, 0x00];
        iloc.extend(3u16.to_be_bytes());
        let mut item = |id: u16, method: u16, extents: &[(usize, usize)]| {
            for v in [id, method, 0, extents.len() as u16] {
                iloc.extend(v.to_be_bytes());
            }
            for &(offset, len) in extents {
                iloc.extend((offset as u32).to_be_bytes());
                iloc.extend((len as u32).to_be_bytes());
            }
        };
        item(1, 0, &[(mdat_body, image.len())]);
        let mut at = mdat_body + image.len();
        if exif_in_idat {
            item(2, 1, &[(0, exif.len())]);
        } else {
            item(2, 0, &[(at, exif.len())]);
            at += exif.len();
        }
        item(3, 0, &[(at + xmp2.len(), xmp1.len()), (at, xmp2.len())]);
        let mut body = vec![0; 4];
        body.extend(hdlr);
        body.extend(full_box(b"iinf", 0, &iinf));
        body.extend(full_box(b"iloc", 1, &iloc));
        if exif_in_idat {
            body.extend(iso_box(b"idat", &exif));
        }
        iso_box(b"meta", &body)
    };
    let mdat_body = ftyp.len() + meta(0).len() + 8;
    let mut mdat = image.to_vec();
    if !exif_in_idat {
        mdat.extend_from_slice(&exif);
    }
    mdat.extend_from_slice(xmp2);
    mdat.extend_from_slice(xmp1);
    [ftyp, meta(mdat_body), iso_box(b"mdat", &mdat)].concat()
}

pub(super) fn heif(big_endian: bool, exif_in_idat: bool) -> Sample {
    let (t, x) = (tiff(big_endian, true), xmp(true));
    let (x1, x2) = x.split_at(xmp_split(&x));
    let name = if exif_in_idat { "heif (idat)" } else { "heif" };
    Sample::new(name, heif_file(&t.0, &x, exif_in_idat), t, &[x1, x2])
}

/// Every container, with EXIF and XMP but no location in them.
pub(super) fn without_location() -> Vec<Sample> {
    let (t, x) = (tiff(false, false), xmp(false));
    let files = [
        ("jpeg", jpeg_file(&t.0, &x)),
        ("png", png_file(&t.0, &x)),
        ("webp", webp_file(&t.0, &x, true)),
        ("heif", heif_file(&t.0, &x, false)),
        ("heif (idat)", heif_file(&t.0, &x, true)),
    ];
    files
        .into_iter()
        .map(|(name, bytes)| Sample {
            name: name.to_string(),
            bytes,
            tiff_at: 0,
            tiff: tiff(false, false).1,
            xmp: Vec::new(),
            crcs: Vec::new(),
        })
        .collect()
}
