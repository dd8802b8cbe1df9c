#!/usr/bin/python3
"""Generate the JPEG decoder fixtures under tests/data/jpeg/ (run once; the
outputs are committed).

    /usr/bin/python3 tests/gen_jpeg_fixtures.py            # write fixtures
    /usr/bin/python3 tests/gen_jpeg_fixtures.py --compare DIR
        compare loupe's full decodes dumped by the test
        (LOUPE_JPEG_DUMP=DIR build/loupe_tests jpeg) with Pillow's

Needs Pillow (Debian's python3-pil: Pillow 9.4 with libjpeg-turbo 2.1.5,
whose decode is the reference) and cjpeg from libjpeg-turbo-progs for the
variants Pillow cannot write (restart intervals, 4:4:0 and other sampling
factors, custom progressions, 16-bit quantisation tables, RGB and
arithmetic-coded files). Some fixtures are then edited byte-wise (fill
bytes, merged or renumbered tables, extra segments, SOF1, no EOI).

Written here:
  fixtures.txt        name width height channels   (one per decodable file)
  NAME.jpg, NAME.raw  the file and Pillow's decoded pixels (row-major,
                      channels interleaved: convert('L') or convert('RGB'))
  bad_*.jpg           files that must be refused (listed in bad.txt)
  photos.txt          for the photos in ../shared (not in users' clones):
                      path width height channels stride fnv1a64
  photo_NAME.raw      Pillow's pixels at rows and columns 0, stride,
                      2*stride, ... and the last one (a sparse sample that
                      still covers every position inside the 8x8 blocks)
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image, ImageFile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "jpeg")
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared"))
PHOTO_DIRS = ["data/images/natural", "data/images/cifar10/samples"]


# ---- synthetic images ----------------------------------------------------

def synth(w, h, seed=0):
    """Smooth gradients, sharp coloured edges and a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / 5.0 + seed) * np.cos(y / 7.0)
    g = 255.0 * x / max(w - 1, 1)
    b = np.where(((x // 6) + (y // 5)) % 2 == 0, 230.0, 20.0)
    img = np.stack([r, g, b], axis=-1)
    img[(x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(w, h) / 3) ** 2] = [250, 40, 60]
    img += rng.normal(0, 6, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def reference(path, truncated_ok=False):
    """Pillow's decode. truncated_ok: for a file without EOI, which Pillow
    refuses by default (loupe decodes a sequential one: all its data is
    there), take what Pillow gives with LOAD_TRUNCATED_IMAGES."""
    ImageFile.LOAD_TRUNCATED_IMAGES = truncated_ok
    try:
        im = Image.open(path)
        im.load()
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    return np.asarray(im.convert("L" if im.mode == "L" else "RGB"))


# ---- JPEG byte-level editing ---------------------------------------------

def split(data):
    """[(marker, payload-or-None)] and entropy-coded data as (None, bytes)."""
    assert data[:2] == b"\xff\xd8"
    items, i = [(0xD8, None)], 2
    while i < len(data):
        assert data[i] == 0xFF, hex(i)
        while data[i] == 0xFF:
            i += 1
        m = data[i]
        i += 1
        if m == 0xD9:
            items.append((m, None))
            items.append((None, data[i:]))  # trailing bytes (usually none)
            break
        n = struct.unpack(">H", data[i:i + 2])[0]
        items.append((m, data[i + 2:i + n]))
        i += n
        if m == 0xDA:  # entropy-coded data up to the next non-RST marker
            j = i
            while True:
                if data[j] == 0xFF and data[j + 1] not in (0x00, 0xFF) and \
                        not 0xD0 <= data[j + 1] <= 0xD7:
                    break
                j += 1
            items.append((None, data[i:j]))
            i = j
    return items


def join(items, fill=0):
    out = bytearray()
    for m, p in items:
        if m is None:
            out += p
        elif m == 0xD8:
            out += b"\xff\xd8"  # the signature takes no fill bytes
        elif p is None:
            out += b"\xff" * (1 + fill) + bytes([m])
        else:
            out += b"\xff" * (1 + fill) + bytes([m]) + struct.pack(">H", len(p) + 2) + p
    return bytes(out)


def merge_tables(data):
    """All DHT tables in one segment, all DQT tables in another."""
    items = split(data)
    first_sos = next(k for k, (m, _) in enumerate(items) if m == 0xDA)
    out, done = [], set()
    for k, (m, p) in enumerate(items):
        if m in (0xC4, 0xDB) and k < first_sos:
            if m not in done:
                done.add(m)
                out.append((m, b"".join(q for mm, q in items[:first_sos] if mm == m)))
            continue
        out.append((m, p))
    return join(out)


def renumber_tables(data):
    """Huffman and quantisation tables 0/1 become 2/3 (every reference too)."""
    out = []
    for m, p in split(data):
        if m == 0xC4:
            q, i = bytearray(p), 0
            while i < len(q):
                q[i] += 2
                i += 17 + sum(q[i + 1:i + 17])
            p = bytes(q)
        elif m == 0xDB:
            q, i = bytearray(p), 0
            while i < len(q):
                q[i] += 2
                i += 1 + (128 if q[i] >> 4 else 64)
            p = bytes(q)
        elif m in (0xC0, 0xC1, 0xC2):
            q = bytearray(p)
            for c in range(q[5]):
                q[6 + 3 * c + 2] += 2
            p = bytes(q)
        elif m == 0xDA:
            q = bytearray(p)
            for c in range(q[0]):
                q[2 + 2 * c] += 0x22
            p = bytes(q)
        out.append((m, p))
    return join(out)


def replace_marker(data, old, new):
    return join([(new if m == old else m, p) for m, p in split(data)])


def insert_segments(data):
    """COM and APPn segments after SOI, before SOS and between scans."""
    out = []
    for m, p in split(data):
        if m == 0xDA:
            out.append((0xE7, b"loupe test APP7 \xff\xd9 inside"))
            out.append((0xFE, b"a comment"))
        out.append((m, p))
        if m == 0xD8:
            out.append((0xFE, b""))
            out.append((0xE3, b"\xff" * 20))
    return join(out)


def fill_before_rst(data):
    """FF FF before every RSTn inside the entropy-coded data."""
    out = []
    for m, p in split(data):
        if m is None:
            p = bytes(p)
            for r in range(8):
                p = p.replace(bytes([0xFF, 0xD0 + r]), bytes([0xFF, 0xFF, 0xD0 + r]))
        out.append((m, p))
    return join(out)


def drop_app(data, marker):
    return join([(m, p) for m, p in split(data) if m != marker])


def add_jfif(data):
    items = split(data)
    jfif = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return join(items[:1] + [(0xE0, jfif)] + items[1:])


def set_adobe(data, transform):
    """Replace any APP0/APP14 with an Adobe marker of this transform."""
    items = [(m, p) for m, p in split(data) if m not in (0xE0, 0xEE)]
    adobe = b"Adobe" + struct.pack(">HHHB", 100, 0, 0, transform)
    return join(items[:1] + [(0xEE, adobe)] + items[1:])


# ---- fixture writers -----------------------------------------------------

def cjpeg(img, args, tmp, scans=None):
    src = os.path.join(tmp, "in.ppm")
    img.save(src)
    cmd = ["cjpeg"] + list(args)
    if scans is not None:
        sf = os.path.join(tmp, "scans.txt")
        with open(sf, "w") as f:
            f.write(scans)
        cmd += ["-scans", sf]
    return subprocess.run(cmd + [src], check=True, capture_output=True).stdout


def pil_jpeg(img, tmp, **kw):
    path = os.path.join(tmp, "pil.jpg")
    img.save(path, "JPEG", **kw)
    with open(path, "rb") as f:
        return f.read()


SCANS_SEQ_2 = "0; 1 2;"
SCANS_SEQ_3 = "0; 2; 1;"
SCANS_SPECTRAL = """0,1,2: 0-0, 0, 0; 0: 1-2, 0, 0; 0: 3-5, 0, 0;
1: 1-63, 0, 0; 2: 1-63, 0, 0; 0: 6-9, 0, 0; 0: 10-63, 0, 0;"""
SCANS_DEEP_SA = """0: 0-0, 0, 3; 1: 0-0, 0, 2; 2: 0-0, 0, 1;
0: 1-9, 0, 4; 0: 10-63, 0, 3; 1: 1-63, 0, 2; 2: 1-63, 0, 1;
0: 0-0, 3, 2; 0: 1-9, 4, 3; 0,1: 0-0, 2, 1; 0: 1-63, 3, 2;
0: 1-5, 2, 1; 0: 6-63, 2, 1; 0,1,2: 0-0, 1, 0; 0: 1-63, 1, 0;
1: 1-63, 2, 1; 1: 1-63, 1, 0; 2: 1-63, 1, 0;"""
SCANS_GREY_SA = "0: 0-0, 0, 2; 0: 1-63, 0, 5; 0: 0-0, 2, 1; 0: 1-63, 5, 4; \
0: 1-63, 4, 3; 0: 1-63, 3, 2; 0: 0-0, 1, 0; 0: 1-63, 2, 1; 0: 1-63, 1, 0;"


def make_fixtures(tmp):
    """{name: jpeg bytes} of every decodable fixture, and the bad files."""
    small, mid = synth(33, 17, 1), synth(75, 41, 2)
    sq, one = synth(16, 16, 3), synth(1, 1, 4)
    big = synth(160, 120, 5)
    f = {}
    # Pillow: grey, 4:4:4 / 4:2:2 / 4:2:0, progressive, optimised, q100
    f["grey_33x17"] = pil_jpeg(small.convert("L"), tmp, quality=90)
    f["grey_1x1"] = pil_jpeg(one.convert("L"), tmp)
    f["grey_prog_75x41"] = pil_jpeg(mid.convert("L"), tmp, progressive=True)
    for sub, tag in ((0, "444"), (1, "422"), (2, "420")):
        f["rgb%s_33x17" % tag] = pil_jpeg(small, tmp, subsampling=sub, quality=85)
        f["rgb%s_75x41" % tag] = pil_jpeg(mid, tmp, subsampling=sub)
        f["rgb%s_16x16" % tag] = pil_jpeg(sq, tmp, subsampling=sub)
        f["rgb%s_1x1" % tag] = pil_jpeg(one, tmp, subsampling=sub)
    for w, h in ((2, 2), (3, 5), (4, 4), (5, 3), (6, 7), (9, 2)):
        f["rgb420_%dx%d" % (w, h)] = pil_jpeg(synth(w, h, w * h), tmp, subsampling=2)
        f["rgb422_%dx%d" % (w, h)] = pil_jpeg(synth(w, h, w + h), tmp, subsampling=1)
    f["prog420_75x41"] = pil_jpeg(mid, tmp, progressive=True, subsampling=2)
    f["prog444_33x17"] = pil_jpeg(small, tmp, progressive=True, subsampling=0)
    f["prog422_1x1"] = pil_jpeg(one, tmp, progressive=True, subsampling=1)
    f["prog420_160x120"] = pil_jpeg(big, tmp, progressive=True, optimize=True)
    f["opt420_75x41"] = pil_jpeg(mid, tmp, optimize=True)
    f["q100_444_33x17"] = pil_jpeg(small, tmp, quality=100, subsampling=0)
    # cjpeg: sampling factors, restarts, scan scripts, 16-bit tables, RGB
    f["s440_33x17"] = cjpeg(small, ["-sample", "1x2"], tmp)
    f["s440_75x41"] = cjpeg(mid, ["-sample", "1x2"], tmp)
    f["s411_75x41"] = cjpeg(mid, ["-sample", "4x1"], tmp)
    f["s311_33x17"] = cjpeg(small, ["-sample", "3x1"], tmp)
    f["s141_33x17"] = cjpeg(small, ["-sample", "1x4"], tmp)
    f["s4x2_75x41"] = cjpeg(mid, ["-sample", "4x2,1x1,1x1"], tmp)
    f["s22_21_11_75x41"] = cjpeg(mid, ["-sample", "2x2,2x1,1x1"], tmp)
    f["s21_12_11_75x41"] = cjpeg(mid, ["-sample", "2x1,1x2,1x1"], tmp)
    f["s420_prog_160x120"] = cjpeg(big, ["-sample", "2x2", "-progressive",
                                         "-restart", "5B"], tmp)
    f["rst_rows_75x41"] = cjpeg(mid, ["-restart", "1"], tmp)
    f["rst_3b_75x41"] = cjpeg(mid, ["-restart", "3B"], tmp)
    f["rst_1b_33x17"] = cjpeg(small, ["-restart", "1B", "-sample", "1x1"], tmp)
    f["rst_prog_75x41"] = cjpeg(mid, ["-progressive", "-restart", "2B"], tmp)
    f["rst_grey_prog_33x17"] = cjpeg(small, ["-grayscale", "-progressive",
                                             "-restart", "1B"], tmp)
    f["grey_cj_75x41"] = cjpeg(mid, ["-grayscale", "-optimize"], tmp)
    f["q100_cj_75x41"] = cjpeg(mid, ["-quality", "100"], tmp)
    f["q2_16bit_75x41"] = cjpeg(mid, ["-quality", "2"], tmp)
    f["q5_16bit_prog_33x17"] = cjpeg(small, ["-quality", "5", "-progressive"], tmp)
    f["rgb_cj_33x17"] = cjpeg(small, ["-rgb"], tmp)
    f["rgb_cj_420_75x41"] = cjpeg(mid, ["-rgb", "-sample", "2x2,1x1,1x1"], tmp)
    qt = os.path.join(tmp, "qtables.txt")
    with open(qt, "w") as fh:  # three tables; the third has 16-bit values
        for t in range(3):
            fh.write(" ".join(str(3 + (i % 8) * (t + 1) + (i // 8) * 2 +
                                  (300 if t == 2 and i > 20 else 0))
                              for i in range(64)) + "\n")
    f["qslots_75x41"] = cjpeg(mid, ["-qtables", qt, "-qslots", "0,1,2",
                                    "-sample", "1x1"], tmp)
    f["scans_seq2_75x41"] = cjpeg(mid, [], tmp, SCANS_SEQ_2)
    f["scans_seq3_33x17"] = cjpeg(small, ["-restart", "2B"], tmp, SCANS_SEQ_3)
    f["scans_spectral_75x41"] = cjpeg(mid, [], tmp, SCANS_SPECTRAL)
    f["scans_deep_sa_75x41"] = cjpeg(mid, ["-sample", "1x1"], tmp, SCANS_DEEP_SA)
    f["scans_deep_sa_rst_33x17"] = cjpeg(small, ["-restart", "3B"], tmp, SCANS_DEEP_SA)
    f["scans_grey_sa_75x41"] = cjpeg(mid, ["-grayscale"], tmp, SCANS_GREY_SA)
    f["opt_prog_cj_75x41"] = cjpeg(mid, ["-optimize", "-progressive"], tmp)
    # byte-level edits
    f["edit_fill_ff"] = join(split(f["rgb420_33x17"]), fill=3)
    f["edit_merged_tables"] = merge_tables(f["rgb420_75x41"])
    f["edit_merged_prog"] = merge_tables(f["opt_prog_cj_75x41"])
    f["edit_tables_23"] = renumber_tables(f["rgb422_75x41"])
    f["edit_tables_23_prog"] = renumber_tables(f["prog420_75x41"])
    f["edit_sof1"] = replace_marker(f["rgb444_33x17"], 0xC0, 0xC1)
    f["edit_segments"] = insert_segments(f["prog420_75x41"])
    f["edit_rst_fill"] = fill_before_rst(f["rst_3b_75x41"])
    f["edit_no_eoi"] = f["rgb420_75x41"][:-2]
    f["edit_trailing"] = f["grey_33x17"] + b"\x00garbage\xff\xd8after EOI"
    f["edit_rgb_ids"] = drop_app(f["rgb_cj_33x17"], 0xEE)
    f["edit_rgb_jfif"] = add_jfif(f["rgb_cj_33x17"])
    f["edit_adobe_ycc"] = set_adobe(f["rgb420_33x17"], 1)
    f["edit_adobe_rgb0"] = set_adobe(f["rgb444_33x17"], 0)
    bad = {"bad_arith": cjpeg(small, ["-arithmetic"], tmp),
           "bad_arith_prog": cjpeg(small, ["-arithmetic", "-progressive"], tmp)}
    return f, bad


def fnv1a64(data):
    """FNV-1a 64-bit hash (the test computes the same over loupe's pixels)."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def sample_rows_cols(h, w, stride):
    ys = list(range(0, h, stride))
    xs = list(range(0, w, stride))
    if ys[-1] != h - 1:
        ys.append(h - 1)
    if xs[-1] != w - 1:
        xs.append(w - 1)
    return ys, xs


def photo_list():
    out = []
    for d in PHOTO_DIRS:
        full = os.path.join(SHARED, d)
        if os.path.isdir(full):
            out += [os.path.join(d, n) for n in sorted(os.listdir(full))
                    if n.lower().endswith(".jpg")]
    return out


def write_all():
    if shutil.which("cjpeg") is None:
        sys.exit("cjpeg not found: apt-get install libjpeg-turbo-progs")
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    with tempfile.TemporaryDirectory() as tmp:
        fixtures, bad = make_fixtures(tmp)
    lines = []
    for name, data in fixtures.items():
        path = os.path.join(OUT, name + ".jpg")
        with open(path, "wb") as fh:
            fh.write(data)
        ref = reference(path, name == "edit_no_eoi")
        h, w = ref.shape[:2]
        c = 1 if ref.ndim == 2 else 3
        ref.tofile(os.path.join(OUT, name + ".raw"))
        lines.append("%s %d %d %d" % (name, w, h, c))
    with open(os.path.join(OUT, "fixtures.txt"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    with open(os.path.join(OUT, "bad.txt"), "w") as fh:
        for name, data in bad.items():
            with open(os.path.join(OUT, name + ".jpg"), "wb") as g:
                g.write(data)
            fh.write(name + "\n")
    plines = []
    for rel in photo_list():
        ref = reference(os.path.join(SHARED, rel))
        h, w = ref.shape[:2]
        c = 1 if ref.ndim == 2 else 3
        stride = 1 if w * h <= 4096 else 9
        ys, xs = sample_rows_cols(h, w, stride)
        stem = os.path.splitext(os.path.basename(rel))[0]
        ref[np.ix_(ys, xs)].tofile(os.path.join(OUT, "photo_%s.raw" % stem))
        plines.append("%s %d %d %d %d %016x" % (rel, w, h, c, stride, fnv1a64(ref.tobytes())))
    with open(os.path.join(OUT, "photos.txt"), "w") as fh:
        fh.write("\n".join(plines) + "\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("%d fixtures, %d bad files, %d photos, %d bytes in %s" %
          (len(fixtures), len(bad), len(plines), total, OUT))


def compare(dump):
    """Max/mean |loupe - Pillow| for every fixture and photo dumped."""
    rows = []
    with open(os.path.join(OUT, "fixtures.txt")) as fh:
        for line in fh:
            name = line.split()[0]
            rows.append((name, os.path.join(OUT, name + ".jpg"), name + ".raw"))
    for rel in photo_list():
        stem = os.path.splitext(os.path.basename(rel))[0]
        rows.append((rel, os.path.join(SHARED, rel), "photo_%s.raw" % stem))
    worst = 0
    for name, src, raw in rows:
        ref = reference(src, name == "edit_no_eoi")
        got_path = os.path.join(dump, raw)
        if not os.path.exists(got_path):
            print("%-34s missing dump" % name)
            continue
        got = np.fromfile(got_path, np.uint8).reshape(ref.shape)
        d = np.abs(got.astype(int) - ref.astype(int))
        worst = max(worst, int(d.max()))
        print("%-34s %4dx%-4d max %d mean %.6f" % (name, ref.shape[1], ref.shape[0],
                                                  d.max(), d.mean()))
    print("worst max abs diff: %d" % worst)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--compare":
        compare(sys.argv[2])
    else:
        write_all()
