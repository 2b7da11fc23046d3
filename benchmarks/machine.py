"""What machine a benchmark ran on: every figure is printed with this record.

CPU model and the SIMD flags that decide the kernels' speed (AVX2, AVX-512,
AMX), cores and the threads used, NumPy / numba / BLAS versions and BLAS
threads, the peers' versions, and the load average before and after (with a
warning when the machine was busy: these machines are shared).
"""
import os
import platform
import time
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


def kind(info=None):
    """The CPU kind a result belongs to, by what decides the kernels' speed:
    'avx512-amx', 'avx512', 'avx2' or 'other' (one result file per kind)."""
    flags = set((info or cpu())["flags"])
    if "avx512f" in flags:
        return "avx512-amx" if "amx_tile" in flags else "avx512"
    return "avx2" if "avx2" in flags else "other"


def _busy_cpu_seconds():
    """CPU time the whole machine has spent busy since boot, from /proc/stat
    (every state but idle and iowait), or None where there is no such file."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(v) for v in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds():
    """CPU time of this process and of the children it has waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


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
            "load_before": os.getloadavg(), "_started": (time.time(), _busy_cpu_seconds(), _own_cpu_seconds()),
            "env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                                                    if k in os.environ}}


def finish(rec):
    """Add the load after the run and what the rest of the machine did meanwhile.

    The load average after a run counts the run itself (a benchmark on two
    cores leaves it near 2), so it cannot say whether others were busy. What
    can: the machine's busy CPU time over the run (/proc/stat) less this
    process's and its children's, per second of the run: the cores other
    programs kept busy (the hypervisor's stolen time included). More than a
    tenth of a core marks the run busy
    (where /proc/stat is missing: a load above half the cores before it; the
    load average also decays slowly from a run just finished, so a run
    started right after another would be marked busy by it for no reason).
    """
    rec["load_after"] = os.getloadavg()
    started, machine_before, own_before = rec.pop("_started", (None, None, None))
    machine_after = _busy_cpu_seconds()
    others = None
    if started is not None and machine_before is not None and machine_after is not None:
        wall = max(time.time() - started, 1e-9)
        others = max(0.0, (machine_after - machine_before) - (_own_cpu_seconds() - own_before)) / wall
    rec["other_cores_busy"] = others
    rec["busy"] = others > 0.1 if others is not None else rec["load_before"][0] > 0.5 * (rec["cores"] or 1)
    return rec


def describe(rec):
    c = rec["cpu"]
    blas = ", ".join(f"{b['library']} {b['version']} ({b['architecture']}, {b['threads']} threads)" for b in rec["blas"])
    lines = [f"CPU: {c['model']}, {rec['cores']} cores, flags {' '.join(c['flags']) or 'none of avx2/avx512/amx'}",
             f"engine threads: {rec['engine_threads']}; BLAS: {blas or 'unknown'}",
             "versions: " + ", ".join(f"{k} {v}" for k, v in rec["versions"].items()),
             f"load average before {rec['load_before'][0]:.2f}, after {rec.get('load_after', ('?',))[0]:.2f}"
             + ("" if rec.get("other_cores_busy") is None
                else f"; other programs kept {rec['other_cores_busy']:.2f} cores busy on average during the run")]
    if rec.get("busy"):
        lines.append("WARNING: the machine was busy during this run: its figures are noisy; run again on a quiet one")
    return "\n".join(lines)
