//! Checkpoints between steps: the weights (safetensors, the model's own tensor names, loadable like
//! any checkpoint) and the optimizer (a second safetensors file with each trainable tensor's AdamW
//! moments `NAME::m`, `NAME::v` and the optimizer's GPU state `adamw::state`, plus the step in the
//! metadata). The CLI writes them beside an HF export; the browser stores them in IndexedDB.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

use crate::gpu::Gpu;
use crate::safetensors;
use crate::kernels::adamw::AdamWState;
use crate::model::Model;

pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const STATE_FILE: &str = "trainer_state.json";

/// The weights as safetensors bytes (model names, F32).
pub async fn weights_bytes(gpu: &Gpu, model: &Model) -> Result<Vec<u8>> {
    let all = model.params.read_all(gpu).await?;
    Ok(safetensors::serialize(&all, &BTreeMap::new()))
}

/// The optimizer state after `step` optimizer steps: moments of every trainable tensor and the
/// AdamW state. A model that has not stepped yet has no moments to save: the file then holds only
/// the step.
pub async fn optimizer_bytes(gpu: &Gpu, model: &Model, step: usize) -> Result<Vec<u8>> {
    let mut tensors = Vec::new();
    if let Some(st) = &model.opt_state {
        for p in model.params.params.iter().filter(|p| p.trainable) {
            let n = p.numel();
            for (suffix, buf) in [("m", p.m.as_ref()), ("v", p.v.as_ref())] {
                let mut v = gpu.read_f32(buf.ok_or_else(|| Error::Internal("a trainable tensor has no moments".into()))?).await?;
                v.truncate(n);
                tensors.push((format!("{}::{suffix}", p.name), p.shape.clone(), v));
            }
        }
        let mut s = gpu.read_f32(&st.state).await?;
        s.truncate(8);
        tensors.push(("adamw::state".to_string(), vec![8], s));
    }
    let meta = BTreeMap::from([("step".to_string(), step.to_string()), ("format".to_string(), "bertlab-optimizer-1".to_string())]);
    Ok(safetensors::serialize(&tensors, &meta))
}

/// Reads an optimizer checkpoint without a GPU: its step, the tensors it has moments for, and the
/// parsed file. Checks the format tag, the step, that each tensor has both moments of one shape,
/// and that a file with moments has the AdamW state (8 values).
pub fn optimizer_header(bytes: &[u8]) -> Result<(usize, std::collections::BTreeSet<String>, safetensors::SafeTensors<'_>)> {
    let st = safetensors::parse(bytes).map_err(|e| Error::Data { line: 0, message: format!("{OPTIMIZER_FILE}: {e}") })?;
    if st.metadata.get("format").map(|s| s.as_str()) != Some("bertlab-optimizer-1") {
        return Err(Error::Data { line: 0, message: format!("{OPTIMIZER_FILE} is not a BERT Lab optimizer checkpoint") });
    }
    let step: usize = st.metadata.get("step").and_then(|s| s.parse().ok()).ok_or_else(|| Error::Data { line: 0, message: "the optimizer checkpoint has no step".into() })?;
    let trained: std::collections::BTreeSet<String> = st.tensors.keys().filter_map(|k| k.strip_suffix("::m").map(String::from)).collect();
    for name in &trained {
        let m = &st.tensors[&format!("{name}::m")];
        let v = st.tensors.get(&format!("{name}::v")).ok_or_else(|| Error::Data { line: 0, message: format!("{name}::v is missing from the optimizer checkpoint") })?;
        if m.shape != v.shape {
            return Err(Error::Shape { tensor: name.to_string(), message: format!("{name}: its moments have shapes {:?} and {:?}", m.shape, v.shape) });
        }
    }
    if !trained.is_empty() {
        let s = st.tensors.get("adamw::state").ok_or_else(|| Error::Data { line: 0, message: "adamw::state is missing from the optimizer checkpoint".into() })?;
        if s.shape != [8] {
            return Err(Error::Shape { tensor: "adamw::state".into(), message: format!("adamw::state has shape {:?}, not [8]", s.shape) });
        }
    }
    Ok((step, trained, st))
}

