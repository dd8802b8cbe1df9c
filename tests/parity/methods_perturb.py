#!/usr/bin/env python3
"""PyTorch parity of the perturbation attributions (interp/perturbation.c,
interp/sobol.c, interp/surrogate.c), driven through `loupe explain`.

Model: ResNet-20 (CIFAR-10, real weights from ../shared/data/models, converted
with tools/convert.py --arch resnet20); without ../shared, the same network
with seeded random weights (ref_models.randomize). Inputs: 2 CIFAR-10 test
images (or seeded noise), normalised. The reference is written here in
PyTorch/NumPy (float64 model) with the semantics documented in
docs/methods/perturbation.md:
  - occlusion: Captum's Occlusion (sliding window over all channels, mean
    over covering windows of S(x) - S(x_occ); uncovered pixels 0);
  - sobol: scipy.stats.qmc.Sobol(2d, scramble=False) masks, nearest
    upsampling, inpainting or blur (cv2.blur 10x10, reflect-101 borders),
    the original estimators, bicubic (a = -0.75) resize of the ST grid;
  - kernelshap: efficiency, sum of the cells = f(x) - f(all cells off);
  - rise: the map of a few masks is finite and has the right shape.
Pass: relative L2 ||loupe - ref|| / ||ref|| <= 1e-3 (efficiency: <= 1e-3 of
|f(x) - f(0)|). Prints a table and "N passed, N failed"; exit 1 on failure.
"""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import qmc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import ref_models  # noqa: E402

LOUPE = os.path.join(ROOT, os.environ.get("LOUPE_BUILD", "build"), "loupe")
CONVERT = os.path.join(ROOT, "tools", "convert.py")
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared", "data"))
CKPT = os.path.join(SHARED, "models", "resnet_cifar10", "resnet20-12fca82f.th")
CIFAR = os.path.join(SHARED, "images", "cifar10", "cifar10_test_yk_decoded.bin")
TOL = 1e-3
# On a shared, oversubscribed machine OpenMP's spinning barriers can make
# each forward 100x slower; passive waiting costs nothing otherwise.
ENV = dict(os.environ)
ENV.setdefault("OMP_WAIT_POLICY", "passive")


def load_model():
    model = ref_models.CifarResNet(3)
    if os.path.exists(CKPT):
        sd = torch.load(CKPT, map_location="cpu")
        sd = sd.get("state_dict", sd)
        sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
        model.load_state_dict(sd)
        origin = "real weights"
    else:
        ref_models.randomize(model, 0)
        origin = "random weights (../shared missing)"
    return model.eval(), origin


