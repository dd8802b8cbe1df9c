/*
 * inflate.c — zlib (RFC 1950) / DEFLATE (RFC 1951) decompression into a
 * caller-sized buffer, plus the two checksums zlib streams and PNG files
 * use: Adler-32 and CRC-32 (polynomial 0xEDB88320).
 *
 * The whole output lives in one buffer, so the LZ77 window is simply
 * everything decoded so far: a distance is valid when it does not reach
 * before out[0]. Every read of the input and every write of the output is
 * bounds-checked; corrupt data ends in LP_EFORMAT with a message that
 * starts "zlib: ".
 *
 * Huffman decoding is table driven: a 2^10-entry table resolves every code
 * of up to 10 bits with one lookup (almost all codes in practice); longer
 * codes fall back to the canonical-code walk of RFC 1951 §3.2.2 (counts
 * per length, symbols in code order). Code-length sets are validated as
 * zlib does: over-subscribed sets are rejected, incomplete ones only
 * allowed for a literal/length or distance code with a single 1-bit code
 * (and a distance code may be empty when the block uses no matches).
 */
#include "internal.h"

#include <string.h>

/* ---- checksums ---------------------------------------------------------- */

uint32_t lp_adler32(uint32_t adler, const void *data, size_t size)
{
    const uint8_t *p = (const uint8_t *)data;
    uint32_t a = adler & 0xFFFFu, b = adler >> 16;
    if (data == NULL)
        return adler;
    while (size > 0) {
        /* 5552 is the most bytes before b can overflow 32 bits (zlib's NMAX) */
        size_t n = size < 5552 ? size : 5552;
        size -= n;
        while (n-- > 0) {
            a += *p++;
            b += a;
        }
        a %= 65521u;
        b %= 65521u;
    }
    return (b << 16) | a;
}

/* CRC-32 table built at compile time: entry b is the reflected CRC
 * register after shifting in byte b from zero. */
#define CRC32_POLY 0xEDB88320u
#define C1(c) (((c) >> 1) ^ ((0u - ((c) & 1u)) & CRC32_POLY))
#define C8(c) C1(C1(C1(C1(C1(C1(C1(C1(c))))))))
#define T4(n) C8((n) + 0u), C8((n) + 1u), C8((n) + 2u), C8((n) + 3u)
#define T16(n) T4((n) + 0u), T4((n) + 4u), T4((n) + 8u), T4((n) + 12u)
#define T64(n) T16((n) + 0u), T16((n) + 16u), T16((n) + 32u), T16((n) + 48u)
static const uint32_t crc32_table[256] = {T64(0u), T64(64u), T64(128u),
                                          T64(192u)};

static inline uint32_t load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline uint64_t load_le64(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
#else
    return (uint64_t)load_le32(p) | ((uint64_t)load_le32(p + 4) << 32);
#endif
}

/* zlib's convention: start with 0, pass the previous result to continue;
 * lp_crc32(0, "123456789", 9) == 0xCBF43926.
 *
 * Long inputs go 8 bytes per step ("slicing-by-8"): table k maps a byte to
 * the CRC of that byte followed by k zero bytes, so eight lookups replace
 * eight dependent ones. The 7 extra tables are built on the stack per call
 * (about 1800 steps), which pays off from a few KiB on and keeps the
 * library free of global mutable state. */
uint32_t lp_crc32(uint32_t crc, const void *data, size_t size)
{
    const uint8_t *p = (const uint8_t *)data;
    uint32_t c = ~crc;
    if (data == NULL)
        return crc;
    if (size >= 4096) {
        uint32_t t[8][256];
        memcpy(t[0], crc32_table, sizeof t[0]);
        for (int k = 1; k < 8; k++)
            for (int b = 0; b < 256; b++)
                t[k][b] = (t[k - 1][b] >> 8) ^ crc32_table[t[k - 1][b] & 0xFFu];
        for (; size >= 8; size -= 8, p += 8) {
            uint32_t lo = c ^ load_le32(p), hi = load_le32(p + 4);
            c = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^
                t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^ t[3][hi & 0xFFu] ^
                t[2][(hi >> 8) & 0xFFu] ^ t[1][(hi >> 16) & 0xFFu] ^
                t[0][hi >> 24];
        }
    }
    for (size_t i = 0; i < size; i++)
        c = crc32_table[(c ^ p[i]) & 0xFFu] ^ (c >> 8);
    return ~c;
}

/* ---- bit reader --------------------------------------------------------- */

