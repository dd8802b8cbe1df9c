#!/usr/bin/env python3
"""`loupe evaluate` next to the same protocol in PyTorch, same machine, one run.

Two workloads, five methods each, scored by deletion, insertion and
MuFidelity (docs/methods/metrics.md):

  cifar     the real CIFAR-10 ResNet-20 (weights/resnet20_cifar10.lpw) on
            the first 100 CIFAR-10 test images (tests/data), RISE protocol
            (one pixel row a step: 33 steps, probability, blurred insertion
            start), MuFidelity grid 9, subset 0.2, 200 samples
  imagenet  ResNet-50 (torchvision layout, seeded random weights: timing
            does not depend on the weights) on 10 random 224x224 inputs,
            Xplique protocol (10 steps, logit, zero substrate), MuFidelity
            as above

Methods: saliency, gradxinput, integrated-gradients (--steps 32, Gauss-
Legendre), gradcam (last stage), rise (--masks 500, grid 7, p 0.5).
Target: each image's predicted class. Batches of 32 on both sides.

loupe runs `loupe evaluate --data X --out r.json` in a child process
(its time includes loading the weights and the data, and writing the
results); PyTorch runs the same passes in another child process: the
prediction, the method's map, then every metric's perturbed batches. The
RISE masks are drawn by each side's own generator, so the RISE values
differ; the other methods' numbers agree (printed as the largest
difference of the per-method means, a check that both sides did the same
work). Reported: wall seconds, images through the network per second (a
backward counts once more), peak RSS, ratio loupe/PyTorch (below 1 =
loupe faster).

  bench/evaluate.py [--threads N] [--images N] [--samples N] [cifar] [imagenet]

--images and --samples override the image count and MuFidelity's sample
count of both workloads (for a quick look; the table in
docs/PERFORMANCE.md uses the defaults).
"""
import json
import math
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.environ.get("LOUPE_BUILD", "build")
LOUPE = os.path.join(ROOT, BUILD, "loupe")
CIFAR = os.path.join(ROOT, "tests", "data", "cifar10_test_first200.bin")
R20 = os.path.join(ROOT, "weights", "resnet20_cifar10.lpw")

METHODS = ["saliency", "gradxinput", "integrated-gradients", "gradcam", "rise"]
IG_STEPS, RISE_MASKS, BATCH = 32, 500, 32
WORKLOADS = {
    "cifar": dict(images=100, protocol="rise", samples=200),
    "imagenet": dict(images=10, protocol="xplique", samples=200),
}


