#!/usr/bin/python3
"""gen_golden.py — write tests/golden/*.bin: PyTorch results that
tests/test_golden.c compares loupe's ops against.

    /usr/bin/python3 tests/gen_golden.py            (re)write tests/golden/
    /usr/bin/python3 tests/gen_golden.py --check    regenerate in memory and
                                                    compare with the files

For every case the inputs are drawn in float32 (what loupe sees), then the
op runs twice through PyTorch autograd on copies of those exact inputs:
once in float64 — the reference the C test measures against — and once in
float32, recorded next to it so the test can show how far PyTorch's own
float32 result is from the float64 one. Backward uses the scalar
loss = sum(r * out) with a random r stored as "dout", so d loss/d out = r.

The file format is described in tests/golden/README.md. Everything is
deterministic (each case has its own generator seeded from its name, one
thread, mkldnn off), so the output is byte-stable across runs.
"""
import argparse
import math
import os
import struct
import sys
import zlib

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN_DIR = os.path.join(HERE, "golden")

MAGIC = b"LPGOLD01"
DT_F32, DT_F64, DT_I32 = 1, 2, 3

# Activation kinds of activation.bin params[0] (mirrored in test_golden.c).
ACT_RELU, ACT_GELU_ERF, ACT_GELU_TANH, ACT_SIGMOID, ACT_TANH = 0, 1, 2, 3, 4
ACT_SOFTMAX, ACT_LOG_SOFTMAX = 5, 6
# Pool kinds of pool.bin params[0].
POOL_MAX, POOL_AVG, POOL_ADAPTIVE = 0, 1, 2
# Resize modes of resize.bin params[0].
RS_BILINEAR, RS_NEAREST, RS_BICUBIC = 0, 1, 2
# linear.bin params[0].
LIN_LINEAR, LIN_MATMUL, LIN_BMM = 0, 1, 2
# loss.bin params[0].
LOSS_CE, LOSS_MSE = 0, 1
# norm.bin params[0].
NORM_LAYER, NORM_BN_EVAL, NORM_BN_TRAIN = 0, 1, 2
# tensor.bin params[0].
TS_PAD_CHANNELS, TS_CONCAT, TS_SLICE, TS_ADD = 0, 1, 2, 3

torch.set_num_threads(1)
torch.backends.mkldnn.enabled = False


# ---- file writing ----------------------------------------------------------

class GoldenFile:
    """Records in order; serialised by to_bytes()."""

    def __init__(self, name):
        self.name = name
        self.records = []
        self.cases = []
        # worst max-relative-error of PyTorch float32 vs float64
        self.t32_fwd = 0.0
        self.t32_bwd = 0.0

    def add(self, name, tensor, dtype):
        t = torch.as_tensor(tensor).detach().cpu().contiguous()
        if dtype == DT_F32:
            arr = t.to(torch.float32).numpy().astype("<f4")
        elif dtype == DT_F64:
            arr = t.to(torch.float64).numpy().astype("<f8")
        else:
            arr = t.to(torch.int64).numpy().astype("<i4")
            assert (arr.astype("int64") == t.to(torch.int64).numpy()).all()
        self.records.append((name, dtype, list(arr.shape), arr.tobytes()))

    def to_bytes(self):
        out = [MAGIC, struct.pack("<I", len(self.records))]
        for name, dtype, dims, data in self.records:
            nb = name.encode("ascii")
            out.append(struct.pack("<I", len(nb)))
            out.append(nb)
            out.append(struct.pack("<II", dtype, len(dims)))
            out.append(struct.pack("<%dI" % len(dims), *dims))
            out.append(data)
        return b"".join(out)


def case_generator(case_name):
    g = torch.Generator()
    g.manual_seed(zlib.crc32(case_name.encode("ascii")))
    return g


def randn(g, *shape, scale=1.0, offset=0.0):
    return (torch.randn(tuple(shape), generator=g, dtype=torch.float64) * scale
            + offset).to(torch.float32)


def rand(g, *shape, lo=0.0, hi=1.0):
    return (torch.rand(tuple(shape), generator=g, dtype=torch.float64) * (hi - lo)
            + lo).to(torch.float32)


