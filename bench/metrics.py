"""Benchmark the metrics against the reference implementations, in one run.

CPU (default): N real = N fake = 5000 features of d = 2048 (float64). Ours: ``fid`` + ``prdc``
(k = 5). Peers: the ``prdc`` package (``compute_prdc``) + the classic pytorch-fid Fréchet
distance with ``scipy.linalg.sqrtm`` (written out below). Each side runs ``--repeat`` times
(default 2) and its best wall time counts, as ``timeit`` does: first-call costs (thread pools,
library initialisation) and a noisy shared host then weigh on neither side. Prints both times,
their ratio and checks that the values agree.

``--gpu``: 50k × 50k features (d = 2048) for FID + KID + PRDC + kNN privacy on CUDA (goal ≤ 3 s,
≤ 4 GB peak host RAM), then kNN privacy in normalised-Hamming space on 50k × 50k code maps of
4096 codes (codebook 512; goal ≤ 60 s). Timings exclude data generation and a small warm-up
call (CUDA context, cuBLAS/cuSOLVER handles); they include host → device transfers.

    python bench/metrics.py                 # CPU comparison
    python bench/metrics.py --gpu           # GPU scale test
    python bench/metrics.py --n 1000 --d 256  # quick
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from medsynbench import metrics


def peak_rss_gb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def timed_cpu(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """Value, wall seconds and CPU seconds of this process (robust on a shared machine)."""
    cpu = time.process_time()
    value, wall = timed(fn)
    return value, wall, time.process_time() - cpu


def features(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """Correlated non-negative float32 features, roughly like pooled CNN activations."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, d), dtype=np.float32)
    z[:, : d // 2] += z[:, d // 2 : 2 * (d // 2)] * 0.5  # some correlation between dimensions
    return np.maximum(z + 0.5 + shift, 0.0, dtype=np.float32)


def scipy_fid(real: np.ndarray, fake: np.ndarray) -> float:
    """pytorch-fid's ``calculate_frechet_distance`` (scipy ≥ 1.16 removed ``sqrtm(disp=)``)."""
    import scipy.linalg

    mu1, mu2 = real.mean(axis=0), fake.mean(axis=0)
    sigma1, sigma2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """Value, best wall seconds and the CPU seconds of that run, over ``repeat`` runs."""
    runs = [timed_cpu(fn) for _ in range(repeat)]
    return min(runs, key=lambda run: run[1])


def cpu_bench(n: int, d: int, k: int, repeat: int) -> int:
    import prdc
    import torch

    real = features(n, d, seed=0).astype(np.float64)
    fake = features(n, d, seed=1, shift=0.05).astype(np.float64)
    print(f"CPU bench: N = {n} real, {n} fake, d = {d}, k = {k}; torch threads "
          f"{torch.get_num_threads()}; best of {repeat} runs each")

    ours_fid, t_fid, c_fid = best_of(repeat, lambda: metrics.fid(real, fake, device="cpu"))
    ours_prdc, t_prdc, c_prdc = best_of(
        repeat, lambda: metrics.prdc(real, fake, k=k, device="cpu"))
    print(f"  ours : FID {t_fid:7.2f} s  PRDC {t_prdc:7.2f} s  total {t_fid + t_prdc:7.2f} s"
          f"  (CPU time {c_fid + c_prdc:.1f} s)")

    peer_fid, tp_fid, cp_fid = best_of(repeat, lambda: scipy_fid(real, fake))
    peer_prdc, tp_prdc, cp_prdc = best_of(
        repeat, lambda: prdc.compute_prdc(real, fake, nearest_k=k))
    print(f"  peers: FID {tp_fid:7.2f} s  PRDC {tp_prdc:7.2f} s  total {tp_fid + tp_prdc:7.2f} s"
          f"  (CPU time {cp_fid + cp_prdc:.1f} s; scipy sqrtm + prdc package)")
    ratio = (tp_fid + tp_prdc) / (t_fid + t_prdc)
    print(f"  speed-up: {ratio:.1f}x overall wall time (FID {tp_fid / t_fid:.1f}x, "
          f"PRDC {tp_prdc / t_prdc:.1f}x); "
          f"{(cp_fid + cp_prdc) / (c_fid + c_prdc):.1f}x in CPU time")

    ok = abs(ours_fid - peer_fid) <= 1e-6 * max(1.0, abs(peer_fid))
    print(f"  FID  ours {ours_fid:.9f}  scipy {peer_fid:.9f}  {'equal' if ok else 'DIFFERENT'}"
          " (rel. 1e-6)")
    for name in ("precision", "recall", "density", "coverage"):
        same = abs(ours_prdc[name] - float(peer_prdc[name])) <= 1e-6
        ok &= same
        print(f"  {name:9s} ours {ours_prdc[name]:.6f}  prdc {float(peer_prdc[name]):.6f}  "
              f"{'equal' if same else 'DIFFERENT'}")
    print(f"  peak host RSS {peak_rss_gb():.2f} GB")
    return 0 if ok else 1


def gpu_matches_cpu(n: int, d: int, k: int) -> bool:
    """Every metric on an n-point subsample gives the same value on CUDA and on the CPU."""
    real, fake = features(n, d, seed=3), features(n, d, seed=4, shift=0.05)
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 512, size=(2, n, 1024), dtype=np.int16)
    codes[1, : n // 10] = codes[0, : n // 10]
    calls: dict[str, Callable[[str], Any]] = {
        "fid": lambda dev: metrics.fid(real, fake, device=dev),
        "kid": lambda dev: metrics.kid(real, fake, subsets=10, device=dev),
        "prdc": lambda dev: metrics.prdc(real, fake, k=k, device=dev),
        "knn_privacy": lambda dev: metrics.knn_privacy(real, fake, k=k, device=dev),
        "authenticity": lambda dev: metrics.authenticity(real, fake, device=dev),
        "hamming": lambda dev: metrics.knn_privacy(codes[0], codes[1], k=k,
                                                    distance="hamming", device=dev),
    }
    ok = True
    for name, fn in calls.items():
        gpu, cpu = fn("cuda"), fn("cpu")
        if isinstance(gpu, float):
            same = abs(gpu - cpu) <= 1e-6 * max(1.0, abs(cpu))
        else:
            same = all(abs(gpu[key] - cpu[key]) <= 1e-6 * max(1.0, abs(cpu[key])) for key in cpu)
        ok &= same
        print(f"  check {name:12s} cuda == cpu: {same}  {cpu}")
    return ok


def gpu_features(n: int, d: int, k: int) -> None:
    import torch

    real, fake = features(n, d, seed=0), features(n, d, seed=1, shift=0.05)
    small = real[:256]
    metrics.fid(small, small[::-1].copy(), device="cuda")  # warm-up: context, handles
    metrics.prdc(small, small, k=k, device="cuda")
    torch.cuda.synchronize()
    steps: dict[str, Callable[[], Any]] = {
        "FID": lambda: metrics.fid(real, fake, device="cuda"),
        "KID": lambda: metrics.kid(real, fake, device="cuda"),
        "PRDC": lambda: metrics.prdc(real, fake, k=k, device="cuda"),
        "kNN privacy": lambda: metrics.knn_privacy(real, fake, k=k, device="cuda"),
    }
    total = 0.0
    for name, fn in steps.items():
        value, seconds = timed(fn)
        torch.cuda.synchronize()
        total += seconds
        print(f"  {name:12s} {seconds:6.2f} s  {value}")
    rss = peak_rss_gb()
    print(f"  features total {total:.2f} s (goal ≤ 3 s); peak host RSS {rss:.2f} GB (goal ≤ 4 GB);"
          f" peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GB")


def gpu_bench(n: int, d: int, k: int, n_codes: int, code_len: int, codebook: int) -> int:
    import torch

    if not torch.cuda.is_available():
        print("--gpu needs CUDA", file=sys.stderr)
        return 2
    print(f"GPU bench on {torch.cuda.get_device_name(0)}: N = {n} real, {n} fake, d = {d}")
    ok = gpu_matches_cpu(min(n, 3000), d, k)
    gpu_features(n, d, k)

    rng = np.random.default_rng(2)
    real_codes = rng.integers(0, codebook, size=(n_codes, code_len), dtype=np.int16)
    fake_codes = rng.integers(0, codebook, size=(n_codes, code_len), dtype=np.int16)
    fake_codes[: n_codes // 50] = real_codes[: n_codes // 50]  # 2% copies
    metrics.knn_privacy(real_codes[:512], fake_codes[:512], k=k, distance="hamming",
                        device="cuda")
    value, seconds = timed(lambda: metrics.knn_privacy(real_codes, fake_codes, k=k,
                                                       distance="hamming", device="cuda"))
    print(f"  Hamming kNN privacy, {n_codes} × {n_codes} code maps of {code_len} codes: "
          f"{seconds:.1f} s (goal ≤ 60 s)  {value}")
    print(f"  peak host RSS {peak_rss_gb():.2f} GB")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", action="store_true", help="the 50k × 50k CUDA scale test")
    parser.add_argument("--n", type=int, default=None, help="points per set")
    parser.add_argument("--d", type=int, default=2048, help="feature dimension")
    parser.add_argument("--k", type=int, default=5, help="nearest neighbours")
    parser.add_argument("--repeat", type=int, default=2,
                        help="CPU: runs of each side; the best is reported (default 2)")
    parser.add_argument("--n-codes", type=int, default=50_000, help="code maps per set (--gpu)")
    parser.add_argument("--code-len", type=int, default=4096, help="codes per map (--gpu)")
    parser.add_argument("--codebook", type=int, default=512, help="codebook size (--gpu)")
    args = parser.parse_args(argv)
    if args.gpu:
        return gpu_bench(args.n or 50_000, args.d, args.k, args.n_codes, args.code_len,
                         args.codebook)
    return cpu_bench(args.n or 5000, args.d, args.k, max(1, args.repeat))


if __name__ == "__main__":
    raise SystemExit(main())
