#!/usr/bin/env python3
"""Real weights, loupe next to PyTorch (part of make parity).

Converts the real checkpoints in ../shared/data/models (CIFAR-10 ResNet-20,
32, 44, 56 and the MNIST ViT) with tools/convert.py, runs `loupe predict
--input` on the full 10,000-image test sets and PyTorch's reference
models (ref_models.py) on the same float32 tensors, and checks
  - top-1 agreement with PyTorch on >= 99.9 % of images,
  - loupe's accuracy within 0.05 points of the figure measured with
    PyTorch in ../shared/data/README.md.
Skips (exit 0) when ../shared is absent, as in users' clones.
"""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SHARED = os.environ.get("LOUPE_SHARED", os.path.join(ROOT, "..", "shared"))
DATA = os.path.join(SHARED, "data")
LOUPE = os.path.join(ROOT, os.environ.get("LOUPE_BUILD", "build"), "loupe")
CONVERT = os.path.join(ROOT, "tools", "convert.py")
sys.path.insert(0, HERE)
import ref_models  # noqa: E402

CHUNK = 1000  # images per `loupe predict` call (it takes at most 1024)

# name, checkpoint, reference model, data set, accuracy in ../shared's README
MODELS = [
    ("resnet20", "models/resnet_cifar10/resnet20-12fca82f.th", lambda: ref_models.CifarResNet(3), "cifar", 81.03),
    ("resnet32", "models/resnet_cifar10/resnet32-d509ac18.th", lambda: ref_models.CifarResNet(5), "cifar", 82.56),
    ("resnet44", "models/resnet_cifar10/resnet44-014dd654.th", lambda: ref_models.CifarResNet(7), "cifar", 82.67),
    ("resnet56", "models/resnet_cifar10/resnet56-4bfd9763.th", lambda: ref_models.CifarResNet(9), "cifar", 83.20),
    ("vit_mnist", "models/vit_mnist/vit_mnist_gpu.pt", ref_models.LucidrainsViT, "mnist", 97.21),
]


def cifar():
    rec = np.fromfile(os.path.join(DATA, "images/cifar10/cifar10_test_yk_decoded.bin"),
                      np.uint8).reshape(-1, 3073)
    x = rec[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    mean = np.array([0.485, 0.456, 0.406], np.float32)[None, :, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[None, :, None, None]
    return ((x - mean) / std).astype(np.float32), rec[:, 0]


def mnist():
    img = np.fromfile(os.path.join(DATA, "images/mnist/t10k-images-idx3-ubyte"), np.uint8)
    lab = np.fromfile(os.path.join(DATA, "images/mnist/t10k-labels-idx1-ubyte"), np.uint8)
    x = img[16:].reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
    return ((x - 0.1307) / 0.3081).astype(np.float32), lab[8:]


def state_dict(path):
    sd = torch.load(path, map_location="cpu")
    sd = sd.get("state_dict", sd)
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}


def loupe_top1(lpw, x, tmp):
    out = []
    for s in range(0, len(x), CHUNK):
        xp, yp = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
        np.save(xp, x[s:s + CHUNK])
        r = subprocess.run([LOUPE, "predict", "--model", lpw, "--input", xp,
                            "--logits-out", yp, "--topk", "1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError("loupe predict failed: " + r.stderr.strip())
        out.append(np.load(yp).argmax(1))
    return np.concatenate(out)


def torch_top1(model, x):
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(x[s:s + 500])).argmax(1).numpy()
                               for s in range(0, len(x), 500)])


def main():
    if not os.path.isdir(os.path.join(DATA, "models")):
        print("real weights: skipped (no %s; the project's data checkout is not here)" % DATA)
        return 0
    torch.set_num_threads(os.cpu_count() or 1)
    sets = {"cifar": cifar(), "mnist": mnist()}
    print("real weights: loupe vs PyTorch on the full test sets")
    print("%-10s %9s %9s %9s %9s %8s %8s  %s" % ("model", "agree", "loupe %", "torch %",
                                                "README %", "loupe s", "torch s", "result"))
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, ckpt, ctor, data, readme in MODELS:
            x, labels = sets[data]
            lpw = os.path.join(tmp, name + ".lpw")
            subprocess.run([sys.executable, CONVERT, "--arch", name, "--quiet",
                            os.path.join(DATA, ckpt), lpw], check=True)
            t0 = time.perf_counter()
            got = loupe_top1(lpw, x, tmp)
            t_loupe = time.perf_counter() - t0
            model = ctor()
            model.load_state_dict(state_dict(os.path.join(DATA, ckpt)), strict=False)
            t0 = time.perf_counter()
            ref = torch_top1(model.eval(), x)
            t_torch = time.perf_counter() - t0
            agree = 100.0 * (got == ref).mean()
            acc, acc_t = 100.0 * (got == labels).mean(), 100.0 * (ref == labels).mean()
            ok = agree >= 99.9 and abs(acc - readme) <= 0.05
            failed += not ok
            print("%-10s %8.2f%% %9.2f %9.2f %9.2f %8.1f %8.1f  %s" % (
                name, agree, acc, acc_t, readme, t_loupe, t_torch, "ok" if ok else "FAIL"),
                flush=True)
    print("%d passed, %d failed" % (len(MODELS) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