def record_case(gf, g, case, params, inputs, fn, grad_of, diff_outs,
                ints=None, aux_inputs=()):
    """Run fn in float64 and in float32 and write the case.

    inputs:    ordered dict name -> float32 tensor (written as f32)
    ints:      dict name -> integer tensor (written as i32, passed as is)
    fn:        fn(tensors: dict) -> dict name -> output tensor
    grad_of:   input names whose gradients are recorded as "d<name>"
    diff_outs: outputs that get a random dout; the scalar loss is
               sum over them of sum(dout * out). The dout of output "out"
               is called "dout", of output X "dX".
    aux_inputs: inputs that fn may modify in place (running stats): they
               are passed as fresh copies and their final value is written
               as "<name>_new".
    """
    ints = ints or {}
    prefix = case + "/"
    gf.cases.append(case)
    gf.add(prefix + "params", torch.tensor(params, dtype=torch.int64), DT_I32)
    for k, v in inputs.items():
        assert v.dtype == torch.float32
        gf.add(prefix + k, v, DT_F32)
    for k, v in ints.items():
        gf.add(prefix + k, v, DT_I32)

    douts = {}
    results = {}
    for dtype in (torch.float64, torch.float32):
        tens = {}
        for k, v in inputs.items():
            t = v.to(dtype).clone()
            if k in grad_of:
                t.requires_grad_(True)
            tens[k] = t
        for k, v in ints.items():
            tens[k] = v
        outs = fn(tens)
        if not douts:
            for k in diff_outs:
                douts[k] = randn(g, *outs[k].shape)
        loss = sum((douts[k].to(dtype) * outs[k]).sum() for k in diff_outs)
        grads = torch.autograd.grad(loss, [tens[k] for k in grad_of]) \
            if grad_of else []
        res = {k: v.detach() for k, v in outs.items()}
        for k in aux_inputs:
            res[k + "_new"] = tens[k].detach()
        for k, gr in zip(grad_of, grads):
            res["d" + k] = gr.detach()
        results[dtype] = res

    for k in diff_outs:
        gf.add(prefix + ("dout" if k == "out" else "d" + k), douts[k], DT_F32)
    for k, v in results[torch.float64].items():
        t32 = results[torch.float32][k]
        gf.add(prefix + k, v, DT_F64)
        gf.add(prefix + k + ".t32", t32, DT_F32)
        err = max_rel_err(t32, v)
        if k[0] == "d" and k[1:] in grad_of:
            gf.t32_bwd = max(gf.t32_bwd, err)
        else:
            gf.t32_fwd = max(gf.t32_fwd, err)


def max_rel_err(got, want):
    """max|got - want| / max|want|, the measure of tests/test.h."""
    got, want = got.to(torch.float64), want.to(torch.float64)
    scale = want.abs().max().item() if want.numel() else 0.0
    if scale < 1e-30:
        scale = 1.0
    return (got - want).abs().max().item() / scale if want.numel() else 0.0


# ---- conv2d ----------------------------------------------------------------

