/*
 * fuzz.h — what the fuzz harnesses (tests/fuzz/fuzz_*.c) share.
 *
 * Each harness defines LLVMFuzzerTestOneInput and is linked either with
 * libFuzzer (`make fuzz`, clang -fsanitize=fuzzer) or with replay.c, a
 * plain main() that runs files through it (`make test`). A harness
 * returns 0 for every input: a bug shows up as a sanitizer report or a
 * call to fuzz_fail(), which aborts.
 */
#ifndef LOUPE_FUZZ_H
#define LOUPE_FUZZ_H

#include "loupe.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant that no sanitizer would see: print and abort. */
void fuzz_fail(const char *what) __attribute__((noreturn));

/* Sum of bytes, read so that the sanitizers check the whole buffer. */
uint32_t fuzz_touch(const void *p, size_t size);

/* Read every byte of a decoded image and check its fields. */
void fuzz_check_image(const lp_image *img);

/* Checksum repair, so that mutations get past the checks to the code
 * behind them (an attacker can compute checksums too):
 * fuzz_repair_adler: when `z` (size bytes) is a zlib stream whose only
 * fault is its Adler-32, and it inflates to at most 1 MiB, rewrite its
 * last 4 bytes with the right value; returns 1 if it did.
 * fuzz_repair_png: the same for the image data of a PNG file (its IDAT
 * chunks together), then every chunk CRC. Both work in place. */
int fuzz_repair_adler(uint8_t *z, size_t size);
void fuzz_repair_png(uint8_t *png, size_t size);

/* A small random network of the given kind ("resnet", "bottleneck",
 * "vit", "vit_torchvision", "vit_lucidrains") as .lpw bytes, with seeded
 * weights (lp_alloc'ed; free with lp_free). Used by the CLI harness and
 * by gen_seeds.c for the .lpw corpus. */
int fuzz_tiny_model(const char *kind, uint8_t **bytes, size_t *size);

#endif /* LOUPE_FUZZ_H */