def load_inputs(n=2):
    if os.path.exists(CIFAR):
        rec = np.fromfile(CIFAR, np.uint8, count=3073 * n).reshape(n, 3073)
        x = rec[:, 1:].reshape(n, 3, 32, 32).astype(np.float32) / 255.0
    else:
        x = np.random.default_rng(0).random((n, 3, 32, 32), dtype=np.float32)
    mean = np.array([0.485, 0.456, 0.406], np.float32)[None, :, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[None, :, None, None]
    return ((x - mean) / std).astype(np.float32)


class Scorer:
    """Target logits of batches of perturbed copies of one image (float64)."""

    def __init__(self, model):
        self.model = model.double()

    def __call__(self, xs, cls):
        return ref_models.forward_float64(self.model, xs)[:, cls].numpy()


def ref_occlusion(f, x, cls, patch, stride, value):
    C, H, W = x.shape
    ys = range(0, H - patch + 1, stride)
    xs_ = range(0, W - patch + 1, stride)
    base = f(x[None], cls)[0]
    batch, pos = [], []
    for py in ys:
        for px in xs_:
            xo = x.copy()
            xo[:, py:py + patch, px:px + patch] = value
            batch.append(xo)
            pos.append((py, px))
    sc = f(np.stack(batch), cls)
    acc = np.zeros((H, W))
    cnt = np.zeros((H, W))
    for (py, px), s in zip(pos, sc):
        acc[py:py + patch, px:px + patch] += base - s
        cnt[py:py + patch, px:px + patch] += 1
    return np.where(cnt > 0, acc / np.maximum(cnt, 1), 0.0)


def box_blur10(x):
    """cv2.blur(x, (10, 10)): window [i-5, i+4], borders reflect-101."""
    p = np.pad(x, ((0, 0), (5, 4), (5, 4)), mode="reflect")
    c = np.cumsum(np.cumsum(np.pad(p, ((0, 0), (1, 0), (1, 0))), 1), 2)
    H, W = x.shape[1:]
    return (c[:, 10:10 + H, 10:10 + W] - c[:, :H, 10:10 + W] - c[:, 10:10 + H, :W]
            + c[:, :H, :W]) / 100.0


def sobol_total(fa, fc, est):
    N = len(fa)
    mu = fa.mean()
    var = max(((fa - mu) ** 2).sum() / (N - 1), 1e-12)
    st = []
    for c in fc:
        if est == "jansen":
            st.append(((fa - c) ** 2).sum() / (2 * N * var))
        elif est == "saltelli":
            st.append(1 - ((fa * c).mean() - mu ** 2) / var)
        elif est == "homma":
            st.append((var - (fa * c).mean() + mu ** 2) / var)
        else:  # janon
            f0 = (fa + c).sum() / (2 * N)
            v = (fa ** 2 + c ** 2).sum() / (2 * (N - 1)) - f0 ** 2
            st.append(1 - ((fa * c).mean() - f0 ** 2) / v)
    return np.array(st)


def ref_sobol(f, x, cls, grid, N, perturbation, est):
    C, H, W = x.shape
    d = grid * grid
    seq = qmc.Sobol(2 * d, scramble=False).random(N)
    A, B = seq[:, :d], seq[:, d:]
    Cs = []
    for i in range(d):
        c = A.copy()
        c[:, i] = B[:, i]
        Cs.append(c)
    masks = np.concatenate([A, B] + Cs).astype(np.float32).reshape(-1, 1, grid, grid)
    up = F.interpolate(torch.from_numpy(masks), size=(H, W), mode="nearest").numpy()
    if perturbation == "inpaint":
        xs = x[None] * up
    else:
        xs = x[None] * up + box_blur10(x)[None] * (1 - up)
    sc = f(xs, cls)
    fa, fc = sc[:N], sc[2 * N:].reshape(d, N)
    st = sobol_total(fa, fc, est).reshape(1, 1, grid, grid)
    return F.interpolate(torch.from_numpy(st), size=(H, W), mode="bicubic",
                         align_corners=False)[0, 0].numpy()


def run_loupe(tmp, lpw, x, method, args):
    xp = os.path.join(tmp, "x.npy")
    op = os.path.join(tmp, "map.npy")
    np.save(xp, x)
    t0 = time.time()
    r = subprocess.run([LOUPE, "explain", "--model", lpw, "--input", xp, "--method", method,
                        "--target", "top", "--score", "logit", "--out", op, "--quiet"] + args,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       env=ENV)
    if r.returncode != 0:
        raise RuntimeError("loupe explain failed: " + r.stderr.strip())
    return np.load(op), time.time() - t0


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def main():
    if not os.path.exists(LOUPE):
        print("build/loupe missing: run make first")
        return 1
    model, origin = load_model()
    x = load_inputs()
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(model.state_dict(), os.path.join(tmp, "sd.pt"))
        lpw = os.path.join(tmp, "r20.lpw")
        subprocess.run([sys.executable, CONVERT, "--arch", "resnet20", "--quiet",
                        os.path.join(tmp, "sd.pt"), lpw], check=True)
        f = Scorer(model)
        with torch.no_grad():
            cls = model(torch.as_tensor(x, dtype=torch.float64)).argmax(1).numpy()
        print("ResNet-20 CIFAR-10 (%s), %d images, classes %s" % (origin, len(x), list(cls)))
        cases = [
            ("occlusion p8 s4 v0", "occlusion", ["--patch", "8", "--stride", "4"],
             lambda xb, c: ref_occlusion(f, xb, c, 8, 4, 0.0)),
            ("occlusion p6 s4 v-1 (uncovered border)", "occlusion",
             ["--patch", "6", "--stride", "4", "--occlusion-value", "-1"],
             lambda xb, c: ref_occlusion(f, xb, c, 6, 4, -1.0)),
            ("sobol grid8 N32 inpaint jansen", "sobol", ["--grid", "8", "--designs", "32"],
             lambda xb, c: ref_sobol(f, xb, c, 8, 32, "inpaint", "jansen")),
            ("sobol grid4 N64 blur saltelli", "sobol",
             ["--grid", "4", "--designs", "64", "--perturbation", "blur", "--estimator", "saltelli"],
             lambda xb, c: ref_sobol(f, xb, c, 4, 64, "blur", "saltelli")),
            ("sobol grid4 N32 inpaint janon", "sobol",
             ["--grid", "4", "--designs", "32", "--estimator", "janon"],
             lambda xb, c: ref_sobol(f, xb, c, 4, 32, "inpaint", "janon")),
        ]
        passed = failed = 0
        print("%-42s %12s %8s %8s  %s" % ("case", "rel L2", "loupe s", "ref s", ""))
        for name, method, args, ref in cases:
            try:
                got, tl = run_loupe(tmp, lpw, x, method, args)
                t0 = time.time()
                want = np.stack([ref(x[b], int(cls[b])) for b in range(len(x))])
                tr = time.time() - t0
                err = rel_l2(got.astype(np.float64), want) if got.shape == want.shape else float("inf")
                ok = err <= TOL
            except Exception as e:  # noqa: BLE001
                print("%-42s ERROR %s" % (name, e))
                failed += 1
                continue
            print("%-42s %12.3e %8.2f %8.2f  %s" % (name, err, tl, tr, "ok" if ok else "FAIL"))
            passed += ok
            failed += not ok
        # kernelshap efficiency and rise sanity
        try:
            got, tl = run_loupe(tmp, lpw, x, "kernelshap",
                                ["--segments", "grid", "--grid", "4", "--lime-samples", "200", "--seed", "1"])
            gap = 0.0
            for b in range(len(x)):
                fx = f(x[b:b + 1], int(cls[b]))[0]
                f0 = f(np.zeros_like(x[b:b + 1]), int(cls[b]))[0]
                tot = got[b][::8, ::8].sum()
                gap = max(gap, abs(tot - (fx - f0)) / max(abs(fx - f0), 1e-12))
            ok = gap <= TOL
            print("%-42s %12.3e %8.2f %8s  %s" % ("kernelshap efficiency |sum-(f(x)-f(0))|", gap,
                                                   tl, "-", "ok" if ok else "FAIL"))
            passed += ok
            failed += not ok
            got, tl = run_loupe(tmp, lpw, x, "rise", ["--masks", "256", "--seed", "2"])
            ok = got.shape == (len(x), 32, 32) and bool(np.isfinite(got).all()) and got.std() > 0
            print("%-42s %12s %8.2f %8s  %s" % ("rise finite, [N,H,W], not constant", "-", tl, "-",
                                                 "ok" if ok else "FAIL"))
            passed += ok
            failed += not ok
        except Exception as e:  # noqa: BLE001
            print("surrogate/rise checks ERROR", e)
            failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
