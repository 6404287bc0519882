//! The command line's arguments, as clap derives them: one struct per subcommand, each flag with its
//! help text. `bertlab.rs` turns them into calls on the session.

use clap::{Parser, Subcommand, ValueEnum};

/// bertlab: pretrain, fine-tune and probe BERT (and GPT-2) models on the GPU (wgpu)
#[derive(Parser)]
#[command(name = "bertlab", version, after_help = "Every command takes --json to print machine-readable results on stdout, and --quiet to hide its progress bars.")]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
    /// print machine-readable results (JSON) on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// no progress bars
    #[arg(long, global = true)]
    pub quiet: bool,
    /// the base model of a LoRA adapter given as --model (default: the base its adapter_config.json names)
    #[arg(long, global = true, value_name = "DIR")]
    pub base: Option<String>,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// masked-LM and/or sentence-order pretraining on unlabeled text, or next-word (--objective causal)
    Pretrain(PretrainArgs),
    /// fine-tune a classifier on labeled text (feature-based, last N layers, or all)
    Train(TrainArgs),
    /// accuracy, macro-F1 and confusion matrix of a classifier on labeled text
    Eval(EvalArgs),
    /// class probabilities for texts
    Predict(TextsArgs),
    /// mean-pooled sentence embeddings (the last hidden states over each text's tokens)
    Embed(TextsArgs),
    /// what a model is: its family, layers, heads and tokenizer
    Info(InfoArgs),
    /// top-k predictions for every [MASK] in a text
    FillMask(FillMaskArgs),
    /// continue a prompt with a causal model (pretrain --objective causal, or a GPT-2), token by token
    Generate(GenerateArgs),
    /// write a model directory in Hugging Face's format (any checkpoint BERT Lab reads: prefixes, legacy names, F16/BF16)
    Export(ExportArgs),
    /// kernel benchmark (GFLOP/s, GB/s), or with --step a training-step benchmark
    Bench(BenchArgs),
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum Objective {
    /// masked words and sentence order (BERT's)
    #[value(name = "mlm+sop", alias = "sop+mlm")]
    MlmSop,
    Mlm,
    Sop,
    /// a decoder that learns the next word, as GPT does; every 10th line is held out, and its
    /// next-token accuracy is reported beside a unigram baseline's
    Causal,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum BodyArg {
    /// BERT's post-LN layers with causal attention (transformers' BertLMHeadModel)
    Bert,
    /// GPT-2's pre-LN layers, learned positions, gelu_new (exported as GPT2LMHeadModel)
    Gpt2,
    /// the Llama-shaped decoders' layers (SmolLM2's: RMSNorm, rotary positions, SwiGLU,
    /// grouped-query attention; exported as LlamaForCausalLM)
    Llama,
}

#[derive(clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct PretrainArgs {
    /// unlabeled text, one document per line (several sentences each for sentence order)
    #[arg(long, value_name = "FILE")]
    pub corpus: String,
    /// where the model is written (Hugging Face's layout)
    #[arg(long, value_name = "DIR")]
    pub out: String,
    /// continue from a checkpoint (an MLM head is added if it has none); default: from scratch
    #[arg(long, value_name = "DIR")]
    pub model: Option<String>,
    /// WordPiece vocabulary to train for a from-scratch model
    #[arg(long, default_value_t = 2000)]
    pub vocab: usize,
    /// from-scratch hidden size
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// from-scratch layers
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    /// from-scratch attention heads
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    #[arg(long, default_value_t = 300)]
    pub steps: usize,
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,
    #[arg(long = "max-len", default_value_t = 64)]
    pub max_len: usize,
    /// warm-up steps (default: 10% of the steps)
    #[arg(long)]
    pub warmup: Option<usize>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, value_enum, default_value = "mlm+sop")]
    pub objective: Objective,
    /// the from-scratch decoder's body (with --objective causal)
    #[arg(long, value_enum)]
    pub body: Option<BodyArg>,
    /// turn off masked-LM
    #[arg(long = "no-mlm")]
    pub no_mlm: bool,
    /// turn off sentence order
    #[arg(long = "no-sop")]
    pub no_sop: bool,
    /// print the top predictions at TEXT's [MASK]s every --probe-every steps
    #[arg(long, value_name = "TEXT")]
    pub probe: Option<String>,
    #[arg(long = "probe-every", default_value_t = 50)]
    pub probe_every: usize,
    /// full (every weight) | lora:R (low-rank adapters of rank R on a --model, saved in PEFT's
    /// format; BERT's pretraining heads train beside them) [default: full]
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
    #[command(flatten)]
    pub lora: LoraArgs,
}

