#!/usr/bin/env python3
"""lhv1_reader.py - an independent reader of LHV1 checkpoint files.

Written from schemas/lhv1.md alone (not from the C sources), with the
Python 3 standard library only, to show that the document is enough to
read the format. It checks everything the document asks a reader to check
(section 3.4), decodes the whole payload and prints a JSON summary.

    lhv1_reader.py FILE [--ids N] [--max-dimension D]
        Prints {"name", "params", "count", "deleted", "slots", "kafka", ...,
        "first_ids"} and exits 0; on a damaged file prints
        "lhv1_reader: FILE: corrupt: <why>" to stderr and exits 1
        (2: unsupported version, 3: cannot read the file, 64: usage).

    lhv1_reader.py --selftest [FILE...]
        A check that needs no build system: the CRC-32C check value, then for
        each valid FILE (default: tests/fuzz/corpus/*.file) a clean decode
        and the refusal of truncations, bit flips, trailing bytes, a bad
        magic, unknown versions and envelope edits. Exits 0 when all pass.

    lhv1_reader.py --check-dir DIR
        Holds this reader to the verdicts of vectord's: DIR holds files named
        <n>.<verdict>.bin (verdict "ok" or a vd_err_code name), as
        LHV1_TEST_DUMP=DIR test_lhv1 writes them. Exits 0 when all agree.
"""

import glob
import json
import math
import os
import struct
import sys

EXIT_CORRUPT, EXIT_VERSION, EXIT_IO, EXIT_USAGE = 1, 2, 3, 64
MAX_ENVELOPE = 1 << 20
NONE = 0xFFFFFFFF
MAX_LEVEL = 31
DISTANCES = ("cosine", "euclidean", "dot")
FREE, LIVE, DELETED = 0, 1, 2


class Corrupt(Exception):
    """The file is damaged (VD_ERR_CORRUPT)."""


class Unsupported(Exception):
    """The file has a version this reader does not know (VD_ERR_VERSION)."""


# ---- CRC-32C (schemas/lhv1.md section 4) ----


