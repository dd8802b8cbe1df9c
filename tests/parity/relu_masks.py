"""loupe's ReLU and max-pool decisions, imposed on a float64 reference.

Why: in a ResNet of millions of ReLUs a few pre-activations lie within
float32 rounding of zero, and a few max-pool windows hold two values
within rounding of each other. Which way they go depends on the order of
the additions, so loupe, PyTorch float32 and float64 each decide a
handful of them differently, and one flipped unit in an early layer moves
the input gradient by up to a few 1e-3 (measured: PyTorch float32 is
4e-7 .. 3e-3 from float64 on the random ResNets of run_parity.py). A
tolerance wide enough for that would also pass a wrong kernel. So the
gradient is checked in two parts that together leave no room:

  1. loupe's decisions: every ReLU unit that loupe passes (output > 0)
     or cuts must be on the same side in float64, and every max-pool
     window must pick the same input, except where float64 itself is
     within KINK_REL of the other choice (|z| of a ReLU input, or the
     gap between the two values of a window, relative to the largest
     |value| of that call): rounding, not a bug;
  2. the arithmetic: the float64 network that takes loupe's decisions
     (every ReLU multiplies by loupe's mask instead of its own, every
     max-pool window passes the input loupe picked) must give loupe's
     gradient within the bar (1e-3 relative L2; it gives ~1e-6).

loupe's decisions come from `loupe capture --layer kind:relu` on the very
same float32 inputs: the ReLU outputs, in execution order (which is the
order of F.relu calls in torchvision's and ref_models' networks). A
max-pool's input is the output of the ReLU just before it in every
network here, so its window choices are remade from loupe's own float32
values with loupe's rule, which is PyTorch's (ops/pool.c: the first
maximum in row-major order).
"""
import os
import subprocess

import numpy as np
import torch
import torch.nn.functional as F

KINK_REL = 1e-4


def loupe_masks(loupe, lpw, x, tmp, tag="masks"):
    """loupe's ReLU outputs (float32 arrays) on input x (float32 numpy
    [N,C,H,W]), one per ReLU layer in execution order."""
    xpath = os.path.join(tmp, tag + "_x.npy")
    out = os.path.join(tmp, tag)
    np.save(xpath, np.ascontiguousarray(x, dtype=np.float32))
    r = subprocess.run([loupe, "capture", "--model", lpw, "--input", xpath,
                        "--layer", "kind:relu", "--out", out],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError("loupe capture kind:relu failed: " + r.stderr.strip())
    outputs = []
    for line in r.stdout.splitlines():
        name = line.split()[0]
        path = os.path.join(out, name + ".npy")
        outputs.append(np.load(path))
        os.remove(path)
    os.remove(xpath)
    return outputs


class Decisions:
    """Counts what imposing loupe's decisions changed."""

    def __init__(self):
        self.flipped = 0          # ReLU units / windows decided unlike float64
        self.worst = 0.0          # largest |z| (or window gap) / max among them
        self.total = 0

    def note(self, diff, margin, scale):
        self.total += int(diff.numel())
        if bool(diff.any()):
            self.flipped += int(diff.sum())
            self.worst = max(self.worst, float(margin[diff].max()) / max(scale, 1e-300))

    def ok(self):
        return self.worst <= KINK_REL

    def __str__(self):
        return "%d of %d decisions on loupe's side (max margin/max %.1e)" % (
            self.flipped, self.total, self.worst)


class forced_relu:
    """Within the block -- one forward of the batch the outputs were
    captured on -- the k-th F.relu call multiplies its input by loupe's
    mask (outputs[k] > 0) instead of (z > 0), every F.max_pool2d passes
    the inputs loupe picked, and the disagreements go to `stats`. fn,
    when given, is an autograd Function taking (z, mask): the replaced
    backward rules (guided backprop, deconvnet)."""

    def __init__(self, outputs, stats, fn=None):
        self.outputs, self.stats, self.fn = outputs, stats, fn

    def __enter__(self):
        self.saved = (F.relu, F.max_pool2d)
        state = {"k": 0, "last": None}
        plain_pool = F.max_pool2d

        def relu(z, inplace=False):
            i = state["k"]
            state["k"] += 1
            if i >= len(self.outputs):
                raise RuntimeError("more F.relu calls than loupe has ReLU layers")
            vals = self.outputs[i]
            if tuple(vals.shape) != tuple(z.shape):
                raise RuntimeError("ReLU call %d: loupe shape %s, torch %s"
                                   % (i, tuple(vals.shape), tuple(z.shape)))
            m = torch.from_numpy(vals > 0)
            a = z.detach().abs()
            self.stats.note((z.detach() > 0) != m, a, float(a.max()))
            state["last"] = vals
            mask = m.to(z.dtype)
            if self.fn is not None:
                return self.fn.apply(z, mask)
            return z * mask

        def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1,
                       ceil_mode=False, return_indices=False):
            vals = state["last"]
            if return_indices or vals is None or tuple(vals.shape) != tuple(x.shape):
                raise RuntimeError("max-pool input is not the ReLU output before it")
            args = (kernel_size, stride, padding, dilation, ceil_mode)
            _, pick = plain_pool(torch.from_numpy(vals), *args, return_indices=True)
            own_val, own = plain_pool(x.detach(), *args, return_indices=True)
            flat = x.flatten(2)
            out = flat.gather(2, pick.flatten(2)).view(pick.shape)
            gap = own_val - out.detach()
            self.stats.note(pick != own, gap, float(x.detach().abs().max()))
            return out

        F.relu, F.max_pool2d = relu, max_pool2d
        return self

    def __exit__(self, *a):
        F.relu, F.max_pool2d = self.saved