#[derive(clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    /// labeled text: TSV/CSV (label, text[, text_b]), or JSON lines {"text", "label"}
    #[arg(long, value_name = "FILE")]
    pub data: String,
    /// a BERT in Hugging Face's layout (e.g. models/all-MiniLM-L6-v2); not with --resume
    #[arg(long, value_name = "DIR", required_unless_present = "resume")]
    pub model: Option<String>,
    #[arg(long, value_name = "DIR")]
    pub out: String,
    /// feature (frozen encoder, head only) | last:N (the last N layers) | full | lora:R (low-rank
    /// adapters of rank R, saved in PEFT's format) [default: full]
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
    #[command(flatten)]
    pub lora: LoraArgs,
    /// [default: 3]
    #[arg(long)]
    pub epochs: Option<usize>,
    /// [default: 16]
    #[arg(long)]
    pub batch: Option<usize>,
    /// [default: 5e-5; 1e-3 for feature]
    #[arg(long)]
    pub lr: Option<f32>,
    /// [default: 128]
    #[arg(long = "max-len")]
    pub max_len: Option<usize>,
    /// the validation fraction [default: 0.2]
    #[arg(long)]
    pub val: Option<f64>,
    /// [default: 42]
    #[arg(long)]
    pub seed: Option<u64>,
    /// early stopping after N epochs without a better validation loss [default: off]
    #[arg(long, value_name = "N")]
    pub patience: Option<usize>,
    /// cls (HF's pooler; exported as BertForSequenceClassification) | mean (masked mean of the last hidden states; exported as BertModel + classifier_head.safetensors) | last (a causal model's last token: GPT2ForSequenceClassification, or for a GPT-style BERT BertModel + classifier_head.safetensors) [default: cls, last for a causal model]
    #[arg(long, value_name = "P")]
    pub pooling: Option<String>,
    /// write OUT/checkpoint (weights, optimizer state, step) every N steps
    #[arg(long = "checkpoint-every", value_name = "N", default_value_t = 0)]
    pub checkpoint_every: usize,
    /// continue the run checkpointed in DIR (same data and options; the model comes from DIR)
    #[arg(long, value_name = "DIR")]
    pub resume: Option<String>,
    /// dropout off (deterministic steps, to compare a run with another implementation's)
    #[arg(long = "no-dropout")]
    pub no_dropout: bool,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    #[arg(long, value_name = "FILE")]
    pub data: String,
    #[arg(long, value_name = "DIR")]
    pub model: String,
    #[arg(long = "max-len", default_value_t = 128)]
    pub max_len: usize,
}

#[derive(clap::Args)]
pub struct TextsArgs {
    #[arg(long, value_name = "DIR")]
    pub model: String,
    /// one text
    #[arg(long, required_unless_present = "file", conflicts_with = "file")]
    pub text: Option<String>,
    /// one text per line
    #[arg(long, value_name = "FILE")]
    pub file: Option<String>,
    #[arg(long = "max-len", default_value_t = 128)]
    pub max_len: usize,
}

