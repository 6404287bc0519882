//! Parameters, gradients and AdamW moments as GPU buffers, one per tensor, named exactly as Hugging
//! Face's `BertModel` names them (without the `bert.` prefix) plus the heads' `cls.*` and
//! `classifier.*` names. One buffer per tensor keeps every binding within WebGPU's 128 MiB default
//! (BERT-base's word embedding is 94 MB) while arenas would not.

use std::collections::BTreeMap;

use super::config::BertConfig;
use crate::gpu::{DType, Gpu, GpuBuf, GpuError};
use crate::io::safetensors::{self, SafeTensors};

pub struct Param {
    pub name: String,
    pub shape: Vec<usize>,
    pub value: GpuBuf,
    /// Allocated when the parameter first becomes trainable.
    pub grad: Option<GpuBuf>,
    pub m: Option<GpuBuf>,
    pub v: Option<GpuBuf>,
    pub trainable: bool,
}

impl Param {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// HF Trainer's groups: no weight decay on biases and LayerNorm weights.
    pub fn decays(&self) -> bool {
        !(self.name.ends_with("bias") || self.name.contains("LayerNorm"))
    }
}

#[derive(Default)]
pub struct ParamStore {
    pub params: Vec<Param>,
    index: BTreeMap<String, usize>,
}

/// What loading a checkpoint did, for the UI and the tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    pub loaded: Vec<String>,
    /// Parameters the checkpoint lacked that were initialised fresh (e.g. an MLM head on MiniLM).
    pub initialised: Vec<String>,
    /// Tensors in the file that the model does not use.
    pub unused: Vec<String>,
}

