"""lpw.py — write and read loupe's .lpw weight files (docs/FORMAT.md).

Standard library only; numpy is used when it is installed (faster CRC32C,
tensors returned as arrays) but is not required.

    write_lpw(path, metadata, tensors)   # atomic: temporary file + os.replace
    metadata, tensors = read_lpw(path)   # validates the file, payload CRCs too

metadata is a list of (key, type, value) with type one of 'I64', 'F64',
'STR', 'I64_ARR', 'F64_ARR', 'STR_ARR' (or the numeric codes 1..6).
tensors is a list of (name, array): a numpy float32 array is stored as
float32, a numpy float16 array as float16; without numpy use RawTensor.
read_lpw returns float32 numpy arrays (16-bit payloads widened) or, without
numpy, RawTensor objects.
"""

import os
import struct
import sys
import tempfile

try:
    import numpy as np
except ImportError:  # pragma: no cover - exercised on machines without numpy
    np = None

MAGIC = b"\x89LPW\r\n\x1a\n"
BOM = 0x01020304
VERSION = (1, 0)
HEADER_SIZE = 128
ENTRY_SIZE = 256
NAME_FIELD = 96
MAX_TENSORS = 16384
MAX_RECORDS = 1024
META_MAX = 4 << 20
STR_MAX = 4096
ARR_MAX = 64 << 10
STR_ARR_MAX = 1 << 20
MAX_ELEMENTS = 1 << 40
DEFAULT_ALIGNMENT = 64

TYPES = {"I64": 1, "F64": 2, "STR": 3, "I64_ARR": 4, "F64_ARR": 5, "STR_ARR": 6}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
DTYPES = {"float32": 0, "float16": 1, "bfloat16": 2}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
DTYPE_SIZE = {0: 4, 1: 2, 2: 2}

_HEADER = struct.Struct("<8sIHHIIQQQQIIQQIII32sI")
assert _HEADER.size == HEADER_SIZE
_ENTRY = struct.Struct("<96sII8QQQII64s")
assert _ENTRY.size == ENTRY_SIZE


class LpwError(ValueError):
    """A file or an argument that breaks the format's rules."""


class RawTensor:
    """A tensor as little-endian bytes, for use without numpy."""

    def __init__(self, shape, dtype, data):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtype  # 'float32' | 'float16' | 'bfloat16'
        self.data = bytes(data)

    def tobytes(self):
        return self.data


# ---------------------------------------------------------------------------
# CRC32C (Castagnoli, reflected polynomial 0x82F63B78)
# ---------------------------------------------------------------------------

_POLY = 0x82F63B78


def _byte_table():
    table = []
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ (_POLY if c & 1 else 0)
        table.append(c)
    return table


_TABLE = _byte_table()


def _update_py(state, data):
    """The raw CRC register after `data` (no inversions), one byte a step."""
    t = _TABLE
    for b in data:
        state = t[(state ^ b) & 0xFF] ^ (state >> 8)
    return state


# The register is linear over GF(2): running n zero bytes through it is a
# 32x32 bit matrix. An operator is kept as its 32 columns (images of 1<<i).

def _op_apply(op, v):
    r = 0
    i = 0
    while v:
        if v & 1:
            r ^= op[i]
        v >>= 1
        i += 1
    return r


def _op_compose(a, b):
    """b after a."""
    return [_op_apply(b, col) for col in a]


_OP_ONE_BYTE = [_TABLE[(1 << i) & 0xFF] ^ ((1 << i) >> 8) for i in range(32)]
_OP_CACHE = {}


def _op_zeros(n):
    """Operator that appends n zero bytes (square and multiply)."""
    if n in _OP_CACHE:
        return _OP_CACHE[n]
    result = [1 << i for i in range(32)]
    power = _OP_ONE_BYTE
    k = n
    while k:
        if k & 1:
            result = _op_compose(result, power)
        k >>= 1
        if k:
            power = _op_compose(power, power)
    if len(_OP_CACHE) < 256:
        _OP_CACHE[n] = result
    return result