def conv_cases():
    gf = GoldenFile("conv2d")
    # name, n, c_in, h, w, c_out, (kh, kw), (sh, sw), (ph, pw), (dh, dw), groups, bias
    specs = [
        ("stem_7x7_s2_p3", 2, 3, 20, 20, 8, (7, 7), (2, 2), (3, 3), (1, 1), 1, False),
        ("stem_7x7_s2_p3_bias", 2, 3, 13, 15, 4, (7, 7), (2, 2), (3, 3), (1, 1), 1, True),
        ("3x3_s1_p1", 2, 6, 9, 9, 10, (3, 3), (1, 1), (1, 1), (1, 1), 1, False),
        ("3x3_s1_p1_bias", 2, 5, 7, 8, 7, (3, 3), (1, 1), (1, 1), (1, 1), 1, True),
        ("3x3_s2_p1", 2, 8, 9, 9, 12, (3, 3), (2, 2), (1, 1), (1, 1), 1, False),
        ("3x3_s2_p1_even", 2, 4, 8, 8, 6, (3, 3), (2, 2), (1, 1), (1, 1), 1, True),
        ("1x1_s1_p0", 2, 12, 5, 5, 16, (1, 1), (1, 1), (0, 0), (1, 1), 1, False),
        ("1x1_s1_p0_bias", 2, 7, 4, 6, 9, (1, 1), (1, 1), (0, 0), (1, 1), 1, True),
        ("1x1_s2_p0", 2, 8, 9, 9, 16, (1, 1), (2, 2), (0, 0), (1, 1), 1, False),
        ("3x3_g32_2pg", 2, 64, 5, 5, 64, (3, 3), (1, 1), (1, 1), (1, 1), 32, False),
        ("3x3_g32_4pg_s2", 2, 128, 7, 7, 128, (3, 3), (2, 2), (1, 1), (1, 1), 32, False),
        ("3x3_g32_4pg_bias", 2, 128, 4, 4, 128, (3, 3), (1, 1), (1, 1), (1, 1), 32, True),
        ("3x3_g2_wide_out", 2, 4, 6, 6, 10, (3, 3), (1, 1), (1, 1), (1, 1), 2, True),
        ("depthwise_3x3", 2, 6, 7, 7, 6, (3, 3), (1, 1), (1, 1), (1, 1), 6, False),
        ("3x3_d2_p2", 2, 6, 9, 9, 8, (3, 3), (1, 1), (2, 2), (2, 2), 1, False),
        ("3x3_d2_p2_bias", 2, 4, 8, 7, 5, (3, 3), (1, 1), (2, 2), (2, 2), 1, True),
        ("patch16_s16", 2, 3, 48, 48, 8, (16, 16), (16, 16), (0, 0), (1, 1), 1, True),
        ("patch16_s16_nobias_ragged", 1, 3, 40, 35, 4, (16, 16), (16, 16), (0, 0), (1, 1), 1, False),
        ("asym_3x5_s21_p12_d12", 2, 4, 9, 11, 6, (3, 5), (2, 1), (1, 2), (1, 2), 1, True),
    ]
    for (name, n, c_in, h, w, c_out, (kh, kw), (sh, sw), (ph, pw), (dh, dw),
         groups, bias) in specs:
        g = case_generator("conv2d/" + name)
        fan_in = c_in // groups * kh * kw
        inputs = {
            "x": randn(g, n, c_in, h, w),
            "w": randn(g, c_out, c_in // groups, kh, kw,
                       scale=1.0 / math.sqrt(fan_in)),
        }
        if bias:
            inputs["b"] = randn(g, c_out, scale=0.5)
        params = [n, c_in, h, w, c_out, kh, kw, sh, sw, ph, pw, dh, dw,
                  groups, int(bias)]

        def fn(t, sh=sh, sw=sw, ph=ph, pw=pw, dh=dh, dw=dw, groups=groups):
            return {"out": F.conv2d(t["x"], t["w"], t.get("b"), (sh, sw),
                                    (ph, pw), (dh, dw), groups)}
        record_case(gf, g, name, params, inputs, fn, list(inputs), ["out"])
    return gf


# ---- linear, matmul, bmm ---------------------------------------------------

def linear_cases():
    gf = GoldenFile("linear")
    for name, rows, fin, fout, bias in [("linear_bias", 5, 17, 9, True),
                                       ("linear_nobias", 7, 12, 20, False),
                                       ("linear_vit_mlp", 10, 24, 96, True)]:
        g = case_generator("linear/" + name)
        inputs = {"x": randn(g, rows, fin),
                  "w": randn(g, fout, fin, scale=1 / math.sqrt(fin))}
        if bias:
            inputs["b"] = randn(g, fout, scale=0.5)
        record_case(gf, g, name, [LIN_LINEAR, rows, fin, fout, int(bias)],
                    inputs, lambda t: {"out": F.linear(t["x"], t["w"],
                                                       t.get("b"))},
                    list(inputs), ["out"])
    for name, m, k, n in [("matmul", 7, 13, 5), ("matmul_wide", 3, 40, 17)]:
        g = case_generator("linear/" + name)
        inputs = {"a": randn(g, m, k), "b": randn(g, k, n)}
        record_case(gf, g, name, [LIN_MATMUL, m, k, n], inputs,
                    lambda t: {"out": t["a"] @ t["b"]}, ["a", "b"], ["out"])
    batch, m, k, n = 3, 4, 6, 5
    for ta in (0, 1):
        for tb in (0, 1):
            name = "bmm_ta%d_tb%d" % (ta, tb)
            g = case_generator("linear/" + name)
            a = randn(g, batch, *((k, m) if ta else (m, k)))
            b = randn(g, batch, *((n, k) if tb else (k, n)))

            def fn(t, ta=ta, tb=tb):
                a_ = t["a"].transpose(1, 2) if ta else t["a"]
                b_ = t["b"].transpose(1, 2) if tb else t["b"]
                return {"out": torch.bmm(a_, b_)}
            record_case(gf, g, name, [LIN_BMM, batch, m, k, n, ta, tb],
                        {"a": a, "b": b}, fn, ["a", "b"], ["out"])
    return gf


