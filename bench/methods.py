#!/usr/bin/env python3
"""Attribution methods: loupe next to PyTorch, same machine, same run.

ResNet-50 (torchvision layout, seeded random weights), one 224x224 input,
target = the predicted class's logit. For each method, loupe runs
`loupe explain` in a child process and PyTorch runs the same computation
(same number of forward/backward passes, same batch of 32) in another
child process, so each side's peak resident memory is its own:

  saliency              1 forward + 1 backward
  integrated-gradients  32 steps (Gauss-Legendre nodes), one batch of 32
  gradcam               layer4, 1 forward + 1 backward
  rise                  4000 masks, grid 7, p 0.5, batches of 32
  sobol                 grid 8, 32 designs: 32 x (64 + 2) = 2112 forwards

Reported: wall seconds for the whole method (loupe's includes loading the
weights and one forward to resolve the target), images passed through the
network per second (an image in a backward pass counts once more), peak
RSS of the process, and the loupe/PyTorch time ratio (below 1 = loupe
faster). PyTorch's peak includes its own ~250 MB of libraries; its idle
RSS with the model loaded is printed for reference.

  bench/methods.py [--threads N] [METHOD ...]
"""
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.environ.get("LOUPE_BUILD", "build")
LOUPE = os.path.join(ROOT, BUILD, "loupe")

# method: (loupe options, images through the network: forwards, backwards)
METHODS = {
    "saliency": ([], (2, 1)),
    "integrated-gradients": (["--steps", "32"], (34, 32)),
    "gradcam": (["--layer", "layer4"], (2, 1)),
    "rise": (["--masks", "4000", "--grid", "7", "--p", "0.5"], (4001, 0)),
    "sobol": (["--grid", "8", "--designs", "32"], (2113, 0)),
}


