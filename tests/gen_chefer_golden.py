#!/usr/bin/env python3
"""Golden Chefer maps of the shipped MNIST ViT, from PyTorch.

The PyTorch reference of tests/parity/methods_cam.py (an own functional
ViT with the relevance rules of Chefer et al. 2021, CVPR) on the real
MNIST ViT weights in ../shared/data/models/vit_mnist, for the first four
MNIST test digits of tests/data/, in float64:

  tests/golden/chefer_vit_mnist.npy   float32 [2, 4, 28, 28]:
      [0] chefer at --lrp-eps 0.01 (well conditioned: PyTorch float32 is
          3e-6 from float64), [1] chefer-grad (Chefer et al., ICCV 2021)

`make test` (tests/test_interp_cam.c) compares loupe's maps with it, so
the relevance rules are checked against PyTorch without Python.
"""
import copy
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "parity"))
import methods_cam  # noqa: E402
import ref_models  # noqa: E402

WEIGHTS = os.path.join(ROOT, "..", "shared", "data", "models", "vit_mnist", "vit_mnist_gpu.pt")
OUT = os.path.join(HERE, "golden", "chefer_vit_mnist.npy")


def main():
    torch.set_num_threads(1)
    m = ref_models.LucidrainsViT()
    sd = torch.load(WEIGHTS, map_location="cpu")
    m.load_state_dict(sd.get("state_dict", sd))
    m.eval()
    raw = np.fromfile(os.path.join(HERE, "data", "mnist_test_first200-images-idx3-ubyte"),
                      dtype=np.uint8)[16:].reshape(-1, 1, 28, 28)[:4]
    x = torch.from_numpy(((raw / 255.0 - 0.1307) / 0.3081).astype(np.float32))
    with torch.no_grad():
        target = m(x).argmax(1)
    m64 = copy.deepcopy(m).double()
    lrp = methods_cam.chefer_lrp_maps(m64, x.double(), target, eps=1e-2)["chefer"]
    grad = methods_cam.chefer_lrp_maps(m64, x.double(), target)["chefer-grad"]
    maps = torch.stack([methods_cam.up(lrp, (28, 28)), methods_cam.up(grad, (28, 28))])
    np.save(OUT, maps.float().numpy())
    print("wrote %s: classes %s" % (OUT, target.tolist()))


if __name__ == "__main__":
    main()