# ---- attention -------------------------------------------------------------

def sdpa(q, k, v, n, t, heads, hd, scale):
    """Plain-op attention on [n, t, heads*hd] tensors."""
    def split(x):
        return x.reshape(n, t, heads, hd).permute(0, 2, 1, 3)
    scores = split(q) @ split(k).transpose(-1, -2) * scale
    probs = torch.softmax(scores, dim=-1)
    out = (probs @ split(v)).permute(0, 2, 1, 3).reshape(n, t, heads * hd)
    return out, scores, probs


def attention_cases():
    gf = GoldenFile("attention")
    for name, n, t, heads, hd, fused in [("heads1", 2, 5, 1, 8, 0),
                                         ("heads4", 2, 7, 4, 8, 0),
                                         ("heads12", 2, 6, 12, 4, 0),
                                         ("heads4_fused_qkv", 2, 7, 4, 8, 1),
                                         ("heads12_fused_qkv", 1, 5, 12, 4, 1)]:
        g = case_generator("attention/" + name)
        d = heads * hd
        scale = 1.0 / math.sqrt(hd)
        # q and k with a larger spread so the softmax is far from uniform.
        if fused:
            inputs = {"qkv": randn(g, n, t, 3 * d, scale=1.5)}

            def fn(tn, n=n, t=t, heads=heads, hd=hd, scale=scale, d=d):
                q, k, v = tn["qkv"].split(d, dim=-1)
                out, scores, probs = sdpa(q, k, v, n, t, heads, hd, scale)
                return {"out": out, "scores": scores, "probs": probs}
            grad_of = ["qkv"]
        else:
            inputs = {"q": randn(g, n, t, d, scale=1.5),
                      "k": randn(g, n, t, d, scale=1.5),
                      "v": randn(g, n, t, d)}

            def fn(tn, n=n, t=t, heads=heads, hd=hd, scale=scale):
                out, scores, probs = sdpa(tn["q"], tn["k"], tn["v"], n, t,
                                          heads, hd, scale)
                return {"out": out, "scores": scores, "probs": probs}
            grad_of = ["q", "k", "v"]
        record_case(gf, g, name, [n, t, heads, hd, fused], inputs, fn,
                    grad_of, ["out"])
    return gf


# ---- normalisation ---------------------------------------------------------

def norm_cases():
    gf = GoldenFile("norm")
    for name, rows, dim, eps, scale, offset in [
            ("layernorm_eps1e-6", 6, 24, 1e-6, 1.0, 0.0),
            ("layernorm_eps1e-5", 5, 17, 1e-5, 2.0, 0.5),
            ("layernorm_offset", 4, 32, 1e-6, 0.5, 4.0)]:
        g = case_generator("norm/" + name)
        inputs = {"x": randn(g, rows, dim, scale=scale, offset=offset),
                  "gamma": randn(g, dim, scale=0.5, offset=1.0),
                  "beta": randn(g, dim, scale=0.5)}
        eps_rec = torch.tensor([eps], dtype=torch.float32)

        def fn(t, dim=dim, eps=eps):
            return {"out": F.layer_norm(t["x"], (dim,), t["gamma"],
                                        t["beta"], eps)}
        # eps is a parameter but stored as a float: record it as an input
        # that gets no gradient.
        inputs["eps"] = eps_rec
        record_case(gf, g, name, [NORM_LAYER, rows, dim], inputs, fn,
                    ["x", "gamma", "beta"], ["out"])

    for name, n, c, h, w, eps in [("batchnorm_eval", 2, 5, 3, 4, 1e-5),
                                  ("batchnorm_eval_eps1e-3", 3, 4, 5, 5, 1e-3)]:
        g = case_generator("norm/" + name)
        inputs = {"x": randn(g, n, c, h, w, scale=1.5, offset=0.3),
                  "gamma": randn(g, c, scale=0.5, offset=1.0),
                  "beta": randn(g, c, scale=0.5),
                  "mean": randn(g, c, scale=0.5),
                  "var": rand(g, c, lo=0.2, hi=2.0),
                  "eps": torch.tensor([eps], dtype=torch.float32)}

        def fn(t, eps=eps):
            return {"out": F.batch_norm(t["x"], t["mean"], t["var"],
                                        t["gamma"], t["beta"], False, 0.0,
                                        eps)}
        record_case(gf, g, name, [NORM_BN_EVAL, n, c, h * w], inputs, fn,
                    ["x", "gamma", "beta"], ["out"])

    for name, n, c, h, w, eps, momentum in [
            ("batchnorm_train", 2, 5, 3, 4, 1e-5, 0.1),
            ("batchnorm_train_offset", 4, 3, 5, 3, 1e-5, 0.1)]:
        g = case_generator("norm/" + name)
        offset = 3.0 if "offset" in name else 0.3
        inputs = {"x": randn(g, n, c, h, w, scale=1.5, offset=offset),
                  "gamma": randn(g, c, scale=0.5, offset=1.0),
                  "beta": randn(g, c, scale=0.5),
                  "running_mean": randn(g, c, scale=0.5),
                  "running_var": rand(g, c, lo=0.2, hi=2.0),
                  "eps": torch.tensor([eps], dtype=torch.float32),
                  "momentum": torch.tensor([momentum], dtype=torch.float32)}

        def fn(t, eps=eps, momentum=momentum):
            x = t["x"]
            out = F.batch_norm(x, t["running_mean"], t["running_var"],
                               t["gamma"], t["beta"], True, momentum, eps)
            xd = x.detach()
            mean = xd.mean(dim=(0, 2, 3))
            var = xd.var(dim=(0, 2, 3), unbiased=False)
            return {"out": out, "save_mean": mean,
                    "save_rstd": 1.0 / torch.sqrt(var + eps)}
        record_case(gf, g, name, [NORM_BN_TRAIN, n, c, h * w], inputs, fn,
                    ["x", "gamma", "beta"], ["out"],
                    aux_inputs=("running_mean", "running_var"))
    return gf


