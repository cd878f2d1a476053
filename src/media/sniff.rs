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

#[cfg(test)]
mod tests {
    use super::*;

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
}
