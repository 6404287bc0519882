//! The model's parameters as typed handles, resolved by name once when the model is built (as
//! candle's `VarBuilder` resolves a prefix): each layer holds its tensors' [`Id`]s, so a forward or
//! backward looks nothing up by string.

use crate::error::Result;
use super::config::{Body, Heads, ModelConfig};
use super::params::{Id, ParamStore};

/// A linear layer: weight and bias (none for GPT-2's `score`). Torch's Linear stores the weight
/// (out, in); GPT-2's Conv1D stores it (in, out), which `in_out` says.
#[derive(Debug, Clone, Copy)]
pub(super) struct Lin {
    pub w: Id,
    pub b: Option<Id>,
    pub in_out: bool,
    /// A low-rank adapter on it, when the model has one there.
    pub lora: Option<LoraH>,
}

/// A low-rank adapter: A (r, inp) and B (out, r), added into the output columns `col..col + out`
/// of its projection (a BERT layer's query, key and value share one fused output).
#[derive(Debug, Clone, Copy)]
pub(super) struct LoraH {
    pub a: Id,
    pub b: Id,
    pub r: usize,
    pub inp: usize,
    pub out: usize,
    pub col: usize,
}

/// A LayerNorm: gain and bias (none in ModernBERT's).
#[derive(Debug, Clone, Copy)]
pub(super) struct Norm {
    pub g: Id,
    pub b: Option<Id>,
}

/// One BERT encoder layer.
pub(super) struct BertLayer {
    /// The query, key and value projections' weights and biases (packed side by side).
    pub qkv_w: [Id; 3],
    pub qkv_b: [Id; 3],
    /// Adapters on the query, key and value (columns 0, C and 2C of the fused output).
    pub qkv_lora: [Option<LoraH>; 3],
    pub attn_out: Lin,
    pub attn_ln: Norm,
    pub inter: Lin,
    pub out: Lin,
    pub out_ln: Norm,
}

/// BERT's embeddings.
pub(super) struct BertEmbeddings {
    /// The projection of factorised embeddings to the hidden size (ALBERT, ELECTRA-small).
    pub proj: Option<Lin>,
    pub word: Id,
    pub position: Id,
    /// None for a family without token types (DistilBERT).
    pub token_type: Option<Id>,
    pub ln: Norm,
}

/// The heads a BERT carries (each present or not).
pub(super) struct BertHeads {
    pub pooler: Lin,
    /// A norm after the pooler's activation (ModernBERT's head: dense, GELU, norm).
    pub pooler_norm: Option<Norm>,
    pub sop: Option<Lin>,
    pub classifier: Option<Lin>,
    /// The masked-LM head: transform dense, its LayerNorm, and the output bias (ModernBERT's may
    /// have none).
    pub lm: Option<(Lin, Norm, Option<Id>)>,
}

/// One ModernBERT layer: pre-LN (layer 0 has no attention norm), no biases.
pub(super) struct ModernLayer {
    pub attn_norm: Option<Norm>,
    pub wqkv: Lin,
    pub wo: Lin,
    pub mlp_norm: Norm,
    /// The GeGLU's two halves, [input | gate], in one projection.
    pub wi: Lin,
    pub mlp_wo: Lin,
}

impl ModernLayer {
    pub fn ids(&self) -> Vec<Id> {
        let mut v: Vec<Id> = self.attn_norm.iter().flat_map(|n| n.ids()).chain(self.mlp_norm.ids()).collect();
        for l in [self.wqkv, self.wo, self.wi, self.mlp_wo] {
            v.extend(l.ids());
        }
        v
    }
}

/// One Llama-shaped layer: pre-RMSNorm, q|k|v packed side by side (k and v `kv_heads` wide),
/// Qwen3's per-head norms on q and k, o_proj, the SwiGLU's gate|up packed side by side, down.
pub(super) struct LlamaLayer {
    pub input_norm: Id,
    pub qkv_w: [Id; 3],
    pub qkv_b: Option<[Id; 3]>,
    /// Adapters on q, k and v (columns 0, H·D and (H + KV)·D of the fused output).
    pub qkv_lora: [Option<LoraH>; 3],
    pub q_norm: Option<Id>,
    pub k_norm: Option<Id>,
    pub o_proj: Lin,
    pub post_norm: Id,
    pub gate_up_w: [Id; 2],
    pub gate_up_b: Option<[Id; 2]>,
    /// Adapters on gate and up (columns 0 and I of the fused output).
    pub gate_up_lora: [Option<LoraH>; 2],
    pub down: Lin,
}

