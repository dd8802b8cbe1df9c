"""PyTorch reference models for the layouts torchvision does not ship.

timm is not packaged by Debian, the CIFAR ResNets live in a training repo
and the MNIST ViT in another, so the parity suite rebuilds them here from
their published definitions, with the same state-dict names:

- TimmViT: timm's VisionTransformer (DeiT, ViT, DINO): patch_embed.proj,
  cls_token, pos_embed, blocks.i.{norm1, attn.qkv, attn.proj, norm2,
  mlp.fc1, mlp.fc2}, norm, fc_norm, head.
- CifarResNet: akamaster/pytorch_resnet_cifar10 (option-A shortcuts).
- LucidrainsViT: the MNIST ViT of ../shared/data/models/vit_mnist.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class TimmAttention(nn.Module):
    def __init__(self, dim, heads, qkv_bias=True):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


class TimmMlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class TimmBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=4.0, eps=1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = TimmAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = TimmMlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TimmViT(nn.Module):
    def __init__(self, img=224, patch=16, dim=768, depth=12, heads=12,
                 num_classes=1000, global_pool="token"):
        super().__init__()
        self.global_pool = global_pool
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, dim, patch, patch)
        tokens = (img // patch) ** 2
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[TimmBlock(dim, heads) for _ in range(depth)])
        avg = global_pool == "avg"
        self.norm = nn.Identity() if avg else nn.LayerNorm(dim, eps=1e-6)
        self.fc_norm = nn.LayerNorm(dim, eps=1e-6) if avg else nn.Identity()
        self.head = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x):
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed
        x = self.norm(self.blocks(x))
        x = x[:, 1:].mean(dim=1) if self.global_pool == "avg" else x[:, 0]
        return self.head(self.fc_norm(x))


class CifarBlock(nn.Module):
    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = None
        if stride != 1 or inp != planes:
            self.pad = planes // 4

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.pad is not None:
            sc = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        else:
            sc = x
        return F.relu(out + sc)


class CifarResNet(nn.Module):
    def __init__(self, n, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        inp = 16
        for s, planes in enumerate([16, 32, 64]):
            blocks = []
            for b in range(n):
                stride = 2 if (s > 0 and b == 0) else 1
                blocks.append(CifarBlock(inp, planes, stride))
                inp = planes
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*blocks))
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.linear(x)


class LucidrainsViT(nn.Module):
    """The MNIST ViT: patch 4, D 64, depth 6, heads 4, head_dim 64, mlp 128, ReLU."""

    def __init__(self, image=28, patch=4, channels=1, dim=64, depth=6, heads=4,
                 dim_head=64, mlp=128, num_classes=10):
        super().__init__()
        self.patch = patch
        self.heads = heads
        self.dim_head = dim_head
        tokens = (image // patch) ** 2
        self.to_patch_embedding = nn.Sequential(nn.Identity(), nn.Linear(patch * patch * channels, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, tokens + 1, dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        inner = heads * dim_head
        self.transformer = nn.Module()
        layers = []
        for _ in range(depth):
            attn = nn.Module()
            attn.norm = nn.LayerNorm(dim)
            attn.fn = nn.Module()
            attn.fn.to_qkv = nn.Linear(dim, inner * 3, bias=False)
            attn.fn.to_out = nn.Sequential(nn.Linear(inner, dim))
            ff = nn.Module()
            ff.norm = nn.LayerNorm(dim)
            ff.fn = nn.Module()
            ff.fn.net = nn.Sequential(nn.Linear(dim, mlp), nn.ReLU(), nn.Identity(),
                                      nn.Linear(mlp, dim), nn.Identity())
            layers.append(nn.ModuleList([attn, ff]))
        self.transformer.layers = nn.ModuleList(layers)
        self.mlp_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))

    def forward(self, img):
        b, c, h, w = img.shape
        p = self.patch
        x = img.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        x = x.reshape(b, (h // p) * (w // p), p * p * c)
        x = self.to_patch_embedding(x)
        x = torch.cat([self.cls_token.expand(b, -1, -1), x], dim=1)
        x = x + self.pos_embedding
        for attn, ff in self.transformer.layers:
            y = attn.norm(x)
            q, k, v = attn.fn.to_qkv(y).chunk(3, dim=-1)
            split = lambda t: t.reshape(b, -1, self.heads, self.dim_head).transpose(1, 2)
            q, k, v = split(q), split(k), split(v)
            a = ((q @ k.transpose(-1, -2)) * self.dim_head ** -0.5).softmax(dim=-1)
            o = (a @ v).transpose(1, 2).reshape(b, -1, self.heads * self.dim_head)
            x = attn.fn.to_out(o) + x
            x = ff.fn.net(ff.norm(x)) + x
        return self.mlp_head(x[:, 0])


def randomize(model, seed):
    """Seeded random weights everywhere, with BatchNorm running statistics
    and LayerNorm affine parameters randomised (not left at 0/1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif t.dim() == 1 and name.endswith("weight"):
                t.copy_(1.0 + 0.1 * torch.randn(t.shape, generator=g))
            elif t.dim() == 1:
                t.copy_(0.1 * torch.randn(t.shape, generator=g))
            elif t.dim() == 3:  # class token, positions
                t.copy_(0.5 * torch.randn(t.shape, generator=g))
            else:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=g) / math.sqrt(fan_in))
    return model.eval()


def forward_float64(model, x, batch=8):
    """model(x) in float64 (model already .double()), without gradients, in
    batches of 8. PyTorch's float64 convolution has no oneDNN path and on
    large batches spends most of its time faulting in freshly mapped
    buffers: ResNet-20, 1024 images, one thread, 3.0 s in batches of 8
    against 48 s in batches of 256."""
    x = torch.as_tensor(x, dtype=torch.float64)
    with torch.no_grad():
        return torch.cat([model(x[s:s + batch]) for s in range(0, len(x), batch)])


def blas_in_use():
    """The BLAS library PyTorch's matrix products go through, read from
    this process's memory map after one product ("?" if none is mapped).
    Debian's default libblas.so.3 is the reference (netlib) BLAS, which
    makes PyTorch 20-50x slower (.ci/run installs OpenBLAS)."""
    torch.ones(64, 64) @ torch.ones(64, 64)
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "blas" in line.lower()}
    except OSError:
        return "?"
    named = sorted(p for p in paths if p.startswith("/"))
    slow = [p for p in named if "/blas/" in p and "openblas" not in p]
    if slow:
        return slow[0] + " (the reference BLAS: slow; apt-get install libopenblas0-pthread)"
    return named[0] if named else "?"


def set_blas_threads(n):
    """torch.set_num_threads does not reach an OpenBLAS that PyTorch calls
    through libblas.so.3: set OpenBLAS's own thread count too (no-op for
    other BLAS libraries)."""
    import ctypes
    torch.set_num_threads(n)
    for name in ("libblas.so.3", "libopenblas.so.0"):
        try:
            lib = ctypes.CDLL(name)
            lib.openblas_set_num_threads(ctypes.c_int(n))
        except (OSError, AttributeError):
            continue
