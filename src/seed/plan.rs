//! What `filegate seed` makes, decided from `--seed` alone: the kind and variant of
//! the i-th file, its name, who uploads it and to which conversation.
//!
//! The plan is an endless sequence cut at `--count`, so a longer run starts with the
//! files of a shorter one (a run can grow or resume). It opens with every variant of
//! every asked kind once, taken round robin over the kinds (the first files cover
//! every kind, the first ~18 every variant); after that kinds and variants are drawn
//! by the IM-like weights below from a generator seeded by `(--seed, index)`.

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// A kind of file, as `--kinds` names them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// User and group avatars (photos).
    Avatar,
    /// Chat pictures: photos of several sizes, an animated GIF, a PNG with alpha.
    Picture,
    /// AMR-NB voice messages of several lengths.
    Voice,
    /// Short H.264 MP4 clips.
    Video,
    /// Plain files: PDF, text, binary.
    File,
}

impl Kind {
    /// Every kind, in the order the plan takes them.
    pub const ALL: [Kind; 5] = [
        Kind::Avatar,
        Kind::Picture,
        Kind::Voice,
        Kind::Video,
        Kind::File,
    ];

    /// The lower-case name (`--kinds`, seed.json).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Avatar => "avatar",
            Kind::Picture => "picture",
            Kind::Voice => "voice",
            Kind::Video => "video",
            Kind::File => "file",
        }
    }

    /// Share of the files after the opening round (of 100).
    fn weight(self) -> u32 {
        match self {
            Kind::Avatar => 10,
            Kind::Picture => 55,
            Kind::Voice => 20,
            Kind::Video => 5,
            Kind::File => 10,
        }
    }

    /// The variants of this kind with their weights.
    fn variants(self) -> &'static [(Variant, u32)] {
        match self {
            Kind::Avatar => &[
                (Variant::UserAvatar { side: 640 }, 5),
                (Variant::GroupAvatar { side: 512 }, 2),
                (Variant::UserAvatar { side: 1080 }, 3),
            ],
            Kind::Picture => &[
                (Variant::Photo { w: 1600, h: 1200 }, 35),
                (Variant::Photo { w: 4000, h: 3000 }, 8),
                (
                    Variant::AnimatedGif {
                        w: 320,
                        h: 240,
                        frames: 12,
                    },
                    10,
                ),
                (Variant::AlphaPng { w: 800, h: 600 }, 10),
                (Variant::Photo { w: 1080, h: 1920 }, 22),
                (Variant::Photo { w: 1280, h: 960 }, 15),
            ],
            Kind::Voice => &[
                (Variant::Voice { seconds: 6 }, 40),
                (Variant::Voice { seconds: 2 }, 25),
                (Variant::Voice { seconds: 15 }, 25),
                (Variant::Voice { seconds: 40 }, 10),
            ],
            Kind::Video => &[
                (
                    Variant::Video {
                        w: 640,
                        h: 360,
                        seconds: 3,
                    },
                    60,
                ),
                (
                    Variant::Video {
                        w: 360,
                        h: 640,
                        seconds: 2,
                    },
                    40,
                ),
            ],
            Kind::File => &[
                (Variant::Pdf { pages: 3 }, 45),
                (Variant::Text { kib: 24 }, 35),
                (Variant::Binary { kib: 1024 }, 20),
            ],
        }
    }
}

/// One kind of generated file, with its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// A square JPEG photo uploaded as a user's avatar.
    UserAvatar {
        /// Side in pixels.
        side: u32,
    },
    /// A square JPEG photo uploaded as a group's avatar (with an admin token).
    GroupAvatar {
        /// Side in pixels.
        side: u32,
    },
    /// A JPEG photo.
    Photo {
        /// Width.
        w: u32,
        /// Height.
        h: u32,
    },
    /// An animated, looping GIF.
    AnimatedGif {
        /// Width.
        w: u32,
        /// Height of one frame.
        h: u32,
        /// Frames.
        frames: u32,
    },
    /// A PNG with an alpha channel (a sticker).
    AlphaPng {
        /// Width.
        w: u32,
        /// Height.
        h: u32,
    },
    /// AMR-NB speech.
    Voice {
        /// Length.
        seconds: u32,
    },
    /// An H.264 MP4 clip.
    Video {
        /// Width.
        w: u32,
        /// Height.
        h: u32,
        /// Length.
        seconds: u32,
    },
    /// A small PDF document.
    Pdf {
        /// Pages.
        pages: u32,
    },
    /// A UTF-8 text file.
    Text {
        /// Size in KiB.
        kib: u32,
    },
    /// An opaque binary file.
    Binary {
        /// Size in KiB.
        kib: u32,
    },
}

