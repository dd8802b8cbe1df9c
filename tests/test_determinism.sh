#!/bin/sh
# test_determinism.sh — the `loupe` program's output files are bit-identical
# with 1 and 2 threads and across two runs with the same arguments:
#   - predict --logits-out for both shipped models;
#   - explain --out and --png for every method of `loupe explain --list`
#     that applies to the model (all of them for the ViT), the random ones
#     included (they are seeded: --seed), with small method options so the
#     whole test takes seconds;
#   - evaluate --out and --csv (a few images, three methods, every
#     per-image metric; with 2 threads the images are shared out).
# Two images per run, so that batched code paths are covered too. With
# LOUPE_TEST_QUICK set (the sanitizer build, 10x slower) the second run
# with 2 threads is left out.
#   usage: tests/test_determinism.sh BUILD_DIR
# Prints "N passed, N failed" and exits non-zero on any failure.

LOUPE=${1:-build}/loupe
T=$(mktemp -d "${TMPDIR:-/tmp}/loupe-det.XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
R=weights/resnet20_cifar10.lpw
V=weights/vit_mnist.lpw
R_IMAGES="--image weights/samples/cat_0000.jpg --image weights/samples/ship_0000.jpg"
V_IMAGES="--image weights/samples/mnist_7_0000.png --image weights/samples/mnist_2_0001.png"
# small, but several batches for the perturbation methods (--batch 16);
# ResNet CAMs on layer1 (16 channels: Score-CAM's forwards)
OPTS="--steps 8 --samples 4 --masks 32 --grid 2 --designs 8 --lime-samples 16 --batch 16 --seed 7"

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# The methods for a model: every listed one, ViT-only ones only for the ViT.
methods_for() {
    $LOUPE explain --list | awk -v vit="$1" '
        NF { if (vit || index($0, "[ViT]") == 0) { printf "%s%s", sep, $1; sep = "," } }'
}

# run LOG THREADS CMD... : run loupe, its messages in LOG
run() {
    run_log=$1; run_threads=$2; shift 2
    OMP_WAIT_POLICY=passive $LOUPE --threads "$run_threads" "$@" >"$run_log" 2>&1
    run_rc=$?
    [ $run_rc -eq 0 ] || bad "$run_log: exit $run_rc: $(tail -c 400 "$run_log")"
    return $run_rc
}

# same NAME DIR_A DIR_B : the two directories hold the same files, byte for byte
same() {
    na=$(ls "$2" | wc -l)
    nb=$(ls "$3" | wc -l)
    if [ "$na" -eq 0 ] || [ "$na" -ne "$nb" ]; then
        bad "$1: $na files in $2, $nb in $3"
        return
    fi
    for f in "$2"/*; do
        b=$(basename "$f")
        if cmp -s "$f" "$3/$b"; then ok; else bad "$1: $b differs"; fi
    done
}

# check NAME MODEL IMAGES METHODS OPTIONS DATA EVAL_METHODS : predict,
# explain and evaluate under 1 thread, 2 threads, 2 threads again; compare
check() {
    name=$1 model=$2 images=$3 methods=$4 extra=$5 data=$6 ev_methods=$7
    runs="t1 t2 t2again"
    [ -n "$LOUPE_TEST_QUICK" ] && runs="t1 t2"
    for tag in $runs; do
        threads=${tag#t}; threads=${threads%again}
        d="$T/$name-$tag"
        mkdir -p "$d"
        run "$d.log" "$threads" predict --model "$model" $images --logits-out "$d/logits.npy" &&
        run "$d.log" "$threads" explain --model "$model" $images --method "$methods" $OPTS $extra \
            --quiet --out "$d/map.npy" --png "$d/map.png" &&
        run "$d.log" "$threads" evaluate --model "$model" --data "$data" --limit 3 \
            --method "$ev_methods" --masks 64 --steps 8 --seed 7 \
            --metric deletion,insertion,mufidelity,stability --mufidelity-samples 20 \
            --stability-samples 3 --sensitivity-samples 3 --quiet \
            --out "$d/ev.json" --csv "$d/ev.csv" &&
        rm -f "$d/ev.json.journal" # its line order follows the threads' finishing order
    done
    same "$name 1 vs 2 threads" "$T/$name-t1" "$T/$name-t2"
    [ -n "$LOUPE_TEST_QUICK" ] || same "$name two runs" "$T/$name-t2" "$T/$name-t2again"
}

check resnet20 $R "$R_IMAGES" "$(methods_for 0)" "--layer layer1" \
    tests/data/cifar10_test_first200.bin saliency,gradcam,rise
check vit_mnist $V "$V_IMAGES" "$(methods_for 1)" "" \
    tests/data/mnist_test_first200-images-idx3-ubyte integrated-gradients,chefer,rise

echo "determinism: $pass passed, $fail failed"
[ $fail -eq 0 ]
