"""What machine a benchmark ran on: every figure is printed with this record.

CPU model and the SIMD flags that decide the kernels' speed (AVX2, AVX-512,
AMX), cores and the threads used, NumPy / numba / BLAS versions and BLAS
threads, the peers' versions, and the load average before and after (with a
warning when the machine was busy: these machines are shared).
"""
import os
import platform
from pathlib import Path


def cpu():
    info = {"model": platform.processor() or "unknown", "flags": []}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and info["model"] in ("unknown", ""):
                info["model"] = line.split(":", 1)[1].strip()
            if line.startswith("model name"):
                info["model"] = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                info["flags"] = sorted(f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16",
                                                   "amx_tile", "amx_bf16") if f in flags)
                break
    except OSError:
        pass
    return info


def record(peers=(), threads=None):
    """The machine and software record (call ``finish(record)`` at the end)."""
    import numba
    import numpy as np
    from threadpoolctl import threadpool_info

    from importlib import metadata

    versions = {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__}
    for name in peers:
        # from the installed distribution, never by importing the peer here: a parent that imported
        # TensorFlow would pass its memory high-water mark (ru_maxrss) on to every worker it starts
        for dist in {"tensorflow": ("tensorflow-cpu", "tensorflow")}.get(name, (name,)):
            try:
                versions[name] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                versions[name] = "missing"
    blas = [{"library": p.get("internal_api"), "version": p.get("version"), "threads": p.get("num_threads"),
             "architecture": p.get("architecture")} for p in threadpool_info() if p.get("user_api") == "blas"]
    return {"cpu": cpu(), "cores": os.cpu_count(), "engine_threads": threads, "versions": versions, "blas": blas,
            "load_before": os.getloadavg(), "env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                                                    if k in os.environ}}


def finish(rec):
    rec["load_after"] = os.getloadavg()
    busy = max(rec["load_before"][0], rec["load_after"][0]) > 0.5 * (rec["cores"] or 1) + 0.5
    rec["busy"] = busy
    return rec


def describe(rec):
    c = rec["cpu"]
    blas = ", ".join(f"{b['library']} {b['version']} ({b['architecture']}, {b['threads']} threads)" for b in rec["blas"])
    lines = [f"CPU: {c['model']}, {rec['cores']} cores, flags {' '.join(c['flags']) or 'none of avx2/avx512/amx'}",
             f"engine threads: {rec['engine_threads']}; BLAS: {blas or 'unknown'}",
             "versions: " + ", ".join(f"{k} {v}" for k, v in rec["versions"].items()),
             f"load average before {rec['load_before'][0]:.2f}, after {rec.get('load_after', ('?',))[0]}"]
    if rec.get("busy"):
        lines.append("WARNING: the machine was busy during this run: its figures are noisy; run again on a quiet one")
    return "\n".join(lines)
