#!/usr/bin/env python3
"""PyTorch parity for whole models (make parity).

For every architecture loupe supports, at full size with seeded random
weights (BatchNorm running statistics and LayerNorm affines randomised):
convert the state dict with tools/convert.py, run loupe and PyTorch on the
same random batch (N=2) and compare
  - the logits: max |loupe - torch| <= 1e-4 * max |torch| + 1e-5
  - the gradient of one logit per image w.r.t. the input:
    relative L2 error ||g_loupe - g_ref|| / ||g_ref|| <= 1e-3, where
    g_ref is PyTorch float32 for the ViTs; for the ReLU networks it is
    the same network in float64 taking loupe's ReLU decisions, and loupe
    must also decide every ReLU unit as float64 does except within
    rounding of zero (relu_masks.py says why and how).
Prints a table: the logit error, the gradient error against the bar's
reference, PyTorch float32's own error against float64 (how much
rounding alone moves the gradient), the ReLU units loupe decided
differently from float64, and both wall times.

  run_parity.py                 every architecture
  run_parity.py resnet50 vit_b_16   only these
  run_parity.py --quick         the small ones only
"""
import copy
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import ref_models  # noqa: E402
import relu_masks  # noqa: E402

LOUPE = os.path.join(ROOT, os.environ.get("LOUPE_BUILD", "build"), "loupe")
CONVERT = os.path.join(ROOT, "tools", "convert.py")

TV = torchvision.models


def timm_vit(dim, heads, pool="token", classes=1000):
    return lambda: ref_models.TimmViT(dim=dim, heads=heads, num_classes=classes,
                                      global_pool=pool)


# name -> (constructor, input shape per image, convert --arch)
ARCHS = {
    "resnet18": (lambda: TV.resnet18(), (3, 224, 224)),
    "resnet34": (lambda: TV.resnet34(), (3, 224, 224)),
    "resnet50": (lambda: TV.resnet50(), (3, 224, 224)),
    "resnet101": (lambda: TV.resnet101(), (3, 224, 224)),
    "resnet152": (lambda: TV.resnet152(), (3, 224, 224)),
    "resnext50_32x4d": (lambda: TV.resnext50_32x4d(), (3, 224, 224)),
    "wide_resnet50_2": (lambda: TV.wide_resnet50_2(), (3, 224, 224)),
    "vit_b_16": (lambda: TV.vit_b_16(), (3, 224, 224)),
    "vit_b_32": (lambda: TV.vit_b_32(), (3, 224, 224)),
    "vit_l_16": (lambda: TV.vit_l_16(), (3, 224, 224)),
    "vit_l_32": (lambda: TV.vit_l_32(), (3, 224, 224)),
    "deit_tiny_patch16_224": (timm_vit(192, 3), (3, 224, 224)),
    "deit_small_patch16_224": (timm_vit(384, 6), (3, 224, 224)),
    "deit_base_patch16_224": (timm_vit(768, 12), (3, 224, 224)),
    "vit_small_patch16_224": (timm_vit(384, 6), (3, 224, 224)),
    "vit_base_patch16_224": (timm_vit(768, 12), (3, 224, 224)),
    "dino_vits16": (timm_vit(384, 6, classes=0), (3, 224, 224)),
    "dino_vitb16": (timm_vit(768, 12, classes=0), (3, 224, 224)),
    "resnet20": (lambda: ref_models.CifarResNet(3), (3, 32, 32)),
    "resnet32": (lambda: ref_models.CifarResNet(5), (3, 32, 32)),
    "resnet44": (lambda: ref_models.CifarResNet(7), (3, 32, 32)),
    "resnet56": (lambda: ref_models.CifarResNet(9), (3, 32, 32)),
    "resnet110": (lambda: ref_models.CifarResNet(18), (3, 32, 32)),
    "vit_mnist": (lambda: ref_models.LucidrainsViT(), (1, 28, 28)),
}
QUICK = ["resnet18", "resnet20", "vit_mnist", "deit_tiny_patch16_224", "vit_b_32"]

