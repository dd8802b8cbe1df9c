#!/usr/bin/env python3
"""PyTorch parity of the gradient attribution family (interp/gradients.c).

For ResNet-50 and ViT-B/16 (torchvision, seeded random weights converted
with tools/convert.py) and the real-weight ResNet-20 (CIFAR-10; skipped
when ../shared is missing), every method is computed here with PyTorch
autograd -- an independent implementation of the same formula: the same
baseline, steps and quadrature, the same noise draws (loupe's splitmix64
stream reproduced in numpy), the same channel reduction -- and compared
with `loupe explain --out`. Pass: relative L2 error <= 1e-3.

On the ResNets the reference runs in float64 and every ReLU and max-pool
window of every pass takes loupe's decision for that pass's input
(relu_masks.py: the inputs are formed here exactly as loupe forms them,
bit for bit, and `loupe capture --layer kind:relu` gives loupe's
decisions on them), after checking that loupe decided every unit as
float64 does except within rounding. Without that, a few ReLU inputs
within float32 rounding of zero (or max-pool windows within rounding of
a tie), decided differently by any two implementations, move a
ResNet-50 input gradient by ~1e-3 (PyTorch float32 itself is 6e-4 from
float64 here). DeepLIFT's rescale rule has no such decisions (secant
multipliers); it is compared with PyTorch float32.

  methods_gradients.py            all three models
  methods_gradients.py resnet20   only these (resnet50, vit_b_16, resnet20)
"""
import copy
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import ref_models  # noqa: E402
import relu_masks  # noqa: E402

LOUPE = os.path.join(ROOT, os.environ.get("LOUPE_BUILD", "build"), "loupe")
CONVERT = os.path.join(ROOT, "tools", "convert.py")
R20 = os.path.join(ROOT, "..", "shared", "data", "models", "resnet_cifar10",
                   "resnet20-12fca82f.th")
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])
TOL = 1e-3
DL_EPS = 1e-7

# method -> (loupe CLI options, PyTorch reference options)
BIG = {"steps": 8, "samples": 3}     # ResNet-50 / ViT-B/16 (CPU time)
SMALL = {"steps": 32, "samples": 8}  # ResNet-20


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd[:8]), r.returncode,
                                                   r.stderr.strip()[-400:]))
    return r.stdout


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


# ---- loupe's random stream (interp/common.c: splitmix64, Box-Muller) --------

M64 = (1 << 64) - 1


