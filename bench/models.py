#!/usr/bin/env python3
"""Whole-model speed: loupe next to PyTorch, same machine, same run.

ResNet-18, ResNet-50 and ViT-B/16 (torchvision, random weights), forward
and forward + input gradient, batch 1 and 16, 1 and 2 threads. loupe is
timed by build/bench/model (best of a few runs after a warm-up), PyTorch
in this process the same way. Prints seconds per pass and the ratio
loupe/PyTorch (below 1 = loupe faster).

  bench/models.py [--quick] [ARCH ...]
"""
import os
import subprocess
import sys
import tempfile
import time

import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.environ.get("LOUPE_BUILD", "build")
BENCH = os.path.join(ROOT, BUILD, "bench", "model")
sys.path.insert(0, os.path.join(ROOT, "tests", "parity"))
import ref_models  # noqa: E402

ARCHS = ["resnet18", "resnet50", "vit_b_16"]


def torch_times(model, batch, threads, reps):
    ref_models.set_blas_threads(threads)
    x = torch.randn(batch, 3, 224, 224)
    best_f = best_g = float("inf")
    for r in range(reps + 1):
        t0 = time.perf_counter()
        with torch.no_grad():
            model(x)
        t1 = time.perf_counter()
        xr = x.clone().requires_grad_(True)
        model(xr)[:, 0].sum().backward()
        t2 = time.perf_counter()
        if r:
            best_f, best_g = min(best_f, t1 - t0), min(best_g, t2 - t1)
    return best_f, best_g


def loupe_times(lpw, batch, threads, reps):
    out = subprocess.run([BENCH, lpw, str(batch), str(threads), str(reps)],
                         stdout=subprocess.PIPE, check=True, text=True).stdout
    fields = dict(kv.split("=") for kv in out.split())
    return float(fields["forward_s"]), float(fields["grad_s"])


def main(argv):
    quick = "--quick" in argv
    archs = [a for a in argv if not a.startswith("--")] or ARCHS
    batches = [1] if quick else [1, 16]
    print("loupe vs PyTorch %s on %d cores (seconds per pass, best of runs)"
          % (torch.__version__, os.cpu_count()))
    print("PyTorch's BLAS: %s" % ref_models.blas_in_use())
    print("%-10s %5s %7s | %9s %9s %6s | %9s %9s %6s" % (
        "model", "batch", "threads", "fwd loupe", "fwd torch", "ratio",
        "grad loupe", "grad torch", "ratio"))
    with tempfile.TemporaryDirectory() as tmp:
        for arch in archs:
            model = ref_models.randomize(getattr(torchvision.models, arch)(), 1)
            ckpt = os.path.join(tmp, arch + ".pth")
            lpw = os.path.join(tmp, arch + ".lpw")
            torch.save(model.state_dict(), ckpt)
            subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert.py"),
                            "--arch", arch, ckpt, lpw], check=True,
                           stdout=subprocess.DEVNULL)
            for batch in batches:
                reps = 3 if batch == 1 else 1
                for threads in (1, 2):
                    lf, lg = loupe_times(lpw, batch, threads, reps)
                    tf, tg = torch_times(model, batch, threads, reps)
                    print("%-10s %5d %7d | %9.3f %9.3f %6.2f | %9.3f %9.3f %6.2f" % (
                        arch, batch, threads, lf, tf, lf / tf, lg, tg, lg / tg), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
