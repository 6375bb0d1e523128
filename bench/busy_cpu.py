"""A CPU run on a busy machine: OpenMP's spinning (active) waits vs passive waits, side by side.

The demo's VQ-VAE-2 fit (its longest stage, scaled down with fewer steps) runs through
``medsynbench run`` alone and as N copies at once (a busy node, CI, two users) under each
OpenMP waiting setting: ``default`` (nothing set: libgomp spins 300,000 times before sleeping —
what runs got before), ``ACTIVE`` (spin without limit), ``PASSIVE`` (sleep at once) and
``spin:N`` (``GOMP_SPINCOUNT=N``). Printed: wall seconds of each configuration, the slowdown of N
copies over one, and whether the sampled images of every run are identical (the waiting policy
must change scheduling only, never results).

    python bench/busy_cpu.py                     # 2 copies; default, PASSIVE, spin:10000
    python bench/busy_cpu.py --copies 3 --policies default,ACTIVE,PASSIVE
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SUITE = """
include = "{demo}"
encoders = []
metrics = []
tasks = []

[suite]
name = "busy-cpu"
seeds = [0]

[[generators]]
plugin = "vqvae2"
[generators.train]
preset = "tiny"
channels = 64
codebook_size = 64
vq_steps = {vq}
prior_steps = {prior}
"""


def _env(policy: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if policy == "default":  # libgomp's own default spin count (medsynbench then sets nothing)
        env["GOMP_SPINCOUNT"] = "300000"
    elif policy.startswith("spin:"):
        env["GOMP_SPINCOUNT"] = policy.split(":", 1)[1]
    else:
        env["OMP_WAIT_POLICY"] = policy
    return env


def _run_copies(suite: Path, copies: int, policy: str, work: Path) -> tuple[float, list[str]]:
    """Start ``copies`` runs at once; wall seconds until the last ends, and a digest of each
    run's sampled images."""
    env = _env(policy)
    outs = [work / f"{policy.lower().replace(':', '')}-{copies}-{i}" for i in range(copies)]
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "medsynbench.cli", "run", str(suite), "--out", str(out),
             "--quiet"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for out in outs
    ]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"a run failed ({policy}, {copies} copies):\n{err[-2000:]}")
    wall = time.perf_counter() - start
    digests = []
    for out in outs:
        images = sorted((out / "cache" / "sample").glob("*/images.npy"))
        digests.append(hashlib.sha256(b"".join(p.read_bytes() for p in images)).hexdigest()[:16])
    return wall, digests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--vq-steps", type=int, default=150)
    parser.add_argument("--prior-steps", type=int, default=120)
    parser.add_argument("--policies", default="default,PASSIVE,spin:10000")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="msb-busy-"))
    suite = work / "busy.toml"
    suite.write_text(SUITE.format(demo=ROOT / "suites" / "demo.toml", vq=args.vq_steps,
                                  prior=args.prior_steps))
    print(f"machine: {os.cpu_count()} CPUs; the demo's vqvae2 fit with {args.vq_steps}/"
          f"{args.prior_steps} steps, cpu_threads 2; one run vs {args.copies} at once")
    results: dict[str, tuple[float, float]] = {}
    digests: set[str] = set()
    for policy in args.policies.split(","):
        alone, d1 = _run_copies(suite, 1, policy, work)
        crowd, d2 = _run_copies(suite, args.copies, policy, work)
        digests.update(d1 + d2)
        results[policy] = (alone, crowd)
        print(f"{policy:<11} alone {alone:7.1f} s   {args.copies} at once {crowd:7.1f} s   "
              f"slowdown {crowd / alone:5.2f}× (ideal on a saturated machine: "
              f"{args.copies * 2 / max(os.cpu_count() or 1, 2):.2f}×)")
    names = list(results)
    for name in names[1:]:
        print(f"{name} vs {names[0]}: alone {results[name][0] / results[names[0]][0]:.2f}×, "
              f"{args.copies} at once {results[name][1] / results[names[0]][1]:.2f}×")
    print(f"sampled images identical across every run: {len(digests) == 1}")
    return 0 if len(digests) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