def run_child(argv, env=None):
    """Run argv, return (wall seconds, peak RSS in MB, stdout)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit("failed (%d): %s" % (proc.returncode, " ".join(argv)))
    return wall, usage.ru_maxrss / 1024.0, out


# ---- the PyTorch side: one method per child process ----------------------

def torch_child(method, ckpt, xfile, threads):
    import numpy as np
    import torch
    import torch.nn.functional as F
    import torchvision
    torch.set_num_threads(threads)
    model = torchvision.models.resnet50()
    model.load_state_dict(torch.load(ckpt))
    model.eval()
    x = torch.from_numpy(np.load(xfile))
    idle_mb = None
    import resource
    idle_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    t0 = time.perf_counter()
    with torch.no_grad():
        cls = int(model(x).argmax())
    batch = 32
    if method == "saliency":
        xr = x.clone().requires_grad_(True)
        model(xr)[0, cls].backward()
        xr.grad.abs().amax(1)
    elif method == "integrated-gradients":
        nodes, weights = np.polynomial.legendre.leggauss(32)
        alphas = torch.tensor((nodes + 1) / 2, dtype=torch.float32)
        w = torch.tensor(weights / 2, dtype=torch.float32)
        base = torch.zeros_like(x)
        with torch.no_grad():
            model(base)
        xs = (base + alphas[:, None, None, None] * (x - base)).requires_grad_(True)
        model(xs)[:, cls].sum().backward()
        ((xs.grad * w[:, None, None, None]).sum(0) * (x - base)[0]).sum(0)
    elif method == "gradcam":
        acts = {}
        h = model.layer4.register_forward_hook(lambda m, i, o: acts.update(a=o))
        out = model(x)
        h.remove()
        a = acts["a"]
        g, = torch.autograd.grad(out[0, cls], a)
        cam = F.relu((g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True))
        F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
    elif method == "rise":
        gen = torch.Generator().manual_seed(0)
        n, s, H = 4000, 7, x.shape[-1]
        cell = -(-H // s)
        sal = torch.zeros(H, H)
        with torch.no_grad():
            for i in range(0, n, batch):
                b = min(batch, n - i)
                grid = (torch.rand(b, 1, s, s, generator=gen) < 0.5).float()
                up = F.interpolate(grid, size=((s + 1) * cell,) * 2, mode="bilinear",
                                   align_corners=False)
                dx, dy = torch.randint(0, cell, (2,), generator=gen).tolist()
                m = up[:, :, dy:dy + H, dx:dx + H]
                p = model(x * m)[:, cls]
                sal += (p[:, None, None] * m[:, 0]).sum(0)
    elif method == "sobol":
        from scipy.stats import qmc
        g, designs = 8, 32
        d = g * g
        ab = qmc.Sobol(2 * d, scramble=False).random(designs)
        A, B = ab[:, :d], ab[:, d:]
        masks = [A, B] + [np.where(np.arange(d) == j, B, A) for j in range(d)]
        masks = torch.tensor(np.concatenate(masks), dtype=torch.float32)
        masks = F.interpolate(masks.view(-1, 1, g, g), size=x.shape[-2:], mode="nearest")
        ys = []
        with torch.no_grad():
            for i in range(0, masks.shape[0], batch):
                ys.append(model(x * masks[i:i + batch])[:, cls])
        y = torch.cat(ys).view(-1, designs)
        fa, fb, fab = y[0], y[1], y[2:]
        var = torch.cat([fa, fb]).var()
        ((fa[None] - fab) ** 2).mean(1) / (2 * var)
    else:
        raise SystemExit("unknown method " + method)
    print("elapsed=%.6f idle_mb=%.1f" % (time.perf_counter() - t0, idle_mb))


def main(argv):
    threads = os.cpu_count()
    if "--threads" in argv:
        i = argv.index("--threads")
        threads = int(argv[i + 1])
        del argv[i:i + 2]
    methods = [a for a in argv if not a.startswith("--")] or list(METHODS)
    import numpy as np
    import torch
    import torchvision
    sys.path.insert(0, os.path.join(ROOT, "tests", "parity"))
    import ref_models
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    print("ResNet-50, batch 1, 224x224, %d thread(s); loupe vs PyTorch %s"
          % (threads, torch.__version__))
    print("PyTorch's BLAS: %s" % ref_models.blas_in_use())
    print("%-21s %6s | %8s %7s %6s | %8s %7s %6s | %6s" % (
        "method", "images", "loupe s", "img/s", "MB", "torch s", "img/s", "MB",
        "ratio"))
    with tempfile.TemporaryDirectory() as tmp:
        model = ref_models.randomize(torchvision.models.resnet50(), 1)
        ckpt = os.path.join(tmp, "r50.pth")
        lpw = os.path.join(tmp, "r50.lpw")
        xfile = os.path.join(tmp, "x.npy")
        torch.save(model.state_dict(), ckpt)
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert.py"),
                        "--arch", "resnet50", ckpt, lpw], check=True,
                       stdout=subprocess.DEVNULL)
        np.save(xfile, np.random.default_rng(0).standard_normal((1, 3, 224, 224),
                                                               dtype=np.float32))
        del model
        idle = None
        for method in methods:
            opts, (fwd, bwd) = METHODS[method]
            images = fwd + bwd
            lw, lmb, _ = run_child([LOUPE, "--threads", str(threads), "explain",
                                    "--model", lpw, "--input", xfile, "--method",
                                    method, "--out", os.path.join(tmp, "m.npy"),
                                    "--quiet", "--batch", "32"] + opts, env)
            _, tmb, out = run_child([sys.executable, __file__, "--child", method,
                                     ckpt, xfile, str(threads)], env)
            fields = dict(kv.split("=") for kv in out.split())
            tw, idle = float(fields["elapsed"]), float(fields["idle_mb"])
            print("%-21s %6d | %8.2f %7.1f %6.0f | %8.2f %7.1f %6.0f | %6.2f" % (
                method, images, lw, images / lw, lmb, tw, images / tw, tmb, lw / tw),
                flush=True)
        print("PyTorch idle RSS with ResNet-50 loaded: %.0f MB; loupe's time "
              "includes loading the weights, PyTorch's does not." % idle)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        torch_child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
