#!/usr/bin/env python3
"""PyTorch parity of `loupe evaluate`'s metrics (interp/metrics.c).

Model: the real CIFAR-10 ResNet-20 (weights/resnet20_cifar10.lpw, converted
from ../shared/data/models/resnet_cifar10; loaded here from the .lpw with
tools/lpw.py so the repository alone suffices). Inputs: the first 20
CIFAR-10 test images (tests/data/cifar10_test_first200.bin), normalised.

loupe evaluate runs saliency, Grad-CAM and RISE (500 masks) and saves each
map (--save-maps); this script recomputes, from those same maps and in
PyTorch (float64 model), the protocols of docs/methods/metrics.md:
  deletion and insertion under the RISE protocol (one row a step, softmax
  probability, zero / gkern(11, 5)-blur substrates via scipy) and the
  Xplique protocol (10 steps, logit, zero substrate); MuFidelity (grid 9,
  subset 0.2, 200 samples drawn from loupe's splitmix64 stream, Spearman
  and Pearson).
Pass: |loupe - reference| <= 1e-3 for every (image, method, metric).
Prints the worst error per metric and "N passed, N failed"; exit 1 on any
failure.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from scipy.stats import pearsonr, spearmanr

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
import ref_models  # noqa: E402
import lpw  # noqa: E402

LOUPE = os.path.join(ROOT, os.environ.get("LOUPE_BUILD", "build"), "loupe")
WEIGHTS = os.path.join(ROOT, "weights", "resnet20_cifar10.lpw")
CIFAR = os.path.join(ROOT, "tests", "data", "cifar10_test_first200.bin")
N_IMAGES = 20
TOL = 1e-3
METHODS = ["saliency", "gradcam", "rise"]
ENV = dict(os.environ)
ENV.setdefault("OMP_WAIT_POLICY", "passive")


def load_model():
    metadata, tensors = lpw.read_lpw(WEIGHTS)
    model = ref_models.CifarResNet(3)
    sd = model.state_dict()
    sd.update({k: torch.from_numpy(np.array(v)) for k, v in tensors})
    model.load_state_dict(sd)
    return model.eval().double(), {k: v for k, _, v in metadata}


def load_inputs(meta):
    rec = np.fromfile(CIFAR, np.uint8, count=3073 * N_IMAGES).reshape(N_IMAGES, 3073)
    x = rec[:, 1:].reshape(N_IMAGES, 3, 32, 32).astype(np.float32) / np.float32(255.0)
    mean = np.array(meta["input.mean"], np.float32)[None, :, None, None]
    std = np.array(meta["input.std"], np.float32)[None, :, None, None]
    return ((x - mean) / std).astype(np.float32)


def scores(model, xs, cls, prob):
    z = ref_models.forward_float64(model, np.ascontiguousarray(xs))
    if prob:
        z = torch.softmax(z, 1)
    return z[:, cls].numpy()


def rise_blur(x):
    """eclique/RISE gkern(11, 5) convolved with zero padding 5."""
    inp = np.zeros((11, 11))
    inp[5, 5] = 1
    k = gaussian_filter(inp, 5)
    w = torch.zeros(3, 3, 11, 11, dtype=torch.float64)
    for c in range(3):
        w[c, c] = torch.from_numpy(k)
    return F.conv2d(torch.from_numpy(x[None]).double(), w, padding=5)[0].numpy()


def causal(model, x, cls, sal, insertion, protocol):
    c, h, w = x.shape
    hw = h * w
    order = np.lexsort((np.arange(hw), -sal.ravel().astype(np.float64)))
    if protocol == "rise":
        n = (hw + w - 1) // w
        counts = [min(i * w, hw) for i in range(n + 1)]
        substrate = rise_blur(x) if insertion else np.zeros_like(x, dtype=np.float64)
        prob = True
    else:
        n = 10
        counts = [i * hw // n for i in range(n + 1)]
        substrate = np.zeros_like(x, dtype=np.float64)
        prob = False
    start, finish = (substrate, x) if insertion else (x, substrate)
    start = start.reshape(c, hw).astype(np.float64)
    finish = finish.reshape(c, hw).astype(np.float64)
    xs = []
    for k in counts:
        cur = start.copy()
        cur[:, order[:k]] = finish[:, order[:k]]
        xs.append(cur.reshape(c, h, w))
    s = scores(model, np.stack(xs), cls, prob)
    return (s.sum() - s[0] / 2 - s[-1] / 2) / n


class SplitMix:
    def __init__(self, seed):
        self.state = (seed ^ 0x6A09E667F3BCC909) & 0xFFFFFFFFFFFFFFFF

    def uniform(self):
        m = 0xFFFFFFFFFFFFFFFF
        self.state = (self.state + 0x9E3779B97F4A7C15) & m
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
        z ^= z >> 31
        return (z >> 11) * (1.0 / 9007199254740992.0)


def mufidelity_masks(samples=200, grid=9, subset=0.2, seed=0, h=32, w=32):
    rng = SplitMix(seed)
    keep = np.array([[rng.uniform() > subset for _ in range(grid * grid)]
                     for _ in range(samples)], np.float64).reshape(samples, grid, grid)
    ys = [min(grid - 1, math.floor((y + 0.5) * grid / h)) for y in range(h)]
    xs = [min(grid - 1, math.floor((x + 0.5) * grid / w)) for x in range(w)]
    return keep[:, ys][:, :, xs]


def mufidelity(model, x, cls, sal, masks):
    base = scores(model, x[None], cls, False)[0]
    pert = scores(model, x[None] * masks[:, None], cls, False)
    delta = base - pert
    attr = (sal[None].astype(np.float64) * (1 - masks)).sum((1, 2))
    rho = spearmanr(delta, attr)[0]
    r = pearsonr(delta, attr)[0]
    return (0.0 if np.isnan(rho) else rho), (0.0 if np.isnan(r) else r)


def run_loupe(tmp, xfile, protocol):
    maps = os.path.join(tmp, "maps")
    os.makedirs(maps, exist_ok=True)
    out = os.path.join(tmp, "r_%s.json" % protocol)
    subprocess.run([LOUPE, "evaluate", "--model", WEIGHTS, "--data", xfile, "--method",
                    ",".join(METHODS), "--metric", "deletion,insertion,mufidelity",
                    "--protocol", protocol, "--masks", "500", "--out", out, "--save-maps",
                    maps, "--quiet"], check=True, stdout=subprocess.DEVNULL, env=ENV)
    with open(out) as f:
        res = json.load(f)
    values = {(r["image"], r["method"], r["metric"]): r["value"] for r in res["rows"]}
    targets = [im["target"] for im in res["images"]]
    return values, targets, maps


def main():
    model, meta = load_model()
    x = load_inputs(meta)
    masks = mufidelity_masks()
    worst = {}
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        xfile = os.path.join(tmp, "x.npy")
        np.save(xfile, x)
        for protocol in ("rise", "xplique"):
            values, targets, maps = run_loupe(tmp, xfile, protocol)
            for i in range(N_IMAGES):
                for m in METHODS:
                    sal = np.load(os.path.join(maps, "%d.%s.npy" % (i, m)))
                    ref = {
                        "deletion": causal(model, x[i], targets[i], sal, False, protocol),
                        "insertion": causal(model, x[i], targets[i], sal, True, protocol),
                    }
                    if protocol == "rise":
                        ref["mufidelity"], ref["mufidelity-pearson"] = mufidelity(
                            model, x[i], targets[i], sal, masks)
                    for metric, r in ref.items():
                        err = abs(values[(i, m, metric)] - r)
                        key = "%s/%s" % (metric, protocol)
                        worst[key] = max(worst.get(key, 0.0), err)
                        if err <= TOL:
                            passed += 1
                        else:
                            failed += 1
                            print("FAIL image %d %s %s (%s): loupe %.6f reference %.6f"
                                  % (i, m, metric, protocol, values[(i, m, metric)], r))
    for key in sorted(worst):
        print("%-32s worst |loupe - PyTorch| %.2e" % (key, worst[key]))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
