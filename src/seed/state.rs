//! `seed.json`: what a run uploaded (keys, kinds, sizes, checksums), written as the
//! run goes so that an interrupted run resumes, and read back to skip what is done.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::seed::plan::{Kind, Planned};

/// The format version of seed.json.
pub const VERSION: u32 = 1;

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedState {
    /// [`VERSION`].
    pub version: u32,
    /// The filegate the files were uploaded through (`--url`).
    pub url: String,
    /// The app (`--app`).
    pub app: String,
    /// `--seed`.
    pub seed: u64,
    /// `--kinds`, in plan order.
    pub kinds: Vec<Kind>,
    /// Uploaded files, by plan index.
    pub files: Vec<UploadedFile>,
}

/// One uploaded file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadedFile {
    /// Its index in the plan.
    pub index: usize,
    /// Its kind.
    pub kind: Kind,
    /// Its variant label, e.g. `jpeg-4000x3000`.
    pub variant: String,
    /// The file name it was uploaded under.
    pub name: String,
    /// Its content type.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// The object key in the store.
    pub key: String,
    /// Avatars: the `object_name` of `/file/download/avatar`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_name: Option<String>,
    /// Chat files: the file_sign of `/file/download/chat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_sign: Option<String>,
    /// `POST` or `PUT`.
    pub upload_method: String,
    /// The acting user of the upload.
    pub uploader: i64,
}

impl UploadedFile {
    /// Whether this entry is the upload of `planned` (same plan slot, same file).
    pub fn is_of(&self, planned: &Planned) -> bool {
        self.index == planned.index
            && self.kind == planned.kind
            && self.variant == planned.variant.label()
            && self.name == planned.name
    }
}

impl SeedState {
    /// An empty state for a run.
    pub fn new(url: &str, app: &str, seed: u64, kinds: &[Kind]) -> SeedState {
        SeedState {
            version: VERSION,
            url: url.to_string(),
            app: app.to_string(),
            seed,
            kinds: kinds.to_vec(),
            files: Vec::new(),
        }
    }

    /// The state in `path`, if there is one. A run of other parameters is refused:
    /// its files are not the ones this run would make.
    pub fn load(path: &Path, expected: &SeedState) -> Result<Option<SeedState>, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let state: SeedState = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is not a seed.json this version reads ({e}); use another --out or remove it",
                path.display()
            )
        })?;
        if state.version != VERSION {
            return Err(format!(
                "{} is of format version {}, this filegate writes {VERSION}; use another --out",
                path.display(),
                state.version
            ));
        }
        let same = state.url == expected.url
            && state.app == expected.app
            && state.seed == expected.seed
            && state.kinds == expected.kinds;
        if !same {
            return Err(format!(
                "{} holds a run of --url {} --app {} --seed {} --kinds {}; to resume it, give the same, else use another --out",
                path.display(),
                state.url,
                state.app,
                state.seed,
                state
                    .kinds
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        Ok(Some(state))
    }

    /// The entry for `planned`, if it was uploaded.
    pub fn uploaded(&self, planned: &Planned) -> Option<&UploadedFile> {
        self.files.iter().find(|f| f.is_of(planned))
    }

    /// Records an upload (replacing an older one of the same index).
    pub fn record(&mut self, file: UploadedFile) {
        self.files.retain(|f| f.index != file.index);
        self.files.push(file);
        self.files.sort_by_key(|f| f.index);
    }

    /// Forgets the upload of index `index` (its object is gone from the store).
    pub fn forget(&mut self, index: usize) {
        self.files.retain(|f| f.index != index);
    }

    /// Writes the state to `path` atomically (a temp file renamed over it).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| format!("cannot encode seed.json: {e}"))?;
        write_atomically(path, &json)
    }
}

/// Writes `bytes` to `path` through `path.tmp` and a rename, so a reader never sees
/// a half-written file and a failed run leaves none behind.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut tmp = PathBuf::from(path);
    let name = path
        .file_name()
        .map(|n| format!(".{}.tmp", n.to_string_lossy()))
        .unwrap_or_else(|| ".tmp".to_string());
    tmp.set_file_name(name);
    // Owner-only (0600): seed.json, urls.txt and vegeta.txt hold signed URLs.
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)
    };
    write().map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}