typedef struct {
    const uint8_t *in;
    size_t len, pos;  /* next input byte not yet in bitbuf */
    uint64_t bitbuf;  /* bits not yet consumed, LSB first */
    int bitcnt;       /* number of valid bits in bitbuf */
    uint8_t *out;
    size_t cap, n;    /* output capacity and bytes written */
} inflater;

/* Top the bit buffer up to at least 56 bits while input remains. Bits of
 * bitbuf above bitcnt are zero or equal to the stream's next bits. */
static inline void refill(inflater *s)
{
    if (s->bitcnt > 56)
        return;
    if (s->len - s->pos >= 8) {
        s->bitbuf |= load_le64(s->in + s->pos) << s->bitcnt;
        s->pos += (size_t)((63 - s->bitcnt) >> 3);
        s->bitcnt += ((63 - s->bitcnt) >> 3) * 8;
    } else {
        while (s->bitcnt <= 56 && s->pos < s->len) {
            s->bitbuf |= (uint64_t)s->in[s->pos++] << s->bitcnt;
            s->bitcnt += 8;
        }
    }
}

/* Read n <= 32 bits (LSB first). */
static inline int getbits(inflater *s, int n, uint32_t *v)
{
    if (s->bitcnt < n) {
        refill(s);
        if (s->bitcnt < n) {
            *v = 0;
            return lp_set_error(LP_EFORMAT, "zlib: compressed data is "
                                "truncated");
        }
    }
    *v = (uint32_t)(s->bitbuf & ((1ull << n) - 1));
    s->bitbuf >>= n;
    s->bitcnt -= n;
    return LP_OK;
}

/* Drop the bits up to the next byte boundary and give the whole bytes
 * still in the bit buffer back to the input. */
static void align_to_byte(inflater *s)
{
    s->pos -= (size_t)(s->bitcnt >> 3);
    s->bitbuf = 0;
    s->bitcnt = 0;
}

/* ---- Huffman tables ----------------------------------------------------- */

#define MAX_BITS 15
#define FAST_BITS 10
#define FAST_SIZE (1 << FAST_BITS)
#define MAX_SYMBOLS 288

typedef struct {
    /* (code length << 9) | symbol for codes of <= FAST_BITS bits, indexed
     * by the next FAST_BITS input bits; 0 = longer code or unused code */
    uint16_t fast[FAST_SIZE];
    uint16_t count[MAX_BITS + 1];   /* number of codes of each length */
    uint16_t symbol[MAX_SYMBOLS];   /* symbols in canonical code order */
} huffman;

typedef enum { CODE_LENGTHS, LITLEN, DIST } code_kind;

static const char *kind_name(code_kind kind)
{
    return kind == CODE_LENGTHS ? "code-length"
           : kind == LITLEN     ? "literal/length"
                                : "distance";
}

/* Build the decoding tables for n code lengths (RFC 1951 §3.2.2). */
static int huffman_build(huffman *h, const uint8_t *lengths, int n,
                         code_kind kind)
{
    uint16_t offset[MAX_BITS + 2];
    uint16_t next_code[MAX_BITS + 1];
    int left = 1, max_len = 0, used = 0;

    memset(h->count, 0, sizeof h->count);
    memset(h->fast, 0, sizeof h->fast);
    for (int i = 0; i < n; i++)
        h->count[lengths[i]]++;
    h->count[0] = 0;
    for (int len = 1; len <= MAX_BITS; len++) {
        left <<= 1;
        left -= h->count[len];
        if (left < 0)
            return lp_set_error(LP_EFORMAT, "zlib: over-subscribed %s code",
                                kind_name(kind));
        if (h->count[len] > 0)
            max_len = len;
        used += h->count[len];
    }
    if (used == 0) {
        /* an empty distance code is legal when the block has no matches;
         * decoding any symbol with it is then an error */
        if (kind == CODE_LENGTHS)
            return lp_set_error(LP_EFORMAT, "zlib: empty code-length code");
        return LP_OK;
    }
    if (left > 0 && (kind == CODE_LENGTHS || max_len != 1))
        return lp_set_error(LP_EFORMAT, "zlib: incomplete %s code",
                            kind_name(kind));

    /* symbols sorted by (length, value) = canonical code order */
    offset[1] = 0;
    for (int len = 1; len <= MAX_BITS; len++)
        offset[len + 1] = (uint16_t)(offset[len] + h->count[len]);
    for (int i = 0; i < n; i++)
        if (lengths[i] != 0)
            h->symbol[offset[lengths[i]]++] = (uint16_t)i;

    /* canonical codes, stored bit-reversed in the fast table because
     * DEFLATE sends Huffman codes most significant bit first */
    next_code[1] = 0;
    for (int len = 2; len <= MAX_BITS; len++)
        next_code[len] = (uint16_t)((next_code[len - 1] + h->count[len - 1])
                                    << 1);
    for (int i = 0; i < n; i++) {
        int len = lengths[i];
        unsigned code, rev = 0;
        if (len == 0)
            continue;
        code = next_code[len]++;
        if (len > FAST_BITS)
            continue;
        for (int b = 0; b < len; b++)
            rev |= ((code >> b) & 1u) << (len - 1 - b);
        for (unsigned j = rev; j < FAST_SIZE; j += 1u << len)
            h->fast[j] = (uint16_t)((len << 9) | i);
    }
    return LP_OK;
}

