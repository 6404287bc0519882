#!/usr/bin/env python3
"""Continues a BERT Lab fine-tuning run with Hugging Face transformers' Trainer: the model in this
directory, labeled text in BERT Lab's formats, and the run's mode, pooling and hyperparameters
(SETTINGS below, written by BERT Lab).

    pip install torch transformers safetensors accelerate
    python train_hf.py DATA.tsv --out runs/hf                  # one GPU, or the CPU
    accelerate launch train_hf.py DATA.tsv --out runs/hf       # every GPU accelerate is set up for

DATA is what BERT Lab reads: TSV or CSV rows of label, text[, second text] (a header row is
skipped), or JSON lines {"label": ..., "text": ...[, "text_b": ...]}. Labels are the run's, in its
order. The frozen-encoder ("feature") mode freezes the encoder and trains the head, as BERT Lab's does
(BERT Lab computes the frozen features once; here the encoder runs each step, with its dropout).
"""
import argparse, csv, json, math, os, sys

import torch
from torch import nn

SETTINGS = json.loads(r'''__SETTINGS__''')
HERE = os.path.dirname(os.path.abspath(__file__))


def read_rows(path):
    """(label, text, text_b or None) rows, as BERT Lab reads them."""
    with open(path, encoding="utf-8") as f:
        data = f.read()
    rows = []
    if path.endswith((".jsonl", ".json")):
        for line in data.splitlines():
            if line.strip():
                o = json.loads(line)
                rows.append((str(o["label"]), o["text"], o.get("text_b")))
        return rows
    delim = "\t" if "\t" in data.split("\n", 1)[0] else ","
    for r in csv.reader(data.splitlines(), delimiter=delim):
        if len(r) >= 2 and r[1].strip():
            rows.append((r[0].strip(), r[1], r[2] if len(r) > 2 and r[2].strip() else None))
    if rows and rows[0][0].lower() in ("label", "labels", "class", "category", "target", "sentiment", "topic"):
        rows = rows[1:]
    return rows


class HeadBeside(nn.Module):
    """A BERT Lab classifier whose head no BertFor* class has: the encoder, then a linear head
    (classifier_head.safetensors) on the attention-masked mean of its last hidden states ("mean"),
    or on each text's last token that is not padding ("last", a causal BERT's)."""

    def __init__(self, encoder, weight, bias, dropout, pooling, pad_id):
        super().__init__()
        self.bert = encoder
        self.pooling, self.pad_id = pooling, pad_id
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.classifier.weight.copy_(weight)
            self.classifier.bias.copy_(bias)

    def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None):
        h = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
        if self.pooling == "mean":
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            x = (h * m).sum(1) / m.sum(1).clamp(min=1)
        else:
            last = (torch.arange(input_ids.shape[1], device=input_ids.device) * (input_ids != self.pad_id)).argmax(-1)
            x = h[torch.arange(h.shape[0], device=h.device), last]
        logits = self.classifier(self.dropout(x))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return {"loss": loss, "logits": logits}

    def save(self, out, labels):
        """The layout BERT Lab exports and reads back: the encoder, and the head beside it."""
        from safetensors.torch import save_file
        self.bert.save_pretrained(out, safe_serialization=True)
        save_file({"classifier.weight": self.classifier.weight.detach().contiguous(), "classifier.bias": self.classifier.bias.detach().contiguous()},
                  os.path.join(out, "classifier_head.safetensors"), metadata={"pooling": self.pooling})
        json.dump({"pooling": self.pooling, "weights": "classifier_head.safetensors", "labels": labels}, open(os.path.join(out, "bertlab_head.json"), "w"), indent=2)