#[derive(clap::Args)]
pub struct FillMaskArgs {
    #[arg(long, value_name = "DIR")]
    pub model: String,
    /// e.g. "The curious kitten deftly [MASK] the bookshelf"
    #[arg(long)]
    pub text: String,
    #[arg(long = "top-k", default_value_t = 5)]
    pub top_k: usize,
}

#[derive(clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct GenerateArgs {
    /// a causal model (`bertlab pretrain --objective causal` makes one), or a GPT-2
    #[arg(long, value_name = "DIR")]
    pub model: String,
    /// the text to continue
    #[arg(long)]
    pub prompt: String,
    /// tokens to add at most (stops early at the end of a text)
    #[arg(long = "max-new", default_value_t = 20)]
    pub max_new: usize,
    /// 1: greedy, always the most likely token; K > 1: sample among the K most likely
    #[arg(long = "top-k", default_value_t = 1)]
    pub top_k: usize,
    /// sharpen (< 1) or flatten (> 1) the distribution when sampling
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// the sampling seed: the same seed gives the same text
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(clap::Args)]
pub struct InfoArgs {
    #[arg(long, value_name = "DIR")]
    pub model: String,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[arg(long, value_name = "DIR")]
    pub model: String,
    #[arg(long, value_name = "DIR")]
    pub out: String,
    /// a model with LoRA adapters: write a plain model with them folded into its weights
    #[arg(long)]
    pub merge: bool,
}

#[derive(clap::Args)]
#[command(after_help = "--step runs one full fine-tuning step (dropout, AdamW, [CLS] head over 2 labels) on random ids, median after 2 warm-up steps; scripts/bench_step_torch.py prints the same JSON for PyTorch eager on the same machine. --generate runs greedy generation on a random GPT-2 of that shape; scripts/bench_generate_torch.py prints the same JSON for transformers")]
pub struct BenchArgs {
    /// rows of the kernel benchmark's matrices
    #[arg(long, default_value_t = 4096)]
    pub m: usize,
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// a training-step benchmark of this configuration (tiny, mini, small, base), or of the model
    /// in this directory (a classifier on it)
    #[arg(long, value_name = "CONFIG|DIR")]
    pub step: Option<String>,
    /// the step benchmark on a model directory with LoRA of this rank (the adapters and the
    /// classifier train; PEFT's default targets)
    #[arg(long, value_name = "R")]
    pub lora: Option<usize>,
    /// the step benchmark's model family (its model_type: bert, distilbert, roberta, xlm-roberta, electra, albert, modernbert)
    #[arg(long, default_value = "bert")]
    pub family: String,
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    #[arg(long, default_value_t = 128)]
    pub len: usize,
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// a generation benchmark of this GPT-2 shape (gpt2-tiny, gpt2-4x256, gpt2-small), or of the
    /// language model in this directory: tokens/s at each --new count, prefill apart, with the
    /// counters per token and the greedy ids
    #[arg(long, value_name = "CONFIG|DIR")]
    pub generate: Option<String>,
    /// the generation benchmark's vocabulary
    #[arg(long, default_value_t = 30000)]
    pub vocab: usize,
    /// new tokens per generation run (comma-separated)
    #[arg(long, value_delimiter = ',', default_value = "64,200")]
    pub new: Vec<usize>,
}

/// LoRA's settings beyond its rank (`--mode lora:R`), for `train` and `pretrain`.
#[derive(clap::Args)]
pub struct LoraArgs {
    /// LoRA's alpha: the adapters' product is scaled by alpha / R [default: 8, PEFT's]
    #[arg(long = "lora-alpha", value_name = "A")]
    pub lora_alpha: Option<f32>,
    /// dropout on the adapters' input while training [default: 0]
    #[arg(long = "lora-dropout", value_name = "P")]
    pub lora_dropout: Option<f32>,
    /// the projections LoRA adapts, comma-separated [default: query,value for BERT; c_attn for GPT-2]
    #[arg(long = "lora-targets", value_name = "NAMES", value_delimiter = ',')]
    pub lora_targets: Option<Vec<String>>,
}