/* Slow path: walk the canonical code one bit at a time (codes longer
 * than FAST_BITS, and unused codes of incomplete sets). Works on a copy of
 * the bit buffer so the caller's state can stay in registers. Returns the
 * code length, 0 for an invalid code, -1 when the input ends first. */
static int huffman_decode_slow(const huffman *h, uint64_t bits, int avail,
                               int *sym)
{
    int code = 0, first = 0, index = 0;
    for (int len = 1; len <= MAX_BITS; len++) {
        int count;
        if (len > avail)
            return -1;
        code |= (int)((bits >> (len - 1)) & 1u);
        count = h->count[len];
        if (code - first < count) {
            *sym = h->symbol[index + code - first];
            return len;
        }
        index += count;
        first = (first + count) << 1;
        code <<= 1;
    }
    return 0;
}

static inline int huffman_decode(inflater *s, const huffman *h, int *sym)
{
    unsigned entry;
    int len;
    if (s->bitcnt < MAX_BITS)
        refill(s);
    entry = h->fast[s->bitbuf & (FAST_SIZE - 1)];
    if (entry != 0) {
        len = (int)(entry >> 9);
        *sym = (int)(entry & 511u);
    } else {
        len = huffman_decode_slow(h, s->bitbuf, s->bitcnt, sym);
        if (len == 0)
            return lp_set_error(LP_EFORMAT, "zlib: invalid Huffman code");
    }
    if (len < 0 || len > s->bitcnt)
        return lp_set_error(LP_EFORMAT, "zlib: compressed data is "
                            "truncated");
    s->bitbuf >>= len;
    s->bitcnt -= len;
    return LP_OK;
}

/* ---- blocks ------------------------------------------------------------- */

