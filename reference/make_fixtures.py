#!/usr/bin/env python3
"""Record llama.cpp's outputs as the fixture the app's tests compare against.

Run through reference/make-fixtures.sh, which builds llama.cpp from the llama-cpp-python sdist
and makes the synthetic Qwen2 GGUF. Writes engine/tests/fixtures/llama_cpp_reference.json:

- smollm2.tokenize: token ids of tricky strings, with and without special-token parsing
- smollm2.greedy:   greedy continuations of raw prompts (argmax of llama.cpp's logits)
- qwen2_synthetic:  next-token logits of the synthetic Qwen2 model for fixed token sequences
"""
import hashlib
import json
import sys

import numpy as np
import llama_cpp
from llama_cpp import Llama

SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

TRICKY = [
    "Hello world",
    "  leading and   runs of    spaces  ",
    "line one\nline two\r\n\n\ttabbed",
    "Numbers: 1234567890 3.14159 -42 1,000,000",
    "Unicode: café naïve Ωμέγα Привет мир 日本語のテキスト",
    "Emoji: 😀🎉👍🏽 👨‍👩‍👧",
    "Code: fn main() { println!(\"{}\", x[0] + y); } // done",
    "it's I'm we'll they've she'd You'RE",
    "<|im_start|>user\nhi<|im_end|>",
    "text <|im_end|> more <|endoftext|>",
    "</think> and <think> are plain here",
    "",
    " ",
    "\n\n\n",
]

# Greedy runs. Two correct engines that quantize activations differently disagree on logits
# by up to about one unit (measured on SmolLM2: our logits are closer to an exact f64 forward
# pass than llama.cpp's), so a step where llama.cpp's best two tokens are nearly tied says
# nothing about correctness. Every run records llama.cpp's margin (best minus second-best
# logit) at each step. "free" runs are the candidates whose margin never drops below
# MIN_MARGIN over GREEDY_TOKENS tokens: the app must reproduce them token for token on its
# own. "forced" runs are natural prompts whatever their margins: the test feeds llama.cpp's
# tokens and checks the app's choice at every step whose margin is at least MIN_MARGIN.
FREE_CANDIDATES = [
    "Q: What is 7 times 8?\nA:",
    "1, 2, 3, 4, 5,",
    "A, B, C, D, E,",
    "2, 4, 6, 8, 10,",
    "one, two, three, four,",
    "Monday, Tuesday, Wednesday,",
    "10, 20, 30, 40,",
    "The alphabet: a b c d e",
    "Q: What is the largest planet in the solar system?\nA:",
    "The first president of the United States was",
]
FORCED_PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n",
    "Once upon a time, in a small village,",
    "The Pythagorean theorem states that",
    "Photosynthesis is the process by which",
    "Here is a list of fruits: apple, banana,",
]
GREEDY_TOKENS = 32
FREE_RUNS = 4
MIN_MARGIN = 0.5

# The app keeps its KV cache in f32; llama.cpp defaults to f16. Compare like with like, so a
# difference means different model math rather than a different cache precision.
GGML_TYPE_F32 = 0
ENGINE = dict(n_threads=2, logits_all=True, flash_attn=False, type_k=GGML_TYPE_F32,
              type_v=GGML_TYPE_F32, verbose=False)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def greedy(llm, prompt_ids, n):
    """Argmax continuation and, at each step, the gap between the best two logits."""
    llm.reset()
    llm.eval(prompt_ids)
    out, margins = [], []
    eos = llm.token_eos()
    for _ in range(n):
        scores = llm.scores[llm.n_tokens - 1]
        best2 = np.sort(scores)[-2:]
        tok = int(np.argmax(scores))
        if tok == eos:
            break
        out.append(tok)
        margins.append(round(float(best2[1] - best2[0]), 4))
        llm.eval([tok])
    return out, margins