impl LlamaLayer {
    pub fn ids(&self) -> Vec<Id> {
        let mut v: Vec<Id> = vec![self.input_norm, self.post_norm];
        v.extend(self.qkv_w.iter().chain(self.qkv_b.iter().flatten()).chain(self.gate_up_w.iter()).chain(self.gate_up_b.iter().flatten()));
        v.extend(self.q_norm.iter().chain(self.k_norm.iter()));
        v.extend(self.qkv_lora.iter().chain(self.gate_up_lora.iter()).flatten().flat_map(|l| [l.a, l.b]));
        v.extend(self.o_proj.ids().chain(self.down.ids()));
        v
    }
}

/// One GPT-2 layer.
pub(super) struct Gpt2Layer {
    pub ln_1: Norm,
    pub c_attn: Lin,
    pub c_proj: Lin,
    pub ln_2: Norm,
    pub c_fc: Lin,
    pub mlp_proj: Lin,
}

impl Lin {
    pub fn ids(&self) -> impl Iterator<Item = Id> {
        std::iter::once(self.w).chain(self.b).chain(self.lora.into_iter().flat_map(|l| [l.a, l.b]))
    }
}

impl Norm {
    pub fn ids(&self) -> Vec<Id> {
        std::iter::once(self.g).chain(self.b).collect()
    }
}

impl BertEmbeddings {
    pub fn ids(&self) -> Vec<Id> {
        [self.word, self.position].into_iter().chain(self.token_type).chain(self.ln.ids()).chain(self.proj.iter().flat_map(|p| p.ids().collect::<Vec<_>>())).collect()
    }
}

impl BertLayer {
    pub fn ids(&self) -> Vec<Id> {
        let mut v: Vec<Id> = self.qkv_w.into_iter().chain(self.qkv_b).chain(self.qkv_lora.iter().flatten().flat_map(|l| [l.a, l.b])).collect();
        for l in [self.attn_out, self.inter, self.out] {
            v.extend(l.ids());
        }
        v.extend(self.attn_ln.ids().into_iter().chain(self.out_ln.ids()));
        v
    }
}

impl Gpt2Layer {
    pub fn ids(&self) -> Vec<Id> {
        let mut v: Vec<Id> = self.ln_1.ids().into_iter().chain(self.ln_2.ids()).collect();
        for l in [self.c_attn, self.c_proj, self.c_fc, self.mlp_proj] {
            v.extend(l.ids());
        }
        v
    }
}

/// Every parameter of the model, by its role.
pub(super) enum Handles {
    Bert { emb: BertEmbeddings, layers: Vec<BertLayer>, heads: BertHeads },
    /// `score`: GPT2ForSequenceClassification's head (no bias), when the model classifies.
    Gpt2 { wte: Id, wpe: Id, layers: Vec<Gpt2Layer>, ln_f: Norm, score: Option<Lin> },
    Modern { word: Id, emb_norm: Norm, layers: Vec<ModernLayer>, final_norm: Norm, heads: BertHeads },
    /// `lm_head`: the LM head's own table where it is not tied to `embed`; `score` the classifier
    /// (no bias) on the last token.
    Llama { embed: Id, layers: Vec<LlamaLayer>, norm: Id, lm_head: Option<Id>, score: Option<Lin> },
}

impl Handles {
    /// The classification head of either body: BERT's `classifier`, GPT-2's `score`.
    pub(super) fn classifier(&self) -> Option<Lin> {
        match self {
            Handles::Bert { heads, .. } | Handles::Modern { heads, .. } => heads.classifier,
            Handles::Gpt2 { score, .. } | Handles::Llama { score, .. } => *score,
        }
    }
}

/// Names under a prefix, resolved in one store.
struct Names<'a> {
    store: &'a ParamStore,
    prefix: String,
}

