#!/usr/bin/env python3
"""Malformed and invalid commands against a real Kafka (CTest: kafka_malformed).

Each case below is a raw record produced to the commands topic, tagged with
a `case` header. Every one must land in the DLQ with the expected
`error-code` and the source headers, the worker must keep serving, and the
valid commands produced between the cases must all be applied. One case
asks for a reply and must get the error as its ack. Search-topic errors
come back as error replies.

Usage: kafka_malformed.py VECTORD VECTORCTL WORKDIR
"""
import base64
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import time

vectord, vectorctl, work = sys.argv[1:4]
repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
kafka = os.path.join(repo, "deploy", "kafka", "kafka.sh")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
os.chdir(work)


def pack(v):
    """A minimal msgpack encoder: enough to build test bodies."""
    if v is None:
        return b"\xc0"
    if v is True or v is False:
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, bytes):
        return b"\xc6" + struct.pack(">I", len(v)) + v
    if isinstance(v, str):
        b = v.encode()
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(v, (list, tuple)):
        return b"\xdd" + struct.pack(">I", len(v)) + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        return b"\xdf" + struct.pack(">I", len(v)) + b"".join(
            pack(k) + pack(x) for k, x in v.items())
    raise TypeError(v)


def free_ports(n):
    """deploy/lib.sh's free_port: ports outside the ephemeral range."""
    return subprocess.run(
        ["bash", "-c", 'PROG=kafka_malformed; source "$0"; free_port "$1"',
         os.path.join(repo, "deploy", "lib.sh"), str(n)],
        check=True, capture_output=True, text=True).stdout.split()


def run(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, **kw)