/// Every tensor a BERT with `cfg` has: (name, shape). `heads` picks which heads exist.
pub fn tensor_names(cfg: &BertConfig, mlm: bool, sop: bool, num_labels: usize) -> Vec<(String, Vec<usize>)> {
    let (c, i, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let mut t: Vec<(String, Vec<usize>)> = Vec::new();
    let lin = |t: &mut Vec<(String, Vec<usize>)>, p: &str, out: usize, inp: usize| {
        t.push((format!("{p}.weight"), vec![out, inp]));
        t.push((format!("{p}.bias"), vec![out]));
    };
    let ln = |t: &mut Vec<(String, Vec<usize>)>, p: &str| {
        t.push((format!("{p}.weight"), vec![c]));
        t.push((format!("{p}.bias"), vec![c]));
    };
    t.push(("embeddings.word_embeddings.weight".into(), vec![v, c]));
    t.push(("embeddings.position_embeddings.weight".into(), vec![cfg.max_position_embeddings, c]));
    t.push(("embeddings.token_type_embeddings.weight".into(), vec![cfg.type_vocab_size, c]));
    ln(&mut t, "embeddings.LayerNorm");
    for l in 0..cfg.num_hidden_layers {
        let p = format!("encoder.layer.{l}");
        for qkv in ["query", "key", "value"] {
            lin(&mut t, &format!("{p}.attention.self.{qkv}"), c, c);
        }
        lin(&mut t, &format!("{p}.attention.output.dense"), c, c);
        ln(&mut t, &format!("{p}.attention.output.LayerNorm"));
        lin(&mut t, &format!("{p}.intermediate.dense"), i, c);
        lin(&mut t, &format!("{p}.output.dense"), c, i);
        ln(&mut t, &format!("{p}.output.LayerNorm"));
    }
    lin(&mut t, "pooler.dense", c, c);
    if mlm {
        lin(&mut t, "cls.predictions.transform.dense", c, c);
        ln(&mut t, "cls.predictions.transform.LayerNorm");
        t.push(("cls.predictions.bias".into(), vec![v]));
    }
    if sop {
        lin(&mut t, "cls.seq_relationship", 2, c);
    }
    if num_labels > 0 {
        lin(&mut t, "classifier", num_labels, c);
    }
    t
}

/// BERT's initialisation: normal(0, 0.02) weights, zero biases, LayerNorm weight 1.
pub fn init_value(name: &str, shape: &[usize], seed: u64) -> Vec<f32> {
    let n: usize = shape.iter().product();
    if name.contains("LayerNorm.weight") {
        return vec![1.0; n];
    }
    if name.ends_with("bias") {
        return vec![0.0; n];
    }
    let mut rng = crate::rng::Rng::new(seed ^ fnv(name));
    rng.normals(n, 0.02)
}

/// The name Hugging Face's BertFor* classes store a parameter under.
pub fn hf_name(name: &str) -> String {
    if name.starts_with("cls.") || name.starts_with("classifier.") {
        name.to_string()
    } else {
        format!("bert.{name}")
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// Hugging Face checkpoints name the same tensor in several ways; this maps a stored name to ours.
fn canonical(stored: &str) -> String {
    let s = stored.strip_prefix("bert.").unwrap_or(stored);
    let s = s.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias");
    // BertForMaskedLM stores the decoder's bias twice (tied); ours is cls.predictions.bias.
    if s == "cls.predictions.decoder.bias" {
        return "cls.predictions.bias".into();
    }
    s
}

impl ParamStore {
    pub fn get(&self, name: &str) -> Option<&Param> {
        self.index.get(name).map(|&i| &self.params[i])
    }

    /// The value buffer of `name`; panics only on a programming error (the model asks for names
    /// it created).
    pub fn w(&self, name: &str) -> &GpuBuf {
        &self.params[self.index[name]].value
    }

    pub fn grad(&self, name: &str) -> Option<&GpuBuf> {
        let p = &self.params[self.index[name]];
        if p.trainable {
            p.grad.as_ref()
        } else {
            None
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    pub fn total_params(&self) -> usize {
        self.params.iter().map(|p| p.numel()).sum()
    }

    /// Builds every tensor of `names`, taking values from `file` where it has them (any dtype, with
    /// or without `bert.`, legacy gamma/beta) and initialising the rest. Shape mismatches, and
    /// encoder tensors missing from the file, are errors naming each tensor.
    pub fn load(gpu: &Gpu, names: &[(String, Vec<usize>)], file: Option<&SafeTensors>, seed: u64) -> Result<(ParamStore, LoadReport), String> {
        let mut by_name: BTreeMap<String, &safetensors::TensorView> = BTreeMap::new();
        let mut unused: Vec<String> = Vec::new();
        if let Some(f) = file {
            for (stored, view) in &f.tensors {
                let c = canonical(stored);
                if c == "cls.predictions.decoder.weight" || c.ends_with("position_ids") {
                    continue; // tied to the word embeddings / a buffer, not a parameter
                }
                by_name.insert(c, view);
            }
            let wanted: std::collections::BTreeSet<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
            unused = by_name.keys().filter(|k| !wanted.contains(k.as_str())).cloned().collect();
        }
        let mut problems = Vec::new();
        let mut report = LoadReport { unused, ..Default::default() };
        let mut store = ParamStore::default();
        for (name, shape) in names {
            let values = match by_name.get(name) {
                Some(view) => {
                    if view.shape != *shape {
                        problems.push(format!("{name}: the checkpoint has shape {:?}, the config needs {shape:?}", view.shape));
                        continue;
                    }
                    report.loaded.push(name.clone());
                    view.to_f32()
                }
                None => {
                    let is_head = name.starts_with("cls.") || name.starts_with("classifier.");
                    if file.is_some() && !is_head && !name.starts_with("pooler.") {
                        problems.push(format!("{name}: missing from the checkpoint"));
                        continue;
                    }
                    report.initialised.push(name.clone());
                    init_value(name, shape, seed)
                }
            };
            let value = gpu.upload_f32(name, &values).map_err(|e| e.to_string())?;
            store.index.insert(name.clone(), store.params.len());
            store.params.push(Param { name: name.clone(), shape: shape.clone(), value, grad: None, m: None, v: None, trainable: false });
        }
        if !problems.is_empty() {
            let mut msg = format!("the checkpoint does not fit the model config ({} problems):\n  ", problems.len());
            msg.push_str(&problems.join("\n  "));
            if !report.unused.is_empty() {
                msg.push_str(&format!("\n  unexpected tensors in the checkpoint: {}", report.unused.join(", ")));
            }
            return Err(msg);
        }
        Ok((store, report))
    }

    /// Marks the parameters for which `pred(name)` holds as trainable (allocating their gradient and
    /// moments) and the others as frozen.
    pub fn set_trainable(&mut self, gpu: &Gpu, pred: impl Fn(&str) -> bool) -> Result<(), GpuError> {
        for p in &mut self.params {
            p.trainable = pred(&p.name);
            if p.trainable && p.grad.is_none() {
                let n = p.numel();
                p.grad = Some(gpu.zeros(&format!("{}.grad", p.name), n, DType::F32)?);
                p.m = Some(gpu.zeros(&format!("{}.m", p.name), n, DType::F32)?);
                p.v = Some(gpu.zeros(&format!("{}.v", p.name), n, DType::F32)?);
            }
        }
        Ok(())
    }

    /// Reads every parameter back as (HF name, shape, values), for export and tests.
    pub async fn read_all(&self, gpu: &Gpu) -> Result<Vec<(String, Vec<usize>, Vec<f32>)>, GpuError> {
        let mut out = Vec::new();
        for p in &self.params {
            let mut v = gpu.read_f32(&p.value).await?;
            v.truncate(p.numel());
            out.push((p.name.clone(), p.shape.clone(), v));
        }
        Ok(out)
    }
}
