#!/usr/bin/python3
"""convert.py — PyTorch checkpoints to loupe .lpw weight files.

    python3 tools/convert.py --arch resnet50 resnet50.pth resnet50.lpw
    python3 tools/convert.py --arch resnet20 resnet20-12fca82f.th resnet20.lpw
    python3 tools/convert.py --arch vit_b_16 model.safetensors vit.lpw --fp16
    python3 tools/convert.py --list-archs

CHECKPOINT is either
  - a torch.save'd state dict (zip format, or the legacy format of
    PyTorch < 1.6), or a dict holding one under 'state_dict' or 'model' (a
    'module.' prefix, from DataParallel, is stripped). It is read without
    PyTorch, by an unpickler with an allow list: dicts, OrderedDicts and
    tensor references are rebuilt, anything else the pickle names (an
    argparse.Namespace, a numpy scalar, a whole nn.Module, os.system) becomes
    an inert placeholder, so no code from the file runs. Needs numpy.
    (--trust-pickle uses plain torch.load instead, for pickled modules.
    Note that torch.load in PyTorch 1.13 ignores its pickle_module argument
    unless weights_only=True, and weights_only=True cannot read some real
    checkpoints, hence this reader.)
  - a .safetensors file (F32, F16, BF16), read with the standard library
    (and numpy when installed).

The converter writes the architecture's configuration (docs/FORMAT.md
"Keys") and derives from it the exact list of tensors the C model builders
(nn/resnet.c, nn/vit.c) will ask for, with their shapes. The checkpoint must
hold exactly those tensors: the first missing tensor, tensor with another
shape, or tensor the architecture does not use is named and nothing is
written. `num_batches_tracked` entries are dropped.

Tensors are written in the order of the expected list (which follows
PyTorch's own state_dict order for each layout), as float32; with --fp16,
tensors of two or more dimensions are stored as float16 (1-D tensors —
biases, norm parameters, BatchNorm statistics — stay float32, and so does
any tensor with a value float16 cannot represent).
"""

import argparse
import collections
import hashlib
import io
import json
import math
import os
import pickle
import re
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpw  # noqa: E402

try:
    import numpy as np
except ImportError:  # the .safetensors path works without numpy
    np = None

CONVERTER_VERSION = "1.0"

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
INCEPTION_MEAN = [0.5, 0.5, 0.5]
INCEPTION_STD = [0.5, 0.5, 0.5]
CIFAR10_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog",
                  "frog", "horse", "ship", "truck"]
DIGIT_LABELS = [str(d) for d in range(10)]


class ConvertError(Exception):
    pass


# ---------------------------------------------------------------------------
# Architectures: name -> configuration (docs/FORMAT.md keys, as a dict)
# ---------------------------------------------------------------------------

def _imagenet_input(resize=256, interpolation="bilinear", mean=IMAGENET_MEAN,
                    std=IMAGENET_STD):
    return {"input.channels": 3, "input.height": 224, "input.width": 224,
            "input.resize": resize, "input.crop": 224,
            "input.interpolation": interpolation,
            "input.mean": list(mean), "input.std": list(std)}


def _resnet(block, layers, groups=1, width_per_group=64):
    cfg = {"general.architecture": "resnet", "model.num_classes": 1000}
    cfg.update(_imagenet_input())
    cfg.update({"resnet.block": block, "resnet.layers": layers,
                "resnet.planes": [64, 128, 256, 512], "resnet.stem": "imagenet",
                "resnet.stem_width": 64, "resnet.groups": groups,
                "resnet.width_per_group": width_per_group,
                "resnet.shortcut": "projection", "resnet.bn_eps": 1e-5,
                "resnet.fc": "fc"})
    return cfg


def _cifar_resnet(n):
    cfg = {"general.architecture": "resnet", "model.num_classes": 10,
           "model.labels": CIFAR10_LABELS,
           "input.channels": 3, "input.height": 32, "input.width": 32,
           "input.resize": 0, "input.crop": 0, "input.interpolation": "bilinear",
           # the source repository normalises with ImageNet statistics
           "input.mean": IMAGENET_MEAN, "input.std": IMAGENET_STD,
           "resnet.block": "basic", "resnet.layers": [n, n, n],
           "resnet.planes": [16, 32, 64], "resnet.stem": "cifar",
           "resnet.stem_width": 16, "resnet.groups": 1,
           "resnet.width_per_group": 64, "resnet.shortcut": "option_a",
           "resnet.bn_eps": 1e-5, "resnet.fc": "linear"}
    return cfg