/// Restores what [`optimizer_bytes`] saved into `model` (same tensors): marks the saved tensors
/// trainable, writes their moments and the AdamW state. Returns the step to continue from.
pub fn restore_optimizer(gpu: &Gpu, model: &mut Model, bytes: &[u8]) -> Result<usize> {
    let (step, trained, st) = optimizer_header(bytes)?;
    if trained.is_empty() {
        return Ok(step);
    }
    for name in &trained {
        let p = model.params.get(name).ok_or_else(|| Error::Shape { tensor: name.to_string(), message: format!("the optimizer checkpoint has moments for {name}, which this model lacks") })?;
        for suffix in ["m", "v"] {
            let v = st.tensors.get(&format!("{name}::{suffix}")).ok_or_else(|| Error::Data { line: 0, message: format!("{name}::{suffix} is missing from the optimizer checkpoint") })?;
            if v.shape != p.shape {
                return Err(Error::Shape { tensor: format!("{name}::{suffix}"), message: format!("{name}::{suffix}: shape {:?} in the checkpoint, {:?} in the model", v.shape, p.shape) });
            }
        }
    }
    model.params.set_trainable(gpu, |p| trained.contains(&p.name))?;
    for p in model.params.params.iter().filter(|p| p.trainable) {
        for (suffix, buf) in [("m", p.m.as_ref().unwrap()), ("v", p.v.as_ref().unwrap())] {
            gpu.write(buf, 0, &st.tensors[&format!("{}::{suffix}", p.name)].to_f32())?;
        }
    }
    let state = AdamWState::new(gpu, model.params.adamw_slots((gpu.info.max_storage_buffer_binding_size / 4) as usize))?;
    let s = st.tensors.get("adamw::state").ok_or_else(|| Error::Data { line: 0, message: "adamw::state is missing from the optimizer checkpoint".into() })?.to_f32();
    gpu.write(&state.state, 0, &s)?;
    model.opt_state = Some(state);
    Ok(step)
}

/// Writes `files` as the directory `dir` so that a process killed at any moment (SIGKILL, power
/// loss of the page cache aside) leaves either the previous complete directory or the new one:
/// the files go to `DIR.new`, then the old directory steps aside to `DIR.old`, `DIR.new` becomes
/// `DIR`, and `DIR.old` is removed. Between the two renames only `DIR.old` exists; [`resolve`]
/// finds it.
#[cfg(not(target_arch = "wasm32"))]
pub fn write_dir_atomically(dir: &std::path::Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    use std::io::Write;
    let with = |suffix: &str| {
        let mut s = dir.as_os_str().to_owned();
        s.push(suffix);
        std::path::PathBuf::from(s)
    };
    let (new, old) = (with(".new"), with(".old"));
    let e = |p: &std::path::Path, err: std::io::Error| Error::io(p.display(), err);
    if new.exists() {
        std::fs::remove_dir_all(&new).map_err(|x| e(&new, x))?;
    }
    std::fs::create_dir_all(&new).map_err(|x| e(&new, x))?;
    for (name, bytes) in files {
        let p = new.join(name);
        let mut f = std::fs::File::create(&p).map_err(|x| e(&p, x))?;
        f.write_all(bytes).map_err(|x| e(&p, x))?;
        f.sync_all().map_err(|x| e(&p, x))?;
    }
    if dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|x| e(&old, x))?;
        }
        std::fs::rename(dir, &old).map_err(|x| e(dir, x))?;
    }
    std::fs::rename(&new, dir).map_err(|x| e(&new, x))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|x| e(&old, x))?;
    }
    Ok(())
}

/// The directory to resume from: `dir`, or `DIR.old` when a kill came between
/// [`write_dir_atomically`]'s two renames (with a note saying so).
#[cfg(not(target_arch = "wasm32"))]
pub fn resolve(dir: &std::path::Path) -> (std::path::PathBuf, Option<String>) {
    if dir.exists() {
        return (dir.to_path_buf(), None);
    }
    let mut s = dir.as_os_str().to_owned();
    s.push(".old");
    let old = std::path::PathBuf::from(s);
    if old.exists() {
        let note = format!("{} is missing (the last checkpoint write was interrupted); resuming from the previous one, {}", dir.display(), old.display());
        return (old, Some(note));
    }
    (dir.to_path_buf(), None)
}