port, cport = free_ports(2)
run(kafka, "start", "--dir", f"{work}/kafka", "--port", port, "--controller-port", cport)
worker = None
try:
    bootstrap = open(f"{work}/kafka/bootstrap").read().strip()
    for t, n in (("vectord.commands", 3), ("vectord.search", 3), ("vectord.commands.dlq", 1),
                 ("vectord.replies", 1)):
        run(kafka, "topic", "create", t, "--partitions", str(n), "--dir", f"{work}/kafka")
    log = open("vectord.log", "w")
    worker = subprocess.Popen(
        [vectord, "-X", f"kafka.bootstrap.servers={bootstrap}", "-X", f"store.url=file://{work}/s",
         "-X", "limits.max.batch=50", "-X", "limits.max.metadata.bytes=100",
         "-X", "limits.max.message.bytes=4096", "-X", "http.listen=127.0.0.1:0"], stdout=log, stderr=log)
    ctl = [vectorctl, "-b", bootstrap, "--timeout", "30000"]
    run(*ctl, "create", "m", "--dim", "4", "--distance", "cosine")
    run(*ctl, "create", "e", "--dim", "4", "--distance", "euclidean")

    def produce(key, body, **headers):
        hdr = []
        for k, v in headers.items():
            hdr += ["--header", f"{k.replace('_', '-')}={v}"]
        run(*ctl, "produce", "vectord.commands", key, *hdr, input=body)

    good = 0

    def produce_good():
        global good
        body = pack({"op": "add", "index": "m",
                     "items": [{"id": f"good{good}", "vector": [1.0, 0.5, float(good), 2.0]}]})
        produce("m", body)
        good += 1

    add = lambda items, index="m": pack({"op": "add", "index": index, "items": items})  # noqa
    ok_item = {"id": "x", "vector": [1.0, 2.0, 3.0, 4.0]}
    valid_add = add([ok_item])
    cases = [
        ("not msgpack", "m", b"\xc1 definitely not msgpack", {}, "decode_error"),
        ("truncated msgpack", "m", valid_add[:12], {}, "decode_error"),
        ("JSON syntax error", "m", b'{"op": "add", "index": ', {"content_type": "application/json"},
         "decode_error"),
        ("top-level array", "m", pack([1, 2, 3]), {}, "decode_error"),
        ("missing op", "m", pack({"index": "m"}), {}, "invalid_request"),
        ("op not a string", "m", pack({"op": 5, "index": "m"}), {}, "invalid_request"),
        ("unknown op", "m", pack({"op": "explode", "index": "m"}),
         {"reply_to": "vectord.replies", "correlation_id": "case-unknown-op"}, "unknown_op"),
        ("missing index", "m", pack({"op": "add", "items": [ok_item]}), {}, "invalid_request"),
        ("key is not the index", "m", add([ok_item], "e"), {}, "key_mismatch"),
        ("items not an array", "m", pack({"op": "add", "index": "m", "items": 5}), {},
         "invalid_request"),
        ("empty items", "m", add([]), {}, "invalid_request"),
        ("item without vector", "m", add([{"id": "y"}]), {}, "invalid_request"),
        ("empty id", "m", add([{"id": "", "vector": [1.0, 2.0, 3.0, 4.0]}]), {}, "invalid_vector"),
        ("vector element not a number", "m", add([{"id": "y", "vector": [1.0, "2", 3.0, 4.0]}]),
         {}, "invalid_request"),
        ("NaN in vector", "m", add([{"id": "y", "vector": [1.0, math.nan, 3.0, 4.0]}]), {},
         "invalid_vector"),
        ("Inf in JSON-free msgpack", "e", add([{"id": "y", "vector": [math.inf, 0.0, 0.0, 1.0]}],
                                              "e"), {}, "invalid_vector"),
        ("dimension mismatch", "m", add([{"id": "y", "vector": [1.0, 2.0, 3.0]}]), {},
         "invalid_vector"),
        ("zero vector under cosine", "m", add([{"id": "y", "vector": [0.0, 0.0, 0.0, 0.0]}]), {},
         "invalid_vector"),
        ("one bad item rejects the batch", "m",
         add([ok_item, {"id": "z", "vector": [1.0, 2.0]}]), {}, "invalid_vector"),
        ("oversized batch", "m", add([{"id": f"b{i}", "vector": [1.0, 1.0, 1.0, 1.0]}
                                      for i in range(51)]), {}, "limit_exceeded"),
        ("bin vector of 5 bytes", "m", add([{"id": "y", "vector": b"\x00" * 5}]), {},
         "invalid_request"),
        ("metadata over the limit", "m", add([dict(ok_item, metadata="x" * 200)]), {},
         "limit_exceeded"),
        ("message over the limit", "m", add([dict(ok_item, id="i" * 5000)]), {},
         "limit_exceeded"),
        ("search on the commands topic", "m",
         pack({"op": "search", "index": "m", "vector": [1.0, 2.0, 3.0, 4.0]}), {}, "unknown_op"),
        ("add to a missing index", "nope", add([ok_item], "nope"), {}, "not_found"),
        ("create with m=1", "n1", pack({"op": "create", "index": "n1", "dimension": 4, "m": 1}),
         {}, "invalid_params"),
        ("unknown distance", "n2",
         pack({"op": "create", "index": "n2", "dimension": 4, "distance": "manhattan"}), {},
         "unknown_distance"),
        ("create an existing index", "m", pack({"op": "create", "index": "m", "dimension": 4}), {},
         "already_exists"),
        ("delete ids not an array", "m", pack({"op": "delete", "index": "m", "ids": "x"}), {},
         "invalid_request"),
        ("dimension out of range", "n3",
         pack({"op": "create", "index": "n3", "dimension": 100000}), {}, "invalid_params"),
    ]
    for i, (name, key, body, headers, code) in enumerate(cases):
        produce_good()
        produce(key, body, case=str(i), **headers)
    produce_good()

    failures = []
    out = run(*ctl, "consume", "vectord.commands.dlq", "--count", str(len(cases))).stdout
    dlq = {}
    for line in out.decode().splitlines():
        rec = json.loads(line)
        dlq[rec["headers"].get("case")] = rec
    for i, (name, key, body, headers, code) in enumerate(cases):
        rec = dlq.get(str(i))
        if not rec:
            failures.append(f"case {i} ({name}): not in the DLQ")
            continue
        h = rec["headers"]
        if h.get("error-code") != code:
            failures.append(f"case {i} ({name}): error-code {h.get('error-code')}, want {code}: "
                            f"{h.get('error-message')}")
        for need in ("error-message", "source-topic", "source-partition", "source-offset"):
            if not h.get(need):
                failures.append(f"case {i} ({name}): DLQ header {need} missing")
        if rec["key"] != key:
            failures.append(f"case {i} ({name}): DLQ key {rec['key']!r}, want {key!r}")
    # The unknown-op case asked for a reply: its ack is the error.
    replies = subprocess.run([vectorctl, "-b", bootstrap, "--timeout", "3000", "consume",
                              "vectord.replies"], capture_output=True).stdout
    acked = [json.loads(l) for l in replies.decode().splitlines()]
    def value(r):
        return (r.get("value") or "").encode() or base64.b64decode(r.get("value_base64", ""))
    if not any(r["headers"].get("correlation-id") == "case-unknown-op" and
               b"unknown_op" in value(r) for r in acked):
        failures.append("the unknown-op command asked for a reply and got no error ack")
    # Everything around the bad records was applied; the worker still serves.
    # (Polled: the last valid adds may still be on their way.)
    for _ in range(100):
        info = json.loads(run(*ctl, "--json", "info", "m").stdout)
        if info.get("length") == good:
            break
        time.sleep(0.1)
    if info.get("length") != good:
        failures.append(f"index m has {info.get('length')} items, want the {good} valid ones")
    r = subprocess.run([*ctl, "search", "m", "--vector", "[1,2,3,4]", "--k", "5000"],
                       capture_output=True)
    if r.returncode != 1 or b"invalid_params" not in r.stderr:
        failures.append(f"search with k=5000: exit {r.returncode}, {r.stderr.decode().strip()}")
    r = subprocess.run([*ctl, "search", "m", "--vector", "[1,2]"], capture_output=True)
    if r.returncode != 1 or b"invalid_vector" not in r.stderr:
        failures.append(f"search with a 2-d vector: {r.stderr.decode().strip()}")
    if worker.poll() is not None:
        failures.append("the worker exited")
    for f in failures:
        print("FAIL:", f)
    print(f"kafka_malformed: {len(cases) - len(failures)} passed, {len(failures)} failed"
          if failures else f"kafka_malformed: {len(cases)} passed, 0 failed")
    sys.exit(1 if failures else 0)
finally:
    if worker:
        worker.terminate()
        worker.wait(30)
    subprocess.run([kafka, "stop", "--dir", f"{work}/kafka"], capture_output=True)
