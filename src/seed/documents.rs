//! Plain chat files: a small valid PDF, a UTF-8 text file and an opaque binary.

use crate::seed::plan::Rng;

const WORDS: &[&str] = &[
    "the", "meeting", "notes", "for", "project", "budget", "review", "next", "week", "team",
    "update", "please", "check", "attached", "draft", "and", "send", "comments", "before",
    "friday", "schedule", "release", "plan", "customer", "feedback", "design", "photos", "trip",
    "dinner", "tomorrow", "agenda", "minutes", "report", "quarter", "numbers", "growth", "thanks",
    "everyone", "call", "at", "ten", "office", "remote",
];

fn sentence(rng: &mut Rng, words: usize) -> String {
    let mut s: Vec<&str> = (0..words)
        .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
        .collect();
    if let Some(first) = s.first_mut() {
        if *first == "the" {
            *first = "The";
        }
    }
    let mut line = s.join(" ");
    line.push('.');
    line
}

/// About `kib` KiB of UTF-8 text: paragraphs of plain sentences, a few non-ASCII.
pub fn text(kib: u32, rng: &mut Rng) -> Vec<u8> {
    let target = kib as usize * 1024;
    let mut out = String::with_capacity(target + 256);
    out.push_str("Notes — généré par filegate seed\n\n");
    while out.len() < target {
        for _ in 0..3 + rng.below(4) {
            let words = 6 + rng.below(10) as usize;
            out.push_str(&sentence(rng, words));
            out.push(' ');
        }
        out.push_str("\n\n");
    }
    out.into_bytes()
}

/// `kib` KiB of incompressible bytes (an archive, a backup).
pub fn binary(kib: u32, rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::with_capacity(kib as usize * 1024);
    while out.len() < kib as usize * 1024 {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(kib as usize * 1024);
    out
}

/// A valid PDF 1.4 of `pages` pages of Helvetica text, with its cross-reference
/// table.
pub fn pdf(pages: u32, rng: &mut Rng) -> Vec<u8> {
    // Objects: 1 catalog, 2 page tree, 3 font, then a page and its content per page.
    let mut objects: Vec<String> = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {pages} >>",
            (0..pages)
                .map(|p| format!("{} 0 R", 4 + 2 * p))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    for p in 0..pages {
        let mut content = format!(
            "BT /F1 18 Tf 72 760 Td (Quarterly report, page {}) Tj ET\n",
            p + 1
        );
        for line in 0..36 {
            let words = 8 + rng.below(5) as usize;
            let text = sentence(rng, words);
            content.push_str(&format!(
                "BT /F1 11 Tf 72 {} Td ({text}) Tj ET\n",
                730 - 18 * line
            ));
        }
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + 2 * p
        ));
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            content.len()
        ));
    }
    let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_cross_references_point_at_objects() {
        let doc = pdf(2, &mut Rng::new(1, 2));
        assert!(doc.starts_with(b"%PDF-1.4"));
        let tail = String::from_utf8(doc[doc.len() - 40..].to_vec()).unwrap();
        let start: usize = tail
            .rsplit("startxref\n")
            .next()
            .and_then(|t| t.lines().next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        let xref = String::from_utf8(doc[start..].to_vec()).unwrap();
        assert!(xref.starts_with("xref\n0 8\n"));
        for (i, line) in xref.lines().skip(3).take(7).enumerate() {
            let offset: usize = line[..10].parse().unwrap();
            assert!(doc[offset..].starts_with(format!("{} 0 obj", i + 1).as_bytes()));
        }
        assert!(doc.len() > 1000);
        assert_eq!(binary(3, &mut Rng::new(1, 1)).len(), 3072);
        assert!(text(4, &mut Rng::new(2, 2)).len() >= 4096);
    }
}
