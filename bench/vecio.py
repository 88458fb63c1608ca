"""TEXMEX vector files (.fvecs/.ivecs/.bvecs) and exact k-NN ground truth.

Record layout, little-endian: int32 dim, then dim values (float32 for .fvecs,
int32 for .ivecs, uint8 for .bvecs).
"""
import os

import numpy as np

_VALUE = {".fvecs": np.float32, ".ivecs": np.int32, ".bvecs": np.uint8}


def read_vecs(path, limit=None):
    ext = os.path.splitext(path)[1]
    vt = np.dtype(_VALUE[ext]).newbyteorder("<")
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0:
        return np.zeros((0, 0), dtype=vt)
    dim = int(raw[:4].view("<i4")[0])
    rec = 4 + dim * vt.itemsize
    if raw.size % rec:
        raise ValueError(f"{path}: size {raw.size} is not a multiple of record size {rec}")
    rows = raw.reshape(-1, rec)
    if limit is not None:
        rows = rows[:limit]
    if not np.all(rows[:, :4].copy().view("<i4")[:, 0] == dim):
        raise ValueError(f"{path}: records have differing dimensions")
    return np.ascontiguousarray(rows[:, 4:]).view(vt).reshape(len(rows), dim).astype(vt.newbyteorder("="))


def write_vecs(path, arr):
    ext = os.path.splitext(path)[1]
    vt = np.dtype(_VALUE[ext]).newbyteorder("<")
    arr = np.ascontiguousarray(arr, dtype=vt)
    n, dim = arr.shape
    out = np.empty((n, 4 + dim * vt.itemsize), dtype=np.uint8)
    out[:, :4] = np.full((n, 1), dim, dtype="<i4").view(np.uint8)
    out[:, 4:] = arr.view(np.uint8).reshape(n, -1)
    tmp = path + ".tmp"
    out.tofile(tmp)
    os.replace(tmp, path)  # never leave a half-written file that looks complete


def exact_knn(base, queries, k, metric, chunk=200):
    """Exact top-k ids per query, ties broken by smaller index.

    Distances are computed in float64, so for integer-valued data (SIFT) ties are
    exact ties.  metric: euclidean (L2), cosine (1 - cos), dot (-<q, x>).
    """
    b = np.asarray(base, dtype=np.float64)
    q = np.asarray(queries, dtype=np.float64)
    if metric == "cosine":
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-30)
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30)
    bn = (b * b).sum(1)
    k = min(k, len(b))
    out = np.empty((len(q), k), dtype=np.int32)
    for s in range(0, len(q), chunk):
        qc = q[s:s + chunk]
        ip = qc @ b.T
        if metric == "euclidean":
            d = bn[None, :] - 2.0 * ip + (qc * qc).sum(1)[:, None]
        else:
            d = -ip  # cosine on normalised vectors, and dot, rank the same way as -<q, x>
        for i in range(len(qc)):
            row = d[i]
            kth = np.partition(row, k - 1)[k - 1]
            cand = np.nonzero(row <= kth)[0]          # ascending ids
            order = np.argsort(row[cand], kind="stable")  # stable: ties keep id order
            out[s + i] = cand[order[:k]]
    return out


def recall_at_k(found, truth, k):
    """mean over queries of |found[:k] ∩ truth[:k]| / k"""
    hits = 0
    for f, t in zip(found, truth):
        hits += len(set(np.asarray(f[:k]).tolist()) & set(np.asarray(t[:k]).tolist()))
    return hits / (k * len(truth))
