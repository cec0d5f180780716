#!/usr/bin/env python3
"""Turn the seed challenge's PyTorch checkpoint into a symserve model folder.

    python3 tools/convert_state_dict.py state_dict.pt OUT_DIR [--bf16]

Writes OUT_DIR/config.json (hidden_size, proj_size, tower_depth, num_heads,
num_features, inferred from the tensor shapes) and OUT_DIR/weights.safetensors
(every tensor, same names, F32 or with --bf16 BF16). Needs torch (to unpickle
the checkpoint); symserve itself and its tests do not. The safetensors file is
written by hand (8-byte header length, JSON header, raw little-endian data) so
the `safetensors` package is not needed either. Check the result with
`symserve weights --check OUT_DIR`.
"""
import argparse
import json
import os
import struct
import sys


def infer_config(sd):
    up = sd["towers.0.input_up.weight"].shape  # [P, F]
    down = sd["towers.0.input_down.weight"].shape  # [H, P]
    depth = 1 + max(int(k.split(".")[3]) for k in sd if k.startswith("towers.0.blocks."))
    heads = sd["towers.2.blocks.0.layer.decay"].shape[0]
    return {"hidden_size": int(down[0]), "proj_size": int(up[0]), "tower_depth": depth,
            "num_heads": int(heads), "num_features": int(up[1])}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("out_dir")
    ap.add_argument("--bf16", action="store_true", help="store tensors as BF16 (default F32)")
    a = ap.parse_args()
    import torch  # noqa: imported here so --help works without torch

    sd = torch.load(a.checkpoint, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd and not torch.is_tensor(sd["state_dict"]):
        sd = sd["state_dict"]
    sd = {k: v for k, v in sd.items() if torch.is_tensor(v)}
    cfg = infer_config(sd)
    dtype, tag = (torch.bfloat16, "BF16") if a.bf16 else (torch.float32, "F32")
    header, blobs, off = {}, [], 0
    for name in sorted(sd):
        t = sd[name].detach().to(dtype).contiguous()
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": tag, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, "weights.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    with open(os.path.join(a.out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
        f.write("\n")
    print(f"wrote {a.out_dir}: {len(header)} tensors, {off / 1e9:.2f} GB, config {cfg}", file=sys.stderr)


if __name__ == "__main__":
    main()
