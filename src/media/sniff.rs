//! What a source really is, from its first bytes: the stored content type is the
//! uploader's claim, so transforms decide by magic numbers before any decoder runs.

/// A format recognised by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// PNG.
    Png,
    /// WebP (`RIFF....WEBP`).
    Webp,
    /// GIF87a / GIF89a.
    Gif,
    /// An ISO-BMFF file (`....ftyp`): MP4, MOV, 3GP, and also HEIF/AVIF images.
    IsoBmff {
        /// Whether the brand is an image one (HEIF/AVIF), not a movie.
        image: bool,
    },
    /// Matroska / WebM (EBML).
    Matroska,
    /// AMR narrow-band storage format (`#!AMR\n`).
    AmrNb,
    /// AMR wide-band storage format (`#!AMR-WB\n`).
    AmrWb,
    /// SVG or other XML.
    Xml,
    /// Other known formats no transform takes (PDF, TIFF, BMP, ICO, MP3, ...).
    OtherKnown(&'static str),
    /// Nothing recognisable.
    Unknown,
}

impl Sniffed {
    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Sniffed::Jpeg => "JPEG",
            Sniffed::Png => "PNG",
            Sniffed::Webp => "WebP",
            Sniffed::Gif => "GIF",
            Sniffed::IsoBmff { image: true } => "HEIF/AVIF",
            Sniffed::IsoBmff { image: false } => "MP4/MOV",
            Sniffed::Matroska => "Matroska/WebM",
            Sniffed::AmrNb => "AMR-NB",
            Sniffed::AmrWb => "AMR-WB",
            Sniffed::Xml => "SVG/XML",
            Sniffed::OtherKnown(name) => name,
            Sniffed::Unknown => "unknown",
        }
    }
}

/// Recognises `bytes` by their first bytes.
pub fn sniff(bytes: &[u8]) -> Sniffed {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Sniffed::Jpeg;
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Sniffed::Png;
    }
    if bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == b"WEBP" {
        return Sniffed::Webp;
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Sniffed::Gif;
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        let brand = &bytes[8..12];
        let image = matches!(
            brand,
            b"avif" | b"avis" | b"heic" | b"heix" | b"mif1" | b"msf1" | b"heim" | b"heis"
        );
        return Sniffed::IsoBmff { image };
    }
    if starts(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return Sniffed::Matroska;
    }
    if starts(b"#!AMR\n") {
        return Sniffed::AmrNb;
    }
    if starts(b"#!AMR-WB\n") {
        return Sniffed::AmrWb;
    }
    let head = &bytes[..bytes.len().min(512)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with("<?xml") || trimmed.starts_with("<svg") || trimmed.contains("<svg") {
        return Sniffed::Xml;
    }
    let others: &[(&[u8], &'static str)] = &[
        (b"%PDF", "PDF"),
        (b"II*\0", "TIFF"),
        (b"MM\0*", "TIFF"),
        (b"BM", "BMP"),
        (b"\0\0\x01\0", "ICO"),
        (b"ID3", "MP3"),
        (b"\xFF\x0A", "JPEG XL"),
        (b"\0\0\0\x0CJXL ", "JPEG XL"),
        (b"8BPS", "PSD"),
    ];
    for (magic, name) in others {
        if starts(magic) {
            return Sniffed::OtherKnown(name);
        }
    }
    Sniffed::Unknown
}

/// The content type `bytes` really are, when their first bytes say so positively
/// (SPEC §11 "true types"): images, AMR, MP3 with an ID3 tag, and ISO-BMFF files by
/// their brand. `None`: nothing recognised, and the uploader's claim stands (the
/// presentation policy still decides what may render inline).
pub fn true_type(bytes: &[u8]) -> Option<&'static str> {
    Some(match sniff(bytes) {
        Sniffed::Jpeg => "image/jpeg",
        Sniffed::Png => "image/png",
        Sniffed::Webp => "image/webp",
        Sniffed::Gif => "image/gif",
        Sniffed::IsoBmff { image: true } => heif_mime(bytes),
        Sniffed::IsoBmff { image: false } => match bytes.get(8..12) {
            Some(b"qt  ") => "video/quicktime",
            Some(brand) if brand.starts_with(b"3g") => "video/3gpp",
            _ => "video/mp4",
        },
        Sniffed::AmrNb => "audio/amr",
        Sniffed::OtherKnown("MP3") => "audio/mpeg",
        _ => return None,
    })
}