LOGIT_TOL = 1e-4
GRAD_TOL = 1e-3


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))
    return r.stdout


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def check(name, tmp, seed):
    ctor, shape = ARCHS[name]
    torch.manual_seed(seed)
    model = ref_models.randomize(ctor(), seed)
    ckpt = os.path.join(tmp, name + ".pth")
    lpw = os.path.join(tmp, name + ".lpw")
    torch.save(model.state_dict(), ckpt)
    run([sys.executable, CONVERT, "--arch", name, ckpt, lpw])
    os.remove(ckpt)

    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn((2,) + shape, generator=g)
    xpath = os.path.join(tmp, "x.npy")
    np.save(xpath, x.numpy())

    # PyTorch: logits, then the gradient of each image's top logit
    xr = x.clone().requires_grad_(True)
    t0 = time.perf_counter()
    logits = model(xr)
    target = logits.argmax(dim=1)
    logits.gather(1, target[:, None]).sum().backward()
    t_torch = time.perf_counter() - t0
    ref_logits = logits.detach().numpy()
    ref_grad = xr.grad.numpy()

    ypath = os.path.join(tmp, "y.npy")
    gpath = os.path.join(tmp, "g.npy")
    t0 = time.perf_counter()
    run([LOUPE, "predict", "--model", lpw, "--input", xpath, "--logits-out", ypath, "--topk", "1"])
    t_pred = time.perf_counter() - t0
    t0 = time.perf_counter()
    run([LOUPE, "capture", "--model", lpw, "--input", xpath, "--layer", "input",
         "--grad-out", gpath, "--target", "top"])
    t_grad = time.perf_counter() - t0
    got_logits = np.load(ypath)
    got_grad = np.load(gpath)

    # The same network in float64: rounding alone moves PyTorch float32's
    # gradient this far from it (torch-f64 column).
    model64 = copy.deepcopy(model).double()
    x64 = x.double().requires_grad_(True)
    model64(x64).gather(1, target[:, None]).sum().backward()
    torch_vs_64 = rel_l2(ref_grad, x64.grad.numpy())

    decisions = "-"
    if name.startswith(("resnet", "resnext", "wide_resnet")) or name == "vit_mnist":
        # ReLU networks: float64 with loupe's ReLU decisions is the
        # reference; loupe's decisions must be float64's up to rounding
        masks = relu_masks.loupe_masks(LOUPE, lpw, x.numpy(), tmp)
        stats = relu_masks.Decisions()
        x64 = x.double().requires_grad_(True)
        with relu_masks.forced_relu(masks, stats):
            model64(x64).gather(1, target[:, None]).sum().backward()
        del masks
        grad_err = rel_l2(got_grad, x64.grad.numpy())
        grad_ok = grad_err <= GRAD_TOL and stats.ok()
        decisions = "%d (%.0e)" % (stats.flipped, stats.worst)
    else:
        grad_err = rel_l2(got_grad, ref_grad)
        grad_ok = grad_err <= GRAD_TOL
    os.remove(lpw)
    del model64

    scale = np.abs(ref_logits).max()
    logit_err = np.abs(got_logits - ref_logits).max()
    logit_ok = logit_err <= LOGIT_TOL * scale + 1e-5
    plain = rel_l2(got_grad, ref_grad)
    same_top = (got_logits.argmax(1) == ref_logits.argmax(1)).all()
    return dict(name=name, logit_rel=logit_err / scale, grad=grad_err, plain=plain,
                torch64=torch_vs_64, decisions=decisions,
                ok=bool(logit_ok and grad_ok and same_top),
                t_loupe=t_pred + t_grad, t_torch=t_torch)


def main(argv):
    if "--help" in argv or "-h" in argv:
        print(__doc__.strip())
        return 0
    names = [a for a in argv if not a.startswith("--")]
    if "--quick" in argv:
        names = QUICK
    if not names:
        names = list(ARCHS)
    unknown = [n for n in names if n not in ARCHS]
    if unknown:
        print("unknown architecture(s): %s" % ", ".join(unknown))
        return 2
    if not os.path.exists(LOUPE):
        print("parity: %s not built (run make)" % LOUPE)
        return 2
    torch.set_num_threads(os.cpu_count() or 1)
    print("parity: loupe vs PyTorch %s (torchvision %s), N=2, random weights"
          % (torch.__version__, torchvision.__version__))
    print("  PyTorch's BLAS: %s" % ref_models.blas_in_use())
    print("  logits: max|d| / max|torch| <= %g ; input gradient: rel. L2 <= %g,"
          % (LOGIT_TOL, GRAD_TOL))
    print("  vs PyTorch float32; ReLU nets: vs float64 taking loupe's ReLU decisions, which")
    print("  must be float64's but within %g of zero (tests/parity/relu_masks.py)"
          % relu_masks.KINK_REL)
    print("  (vs-f32: loupe's gradient vs PyTorch float32 as is; torch-f64: PyTorch float32")
    print("  vs float64 -- what rounding alone does; flips: units loupe decides unlike f64)")
    print("%-24s %10s %10s %10s %10s %13s %8s %8s  %s" % (
        "architecture", "logit err", "grad err", "vs-f32", "torch-f64", "flips (|z|)",
        "loupe s", "torch s", "result"))
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(names):
            try:
                r = check(name, tmp, 1000 + i)
            except Exception as e:  # report and go on with the others
                print("%-24s ERROR %s" % (name, e), flush=True)
                failed += 1
                continue
            failed += not r["ok"]
            print("%-24s %10.2e %10.2e %10.2e %10.2e %13s %8.2f %8.2f  %s" % (
                name, r["logit_rel"], r["grad"], r["plain"], r["torch64"], r["decisions"],
                r["t_loupe"], r["t_torch"], "ok" if r["ok"] else "FAIL"), flush=True)
    print("%d passed, %d failed" % (len(names) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