def exact_qwen2(path, tokens):
    """Next-token logits of a Qwen2 GGUF in float64 with fully dequantized weights: no
    activation quantization, so an independent oracle for both engines."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    r = GGUFReader(path)
    md = {k: f.contents() for k, f in r.fields.items() if k.startswith("qwen2.")}
    W = {t.name: dequantize(t.data, t.tensor_type).reshape(
        [int(x) for x in reversed(t.shape.tolist())]).astype(np.float64) for t in r.tensors}
    n_head, n_kv = md["qwen2.attention.head_count"], md["qwen2.attention.head_count_kv"]
    eps, theta = md["qwen2.attention.layer_norm_rms_epsilon"], md["qwen2.rope.freq_base"]
    x = W["token_embd.weight"][tokens]
    n, e = x.shape
    hd = e // n_head

    def rms(v, w):
        return v / np.sqrt(np.mean(v * v, axis=-1, keepdims=True) + eps) * w

    def rope(v):  # NEOX style: rotate the two halves of each head
        pos = np.arange(n)[:, None]
        freq = theta ** (-np.arange(0, hd, 2) / hd)
        ang = pos * freq[None, :]
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        a, b = v[..., : hd // 2], v[..., hd // 2:]
        return np.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)

    for i in range(md["qwen2.block_count"]):
        p = f"blk.{i}."
        h = rms(x, W[p + "attn_norm.weight"])
        q = (h @ W[p + "attn_q.weight"].T + W[p + "attn_q.bias"]).reshape(n, n_head, hd)
        k = (h @ W[p + "attn_k.weight"].T + W[p + "attn_k.bias"]).reshape(n, n_kv, hd)
        v = (h @ W[p + "attn_v.weight"].T + W[p + "attn_v.bias"]).reshape(n, n_kv, hd)
        q, k = rope(q), rope(k)
        rep = n_head // n_kv
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        att = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd)
        att = att + np.triu(np.full((n, n), -np.inf), 1)[None]
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        o = np.einsum("hqk,khd->qhd", att, v).reshape(n, e)
        x = x + o @ W[p + "attn_output.weight"].T
        h = rms(x, W[p + "ffn_norm.weight"])
        g, u = h @ W[p + "ffn_gate.weight"].T, h @ W[p + "ffn_up.weight"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ W[p + "ffn_down.weight"].T
    h = rms(x[-1], W["output_norm.weight"])
    return W["output.weight"] @ h


def main():
    smollm2, qwen2_path, out_path = sys.argv[1:4]
    assert sha256(smollm2) == SMOLLM2_SHA256, "unexpected SmolLM2 file"
    llm = Llama(model_path=smollm2, n_ctx=512, n_batch=512, **ENGINE)
    tokenize = [
        {"text": t, "special": special,
         "ids": llm.tokenize(t.encode(), add_bos=False, special=special)}
        for t in TRICKY for special in (True, False)
    ]
    free, forced = [], []
    for p in FREE_CANDIDATES + FORCED_PROMPTS:
        ids = llm.tokenize(p.encode(), add_bos=True, special=False)
        out, margins = greedy(llm, ids, GREEDY_TOKENS)
        run = {"prompt": p, "prompt_ids": ids, "ids": out, "margins": margins}
        if p in FORCED_PROMPTS:
            forced.append(run)
        elif len(out) == GREEDY_TOKENS and min(margins) >= MIN_MARGIN and len(free) < FREE_RUNS:
            free.append(run)
        print(f"{p!r}: {len(out)} tokens, min margin {min(margins):.3f}", file=sys.stderr)
    assert len(free) >= 3, "too few prompts without near-ties"
    del llm

    q = Llama(model_path=qwen2_path, n_ctx=256, n_batch=256, **ENGINE)
    sequences = [[1, 2, 3], [257, 10, 99, 42, 7, 300, 12, 65, 66, 67], list(range(3, 64, 3))]
    logits = []
    for s in sequences:
        q.reset()
        q.eval(s)
        exact = exact_qwen2(qwen2_path, s)
        ref = q.scores[q.n_tokens - 1]
        print(f"qwen2 {s[:4]}...: llama.cpp vs exact f64 max |diff| "
              f"{np.abs(ref - exact).max():.4f}", file=sys.stderr)
        logits.append({"tokens": s,
                       "logits": [round(float(x), 6) for x in ref],
                       "exact_f64_logits": [round(float(x), 6) for x in exact]})
    q_tokenize = [
        {"text": t, "special": True, "ids": q.tokenize(t.encode(), add_bos=False, special=True)}
        for t in ["<｜User｜>hi<｜Assistant｜><think>\n", "abc 123"]
    ]
    del q

    fixture = {
        "generator": "reference/make_fixtures.py",
        "llama_cpp_python": llama_cpp.__version__,
        "llama_cpp_system_info": llama_cpp.llama_print_system_info().decode().strip(),
        "llama_cpp_settings": {k: v for k, v in ENGINE.items() if k != "verbose"},
        "smollm2": {"sha256": SMOLLM2_SHA256, "tokenize": tokenize, "min_margin": MIN_MARGIN,
                    "greedy_free": free, "greedy_forced": forced},
        "qwen2_synthetic": {"sha256": sha256(qwen2_path), "logits": logits,
                            "tokenize": q_tokenize},
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