def splitmix_u64(seed, count, start=0):
    """u64 draws number start+1 .. start+count of lp_rng_seed(seed)."""
    s0 = np.uint64((seed ^ 0x6a09e667f3bcc909) & M64)
    k = np.arange(start + 1, start + count + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = s0 + k * np.uint64(0x9e3779b97f4a7c15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xbf58476d1ce4e5b9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94d049bb133111eb)
        z = z ^ (z >> np.uint64(31))
    return z


def splitmix_normal(seed, count):
    u = (splitmix_u64(seed, 2 * count) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    u1, u2 = np.maximum(u[0::2], 1e-300), u[1::2]
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


# ---- replaced backward rules (patched F.relu / F.gelu) ----------------------

class GuidedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x > 0) * (g > 0)


class DeconvReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        return g * (g > 0)


def rescale(x, y, g, deriv):
    """DeepLIFT rescale on a batch [x ; x_ref]: multipliers for the first half."""
    h = x.shape[0] // 2
    d = x[:h] - x[h:]
    secant = (y[:h] - y[h:]) / torch.where(d.abs() > DL_EPS, d, torch.ones_like(d))
    mult = torch.where(d.abs() > DL_EPS, secant, deriv(x[:h]))
    out = torch.zeros_like(g)
    out[:h] = g[:h] * mult
    return out


class RescaleReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.clamp(min=0)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return rescale(x, y, g, lambda v: (v > 0).to(v.dtype))


ORIG_GELU = F.gelu


class RescaleGELU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = ORIG_GELU(x)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        def deriv(v):
            return 0.5 * (1 + torch.erf(v / np.sqrt(2))) + v * torch.exp(-0.5 * v * v) / np.sqrt(2 * np.pi)
        return rescale(x, y, g, deriv)


class GuidedMasked(torch.autograd.Function):
    """Guided backprop with loupe's forward decision m."""
    @staticmethod
    def forward(ctx, x, m):
        ctx.save_for_backward(m)
        return x * m

    @staticmethod
    def backward(ctx, g):
        (m,) = ctx.saved_tensors
        return g * m * (g > 0), None


class DeconvMasked(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, m):
        return x * m

    @staticmethod
    def backward(ctx, g):
        return g * (g > 0), None


class Masked:
    """Reference with loupe's ReLU decisions (module docstring): set per
    model; grads() then captures loupe's decisions on every batch it
    runs and imposes them on the float64 model."""
    lpw = None
    tmp = None
    stats = None
    rule = None  # GuidedMasked / DeconvMasked while patched


class patched:
    """Replace F.relu (and F.gelu) for the duration of a with-block."""
    def __init__(self, relu=None, gelu=None):
        self.relu, self.gelu = relu, gelu

    def __enter__(self):
        self.saved = (F.relu, F.gelu, Masked.rule)
        if self.relu is not None and Masked.lpw is not None:
            Masked.rule = {GuidedReLU: GuidedMasked, DeconvReLU: DeconvMasked}[self.relu]
        elif self.relu is not None:
            F.relu = lambda x, inplace=False: self.relu.apply(x)
        if self.gelu is not None:
            F.gelu = lambda x, approximate="none": self.gelu.apply(x)

    def __exit__(self, *a):
        F.relu, F.gelu, Masked.rule = self.saved


# ---- the methods in PyTorch -----------------------------------------------------

def grads(model, x, cls, batch=16):
    """Input gradients of the class logits; x is the float32 batch loupe
    runs (converted to the model's dtype here)."""
    out = []
    dtype = next(model.parameters()).dtype
    for s in range(0, x.shape[0], batch):
        chunk = x[s:s + batch]
        xi = chunk.to(dtype).clone().requires_grad_(True)
        if Masked.lpw is not None:
            masks = relu_masks.loupe_masks(LOUPE, Masked.lpw, chunk.float().numpy(), Masked.tmp)
            with relu_masks.forced_relu(masks, Masked.stats, fn=Masked.rule):
                y = model(xi)
            del masks
        else:
            y = model(xi)
        y.gather(1, cls[s:s + batch, None]).sum().backward()
        out.append(xi.grad.detach())
    return torch.cat(out)


def quadrature(q, k):
    if q == "gausslegendre":
        z, w = np.polynomial.legendre.leggauss(k)
        return 0.5 * (z + 1), 0.5 * w
    if q == "trapezoid":
        a = np.linspace(0, 1, k)
        w = np.full(k, 1.0 / (k - 1))
        w[0] = w[-1] = 0.5 / (k - 1)
        return a, w
    off = {"left": 0.0, "right": 1.0, "middle": 0.5}[q]
    return (np.arange(k) + off) / k, np.full(k, 1.0 / k)


def baseline(x, kind):
    if kind == "zero":
        return torch.zeros_like(x)
    if kind == "black":
        # (0 - mean) / std in float32, as interp/gradients.c and
        # torchvision's Normalize form it. The float64 quotient rounded
        # once is an ulp off in the green channel (-2.0357144 against
        # -2.0357141): every IG path point then differs from loupe's by
        # up to an ulp, the decisions captured on the reference's points
        # are no longer the ones loupe took on its own, and ResNet-50's
        # IG from black read 4.6e-4 instead of 4e-7 (2026-12-07).
        mean = torch.tensor(MEAN, dtype=torch.float32)
        std = torch.tensor(STD, dtype=torch.float32)
        v = (torch.zeros(3) - mean) / std
        return v[None, :, None, None].expand_as(x).clone()
    raise ValueError(kind)


def ref_map(model, x, cls, method, opt):
    if method == "gradient":
        return grads(model, x, cls)
    if method == "saliency":
        return grads(model, x, cls).abs().amax(1)
    if method == "gradxinput":
        return (x * grads(model, x, cls)).sum(1)
    if method == "integrated-gradients":
        a, w = quadrature(opt["quadrature"], opt["steps"])
        x0 = baseline(x, opt["baseline"])
        acc = torch.zeros(x.shape, dtype=torch.float64)
        for b in range(x.shape[0]):
            # as interp/gradients.c, in float32: b + a * (x - b)
            pts = torch.stack([x0[b] + float(np.float32(ak)) * (x[b] - x0[b]) for ak in a])
            g = grads(model, pts, cls[b].repeat(len(a))).double()
            acc[b] = (torch.tensor(w)[:, None, None, None] * g).sum(0)
        return ((x - x0).double() * acc).sum(1).float()
    if method in ("smoothgrad", "vargrad", "squaregrad"):
        S, per = opt["samples"], x[0].numel()
        noise = splitmix_normal(opt["seed"], x.shape[0] * S * per).reshape(x.shape[0], S, per)
        maps = []
        for b in range(x.shape[0]):
            xb = x[b].numpy().ravel()
            sigma = float(np.float32(opt["noise"])) * (float(xb.max()) - float(xb.min()))
            noisy = xb[None] + (sigma * noise[b]).astype(np.float32)
            g = grads(model, torch.from_numpy(noisy.reshape((S,) + tuple(x.shape[1:]))),
                      cls[b].repeat(S)).double()
            mean, m2 = g.mean(0), (g * g).mean(0)
            v = {"smoothgrad": mean, "squaregrad": m2,
                 "vargrad": (m2 - mean * mean).clamp(min=0)}[method]
            maps.append(v.float().abs().amax(0))
        return torch.stack(maps)
    if method in ("guided-backprop", "deconvnet"):
        with patched(relu=GuidedReLU if method == "guided-backprop" else DeconvReLU):
            return grads(model, x, cls).abs().amax(1)
    if method == "deeplift":
        x0 = baseline(x, opt["baseline"])
        maps = []
        with patched(relu=RescaleReLU, gelu=RescaleGELU):
            for b in range(x.shape[0]):
                xi = torch.cat([x[b:b + 1], x0[b:b + 1]]).requires_grad_(True)
                model(xi)[0, cls[b]].backward()
                maps.append(((x[b] - x0[b]) * xi.grad[0]).sum(0))
        return torch.stack(maps)
    raise ValueError(method)


def cases(sz):
    return [
        ("gradient", {}),
        ("saliency", {}),
        ("gradxinput", {}),
        ("integrated-gradients", {"steps": sz["steps"], "quadrature": "gausslegendre",
                                  "baseline": "zero"}),
        ("integrated-gradients", {"steps": sz["steps"], "quadrature": "trapezoid",
                                  "baseline": "black"}),
        ("integrated-gradients", {"steps": sz["steps"], "quadrature": "left",
                                  "baseline": "zero"}),
        ("smoothgrad", {"samples": sz["samples"], "noise": 0.2, "seed": 7}),
        ("vargrad", {"samples": sz["samples"], "noise": 0.2, "seed": 7}),
        ("squaregrad", {"samples": sz["samples"], "noise": 0.1, "seed": 3}),
        ("guided-backprop", {}),
        ("deconvnet", {}),
        ("deeplift", {"baseline": "zero"}),
        ("deeplift", {"baseline": "black"}),
    ]


def load_models(names, tmp):
    out = []
    for name in names:
        if name == "resnet20":
            if not os.path.exists(R20):
                print("%-10s skipped: %s missing" % (name, R20))
                continue
            model = ref_models.CifarResNet(3)
            sd = torch.load(R20, map_location="cpu")
            sd = sd.get("state_dict", sd)
            model.load_state_dict({k.replace("module.", "", 1): v for k, v in sd.items()})
            lpw = os.path.join(ROOT, "weights", "resnet20_cifar10.lpw")
            g = torch.Generator().manual_seed(5)
            x = torch.randn((2, 3, 32, 32), generator=g)
            out.append((name, model.eval(), lpw, x, SMALL))
            continue
        ctor = {"resnet50": torchvision.models.resnet50,
                "vit_b_16": torchvision.models.vit_b_16}[name]
        torch.manual_seed(1)
        model = ref_models.randomize(ctor(), 1).eval()
        ckpt, lpw = os.path.join(tmp, name + ".pth"), os.path.join(tmp, name + ".lpw")
        torch.save(model.state_dict(), ckpt)
        run([sys.executable, CONVERT, "--arch", name, ckpt, lpw])
        os.remove(ckpt)
        g = torch.Generator().manual_seed(2)
        x = torch.randn((1, 3, 224, 224), generator=g)
        out.append((name, model, lpw, x, BIG))
    return out


def main(argv):
    if "-h" in argv or "--help" in argv:
        print(__doc__.strip())
        return 0
    names = [a for a in argv if not a.startswith("-")] or ["resnet20", "resnet50", "vit_b_16"]
    if not os.path.exists(LOUPE):
        print("methods_gradients: %s not built (run make)" % LOUPE)
        return 2
    torch.set_num_threads(os.cpu_count() or 1)
    passed = failed = 0
    print("%-10s %-22s %-32s %10s %8s %8s  %s" % ("model", "method", "options", "rel L2",
                                                  "loupe s", "torch s", "result"))
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, lpw, x, sz in load_models(names, tmp):
            xpath, mpath = os.path.join(tmp, "x.npy"), os.path.join(tmp, "map.npy")
            np.save(xpath, x.numpy())
            with torch.no_grad():
                cls = model(x).argmax(1)
            m64 = copy.deepcopy(model).double() if name.startswith("resnet") else None
            for method, opt in cases(sz):
                if method in ("guided-backprop", "deconvnet") and name.startswith("vit"):
                    continue  # defined on ReLUs; loupe refuses GELU networks
                cmd = [LOUPE, "explain", "--model", lpw, "--input", xpath, "--method", method,
                       "--target", str(int(cls[0])), "--score", "logit", "--out", mpath,
                       "--quiet"]
                if len(set(cls.tolist())) > 1:
                    cmd[cmd.index("--target") + 1] = "top"
                for k, v in opt.items():
                    cmd += ["--" + k, str(v)]
                try:
                    t0 = time.perf_counter()
                    run(cmd)
                    t_loupe = time.perf_counter() - t0
                    got = np.load(mpath)
                    t0 = time.perf_counter()
                    note = ""
                    stats_ok = True
                    if name.startswith("resnet") and method != "deeplift":
                        Masked.lpw, Masked.tmp = lpw, tmp
                        Masked.stats = relu_masks.Decisions()
                        try:
                            want = ref_map(m64, x, cls, method, opt).detach().float().numpy()
                        finally:
                            Masked.lpw = None
                        stats_ok = Masked.stats.ok()
                        note = " (f64 with loupe's decisions: %d flipped, margin %.0e)" % (
                            Masked.stats.flipped, Masked.stats.worst)
                    else:
                        want = ref_map(model, x, cls, method, opt).detach().numpy()
                    t_torch = time.perf_counter() - t0
                    err = rel_l2(got, want)
                    ok = got.shape == want.shape and err <= TOL and stats_ok
                except Exception as e:  # report and go on
                    print("%-10s %-22s ERROR %s" % (name, method, e), flush=True)
                    failed += 1
                    continue
                passed += ok
                failed += not ok
                o = " ".join("%s=%s" % kv for kv in opt.items())
                print("%-10s %-22s %-32s %10.2e %8.2f %8.2f  %s" % (
                    name, method, o[:32], err, t_loupe, t_torch, ("ok" if ok else "FAIL") + note),
                    flush=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
