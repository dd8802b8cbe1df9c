#!/bin/sh
# gen_perturb_golden.sh — loupe's own stored maps of its seeded random
# perturbation methods (RISE, LIME, KernelSHAP), which no other tool can
# reproduce draw for draw: tests/test_interp_perturb.c
# (interp_perturb_seeded_goldens) recomputes them through the C API with
# the same options and must match within 1e-4 (relative L2; the GEMM
# kernels of other builds round differently). Rerun only when a change
# to these methods' draws is intended, and say so in the commit.
#   usage: tests/gen_perturb_golden.sh [BUILD_DIR]
set -eu
L="${1:-build}/loupe"
M=weights/resnet20_cifar10.lpw
I="--image weights/samples/cat_0000.jpg --image weights/samples/ship_0000.jpg"
G=tests/golden
# shellcheck disable=SC2086
$L explain --model $M $I --method rise --masks 500 --seed 1 --target top --quiet \
    --out $G/perturb_rise_resnet20.npy
# shellcheck disable=SC2086
$L explain --model $M $I --method lime --seed 2 --target top --quiet \
    --out $G/perturb_lime_resnet20.npy
# shellcheck disable=SC2086
$L explain --model $M $I --method kernelshap --lime-samples 300 --seed 3 --target top --quiet \
    --out $G/perturb_kernelshap_resnet20.npy
# shellcheck disable=SC2086
$L explain --model $M $I --method kernelshap --segments grid --grid 4 --lime-samples 100 \
    --seed 4 --target top --quiet --out $G/perturb_kernelshap_grid_resnet20.npy