static const uint16_t len_base[29] = {
    3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
    31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1,
                                      1, 1, 2, 2, 2, 2, 3, 3, 3, 3,
                                      4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[30] = {
    1,    2,    3,    4,    5,    7,     9,     13,    17,  25,
    33,   49,   65,   97,   129,  193,   257,   385,   513, 769,
    1025, 1537, 2049, 3073, 4097, 6145,  8193,  12289, 16385, 24577};
static const uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2,  2,  3,  3,
                                       4, 4, 5, 5, 6, 6, 7,  7,  8,  8,
                                       9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

static int inflate_stored(inflater *s)
{
    size_t len, nlen;
    align_to_byte(s);
    if (s->len - s->pos < 4)
        return lp_set_error(LP_EFORMAT, "zlib: stored block header is "
                            "truncated");
    len = (size_t)s->in[s->pos] | ((size_t)s->in[s->pos + 1] << 8);
    nlen = (size_t)s->in[s->pos + 2] | ((size_t)s->in[s->pos + 3] << 8);
    s->pos += 4;
    if ((len ^ 0xFFFFu) != nlen)
        return lp_set_error(LP_EFORMAT, "zlib: stored block length %zu does "
                            "not match its complement", len);
    if (s->len - s->pos < len)
        return lp_set_error(LP_EFORMAT, "zlib: stored block of %zu bytes is "
                            "truncated", len);
    if (s->cap - s->n < len)
        return lp_set_error(LP_EFORMAT, "zlib: decompressed data larger "
                            "than the %zu bytes expected", s->cap);
    if (len > 0)
        memcpy(s->out + s->n, s->in + s->pos, len);
    s->n += len;
    s->pos += len;
    return LP_OK;
}

/* Copy a match of `length` bytes from `distance` back (distance may be
 * smaller than length: the copy then repeats the last distance bytes). */
static inline void copy_match(uint8_t *dst, size_t distance, size_t length)
{
    const uint8_t *src = dst - distance;
    size_t i = 0;
    if (distance >= 8) {
        /* each 8-byte step reads only bytes already written */
        for (; i + 8 <= length; i += 8)
            memcpy(dst + i, src + i, 8);
    } else if (distance == 1) {
        memset(dst, src[0], length);
        return;
    }
    for (; i < length; i++)
        dst[i] = src[i];
}

/* Decode literals and matches until end-of-block. The bit reader state is
 * kept in locals here, the hot loop: stores through `out` (a uint8_t
 * pointer may alias anything) would otherwise force reloads of it. */
static int inflate_codes(inflater *s, const huffman *lit, const huffman *dist)
{
    inflater t = *s;
    uint8_t *const out = s->out;
    const size_t cap = s->cap;
    int rc = LP_OK;
    for (;;) {
        int sym, dsym;
        uint32_t extra = 0;
        size_t length, distance;
        if ((rc = huffman_decode(&t, lit, &sym)) != LP_OK)
            break;
        if (sym < 256) {
            if (t.n >= cap) {
                rc = lp_set_error(LP_EFORMAT, "zlib: decompressed data larger "
                                  "than the %zu bytes expected", cap);
                break;
            }
            out[t.n++] = (uint8_t)sym;
            continue;
        }
        if (sym == 256)
            break;
        sym -= 257;
        if (sym >= 29) {
            rc = lp_set_error(LP_EFORMAT, "zlib: invalid length symbol %d",
                              sym + 257);
            break;
        }
        if ((rc = getbits(&t, len_extra[sym], &extra)) != LP_OK)
            break;
        length = len_base[sym] + extra;
        if ((rc = huffman_decode(&t, dist, &dsym)) != LP_OK)
            break;
        if (dsym >= 30) {
            rc = lp_set_error(LP_EFORMAT, "zlib: invalid distance symbol %d",
                              dsym);
            break;
        }
        if ((rc = getbits(&t, dist_extra[dsym], &extra)) != LP_OK)
            break;
        distance = dist_base[dsym] + extra;
        if (distance > t.n) {
            rc = lp_set_error(LP_EFORMAT, "zlib: distance %zu reaches before "
                              "the start of the data (%zu bytes decoded)",
                              distance, t.n);
            break;
        }
        if (length > cap - t.n) {
            rc = lp_set_error(LP_EFORMAT, "zlib: decompressed data larger "
                              "than the %zu bytes expected", cap);
            break;
        }
        copy_match(out + t.n, distance, length);
        t.n += length;
    }
    *s = t;
    return rc;
}

static int inflate_fixed(inflater *s, huffman *lit, huffman *dist)
{
    uint8_t lengths[MAX_SYMBOLS];
    int i = 0;
    for (; i < 144; i++)
        lengths[i] = 8;
    for (; i < 256; i++)
        lengths[i] = 9;
    for (; i < 280; i++)
        lengths[i] = 7;
    for (; i < 288; i++)
        lengths[i] = 8;
    LP_TRY(huffman_build(lit, lengths, 288, LITLEN));
    /* 32 five-bit codes; symbols 30 and 31 are rejected when decoded */
    memset(lengths, 5, 32);
    LP_TRY(huffman_build(dist, lengths, 32, DIST));
    return inflate_codes(s, lit, dist);
}

static int inflate_dynamic(inflater *s, huffman *lit, huffman *dist)
{
    static const uint8_t order[19] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                      11, 4,  12, 3, 13, 2, 14, 1, 15};
    uint8_t lengths[286 + 30];
    uint8_t cl_lengths[19];
    uint32_t hlit = 0, hdist = 0, hclen = 0, v = 0;
    int n = 0, total;

    LP_TRY(getbits(s, 5, &hlit));
    LP_TRY(getbits(s, 5, &hdist));
    LP_TRY(getbits(s, 4, &hclen));
    hlit += 257;
    hdist += 1;
    hclen += 4;
    if (hlit > 286 || hdist > 30)
        return lp_set_error(LP_EFORMAT, "zlib: too many length or distance "
                            "symbols (%u, %u)", hlit, hdist);
    memset(cl_lengths, 0, sizeof cl_lengths);
    for (uint32_t i = 0; i < hclen; i++) {
        LP_TRY(getbits(s, 3, &v));
        cl_lengths[order[i]] = (uint8_t)v;
    }
    /* `lit` serves as scratch for the code-length code */
    LP_TRY(huffman_build(lit, cl_lengths, 19, CODE_LENGTHS));

    total = (int)(hlit + hdist);
    while (n < total) {
        int sym, repeat;
        uint8_t value;
        LP_TRY(huffman_decode(s, lit, &sym));
        if (sym < 16) {
            lengths[n++] = (uint8_t)sym;
            continue;
        }
        if (sym == 16) {
            if (n == 0)
                return lp_set_error(LP_EFORMAT, "zlib: repeat of a code "
                                    "length with no previous length");
            value = lengths[n - 1];
            LP_TRY(getbits(s, 2, &v));
            repeat = 3 + (int)v;
        } else if (sym == 17) {
            value = 0;
            LP_TRY(getbits(s, 3, &v));
            repeat = 3 + (int)v;
        } else {
            value = 0;
            LP_TRY(getbits(s, 7, &v));
            repeat = 11 + (int)v;
        }
        if (repeat > total - n)
            return lp_set_error(LP_EFORMAT, "zlib: code-length repeat runs "
                                "past the end of the lengths");
        memset(lengths + n, value, (size_t)repeat);
        n += repeat;
    }
    if (lengths[256] == 0)
        return lp_set_error(LP_EFORMAT, "zlib: the block has no "
                            "end-of-block code");
    LP_TRY(huffman_build(lit, lengths, (int)hlit, LITLEN));
    LP_TRY(huffman_build(dist, lengths + hlit, (int)hdist, DIST));
    return inflate_codes(s, lit, dist);
}

