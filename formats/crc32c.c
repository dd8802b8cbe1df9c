/*
 * crc32c.c — CRC-32C (Castagnoli), the checksum of the .lpw format.
 *
 * Polynomial 0x1EDC6F41, bit-reflected 0x82F63B78, initial value and
 * final xor 0xFFFFFFFF (RFC 3720 §B.4). lp_crc32c follows zlib's crc32
 * convention: pass 0 to start and the previous result to continue; the
 * inversions happen inside, so lp_crc32c(0, "123456789", 9) == 0xE3069283.
 *
 * Two implementations compute the same function:
 *  - portable: one table lookup per byte. The table is a compile-time
 *    constant (built by the macros below), so there is no initialisation
 *    and no global mutable state.
 *  - x86-64 SSE4.2: the CRC32 instruction computes exactly this CRC,
 *    8 bytes per instruction. Chosen at run time (cpuid), so a portable
 *    build (NATIVE=0) still uses it where the CPU has it.
 */
#include "internal.h"

#define CRC32C_POLY 0x82F63B78u

/* One bit of the reflected CRC: shift right, xor the polynomial if the
 * bit shifted out was 1. Eight of them process one byte. */
#define CRC_BIT(c) (((c) >> 1) ^ ((0u - ((c) & 1u)) & CRC32C_POLY))
#define CRC_BYTE(c) \
    CRC_BIT(CRC_BIT(CRC_BIT(CRC_BIT(CRC_BIT(CRC_BIT(CRC_BIT(CRC_BIT(c))))))))
#define CRC_T4(n) CRC_BYTE((n) + 0u), CRC_BYTE((n) + 1u), CRC_BYTE((n) + 2u), \
                  CRC_BYTE((n) + 3u)
#define CRC_T16(n) CRC_T4((n) + 0u), CRC_T4((n) + 4u), CRC_T4((n) + 8u), \
                   CRC_T4((n) + 12u)
#define CRC_T64(n) CRC_T16((n) + 0u), CRC_T16((n) + 16u), \
                   CRC_T16((n) + 32u), CRC_T16((n) + 48u)

/* crc_table[b] = CRC register after shifting in byte b from a zero state. */
static const uint32_t crc_table[256] = {
    CRC_T64(0u), CRC_T64(64u), CRC_T64(128u), CRC_T64(192u)
};

/* The raw register update (no inversions), portable. */
static uint32_t crc32c_update_sw(uint32_t state, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        state = crc_table[(state ^ p[i]) & 0xFFu] ^ (state >> 8);
    return state;
}

/* Not in a header: the tests call it to check the portable path on
 * machines where lp_crc32c takes the hardware path. */
uint32_t lp_crc32c_portable(uint32_t crc, const void *data, size_t size);

uint32_t lp_crc32c_portable(uint32_t crc, const void *data, size_t size)
{
    if (size == 0)
        return crc;
    return ~crc32c_update_sw(~crc, (const uint8_t *)data, size);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC32C_HAVE_X86 1

__attribute__((target("sse4.2")))
static uint32_t crc32c_update_hw(uint32_t state, const uint8_t *p, size_t n)
{
    uint64_t s = state;
    /* byte steps up to an 8-byte boundary, then 8 bytes at a time */
    while (n > 0 && ((uintptr_t)p & 7u) != 0) {
        s = __builtin_ia32_crc32qi((uint32_t)s, *p++);
        n--;
    }
    while (n >= 8) {
        uint64_t word;
        __builtin_memcpy(&word, p, 8); /* the instruction takes LE words */
        s = __builtin_ia32_crc32di(s, word);
        p += 8;
        n -= 8;
    }
    while (n > 0) {
        s = __builtin_ia32_crc32qi((uint32_t)s, *p++);
        n--;
    }
    return (uint32_t)s;
}
#endif

uint32_t lp_crc32c(uint32_t crc, const void *data, size_t size)
{
    if (size == 0 || data == NULL)
        return crc;
#ifdef CRC32C_HAVE_X86
    if (__builtin_cpu_supports("sse4.2"))
        return ~crc32c_update_hw(~crc, (const uint8_t *)data, size);
#endif
    return ~crc32c_update_sw(~crc, (const uint8_t *)data, size);
}