/// The type of a HEIF file by its major brand: AVIF, HEIC (HEVC) or another HEIF.
pub fn heif_mime(bytes: &[u8]) -> &'static str {
    match bytes.get(8..12) {
        Some(b"avif" | b"avis") => "image/avif",
        Some(b"heic" | b"heix" | b"heim" | b"heis") => "image/heic",
        _ => "image/heif",
    }
}

/// Bytes of a body's beginning kept to sniff its format (ISO-BMFF's brands sit at
/// 8..16 and beyond: 64 covers every format named here).
pub const SNIFF_BYTES: usize = 64;

/// The beginning of a body as it streams by, kept up to [`SNIFF_BYTES`].
#[derive(Debug, Clone, Default)]
pub struct SniffHead(Vec<u8>);

impl SniffHead {
    /// Keeps what `chunk` adds to the first [`SNIFF_BYTES`].
    pub fn feed(&mut self, chunk: &[u8]) {
        let room = SNIFF_BYTES.saturating_sub(self.0.len());
        self.0.extend_from_slice(&chunk[..room.min(chunk.len())]);
    }

    /// Whether [`SNIFF_BYTES`] are kept.
    pub fn is_full(&self) -> bool {
        self.0.len() >= SNIFF_BYTES
    }

    /// The bytes kept.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn true_types_by_magic_and_brand() {
        assert_eq!(true_type(b"\xFF\xD8\xFF\xE1"), Some("image/jpeg"));
        assert_eq!(true_type(b"\0\0\0\x18ftypheic\0\0\0\0"), Some("image/heic"));
        assert_eq!(true_type(b"\0\0\0\x18ftypmif1\0\0\0\0"), Some("image/heif"));
        assert_eq!(true_type(b"\0\0\0\x18ftypavif\0\0\0\0"), Some("image/avif"));
        assert_eq!(
            true_type(b"\0\0\0\x18ftypqt  \0\0\0\0"),
            Some("video/quicktime")
        );
        assert_eq!(true_type(b"\0\0\0\x18ftyp3gp4\0\0\0\0"), Some("video/3gpp"));
        assert_eq!(true_type(b"#!AMR\n"), Some("audio/amr"));
        assert_eq!(true_type(b"<html>"), None);
        assert_eq!(true_type(b"plain text"), None);
    }

    #[test]
    fn magic_numbers() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Sniffed::Jpeg);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Sniffed::Png);
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Sniffed::Webp);
        assert_eq!(sniff(b"GIF89a.."), Sniffed::Gif);
        assert_eq!(
            sniff(b"\0\0\0\x20ftypisom\0\0"),
            Sniffed::IsoBmff { image: false }
        );
        assert_eq!(
            sniff(b"\0\0\0\x20ftypavif\0\0"),
            Sniffed::IsoBmff { image: true }
        );
        assert_eq!(sniff(b"#!AMR\n\x3c"), Sniffed::AmrNb);
        assert_eq!(
            sniff(b"  <svg xmlns='http://www.w3.org/2000/svg'/>"),
            Sniffed::Xml
        );
        assert_eq!(sniff(b"%PDF-1.7"), Sniffed::OtherKnown("PDF"));
        assert_eq!(sniff(&[0x13, 0x37, 0x00, 0x42]), Sniffed::Unknown);
        assert_eq!(sniff(b""), Sniffed::Unknown);
    }

    #[test]
    fn head_keeps_the_first_bytes() {
        let mut head = SniffHead::default();
        head.feed(&[1; 10]);
        head.feed(&[2; 100]);
        assert_eq!(head.bytes().len(), SNIFF_BYTES);
        assert!(head.is_full());
        assert_eq!(&head.bytes()[..11], &[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]);
    }
}
