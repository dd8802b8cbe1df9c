#!/usr/bin/env python3
"""Golden predictions of the shipped real-weight models, from PyTorch.

Runs the reference PyTorch models (tests/parity/ref_models.py) with the
real weights in ../shared/data/models on the full CIFAR-10 test set and
the MNIST test set, and writes
  tests/golden/resnet20_cifar10_top1.u8   10000 top-1 classes
  tests/golden/vit_mnist_top1.u8          10000 top-1 classes
and copies the first 200 test images of each set into tests/data/ so that
`make test` can check loupe's predictions without ../shared.
Prints PyTorch's accuracies (the README of ../shared/data gives 81.03 %
for ResNet-20 and 97.21 % for the MNIST ViT).
"""
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.join(ROOT, "..", "shared", "data")
sys.path.insert(0, os.path.join(HERE, "parity"))
import ref_models  # noqa: E402

SUBSET = 200


def cifar():
    raw = np.fromfile(os.path.join(SHARED, "images/cifar10/cifar10_test_yk_decoded.bin"), np.uint8)
    rec = raw.reshape(-1, 3073)
    labels = rec[:, 0]
    x = rec[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    mean = np.array([0.485, 0.456, 0.406], np.float32)[None, :, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[None, :, None, None]
    return rec, labels, (x - mean) / std


def mnist():
    img = np.fromfile(os.path.join(SHARED, "images/mnist/t10k-images-idx3-ubyte"), np.uint8)
    lab = np.fromfile(os.path.join(SHARED, "images/mnist/t10k-labels-idx1-ubyte"), np.uint8)
    x = img[16:].reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
    return img, lab, (x - 0.1307) / 0.3081


def predict(model, x):
    out = []
    with torch.no_grad():
        for i in range(0, len(x), 500):
            out.append(model(torch.from_numpy(x[i:i + 500])).argmax(1).numpy())
    return np.concatenate(out).astype(np.uint8)


def main():
    torch.set_num_threads(os.cpu_count() or 1)
    os.makedirs(os.path.join(ROOT, "tests", "data"), exist_ok=True)

    rec, labels, x = cifar()
    sd = torch.load(os.path.join(SHARED, "models/resnet_cifar10/resnet20-12fca82f.th"),
                    map_location="cpu")["state_dict"]
    model = ref_models.CifarResNet(3)
    model.load_state_dict({k[len("module."):]: v for k, v in sd.items()})
    pred = predict(model.eval(), x)
    print("resnet20 CIFAR-10: %.2f %%" % (100.0 * (pred == labels).mean()))
    pred.tofile(os.path.join(ROOT, "tests/golden/resnet20_cifar10_top1.u8"))
    rec[:SUBSET].tofile(os.path.join(ROOT, "tests/data/cifar10_test_first200.bin"))

    img, lab, x = mnist()
    model = ref_models.LucidrainsViT()
    model.load_state_dict(torch.load(os.path.join(SHARED, "models/vit_mnist/vit_mnist_gpu.pt"),
                                     map_location="cpu"))
    pred = predict(model.eval(), x)
    print("vit_mnist MNIST: %.2f %%" % (100.0 * (pred == lab[8:]).mean()))
    pred.tofile(os.path.join(ROOT, "tests/golden/vit_mnist_top1.u8"))
    head = img[:16].copy()
    head[4:8] = np.frombuffer(np.uint32(SUBSET).byteswap().tobytes(), np.uint8)
    np.concatenate([head, img[16:16 + SUBSET * 784]]).tofile(
        os.path.join(ROOT, "tests/data/mnist_test_first200-images-idx3-ubyte"))
    lhead = lab[:8].copy()
    lhead[4:8] = head[4:8]
    np.concatenate([lhead, lab[8:8 + SUBSET]]).tofile(
        os.path.join(ROOT, "tests/data/mnist_test_first200-labels-idx1-ubyte"))


if __name__ == "__main__":
    main()