# ---- activations and softmax -----------------------------------------------

def activation_cases():
    gf = GoldenFile("activation")
    count = 2 * 37
    elementwise = [
        ("relu", ACT_RELU, lambda x: F.relu(x)),
        ("gelu_erf", ACT_GELU_ERF, lambda x: F.gelu(x)),
        ("gelu_tanh", ACT_GELU_TANH, lambda x: F.gelu(x, approximate="tanh")),
        ("sigmoid", ACT_SIGMOID, torch.sigmoid),
        ("tanh", ACT_TANH, torch.tanh),
    ]
    for name, kind, f in elementwise:
        g = case_generator("activation/" + name)
        x = randn(g, count, scale=2.5)
        # keep relu's kink (and exact zeros) out of the way
        x = torch.where(x.abs() < 1e-3, torch.full_like(x, 0.5), x)
        record_case(gf, g, name, [kind, count, 1], {"x": x},
                    lambda t, f=f: {"out": f(t["x"])}, ["x"], ["out"])
    for name, kind, f in [("softmax", ACT_SOFTMAX,
                           lambda x: torch.softmax(x, -1)),
                          ("log_softmax", ACT_LOG_SOFTMAX,
                           lambda x: torch.log_softmax(x, -1))]:
        for suffix, rows, dim, scale, offset in [("", 4, 13, 3.0, 0.0),
                                                 ("_large", 3, 50, 20.0, 500.0)]:
            g = case_generator("activation/" + name + suffix)
            x = randn(g, rows, dim, scale=scale, offset=offset)
            record_case(gf, g, name + suffix, [kind, rows, dim], {"x": x},
                        lambda t, f=f: {"out": f(t["x"])}, ["x"], ["out"])
    return gf


# ---- pooling ---------------------------------------------------------------

