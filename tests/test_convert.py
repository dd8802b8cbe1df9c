#!/usr/bin/python3
"""test_convert.py — tests of tools/lpw.py and tools/convert.py.

    /usr/bin/python3 tests/test_convert.py [-v]

Needs numpy; the checkpoint tests need PyTorch/torchvision (skipped
without). The real checkpoints under $LOUPE_DATA (default
../shared/data beside the repository) are used when present. When the C tool is built
($LOUPE_BIN, default build/loupe, with the `inspect` command) every file
written here is also opened and verified by the C reader.
"""

import contextlib
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import convert  # noqa: E402
import lpw  # noqa: E402

import numpy as np  # noqa: E402

try:
    import torch
    import torchvision
except ImportError:
    torch = None

DATA = os.environ.get("LOUPE_DATA", os.path.join(ROOT, "..", "shared", "data"))
LOUPE = os.environ.get("LOUPE_BIN", os.path.join(ROOT, os.environ.get("LOUPE_BUILD", "build"), "loupe"))
CIFAR20 = os.path.join(DATA, "models/resnet_cifar10/resnet20-12fca82f.th")
CIFAR20_SHA = "12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8"
MNIST_VIT = os.path.join(DATA, "models/vit_mnist/vit_mnist_gpu.pt")


def c_inspect_available():
    if not os.access(LOUPE, os.X_OK):
        return False
    r = subprocess.run([LOUPE, "inspect", "--help"], capture_output=True)
    return r.returncode == 0


HAVE_C = c_inspect_available()


def run_convert(*argv):
    """convert.main in-process; returns (status, stderr text)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = convert.main([str(a) for a in argv])
    return rc, err.getvalue()


def random_state_dict(expected, seed=0):
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(s).astype(np.float32) for n, s in expected}


def write_safetensors(path, tensors, dtype="F32"):
    """A .safetensors file by hand: u64 header length, JSON header, data."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, a in tensors.items():
        if dtype == "F32":
            raw = a.astype("<f4").tobytes()
        elif dtype == "F16":
            raw = a.astype("<f2").tobytes()
        else:  # BF16: round to nearest even on the top 16 bits
            bits = a.astype("<f4").view("<u4").astype(np.uint64)
            bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
            raw = bits.astype("<u2").tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