int lp_inflate_zlib(uint8_t *out, size_t out_cap, size_t *out_len,
                    const uint8_t *in, size_t in_len)
{
    inflater s;
    huffman *tables;
    uint32_t final = 0, type, stored_adler, adler;
    int rc = LP_OK;

    if (out_len != NULL)
        *out_len = 0;
    if (out_len == NULL || (in == NULL && in_len > 0) ||
        (out == NULL && out_cap > 0))
        return lp_set_error(LP_EINVAL, "lp_inflate_zlib: NULL argument");
    if (in_len < 2)
        return lp_set_error(LP_EFORMAT, "zlib: stream is truncated (%zu "
                            "bytes)", in_len);
    /* RFC 1950 header: CM = 8 (deflate), window <= 32 KiB, check bits */
    if ((in[0] & 0x0Fu) != 8 || (in[0] >> 4) > 7)
        return lp_set_error(LP_EFORMAT, "zlib: unsupported compression "
                            "method/window (CMF 0x%02x)", in[0]);
    if ((((unsigned)in[0] << 8) | in[1]) % 31u != 0)
        return lp_set_error(LP_EFORMAT, "zlib: header check bits are wrong");
    if (in[1] & 0x20u)
        return lp_set_error(LP_EFORMAT, "zlib: preset dictionaries are not "
                            "supported");

    tables = lp_alloc(2, sizeof(huffman));
    if (tables == NULL)
        return LP_ENOMEM;
    memset(&s, 0, sizeof s);
    s.in = in;
    s.len = in_len;
    s.pos = 2;
    s.out = out;
    s.cap = out_cap;

    while (rc == LP_OK && !final) {
        rc = getbits(&s, 1, &final);
        if (rc == LP_OK)
            rc = getbits(&s, 2, &type);
        if (rc != LP_OK)
            break;
        if (type == 0)
            rc = inflate_stored(&s);
        else if (type == 1)
            rc = inflate_fixed(&s, &tables[0], &tables[1]);
        else if (type == 2)
            rc = inflate_dynamic(&s, &tables[0], &tables[1]);
        else
            rc = lp_set_error(LP_EFORMAT, "zlib: invalid block type 3");
    }
    lp_free(tables);
    if (rc != LP_OK)
        return rc;

    align_to_byte(&s);
    if (s.len - s.pos < 4)
        return lp_set_error(LP_EFORMAT, "zlib: the Adler-32 checksum at the "
                            "end of the stream is missing");
    stored_adler = ((uint32_t)in[s.pos] << 24) | ((uint32_t)in[s.pos + 1] << 16) |
                   ((uint32_t)in[s.pos + 2] << 8) | in[s.pos + 3];
    adler = lp_adler32(1, out, s.n);
    if (adler != stored_adler)
        return lp_set_error(LP_EFORMAT, "zlib: Adler-32 mismatch (stored "
                            "0x%08x, computed 0x%08x)", stored_adler, adler);
    *out_len = s.n;
    return LP_OK;
}