impl<'a> Names<'a> {
    fn at(store: &'a ParamStore, prefix: impl Into<String>) -> Names<'a> {
        Names { store, prefix: prefix.into() }
    }
    fn id(&self, rest: &str) -> Result<Id> {
        let name = if self.prefix.is_empty() { rest.to_string() } else { format!("{}.{rest}", self.prefix) };
        self.store.id(&name)
    }
    fn lin(&self, rest: &str) -> Result<Lin> {
        Ok(Lin { w: self.id(&format!("{rest}.weight"))?, b: Some(self.id(&format!("{rest}.bias"))?), in_out: false, lora: self.lora(rest, 0) })
    }
    /// The adapter on `rest`, writing its output from column `col`, if the store has one.
    fn lora(&self, rest: &str, col: usize) -> Option<LoraH> {
        let a = self.id(&format!("{rest}.lora_A.weight")).ok()?;
        let b = self.id(&format!("{rest}.lora_B.weight")).ok()?;
        let (r, inp) = (self.store.shape(a)[0], self.store.shape(a)[1]);
        Some(LoraH { a, b, r, inp, out: self.store.shape(b)[0], col })
    }
    /// A linear layer without a bias (ModernBERT's).
    fn lin_no_bias(&self, rest: &str) -> Result<Lin> {
        Ok(Lin { w: self.id(&format!("{rest}.weight"))?, b: None, in_out: false, lora: self.lora(rest, 0) })
    }
    /// A linear layer with a bias where the store has one.
    fn lin_maybe_bias(&self, rest: &str) -> Result<Lin> {
        Ok(Lin { b: self.id(&format!("{rest}.bias")).ok(), ..self.lin_no_bias(rest)? })
    }
    /// GPT-2's Conv1D: a linear layer whose weight is stored (in, out).
    fn conv1d(&self, rest: &str) -> Result<Lin> {
        Ok(Lin { in_out: true, ..self.lin(rest)? })
    }
    fn norm(&self, rest: &str) -> Result<Norm> {
        Ok(Norm { g: self.id(&format!("{rest}.weight"))?, b: Some(self.id(&format!("{rest}.bias"))?) })
    }
    /// A LayerNorm without a bias (ModernBERT's).
    fn norm_no_bias(&self, rest: &str) -> Result<Norm> {
        Ok(Norm { g: self.id(&format!("{rest}.weight"))?, b: None })
    }
}

impl Handles {
    /// The handles of a model with `cfg` and `heads` whose tensors are in `store`.
    pub(super) fn resolve(store: &ParamStore, cfg: &ModelConfig, heads: Heads) -> Result<Handles> {
        let root = Names::at(store, "");
        if cfg.body == Body::Gpt2 {
            let layers = (0..cfg.num_hidden_layers)
                .map(|l| {
                    let n = Names::at(store, format!("h.{l}"));
                    Ok(Gpt2Layer { ln_1: n.norm("ln_1")?, c_attn: n.conv1d("attn.c_attn")?, c_proj: n.conv1d("attn.c_proj")?, ln_2: n.norm("ln_2")?, c_fc: n.conv1d("mlp.c_fc")?, mlp_proj: n.conv1d("mlp.c_proj")? })
                })
                .collect::<Result<_>>()?;
            let score = if heads.num_labels > 0 { Some(Lin { w: root.id("score.weight")?, b: None, in_out: false, lora: None }) } else { None };
            return Ok(Handles::Gpt2 { wte: root.id("wte.weight")?, wpe: root.id("wpe.weight")?, layers, ln_f: root.norm("ln_f")?, score });
        }
        if cfg.body == Body::Llama {
            let (q, kv, i) = (cfg.q_width(), cfg.kv_heads() * cfg.head_dim(), cfg.intermediate_size);
            let layers = (0..cfg.num_hidden_layers)
                .map(|l| {
                    let n = Names::at(store, format!("layers.{l}"));
                    let ids = |names: &[&str], part: &str| -> Result<Vec<Id>> { names.iter().map(|m| n.id(&format!("{m}.{part}"))).collect() };
                    let qkv = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"];
                    let gu = ["mlp.gate_proj", "mlp.up_proj"];
                    let three = |v: Vec<Id>| [v[0], v[1], v[2]];
                    let two = |v: Vec<Id>| [v[0], v[1]];
                    Ok(LlamaLayer {
                        input_norm: n.id("input_layernorm.weight")?,
                        qkv_w: three(ids(&qkv, "weight")?),
                        qkv_b: ids(&qkv, "bias").ok().map(three),
                        qkv_lora: [n.lora(qkv[0], 0), n.lora(qkv[1], q), n.lora(qkv[2], q + kv)],
                        q_norm: n.id("self_attn.q_norm.weight").ok(),
                        k_norm: n.id("self_attn.k_norm.weight").ok(),
                        o_proj: n.lin_maybe_bias("self_attn.o_proj")?,
                        post_norm: n.id("post_attention_layernorm.weight")?,
                        gate_up_w: two(ids(&gu, "weight")?),
                        gate_up_b: ids(&gu, "bias").ok().map(two),
                        gate_up_lora: [n.lora(gu[0], 0), n.lora(gu[1], i)],
                        down: n.lin_maybe_bias("mlp.down_proj")?,
                    })
                })
                .collect::<Result<_>>()?;
            let score = if heads.num_labels > 0 { Some(Lin { w: root.id("score.weight")?, b: None, in_out: false, lora: None }) } else { None };
            let lm_head = if heads.lm { root.id("lm_head.weight").ok() } else { None };
            return Ok(Handles::Llama { embed: root.id("embed_tokens.weight")?, layers, norm: root.id("norm.weight")?, lm_head, score });
        }
        if cfg.body == Body::Modern {
            let layers = (0..cfg.num_hidden_layers)
                .map(|l| {
                    let n = Names::at(store, format!("layers.{l}"));
                    Ok(ModernLayer {
                        attn_norm: if l > 0 { Some(n.norm_no_bias("attn_norm")?) } else { None },
                        wqkv: n.lin_no_bias("attn.Wqkv")?,
                        wo: n.lin_no_bias("attn.Wo")?,
                        mlp_norm: n.norm_no_bias("mlp_norm")?,
                        wi: n.lin_no_bias("mlp.Wi")?,
                        mlp_wo: n.lin_no_bias("mlp.Wo")?,
                    })
                })
                .collect::<Result<_>>()?;
            let lm = if heads.lm {
                let c = Names::at(store, "cls.predictions");
                Some((c.lin_maybe_bias("transform.dense")?, c.norm_no_bias("transform.LayerNorm")?, c.id("bias").ok()))
            } else {
                None
            };
            let hh = BertHeads {
                pooler: root.lin_maybe_bias("pooler.dense")?,
                pooler_norm: Some(root.norm_no_bias("pooler.norm")?),
                sop: if heads.sop { Some(root.lin("cls.seq_relationship")?) } else { None },
                classifier: if heads.num_labels > 0 { Some(root.lin("classifier")?) } else { None },
                lm,
            };
            return Ok(Handles::Modern { word: root.id("embeddings.tok_embeddings.weight")?, emb_norm: root.norm_no_bias("embeddings.norm")?, layers, final_norm: root.norm_no_bias("final_norm")?, heads: hh });
        }
        let e = Names::at(store, "embeddings");
        let emb = BertEmbeddings { proj: if cfg.embedding_size.is_some() { Some(e.lin("projection")?) } else { None }, word: e.id("word_embeddings.weight")?, position: e.id("position_embeddings.weight")?, token_type: if cfg.type_vocab_size > 0 { Some(e.id("token_type_embeddings.weight")?) } else { None }, ln: e.norm("LayerNorm")? };
        let layers = (0..cfg.num_hidden_layers)
            .map(|l| {
                // ALBERT's every layer is the one shared set: its uses' gradients add up (every
                // weight gradient accumulates)
                let n = Names::at(store, format!("encoder.layer.{}", if cfg.shared_layers { 0 } else { l }));
                let part = |p: &str| -> Result<[Id; 3]> { Ok([n.id(&format!("attention.self.query.{p}"))?, n.id(&format!("attention.self.key.{p}"))?, n.id(&format!("attention.self.value.{p}"))?]) };
                let c = cfg.hidden_size;
                Ok(BertLayer {
                    qkv_w: part("weight")?,
                    qkv_b: part("bias")?,
                    qkv_lora: [n.lora("attention.self.query", 0), n.lora("attention.self.key", c), n.lora("attention.self.value", 2 * c)],
                    attn_out: n.lin("attention.output.dense")?,
                    attn_ln: n.norm("attention.output.LayerNorm")?,
                    inter: n.lin("intermediate.dense")?,
                    out: n.lin("output.dense")?,
                    out_ln: n.norm("output.LayerNorm")?,
                })
            })
            .collect::<Result<_>>()?;
        let lm = if heads.lm {
            let c = Names::at(store, "cls.predictions");
            Some((c.lin("transform.dense")?, c.norm("transform.LayerNorm")?, Some(c.id("bias")?)))
        } else {
            None
        };
        let heads = BertHeads {
            pooler: root.lin("pooler.dense")?,
            pooler_norm: None,
            sop: if heads.sop { Some(root.lin("cls.seq_relationship")?) } else { None },
            classifier: if heads.num_labels > 0 { Some(root.lin("classifier")?) } else { None },
            lm,
        };
        Ok(Handles::Bert { emb, layers, heads })
    }
}