if np is not None:
    _NP_T = [np.array(_TABLE, dtype=np.uint32)]
    for _k in range(1, 4):  # slicing-by-4: tables for 1..3 trailing bytes
        _prev = _NP_T[-1]
        _NP_T.append((_prev >> np.uint32(8)) ^ _NP_T[0][_prev & np.uint32(0xFF)])
    del _k, _prev

    def _np_op_tables(op):
        """Four 256-entry tables applying `op` to a uint32 vector bytewise."""
        x = np.arange(256, dtype=np.uint32)
        tables = []
        for k in range(4):
            t = np.zeros(256, dtype=np.uint32)
            for j in range(8):
                t ^= ((x >> np.uint32(j)) & np.uint32(1)) * np.uint32(op[8 * k + j])
            tables.append(t)
        return tables

    _NP_TABLE_CACHE = {}

    def _np_op_tables_cached(n):
        """Tables for appending n zero bytes (the lane sizes repeat)."""
        if n not in _NP_TABLE_CACHE:
            if len(_NP_TABLE_CACHE) >= 256:
                _NP_TABLE_CACHE.clear()
            _NP_TABLE_CACHE[n] = _np_op_tables(_op_zeros(n))
        return _NP_TABLE_CACHE[n]

    def _np_op_apply(tables, v):
        m = np.uint32(0xFF)
        return (tables[0][v & m] ^ tables[1][(v >> np.uint32(8)) & m] ^
                tables[2][(v >> np.uint32(16)) & m] ^ tables[3][v >> np.uint32(24)])

    def _update_np(data):
        """Raw register from zero state over `data` (bytes-like), computed on
        many lanes at once: the data is cut into M lanes of L bytes, each
        lane's register runs in parallel (slicing-by-4), then the lanes are
        combined pairwise: reg(A||B) = zeros_|B|(reg(A)) ^ reg(B)."""
        buf = np.frombuffer(data, dtype=np.uint8)
        n = buf.size
        lane = max(64, (n // 32768) & ~63)  # bytes per lane, multiple of 64
        lanes = n // lane
        words = buf[: lanes * lane].view("<u4").reshape(lanes, lane // 4)
        words = np.ascontiguousarray(words.T)  # one row per step
        reg = np.zeros(lanes, dtype=np.uint32)
        t0, t1, t2, t3 = _NP_T
        m = np.uint32(0xFF)
        s8, s16, s24 = np.uint32(8), np.uint32(16), np.uint32(24)
        for row in words:
            reg ^= row
            reg = t3[reg & m] ^ t2[(reg >> s8) & m] ^ t1[(reg >> s16) & m] ^ t0[reg >> s24]
        span = lane
        while reg.size > 1:
            if reg.size & 1:  # leading zeros do not change a zero-state register
                reg = np.concatenate([np.zeros(1, dtype=np.uint32), reg])
            tables = _np_op_tables_cached(span)
            reg = _np_op_apply(tables, reg[0::2]) ^ reg[1::2]
            span *= 2
        state = int(reg[0])
        tail = bytes(buf[lanes * lane:])
        if tail:
            state = _op_apply(_op_zeros(len(tail)), state) ^ _update_py(0, tail)
        return state


def crc32c(data, crc=0):
    """CRC32C of `data`, continuing from `crc` (zlib.crc32's convention:
    crc32c(b"123456789") == 0xE3069283)."""
    data = memoryview(data).cast("B")
    n = data.nbytes
    if n == 0:
        return crc
    start = (~crc) & 0xFFFFFFFF
    if np is None or n < (1 << 16):
        return (~_update_py(start, data)) & 0xFFFFFFFF
    # register from `start` = zeros_n(start) ^ register from 0
    state = _op_apply(_op_zeros(n), start) ^ _update_np(data)
    return (~state) & 0xFFFFFFFF


# ---------------------------------------------------------------------------
# validation helpers shared by the writer and the reader
# ---------------------------------------------------------------------------

_KEY_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_.")
_NAME_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.")


def _check_key(key):
    k = key.encode("ascii", "replace") if isinstance(key, str) else bytes(key)
    if not (1 <= len(k) <= 64) or k[:1] == b"." or k[-1:] == b"." or \
            any(c not in _KEY_CHARS for c in k):
        raise LpwError("invalid metadata key %r (1..64 of [a-z0-9_.], no leading "
                       "or trailing '.')" % (key,))
    return k


def _check_name(name):
    n = name.encode("ascii", "replace") if isinstance(name, str) else bytes(name)
    if not (1 <= len(n) <= NAME_FIELD - 1) or any(c not in _NAME_CHARS for c in n):
        raise LpwError("invalid tensor name %r (1..95 of [A-Za-z0-9_.])" % (name,))
    return n


def _check_text(b, what):
    if b"\0" in b:
        raise LpwError("%s contains a NUL byte" % what)
    try:
        b.decode("utf-8", "strict")
    except UnicodeDecodeError:
        raise LpwError("%s is not valid UTF-8" % what) from None
    if len(b) > STR_MAX:
        raise LpwError("%s is %d bytes, more than 4096" % (what, len(b)))


def _align(x, a):
    return (x + a - 1) & ~(a - 1)


def _encode_value(key, type_, value):
    if type_ == 1:
        return struct.pack("<q", int(value))
    if type_ == 2:
        return struct.pack("<d", float(value))
    if type_ == 3:
        b = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        _check_text(b, "metadata %s" % key)
        return b
    if type_ in (4, 5):
        values = list(value)
        if len(values) * 8 > ARR_MAX:
            raise LpwError("metadata %s: %d values exceed 64 KiB" % (key, len(values)))
        fmt = "<%d%s" % (len(values), "q" if type_ == 4 else "d")
        return struct.pack(fmt, *[int(v) if type_ == 4 else float(v) for v in values])
    if type_ == 6:
        parts = [struct.pack("<I", len(value))]
        for i, s in enumerate(value):
            b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
            _check_text(b, "metadata %s item %d" % (key, i))
            parts.append(struct.pack("<I", len(b)))
            parts.append(b)
        out = b"".join(parts)
        if len(out) > STR_ARR_MAX:
            raise LpwError("metadata %s: string array exceeds 1 MiB" % key)
        return out
    raise LpwError("metadata %s: unknown type %r" % (key, type_))


def _type_code(t):
    if isinstance(t, int) and t in TYPE_NAMES:
        return t
    if t in TYPES:
        return TYPES[t]
    raise LpwError("unknown metadata type %r" % (t,))


def encode_metadata(metadata):
    """The metadata section for [(key, type, value)]."""
    seen = set()
    out = bytearray()
    if len(metadata) > MAX_RECORDS:
        raise LpwError("more than %d metadata records" % MAX_RECORDS)
    for key, type_, value in metadata:
        k = _check_key(key)
        if k in seen:
            raise LpwError("duplicate metadata key %r" % key)
        seen.add(k)
        code = _type_code(type_)
        v = _encode_value(key, code, value)
        rec = struct.pack("<HBBI", len(k), code, 0, len(v)) + k + v
        out += rec + b"\0" * (_align(len(rec), 8) - len(rec))
    if len(out) > META_MAX:
        raise LpwError("metadata section of %d bytes exceeds 4 MiB" % len(out))
    return bytes(out)


def _tensor_info(name, arr):
    """(name bytes, dtype code, shape, payload bytes-like) for one tensor."""
    n = _check_name(name)
    if isinstance(arr, RawTensor):
        if arr.dtype not in DTYPES:
            raise LpwError("tensor %s: unsupported dtype %s" % (name, arr.dtype))
        shape, code, data = arr.shape, DTYPES[arr.dtype], arr.data
    elif np is not None and isinstance(arr, np.ndarray):
        if arr.dtype == np.float32:
            code = 0
        elif arr.dtype == np.float16:
            code = 1
        else:
            raise LpwError("tensor %s: dtype %s (write float32 or float16)"
                           % (name, arr.dtype))
        shape = tuple(int(d) for d in arr.shape)
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
        data = memoryview(arr).cast("B")
    else:
        raise LpwError("tensor %s: not a numpy array or RawTensor" % name)
    if not (1 <= len(shape) <= 8) or any(d < 1 for d in shape):
        raise LpwError("tensor %s: shape %s (need 1..8 dimensions, each >= 1)"
                       % (name, list(shape)))
    count = 1
    for d in shape:
        count *= d
    if count > MAX_ELEMENTS:
        raise LpwError("tensor %s: more than 2^40 elements" % name)
    if len(data) != count * DTYPE_SIZE[code]:
        raise LpwError("tensor %s: %d bytes for shape %s" % (name, len(data), list(shape)))
    return n, code, shape, data


# ---------------------------------------------------------------------------
# writer
# ---------------------------------------------------------------------------

def write_lpw(path, metadata, tensors, alignment=DEFAULT_ALIGNMENT):
    """Write a .lpw file atomically: the bytes go to a temporary file in the
    same directory that replaces `path` only when complete and synced.
    Returns the file size."""
    if alignment < 64 or alignment > 65536 or alignment & (alignment - 1):
        raise LpwError("alignment %d is not a power of two in [64, 65536]" % alignment)
    meta = encode_metadata(metadata)
    if not 1 <= len(tensors) <= MAX_TENSORS:
        raise LpwError("%d tensors (need 1..%d)" % (len(tensors), MAX_TENSORS))
    infos = [_tensor_info(name, arr) for name, arr in tensors]
    names = [i[0] for i in infos]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise LpwError("duplicate tensor name %r" % dup.decode())

    index_off = HEADER_SIZE + len(meta)  # meta is a multiple of 8
    data_off = _align(index_off + len(infos) * ENTRY_SIZE, alignment)
    offsets, pos = [], 0
    for i, (_, _, _, data) in enumerate(infos):
        if i:
            pos = _align(pos, alignment)
        offsets.append(pos)
        pos += len(data)
    data_size = pos
    file_size = data_off + data_size

    index = bytearray()
    for (n, code, shape, data), off in zip(infos, offsets):
        dims = list(shape) + [0] * (8 - len(shape))
        index += _ENTRY.pack(n, code, len(shape), *dims, off, len(data),
                             crc32c(data), 0, b"")
    head = bytearray(_HEADER.pack(
        MAGIC, BOM, VERSION[0], VERSION[1], HEADER_SIZE, alignment, file_size,
        HEADER_SIZE, len(meta), index_off, len(infos), ENTRY_SIZE, data_off,
        data_size, 0, crc32c(meta), crc32c(index), b"", 0))
    struct.pack_into("<I", head, 124, crc32c(bytes(head[:124])))

    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path),
                               suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head)
            f.write(meta)
            f.write(index)
            f.write(b"\0" * (data_off - index_off - len(index)))
            written = 0
            for (_, _, _, data), off in zip(infos, offsets):
                f.write(b"\0" * (off - written))
                f.write(data)
                written = off + len(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file 0600; give it the usual umask mode
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return file_size


# ---------------------------------------------------------------------------
# reader
# ---------------------------------------------------------------------------

def _decode_metadata(meta):
    out, pos, keys = [], 0, set()
    while pos < len(meta):
        if len(out) == MAX_RECORDS:
            raise LpwError("more than %d metadata records" % MAX_RECORDS)
        if len(meta) - pos < 8:
            raise LpwError("metadata record %d: truncated record header" % len(out))
        key_len, code, reserved, vlen = struct.unpack_from("<HBBI", meta, pos)
        if not 1 <= key_len <= 64 or reserved:
            raise LpwError("metadata record %d: bad key length or reserved byte" % len(out))
        end = pos + 8 + key_len + vlen
        if end > len(meta) or _align(end, 8) > len(meta):
            raise LpwError("metadata record %d runs past the metadata section" % len(out))
        k = bytes(meta[pos + 8: pos + 8 + key_len])
        _check_key(k)
        key = k.decode()
        if key in keys:
            raise LpwError("duplicate metadata key %r" % key)
        keys.add(key)
        v = bytes(meta[pos + 8 + key_len: end])
        if any(meta[end:_align(end, 8)]):
            raise LpwError("metadata %s: padding is not zero" % key)
        if code in (1, 2):
            if vlen != 8:
                raise LpwError("metadata %s: value is %d bytes, not 8" % (key, vlen))
            value = struct.unpack("<q" if code == 1 else "<d", v)[0]
        elif code == 3:
            _check_text(v, "metadata %s" % key)
            value = v.decode("utf-8")
        elif code in (4, 5):
            if vlen % 8 or vlen > ARR_MAX:
                raise LpwError("metadata %s: bad array length %d" % (key, vlen))
            value = list(struct.unpack("<%d%s" % (vlen // 8, "q" if code == 4 else "d"), v))
        elif code == 6:
            if not 4 <= vlen <= STR_ARR_MAX:
                raise LpwError("metadata %s: bad string array length %d" % (key, vlen))
            count = struct.unpack_from("<I", v)[0]
            value, p = [], 4
            for i in range(count):
                if len(v) - p < 4:
                    raise LpwError("metadata %s: string array claims %d items" % (key, count))
                n = struct.unpack_from("<I", v, p)[0]
                p += 4
                if n > len(v) - p:
                    raise LpwError("metadata %s: item %d runs past the value" % (key, i))
                _check_text(v[p:p + n], "metadata %s item %d" % (key, i))
                value.append(v[p:p + n].decode("utf-8"))
                p += n
            if p != len(v):
                raise LpwError("metadata %s: trailing bytes in a string array" % key)
        else:
            raise LpwError("metadata %s: unknown value type %d" % (key, code))
        out.append((key, TYPE_NAMES[code], value))
        pos = _align(end, 8)
    return out


def _widen(raw, code, shape):
    """Payload bytes -> float32 numpy array (or RawTensor without numpy)."""
    if np is None:
        return RawTensor(shape, DTYPE_NAMES[code], raw)
    if code == 0:
        a = np.frombuffer(raw, dtype="<f4")
    elif code == 1:
        a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    else:
        a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << np.uint32(16)).view(np.float32)
    return a.astype(np.float32, copy=False).reshape(shape)


def read_lpw(path, verify=True):
    """Read and validate a .lpw file (layout, CRCs, names, shapes, padding).
    Returns (metadata, tensors) in the form write_lpw takes."""
    with open(path, "rb") as f:
        buf = f.read()
    size = len(buf)
    if size < HEADER_SIZE:
        raise LpwError("%s: %d bytes, shorter than the header" % (path, size))
    (magic, bom, major, minor, hsize, alignment, file_size, meta_off, meta_size,
     index_off, count, esize, data_off, data_size, flags, meta_crc, index_crc,
     reserved, header_crc) = _HEADER.unpack_from(buf)
    if magic != MAGIC:
        raise LpwError("%s: not a .lpw file" % path)
    if bom != BOM:
        raise LpwError("%s: byte-order mark 0x%08X (big-endian?)" % (path, bom))
    if major != VERSION[0]:
        raise LpwError("%s: unsupported version %d.%d" % (path, major, minor))
    if hsize != HEADER_SIZE or crc32c(buf[:124]) != header_crc:
        raise LpwError("%s: bad header size or header CRC" % path)
    if flags or any(reserved):
        raise LpwError("%s: unknown flags or non-zero reserved bytes" % path)
    if file_size != size:
        raise LpwError("%s: header says %d bytes, file has %d" % (path, file_size, size))
    if alignment < 64 or alignment > 65536 or alignment & (alignment - 1):
        raise LpwError("%s: bad alignment %d" % (path, alignment))
    if meta_off != HEADER_SIZE or meta_size > META_MAX or \
            index_off != _align(meta_off + meta_size, 8) or \
            not 1 <= count <= MAX_TENSORS or esize != ENTRY_SIZE or \
            data_off != _align(index_off + count * ENTRY_SIZE, alignment) or \
            data_off > size or data_size != size - data_off:
        raise LpwError("%s: section bounds do not follow the layout" % path)
    index_end = index_off + count * ENTRY_SIZE
    if any(buf[index_end:data_off]):
        raise LpwError("%s: non-zero padding before the data section" % path)
    meta = buf[HEADER_SIZE:HEADER_SIZE + meta_size]
    if crc32c(meta) != meta_crc:
        raise LpwError("%s: metadata CRC mismatch" % path)
    try:
        metadata = _decode_metadata(meta)
    except LpwError as e:
        raise LpwError("%s: %s" % (path, e)) from None
    if crc32c(buf[index_off:index_end]) != index_crc:
        raise LpwError("%s: index CRC mismatch" % path)
    tensors, names, expect, prev_end = [], set(), 0, 0
    for i in range(count):
        fields = _ENTRY.unpack_from(buf, index_off + i * ENTRY_SIZE)
        raw_name, code, ndim = fields[0], fields[1], fields[2]
        dims, off, nbytes, crc, res, res2 = fields[3:11], fields[11], fields[12], \
            fields[13], fields[14], fields[15]
        name_b = raw_name.split(b"\0", 1)[0]
        if len(name_b) == NAME_FIELD or any(raw_name[len(name_b):]):
            raise LpwError("%s: tensor #%d: name not NUL-terminated/padded" % (path, i))
        try:
            _check_name(name_b)
        except LpwError as e:
            raise LpwError("%s: tensor #%d: %s" % (path, i, e)) from None
        name = name_b.decode()
        if name in names:
            raise LpwError("%s: duplicate tensor name %r" % (path, name))
        names.add(name)
        if code not in DTYPE_NAMES or not 1 <= ndim <= 8 or res or any(res2):
            raise LpwError("%s: tensor %s: bad dtype, ndim or reserved field" % (path, name))
        shape = tuple(dims[:ndim])
        if any(d < 1 for d in shape) or any(dims[ndim:]):
            raise LpwError("%s: tensor %s: bad shape %s" % (path, name, list(dims)))
        n = 1
        for d in shape:
            n *= d
        if n > MAX_ELEMENTS or nbytes != n * DTYPE_SIZE[code]:
            raise LpwError("%s: tensor %s: nbytes %d does not match shape %s %s"
                           % (path, name, nbytes, list(shape), DTYPE_NAMES[code]))
        if off != expect or off + nbytes > data_size:
            raise LpwError("%s: tensor %s: payload at %d (must start at %d and fit)"
                           % (path, name, off, expect))
        start = data_off + off
        if any(buf[data_off + prev_end:start]):
            raise LpwError("%s: tensor %s: non-zero padding before it" % (path, name))
        raw = buf[start:start + nbytes]
        if verify and crc32c(raw) != crc:
            raise LpwError("%s: tensor %s: payload CRC mismatch" % (path, name))
        tensors.append((name, _widen(raw, code, shape)))
        prev_end = off + nbytes
        expect = _align(prev_end, alignment)
    if prev_end != data_size:
        raise LpwError("%s: %d bytes after the last payload" % (path, data_size - prev_end))
    return metadata, tensors


def _main(argv):
    """python3 tools/lpw.py FILE.lpw: validate and list a file (a debugging aid;
    `loupe inspect` is the real tool)."""
    if len(argv) != 2:
        print("usage: lpw.py FILE.lpw", file=sys.stderr)
        return 2
    try:
        metadata, tensors = read_lpw(argv[1])
    except (LpwError, OSError) as e:
        print("lpw.py: %s" % e, file=sys.stderr)
        return 2
    for key, type_, value in metadata:
        text = repr(value)
        print("%-24s %-7s %s" % (key, type_, text if len(text) < 100 else text[:96] + " ..."))
    for name, arr in tensors:
        print("%-48s %s" % (name, list(arr.shape)))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
