#!/usr/bin/env python3
"""Accuracy of our engine and llama.cpp against an exact float64 forward pass, on a fixed text.

    accuracy.py --model M.gguf --ours target/release/iexec-llm-bench [--tokens 512] [--text F]

The text (default: Debian's /usr/share/common-licenses/GPL-3, on every Debian machine) is
tokenized by llama.cpp, with its BOS, and cut to --tokens tokens. Each engine gives the
next-token logits at every position: llama.cpp in one batch (logits_all, its default f16 KV
cache, no flash attention), ours one token at a time through the decode path the app
generates with (`iexec-llm-bench --logits-of`). The oracle dequantizes every weight to float64
and runs the model with no activation quantization and an f64 KV cache. Printed per engine:
perplexity of the text, mean and max KL divergence KL(exact || engine) per position, and how
often its top token is the oracle's. Run with the python of reference/env.sh (llama_cpp, gguf).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


def exact_logits(path, tokens):
    """Logits at every position of a llama or qwen2 GGUF, in float64, weights dequantized one
    tensor at a time."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    r = GGUFReader(path)
    arch = r.fields["general.architecture"].contents()
    if arch not in ("llama", "qwen2"):
        sys.exit(f"the f64 oracle knows llama and qwen2, not {arch}")
    md = {k[len(arch) + 1:]: f.contents() for k, f in r.fields.items()
          if k.startswith(arch + ".")}
    tensors = {t.name: t for t in r.tensors}

    def w(name):
        t = tensors[name]
        shape = [int(x) for x in reversed(t.shape.tolist())]
        return dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float64)

    n_head, n_kv = md["attention.head_count"], md["attention.head_count_kv"]
    eps = md.get("attention.layer_norm_rms_epsilon", 1e-6 if arch == "qwen2" else 1e-5)
    theta = md.get("rope.freq_base", 10000.0)
    x = w("token_embd.weight")[tokens]
    n, e = x.shape
    hd = e // n_head
    pos = np.arange(n)[:, None]
    ang = pos * (theta ** (-np.arange(0, hd, 2) / hd))[None, :]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]

    def rms(v, g):
        return v / np.sqrt(np.mean(v * v, axis=-1, keepdims=True) + eps) * g

    def rope(v):
        if arch == "qwen2":  # NEOX: the two halves of each head
            a, b = v[..., : hd // 2], v[..., hd // 2:]
            return np.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)
        a, b = v[..., 0::2], v[..., 1::2]  # llama.cpp's "normal" rope: adjacent pairs
        out = np.empty_like(v)
        out[..., 0::2], out[..., 1::2] = a * cos - b * sin, a * sin + b * cos
        return out

    def lin(h, name):
        y = h @ w(name + ".weight").T
        return y + w(name + ".bias") if name + ".bias" in tensors else y

    mask = np.triu(np.full((n, n), -np.inf), 1)[None]
    for i in range(md["block_count"]):
        p = f"blk.{i}."
        h = rms(x, w(p + "attn_norm.weight"))
        q = rope(lin(h, p + "attn_q").reshape(n, n_head, hd))
        k = rope(lin(h, p + "attn_k").reshape(n, n_kv, hd))
        v = lin(h, p + "attn_v").reshape(n, n_kv, hd)
        rep = n_head // n_kv
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        att = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd) + mask
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        x = x + lin(np.einsum("hqk,khd->qhd", att, v).reshape(n, e), p + "attn_output")
        h = rms(x, w(p + "ffn_norm.weight"))
        g, u = lin(h, p + "ffn_gate"), lin(h, p + "ffn_up")
        x = x + lin(g / (1 + np.exp(-g)) * u, p + "ffn_down")
    out = "output.weight" if "output.weight" in tensors else "token_embd.weight"
    return rms(x, w("output_norm.weight")) @ w(out).T


def log_softmax(z):
    z = np.asarray(z, dtype=np.float64)
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def figures(ref_lp, lp, tokens):
    """Perplexity of the text, KL(exact || this) per position (mean, max), top-1 agreement."""
    nll = -lp[np.arange(len(tokens) - 1), tokens[1:]]
    kl = (np.exp(ref_lp) * (ref_lp - lp)).sum(-1)
    top = (lp.argmax(-1) == ref_lp.argmax(-1)).mean()
    return {"perplexity": float(np.exp(nll.mean())), "kl_mean": float(kl.mean()),
            "kl_max": float(kl.max()), "top1_agreement": float(top)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--ours", required=True)
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--text", default="/usr/share/common-licenses/GPL-3")
    a = ap.parse_args()
    from llama_cpp import Llama

    with open(a.text, "rb") as f:
        text = f.read()
    llm = Llama(model_path=a.model, n_ctx=a.tokens + 8, n_batch=a.tokens + 8,
                n_ubatch=a.tokens + 8, n_threads=a.threads, logits_all=True,
                flash_attn=False, verbose=False)
    tokens = llm.tokenize(text, add_bos=True, special=False)[: a.tokens]
    if len(tokens) < a.tokens:
        sys.exit(f"{a.text} gives only {len(tokens)} tokens")
    llm.eval(tokens)
    ref_cpp = log_softmax(llm.scores[: len(tokens)])
    vocab = ref_cpp.shape[1]
    del llm

    with tempfile.TemporaryDirectory() as d:
        tok_path, out_path = os.path.join(d, "tokens.json"), os.path.join(d, "logits.f32")
        with open(tok_path, "w") as f:
            json.dump(tokens, f)
        env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads),
                   IEXEC_LLM_THREADS=str(a.threads))
        subprocess.run([a.ours, a.model, "--logits-of", tok_path, out_path], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        ours = np.fromfile(out_path, dtype="<f4")
    if ours.size != len(tokens) * vocab:
        sys.exit(f"ours wrote {ours.size} logits, not {len(tokens)} x {vocab}")
    ours = log_softmax(ours.reshape(len(tokens), vocab))

    exact = log_softmax(exact_logits(a.model, np.array(tokens)))
    t = np.array(tokens)
    nll = -exact[np.arange(len(t) - 1), t[1:]]
    rows = {"ours": figures(exact, ours, t), "llama.cpp": figures(exact, ref_cpp, t)}
    for r in rows.values():
        r["perplexity_error"] = abs(r["perplexity"] - float(np.exp(nll.mean())))
    print(f"accuracy on {a.text}, first {len(t)} tokens, against the exact f64 forward pass "
          f"(perplexity {np.exp(nll.mean()):.4f})")
    print(f"{'':40} {'ours':>10} {'llama.cpp':>10} {'ratio':>7}")
    for key, name in [("perplexity", "perplexity"),
                      ("perplexity_error", "|perplexity - exact's|"), ("kl_mean", "KL from exact, mean"),
                      ("kl_max", "KL from exact, max"), ("top1_agreement", "top-1 = exact's")]:
        o, r = rows["ours"][key], rows["llama.cpp"][key]
        print(f"{name:40} {o:10.6f} {r:10.6f} {o / r if r else float('nan'):7.3f}")


if __name__ == "__main__":
    main()