impl Variant {
    /// A short label, e.g. `jpeg-4000x3000`, `amr-15s` (seed.json, progress).
    pub fn label(&self) -> String {
        match *self {
            Variant::UserAvatar { side } => format!("user-avatar-jpeg-{side}x{side}"),
            Variant::GroupAvatar { side } => format!("group-avatar-jpeg-{side}x{side}"),
            Variant::Photo { w, h } => format!("jpeg-{w}x{h}"),
            Variant::AnimatedGif { w, h, frames } => format!("gif-{w}x{h}-{frames}frames"),
            Variant::AlphaPng { w, h } => format!("png-alpha-{w}x{h}"),
            Variant::Voice { seconds } => format!("amr-nb-{seconds}s"),
            Variant::Video { w, h, seconds } => format!("h264-{w}x{h}-{seconds}s"),
            Variant::Pdf { pages } => format!("pdf-{pages}pages"),
            Variant::Text { kib } => format!("text-{kib}KiB"),
            Variant::Binary { kib } => format!("binary-{kib}KiB"),
        }
    }

    /// The content type it is uploaded with.
    pub fn content_type(&self) -> &'static str {
        match self {
            Variant::UserAvatar { .. } | Variant::GroupAvatar { .. } | Variant::Photo { .. } => {
                "image/jpeg"
            }
            Variant::AnimatedGif { .. } => "image/gif",
            Variant::AlphaPng { .. } => "image/png",
            Variant::Voice { .. } => "audio/amr",
            Variant::Video { .. } => "video/mp4",
            Variant::Pdf { .. } => "application/pdf",
            Variant::Text { .. } => "text/plain",
            Variant::Binary { .. } => "application/octet-stream",
        }
    }

    fn file_name(&self, index: usize) -> String {
        match self {
            Variant::UserAvatar { .. } | Variant::GroupAvatar { .. } => {
                format!("avatar_{index:05}.jpg")
            }
            Variant::Photo { .. } => format!("IMG_{index:05}.jpg"),
            Variant::AnimatedGif { .. } => format!("anim_{index:05}.gif"),
            Variant::AlphaPng { .. } => format!("sticker_{index:05}.png"),
            Variant::Voice { .. } => format!("voice_{index:05}.amr"),
            Variant::Video { .. } => format!("VID_{index:05}.mp4"),
            Variant::Pdf { .. } => format!("report_{index:05}.pdf"),
            Variant::Text { .. } => format!("notes_{index:05}.txt"),
            Variant::Binary { .. } => format!("backup_{index:05}.bin"),
        }
    }
}

/// Where a chat file is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conversation {
    /// `to_type`: 1 a user, 2 a group.
    pub to_type: u8,
    /// `to_id`.
    pub to_id: i64,
}

/// One planned file.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Its place in the plan (0-based).
    pub index: usize,
    /// Its kind.
    pub kind: Kind,
    /// Its shape.
    pub variant: Variant,
    /// The file name it is uploaded under.
    pub name: String,
    /// The acting user: the uploader (a chat file, a user avatar) or the admin (a
    /// group avatar).
    pub uploader: i64,
    /// The group of a group avatar.
    pub group_id: Option<i64>,
    /// The conversation of a chat file.
    pub conversation: Option<Conversation>,
    /// Seed of the file's own content.
    pub content_seed: u64,
}

/// First user id the seed uploads as; avatars belong to users from here on.
pub const FIRST_USER: i64 = 10_000;
/// First group id the seed sends to.
pub const FIRST_GROUP: i64 = 30_000;
/// Users who send chat files.
const CHAT_USERS: i64 = 50;
/// Groups chat files go to.
const CHAT_GROUPS: i64 = 20;

/// A small, portable generator (SplitMix64): the same numbers on every machine and
/// every version, unlike `rand`'s `StdRng`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `(seed, stream)`.
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        rng.next_u64();
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// An index drawn by `weights`.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut pick = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if pick < u64::from(w) {
                return i;
            }
            pick -= u64::from(w);
        }
        weights.len().saturating_sub(1)
    }
}