class TempDir(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="loupe_convert_")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def check_with_c(self, path, n_tensors):
        if not HAVE_C:
            return
        r = subprocess.run([LOUPE, "inspect", "--verify", path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("verify: all %d tensors OK" % n_tensors, r.stdout)
        r = subprocess.run([LOUPE, "inspect", "--json", path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(json.loads(r.stdout)["tensors"]), n_tensors)


class TestCrc32c(unittest.TestCase):
    def test_known_values(self):
        self.assertEqual(lpw.crc32c(b"123456789"), 0xE3069283)
        self.assertEqual(lpw.crc32c(b""), 0)
        self.assertEqual(lpw.crc32c(bytes(32)), 0x8A9136AA)
        self.assertEqual(lpw.crc32c(bytes(range(32))), 0x46DD794E)

    def test_vectorised_path_agrees(self):
        rng = np.random.default_rng(1)
        for n in (65535, 65536, 65537, 100003, 1 << 18, 3 * 65536 + 7):
            d = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
            want = (~lpw._update_py(0xFFFFFFFF, d)) & 0xFFFFFFFF
            self.assertEqual(lpw.crc32c(d), want, n)
            self.assertEqual(lpw.crc32c(d[n // 3:], lpw.crc32c(d[:n // 3])), want, n)


class TestLpwFiles(TempDir):
    META = [("general.name", "STR", "t\u00e9st"), ("model.num_classes", "I64", -3),
            ("resnet.bn_eps", "F64", 1e-5), ("resnet.layers", "I64_ARR", [3, 4]),
            ("input.mean", "F64_ARR", [0.5]), ("model.labels", "STR_ARR", ["a", "", "b c"])]

    def test_round_trip(self):
        a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7
        h = np.array([[1.5, -65504, 6e-8]], dtype=np.float16)
        raw = lpw.RawTensor((2,), "bfloat16", struct.pack("<2H", 0x3F80, 0xC000))
        p = self.path("x.lpw")
        lpw.write_lpw(p, self.META, [("a", a), ("h.w", h), ("bf", raw)])
        meta, tensors = lpw.read_lpw(p)
        self.assertEqual(meta, [(k, t, v) for k, t, v in self.META])
        self.assertEqual([n for n, _ in tensors], ["a", "h.w", "bf"])
        self.assertTrue(np.array_equal(tensors[0][1], a))
        self.assertTrue(np.array_equal(tensors[1][1], h.astype(np.float32)))
        self.assertEqual(tensors[2][1].tolist(), [1.0, -2.0])
        self.assertEqual(os.listdir(self.dir), ["x.lpw"])  # no temporary left
        self.check_with_c(p, 3)

    def test_damage_detected(self):
        p = self.path("x.lpw")
        size = lpw.write_lpw(p, self.META, [("a", np.ones((4, 4), np.float32))])
        with open(p, "rb") as f:
            good = f.read()
        for pos in (0, 10, 130, size - 200, size - 1):
            bad = bytearray(good)
            bad[pos] ^= 4
            with open(p, "wb") as f:
                f.write(bad)
            with self.assertRaises(lpw.LpwError):
                lpw.read_lpw(p)
            if HAVE_C:
                r = subprocess.run([LOUPE, "inspect", "--verify", p], capture_output=True, text=True)
                self.assertEqual(r.returncode, 2)
                self.assertTrue(r.stderr.startswith("loupe: " + p + ": "), r.stderr)
                self.assertEqual(r.stderr.count("\n"), 1)

    def test_writer_refuses(self):
        ok = [("a", np.ones(2, np.float32))]
        for meta in ([("Bad", "I64", 1)], [("a.", "I64", 1)], [("a", "I64", 1), ("a", "I64", 2)],
                     [("a", "STR", "x" * 4097)], [("a", "STR", "nul\0")], [("a", "XYZ", 1)]):
            with self.assertRaises(lpw.LpwError, msg=meta):
                lpw.write_lpw(self.path("r.lpw"), meta, ok)
        for tensors in ([], [("a-b", np.ones(2, np.float32))], [("a", np.ones(2, np.float64))],
                        [("a", np.float32(1.0) * np.ones((), np.float32))],
                        [("a", np.ones(2, np.float32)), ("a", np.ones(2, np.float32))],
                        [("n" * 96, np.ones(2, np.float32))]):
            with self.assertRaises(lpw.LpwError):
                lpw.write_lpw(self.path("r.lpw"), [], tensors)
        self.assertFalse(os.path.exists(self.path("r.lpw")))
        self.assertEqual(os.listdir(self.dir), [])

    def test_replaces_atomically(self):
        p = self.path("x.lpw")
        lpw.write_lpw(p, [], [("a", np.ones(2, np.float32))])
        lpw.write_lpw(p, [], [("b", np.zeros(3, np.float32))])
        self.assertEqual([n for n, _ in lpw.read_lpw(p)[1]], ["b"])


class TestExpectedTensors(unittest.TestCase):
    def test_rules(self):
        e = dict(convert.expected_tensors(convert.ARCHS["resnet50"]))
        self.assertEqual(e["layer1.0.conv1.weight"], (64, 64, 1, 1))
        self.assertEqual(e["layer1.0.downsample.0.weight"], (256, 64, 1, 1))
        self.assertEqual(e["layer2.0.conv2.weight"], (128, 128, 3, 3))
        self.assertNotIn("layer2.1.downsample.0.weight", e)
        e = dict(convert.expected_tensors(convert.ARCHS["resnext50_32x4d"]))
        self.assertEqual(e["layer1.0.conv2.weight"], (128, 4, 3, 3))
        e = dict(convert.expected_tensors(convert.ARCHS["wide_resnet50_2"]))
        self.assertEqual(e["layer4.0.conv2.weight"], (1024, 1024, 3, 3))
        e = dict(convert.expected_tensors(convert.ARCHS["resnet18"]))
        self.assertNotIn("layer1.0.downsample.0.weight", e)
        self.assertEqual(e["layer2.0.downsample.0.weight"], (128, 64, 1, 1))
        e = dict(convert.expected_tensors(convert.ARCHS["resnet110"]))
        self.assertFalse([n for n in e if "downsample" in n])
        self.assertEqual(e["linear.weight"], (10, 64))
        e = dict(convert.expected_tensors(convert.ARCHS["vit_l_16"]))
        self.assertEqual(e["encoder.pos_embedding"], (1, 197, 1024))
        self.assertEqual(e["encoder.layers.encoder_layer_23.mlp.3.weight"], (1024, 4096))
        e = dict(convert.expected_tensors(convert.ARCHS["dino_vits16"]))
        self.assertNotIn("head.weight", e)
        self.assertEqual(e["blocks.11.attn.qkv.weight"], (1152, 384))
        e = dict(convert.expected_tensors(convert.ARCHS["vit_mnist"]))
        self.assertEqual(e["transformer.layers.5.0.fn.to_qkv.weight"], (768, 64))
        self.assertEqual(e["transformer.layers.0.0.fn.to_out.0.weight"], (64, 256))
        self.assertEqual(e["to_patch_embedding.1.weight"], (64, 16))

    @unittest.skipIf(torch is None, "no torchvision")
    def test_torchvision_state_dicts(self):
        for arch in ("resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2", "vit_b_32"):
            m = getattr(torchvision.models, arch)(weights=None)
            sd = [(k, tuple(v.shape)) for k, v in m.state_dict().items()
                  if not k.endswith("num_batches_tracked")]
            self.assertEqual(sd, convert.expected_tensors(convert.ARCHS[arch]), arch)

    def test_old_torchvision_names(self):
        sd = {"module.encoder.layers.encoder_layer_3.mlp.linear_1.weight": 1,
              "encoder.layers.encoder_layer_3.mlp.linear_2.bias": 2}
        out = convert.normalise_names(sd, {"vit.layout": "torchvision"})
        self.assertEqual(sorted(out), ["encoder.layers.encoder_layer_3.mlp.0.weight",
                                       "encoder.layers.encoder_layer_3.mlp.3.bias"])

    def test_labels(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "l.tsv")
            with open(p, "w") as f:
                f.write("index\twnid\tname\n0\tn1\ttench\n1\tn2\tgold fish\n\n")
            self.assertEqual(convert.read_labels(p), ["tench", "gold fish"])
            with open(p, "w") as f:
                f.write("cat\ndog\n")
            self.assertEqual(convert.read_labels(p), ["cat", "dog"])


@unittest.skipIf(torch is None, "no PyTorch")
class TestConvertTorch(TempDir):
    def convert_ok(self, arch, ckpt, *extra):
        out = self.path(arch + ".lpw")
        rc, err = run_convert("--arch", arch, ckpt, out, *extra)
        self.assertEqual(rc, 0, err)
        meta, tensors = lpw.read_lpw(out)
        self.check_with_c(out, len(tensors))
        return dict((k, v) for k, _, v in meta), tensors

    def test_torchvision_resnet18(self):
        torch.manual_seed(0)
        sd = torchvision.models.resnet18(weights=None).state_dict()
        ck = self.path("r18.pth")
        torch.save(sd, ck)
        meta, tensors = self.convert_ok("resnet18", ck)
        self.assertEqual(meta["resnet.layers"], [2, 2, 2, 2])
        self.assertEqual(meta["input.resize"], 256)
        want = [(k, v.numpy()) for k, v in sd.items() if not k.endswith("num_batches_tracked")]
        self.assertEqual([n for n, _ in tensors], [n for n, _ in want])
        for (_, got), (_, w) in zip(tensors, want):
            self.assertTrue(np.array_equal(got, w))  # bit-exact float32

    def test_wrapped_prefixed_checkpoint(self):
        torch.manual_seed(1)
        sd = torchvision.models.resnet18(weights=None).state_dict()
        ck = self.path("wrapped.pth")
        torch.save({"epoch": 3, "model": {"module." + k: v for k, v in sd.items()}}, ck)
        _, tensors = self.convert_ok("resnet18", ck)
        self.assertTrue(np.array_equal(dict(tensors)["fc.weight"], sd["fc.weight"].numpy()))

    def test_wrong_checkpoints_refused(self):
        sd = torchvision.models.resnet18(weights=None).state_dict()
        ck = self.path("r18.pth")
        torch.save(sd, ck)
        out = self.path("no.lpw")
        rc, err = run_convert("--arch", "resnet34", ck, out)
        self.assertEqual(rc, 2)
        self.assertIn("layer1.2.conv1.weight: missing from the checkpoint", err)
        self.assertIn("matches --arch resnet18", err)
        rc, err = run_convert("--arch", "resnet50", ck, out)
        self.assertIn("layer1.0.conv1.weight: checkpoint has shape (64, 64, 3, 3), "
                      "resnet50 expects (64, 64, 1, 1)", err)
        sd2 = dict(sd)
        sd2["extra.weight"] = torch.zeros(3)
        torch.save(sd2, ck)
        rc, err = run_convert("--arch", "resnet18", ck, out)
        self.assertIn("extra.weight: unexpected tensor (3,)", err)
        sd2 = dict(sd)
        sd2["fc.weight"] = torch.zeros(10, 512)
        sd2["fc.bias"] = torch.zeros(10)
        torch.save(sd2, ck)
        rc, err = run_convert("--arch", "resnet18", ck, out)
        self.assertIn("resnet18 --num-classes 10", err)
        self.convert_ok("resnet18", ck, "--num-classes", "10")
        self.assertFalse(os.path.exists(out))

    def test_malicious_pickle_not_run(self):
        marker = self.path("pwned")

        class Evil:
            def __reduce__(self):
                return (os.system, ("touch " + marker,))

        sd = torchvision.models.resnet18(weights=None).state_dict()
        ck = self.path("evil.pth")
        for zip_format in (True, False):
            torch.save({"state_dict": sd, "payload": Evil()}, ck,
                       _use_new_zipfile_serialization=zip_format)
            self.convert_ok("resnet18", ck)
            self.assertFalse(os.path.exists(marker))
            torch.save(Evil(), ck, _use_new_zipfile_serialization=zip_format)
            rc, err = run_convert("--arch", "resnet18", ck, self.path("e.lpw"))
            self.assertEqual(rc, 2)
            self.assertIn("posix.system", err)
            self.assertFalse(os.path.exists(marker))

    def test_checkpoint_reader_matches_torch_load(self):
        """Views, transposes, half, bfloat16 and double; zip and legacy."""
        sd = {"a": torch.randn(4, 6), "b": torch.randn(6, 4).t(), "c": torch.randn(10)[2:7],
              "h": torch.randn(3, 3).half(), "bf": torch.randn(5).bfloat16(),
              "d": torch.randn(2).double(), "n.num_batches_tracked": torch.tensor(3)}
        ck = self.path("mixed.pth")
        for zip_format in (True, False):
            torch.save(sd, ck, _use_new_zipfile_serialization=zip_format)
            got = convert.load_torch(ck, False)
            self.assertEqual(sorted(got), ["a", "b", "bf", "c", "d", "h"])
            for k, v in got.items():
                self.assertEqual(v.dtype, np.float32)
                self.assertTrue(np.array_equal(v, sd[k].float().numpy()), k)

    def test_reads_checkpoints_without_torch(self):
        torch.manual_seed(2)
        ck = self.path("r18.pth")
        torch.save(torchvision.models.resnet18(weights=None).state_dict(), ck)
        out_a, out_b = self.path("a.lpw"), self.path("b.lpw")
        self.assertEqual(run_convert("--arch", "resnet18", ck, out_a)[0], 0)
        code = ("import sys; sys.modules['torch'] = None; sys.path.insert(0, %r); "
                "import convert; sys.exit(convert.main(sys.argv[1:]))"
                % os.path.join(ROOT, "tools"))
        r = subprocess.run([sys.executable, "-c", code, "--arch", "resnet18", ck, out_b,
                            "--quiet"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out_a, "rb") as fa, open(out_b, "rb") as fb:
            self.assertEqual(fa.read(), fb.read())

    def test_damaged_checkpoints_refused(self):
        torch.manual_seed(3)
        ck = self.path("r18.pth")
        torch.save(torchvision.models.resnet18(weights=None).state_dict(), ck,
                   _use_new_zipfile_serialization=False)
        with open(ck, "rb") as f:
            good = f.read()
        for cut in (10, 1000, len(good) // 2, len(good) - 1):
            with open(ck, "wb") as f:
                f.write(good[:cut])
            rc, err = run_convert("--arch", "resnet18", ck, self.path("d.lpw"))
            self.assertEqual(rc, 2, cut)
            self.assertTrue(err.startswith("convert: "), err)

    @unittest.skipUnless(os.path.exists(CIFAR20), "no CIFAR checkpoint")
    def test_cifar_resnet20(self):
        meta, tensors = self.convert_ok("resnet20", CIFAR20)
        self.assertEqual(meta["model.labels"][0], "airplane")
        self.assertEqual(meta["resnet.shortcut"], "option_a")
        self.assertIn(CIFAR20_SHA, meta["general.source"])
        self.assertEqual(len(tensors), 97)
        meta, tensors = self.convert_ok("resnet20", CIFAR20, "--fp16")
        t = dict(tensors)
        sd = torch.load(CIFAR20, map_location="cpu")["state_dict"]
        w = sd["module.layer1.0.conv1.weight"].numpy()
        self.assertTrue(np.array_equal(t["layer1.0.conv1.weight"],
                                       w.astype(np.float16).astype(np.float32)))
        self.assertTrue(np.array_equal(t["bn1.running_var"], sd["module.bn1.running_var"].numpy()))

    @unittest.skipUnless(os.path.exists(MNIST_VIT), "no MNIST ViT")
    def test_vit_mnist(self):
        meta, tensors = self.convert_ok("vit_mnist", MNIST_VIT)
        self.assertEqual(meta["vit.head_dim"], 64)
        self.assertEqual(meta["input.mean"], [0.1307])
        self.assertEqual(meta["model.labels"], [str(d) for d in range(10)])
        self.assertEqual(len(tensors), 74)


class TestConvertSafetensors(TempDir):
    ARCH = "deit_tiny_patch16_224"

    def test_timm_layout_all_dtypes(self):
        exp = convert.expected_tensors(convert.ARCHS[self.ARCH])
        sd = random_state_dict(exp)
        for dtype in ("F32", "F16", "BF16"):
            st = self.path("m_%s.safetensors" % dtype)
            write_safetensors(st, sd, dtype)
            out = self.path("m_%s.lpw" % dtype)
            rc, err = run_convert("--arch", self.ARCH, st, out)
            self.assertEqual(rc, 0, err)
            meta, tensors = lpw.read_lpw(out)
            self.assertEqual([n for n, _ in tensors], [n for n, _ in exp])
            got = dict(tensors)["blocks.3.attn.qkv.weight"]
            w = sd["blocks.3.attn.qkv.weight"]
            if dtype == "F32":
                self.assertTrue(np.array_equal(got, w))
            elif dtype == "F16":
                self.assertTrue(np.array_equal(got, w.astype(np.float16).astype(np.float32)))
            else:
                self.assertLess(np.max(np.abs(got - w) / (np.abs(w) + 1e-30)), 2 ** -8)
            self.assertEqual(dict((k, v) for k, _, v in meta)["input.interpolation"], "bicubic")
            self.check_with_c(out, len(exp))

    def test_dino_backbone_has_no_head(self):
        exp = convert.expected_tensors(convert.ARCHS["dino_vits16"])
        sd = random_state_dict(exp, seed=2)
        st = self.path("dino.safetensors")
        write_safetensors(st, sd)
        rc, err = run_convert("--arch", "dino_vits16", st, self.path("dino.lpw"))
        self.assertEqual(rc, 0, err)
        sd["head.weight"] = np.zeros((1000, 384), np.float32)
        write_safetensors(st, sd)
        rc, err = run_convert("--arch", "dino_vits16", st, self.path("dino2.lpw"))
        self.assertEqual(rc, 2)
        self.assertIn("head.weight: unexpected tensor", err)

    def test_without_numpy_or_torch(self):
        """The .safetensors path needs neither numpy nor torch, and writes the
        same bytes."""
        exp = convert.expected_tensors(convert.ARCHS[self.ARCH])
        st = self.path("m.safetensors")
        write_safetensors(st, random_state_dict(exp, seed=3))
        out_np, out_pure = self.path("np.lpw"), self.path("pure.lpw")
        self.assertEqual(run_convert("--arch", self.ARCH, st, out_np)[0], 0)
        code = ("import sys; sys.modules['numpy'] = None; sys.modules['torch'] = None; "
                "sys.path.insert(0, %r); import convert; "
                "sys.exit(convert.main(sys.argv[1:]))" % os.path.join(ROOT, "tools"))
        r = subprocess.run([sys.executable, "-c", code, "--arch", self.ARCH, st, out_pure,
                            "--quiet"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out_np, "rb") as fa, open(out_pure, "rb") as fb:
            self.assertEqual(fa.read(), fb.read())

    def test_bad_safetensors(self):
        st = self.path("bad.safetensors")
        for blob in (b"\x10\0\0\0\0\0\0\0{", struct.pack("<Q", 2) + b"[]",
                     struct.pack("<Q", 60) + b'{"a": {"dtype": "F32", "shape": [4], '
                     b'"data_offsets": [0, 99]}}'.ljust(60)):
            with open(st, "wb") as f:
                f.write(blob)
            rc, err = run_convert("--arch", self.ARCH, st, self.path("o.lpw"))
            self.assertEqual(rc, 2, blob)
            self.assertTrue(err.startswith("convert: "), err)


if __name__ == "__main__":
    if not HAVE_C:
        print("note: %s has no `inspect`; the C cross-checks are skipped" % LOUPE,
              file=sys.stderr)
    unittest.main()