def trainable(name, mode, layers):
    """What BERT Lab trains in `mode`: feature (the head), last:N (the head, the pooler or GPT-2's
    final LayerNorm, and the last N layers) or full."""
    for prefix in ("bert.", "transformer.", "roberta.", "distilbert.", "electra.", "albert.", "model."):
        name = name[len(prefix):] if name.startswith(prefix) else name
    if mode == "full":
        return True
    # the head (RoBERTa's and ELECTRA's classifier.dense + out_proj, DistilBERT's pre_classifier,
    # ModernBERT's head)
    if name.startswith(("classifier.", "score.", "pre_classifier.", "head.")):
        return True
    if mode.startswith("last:"):
        n = int(mode.split(":")[1])
        # BERT's, GPT-2's and DistilBERT's layer k; ALBERT's one shared set is every layer
        layer = lambda k: name.startswith((f"encoder.layer.{k}.", f"h.{k}.", f"transformer.layer.{k}.", f"layers.{k}."))
        shared = name.startswith("encoder.albert_layer_groups.") and n > 0
        return shared or name.startswith(("pooler.", "ln_f.", "final_norm.", "norm.")) or any(layer(layers - 1 - k) for k in range(min(n, layers)))
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data")
    ap.add_argument("--model", default=HERE, help="the model directory (default: this script's)")
    ap.add_argument("--base", help="a LoRA run's base model (default: the one adapter_config.json names)")
    ap.add_argument("--out", default="hf-run")
    ap.add_argument("--max-steps", type=int, default=-1, help="stop after this many steps")
    ap.add_argument("--no-dropout", action="store_true", help="dropout off (for comparing runs)")
    ap.add_argument("--losses", help="write each step's training loss to this JSON file")
    for k in ("lr", "epochs", "batch", "max_len"):
        ap.add_argument("--" + k.replace("_", "-"), type=type(SETTINGS[k]), default=SETTINGS[k])
    a = ap.parse_args()

    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments, set_seed
    set_seed(SETTINGS["seed"])
    labels = SETTINGS["labels"]
    label_id = {l: i for i, l in enumerate(labels)}
    rows = read_rows(a.data)
    unknown = sorted({r[0] for r in rows} - set(labels))
    if unknown:
        sys.exit(f"labels {unknown} are not the run's labels {labels}")
    tok = AutoTokenizer.from_pretrained(a.model)
    # a LoRA run (mode lora:R): this directory holds PEFT's adapter, which peft puts on its base
    adapter = os.path.exists(os.path.join(a.model, "adapter_config.json"))
    weights = a.model
    if adapter:
        weights = a.base or json.load(open(os.path.join(a.model, "adapter_config.json")))["base_model_name_or_path"]
    model_type = AutoConfig.from_pretrained(weights).model_type
    gpt2 = model_type == "gpt2"
    # the classes that read the last token themselves (GPT2ForSequenceClassification, Llama's, Qwen's)
    own_last = model_type in ("gpt2", "llama", "qwen2", "qwen3")
    drop = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "classifier_dropout": 0.0, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
            "dropout": 0.0, "attention_dropout": 0.0, "seq_classif_dropout": 0.0, "classifier_dropout_prob": 0.0} if a.no_dropout else {}
    cfg = AutoConfig.from_pretrained(weights, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label_id, **drop)
    head_beside = SETTINGS["pooling"] == "mean" or (SETTINGS["pooling"] == "last" and not own_last)
    if adapter and head_beside:
        sys.exit("a LoRA run whose head reads the mean or a GPT-style BERT's last token has no PEFT class: continue it in BERT Lab")
    if head_beside:
        from safetensors.torch import load_file
        head = load_file(os.path.join(a.model, "classifier_head.safetensors"))
        p = 0.0 if a.no_dropout else cfg.hidden_dropout_prob
        try:
            encoder = AutoModel.from_pretrained(a.model, config=cfg, add_pooling_layer=False)
        except TypeError:  # a family whose encoder has no pooler to leave out (DistilBERT)
            encoder = AutoModel.from_pretrained(a.model, config=cfg)
        model = HeadBeside(encoder, head["classifier.weight"], head["classifier.bias"], p, SETTINGS["pooling"], cfg.pad_token_id)
    elif adapter:
        from peft import PeftModel
        model = PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(weights, config=cfg), a.model, is_trainable=True)
    else:
        # BertForSequenceClassification, or GPT2ForSequenceClassification (its score on the last
        # token that is not pad_token_id)
        model = AutoModelForSequenceClassification.from_pretrained(a.model, config=cfg)
    if gpt2:
        # BERT Lab frames a GPT-2's text as <|endoftext|> a <|endoftext|> [b <|endoftext|>] and pads
        # with the config's pad_token_id
        # with pairs truncated longest-first, as BERT Lab truncates
        eot = tok.convert_tokens_to_ids("<|endoftext|>")
        tok.pad_token = tok.convert_ids_to_tokens(cfg.pad_token_id)

        def encode(t, tb):
            ia = tok(t, add_special_tokens=False)["input_ids"]
            ib = tok(tb, add_special_tokens=False)["input_ids"] if tb else []
            while len(ia) + len(ib) > a.max_len - (3 if tb else 2):
                (ia if len(ia) >= len(ib) else ib).pop()
            return dict(input_ids=[eot] + ia + [eot] + (ib + [eot] if tb else []))
    else:
        # the model's own framing (a Llama-shaped decoder's: a BOS where its tokenizer adds one);
        # padding with the config's pad id where the tokenizer names no pad token (Llama 3's)
        if tok.pad_token is None and cfg.pad_token_id is not None:
            tok.pad_token = tok.convert_ids_to_tokens(cfg.pad_token_id)
        encode = lambda t, tb: dict(tok(t, tb, truncation=True, max_length=a.max_len))
    if not adapter:  # peft has set what trains: the adapters and the head
        for n, p in model.named_parameters():
            p.requires_grad = trainable(n, SETTINGS["mode"], cfg.num_hidden_layers)

    enc = [dict(encode(t, tb), labels=label_id[l]) for l, t, tb in rows]
    steps_per_epoch = math.ceil(len(enc) / a.batch)
    total = steps_per_epoch * a.epochs if a.max_steps < 0 else a.max_steps
    args = TrainingArguments(
        output_dir=a.out, learning_rate=a.lr, num_train_epochs=a.epochs, max_steps=a.max_steps,
        per_device_train_batch_size=a.batch, weight_decay=SETTINGS["weight_decay"], max_grad_norm=SETTINGS["max_grad_norm"],
        lr_scheduler_type="linear", warmup_steps=int(math.floor(SETTINGS["warmup_ratio"] * total + 0.5)),
        adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8, seed=SETTINGS["seed"], logging_steps=1,
        save_strategy="no", report_to=[], remove_unused_columns=False)

    losses = []

    class Recording(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, **kw):
            out = model(**inputs)
            loss = out["loss"]
            if model.training:
                losses.append(float(loss.detach()))
            return (loss, out) if return_outputs else loss

    trainer = Recording(model=model, args=args, train_dataset=enc, data_collator=DataCollatorWithPadding(tok))
    trainer.train()
    if a.losses:
        json.dump(losses, open(a.losses, "w"))
    if head_beside:
        model.save(a.out, labels)
    elif adapter:
        model.save_pretrained(a.out)  # PEFT's adapter files, which BERT Lab reads back
        cfg.save_pretrained(a.out)
    else:
        trainer.save_model(a.out)
    tok.save_pretrained(a.out)
    print(f"{len(losses)} steps; first losses {[round(x, 5) for x in losses[:5]]}; saved to {a.out}")


if __name__ == "__main__":
    main()