def pool_cases():
    gf = GoldenFile("pool")
    # name, kind, n, c, h, w, (kh, kw), (sh, sw), (ph, pw), count_include_pad
    specs = [
        ("maxpool_3x3_s2_p1", POOL_MAX, 2, 3, 9, 9, (3, 3), (2, 2), (1, 1), 1),
        ("maxpool_3x3_s2_p1_even", POOL_MAX, 2, 2, 8, 10, (3, 3), (2, 2), (1, 1), 1),
        ("maxpool_2x2_s2", POOL_MAX, 2, 3, 8, 8, (2, 2), (2, 2), (0, 0), 1),
        ("maxpool_2x2_s2_odd", POOL_MAX, 1, 2, 7, 9, (2, 2), (2, 2), (0, 0), 1),
        ("avgpool_3x3_s1_p1_incl", POOL_AVG, 2, 3, 6, 7, (3, 3), (1, 1), (1, 1), 1),
        ("avgpool_3x3_s1_p1_excl", POOL_AVG, 2, 3, 6, 7, (3, 3), (1, 1), (1, 1), 0),
        ("avgpool_3x3_s2_p1_excl", POOL_AVG, 1, 2, 7, 8, (3, 3), (2, 2), (1, 1), 0),
        ("avgpool_2x2_s2", POOL_AVG, 2, 2, 6, 6, (2, 2), (2, 2), (0, 0), 1),
    ]
    for name, kind, n, c, h, w, (kh, kw), (sh, sw), (ph, pw), incl in specs:
        g = case_generator("pool/" + name)
        x = randn(g, n, c, h, w)
        if kind == POOL_MAX:
            # one all-negative plane: the -inf padding must never win
            x[0, 0] -= 5.0
        params = [kind, n, c, h, w, kh, kw, sh, sw, ph, pw, incl]
        if kind == POOL_MAX:
            def fn(t, kh=kh, kw=kw, sh=sh, sw=sw, ph=ph, pw=pw):
                return {"out": F.max_pool2d(t["x"], (kh, kw), (sh, sw),
                                            (ph, pw))}
        else:
            def fn(t, kh=kh, kw=kw, sh=sh, sw=sw, ph=ph, pw=pw, incl=incl):
                return {"out": F.avg_pool2d(t["x"], (kh, kw), (sh, sw),
                                            (ph, pw),
                                            count_include_pad=bool(incl))}
        record_case(gf, g, name, params, {"x": x}, fn, ["x"], ["out"])
    for name, n, c, h, w, ho, wo in [("adaptive_7x7_to_1x1", 2, 4, 7, 7, 1, 1),
                                     ("adaptive_5x5_to_3x3", 2, 3, 5, 5, 3, 3),
                                     ("adaptive_7x7_to_3x3", 1, 2, 7, 7, 3, 3),
                                     ("adaptive_7x5_to_3x2", 1, 2, 7, 5, 3, 2),
                                     ("adaptive_4x4_to_7x6", 1, 2, 4, 4, 7, 6)]:
        g = case_generator("pool/" + name)
        x = randn(g, n, c, h, w)
        record_case(gf, g, name, [POOL_ADAPTIVE, n, c, h, w, ho, wo],
                    {"x": x},
                    lambda t, ho=ho, wo=wo: {
                        "out": F.adaptive_avg_pool2d(t["x"], (ho, wo))},
                    ["x"], ["out"])
    return gf


# ---- resize ----------------------------------------------------------------

def resize_cases():
    gf = GoldenFile("resize")
    sizes = [((7, 7), (16, 16)), ((5, 5), (3, 3)), ((4, 4), (9, 9)),
             ((6, 9), (4, 13)), ((8, 8), (16, 16)), ((7, 5), (7, 5))]
    modes = [("bilinear", RS_BILINEAR, 0), ("bilinear_ac", RS_BILINEAR, 1),
             ("nearest", RS_NEAREST, 0), ("bicubic", RS_BICUBIC, 0),
             ("bicubic_ac", RS_BICUBIC, 1)]
    n, c = 2, 2
    for mname, mode, ac in modes:
        for (h, w), (ho, wo) in sizes:
            name = "%s_%dx%d_to_%dx%d" % (mname, h, w, ho, wo)
            g = case_generator("resize/" + name)
            x = randn(g, n, c, h, w)
            torch_mode = {RS_BILINEAR: "bilinear", RS_NEAREST: "nearest",
                          RS_BICUBIC: "bicubic"}[mode]

            def fn(t, ho=ho, wo=wo, torch_mode=torch_mode, ac=ac):
                kw = {} if torch_mode == "nearest" else \
                    {"align_corners": bool(ac)}
                return {"out": F.interpolate(t["x"], size=(ho, wo),
                                             mode=torch_mode, **kw)}
            record_case(gf, g, name, [mode, n * c, h, w, ho, wo, ac],
                        {"x": x}, fn, ["x"], ["out"])
    return gf


# ---- losses ----------------------------------------------------------------