def _vit(layout, dim, layers, heads, mlp, patch, num_classes=1000, **inp):
    cfg = {"general.architecture": "vit", "model.num_classes": num_classes}
    cfg.update(_imagenet_input(**inp))
    cfg.update({"vit.layout": layout, "vit.image_size": 224, "vit.patch_size": patch,
                "vit.hidden_size": dim, "vit.num_layers": layers,
                "vit.num_heads": heads, "vit.head_dim": dim // heads,
                "vit.mlp_dim": mlp, "vit.ln_eps": 1e-6, "vit.mlp_act": "gelu_erf",
                "vit.qkv_bias": 1, "vit.pool": "token", "vit.final_norm": 1,
                "vit.head_norm": 0})
    return cfg


# timm evaluates DeiT and DINO with bicubic resizing at crop_pct 0.875
# (256 -> 224); its augreg ViTs with crop_pct 0.9 (248 -> 224) and mean/std 0.5.
_TIMM_DEIT = dict(resize=256, interpolation="bicubic")
_TIMM_AUGREG = dict(resize=248, interpolation="bicubic", mean=INCEPTION_MEAN,
                    std=INCEPTION_STD)

ARCHS = {
    # torchvision ResNets (He et al. 2016), "v1.5": stride on the 3x3 conv
    "resnet18": _resnet("basic", [2, 2, 2, 2]),
    "resnet34": _resnet("basic", [3, 4, 6, 3]),
    "resnet50": _resnet("bottleneck", [3, 4, 6, 3]),
    "resnet101": _resnet("bottleneck", [3, 4, 23, 3]),
    "resnet152": _resnet("bottleneck", [3, 8, 36, 3]),
    "resnext50_32x4d": _resnet("bottleneck", [3, 4, 6, 3], 32, 4),
    "resnext101_32x8d": _resnet("bottleneck", [3, 4, 23, 3], 32, 8),
    "resnext101_64x4d": _resnet("bottleneck", [3, 4, 23, 3], 64, 4),
    "wide_resnet50_2": _resnet("bottleneck", [3, 4, 6, 3], 1, 128),
    "wide_resnet101_2": _resnet("bottleneck", [3, 4, 23, 3], 1, 128),
    # CIFAR-10 ResNets with option-A shortcuts (akamaster/pytorch_resnet_cifar10)
    "resnet20": _cifar_resnet(3),
    "resnet32": _cifar_resnet(5),
    "resnet44": _cifar_resnet(7),
    "resnet56": _cifar_resnet(9),
    "resnet110": _cifar_resnet(18),
    # torchvision ViTs (vit_l_16's IMAGENET1K_V1 weights use resize 242)
    "vit_b_16": _vit("torchvision", 768, 12, 12, 3072, 16),
    "vit_b_32": _vit("torchvision", 768, 12, 12, 3072, 32),
    "vit_l_16": _vit("torchvision", 1024, 24, 16, 4096, 16, resize=242),
    "vit_l_32": _vit("torchvision", 1024, 24, 16, 4096, 32),
    # timm
    "deit_tiny_patch16_224": _vit("timm", 192, 12, 3, 768, 16, **_TIMM_DEIT),
    "deit_small_patch16_224": _vit("timm", 384, 12, 6, 1536, 16, **_TIMM_DEIT),
    "deit_base_patch16_224": _vit("timm", 768, 12, 12, 3072, 16, **_TIMM_DEIT),
    "vit_small_patch16_224": _vit("timm", 384, 12, 6, 1536, 16, **_TIMM_AUGREG),
    "vit_base_patch16_224": _vit("timm", 768, 12, 12, 3072, 16, **_TIMM_AUGREG),
    # DINO backbones (timm layout, no head: the output is the CLS feature)
    "dino_vits16": _vit("timm", 384, 12, 6, 1536, 16, num_classes=0, **_TIMM_DEIT),
    "dino_vitb16": _vit("timm", 768, 12, 12, 3072, 16, num_classes=0, **_TIMM_DEIT),
    # lucidrains-style MNIST ViT (shared/data/README.md "models/vit_mnist")
    "vit_mnist": {
        "general.architecture": "vit", "model.num_classes": 10,
        "model.labels": DIGIT_LABELS,
        "input.channels": 1, "input.height": 28, "input.width": 28,
        "input.resize": 0, "input.crop": 0, "input.interpolation": "bilinear",
        "input.mean": [0.1307], "input.std": [0.3081],
        "vit.layout": "lucidrains", "vit.image_size": 28, "vit.patch_size": 4,
        "vit.hidden_size": 64, "vit.num_layers": 6, "vit.num_heads": 4,
        "vit.head_dim": 64, "vit.mlp_dim": 128, "vit.ln_eps": 1e-5,
        "vit.mlp_act": "relu", "vit.qkv_bias": 0, "vit.pool": "token",
        "vit.final_norm": 0, "vit.head_norm": 1},
}

