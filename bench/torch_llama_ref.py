#!/usr/bin/env python3
"""The stack kwaainet replaces, measured on the same GPU: Llama-3-8B-shaped decoder blocks in
PyTorch fp16, eager, the way Petals' server runs HF's LlamaDecoderLayer (RMSNorm, rotary
embeddings, grouped-query attention with a softmax in fp32, SwiGLU MLP), with a preallocated
KV cache. Random weights (timing depends on shapes only). Also the device's copy bandwidth
and its fp32 / fp16 matmul rates.

    python3 bench/torch_llama_ref.py --layers 2 --prompt 512 --gen 32 --ctx 4096 --json OUT.json

Prints one JSON document (and writes it to --json). Without PyTorch or CUDA it says so in the
document and exits 0, so a caller can record the absence.
"""
import argparse
import json
import math
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("--ctx", type=int, default=4096, help="second decode context length")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    out = {"engine": "pytorch fp16 eager", "layers": a.layers, "prompt": a.prompt, "gen": a.gen}
    try:
        import torch
    except Exception as e:  # noqa: BLE001 - any import failure means "not available"
        out["error"] = f"torch not available: {e}"
        return finish(out, a.json)
    if not torch.cuda.is_available():
        out["error"] = "torch has no CUDA device"
        return finish(out, a.json)
    dev = torch.device("cuda")
    out["torch"] = torch.__version__
    out["gpu"] = torch.cuda.get_device_name(0)
    torch.backends.cuda.matmul.allow_tf32 = False

    def sync():
        torch.cuda.synchronize()

    # Copy bandwidth: read + write bytes of a 1 GiB device-to-device copy.
    n = 256 << 20
    x = torch.empty(n, dtype=torch.float32, device=dev)
    y = torch.empty_like(x)
    y.copy_(x)
    sync()
    t0 = time.perf_counter()
    for _ in range(5):
        y.copy_(x)
    sync()
    out["copy_bandwidth_gb_s"] = 2 * 4 * n * 5 / (time.perf_counter() - t0) / 1e9
    del x, y

    def matmul_rate(dtype, m=8192):
        p = torch.randn(m, m, dtype=dtype, device=dev)
        q = torch.randn(m, m, dtype=dtype, device=dev)
        p @ q
        sync()
        t0 = time.perf_counter()
        for _ in range(3):
            p @ q
        sync()
        return 2 * m**3 * 3 / (time.perf_counter() - t0) / 1e12

    out["fp32_matmul_tflops"] = matmul_rate(torch.float32)  # no TF32: the FMA-rate proxy
    out["fp16_matmul_tflops"] = matmul_rate(torch.float16)  # tensor cores

    H, NH, NKV, D, FF, EPS, THETA = 4096, 32, 8, 128, 14336, 1e-5, 500000.0
    f16 = torch.float16

    def lin(o, i):
        return (torch.randn(o, i, dtype=f16, device=dev) * 0.02).contiguous()

    blocks = []
    for _ in range(a.layers):
        blocks.append({
            "ln1": torch.ones(H, dtype=f16, device=dev), "ln2": torch.ones(H, dtype=f16, device=dev),
            "q": lin(NH * D, H), "k": lin(NKV * D, H), "v": lin(NKV * D, H), "o": lin(H, NH * D),
            "gate": lin(FF, H), "up": lin(FF, H), "down": lin(H, FF)})

    inv_freq = 1.0 / (THETA ** (torch.arange(0, D, 2, device=dev, dtype=torch.float32) / D))

    def rms(x, w):  # HF LlamaRMSNorm: in fp32, back to the input dtype
        v = x.float().pow(2).mean(-1, keepdim=True)
        return w * (x.float() * torch.rsqrt(v + EPS)).to(x.dtype)

    def rope(x, pos):  # x [B, heads, T, D]; rotate_half pairing as HF
        f = torch.outer(pos.float(), inv_freq)
        emb = torch.cat((f, f), dim=-1)
        cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
        x1, x2 = x[..., : D // 2], x[..., D // 2:]
        return x * cos + torch.cat((-x2, x1), dim=-1) * sin

    def block(b, x, kc, vc, n_past):
        B, T, _ = x.shape
        pos = torch.arange(n_past, n_past + T, device=dev)
        h = rms(x, b["ln1"])
        q = (h @ b["q"].T).view(B, T, NH, D).transpose(1, 2)
        k = (h @ b["k"].T).view(B, T, NKV, D).transpose(1, 2)
        v = (h @ b["v"].T).view(B, T, NKV, D).transpose(1, 2)
        q, k = rope(q, pos), rope(k, pos)
        kc[:, :, n_past:n_past + T] = k
        vc[:, :, n_past:n_past + T] = v
        L = n_past + T
        kk = kc[:, :, :L].repeat_interleave(NH // NKV, dim=1)  # HF repeat_kv
        vv = vc[:, :, :L].repeat_interleave(NH // NKV, dim=1)
        w = (q @ kk.transpose(2, 3)) / math.sqrt(D)
        if T > 1:
            mask = torch.full((T, L), float("-inf"), device=dev).triu(n_past + 1)
            w = w + mask.to(w.dtype)
        w = torch.softmax(w, dim=-1, dtype=torch.float32).to(f16)
        att = (w @ vv).transpose(1, 2).reshape(B, T, NH * D)
        x = x + att @ b["o"].T
        h = rms(x, b["ln2"])
        return x + (torch.nn.functional.silu(h @ b["gate"].T) * (h @ b["up"].T)) @ b["down"].T

    def caches(length):
        return [(torch.zeros(1, NKV, length, D, dtype=f16, device=dev),
                 torch.zeros(1, NKV, length, D, dtype=f16, device=dev)) for _ in blocks]

    def run(x, cs, n_past):
        for b, (kc, vc) in zip(blocks, cs):
            x = block(b, x, kc, vc, n_past)
        return x

    with torch.inference_mode():
        cs = caches(a.prompt + a.gen + 1)
        run(torch.randn(1, 8, H, dtype=f16, device=dev), cs, 0)  # warm-up
        sync()
        xs = torch.randn(1, a.prompt, H, dtype=f16, device=dev)
        t0 = time.perf_counter()
        run(xs, cs, 0)
        sync()
        pre = time.perf_counter() - t0
        tok = torch.randn(1, 1, H, dtype=f16, device=dev)
        run(tok, cs, a.prompt)
        sync()
        t0 = time.perf_counter()
        for i in range(a.gen):
            run(tok, cs, a.prompt + 1 + i)
        sync()
        dec = time.perf_counter() - t0
        out["prefill_tokens_per_s"] = a.prompt / pre
        out["decode_tokens_per_s"] = a.gen / dec
        if a.ctx > a.prompt:
            cs = caches(a.ctx + 2)
            run(tok, cs, a.ctx - 1)
            sync()
            t0 = time.perf_counter()
            steps = max(4, a.gen // 4)
            for i in range(steps):
                run(tok, cs, a.ctx - 1)
            sync()
            out["decode_ctx"] = a.ctx
            out["decode_long_tokens_per_s"] = steps / (time.perf_counter() - t0)
    # 32-block (Llama-3-8B) equivalents, blocks only.
    for key in ("prefill_tokens_per_s", "decode_tokens_per_s", "decode_long_tokens_per_s"):
        if key in out:
            out[key.replace("_tokens_per_s", "_32_blocks_tokens_per_s")] = out[key] * a.layers / 32
    return finish(out, a.json)


def finish(out, path):
    text = json.dumps(out)
    print(text)
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
