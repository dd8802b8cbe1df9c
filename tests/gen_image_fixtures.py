#!/usr/bin/python3
"""
gen_image_fixtures.py -- fixtures for tests/test_png.c, test_bmp_pnm.c and
test_npy.c, written to tests/data/images/.

    /usr/bin/python3 tests/gen_image_fixtures.py [--shared DIR]

Everything is deterministic (fixed seeds). Needs Pillow (9.4) and NumPy.

PNG files are written by a small PNG writer below (Pillow cannot write
every colour type / bit depth / filter / interlace combination) and a few
by Pillow itself. BMP and PNM files are written by hand too. For every
image the expected pixels are what Pillow decodes, converted to the mode
with loupe's channel count (1 "L", 2 "LA", 3 "RGB", 4 "RGBA"), stored raw
in <name>.raw. For PNG, BMP and PNM the generator ALSO computes the
pixels from the source samples with the rules documented in formats/*.c
and asserts they equal Pillow's: the C tests then check loupe against
both at once.

Manifests (one line per file, '#' comments):
  images.txt    file width height channels        -- must decode to file.raw
  bad.txt       file reason                       -- must fail to decode
  zlib.txt      file ok|fail [raw-size]           -- zlib streams; 'ok' ones
                                                     inflate to file.raw
                                                     (zlib is the oracle)
  npy.txt       file u8|f32 ndim d0 d1 ...        -- must load to file.raw
                                                     (float32 LE or bytes)
  photos.txt    relpath width height channels fnv1a64
                                                  -- photos in shared/
                                                     (Pillow's decode hash)
"""
import argparse
import io
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "images")

MODE_OF_CHANNELS = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}

images_manifest = []
bad_manifest = []
zlib_manifest = []
npy_manifest = []


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def pillow_pixels(data, channels):
    """Pillow's decode of `data` converted to the mode with `channels`."""
    im = Image.open(io.BytesIO(data))
    im.load()
    return np.asarray(im.convert(MODE_OF_CHANNELS[channels]), dtype=np.uint8).reshape(
        im.size[1], im.size[0], channels
    )


def add_image(name, data, expected):
    """Write an image fixture and its expected pixels; `expected` is our own
    reference (h, w, c) uint8, which must equal Pillow's decode."""
    h, w, c = expected.shape
    got = pillow_pixels(data, c)
    if got.shape != expected.shape or not np.array_equal(got, expected):
        bad = np.argwhere(got != expected)[:5] if got.shape == expected.shape else "shape"
        sys.exit(f"{name}: Pillow's decode differs from the reference rules: {bad}")
    write(name, data)
    write(os.path.splitext(name)[0] + ".raw", expected.tobytes())
    images_manifest.append(f"{name} {w} {h} {c}")


def add_bad(name, data, reason):
    write(name, data)
    bad_manifest.append(f"{name} {reason}")


# ---------------------------------------------------------------------------
# PNG writer

def chunk(ctype, body):
    return (struct.pack(">I", len(body)) + ctype + body +
            struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF))


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
         (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]

SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def pack_row(row, depth):
    """row: 1-D array of samples -> bytes (MSB-first bits, big-endian 16)."""
    if depth == 16:
        return b"".join(struct.pack(">H", int(v)) for v in row)
    if depth == 8:
        return bytes(int(v) for v in row)
    per = 8 // depth
    out = bytearray((len(row) + per - 1) // per)
    for i, v in enumerate(row):
        out[i // per] |= int(v) << (8 - depth * (i % per + 1))
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(ftype, row, prior, bpp):
    out = bytearray(len(row))
    for i in range(len(row)):
        a = row[i - bpp] if i >= bpp else 0
        b = prior[i] if prior is not None else 0
        c = prior[i - bpp] if (prior is not None and i >= bpp) else 0
        pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][ftype]
        out[i] = (row[i] - pred) & 0xFF
    return bytes([ftype]) + bytes(out)


def png_raw_stream(samples, depth, interlace, filters):
    """samples (h, w, nsamp) -> the filtered scanlines of all passes."""
    h, w, ns = samples.shape
    bpp = max(1, depth * ns // 8)
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    raw = bytearray()
    rowno = 0
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        prior = None
        for y in range(sub.shape[0]):
            row = pack_row(sub[y].reshape(-1), depth)
            ftype = filters[rowno % len(filters)]
            raw += filter_row(ftype, row, prior, bpp)
            prior = row
            rowno += 1
    return bytes(raw)


def png_file(samples, depth, ctype, interlace=0, palette=None, trns=None,
             filters=(0, 1, 2, 3, 4), level=9, strategy=None, idat_split=None,
             before=b"", after=b"", width=None, height=None):
    h, w, _ = samples.shape
    ihdr = struct.pack(">IIBBBBB", width or w, height or h, depth, ctype, 0, 0,
                       interlace)
    raw = png_raw_stream(samples, depth, interlace, filters)
    if strategy is None:
        z = zlib.compress(raw, level)
    else:
        co = zlib.compressobj(level, zlib.DEFLATED, 15, 9, strategy)
        z = co.compress(raw) + co.flush()
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + before
    if palette is not None:
        out += chunk(b"PLTE", bytes(palette))
    if trns is not None:
        out += chunk(b"tRNS", bytes(trns))
    if idat_split:
        pos = 0
        for size in idat_split:
            out += chunk(b"IDAT", z[pos:pos + size])
            pos += size
        out += chunk(b"IDAT", z[pos:])
    else:
        out += chunk(b"IDAT", z)
    return out + after + chunk(b"IEND", b"")


def reference_png(samples, depth, ctype, palette=None, trns=None):
    """The conversion rules of formats/png.c, in Python."""
    s = samples.astype(np.int64)
    if ctype == 0:
        if depth < 8:
            return (s * (255 // ((1 << depth) - 1))).astype(np.uint8)
        if depth == 16:
            return np.minimum(s, 255).astype(np.uint8)  # Pillow's I -> L clamps
        return s.astype(np.uint8)
    if ctype == 3:
        table = np.zeros((256, 4), np.int64)
        table[:, 0] = table[:, 1] = table[:, 2] = np.arange(256)
        table[:, 3] = 255
        pal = np.array(palette, np.int64).reshape(-1, 3)
        table[:len(pal), :3] = pal
        if trns is not None:
            table[:len(trns), 3] = np.array(list(trns), np.int64)
        ch = 4 if trns is not None else 3
        return table[s[:, :, 0]][:, :, :ch].astype(np.uint8)
    if depth == 16:
        return (s >> 8).astype(np.uint8)
    return s.astype(np.uint8)


def sample_image(rng, h, w, ns, depth):
    """Random samples with some smooth structure (so every filter does
    something useful) and the extreme values present."""
    top = (1 << depth) - 1
    yy, xx = np.mgrid[0:h, 0:w]
    base = ((xx * 7 + yy * 13)[:, :, None] * (top // 31 + 1) +
            np.arange(ns)[None, None, :] * (top // 5 + 1))
    noise = rng.randint(0, top + 1, size=(h, w, ns))
    img = np.where(rng.rand(h, w, ns) < 0.5, base % (top + 1), noise)
    img.flat[0] = 0
    img.flat[-1] = top
    return img.astype(np.int64)


def gen_png():
    rng = np.random.RandomState(1234)
    combos = [(0, 1), (0, 2), (0, 4), (0, 8), (0, 16), (2, 8), (2, 16),
              (3, 1), (3, 2), (3, 4), (3, 8), (4, 8), (4, 16), (6, 8), (6, 16)]
    sizes = [(1, 1), (5, 7), (17, 33)]  # (h, w)
    for ctype, depth in combos:
        for interlace in (0, 1):
            for h, w in sizes:
                ns = SAMPLES[ctype]
                samples = sample_image(rng, h, w, ns, depth)
                palette = trns = None
                if ctype == 3:
                    n = min(1 << depth, 256)
                    # a palette one entry short of the index range when it
                    # can be, so out-of-range indices are exercised too
                    n_pal = max(1, n - 1) if n > 2 else n
                    palette = list(rng.randint(0, 256, size=3 * n_pal))
                    if (h * w + depth) % 2 == 0:
                        trns = list(rng.randint(0, 256, size=max(1, n_pal // 2)))
                name = f"png_c{ctype}_d{depth}_{'i' if interlace else 'n'}_{w}x{h}.png"
                data = png_file(samples, depth, ctype, interlace, palette, trns)
                add_image(name, data, reference_png(samples, depth, ctype,
                                                    palette, trns))

    # compression variants, multiple and empty IDAT chunks, ancillary chunks
    samples = sample_image(rng, 23, 41, 3, 8)
    ref = reference_png(samples, 8, 2)
    variants = {
        "stored": dict(level=0),
        "fixed": dict(strategy=zlib.Z_FIXED),
        "huffonly": dict(strategy=zlib.Z_HUFFMAN_ONLY),
        "rle": dict(strategy=zlib.Z_RLE),
        "level1": dict(level=1),
        "multi_idat": dict(idat_split=[1, 0, 2, 97, 0, 300, 5]),
        "sub_only": dict(filters=(1,)),
        "up_only": dict(filters=(2,)),
        "avg_only": dict(filters=(3,)),
        "paeth_only": dict(filters=(4,)),
        "none_only": dict(filters=(0,)),
        "ancillary": dict(before=chunk(b"gAMA", struct.pack(">I", 45455)) +
                          chunk(b"tEXt", b"Comment\x00loupe fixture"),
                          after=chunk(b"tEXt", b"After\x00the image data")),
    }
    for vname, kw in variants.items():
        add_image(f"png_var_{vname}.png", png_file(samples, 8, 2, 0, **kw), ref)
    # the same, interlaced, split in many small IDATs
    add_image("png_var_interlaced_multi.png",
              png_file(samples, 8, 2, 1, idat_split=[3] * 60), ref)

    # skewed byte values -> long Huffman codes (> 10 bits, the slow path)
    vals = np.minimum(rng.geometric(0.45, size=(40, 64, 1)) - 1, 255)
    vals[0, 0, 0] = 255
    add_image("png_long_codes.png",
              png_file(vals, 8, 0, 0, filters=(0,), strategy=zlib.Z_HUFFMAN_ONLY),
              reference_png(vals, 8, 0))

    # a medium photo-like image: smooth gradients + texture, dynamic blocks
    h, w = 64, 96
    yy, xx = np.mgrid[0:h, 0:w]
    photo = np.stack([(xx * 2 + yy) % 256, (yy * 3 + 20) % 256,
                      (128 + 60 * np.sin(xx / 9.0) * np.cos(yy / 7.0)).astype(int)], -1)
    photo = np.clip(photo + rng.randint(-6, 7, size=photo.shape), 0, 255)
    add_image("png_medium_rgb.png", png_file(photo, 8, 2, 0, filters=(4, 1, 2)),
              reference_png(photo, 8, 2))

    # palette + tRNS cases
    pal = list(range(0, 48))  # 16 entries
    idx = np.arange(8 * 5).reshape(5, 8, 1) % 20  # indices up to 19 > 15
    for tname, t in [("simple", [255] * 3 + [0] + [255] * 4),  # one zero entry
                     ("full", list(range(0, 256, 16))),
                     ("short", [7, 99]),
                     ("long", [50] * 20),  # longer than PLTE: applies to ramp
                     ("empty", [])]:
        add_image(f"png_trns_{tname}.png",
                  png_file(idx, 8, 3, 0, palette=pal, trns=t),
                  reference_png(idx, 8, 3, pal, t))
    # grey / RGB colour keys are ignored
    g = sample_image(rng, 6, 9, 1, 8)
    add_image("png_trns_grey_ignored.png",
              png_file(g, 8, 0, 0, trns=[0, int(g[0, 0, 0])]), reference_png(g, 8, 0))
    c = sample_image(rng, 6, 9, 3, 16)
    add_image("png_trns_rgb16_ignored.png",
              png_file(c, 16, 2, 1, trns=[0, 1, 0, 2, 0, 3]), reference_png(c, 16, 2))
    # a suggested palette in an RGB image is ignored
    add_image("png_rgb_with_plte.png", png_file(c, 16, 2, 0, palette=[1, 2, 3] * 4),
              reference_png(c, 16, 2))

    # written by Pillow's own encoder (its filter choices, zlib level 6)
    for mode, ch, ns in [("L", 1, 1), ("LA", 2, 2), ("RGB", 3, 3), ("RGBA", 4, 4)]:
        arr = sample_image(rng, 19, 27, ns, 8).astype(np.uint8)
        im = Image.fromarray(arr[:, :, 0] if ns == 1 else arr, mode)
        buf = io.BytesIO()
        im.save(buf, "PNG")
        add_image(f"png_pillow_{mode.lower()}.png", buf.getvalue(),
                  arr.reshape(19, 27, ns))
    arr = sample_image(rng, 19, 27, 1, 8).astype(np.uint8)
    im = Image.fromarray(arr[:, :, 0], "L").convert("P")
    buf = io.BytesIO()
    im.save(buf, "PNG", transparency=3)
    data = buf.getvalue()
    add_image("png_pillow_p_trns.png", data, pillow_pixels(data, 4))
    im = Image.fromarray((arr[:, :, 0] > 100).astype(np.uint8) * 255, "L").convert("1")
    buf = io.BytesIO()
    im.save(buf, "PNG")
    data = buf.getvalue()
    add_image("png_pillow_1bit.png", data, pillow_pixels(data, 1))

    # ---- files that must fail ------------------------------------------------
    s = sample_image(rng, 4, 5, 3, 8)
    good = png_file(s, 8, 2)
    ihdr_end = 8 + 25
    bad_crc = bytearray(good)
    bad_crc[ihdr_end + 12] ^= 1  # first byte of the IDAT data
    add_bad("png_bad_crc.png", bytes(bad_crc), "IDAT CRC mismatch")
    add_bad("png_no_iend.png", good[:-12], "no IEND")
    add_bad("png_no_idat.png", good[:ihdr_end] + chunk(b"IEND", b""), "no IDAT")
    add_bad("png_palette_no_plte.png", png_file(idx, 8, 3, 0), "palette without PLTE")
    sig = b"\x89PNG\r\n\x1a\n"
    z = zlib.compress(png_raw_stream(s, 8, 0, (0,)))
    add_bad("png_bad_depth.png", sig +
            chunk(b"IHDR", struct.pack(">IIBBBBB", 5, 4, 4, 2, 0, 0, 0)) +
            chunk(b"IDAT", z) + chunk(b"IEND", b""), "RGB at 4 bits")
    hdr = struct.pack(">IIBBBBB", 5, 4, 8, 2, 0, 0, 0)
    raw = png_raw_stream(s, 8, 0, (0,))
    add_bad("png_short_data.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", hdr) +
            chunk(b"IDAT", zlib.compress(raw[:-1])) + chunk(b"IEND", b""),
            "one byte of image data missing")
    add_bad("png_long_data.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", hdr) +
            chunk(b"IDAT", zlib.compress(raw + b"\0")) + chunk(b"IEND", b""),
            "one byte of image data too many")
    badf = bytearray(raw)
    badf[0] = 5
    add_bad("png_bad_filter.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", hdr) +
            chunk(b"IDAT", zlib.compress(bytes(badf))) + chunk(b"IEND", b""),
            "filter type 5")
    add_bad("png_huge.png", b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""),
            "100000x100000")
    add_bad("png_zero_width.png", b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 4, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""), "width 0")
    add_bad("png_bomb.png", b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", 16000, 16000, 8, 6, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(b"\0" * 100000, 9)) + chunk(b"IEND", b""),
            "1 GB image from a tiny IDAT")
    add_bad("png_unknown_critical.png", good[:ihdr_end] + chunk(b"ABCD", b"xyz") +
            good[ihdr_end:], "unknown critical chunk")
    add_bad("png_split_idat.png", good[:ihdr_end] + chunk(b"IDAT", z[:10]) +
            chunk(b"tEXt", b"a\x00b") + chunk(b"IDAT", z[10:]) + chunk(b"IEND", b""),
            "IDATs not consecutive")


# ---------------------------------------------------------------------------
# BMP

def bmp_file(w, h, bits, rows, comp=0, masks=None, hsize=40, palette=b"",
             colors=0, top_down=False, offset=None, alpha_mask=None):
    """rows: list of h byte strings, file order (bottom-up unless top_down)."""
    stride = ((w * bits + 31) >> 3) & ~3
    data = b"".join(r.ljust(stride, b"\0") for r in rows)
    extra = b""
    if hsize == 12:
        hdr = struct.pack("<IHHHH", 12, w, h, 1, bits)
    else:
        hdr = struct.pack("<IiiHHIIiiII", hsize, w, -h if top_down else h, 1,
                          bits, comp, len(data), 2835, 2835, colors, 0)
        if masks is not None and hsize == 40:
            extra = b"".join(struct.pack("<I", m) for m in masks[:3])
        if hsize > 40:
            m = list(masks or (0, 0, 0)) + [alpha_mask or 0]
            hdr += struct.pack("<IIII", *m[:4]) + b"\0" * (hsize - 56)
    off = 14 + len(hdr) + len(extra) + len(palette)
    if offset is not None:
        off = offset
    return (b"BM" + struct.pack("<IHHI", off + len(data), 0, 0, off) + hdr + extra +
            palette + data)


def gen_bmp():
    rng = np.random.RandomState(99)
    for w, h in [(1, 1), (7, 5), (33, 17)]:
        img = rng.randint(0, 256, size=(h, w, 4)).astype(np.uint8)
        rgb = img[:, :, :3]
        for top_down in (False, True):
            order = range(h) if top_down else range(h - 1, -1, -1)
            td = "td" if top_down else "bu"
            # 24-bit BGR
            rows = [rgb[y, :, ::-1].tobytes() for y in order]
            add_image(f"bmp_24_{td}_{w}x{h}.bmp", bmp_file(w, h, 24, rows,
                      top_down=top_down), rgb)
            # 32-bit BI_RGB: BGRX, the 4th byte ignored
            rows = [np.concatenate([rgb[y, :, ::-1], img[y, :, 3:]], 1).tobytes()
                    for y in order]
            add_image(f"bmp_32_{td}_{w}x{h}.bmp", bmp_file(w, h, 32, rows,
                      top_down=top_down), rgb)
        # palettes of 1, 4, 8 bits, some with fewer colours than indices
        for bits in (1, 4, 8):
            n_idx = 1 << bits
            colors = n_idx if bits == 1 else n_idx - 3
            pal = rng.randint(0, 256, size=(colors, 3)).astype(np.uint8)
            idx = rng.randint(0, n_idx, size=(h, w))
            per = 8 // bits
            rows = []
            for y in range(h - 1, -1, -1):
                b = bytearray((w + per - 1) // per)
                for x in range(w):
                    b[x // per] |= int(idx[y, x]) << (8 - bits * (x % per + 1))
                rows.append(bytes(b))
            table = np.stack([np.arange(256)] * 3, 1).astype(np.uint8)
            table[:colors] = pal
            palette = b"".join(bytes([p[2], p[1], p[0], 0]) for p in pal)
            add_image(f"bmp_p{bits}_{w}x{h}.bmp",
                      bmp_file(w, h, bits, rows, palette=palette,
                               colors=0 if colors == n_idx else colors),
                      table[idx])
        # 16-bit: 5-5-5 (BI_RGB and bitfields) and 5-6-5
        v = rng.randint(0, 65536, size=(h, w)).astype("<u2")
        rows = [v[y].tobytes() for y in range(h - 1, -1, -1)]
        r5 = ((v >> 10) & 31).astype(int) * 255 // 31
        g5 = ((v >> 5) & 31).astype(int) * 255 // 31
        b5 = (v & 31).astype(int) * 255 // 31
        exp555 = np.stack([r5, g5, b5], -1).astype(np.uint8)
        add_image(f"bmp_16_555_{w}x{h}.bmp", bmp_file(w, h, 16, rows), exp555)
        add_image(f"bmp_16_555bf_{w}x{h}.bmp",
                  bmp_file(w, h, 16, rows, comp=3, masks=(0x7C00, 0x3E0, 0x1F)), exp555)
        r = ((v >> 11) & 31).astype(int) * 255 // 31
        g = ((v >> 5) & 63).astype(int) * 255 // 63
        b = (v & 31).astype(int) * 255 // 31
        add_image(f"bmp_16_565_{w}x{h}.bmp",
                  bmp_file(w, h, 16, rows, comp=3, masks=(0xF800, 0x7E0, 0x1F),
                           hsize=124), np.stack([r, g, b], -1).astype(np.uint8))

    # 32-bit bitfield layouts (V5 header carries the alpha mask)
    w, h = 7, 5
    px = rng.randint(0, 256, size=(h, w, 4)).astype(np.uint8)  # file bytes
    rows = [px[y].tobytes() for y in range(h - 1, -1, -1)]
    layouts = [("bgrx", (0xFF0000, 0xFF00, 0xFF, 0), (2, 1, 0, None)),
               ("xbgr", (0xFF000000, 0xFF0000, 0xFF00, 0), (3, 2, 1, None)),
               ("abgr", (0xFF000000, 0xFF0000, 0xFF00, 0xFF), (3, 2, 1, 0)),
               ("rgba", (0xFF, 0xFF00, 0xFF0000, 0xFF000000), (0, 1, 2, 3)),
               ("bgra", (0xFF0000, 0xFF00, 0xFF, 0xFF000000), (2, 1, 0, 3)),
               ("zero", (0, 0, 0, 0), (2, 1, 0, 3))]
    for lname, m, offs in layouts:
        exp = px[:, :, [o for o in offs if o is not None]]
        for hs in (108, 124):
            add_image(f"bmp_32bf_{lname}_v{hs // 27}.bmp",
                      bmp_file(w, h, 32, rows, comp=3, masks=m[:3], hsize=hs,
                               alpha_mask=m[3]), exp)
    # 40-byte header + 3 masks after it: alpha never
    add_image("bmp_32bf_info_bgrx.bmp",
              bmp_file(w, h, 32, rows, comp=3, masks=(0xFF0000, 0xFF00, 0xFF)),
              px[:, :, [2, 1, 0]])
    rows24 = [px[y, :, :3].tobytes() for y in range(h - 1, -1, -1)]
    add_image("bmp_24bf.bmp", bmp_file(w, h, 24, rows24, comp=3,
                                       masks=(0xFF0000, 0xFF00, 0xFF)),
              px[:, :, [2, 1, 0]])
    # OS/2 1.x header: 24-bit and 8-bit with a 3-byte palette
    add_image("bmp_os2_24.bmp", bmp_file(w, h, 24, rows24, hsize=12), px[:, :, [2, 1, 0]])
    pal = rng.randint(0, 256, size=(256, 3)).astype(np.uint8)
    idx = rng.randint(0, 256, size=(h, w))
    rows8 = [bytes(int(i) for i in idx[y]) for y in range(h - 1, -1, -1)]
    add_image("bmp_os2_p8.bmp",
              bmp_file(w, h, 8, rows8, hsize=12,
                       palette=b"".join(bytes([p[2], p[1], p[0]]) for p in pal),
                       offset=14 + 12 + 768),
              pal[idx])
    # a grey ramp palette (Pillow: mode L) and black/white 1-bit (mode 1)
    ramp = b"".join(bytes([i, i, i, 0]) for i in range(256))
    add_image("bmp_p8_grey.bmp", bmp_file(w, h, 8, rows8, palette=ramp),
              np.stack([idx] * 3, -1).astype(np.uint8))
    # bfOffBits = 0 (pixels right after the palette) and bfOffBits that
    # leaves the palette out (Pillow adds it back)
    pal4 = b"".join(bytes([p[2], p[1], p[0], 0]) for p in pal)
    add_image("bmp_p8_offset0.bmp", bmp_file(w, h, 8, rows8, palette=pal4, offset=0),
              pal[idx])
    add_image("bmp_p8_offset_nopal.bmp",
              bmp_file(w, h, 8, rows8, palette=pal4, offset=54), pal[idx])
    # V4 header, 24-bit, top-down
    rows_td = [px[y, :, :3].tobytes() for y in range(h)]
    add_image("bmp_v4_24_td.bmp", bmp_file(w, h, 24, rows_td, hsize=108, top_down=True),
              px[:, :, [2, 1, 0]])

    good = bmp_file(w, h, 24, rows24)
    add_bad("bmp_truncated_row.bmp", good[:-1], "last row padding missing")
    add_bad("bmp_rle8.bmp", bmp_file(w, h, 8, rows8, comp=1, palette=pal4), "RLE8")
    add_bad("bmp_bad_masks.bmp", bmp_file(w, h, 32, rows, comp=3,
                                          masks=(0xFF, 0xFF00, 0xFF0000)),
            "unsupported bitfields")
    add_bad("bmp_huge.bmp", good[:18] + struct.pack("<i", 100000) + good[22:],
            "100000 wide")
    add_bad("bmp_header_52.bmp", good[:14] + struct.pack("<I", 52) + good[18:],
            "header size 52")
    add_bad("bmp_bits_7.bmp", bmp_file(w, h, 24, rows24)[:28] + struct.pack("<H", 7) +
            good[30:], "7 bits per pixel")


# ---------------------------------------------------------------------------
# PNM

def py_round_scale(v, maxval, scale):
    return round(v / maxval * scale)  # Python's round: half to even


def pnm_reference(kind, maxval, vals, plain):
    """The rules of formats/pnm.c."""
    grey16 = maxval > 255 and kind in (2, 5)
    out = np.zeros(vals.shape, np.uint8)
    for i, v in np.ndenumerate(vals):
        v = int(v)
        if maxval == 255:
            x = v
        elif grey16:
            x = v if (not plain and maxval == 65535) else py_round_scale(v, maxval, 65535)
        else:
            x = py_round_scale(v, maxval, 255)
        out[i] = min(255, x)
    return out


def gen_pnm():
    rng = np.random.RandomState(7)
    for w, h in [(1, 1), (7, 5), (33, 17)]:
        for kind, ch in ((5, 1), (6, 3)):
            for maxval in (255, 1, 2, 10, 15, 100, 254, 256, 1000, 4095, 65534, 65535):
                vals = rng.randint(0, maxval + 1, size=(h, w, ch))
                if maxval < 255 and w > 5:
                    vals.flat[3] = min(255, maxval + 7)  # above maxval: clamps
                fmt = ">u2" if maxval > 255 else "u1"
                head = b"P%d\n%d %d\n%d\n" % (kind, w, h, maxval)
                add_image(f"pnm_p{kind}_m{maxval}_{w}x{h}.p{'g' if ch == 1 else 'p'}m",
                          head + vals.astype(fmt).tobytes(),
                          pnm_reference(kind, maxval, vals, False))
        # plain P2/P3 (values <= maxval)
        for kind, ch in ((2, 1), (3, 3)):
            for maxval in (255, 7, 1000):
                vals = rng.randint(0, maxval + 1, size=(h, w, ch))
                body = "\n".join(" ".join(str(int(v)) for v in row.reshape(-1))
                                 for row in vals)
                data = (b"P%d\n# a comment\n%d %d\n%d\n" % (kind, w, h, maxval) +
                        body.encode() + b"\n")
                add_image(f"pnm_p{kind}_m{maxval}_{w}x{h}.p{'g' if ch == 1 else 'p'}m",
                          data, pnm_reference(kind, maxval, vals, True))
        # bitmaps
        bits = rng.randint(0, 2, size=(h, w))
        rowbytes = (w + 7) // 8
        raw = b""
        for y in range(h):
            b = bytearray(rowbytes)
            for x in range(w):
                b[x // 8] |= int(bits[y, x]) << (7 - x % 8)
            raw += bytes(b)
        exp = np.where(bits == 1, 0, 255).astype(np.uint8)[:, :, None]
        add_image(f"pnm_p4_{w}x{h}.pbm", b"P4\n%d %d\n" % (w, h) + raw, exp)
        txt = "".join("".join(str(int(b)) for b in row) + "\n" for row in bits)
        add_image(f"pnm_p1_{w}x{h}.pbm", b"P1 %d %d\n" % (w, h) + txt.encode(), exp)

    # header oddities: comments everywhere (even inside a number), tabs, CR
    vals = rng.randint(0, 256, size=(3, 4, 3))
    add_image("pnm_comments.ppm",
              b"P6\n#c0\n\t# c1\r4#c2\n # c3\n3\r\n2#c4\n55\n" + vals.astype("u1").tobytes(),
              vals.astype(np.uint8))
    add_image("pnm_trailing.pgm", b"P5 4 3 255 " + vals[:, :, 0].astype("u1").tobytes() +
              b"trailing junk", vals[:, :, :1].astype(np.uint8))
    add_image("pnm_plain_tight.pbm", b"P1\n4 3\n0110\n1001 0 1 1 0",
              np.array([[255, 0, 0, 255], [0, 255, 255, 0], [255, 0, 0, 255]],
                       np.uint8)[:, :, None])
    # raster starting with a whitespace byte (only one separator is eaten)
    add_image("pnm_ws_raster.pgm", b"P5\n2 1\n255\n\x0a\x20", np.array([[[10], [32]]], np.uint8))

    add_bad("pnm_short.ppm", b"P6\n4 3\n255\n" + vals.astype("u1").tobytes()[:-1],
            "one byte short")
    add_bad("pnm_maxval0.pgm", b"P5\n1 1\n0\n\x00", "maxval 0")
    add_bad("pnm_maxval_big.pgm", b"P5\n1 1\n65536\n\x00\x00", "maxval 65536")
    add_bad("pnm_no_ws.pgm", b"P51 1 255\n\x00", "magic not followed by whitespace")
    add_bad("pnm_huge.pgm", b"P5\n100000 1\n255\n\x00", "100000 wide")
    add_bad("pnm_zero.pgm", b"P5\n0 1\n255\n", "width 0")
    add_bad("pnm_plain_over.pgm", b"P2\n2 1\n10\n5 11\n", "sample above maxval")
    add_bad("pnm_plain_short.pgm", b"P2\n2 1\n10\n5\n", "one sample missing")
    add_bad("pnm_long_token.pgm", b"P5\n00000000001 1\n255\n\x00", "11-digit token")
    add_bad("pnm_letter.pgm", b"P5\n1x 1\n255\n\x00", "letter in a number")


# ---------------------------------------------------------------------------
# zlib streams: Python's zlib decides what is valid

class BitWriter:
    def __init__(self):
        self.bits = []

    def put(self, value, n):  # LSB first
        for i in range(n):
            self.bits.append((value >> i) & 1)

    def put_code(self, code, n):  # Huffman codes: MSB first
        for i in range(n - 1, -1, -1):
            self.bits.append((code >> i) & 1)

    def bytes(self):
        out = bytearray((len(self.bits) + 7) // 8)
        for i, b in enumerate(self.bits):
            out[i // 8] |= b << (i % 8)
        return bytes(out)


def canonical_codes(lengths):
    max_len = max(lengths) if lengths else 0
    count = [0] * (max_len + 2)
    for l in lengths:
        if l:
            count[l] += 1
    code, next_code = 0, [0] * (max_len + 2)
    for bits in range(1, max_len + 1):
        code = (code + count[bits - 1]) << 1 if bits > 1 else 0
        next_code[bits] = code
    codes = [0] * len(lengths)
    for i, l in enumerate(lengths):
        if l:
            codes[i] = next_code[l]
            next_code[l] += 1
    return codes


CL_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]


def dynamic_block(bw, lit_lengths, dist_lengths, symbols, final=1, cl_lengths=None,
                  hclen=19, raw_cl_symbols=None):
    """Write a dynamic block with explicit code lengths. `symbols` is a list
    of ('lit', byte) / ('match', length_sym, extra_bits, nextra, dist_sym,
    dextra, ndextra) / ('end',)."""
    hlit, hdist = len(lit_lengths), len(dist_lengths)
    bw.put(final, 1)
    bw.put(2, 2)
    bw.put(hlit - 257, 5)
    bw.put(hdist - 1, 5)
    bw.put(hclen - 4, 4)
    all_lengths = list(lit_lengths) + list(dist_lengths)
    if cl_lengths is None:
        # a complete code over the code lengths in use: n symbols get
        # lengths depth-1 or depth (one symbol: two 1-bit codes)
        used = sorted(set(all_lengths))
        cl_lengths = [0] * 19
        if len(used) == 1:
            cl_lengths[used[0]] = 1
            cl_lengths[[i for i in range(19) if i not in used][0]] = 1
        else:
            depth = (len(used) - 1).bit_length()
            short = (1 << depth) - len(used)
            for k, sym in enumerate(used):
                cl_lengths[sym] = depth - 1 if k < short else depth
    for i in range(hclen):
        bw.put(cl_lengths[CL_ORDER[i]], 3)
    cl_codes = canonical_codes(cl_lengths)
    seq = raw_cl_symbols if raw_cl_symbols is not None else [(l, 0, 0) for l in all_lengths]
    for sym, extra, nextra in seq:
        bw.put_code(cl_codes[sym], cl_lengths[sym])
        bw.put(extra, nextra)
    lit_codes = canonical_codes(lit_lengths)
    dist_codes = canonical_codes(dist_lengths)
    for s in symbols:
        if s[0] == "lit":
            bw.put_code(lit_codes[s[1]], lit_lengths[s[1]])
        elif s[0] == "end":
            bw.put_code(lit_codes[256], lit_lengths[256])
        else:
            _, lsym, lext, nl, dsym, dext, nd = s
            bw.put_code(lit_codes[lsym], lit_lengths[lsym])
            bw.put(lext, nl)
            bw.put_code(dist_codes[dsym], dist_lengths[dsym])
            bw.put(dext, nd)


def zlib_wrap(deflate, payload):
    """zlib header + raw deflate data + the Adler-32 of what it decodes to."""
    return b"\x78\x01" + deflate + struct.pack(">I", zlib.adler32(payload) & 0xFFFFFFFF)


def add_zlib(name, stream):
    """Python's zlib is the oracle: 'ok' streams record the size and CRC-32
    of what they inflate to (the C test also has the stream's Adler-32)."""
    try:
        out = zlib.decompress(stream)
        line = f"{name} ok {len(out)} {zlib.crc32(out) & 0xFFFFFFFF:08x}"
    except zlib.error:
        line = f"{name} fail"
    write(name, stream)
    zlib_manifest.append(line)


LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51,
            59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
LEN_EXTRA = [0] * 8 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4 + [5] * 4 + [0]


def fixed_lit(bw, sym):
    if sym < 144:
        bw.put_code(0x30 + sym, 8)
    elif sym < 256:
        bw.put_code(0x190 + sym - 144, 9)
    elif sym < 280:
        bw.put_code(sym - 256, 7)
    else:
        bw.put_code(0xC0 + sym - 280, 8)


def gen_zlib():
    rng = np.random.RandomState(5)
    # ordinary streams from zlib, including long Huffman codes and far matches
    skewed = bytes(np.minimum(rng.geometric(0.4, size=20000) - 1, 255).astype(np.uint8))
    add_zlib("zlib_skewed.z", zlib.compress(skewed, 9))
    # matches ~32000 bytes back (low-entropy data keeps the file small)
    a = bytes(rng.randint(0, 4, size=16000).astype(np.uint8))
    b = bytes(rng.randint(4, 8, size=16000).astype(np.uint8))
    add_zlib("zlib_far_matches.z", zlib.compress(a + b + a + b[:500], 9))
    add_zlib("zlib_empty.z", zlib.compress(b"", 9))
    # stored blocks of 100, 0 and 50 bytes, then a fixed block
    bw = BitWriter()
    payload = bytes(rng.randint(0, 256, size=150).astype(np.uint8))
    st = (b"\x00" + struct.pack("<HH", 100, 100 ^ 0xFFFF) + payload[:100] +
          b"\x00" + struct.pack("<HH", 0, 0xFFFF) +
          b"\x00" + struct.pack("<HH", 50, 50 ^ 0xFFFF) + payload[100:])
    bw.put(1, 1)
    bw.put(1, 2)
    fixed_lit(bw, 0x41)
    fixed_lit(bw, 256)
    add_zlib("zlib_stored_multi.z", zlib_wrap(st + bw.bytes(), payload + b"A"))


    def lit_lengths_with(specs, n=286):
        l = [0] * n
        for s, v in specs.items():
            l[s] = v
        return l

    # a complete literal code over 'a', 'b', end, and the length-3 symbol 257
    base_lit = lit_lengths_with({97: 2, 98: 2, 256: 2, 257: 2}, 258)
    # distance code with a single 1-bit code: incomplete but legal
    bw = BitWriter()
    dynamic_block(bw, base_lit, [1], [("lit", 97), ("lit", 98), ("match", 257, 0, 0, 0, 0, 0),
                                      ("match", 257, 0, 0, 0, 0, 0), ("end",)])
    add_zlib("zlib_dyn_single_dist.z", zlib_wrap(bw.bytes(), b"abbbbbbb"))
    # no distance codes at all (all zero lengths): fine while unused
    bw = BitWriter()
    dynamic_block(bw, lit_lengths_with({97: 1, 256: 1}, 257), [0],
                  [("lit", 97), ("lit", 97), ("end",)])
    add_zlib("zlib_dyn_no_dist.z", zlib_wrap(bw.bytes(), b"aa"))
    # ... but used: error
    bw = BitWriter()
    dynamic_block(bw, lit_lengths_with({97: 2, 256: 2, 257: 1}, 258), [0],
                  [("lit", 97), ("match", 257, 0, 0, 0, 0, 0), ("end",)])
    add_zlib("zlib_dyn_no_dist_used.z", zlib_wrap(bw.bytes(), b"aaaa"))
    # over-subscribed literal code
    bw = BitWriter()
    dynamic_block(bw, lit_lengths_with({97: 1, 98: 1, 256: 1}, 257), [1],
                  [("lit", 97), ("end",)])
    add_zlib("zlib_dyn_oversubscribed.z", zlib_wrap(bw.bytes(), b"a"))
    # incomplete literal code (lengths 2, 2, 2): error
    bw = BitWriter()
    dynamic_block(bw, lit_lengths_with({97: 2, 98: 2, 256: 2}, 257), [1],
                  [("lit", 97), ("end",)])
    add_zlib("zlib_dyn_incomplete_lit.z", zlib_wrap(bw.bytes(), b"a"))
    # single literal code of length 1 (incomplete, legal): 'end' only
    bw = BitWriter()
    dynamic_block(bw, lit_lengths_with({256: 1}, 257), [1], [("end",)])
    add_zlib("zlib_dyn_only_end.z", zlib_wrap(bw.bytes(), b""))
    # no end-of-block code
    bw = BitWriter()
    dynamic_block(bw, lit_lengths_with({97: 1, 98: 1}, 257), [1], [("lit", 97)])
    add_zlib("zlib_dyn_no_eob.z", zlib_wrap(bw.bytes(), b"a"))
    # distance before the start of the output
    bw = BitWriter()
    dynamic_block(bw, base_lit, [0, 0, 0, 0, 1, 1],
                  [("lit", 97), ("match", 257, 0, 0, 4, 0, 1), ("end",)])
    add_zlib("zlib_dyn_too_far.z", zlib_wrap(bw.bytes(), b"aaaa"))
    # HLIT = 287 (too many literal/length codes)
    bw = BitWriter()
    l = lit_lengths_with({97: 1, 256: 1}, 287)
    dynamic_block(bw, l, [1], [("lit", 97), ("end",)])
    add_zlib("zlib_dyn_hlit287.z", zlib_wrap(bw.bytes(), b"a"))
    # repeat code 16 as the first code length
    bw = BitWriter()
    lit = lit_lengths_with({97: 1, 256: 1}, 257)
    cl = [0] * 19
    cl[16] = 1
    cl[0] = 2
    cl[1] = 2
    dynamic_block(bw, lit, [1], [("lit", 97), ("end",)], cl_lengths=cl,
                  raw_cl_symbols=[(16, 0, 2)] + [(0, 0, 0)] * 255 + [(1, 0, 0)] * 3)
    add_zlib("zlib_dyn_repeat_first.z", zlib_wrap(bw.bytes(), b"a"))
    # code-length repeat running past the end
    bw = BitWriter()
    cl = [0] * 19
    cl[18] = 1
    cl[1] = 2
    cl[0] = 2
    dynamic_block(bw, lit, [1], [("lit", 97), ("end",)], cl_lengths=cl,
                  raw_cl_symbols=[(18, 127, 7)] * 2 + [(0, 0, 0)] * 2 + [(1, 0, 0)] * 3)
    add_zlib("zlib_dyn_repeat_past.z", zlib_wrap(bw.bytes(), b"a"))
    # incomplete code-length code
    bw = BitWriter()
    cl = [0] * 19
    cl[1] = 2
    cl[0] = 2
    cl[2] = 2
    dynamic_block(bw, lit, [1], [("lit", 97), ("end",)], cl_lengths=cl)
    add_zlib("zlib_dyn_incomplete_cl.z", zlib_wrap(bw.bytes(), b"a"))

    # fixed blocks: literal/length symbols 286/287 and distances 30/31
    for sym, name in ((286, "lit286"), (287, "lit287")):
        bw = BitWriter()
        bw.put(1, 1)
        bw.put(1, 2)
        fixed_lit(bw, 97)
        fixed_lit(bw, sym)
        bw.put_code(0, 5)
        fixed_lit(bw, 256)
        add_zlib(f"zlib_fixed_{name}.z", zlib_wrap(bw.bytes(), b"aaa"))
    for dsym in (30, 31):
        bw = BitWriter()
        bw.put(1, 1)
        bw.put(1, 2)
        fixed_lit(bw, 97)
        fixed_lit(bw, 257)
        bw.put_code(dsym, 5)
        fixed_lit(bw, 256)
        add_zlib(f"zlib_fixed_dist{dsym}.z", zlib_wrap(bw.bytes(), b"aaaa"))
    # distance exactly 32768: 300 random literals, repeated by matches at
    # distance 300 up to 32768 bytes (32768 % 300 != 0, so copying from the
    # wrong place would show), then two matches at distance 32768
    bw = BitWriter()
    bw.put(1, 1)
    bw.put(1, 2)
    lits = rng.randint(0, 256, size=300)
    for v in lits:
        fixed_lit(bw, int(v))
    n = 300
    while n < 32768:
        length = min(258, 32768 - n)
        if length < 3:  # cannot happen with these numbers
            raise SystemExit("zlib_dist_32768: bad split")
        k = max(i for i in range(29) if LEN_BASE[i] <= length)
        fixed_lit(bw, 257 + k)
        bw.put(length - LEN_BASE[k], LEN_EXTRA[k])
        bw.put_code(16, 5)  # distance 257..384: 257 + 43 = 300
        bw.put(43, 7)
        n += length
    fixed_lit(bw, 284)  # length 227 + 31 = 258 (284 with extra 31)
    bw.put(31, 5)
    bw.put_code(29, 5)  # distance 24577 + 8191 = 32768
    bw.put(8191, 13)
    fixed_lit(bw, 285)  # length 258
    bw.put_code(29, 5)
    bw.put(8191, 13)
    fixed_lit(bw, 256)
    data = bytes(int(lits[i % 300]) for i in range(32768))
    expect = data + data[:258] + data[258:516]
    add_zlib("zlib_dist_32768.z", zlib_wrap(bw.bytes(), expect))
    # block type 3, stored length mismatch, bad header, dictionary, bad adler
    add_zlib("zlib_btype3.z", b"\x78\x01\x07\x00" + b"\x00" * 8)
    add_zlib("zlib_stored_nlen.z", b"\x78\x01\x01\x05\x00\xfa\xfe" + b"hello" +
             struct.pack(">I", zlib.adler32(b"hello")))
    add_zlib("zlib_bad_fcheck.z", b"\x78\x02" + zlib.compress(b"x")[2:])
    add_zlib("zlib_fdict.z", b"\x78\x20" + b"\x00\x00\x00\x01" + zlib.compress(b"x")[2:])
    good = zlib.compress(b"hello hello hello", 9)
    add_zlib("zlib_bad_adler.z", good[:-1] + bytes([good[-1] ^ 1]))
    add_zlib("zlib_no_adler.z", good[:-4])
    add_zlib("zlib_cm7.z", b"\x77" + good[1:])
    add_zlib("zlib_window64k.z", b"\x88\x1c" + good[2:])


# ---------------------------------------------------------------------------
# NPY

def npy_header_file(header_text, payload, version=(1, 0)):
    h = header_text.encode("latin1")
    if version[0] == 1:
        pre = b"\x93NUMPY" + bytes(version) + struct.pack("<H", len(h))
    else:
        pre = b"\x93NUMPY" + bytes(version) + struct.pack("<I", len(h))
    return pre + h + payload


def add_npy(name, data, expected):
    """expected: numpy array (float32 or uint8) with the shape to check."""
    write(name, data)
    arr = np.array(expected, order="C")  # (ascontiguousarray makes 0-d 1-d)
    kind = "u8" if arr.dtype == np.uint8 else "f32"
    raw = arr.astype("<f4").tobytes() if kind == "f32" else arr.tobytes()
    write(os.path.splitext(name)[0] + ".raw", raw)
    npy_manifest.append(f"{name} {kind} {arr.ndim} " + " ".join(str(d) for d in arr.shape))
    # NumPy must agree with the expectation
    back = np.load(io.BytesIO(data))
    assert back.shape == arr.shape and np.array_equal(back.astype(arr.dtype), arr,
                                                      equal_nan=arr.dtype != np.uint8), name


def gen_npy():
    rng = np.random.RandomState(11)

    def saved(arr, version=None):
        buf = io.BytesIO()
        if version is None:
            np.save(buf, arr)
        else:
            np.lib.format.write_array(buf, arr, version=version)
        return buf.getvalue()

    a = rng.randn(2, 3).astype("<f4")
    a[0, 0] = np.float32(np.nan)
    a[0, 1] = np.float32(-np.inf)
    add_npy("npy_f4_2x3.npy", saved(a), a)
    a = rng.randn(3, 1, 4, 5).astype("<f4")
    add_npy("npy_f4_4d.npy", saved(a), a)
    a = np.array(3.25, dtype="<f4")
    add_npy("npy_f4_scalar.npy", saved(a), a)
    a = np.zeros((0, 3), dtype="<f4")
    add_npy("npy_f4_empty.npy", saved(a), a)
    a = rng.randint(0, 256, size=(4, 5, 3)).astype(np.uint8)
    add_npy("npy_u1_4x5x3.npy", saved(a), a)
    a = rng.randn(7) * 1e3
    add_npy("npy_f8_7.npy", saved(a.astype("<f8")), a.astype("<f4"))
    a8 = np.array([1e300, -1e300, 1e-300, 0.1], dtype="<f8")
    with np.errstate(over="ignore"):  # out of float range -> +-inf, on purpose
        add_npy("npy_f8_range.npy", saved(a8), a8.astype("<f4"))
    a = rng.randn(2, 2).astype(">f4")
    add_npy("npy_f4be_2x2.npy", saved(a), a.astype("<f4"))
    a = rng.randn(3).astype(">f8")
    add_npy("npy_f8be_3.npy", saved(a), a.astype("<f4"))
    a = rng.randn(5, 2).astype("<f4")
    add_npy("npy_v2.npy", saved(a, (2, 0)), a)
    add_npy("npy_v3.npy", saved(a, (3, 0)), a)
    a = np.arange(8, dtype="<f4").reshape(2, 2, 2)
    add_npy("npy_keys_reordered.npy",
            npy_header_file("{\"shape\":(2,2,2),'fortran_order' : False ,\n 'descr':'<f4'}  \n",
                            a.tobytes()), a)
    a = np.arange(6, dtype=np.uint8).reshape(6)
    add_npy("npy_py2_long.npy",
            npy_header_file("{'descr': '|u1', 'fortran_order': False, 'shape': (6L,), }\n",
                            a.tobytes()), a)

    def bad(name, data, reason):
        write(name, data)
        bad_manifest.append(f"{name} {reason}")

    ok = saved(np.arange(6, dtype="<f4").reshape(2, 3))
    bad("npy_bad_short.npy", ok[:-1], "one byte short")
    bad("npy_bad_long.npy", ok + b"\0", "one byte extra")
    bad("npy_bad_fortran.npy", saved(np.asfortranarray(rng.randn(2, 3).astype("<f4"))),
        "fortran order")
    bad("npy_bad_dtype.npy", saved(np.arange(3, dtype="<i4")), "int32")
    bad("npy_bad_magic.npy", b"\x93NUMPX" + ok[6:], "magic")
    bad("npy_bad_version.npy", ok[:6] + b"\x04\x00" + ok[8:], "version 4.0")
    bad("npy_bad_hlen.npy", ok[:8] + b"\xff\xff" + ok[10:], "header length past the end")
    bad("npy_bad_shape_int.npy",
        npy_header_file("{'descr': '<f4', 'fortran_order': False, 'shape': (6), }\n",
                        ok[-24:]), "shape (6) is not a tuple")
    bad("npy_bad_negative.npy",
        npy_header_file("{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }\n",
                        ok[-24:]), "negative dimension")
    bad("npy_bad_overflow.npy",
        npy_header_file("{'descr': '<f4', 'fortran_order': False, "
                        "'shape': (4294967296, 4294967296, 16), }\n", ok[-24:]),
        "count overflows")
    bad("npy_bad_9dims.npy",
        npy_header_file("{'descr': '<f4', 'fortran_order': False, "
                        "'shape': (1,1,1,1,1,1,1,1,6), }\n", ok[-24:]), "9 dimensions")
    bad("npy_bad_extra_key.npy",
        npy_header_file("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), "
                        "'x': 1}\n", ok[-24:]), "extra key")
    bad("npy_bad_missing_key.npy",
        npy_header_file("{'descr': '<f4', 'shape': (6,), }\n", ok[-24:]), "no fortran_order")
    bad("npy_bad_unterminated.npy",
        npy_header_file("{'descr': '<f4, 'fortran_order': False, 'shape': (6,), }\n",
                        ok[-24:]), "broken quotes")


# ---------------------------------------------------------------------------

def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def gen_photos(shared):
    lines = []
    for name in ("astronaut", "chelsea", "coffee"):
        rel = f"data/images/natural/{name}.png"
        path = os.path.join(shared, rel)
        if not os.path.exists(path):
            sys.exit(f"{path} not found (use --shared)")
        im = Image.open(path)
        ch = len(im.getbands())
        arr = np.asarray(im.convert(MODE_OF_CHANNELS[ch]))
        h = fnv1a64(arr.tobytes())
        lines.append(f"{rel} {im.size[0]} {im.size[1]} {ch} {h:016x}")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "shared"),
                    help="checkout of shared/ holding data/images/natural")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    gen_png()
    gen_bmp()
    gen_pnm()
    gen_zlib()
    gen_npy()
    header = "# written by tests/gen_image_fixtures.py -- do not edit\n"
    for name, lines in (("images.txt", images_manifest), ("bad.txt", bad_manifest),
                        ("zlib.txt", zlib_manifest), ("npy.txt", npy_manifest),
                        ("photos.txt", gen_photos(args.shared))):
        with open(os.path.join(OUT, name), "w") as f:
            f.write(header + "\n".join(lines) + "\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(os.listdir(OUT))} files, {total} bytes in {OUT}")


if __name__ == "__main__":
    main()
