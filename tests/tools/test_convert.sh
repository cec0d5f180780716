#!/usr/bin/env bash
# tools/convert_state_dict.py round trip: the golden weights saved as a
# PyTorch state_dict.pt, converted back, must reproduce the golden outputs.
# Needs torch; skips (exit 77) where it is not installed.
set -euo pipefail
src=$1 golden_test=$2 repo=$3
python3 -c "import torch" 2>/dev/null || { echo "SKIP: torch not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$src/weights.safetensors" "$tmp/state_dict.pt" <<'PY'
import json, struct, sys, torch
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
sd = {}
for k, v in hdr.items():
    if k == "__metadata__": continue
    a, b = v["data_offsets"]
    sd[k] = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=torch.float32).reshape(v["shape"]).clone()
torch.save(sd, sys.argv[2])
PY
python3 "$repo/tools/convert_state_dict.py" "$tmp/state_dict.pt" "$tmp/model"
cp "$src/requests.csv" "$src/expected_f64.csv" "$tmp/model/"
"$golden_test" "$tmp/model"