# Metadata key order and types in the written file.
KEY_TYPES = [
    ("general.architecture", "STR"), ("general.name", "STR"), ("general.source", "STR"),
    ("model.num_classes", "I64"), ("model.labels", "STR_ARR"),
    ("input.channels", "I64"), ("input.height", "I64"), ("input.width", "I64"),
    ("input.resize", "I64"), ("input.crop", "I64"), ("input.interpolation", "STR"),
    ("input.mean", "F64_ARR"), ("input.std", "F64_ARR"),
    ("resnet.block", "STR"), ("resnet.layers", "I64_ARR"), ("resnet.planes", "I64_ARR"),
    ("resnet.stem", "STR"), ("resnet.stem_width", "I64"), ("resnet.groups", "I64"),
    ("resnet.width_per_group", "I64"), ("resnet.shortcut", "STR"),
    ("resnet.bn_eps", "F64"), ("resnet.fc", "STR"),
    ("vit.layout", "STR"), ("vit.image_size", "I64"), ("vit.patch_size", "I64"),
    ("vit.hidden_size", "I64"), ("vit.num_layers", "I64"), ("vit.num_heads", "I64"),
    ("vit.head_dim", "I64"), ("vit.mlp_dim", "I64"), ("vit.ln_eps", "F64"),
    ("vit.mlp_act", "STR"), ("vit.qkv_bias", "I64"), ("vit.pool", "STR"),
    ("vit.final_norm", "I64"), ("vit.head_norm", "I64"),
]


def metadata_list(cfg):
    """cfg dict -> [(key, type, value)] in KEY_TYPES order."""
    known = {k for k, _ in KEY_TYPES}
    extra = set(cfg) - known
    if extra:
        raise ConvertError("unknown configuration keys: %s" % ", ".join(sorted(extra)))
    return [(k, t, cfg[k]) for k, t in KEY_TYPES if k in cfg]


# ---------------------------------------------------------------------------
# Expected tensors: the configuration -> [(name, shape)], exactly what the
# C builders request (nn/resnet.c, nn/vit.c).
# ---------------------------------------------------------------------------

def _bn(prefix, c):
    return [(prefix + "." + s, (c,)) for s in ("weight", "bias", "running_mean", "running_var")]


def _ln(prefix, d):
    return [(prefix + ".weight", (d,)), (prefix + ".bias", (d,))]


def _linear(prefix, out_f, in_f, bias=True):
    t = [(prefix + ".weight", (out_f, in_f))]
    if bias:
        t.append((prefix + ".bias", (out_f,)))
    return t


