#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_request (see README.md): one body of each
op in msgpack (the whole file) and in JSON ('J' + the body), with the
variants the codec has paths for: vectors as arrays of ints, float32,
float64 and as a float32 bin, metadata of every msgpack type, nil fields,
repeated keys, unknown fields. No dependencies (a minimal msgpack encoder
is below); deterministic.

    gen_request_corpus.py OUTDIR
"""
import json
import os
import struct
import sys


class F32(float):
    pass


class Bin(bytes):
    pass


def mp(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if 0 <= v < 2**32:
            return b"\xce" + struct.pack(">I", v)
        if 0 <= v < 2**64 and v >= 2**63:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, F32):
        return b"\xca" + struct.pack(">f", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, Bin):
        return b"\xc4" + bytes([len(v)]) + bytes(v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        return b"\xd9" + bytes([len(b)]) + b
    if isinstance(v, list):
        return bytes([0x90 | len(v)]) + b"".join(mp(x) for x in v)
    if isinstance(v, tuple):  # a map as (key, value) pairs: keys may repeat
        return bytes([0x80 | len(v)]) + b"".join(mp(k) + mp(x) for k, x in v)
    if isinstance(v, dict):
        return mp(tuple(v.items()))
    raise TypeError(v)


def js(v):
    if isinstance(v, tuple):
        return "{" + ",".join(json.dumps(k) + ":" + js(x) for k, x in v) + "}"
    if isinstance(v, dict):
        return js(tuple(v.items()))
    if isinstance(v, list):
        return "[" + ",".join(js(x) for x in v) + "]"
    if isinstance(v, Bin):
        return json.dumps(v.hex())
    return json.dumps(v)


META = {"title": "caf\u00e9", "n": -3, "big": 2**64 - 1, "f": F32(0.25), "d": 1e300,
        "ok": True, "none": None, "tags": ["a", "b"], "raw": Bin(b"\x00\xff"),
        "nested": {"x": [1, {"y": []}]}}

BODIES = {
    "create": {"op": "create", "index": "docs", "dimension": 4, "m": 8,
               "ef_construction": 32, "ef_search": 16, "distance": "euclidean",
               "if_not_exists": True},
    "create-min": {"op": "create", "index": "d", "dimension": 1},
    "create-dot": {"op": "create", "index": "e", "dimension": 3, "distance": "dot"},
    "add": {"op": "add", "index": "docs", "items": [
        {"id": "a", "vector": [1, 2, 3, 4], "metadata": META},
        {"id": "b", "vector": [F32(0.5), F32(-1.5), F32(2.0), F32(0.0)]},
        {"id": "c\u00e9", "vector": [0.1, -0.2, 0.3, 1e10], "metadata": None}]},
    "add-bin": {"op": "add", "index": "b", "items": [
        {"id": "x", "vector": Bin(struct.pack("<3f", 1.0, 2.0, -3.0)), "metadata": "m"},
        {"id": "y", "vector": Bin(struct.pack("<3f", 3.0e18, -2.0, 0.0))}]},
    "add-one": {"op": "add", "index": "a", "items": [{"id": "1", "vector": [1]}]},
    "delete": {"op": "delete", "index": "docs", "ids": ["a", "b", "c\u00e9"]},
    "drop": {"op": "drop", "index": "docs", "if_exists": False},
    "search": {"op": "search", "index": "docs", "vector": [1, F32(2.5), 3.25, -4],
               "k": 5, "ef": 50, "min_offset": 12, "include_metadata": False},
    "search-bin": {"op": "search", "index": "c", "vector": Bin(struct.pack("<2f", 1.0, -1.0))},
    "search-big": {"op": "search", "index": "b", "vector": [F32(3.0e38), F32(-3.0e38)],
                   "k": 2},
    "info": {"op": "info", "index": "docs"},
    "repeated-op": (("op", "add"), ("op", 5), ("index", "docs")),
    "repeated-index": (("op", "info"), ("index", "a"), ("index", None)),
    "unknown-field": (("op", "info"), ("index", "x"), ("future", [1, {"a": 2}]), (7, "int key")),
    "bad-op": {"op": "frobnicate", "index": "docs"},
    "nil-op": {"op": None, "index": "docs"},
}


# Bodies over the target's small limits ('L' prefix: 8 dimensions, batches
# of 4, ids of 8 bytes, 64 bytes of metadata, names of 16 bytes).
SMALL = {
    "small-add-batch": {"op": "add", "index": "s", "items": [
        {"id": str(i), "vector": [1, 2]} for i in range(5)]},
    "small-add-id": {"op": "add", "index": "s", "items": [{"id": "123456789", "vector": [1]}]},
    "small-add-meta": {"op": "add", "index": "s", "items": [
        {"id": "m", "vector": [1], "metadata": {"k": "x" * 70}}]},
    "small-add-ok": {"op": "add", "index": "s", "items": [
        {"id": "a", "vector": [1, 2], "metadata": {"k": 1}}, {"id": "b", "vector": [3, 4]}]},
    "small-delete": {"op": "delete", "index": "s", "ids": ["a", "b", "c", "d", "e"]},
    "small-search": {"op": "search", "index": "s", "vector": list(range(9))},
    "small-create": {"op": "create", "index": "a-name-of-17-byte", "dimension": 9},
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for prefix, bodies in ((b"", BODIES), (b"L", SMALL)):
        for name, body in sorted(bodies.items()):
            with open(os.path.join(out, name + ".mp"), "wb") as f:
                f.write(prefix + mp(body))
            if isinstance(body, tuple) and any(not isinstance(k, str) for k, _ in body):
                continue
            with open(os.path.join(out, name + ".json"), "wb") as f:
                f.write(prefix + b"J" + js(body).encode())


if __name__ == "__main__":
    main()