/// The first `count` files of the plan for `seed` over `kinds` (in [`Kind::ALL`]
/// order, no repeats).
pub fn plan(seed: u64, kinds: &[Kind], count: usize) -> Vec<Planned> {
    if kinds.is_empty() {
        return Vec::new();
    }
    let opening = opening_round(kinds);
    let mut avatars = 0i64;
    (0..count)
        .map(|index| {
            let mut rng = Rng::new(seed, index as u64);
            let (kind, variant) = match opening.get(index) {
                Some(&pair) => pair,
                None => {
                    let weights: Vec<u32> = kinds.iter().map(|k| k.weight()).collect();
                    let kind = kinds[rng.weighted(&weights)];
                    let table = kind.variants();
                    let weights: Vec<u32> = table.iter().map(|(_, w)| *w).collect();
                    (kind, table[rng.weighted(&weights)].0)
                }
            };
            let mut planned = Planned {
                index,
                kind,
                variant,
                name: variant.file_name(index),
                uploader: FIRST_USER + rng.below(CHAT_USERS as u64) as i64,
                group_id: None,
                conversation: None,
                content_seed: rng.next_u64(),
            };
            match variant {
                // Every avatar is a different user's (or group's): the first ones are
                // the hot avatars of the URL mix.
                Variant::UserAvatar { .. } => {
                    planned.uploader = FIRST_USER + avatars;
                    avatars += 1;
                }
                Variant::GroupAvatar { .. } => {
                    planned.group_id = Some(FIRST_GROUP + avatars);
                    avatars += 1;
                }
                _ => {
                    planned.conversation = Some(if rng.unit() < 0.6 {
                        Conversation {
                            to_type: 1,
                            to_id: FIRST_USER + rng.below(CHAT_USERS as u64) as i64,
                        }
                    } else {
                        Conversation {
                            to_type: 2,
                            to_id: FIRST_GROUP + rng.below(CHAT_GROUPS as u64) as i64,
                        }
                    });
                }
            }
            planned
        })
        .collect()
}

/// Every variant of every kind once, round robin over the kinds.
fn opening_round(kinds: &[Kind]) -> Vec<(Kind, Variant)> {
    let longest = kinds.iter().map(|k| k.variants().len()).max().unwrap_or(0);
    let mut out = Vec::new();
    for round in 0..longest {
        for &kind in kinds {
            if let Some((variant, _)) = kind.variants().get(round) {
                out.push((kind, *variant));
            }
        }
    }
    out
}

/// Kinds as asked, deduplicated, in [`Kind::ALL`] order.
pub fn normalize_kinds(kinds: &[Kind]) -> Vec<Kind> {
    Kind::ALL
        .iter()
        .copied()
        .filter(|k| kinds.contains(k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_covers_every_kind_then_every_variant() {
        let files = plan(7, &Kind::ALL, 40);
        let first: Vec<Kind> = files[..5].iter().map(|f| f.kind).collect();
        assert_eq!(first, Kind::ALL.to_vec());
        let variants: usize = Kind::ALL.iter().map(|k| k.variants().len()).sum();
        for kind in Kind::ALL {
            for (variant, _) in kind.variants() {
                assert!(
                    files[..variants].iter().any(|f| f.variant == *variant),
                    "{variant:?} missing from the opening round"
                );
            }
        }
        assert!(files
            .iter()
            .any(|f| f.variant == Variant::Photo { w: 4000, h: 3000 }));
    }

    #[test]
    fn deterministic_and_prefix_stable() {
        let a = plan(3, &Kind::ALL, 60);
        let b = plan(3, &Kind::ALL, 80);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                (x.kind, x.variant, &x.name, x.uploader, x.content_seed),
                (y.kind, y.variant, &y.name, y.uploader, y.content_seed)
            );
        }
        let c = plan(4, &Kind::ALL, 60);
        assert!(a
            .iter()
            .zip(&c)
            .any(|(x, y)| x.content_seed != y.content_seed));
    }

    #[test]
    fn kinds_filter_and_avatar_owners() {
        let files = plan(1, &[Kind::Avatar, Kind::Voice], 30);
        assert!(files
            .iter()
            .all(|f| matches!(f.kind, Kind::Avatar | Kind::Voice)));
        let users: Vec<i64> = files
            .iter()
            .filter(|f| matches!(f.variant, Variant::UserAvatar { .. }))
            .map(|f| f.uploader)
            .collect();
        let mut unique = users.clone();
        unique.dedup();
        assert_eq!(users, unique, "every user avatar has its own user");
        assert!(files
            .iter()
            .filter(|f| f.kind == Kind::Voice)
            .all(|f| f.conversation.is_some()));
        assert_eq!(
            normalize_kinds(&[Kind::File, Kind::Avatar, Kind::File]),
            vec![Kind::Avatar, Kind::File]
        );
    }
}
