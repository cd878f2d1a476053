//! XMP location properties, replaced by spaces of the same length. Whitespace between
//! attributes and between property elements is insignificant in RDF/XML, so the
//! packet stays valid and every other property readable. The match is lexical (no XML
//! parser on hostile input) and on the usual prefixes only.

/// A location property name: every `exif:GPS*` name, and the exact location names of
/// Photoshop and IPTC Core / Extension (the last two hold City, GPS and the like).
enum Name {
    Prefix(&'static [u8]),
    Exact(&'static [u8]),
}

const NAMES: [Name; 8] = [
    Name::Prefix(b"exif:GPS"),
    Name::Exact(b"photoshop:City"),
    Name::Exact(b"photoshop:State"),
    Name::Exact(b"photoshop:Country"),
    Name::Exact(b"Iptc4xmpCore:Location"),
    Name::Exact(b"Iptc4xmpCore:CountryCode"),
    Name::Exact(b"Iptc4xmpExt:LocationCreated"),
    Name::Exact(b"Iptc4xmpExt:LocationShown"),
];

/// Blanks every location property of the XMP packet `xmp`, in attribute form
/// (`exif:GPSLatitude="…"`, the name and value) and in element form
/// (`<exif:GPSLatitude>…</exif:GPSLatitude>`, the whole element with what it holds).
/// False when there was none. An element whose end tag is missing (a packet cut
/// short, a property split across JPEG extended-XMP chunks) is left as it is.
pub(super) fn blank_location(xmp: &mut [u8]) -> bool {
    let mut changed = false;
    let mut i = 0;
    while let Some(&b) = xmp.get(i) {
        let element = b == b'<';
        if element || is_space(b) {
            if let Some(name_end) = location_name(xmp, i + 1) {
                let range = if element {
                    element_end(xmp, i + 1, name_end).map(|end| i..end)
                } else {
                    attribute_end(xmp, name_end).map(|end| i + 1..end)
                };
                if let Some(s) = range.and_then(|r| xmp.get_mut(r)) {
                    s.fill(b' ');
                    changed = true;
                    i += s.len();
                    continue;
                }
            }
        }
        i += 1;
    }
    changed
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// XML name bytes (any non-ASCII byte: part of a UTF-8 name character).
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':') || b >= 0x80
}

/// Where the name starting at `at` ends, if it is a location property's.
fn location_name(x: &[u8], at: usize) -> Option<usize> {
    let rest = x.get(at..)?;
    let end = at + rest.iter().take_while(|&&b| is_name_byte(b)).count();
    let name = x.get(at..end)?;
    NAMES
        .iter()
        .any(|n| match n {
            Name::Prefix(p) => name.starts_with(p),
            Name::Exact(e) => name == *e,
        })
        .then_some(end)
}

/// The end of `="value"` (or `='value'`) following an attribute name at `at`.
fn attribute_end(x: &[u8], at: usize) -> Option<usize> {
    let at = skip_spaces(x, at);
    if x.get(at) != Some(&b'=') {
        return None;
    }
    let at = skip_spaces(x, at + 1);
    let quote = *x.get(at).filter(|&&q| q == b'"' || q == b'\'')?;
    let close = at + 1 + x.get(at + 1..)?.iter().position(|&b| b == quote)?;
    Some(close + 1)
}

/// The end of the element whose name is `x[name..name_end]`: after `/>` for an empty
/// element, else after its end tag.
fn element_end(x: &[u8], name: usize, name_end: usize) -> Option<usize> {
    if !matches!(
        x.get(name_end),
        Some(b'>' | b'/') | Some(b' ' | b'\t' | b'\r' | b'\n')
    ) {
        return None;
    }
    // The start tag's `>`, quoted attribute values skipped.
    let mut quote = None;
    let mut at = name_end;
    let tag_end = loop {
        let b = *x.get(at)?;
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => break at + 1,
            None => {}
        }
        at += 1;
    };
    if x.get(tag_end.wrapping_sub(2)) == Some(&b'/') {
        return Some(tag_end);
    }
    let mut close = b"</".to_vec();
    close.extend_from_slice(x.get(name..name_end)?);
    let mut from = tag_end;
    loop {
        let found = super::bytes::find(x, from, &close)?;
        let after = skip_spaces(x, found + close.len());
        if x.get(after) == Some(&b'>') {
            return Some(after + 1);
        }
        from = found + close.len();
    }
}

fn skip_spaces(x: &[u8], mut at: usize) -> usize {
    while x.get(at).is_some_and(|&b| is_space(b)) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::super::samples;
    use super::*;

    fn blanked(text: &str) -> (bool, String) {
        let mut b = text.as_bytes().to_vec();
        let changed = blank_location(&mut b);
        assert_eq!(b.len(), text.len());
        (changed, String::from_utf8(b).expect("still UTF-8"))
    }

    #[test]
    fn the_sample_packet_loses_its_location_only() {
        let input = String::from_utf8(samples::xmp(true)).expect("UTF-8");
        let (changed, out) = blanked(&input);
        assert!(changed);
        samples::check_xmp(out.as_bytes());
        // Only spaces were written.
        for (a, b) in input.bytes().zip(out.bytes()) {
            assert!(a == b || b == b' ');
        }
        let (changed, _) = blanked(&out);
        assert!(!changed);
    }

    #[test]
    fn attribute_and_element_forms() {
        let (_, out) = blanked(r#"<d a="1" exif:GPSLatitude = '35,40N' b="2"/>"#);
        let gap = " ".repeat("exif:GPSLatitude = '35,40N'".len());
        assert_eq!(out, format!(r#"<d a="1" {gap} b="2"/>"#));
        let (_, out) =
            blanked("<d><exif:GPSAltitude rdf:parseType='Resource'>1</exif:GPSAltitude ></d>");
        assert_eq!(out.trim_start_matches("<d>").trim(), "</d>");
        let (_, out) = blanked(r#"<d><exif:GPSMapDatum x="a>b"/><y/></d>"#);
        let gap = " ".repeat(r#"<exif:GPSMapDatum x="a>b"/>"#.len());
        assert_eq!(out, format!("<d>{gap}<y/></d>"));
        let (_, out) = blanked("<photoshop:City>Köln</photoshop:City>");
        assert_eq!(out.trim(), "");
    }

    #[test]
    fn names_match_whole() {
        for text in [
            r#"<d photoshop:CityX="a" xexif:GPSLatitude="b" myexif:GPSAltitude="c"/>"#,
            "<photoshop:Cityscape>a</photoshop:Cityscape>",
            r#"<d dc:title="exif:GPSLatitude"/>"#,
            "<exif:GPSLatitude>unterminated",
            r#"<d exif:GPSLatitude="unterminated"#,
        ] {
            assert_eq!(blanked(text), (false, text.to_string()), "{text}");
        }
    }
}