def loss_cases():
    gf = GoldenFile("loss")
    for name, rows, classes, scale in [("cross_entropy", 6, 10, 2.0),
                                       ("cross_entropy_large", 3, 1000, 8.0)]:
        g = case_generator("loss/" + name)
        logits = randn(g, rows, classes, scale=scale)
        targets = torch.randint(0, classes, (rows,), generator=g)
        record_case(gf, g, name, [LOSS_CE, rows, classes], {"logits": logits},
                    lambda t: {"out": F.cross_entropy(t["logits"],
                                                      t["targets"])},
                    ["logits"], ["out"], ints={"targets": targets})
    g = case_generator("loss/mse")
    pred, target = randn(g, 2, 17), randn(g, 2, 17)
    record_case(gf, g, "mse", [LOSS_MSE, 34], {"pred": pred, "target": target},
                lambda t: {"out": F.mse_loss(t["pred"], t["target"])},
                ["pred"], ["out"])
    return gf


# ---- tensor plumbing -------------------------------------------------------

def tensor_cases():
    gf = GoldenFile("tensor")
    for name, n, c, h, w, stride, before, after in [
            ("pad_channels_7x7", 2, 4, 7, 7, 2, 2, 2),
            ("pad_channels_8x8", 2, 16, 8, 8, 2, 8, 8),
            ("pad_channels_asym", 1, 3, 5, 6, 2, 1, 4)]:
        g = case_generator("tensor/" + name)
        x = randn(g, n, c, h, w)

        def fn(t, stride=stride, before=before, after=after):
            return {"out": F.pad(t["x"][:, :, ::stride, ::stride],
                                 (0, 0, 0, 0, before, after))}
        record_case(gf, g, name, [TS_PAD_CHANNELS, n, c, h, w, stride, before,
                                  after], {"x": x}, fn, ["x"], ["out"])
    g = case_generator("tensor/concat_cls")
    n, ta, tb, d = 2, 1, 9, 6
    record_case(gf, g, "concat_cls", [TS_CONCAT, n, ta, tb, d],
                {"a": randn(g, n, ta, d), "b": randn(g, n, tb, d)},
                lambda t: {"out": torch.cat([t["a"], t["b"]], dim=1)},
                ["a", "b"], ["out"])
    for name, n, t_, d, start, length in [("slice_cls", 2, 10, 6, 0, 1),
                                          ("slice_patches", 2, 10, 6, 1, 9),
                                          ("slice_middle", 1, 7, 5, 2, 3)]:
        g = case_generator("tensor/" + name)
        record_case(gf, g, name, [TS_SLICE, n, t_, d, start, length],
                    {"x": randn(g, n, t_, d)},
                    lambda t, s=start, ln=length: {
                        "out": t["x"][:, s:s + ln, :]},
                    ["x"], ["out"])
    g = case_generator("tensor/add")
    record_case(gf, g, "add", [TS_ADD, 2 * 3 * 5],
                {"a": randn(g, 2, 3, 5), "b": randn(g, 2, 3, 5)},
                lambda t: {"out": t["a"] + t["b"]}, ["a", "b"], ["out"])
    return gf


BUILDERS = [conv_cases, linear_cases, attention_cases, norm_cases,
            activation_cases, pool_cases, resize_cases, loss_cases,
            tensor_cases]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="compare with the committed files instead of "
                         "writing them")
    ap.add_argument("--out", default=GOLDEN_DIR, help="output directory")
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    total, n_cases, mismatches = 0, 0, 0
    for build in BUILDERS:
        gf = build()
        data = gf.to_bytes()
        path = os.path.join(args.out, gf.name + ".bin")
        if args.check:
            try:
                with open(path, "rb") as f:
                    same = f.read() == data
            except OSError:
                same = False
            status = "same" if same else "DIFFERS"
            mismatches += not same
        else:
            with open(path, "wb") as f:
                f.write(data)
            status = "written"
        total += len(data)
        n_cases += len(gf.cases)
        print("%-16s %3d cases %4d records %9d bytes  %-7s "
              "torch-f32 vs f64: fwd %.1e bwd %.1e" %
              (gf.name + ".bin", len(gf.cases), len(gf.records), len(data),
               status, gf.t32_fwd, gf.t32_bwd))
        for c in gf.cases:
            print("    " + c)
    print("total: %d cases, %d bytes (%.2f MB) in %s" %
          (n_cases, total, total / 1e6, args.out))
    if args.check and mismatches:
        print("%d file(s) differ from a fresh generation" % mismatches)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
