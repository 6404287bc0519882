//! Where a run's snapshots go: a [`Store`] is handed each [`Snapshot`] (weights, optimizer state,
//! tokenizer and a typed [`SnapshotMeta`]) and keeps it. The page's store is IndexedDB (in
//! `app::worker`); natively it is a checkpoint directory ([`CheckpointDir`]) that a killed process
//! always leaves readable.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Heads, ModelConfig, Pooling};
use super::RunSpec;

/// Why a snapshot was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotKind {
    /// Every N steps of a run, and when it pauses.
    Checkpoint,
    /// A run finished (or stopped); the model as it ended.
    EndOfRun,
    /// A run went non-finite and the weights were put back to where they were before it.
    RolledBack,
}

impl fmt::Display for SnapshotKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SnapshotKind::Checkpoint => "checkpoint",
            SnapshotKind::EndOfRun => "end of run",
            SnapshotKind::RolledBack => "rolled back",
        })
    }
}

/// What a snapshot records besides its tensors: enough to rebuild the model (config, heads,
/// pooling, labels) and to continue its run (the run's settings and step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Optimizer steps taken by the run (0: none, or rolled back).
    pub step: usize,
    pub kind: SnapshotKind,
    /// Where the model came from (a directory, the hub id, "from scratch: ...").
    pub source: String,
    pub config: ModelConfig,
    pub heads: Heads,
    /// Class names in the classifier's row order.
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub pooling: Pooling,
    /// The run the snapshot belongs to (None: a model no run has touched).
    #[serde(default)]
    pub run: Option<RunSpec>,
    /// The run reached its end: there is nothing to continue.
    #[serde(default)]
    pub finished: bool,
    /// The data the run read (a file name or path).
    #[serde(default)]
    pub data: Option<String>,
    /// When it was taken (ISO 8601 in the page; empty natively).
    #[serde(default)]
    pub saved_at: String,
}

/// More labels than this in a snapshot is not a classifier BERT Lab made.
const MAX_LABELS: usize = 10_000;

impl SnapshotMeta {
    /// Reads and checks a snapshot's metadata: a config BERT Lab can run, and labels that fit the
    /// head. Nothing is trusted before it is checked; what is wrong is said in words.
    pub fn parse(json: &str) -> Result<SnapshotMeta> {
        let m: SnapshotMeta = serde_json::from_str(json).map_err(|e| Error::Data { line: 0, message: format!("the saved session's metadata cannot be read ({e}); start fresh") })?;
        m.config.validate().map_err(|e| Error::Data { line: 0, message: format!("the saved session's config: {e}") })?;
        if m.heads.num_labels > MAX_LABELS {
            return Err(Error::Limit(format!("the saved session's classifier has {} labels; at most {MAX_LABELS} are supported", m.heads.num_labels)));
        }
        if m.heads.num_labels > 0 && m.labels.len() > m.heads.num_labels {
            return Err(Error::Data { line: 0, message: format!("the saved session names {} labels for a {}-label classifier", m.labels.len(), m.heads.num_labels) });
        }
        Ok(m)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// A snapshot: its metadata and the files that rebuild the model and its optimizer.
pub struct Snapshot {
    pub meta: SnapshotMeta,
    /// The weights (safetensors, the model's own tensor names).
    pub weights: Vec<u8>,
    /// The optimizer state (`train::checkpoint`'s format).
    pub optimizer: Vec<u8>,
    pub tokenizer_files: Vec<(String, Vec<u8>)>,
}

/// Keeps a run's snapshots. A store that cannot save says why; the run goes on, and the error
/// reaches the caller when the run ends.
pub trait Store {
    fn save(&self, snap: Snapshot) -> Result<()>;
    /// Whether the end of a run is saved too (the page does, so that a reload finds the model as
    /// the run left it).
    fn keeps_end_of_run(&self) -> bool {
        false
    }
}

/// Keeps nothing: a run without checkpoints.
pub struct NoStore;

impl Store for NoStore {
    fn save(&self, _: Snapshot) -> Result<()> {
        Ok(())
    }
}

/// A checkpoint directory in Hugging Face's layout (config.json, model.safetensors, the tokenizer)
/// plus the optimizer file and the metadata (`train::checkpoint::STATE_FILE`), written so that a
/// process killed at any moment leaves this checkpoint or the previous one.
#[cfg(not(target_arch = "wasm32"))]
pub struct CheckpointDir(pub std::path::PathBuf);

#[cfg(not(target_arch = "wasm32"))]
impl Store for CheckpointDir {
    fn save(&self, snap: Snapshot) -> Result<()> {
        use crate::train::checkpoint::{write_dir_atomically, OPTIMIZER_FILE, STATE_FILE};
        let m = &snap.meta;
        let mut files = vec![
            ("config.json".to_string(), crate::io::export::config_json(&m.config, m.heads, &m.labels).into_bytes()),
            ("model.safetensors".to_string(), snap.weights),
            (OPTIMIZER_FILE.to_string(), snap.optimizer),
            (STATE_FILE.to_string(), m.to_json().into_bytes()),
        ];
        files.extend(snap.tokenizer_files);
        write_dir_atomically(&self.0, &files)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl CheckpointDir {
    /// The checkpoint in the directory, as a snapshot.
    pub fn read(&self) -> Result<Snapshot> {
        let meta = self.meta()?;
        let files = crate::io::model_dir::read_dir(&self.0)?;
        let get = |name: &str| files.get(name).cloned().ok_or_else(|| Error::Data { line: 0, message: format!("{} has no {name}: it is not a complete checkpoint", self.0.display()) });
        let tokenizer_files = files.iter().filter(|(n, _)| crate::io::model_dir::TOKENIZER_FILES.contains(&n.as_str())).map(|(n, b)| (n.clone(), b.clone())).collect();
        Ok(Snapshot { weights: get("model.safetensors")?, optimizer: get(crate::train::checkpoint::OPTIMIZER_FILE)?, tokenizer_files, meta })
    }

    /// The metadata of the checkpoint in the directory.
    pub fn meta(&self) -> Result<SnapshotMeta> {
        let p = self.0.join(crate::train::checkpoint::STATE_FILE);
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(p.display(), format!("{e} (is {} a checkpoint written by --checkpoint-every?)", self.0.display())))?;
        SnapshotMeta::parse(&text).map_err(|e| Error::Data { line: 0, message: format!("{}: {e}", p.display()) })
    }
}
