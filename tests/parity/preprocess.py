#!/usr/bin/env python3
"""loupe's image preprocessing against torchvision's, on real photos.

For every photo in ../shared/data/images/natural (PNG and JPEG, colour
and grey; skipped when ../shared is absent) and both interpolations the
converter writes (bilinear for torchvision's ResNets, bicubic for timm's
ViTs): loupe's model input (`loupe capture --layer input`, the file's
Resize(256) + CenterCrop(224) + ToTensor + Normalize metadata) against
torchvision's transforms on the image Pillow decodes. Bars: mean absolute
difference <= 1/255 (the issue's), and the largest difference is printed.
JPEG decoders may differ by a level or two (IDCT rounding), PNG not at
all, so the remaining difference is the resampling's.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import ref_models  # noqa: E402

LOUPE = os.path.join(ROOT, os.environ.get("LOUPE_BUILD", "build"), "loupe")
CONVERT = os.path.join(ROOT, "tools", "convert.py")
PHOTOS = os.path.join(ROOT, "..", "shared", "data", "images", "natural")
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
TOL = 1.0 / 255


def small_model(arch, tmp):
    """A converted model of the architecture: only its preprocessing
    metadata matters here."""
    import torchvision
    model = (ref_models.TimmViT(dim=192, heads=3) if arch.startswith("deit")
             else getattr(torchvision.models, arch)())
    ckpt, lpw = os.path.join(tmp, arch + ".pth"), os.path.join(tmp, arch + ".lpw")
    torch.save(model.state_dict(), ckpt)
    subprocess.run([sys.executable, CONVERT, "--arch", arch, "--quiet", ckpt, lpw], check=True)
    return lpw


def main():
    if not os.path.isdir(PHOTOS):
        print("preprocess: skipped (no %s)" % PHOTOS)
        return 0
    names = sorted(f for f in os.listdir(PHOTOS) if f.lower().endswith((".png", ".jpg", ".jpeg")))
    failed = 0
    print("preprocessing: loupe vs torchvision Resize(256)+CenterCrop(224)+Normalize, "
          "mean |d| <= 1/255")
    print("%-16s %-9s %12s %12s  %s" % ("photo", "resize", "mean |d|", "max |d|", "result"))
    with tempfile.TemporaryDirectory() as tmp:
        for arch, interp in (("resnet18", Image.BILINEAR), ("deit_tiny_patch16_224", Image.BICUBIC)):
            lpw = small_model(arch, tmp)
            t = transforms.Compose([transforms.Resize(256, interpolation=interp),
                                    transforms.CenterCrop(224), transforms.ToTensor(),
                                    transforms.Normalize(MEAN, STD)])
            for name in names:
                path = os.path.join(PHOTOS, name)
                want = t(Image.open(path).convert("RGB")).numpy()
                out = os.path.join(tmp, "x.npy")
                subprocess.run([LOUPE, "capture", "--model", lpw, "--image", path,
                                "--layer", "input", "--out", out], check=True)
                got = np.load(out)[0]
                # in pixel levels: normalised difference times std times 255
                d = np.abs(got - want) * np.array(STD)[:, None, None]
                mean, worst = float(d.mean()), float(d.max())
                ok = got.shape == want.shape and mean <= TOL
                failed += not ok
                print("%-16s %-9s %9.2e (%.2f lv) %9.2e (%.1f lv)  %s" % (
                    name, "bilinear" if interp == Image.BILINEAR else "bicubic", mean, mean * 255,
                    worst, worst * 255, "ok" if ok else "FAIL"), flush=True)
    print("%d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