def run_child(argv, env):
    """Run argv; return (wall seconds, peak RSS in MB, stdout)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status):
        raise SystemExit("failed: " + " ".join(argv))
    return wall, usage.ru_maxrss / 1024.0, out


# ---- the PyTorch side ---------------------------------------------------------

class SplitMix:
    """loupe's splitmix64 stream (interp/common.c), for MuFidelity's subsets."""

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


class TorchSide:
    def __init__(self, torch, model, cam_layer, protocol, samples, h, w):
        import numpy as np
        import torch.nn.functional as F
        self.torch, self.F, self.np = torch, F, np
        self.model, self.protocol, self.h, self.w = model, protocol, h, w
        self.images = 0  # images through the network (a backward counts once)
        self.acts = {}
        cam_layer.register_forward_hook(lambda m, i, o: self.acts.update(a=o))
        rng = SplitMix(0)
        g = 9
        keep = np.array([[rng.uniform() > 0.2 for _ in range(g * g)]
                         for _ in range(samples)], np.float32).reshape(samples, g, g)
        ys = [min(g - 1, math.floor((y + 0.5) * g / h)) for y in range(h)]
        xs = [min(g - 1, math.floor((x + 0.5) * g / w)) for x in range(w)]
        self.mu_masks = torch.from_numpy(np.ascontiguousarray(keep[:, ys][:, :, xs]))
        self.gen = torch.Generator().manual_seed(0)

    def forward(self, xs):
        """Logits of a batch, in chunks of BATCH, without a tape."""
        out = []
        with self.torch.no_grad():
            for i in range(0, xs.shape[0], BATCH):
                out.append(self.model(xs[i:i + BATCH]))
        self.images += xs.shape[0]
        return self.torch.cat(out)

    def grad(self, xs, cls):
        xs = xs.clone().requires_grad_(True)
        self.model(xs)[:, cls].sum().backward()
        self.images += 2 * xs.shape[0]
        return xs.grad

    def method_map(self, name, x, cls):
        torch, F = self.torch, self.F
        if name == "saliency":
            return self.grad(x, cls)[0].abs().amax(0)
        if name == "gradxinput":
            return (self.grad(x, cls)[0] * x[0]).sum(0)
        if name == "integrated-gradients":
            nodes, weights = self.np.polynomial.legendre.leggauss(IG_STEPS)
            a = torch.tensor((nodes + 1) / 2, dtype=torch.float32)[:, None, None, None]
            w = torch.tensor(weights / 2, dtype=torch.float32)[:, None, None, None]
            self.forward(torch.zeros_like(x))
            total = torch.zeros_like(x[0])
            for i in range(0, IG_STEPS, BATCH):
                total += (self.grad(a[i:i + BATCH] * x, cls) * w[i:i + BATCH]).sum(0)
            return (total * x[0]).sum(0)
        if name == "gradcam":
            out = self.model(x)
            a = self.acts["a"]
            g, = torch.autograd.grad(out[0, cls], a)
            self.images += 2
            cam = F.relu((g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True))
            return F.interpolate(cam, size=(self.h, self.w), mode="bilinear",
                                 align_corners=False)[0, 0].detach()
        if name == "rise":
            s, H = 7, self.h
            cell = -(-H // s)
            sal = torch.zeros(H, self.w)
            for i in range(0, RISE_MASKS, BATCH):
                b = min(BATCH, RISE_MASKS - i)
                grid = (torch.rand(b, 1, s, s, generator=self.gen) < 0.5).float()
                up = F.interpolate(grid, size=((s + 1) * cell,) * 2, mode="bilinear",
                                   align_corners=False)
                dx, dy = torch.randint(0, cell, (2,), generator=self.gen).tolist()
                m = up[:, :, dy:dy + H, dx:dx + self.w]
                p = torch.softmax(self.forward(x * m), 1)[:, cls]
                sal += (p[:, None, None] * m[:, 0]).sum(0)
            return sal / (RISE_MASKS * 0.5)
        raise SystemExit("unknown method " + name)

    def blur(self, x):
        """eclique/RISE gkern(11, 5), zero padding 5 (the insertion start)."""
        from scipy.ndimage import gaussian_filter
        torch = self.torch
        impulse = self.np.zeros((11, 11))
        impulse[5, 5] = 1
        k2 = torch.from_numpy(gaussian_filter(impulse, 5)).float()
        c = x.shape[1]
        wgt = torch.zeros(c, c, 11, 11)
        for i in range(c):
            wgt[i, i] = k2
        return self.F.conv2d(x, wgt, padding=5)

    def causal(self, x, cls, sal, insertion):
        torch = self.torch
        c, hw = x.shape[1], self.h * self.w
        order = torch.sort(-sal.flatten(), stable=True).indices
        if self.protocol == "rise":
            n = (hw + self.w - 1) // self.w
            counts = [min(i * self.w, hw) for i in range(n + 1)]
            substrate = self.blur(x) if insertion else torch.zeros_like(x)
        else:
            n = 10
            counts = [i * hw // n for i in range(n + 1)]
            substrate = torch.zeros_like(x)
        start, finish = (substrate, x) if insertion else (x, substrate)
        start, finish = start.reshape(c, hw), finish.reshape(c, hw)
        xs = []
        for k in counts:
            cur = start.clone()
            cur[:, order[:k]] = finish[:, order[:k]]
            xs.append(cur.reshape(1, c, self.h, self.w))
        z = self.forward(torch.cat(xs))
        s = (torch.softmax(z, 1) if self.protocol == "rise" else z)[:, cls].double()
        return float((s.sum() - s[0] / 2 - s[-1] / 2) / n)

    def mufidelity(self, x, cls, sal, base):
        from scipy.stats import spearmanr
        pert = self.forward(x * self.mu_masks[:, None])[:, cls]
        delta = (base - pert).double().numpy()
        attr = (sal[None] * (1 - self.mu_masks)).sum((1, 2)).double().numpy()
        rho = spearmanr(delta, attr)[0]
        return 0.0 if math.isnan(rho) else float(rho)

    def evaluate(self, x):
        values = {m: {"deletion": [], "insertion": [], "mufidelity": []} for m in METHODS}
        for i in range(x.shape[0]):
            xi = x[i:i + 1]
            logits = self.forward(xi)
            cls = int(logits.argmax())
            for m in METHODS:
                sal = self.method_map(m, xi, cls).float()
                values[m]["deletion"].append(self.causal(xi, cls, sal, False))
                values[m]["insertion"].append(self.causal(xi, cls, sal, True))
                values[m]["mufidelity"].append(self.mufidelity(xi, cls, sal,
                                                               logits[0, cls]))
        return values


def torch_child(workload, ckpt, xfile, threads, samples):
    import numpy as np
    import torch
    import torchvision
    torch.set_num_threads(threads)
    if workload == "cifar":
        sys.path.insert(0, os.path.join(ROOT, "tests", "parity"))
        import ref_models
        model = ref_models.CifarResNet(3)
        cam_layer = model.layer3
    else:
        model = torchvision.models.resnet50()
        cam_layer = model.layer4
    model.load_state_dict(torch.load(ckpt))
    model.eval()
    x = torch.from_numpy(np.load(xfile))
    side = TorchSide(torch, model, cam_layer, WORKLOADS[workload]["protocol"], samples,
                     x.shape[2], x.shape[3])
    t0 = time.perf_counter()
    values = side.evaluate(x)
    means = {m: {k: float(np.mean(v)) for k, v in d.items()} for m, d in values.items()}
    print(json.dumps({"elapsed": time.perf_counter() - t0, "images": side.images,
                      "means": means}))


# ---- the workloads ----------------------------------------------------------------

def cifar_inputs(n, tmp):
    """The first n CIFAR-10 test images, normalised as the .lpw says."""
    import numpy as np
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    sys.path.insert(0, os.path.join(ROOT, "tests", "parity"))
    import lpw
    import ref_models
    metadata, tensors = lpw.read_lpw(R20)
    meta = {k: v for k, _, v in metadata}
    model = ref_models.CifarResNet(3)
    sd = model.state_dict()
    sd.update({k: torch.from_numpy(np.array(v)) for k, v in tensors})
    ckpt = os.path.join(tmp, "r20.pth")
    torch.save(sd, ckpt)
    rec = np.fromfile(CIFAR, np.uint8, count=3073 * n).reshape(n, 3073)
    x = rec[:, 1:].reshape(n, 3, 32, 32).astype(np.float32) / np.float32(255.0)
    mean = np.array(meta["input.mean"], np.float32)[None, :, None, None]
    std = np.array(meta["input.std"], np.float32)[None, :, None, None]
    return ckpt, R20, ((x - mean) / std).astype(np.float32)


def imagenet_inputs(n, tmp):
    import numpy as np
    import torch
    import torchvision
    sys.path.insert(0, os.path.join(ROOT, "tests", "parity"))
    import ref_models
    model = ref_models.randomize(torchvision.models.resnet50(), 1)
    ckpt = os.path.join(tmp, "r50.pth")
    lpwfile = os.path.join(tmp, "r50.lpw")
    torch.save(model.state_dict(), ckpt)
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert.py"), "--arch",
                    "resnet50", ckpt, lpwfile], check=True, stdout=subprocess.DEVNULL)
    x = np.random.default_rng(0).standard_normal((n, 3, 224, 224), dtype=np.float32)
    return ckpt, lpwfile, x


def loupe_images(n, protocol, samples, hw_rows):
    """Images loupe passes through the network (a backward counts once more)."""
    steps = hw_rows if protocol == "rise" else 10
    per_method = {
        "saliency": 3, "gradxinput": 3, "gradcam": 3,
        "integrated-gradients": 1 + 2 * IG_STEPS, "rise": RISE_MASKS,
    }
    metrics = 2 * (steps + 1) + samples
    return n * (1 + sum(per_method[m] + metrics for m in METHODS))


def bench(workload, threads, images, samples, tmp, env):
    import numpy as np
    cfg = WORKLOADS[workload]
    n = images or cfg["images"]
    samples = samples or cfg["samples"]
    ckpt, lpwfile, x = (cifar_inputs if workload == "cifar" else imagenet_inputs)(n, tmp)
    xfile = os.path.join(tmp, workload + ".npy")
    np.save(xfile, x)
    out = os.path.join(tmp, workload + ".json")
    lw, lmb, _ = run_child([
        LOUPE, "--threads", str(threads), "evaluate", "--model", lpwfile, "--data", xfile,
        "--method", ",".join(METHODS), "--metric", "deletion,insertion,mufidelity",
        "--protocol", cfg["protocol"], "--mufidelity-samples", str(samples),
        "--steps", str(IG_STEPS), "--masks", str(RISE_MASKS), "--batch", str(BATCH),
        "--out", out, "--quiet"], env)
    with open(out) as f:
        res = json.load(f)
    lmeans = {(s["method"], s["metric"]): s["mean"] for s in res["summary"]}
    tw_total, tmb, tout = run_child([sys.executable, __file__, "--child", workload, ckpt,
                                     xfile, str(threads), str(samples)], env)
    t = json.loads(tout)
    diff = max(abs(lmeans[(m, k)] - v) for m, d in t["means"].items() if m != "rise"
               for k, v in d.items())
    li = loupe_images(n, cfg["protocol"], samples, x.shape[2])
    print("%-9s %4d img %-8s | %8.1f %7.1f %6.0f | %8.1f %7.1f %6.0f | %5.2f | %.1e"
          % (workload, n, cfg["protocol"], lw, li / lw, lmb, t["elapsed"],
             t["images"] / t["elapsed"], tmb, lw / t["elapsed"], diff), flush=True)


def main(argv):
    threads, images, samples = os.cpu_count(), 0, 0
    for flag in ("--threads", "--images", "--samples"):
        if flag in argv:
            i = argv.index(flag)
            value = int(argv[i + 1])
            del argv[i:i + 2]
            if flag == "--threads":
                threads = value
            elif flag == "--images":
                images = value
            else:
                samples = value
    workloads = [a for a in argv if a in WORKLOADS] or list(WORKLOADS)
    import torch
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    print("loupe evaluate vs PyTorch %s, %d thread(s); methods %s; metrics deletion, "
          "insertion, mufidelity" % (torch.__version__, threads, ",".join(METHODS)))
    sys.path.insert(0, os.path.join(ROOT, "tests", "parity"))
    import ref_models
    print("PyTorch's BLAS: %s" % ref_models.blas_in_use())
    print("%-9s %4s %-12s | %8s %7s %6s | %8s %7s %6s | %5s | %s" % (
        "workload", "n", "protocol", "loupe s", "img/s", "MB", "torch s", "img/s", "MB",
        "ratio", "max |mean diff| (no rise)"))
    with tempfile.TemporaryDirectory() as tmp:
        for w in workloads:
            bench(w, threads, images, samples, tmp, env)
    print("loupe's time includes loading the weights and data and writing the results; "
          "PyTorch's starts with the model loaded.")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        torch_child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]),
                    int(sys.argv[6]))
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