def resnet_expected(cfg):
    block, layers, planes = cfg["resnet.block"], cfg["resnet.layers"], cfg["resnet.planes"]
    stem, width0 = cfg["resnet.stem"], cfg["resnet.stem_width"]
    groups, wpg = cfg.get("resnet.groups", 1), cfg.get("resnet.width_per_group", 64)
    if block not in ("basic", "bottleneck") or stem not in ("imagenet", "cifar") or \
            cfg["resnet.shortcut"] not in ("projection", "option_a") or \
            len(layers) != len(planes) or not layers:
        raise ConvertError("inconsistent resnet configuration")
    if block == "basic" and (groups != 1 or wpg != 64):
        raise ConvertError("basic blocks need groups 1 and width_per_group 64")
    k = 7 if stem == "imagenet" else 3
    out = [("conv1.weight", (width0, cfg["input.channels"], k, k))] + _bn("bn1", width0)
    inplanes = width0
    expansion = 1 if block == "basic" else 4
    for s, (n_blocks, p) in enumerate(zip(layers, planes)):
        for b in range(n_blocks):
            stride = 2 if s > 0 and b == 0 else 1
            pre = "layer%d.%d" % (s + 1, b)
            if block == "basic":
                out += [(pre + ".conv1.weight", (p, inplanes, 3, 3))] + _bn(pre + ".bn1", p)
                out += [(pre + ".conv2.weight", (p, p, 3, 3))] + _bn(pre + ".bn2", p)
            else:
                width = (p * wpg // 64) * groups
                out += [(pre + ".conv1.weight", (width, inplanes, 1, 1))] + _bn(pre + ".bn1", width)
                out += [(pre + ".conv2.weight", (width, width // groups, 3, 3))] + \
                    _bn(pre + ".bn2", width)
                out += [(pre + ".conv3.weight", (p * 4, width, 1, 1))] + _bn(pre + ".bn3", p * 4)
            if (stride != 1 or inplanes != p * expansion) and \
                    cfg["resnet.shortcut"] == "projection":
                out += [(pre + ".downsample.0.weight", (p * expansion, inplanes, 1, 1))]
                out += _bn(pre + ".downsample.1", p * expansion)
            inplanes = p * expansion
    if cfg["model.num_classes"] > 0:
        out += _linear(cfg["resnet.fc"], cfg["model.num_classes"], inplanes)
    return out


def vit_expected(cfg):
    layout = cfg["vit.layout"]
    d, p, c = cfg["vit.hidden_size"], cfg["vit.patch_size"], cfg["input.channels"]
    heads, mlp, k = cfg["vit.num_heads"], cfg["vit.mlp_dim"], cfg["model.num_classes"]
    inner = heads * cfg.get("vit.head_dim", d // heads)
    qkv_bias = bool(cfg.get("vit.qkv_bias", 1))
    final_norm, head_norm = cfg.get("vit.final_norm", 1), cfg.get("vit.head_norm", 0)
    if cfg["vit.image_size"] % p:
        raise ConvertError("vit.image_size is not a multiple of vit.patch_size")
    tokens = (cfg["vit.image_size"] // p) ** 2 + 1
    out = []
    if layout == "torchvision":
        if head_norm:
            raise ConvertError("the torchvision layout has no head norm")
        out += [("class_token", (1, 1, d)), ("conv_proj.weight", (d, c, p, p)),
                ("conv_proj.bias", (d,)), ("encoder.pos_embedding", (1, tokens, d))]
        for i in range(cfg["vit.num_layers"]):
            pre = "encoder.layers.encoder_layer_%d." % i
            out += _ln(pre + "ln_1", d)
            out += [(pre + "self_attention.in_proj_weight", (3 * inner, d))]
            if qkv_bias:
                out += [(pre + "self_attention.in_proj_bias", (3 * inner,))]
            out += _linear(pre + "self_attention.out_proj", d, inner)
            out += _ln(pre + "ln_2", d)
            out += _linear(pre + "mlp.0", mlp, d) + _linear(pre + "mlp.3", d, mlp)
        if final_norm:
            out += _ln("encoder.ln", d)
        if k > 0:
            out += _linear("heads.head", k, d)
    elif layout == "timm":
        out += [("cls_token", (1, 1, d)), ("pos_embed", (1, tokens, d)),
                ("patch_embed.proj.weight", (d, c, p, p)), ("patch_embed.proj.bias", (d,))]
        for i in range(cfg["vit.num_layers"]):
            pre = "blocks.%d." % i
            out += _ln(pre + "norm1", d)
            out += _linear(pre + "attn.qkv", 3 * inner, d, qkv_bias)
            out += _linear(pre + "attn.proj", d, inner)
            out += _ln(pre + "norm2", d)
            out += _linear(pre + "mlp.fc1", mlp, d) + _linear(pre + "mlp.fc2", d, mlp)
        if final_norm:
            out += _ln("norm", d)
        if head_norm:
            out += _ln("fc_norm", d)
        if k > 0:
            out += _linear("head", k, d)
    elif layout == "lucidrains":
        if qkv_bias or final_norm:
            raise ConvertError("the lucidrains layout has no q/k/v bias and no final norm")
        out += [("pos_embedding", (1, tokens, d)), ("cls_token", (1, 1, d))]
        out += _linear("to_patch_embedding.1", d, p * p * c)
        for i in range(cfg["vit.num_layers"]):
            pre = "transformer.layers.%d." % i
            out += _ln(pre + "0.norm", d)
            out += _linear(pre + "0.fn.to_qkv", 3 * inner, d, bias=False)
            out += _linear(pre + "0.fn.to_out.0", d, inner)
            out += _ln(pre + "1.norm", d)
            out += _linear(pre + "1.fn.net.0", mlp, d) + _linear(pre + "1.fn.net.3", d, mlp)
        if head_norm:
            out += _ln("mlp_head.0", d)
        if k > 0:
            out += _linear("mlp_head.1", k, d)
    else:
        raise ConvertError("unknown vit.layout %r" % layout)
    return out


def expected_tensors(cfg):
    if cfg["general.architecture"] == "resnet":
        return resnet_expected(cfg)
    if cfg["general.architecture"] == "vit":
        return vit_expected(cfg)
    raise ConvertError("unknown architecture %r" % cfg["general.architecture"])


# ---------------------------------------------------------------------------
# Reading checkpoints
# ---------------------------------------------------------------------------

class _Inert:
    """Stands in for any class or function a pickle names that is not on
    the allow list: it accepts any arguments and state and runs nothing."""
    _global = "?"

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __repr__(self):
        return "<%s (not loaded)>" % self._global


# torch storage classes -> (numpy dtype, bfloat16?)
_STORAGES = {
    "FloatStorage": ("<f4", False), "HalfStorage": ("<f2", False),
    "BFloat16Storage": ("<u2", True), "DoubleStorage": ("<f8", False),
    "LongStorage": ("<i8", False), "IntStorage": ("<i4", False),
    "ShortStorage": ("<i2", False), "CharStorage": ("i1", False),
    "ByteStorage": ("u1", False), "BoolStorage": ("?", False),
}


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype, self.bf16 = _STORAGES[name]


class _Storage:
    """A storage named by the pickle; its bytes are attached later."""

    def __init__(self, stype, numel, root=None, offset=0):
        if not isinstance(stype, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise ConvertError("malformed storage reference in the checkpoint")
        self.stype, self.numel, self.root, self.offset = stype, numel, root, offset
        self.array = None

    def values(self):
        if self.root is not None:
            base = self.root.values()
            return base[self.offset:self.offset + self.numel]
        if self.array is None:
            raise ConvertError("a storage's data is missing from the checkpoint")
        return self.array

    def attach(self, raw):
        itemsize = np.dtype(self.stype.dtype).itemsize
        if len(raw) != self.numel * itemsize:
            raise ConvertError("storage of %d bytes, expected %d"
                               % (len(raw), self.numel * itemsize))
        self.array = np.frombuffer(raw, dtype=self.stype.dtype)


class _LazyTensor:
    """What torch._utils._rebuild_tensor(_v2) would build, kept as a
    reference until the storages are read."""

    def __init__(self, storage, offset, size, stride, *rest):
        ints = lambda t: isinstance(t, tuple) and all(isinstance(v, int) and v >= 0 for v in t)
        if not (isinstance(storage, _Storage) and isinstance(offset, int) and offset >= 0
                and ints(size) and ints(stride) and len(size) == len(stride)):
            raise ConvertError("malformed tensor in the checkpoint")
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    @property
    def shape(self):
        return self.size

    def is_float(self):
        return self.storage.stype.name in ("FloatStorage", "HalfStorage",
                                           "BFloat16Storage", "DoubleStorage")

    def to_float32(self, name):
        if not self.is_float():
            raise ConvertError("%s: %s (weights must be floating point)"
                               % (name, self.storage.stype.name))
        values = self.storage.values()
        if 0 in self.size:
            a = np.zeros(self.size, dtype=values.dtype)
        else:
            last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
            if last >= values.size:  # as_strided must never read outside
                raise ConvertError("%s: tensor view runs past its storage" % name)
            item = values.itemsize
            a = np.lib.stride_tricks.as_strided(
                values[self.offset:], shape=self.size,
                strides=[s * item for s in self.stride], writeable=False).copy()
        if self.storage.stype.bf16:
            a = (a.astype(np.uint32) << np.uint32(16)).view(np.float32)
        return np.ascontiguousarray(a, dtype=np.float32)


def _rebuild_parameter(data, *rest):
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    if func not in (_LazyTensor, _rebuild_parameter) or not isinstance(args, tuple):
        return _Inert()
    return func(*args)


def _size(values=()):
    return tuple(values)


class _CheckpointUnpickler(pickle.Unpickler):
    """Rebuilds dicts, OrderedDicts and tensor references; every other
    global becomes an _Inert placeholder, so no code from the file runs."""

    def __init__(self, f, storages, legacy):
        super().__init__(f, encoding="utf-8")
        self.storages, self.legacy = storages, legacy

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in _STORAGES:
            return _StorageType(name)
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _LazyTensor
        if module == "torch._utils" and name in ("_rebuild_parameter",
                                                 "_rebuild_parameter_with_state"):
            return _rebuild_parameter
        if (module, name) in (("torch._tensor", "_rebuild_from_type_v2"),
                              ("torch.tensor", "_rebuild_from_type_v2")):
            return _rebuild_from_type_v2
        if (module, name) == ("torch", "Size"):
            return _size
        return type(str(name), (_Inert,), {"_global": "%s.%s" % (module, name)})

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid:
            raise ConvertError("malformed persistent id in the checkpoint")
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind == "module":  # legacy: the source of a pickled nn.Module
            return _Inert()
        if kind != "storage":
            raise ConvertError("unknown persistent id %r in the checkpoint" % (kind,))
        if self.legacy and len(pid) == 6:
            stype, key, _, numel, view = pid[1:]
        elif not self.legacy and len(pid) == 5:
            stype, key, _, numel = pid[1:]
            view = None
        else:
            raise ConvertError("malformed storage id in the checkpoint")
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(stype, numel)
        root = self.storages[key]
        if view is None:
            return root
        if not (isinstance(view, tuple) and len(view) == 3 and isinstance(view[1], int)
                and isinstance(view[2], int) and view[1] >= 0 and view[2] >= 0
                and view[1] + view[2] <= root.numel):
            raise ConvertError("malformed storage view in the checkpoint")
        return _Storage(stype, view[2], root, view[1])


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _read_zip_checkpoint(path):
    import zipfile
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            raise ConvertError("%s is a TorchScript archive; save model.state_dict() "
                               "with torch.save instead" % path)
        pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise ConvertError("%s: not a torch.save archive (no data.pkl)" % path)
        prefix = pkl[0][: -len("data.pkl")]
        storages = {}
        obj = _CheckpointUnpickler(io.BytesIO(z.read(pkl[0])), storages, False).load()
        for key, st in storages.items():
            try:
                raw = z.read(prefix + "data/" + key)
            except KeyError:
                raise ConvertError("%s: storage %s is missing" % (path, key)) from None
            st.attach(raw)
    return obj


def _read_legacy_checkpoint(path):
    """torch.save's format before 1.6: magic, protocol, system info, the
    object, the storage keys, then each storage as int64 count + data."""
    storages = {}
    with open(path, "rb") as f:
        magic = _CheckpointUnpickler(f, storages, True).load()
        if magic != _LEGACY_MAGIC:
            raise ConvertError("%s: not a PyTorch checkpoint" % path)
        if _CheckpointUnpickler(f, storages, True).load() != 1001:
            raise ConvertError("%s: unknown legacy protocol version" % path)
        _CheckpointUnpickler(f, storages, True).load()  # system info
        obj = _CheckpointUnpickler(f, storages, True).load()
        keys = _CheckpointUnpickler(f, storages, True).load()
        if not isinstance(keys, list):
            raise ConvertError("%s: malformed storage list" % path)
        for key in keys:
            st = storages.get(str(key))
            if st is None:
                raise ConvertError("%s: storage %s was never referenced" % (path, key))
            head = f.read(8)
            if len(head) != 8:
                raise ConvertError("%s: truncated storage data" % path)
            count = struct.unpack("<q", head)[0]
            if count != st.numel:
                raise ConvertError("%s: storage %s holds %d elements, expected %d"
                                   % (path, key, count, st.numel))
            st.attach(f.read(st.numel * np.dtype(st.stype.dtype).itemsize))
    return obj


def _pick_state_dict(obj):
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                return obj[key]
        return obj
    what = getattr(obj, "_global", type(obj).__name__)
    raise ConvertError("the checkpoint holds a %s, not a state dict (a pickled "
                       "nn.Module needs --trust-pickle)" % what)


def load_torch(path, trust_pickle):
    """A torch.save'd checkpoint (zip or legacy format) -> {name: float32 array}.
    Read without PyTorch and without running code from the file, unless
    --trust-pickle asks for torch.load."""
    if np is None:
        raise ConvertError("reading a torch checkpoint needs numpy")
    if trust_pickle:
        return _load_torch_trusted(path)
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    try:
        obj = _read_zip_checkpoint(path) if is_zip else _read_legacy_checkpoint(path)
    except ConvertError:
        raise
    except Exception as e:  # a damaged file fails in many ways
        raise ConvertError("%s: not a readable PyTorch checkpoint (%s: %s)"
                           % (path, type(e).__name__, e)) from None
    out = {}
    for name, value in _pick_state_dict(obj).items():
        if not isinstance(name, str):
            raise ConvertError("state dict key %r is not a string" % (name,))
        if name.endswith("num_batches_tracked"):
            continue
        if not isinstance(value, _LazyTensor):
            raise ConvertError("%s: not a tensor but %r" % (name, value))
        out[name] = value.to_float32(name)
    return out


def _load_torch_trusted(path):
    try:
        import torch
    except ImportError:
        raise ConvertError("--trust-pickle needs PyTorch") from None
    obj = torch.load(path, map_location="cpu")
    if hasattr(obj, "state_dict") and not isinstance(obj, dict):
        obj = obj.state_dict()
    out = {}
    for name, t in _pick_state_dict(obj).items():
        if name.endswith("num_batches_tracked"):
            continue
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise ConvertError("%s: not a floating-point tensor" % name)
        out[name] = np.ascontiguousarray(t.detach().cpu().to(torch.float32).numpy())
    return out


_ST_DTYPES = {"F32": (4, "<f4"), "F16": (2, "<f2"), "BF16": (2, "<u2")}


def _bf16_bytes_to_f32(raw):
    n = len(raw) // 2
    halves = struct.unpack("<%dH" % n, raw)
    return struct.pack("<%dI" % n, *[h << 16 for h in halves])


def load_safetensors(path):
    """A .safetensors file: u64 header length, JSON header, raw data."""
    size = os.path.getsize(path)
    out = {}
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ConvertError("truncated safetensors file")
        n = struct.unpack("<Q", head)[0]
        if n > min(size - 8, 100 << 20):
            raise ConvertError("safetensors header length %d is impossible" % n)
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ConvertError("safetensors header is not JSON: %s" % e) from None
        if not isinstance(header, dict):
            raise ConvertError("safetensors header is not an object")
        data_start, data_len = 8 + n, size - 8 - n
        for name, info in header.items():
            if name == "__metadata__":
                continue
            try:
                dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            except (KeyError, TypeError, ValueError):
                raise ConvertError("%s: malformed safetensors entry" % name) from None
            if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)
                    and isinstance(begin, int) and isinstance(end, int)
                    and 0 <= begin <= end <= data_len):
                raise ConvertError("%s: bad shape or data offsets" % name)
            if name.endswith("num_batches_tracked"):
                continue
            if dtype not in _ST_DTYPES:
                raise ConvertError("%s: safetensors dtype %s (F32, F16 or BF16 needed)"
                                   % (name, dtype))
            itemsize, npdtype = _ST_DTYPES[dtype]
            count = math.prod(shape)
            if end - begin != count * itemsize:
                raise ConvertError("%s: %d bytes for shape %s %s"
                                   % (name, end - begin, shape, dtype))
            f.seek(data_start + begin)
            raw = f.read(end - begin)
            if np is not None:
                a = np.frombuffer(raw, dtype=npdtype)
                if dtype == "BF16":
                    a = (a.astype(np.uint32) << np.uint32(16)).view(np.float32)
                out[name] = a.astype(np.float32).reshape(shape)
            else:
                if dtype == "F16":
                    raw = struct.pack("<%df" % count, *struct.unpack("<%de" % count, raw))
                elif dtype == "BF16":
                    raw = _bf16_bytes_to_f32(raw)
                out[name] = lpw.RawTensor(shape, "float32", raw)
    return out


def is_safetensors(path):
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and not head.startswith(b"PK")


def normalise_names(sd, cfg):
    """Strip DataParallel's 'module.' prefix; rename old torchvision ViT
    MLP names (mlp.linear_1/2 -> mlp.0/3)."""
    out = {}
    for name, t in sd.items():
        if name.startswith("module."):
            name = name[len("module."):]
        if cfg.get("vit.layout") == "torchvision":
            name = re.sub(r"(encoder_layer_\d+\.mlp\.)linear_1\.", r"\g<1>0.", name)
            name = re.sub(r"(encoder_layer_\d+\.mlp\.)linear_2\.", r"\g<1>3.", name)
        if name in out:
            raise ConvertError("%s appears twice after renaming" % name)
        out[name] = t
    return out


def _shape(t):
    return tuple(int(d) for d in t.shape)


def check_tensors(sd, expected, arch):
    """Refuse the checkpoint at its first difference from `expected`."""
    want = dict(expected)
    for name, shape in expected:
        if name not in sd:
            raise ConvertError("%s: missing from the checkpoint (%s expects %s)"
                               % (name, arch, shape))
        if _shape(sd[name]) != shape:
            raise ConvertError("%s: checkpoint has shape %s, %s expects %s"
                               % (name, _shape(sd[name]), arch, shape))
    for name in sd:
        if name not in want:
            raise ConvertError("%s: unexpected tensor %s in the checkpoint (not part of %s)"
                               % (name, _shape(sd[name]), arch))


def matching_archs(sd):
    """Architectures whose expected tensors the checkpoint holds exactly."""
    have = {n: _shape(t) for n, t in sd.items()}
    found = []
    for arch, cfg in ARCHS.items():
        for k in sorted({cfg["model.num_classes"]} | _head_sizes(have)):
            c = dict(cfg, **{"model.num_classes": k})
            if "model.labels" in c and len(c["model.labels"]) != k:
                del c["model.labels"]
            try:
                if dict(expected_tensors(c)) == have:
                    found.append(arch if k == cfg["model.num_classes"]
                                 else "%s --num-classes %d" % (arch, k))
            except ConvertError:
                pass
    return found


def _head_sizes(have):
    return {s[0] for n, s in have.items()
            if len(s) == 2 and n.split(".")[0] in ("fc", "linear", "head", "heads", "mlp_head")}


# ---------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------

def read_labels(path):
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\r\n") for line in f]
    while lines and not lines[-1].strip():
        lines.pop()
    if lines and "\t" in lines[0]:
        cols = lines[0].split("\t")
        if "name" not in cols:
            raise ConvertError("%s: a TSV label file needs a 'name' column" % path)
        i = cols.index("name")
        rows = [line.split("\t") for line in lines[1:]]
        if any(len(r) <= i for r in rows):
            raise ConvertError("%s: a row has no 'name' column" % path)
        return [r[i] for r in rows]
    return lines


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _storage(name, t, fp16):
    """The array to write: float32, or float16 under --fp16 where safe."""
    if not fp16 or len(t.shape) < 2:
        return t
    if np is not None:
        if not np.all(np.abs(t) <= 65504.0):
            return t  # overflow or NaN: keep float32
        return t.astype(np.float16)
    count = len(t.data) // 4
    try:
        raw = struct.pack("<%de" % count, *struct.unpack("<%df" % count, t.data))
    except (OverflowError, struct.error):
        return t
    return lpw.RawTensor(t.shape, "float16", raw)


def build_config(args):
    if args.arch not in ARCHS:
        raise ConvertError("unknown --arch %s (try --list-archs)" % args.arch)
    cfg = dict(ARCHS[args.arch])
    cfg["general.name"] = args.arch
    if args.num_classes is not None:
        if args.num_classes < 0:
            raise ConvertError("--num-classes must be >= 0")
        cfg["model.num_classes"] = args.num_classes
        cfg.pop("model.labels", None)
    for opt, key in (("resize", "input.resize"), ("crop", "input.crop"),
                     ("interpolation", "input.interpolation")):
        if getattr(args, opt) is not None:
            cfg[key] = getattr(args, opt)
    for opt, key in (("mean", "input.mean"), ("std", "input.std")):
        if getattr(args, opt) is not None:
            v = [float(x) for x in getattr(args, opt).split(",")]
            if len(v) != cfg["input.channels"]:
                raise ConvertError("--%s needs %d values" % (opt, cfg["input.channels"]))
            cfg[key] = v
    if args.labels:
        labels = read_labels(args.labels)
        if len(labels) != cfg["model.num_classes"]:
            raise ConvertError("%s has %d labels, %s has %d classes"
                               % (args.labels, len(labels), args.arch,
                                  cfg["model.num_classes"]))
        cfg["model.labels"] = labels
    return cfg


def convert(args):
    t0 = time.time()
    cfg = build_config(args)
    src = args.checkpoint
    if is_safetensors(src):
        sd = load_safetensors(src)
    else:
        sd = load_torch(src, args.trust_pickle)
    sd = normalise_names(sd, cfg)
    expected = expected_tensors(cfg)
    try:
        check_tensors(sd, expected, args.arch)
    except ConvertError as e:
        hint = matching_archs(sd)
        if hint:
            raise ConvertError("%s [the checkpoint matches --arch %s]"
                               % (e, " or --arch ".join(hint))) from None
        raise
    cfg["general.source"] = "loupe convert.py %s; checkpoint %s; sha256 %s" % (
        CONVERTER_VERSION, os.path.basename(src)[:200], sha256_file(src))
    tensors = [(name, _storage(name, sd[name], args.fp16)) for name, _ in expected]
    size = lpw.write_lpw(args.output, metadata_list(cfg), tensors)
    if not args.quiet:
        print("convert: wrote %s: %s, %d tensors, %.1f MB, %.2f s"
              % (args.output, args.arch, len(tensors), size / 1e6, time.time() - t0))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="convert.py",
        description="Convert a PyTorch checkpoint (state dict or .safetensors) "
                    "to a loupe .lpw weight file.")
    ap.add_argument("--arch", help="architecture name (see --list-archs)")
    ap.add_argument("checkpoint", nargs="?", help="torch.save'd state dict or .safetensors")
    ap.add_argument("output", nargs="?", help="the .lpw file to write")
    ap.add_argument("--labels", help="class names: one per line, or a TSV with a 'name' column")
    ap.add_argument("--fp16", action="store_true",
                    help="store tensors of 2+ dimensions as float16")
    ap.add_argument("--num-classes", type=int, help="classifier outputs (fine-tuned heads)")
    ap.add_argument("--resize", type=int, help="input.resize (shorter side before the crop)")
    ap.add_argument("--crop", type=int, help="input.crop (centre crop size)")
    ap.add_argument("--interpolation", choices=("bilinear", "bicubic"))
    ap.add_argument("--mean", help="input.mean, comma separated")
    ap.add_argument("--std", help="input.std, comma separated")
    ap.add_argument("--trust-pickle", action="store_true",
                    help="load with plain torch.load (runs code from the file!)")
    ap.add_argument("--list-archs", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.list_archs:
        for name, cfg in ARCHS.items():
            n = sum(math.prod(s) for _, s in expected_tensors(cfg))
            print("%-24s %-6s %6.1f M values" % (name, cfg["general.architecture"], n / 1e6))
        return 0
    if not (args.arch and args.checkpoint and args.output):
        ap.print_usage(sys.stderr)
        return 2
    try:
        return convert(args)
    except (ConvertError, lpw.LpwError) as e:
        print("convert: %s" % e, file=sys.stderr)
        return 2
    except OSError as e:
        print("convert: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