def _crc_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli), reflected, init and final xor 0xFFFFFFFF."""
    table = _CRC_TABLE
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


# ---- envelope (section 2) ----


def _no_duplicates(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise Corrupt("envelope: duplicate key %r" % k)
        obj[k] = v
    return obj


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _field(obj, key, kind, where="envelope", required=True):
    if key not in obj:
        if required:
            raise Corrupt("%s: %s missing" % (where, key))
        return None
    v = obj[key]
    ok = {"int": _is_int(v), "str": isinstance(v, str), "obj": isinstance(v, dict)}[kind]
    if not ok:
        raise Corrupt("%s: %s is not a%s %s" % (where, key, "n" if kind == "int" else "",
                                                 {"int": "integer", "str": "string",
                                                  "obj": "object"}[kind]))
    return v


def _u64_string(obj, key, where):
    s = _field(obj, key, "str", where)
    if not s.isdigit() or not s.isascii() or int(s) >= 1 << 64:
        raise Corrupt("%s: %s %r is not an unsigned 64-bit decimal" % (where, key, s))
    return int(s)


def parse_envelope(text):
    try:
        env = json.loads(text.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as e:
        raise Corrupt("envelope is not UTF-8: %s" % e)
    except ValueError as e:
        raise Corrupt("envelope is not JSON: %s" % e)
    if not isinstance(env, dict):
        raise Corrupt("envelope is not a JSON object")
    fmt = _field(env, "format", "str")
    if fmt != "LHV1":
        raise Corrupt("envelope format is %r, not \"LHV1\"" % fmt[:32])
    fv = _field(env, "format_version", "int")
    if fv != 1:
        raise Unsupported("format_version %d (this reader knows 1)" % fv)
    pay = _field(env, "payload", "obj")
    pv = _field(pay, "version", "int", "envelope payload")
    if pv != 1:
        raise Unsupported("payload version %d (this reader knows 1)" % pv)
    _field(pay, "length", "int", "envelope payload")
    _field(pay, "crc32c", "int", "envelope payload")
    name = _field(env, "name", "str")
    if not name:
        raise Corrupt("envelope: name is empty")
    params = _field(env, "params", "obj")
    for k in ("dimension", "m", "ef_construction", "ef_search"):
        _field(params, k, "int", "envelope params")
    _field(params, "distance", "str", "envelope params")
    _u64_string(params, "seed", "envelope params")
    for k in ("count", "deleted", "slots"):
        _field(env, k, "int")
    _u64_string(env, "rng_state", "envelope")
    kafka = env.get("kafka")
    if kafka is not None:
        if not isinstance(kafka, dict):
            raise Corrupt("envelope: kafka is neither null nor an object")
        topic = _field(kafka, "topic", "str", "envelope kafka")
        if len(topic.encode("utf-8")) >= 256:
            raise Corrupt("envelope kafka: topic of 256 bytes or more")
        part = _field(kafka, "partition", "int", "envelope kafka")
        if not -(1 << 31) <= part < 1 << 31:
            raise Corrupt("envelope kafka: partition %d is not a 32-bit value" % part)
        off = _field(kafka, "offset", "int", "envelope kafka")
        if not 0 <= off < 1 << 63:
            raise Corrupt("envelope kafka: offset %d is outside 0..2^63-1" % off)
    if "writer" in env:
        _field(env, "writer", "str")
    return env


# ---- payload (section 3) ----


class Cursor:
    def __init__(self, buf):
        self.buf = buf
        self.pos = 0

    def need(self, n, what):
        if len(self.buf) - self.pos < n:
            raise Corrupt("payload: truncated in %s at offset %d" % (what, self.pos))

    def u32(self, what):
        self.need(4, what)
        v = struct.unpack_from("<I", self.buf, self.pos)[0]
        self.pos += 4
        return v

    def take(self, n, what):
        self.need(n, what)
        v = self.buf[self.pos:self.pos + n]
        self.pos += n
        return v


def utf8_valid(b):
    # Python's strict UTF-8 codec refuses overlongs, surrogates and > U+10FFFF.
    try:
        bytes(b).decode("utf-8", errors="strict")
        return True
    except UnicodeDecodeError:
        return False


def parse_payload(buf, max_dimension=4096):
    """Decodes payload v1 with every check of section 3.4, items 4 to 10."""
    c = Cursor(buf)
    h = {}
    c.need(4, "header")
    h["version"] = c.u32("header")
    if h["version"] != 1:
        raise Unsupported("payload version %d (this reader knows 1)" % h["version"])
    c.need(68, "header")
    (h["dimension"], h["m"], h["ef_construction"], h["ef_search"], h["distance"], h["seed"],
     h["rng"], h["nslots"], h["live"], h["deleted"], h["entry"], h["max_level"], h["repairs"],
     h["nfree"]) = struct.unpack_from("<5I2Q4IiQI", buf, c.pos)
    c.pos += 68
    dim, m = h["dimension"], h["m"]
    if not 1 <= dim <= max_dimension:
        raise Corrupt("payload: dimension %d is outside 1..%d" % (dim, max_dimension))
    if not 2 <= m <= 100:
        raise Corrupt("payload: m %d is outside 2..100" % m)
    for k in ("ef_construction", "ef_search"):
        if not 1 <= h[k] <= 10000:
            raise Corrupt("payload: %s %d is outside 1..10000" % (k, h[k]))
    if h["distance"] > 2:
        raise Corrupt("payload: unknown distance %d" % h["distance"])
    nslots, nfree, entry, max_level = h["nslots"], h["nfree"], h["entry"], h["max_level"]
    if nslots >= NONE or nslots > (len(buf) - c.pos) // 4:
        raise Corrupt("payload: %d slots cannot fit in %d bytes" % (nslots, len(buf) - c.pos))
    if h["live"] + h["deleted"] + nfree != nslots:
        raise Corrupt("payload: %d live + %d deleted + %d free != %d slots"
                      % (h["live"], h["deleted"], nfree, nslots))
    if not -1 <= max_level <= MAX_LEVEL:
        raise Corrupt("payload: max_level %d is outside -1..31" % max_level)
    empty = h["live"] + h["deleted"] == 0
    if (entry == NONE) != (max_level == -1) or (entry == NONE) != empty:
        raise Corrupt("payload: entry %d, max_level %d and %d used slots disagree"
                      % (entry, max_level, h["live"] + h["deleted"]))
    if entry != NONE and entry >= nslots:
        raise Corrupt("payload: entry %d is not below nslots %d" % (entry, nslots))
    c.need(4 * nfree, "the free list")
    free_list = list(struct.unpack_from("<%dI" % nfree, buf, c.pos))
    c.pos += 4 * nfree

    m0 = 2 * m
    slots = []
    ids = {}
    vec_fmt = "<%df" % dim
    for s in range(nslots):
        hdr = c.take(4, "slot %d" % s)
        state, level = hdr[0], hdr[1]
        if state > DELETED:
            raise Corrupt("payload: slot %d has unknown state %d" % (s, state))
        if level > MAX_LEVEL:
            raise Corrupt("payload: slot %d has level %d" % (s, level))
        if state == FREE:
            if level:
                raise Corrupt("payload: free slot %d has level %d" % (s, level))
            slots.append({"state": FREE, "level": 0})
            continue
        id_len = c.u32("slot %d" % s)
        meta_len = c.u32("slot %d" % s)
        ident = bytes(c.take(id_len, "the id of slot %d" % s))
        meta = bytes(c.take(meta_len, "the metadata of slot %d" % s))
        if state == LIVE:
            if not ident or not utf8_valid(ident):
                raise Corrupt("payload: slot %d has an empty or non-UTF-8 id" % s)
            if ident in ids:
                raise Corrupt("payload: slot %d repeats the id of slot %d" % (s, ids[ident]))
            ids[ident] = s
        elif id_len or meta_len:
            raise Corrupt("payload: deleted slot %d carries an id or metadata" % s)
        c.need(4 * dim, "the vector of slot %d" % s)
        vec = struct.unpack_from(vec_fmt, buf, c.pos)
        c.pos += 4 * dim
        for i, x in enumerate(vec):
            if not math.isfinite(x):
                raise Corrupt("payload: slot %d vector[%d] is not finite" % (s, i))
        links = []
        for lv in range(level + 1):
            cnt = c.u32("the links of slot %d" % s)
            limit = m0 if lv == 0 else m
            if cnt > limit:
                raise Corrupt("payload: slot %d level %d has %d links, more than %d"
                              % (s, lv, cnt, limit))
            c.need(4 * cnt, "the links of slot %d" % s)
            links.append(struct.unpack_from("<%dI" % cnt, buf, c.pos))
            c.pos += 4 * cnt
        slots.append({"state": state, "level": level, "id": ident, "meta": meta,
                      "vector": vec, "links": links})
    if c.pos != len(buf):
        raise Corrupt("payload: %d bytes after the last slot" % (len(buf) - c.pos))
    live = sum(1 for x in slots if x["state"] == LIVE)
    deleted = sum(1 for x in slots if x["state"] == DELETED)
    if live != h["live"] or deleted != h["deleted"]:
        raise Corrupt("payload: header says %d live and %d deleted, slots say %d and %d"
                      % (h["live"], h["deleted"], live, deleted))
    seen = set()
    for i, f in enumerate(free_list):
        if f >= nslots or slots[f]["state"] != FREE or f in seen:
            raise Corrupt("payload: free list entry %d names slot %d, which is not free" % (i, f))
        seen.add(f)
    if entry != NONE and (slots[entry]["state"] == FREE or slots[entry]["level"] != max_level):
        raise Corrupt("payload: entry %d is not a node of level %d" % (entry, max_level))
    for s, x in enumerate(slots):
        if x["state"] == FREE:
            continue
        for lv, lst in enumerate(x["links"]):
            for t in lst:
                if t >= nslots or t == s or slots[t]["state"] == FREE or slots[t]["level"] < lv:
                    raise Corrupt("payload: slot %d level %d links to invalid slot %d" % (s, lv, t))
    return h, free_list, slots


# ---- the file (sections 1 and 3.4) ----


def read_lhv1(data, max_dimension=4096):
    """Returns (envelope, header, free_list, slots) or raises Corrupt / Unsupported."""
    if len(data) < 8:
        raise Corrupt("file of %d bytes is shorter than the 8-byte header" % len(data))
    if data[:4] != b"LHV1":
        raise Corrupt("bad magic %r" % bytes(data[:4]))
    elen = struct.unpack_from(">I", data, 4)[0]
    if elen > MAX_ENVELOPE:
        raise Corrupt("envelope length %d exceeds 1 MiB" % elen)
    if elen > len(data) - 8:
        raise Corrupt("truncated: envelope of %d bytes, %d present" % (elen, len(data) - 8))
    env = parse_envelope(bytes(data[8:8 + elen]))
    plen, crc = env["payload"]["length"], env["payload"]["crc32c"]
    avail = len(data) - 8 - elen
    if plen < 0 or plen > avail:
        raise Corrupt("truncated: payload of %d bytes announced, %d present" % (plen, avail))
    if plen < avail:
        raise Corrupt("%d unexpected bytes after the payload" % (avail - plen))
    payload = memoryview(data)[8 + elen:]
    if not 0 <= crc <= 0xFFFFFFFF or crc32c(payload) != crc:
        raise Corrupt("payload checksum mismatch (CRC-32C)")
    h, free_list, slots = parse_payload(payload, max_dimension)
    # Section 2, last paragraph: the envelope must agree with the payload.
    p = env["params"]
    want = {
        "params.dimension": (p["dimension"], h["dimension"]),
        "params.m": (p["m"], h["m"]),
        "params.ef_construction": (p["ef_construction"], h["ef_construction"]),
        "params.ef_search": (p["ef_search"], h["ef_search"]),
        "params.distance": (p["distance"], DISTANCES[h["distance"]]),
        "params.seed": (int(p["seed"]), h["seed"]),
        "count": (env["count"], h["live"]),
        "deleted": (env["deleted"], h["deleted"]),
        "slots": (env["slots"], h["nslots"]),
        "rng_state": (int(env["rng_state"]), h["rng"]),
    }
    for key, (e, pv) in sorted(want.items()):
        if e != pv:
            raise Corrupt("envelope %s is %r, the payload says %r" % (key, e, pv))
    return env, h, free_list, slots


def summary(env, h, free_list, slots, nids):
    links = sum(len(lst) for x in slots if x["state"] != FREE for lst in x["links"])
    first = [x["id"].decode("utf-8") for x in slots if x["state"] == LIVE][:nids]
    return {
        "name": env["name"],
        "format_version": env["format_version"],
        "writer": env.get("writer"),
        "params": {
            "dimension": h["dimension"],
            "m": h["m"],
            "ef_construction": h["ef_construction"],
            "ef_search": h["ef_search"],
            "distance": DISTANCES[h["distance"]],
            "seed": str(h["seed"]),
        },
        "count": h["live"],
        "deleted": h["deleted"],
        "slots": h["nslots"],
        "free": len(free_list),
        "kafka": env.get("kafka"),
        "payload": {"version": h["version"], "length": env["payload"]["length"],
                    "crc32c": env["payload"]["crc32c"]},
        "entry": None if h["entry"] == NONE else h["entry"],
        "max_level": h["max_level"],
        "repairs": h["repairs"],
        "rng_state": str(h["rng"]),
        "links": links,
        "with_metadata": sum(1 for x in slots if x["state"] == LIVE and x["meta"]),
        "first_ids": first,
    }


# ---- self-test: a check the team can run without CMake ----


def _expect(results, label, data, kind):
    """kind: None (must load), Corrupt or Unsupported."""
    try:
        read_lhv1(data)
        got = None
    except (Corrupt, Unsupported) as e:
        got = type(e)
    if got is not kind:
        results.append("%s: expected %s, got %s" % (label, kind and kind.__name__ or "ok",
                                                    got and got.__name__ or "ok"))
    return got is kind


def _reenvelope(data, edit):
    """data with its envelope replaced by edit(dict) (and the length fixed)."""
    elen = struct.unpack_from(">I", data, 4)[0]
    env = json.loads(data[8:8 + elen].decode("utf-8"))
    edit(env)
    text = json.dumps(env, separators=(",", ":")).encode("utf-8")
    return b"LHV1" + struct.pack(">I", len(text)) + text + data[8 + elen:]


def _reseal(data, payload):
    """data with a new payload, its length and CRC-32C fixed in the envelope."""
    elen = struct.unpack_from(">I", data, 4)[0]
    head = data[:8 + elen] + payload

    def fix(env):
        env["payload"]["length"] = len(payload)
        env["payload"]["crc32c"] = crc32c(payload)
    return _reenvelope(head, fix)


def selftest(paths):
    failures, checks = [], 0
    if crc32c(b"123456789") != 0xE3069283:
        failures.append("crc32c(\"123456789\") = %#x" % crc32c(b"123456789"))
    checks += 1
    if not paths:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        paths = sorted(glob.glob(os.path.join(root, "tests", "fuzz", "corpus", "*.file")))
    if not paths:
        failures.append("no files to check")
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        name = os.path.basename(path)
        checks += 1
        if not _expect(failures, name, data, None):
            continue
        elen = struct.unpack_from(">I", data, 4)[0]
        payload = data[8 + elen:]
        step = max(1, len(data) // 97)
        for n in list(range(0, len(data), step)) + [len(data) - 1]:
            _expect(failures, "%s[:%d]" % (name, n), data[:n], Corrupt)
            checks += 1
        for n in range(0, len(payload), max(1, len(payload) // 31)):
            _expect(failures, "%s payload[:%d] resealed" % (name, n),
                    _reseal(data, payload[:n]), Corrupt)
            checks += 1
        for bit in range(0, len(payload) * 8, 7):
            flipped = bytearray(data)
            flipped[8 + elen + bit // 8] ^= 1 << (bit % 8)
            _expect(failures, "%s bit %d" % (name, bit), bytes(flipped), Corrupt)
            checks += 1
        cases = [
            ("trailing byte", data + b"\0", Corrupt),
            ("bad magic", b"LHV2" + data[4:], Corrupt),
            ("payload word 2", _reseal(data, struct.pack("<I", 2) + payload[4:]), Unsupported),
            ("format_version 2",
             _reenvelope(data, lambda e: e.__setitem__("format_version", 2)), Unsupported),
            ("payload.version 2",
             _reenvelope(data, lambda e: e["payload"].__setitem__("version", 2)), Unsupported),
            ("count + 1", _reenvelope(data, lambda e: e.__setitem__("count", e["count"] + 1)),
             Corrupt),
            ("slots + 1", _reenvelope(data, lambda e: e.__setitem__("slots", e["slots"] + 1)),
             Corrupt),
            ("seed", _reenvelope(data, lambda e: e["params"].__setitem__("seed", "1")), Corrupt),
            ("same envelope re-encoded", _reenvelope(data, lambda e: None), None),
        ]
        for label, bad, kind in cases:
            checks += 1
            _expect(failures, "%s %s" % (name, label), bad, kind)
    for f in failures:
        print("FAIL", f, file=sys.stderr)
    print("lhv1_reader selftest: %d checks on %d files, %d failures"
          % (checks, len(paths), len(failures)))
    return 1 if failures else 0


# Verdicts of vectord's reader (vd_err_code names) and what this reader must say.
_VERDICTS = {"ok": None, "corrupt_checkpoint": Corrupt, "invalid_params": Corrupt,
             "unknown_distance": Corrupt, "unsupported_version": Unsupported}


def check_dir(directory):
    """Files named <anything>.<verdict>.bin (test_lhv1 with LHV1_TEST_DUMP set)
    must get the same verdict from this reader."""
    failures, n = [], 0
    for path in sorted(glob.glob(os.path.join(directory, "*.bin"))):
        verdict = os.path.basename(path).rsplit(".", 2)[-2]
        if verdict not in _VERDICTS:
            failures.append("%s: unknown verdict %r" % (path, verdict))
            continue
        with open(path, "rb") as f:
            _expect(failures, os.path.basename(path), f.read(), _VERDICTS[verdict])
        n += 1
    for f in failures:
        print("DIFF", f, file=sys.stderr)
    print("lhv1_reader check-dir: %d files, %d disagreements" % (n, len(failures)))
    return 1 if failures or not n else 0


def main(argv):
    args = argv[1:]
    if args[:1] == ["--selftest"]:
        return selftest(args[1:])
    if args[:1] == ["--check-dir"] and len(args) == 2:
        return check_dir(args[1])
    nids, max_dim, path = 5, 4096, None
    try:
        while args:
            a = args.pop(0)
            if a == "--ids":
                nids = int(args.pop(0))
            elif a == "--max-dimension":
                max_dim = int(args.pop(0))
            elif path is None and not a.startswith("--"):
                path = a
            else:
                raise ValueError(a)
    except (ValueError, IndexError):
        path = None
    if path is None:
        print("usage: lhv1_reader.py FILE [--ids N] [--max-dimension D]\n"
              "       lhv1_reader.py --selftest [FILE...]\n"
              "       lhv1_reader.py --check-dir DIR", file=sys.stderr)
        return EXIT_USAGE
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        print("lhv1_reader: %s: %s" % (path, e.strerror), file=sys.stderr)
        return EXIT_IO
    try:
        env, h, free_list, slots = read_lhv1(data, max_dim)
    except Corrupt as e:
        print("lhv1_reader: %s: corrupt: %s" % (path, e), file=sys.stderr)
        return EXIT_CORRUPT
    except Unsupported as e:
        print("lhv1_reader: %s: unsupported version: %s" % (path, e), file=sys.stderr)
        return EXIT_VERSION
    json.dump(summary(env, h, free_list, slots, nids), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
