#!/usr/bin/env python3
"""Golden output of torchvision's ImageNet preprocessing for the C tests.

Writes tests/golden/preprocess_chelsea.npy: the tensor that
    Resize(256) + CenterCrop(224) + ToTensor() + Normalize(ImageNet)
makes of weights/samples/chelsea.png, sampled on every 4th row and
column ([3, 56, 56] float32, 37 KB instead of 600 KB), and
tests/golden/preprocess_chelsea_stats.npy: per-channel mean and mean
absolute value of the full [3, 224, 224] tensor. tests/test_preprocess.c
compares loupe's lp_model_prepare_image with both.

Run with Debian's python3-torchvision: /usr/bin/python3 tests/gen_preprocess_golden.py
"""
import os

import numpy as np
from PIL import Image
from torchvision import transforms

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def main():
    img = Image.open(os.path.join(ROOT, "weights", "samples", "chelsea.png")).convert("RGB")
    t = transforms.Compose([
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])(img).numpy().astype(np.float32)
    grid = np.ascontiguousarray(t[:, ::4, ::4])
    stats = np.stack([t.mean(axis=(1, 2)), np.abs(t).mean(axis=(1, 2))]).astype(np.float32)
    out = os.path.join(HERE, "golden")
    np.save(os.path.join(out, "preprocess_chelsea.npy"), grid)
    np.save(os.path.join(out, "preprocess_chelsea_stats.npy"), stats)
    print("wrote preprocess_chelsea{,_stats}.npy: grid %s, stats %s" % (grid.shape, stats.shape))


if __name__ == "__main__":
    main()
