#!/bin/sh
# test_evaluate.sh — `loupe evaluate` end to end on the shipped ResNet-20
# and MNIST ViT: every data source, JSON/CSV output, interrupted runs
# (SIGKILL, then --resume gives the very same files), refusal of a journal
# made with other settings, bad data, bit-identical results for 1 and 2
# threads, and the known orderings on real weights: Grad-CAM and RISE beat
# a random map on deletion and insertion, saliency decorrelates under
# cascading randomisation (Adebayo et al. 2018).
#   usage: tests/test_evaluate.sh BUILD_DIR
# Prints "N passed, N failed" and exits non-zero on any failure.

LOUPE=${1:-build}/loupe
T=$(mktemp -d "${TMPDIR:-/tmp}/loupe-eval.XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
R=weights/resnet20_cifar10.lpw
V=weights/vit_mnist.lpw
CIFAR=tests/data/cifar10_test_first200.bin
MNIST=tests/data/mnist_test_first200-images-idx3-ubyte
export OMP_WAIT_POLICY=passive
# 100 images for the orderings; 20 under the sanitizers (LOUPE_TEST_QUICK)
# and in builds without a SIMD GEMM kernel, which are 10x slower
N=100
[ -n "$LOUPE_TEST_QUICK" ] && N=20
$LOUPE info | grep -q "gemm scalar" && N=20

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

expect_ok() {
    name=$1; shift
    if "$@" >"$T/out" 2>"$T/err"; then ok; else bad "$name (exit $?): $(cat "$T/err")"; fi
}

expect_err() {
    name=$1; pattern=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    lines=$(wc -l <"$T/err")
    if [ $rc -ne 2 ]; then bad "$name: exit $rc, want 2: $(head -c 300 "$T/err")"
    elif [ "$lines" -ne 1 ]; then bad "$name: $lines lines on stderr: $(head -c 300 "$T/err")"
    elif ! grep -q -- "$pattern" "$T/err"; then bad "$name: '$(cat "$T/err")' lacks '$pattern'"
    else ok; fi
}

# mean METHOD METRIC CSV: the mean of a column of rows
mean() {
    awk -F, -v m="$1" -v k="$2" '$6 == m && $7 == k && $8 != "" { s += $8; n++ }
        END { if (n) printf "%.6f", s / n; else print "nan" }' "$3"
}

# gt A B MARGIN: A > B + MARGIN
gt() { awk -v a="$1" -v b="$2" -v d="$3" 'BEGIN { exit !(a > b + d) }'; }

# ---- data sources ---------------------------------------------------------
mkdir -p "$T/dir/cat" "$T/dir/dog" "$T/flat"
cp weights/samples/cat_0000.jpg "$T/dir/cat/a.jpg"
cp weights/samples/dog_0000.jpg "$T/dir/dog/b.jpg"
cp weights/samples/cat_0000.jpg "$T/flat/one.jpg"
cp weights/samples/ship_0000.jpg "$T/flat/two with space.jpg"
printf '# labels\none.jpg cat\ntwo with space.jpg 8\n' >"$T/labels.txt"
expect_ok "class folders" $LOUPE evaluate --model $R --data "$T/dir" --method saliency \
    --metric deletion --csv "$T/d.csv" --target label --quiet
grep -q '^0,cat/a.jpg,3,' "$T/d.csv" && grep -q '^1,dog/b.jpg,5,' "$T/d.csv" && ok \
    || bad "class folders: $(head -3 "$T/d.csv")"
expect_ok "labels file" $LOUPE evaluate --model $R --data "$T/flat" --labels "$T/labels.txt" \
    --method gradcam --metric insertion --csv "$T/l.csv" --quiet
grep -q '^1,two with space.jpg,8,' "$T/l.csv" && ok || bad "labels file: $(cat "$T/l.csv")"
expect_ok "cifar bin" $LOUPE evaluate --model $R --data $CIFAR --limit 3 --method saliency \
    --metric deletion,insertion,mufidelity --protocol xplique --out "$T/c.json" --quiet
grep -q '"skipped": 0' "$T/c.json" && grep -q '"metric": "mufidelity-pearson"' "$T/c.json" \
    && ok || bad "cifar bin json: $(head -c 400 "$T/c.json")"
expect_ok "mnist idx" $LOUPE evaluate --model $V --data $MNIST --limit 2 \
    --method rollout,chefer --metric deletion --quiet
grep -q "rollout .*deletion" "$T/out" && ok || bad "mnist idx: $(cat "$T/out")"
expect_ok "stability" $LOUPE evaluate --model $R --data $CIFAR --limit 2 --method gradcam \
    --metric stability --stability-samples 3 --sensitivity-samples 3 --quiet
grep -q "gradcam .*sensitivity" "$T/out" && ok || bad "stability: $(cat "$T/out")"

# MeGe with two identical "fold" models: every pair agrees with distance 0
expect_ok "mege" $LOUPE evaluate --model $R --data $CIFAR --limit 4 --method gradcam \
    --metric mege --models $R,$R --out "$T/g.json" --quiet
grep -q '"method": "gradcam", "metric": "mege", "n": [1-9][0-9]*, "mean": 1,' "$T/g.json" && ok \
    || bad "mege of identical models is not 1: $(grep '"mege"' "$T/g.json" | tail -1)"

# ---- interrupted runs lose nothing ---------------------------------------------
ARGS="--model $R --data $CIFAR --limit 12 --method saliency,rise --masks 300 \
      --metric deletion,insertion --quiet"
expect_ok "straight run" $LOUPE evaluate $ARGS --out "$T/a.json" --csv "$T/a.csv"
$LOUPE evaluate $ARGS --out "$T/b.json" --csv "$T/b.csv" >/dev/null 2>&1 &
pid=$!
# kill it once a few images are in the journal, in the middle of the run
k=0
while [ $k -lt 600 ] && [ "$(cat "$T/b.json.journal" 2>/dev/null | wc -l)" -lt 4 ]; do
    sleep 0.05; k=$((k + 1))
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
[ ! -e "$T/b.json" ] && ok || bad "killed run left a results file"
# a torn last line, as a kill in the middle of a write would leave
printf '5\t1\t3\ttorn' >>"$T/b.json.journal"
expect_ok "resume" $LOUPE evaluate $ARGS --out "$T/b.json" --csv "$T/b.csv" --resume
cmp -s "$T/a.json" "$T/b.json" && cmp -s "$T/a.csv" "$T/b.csv" && ok \
    || bad "resumed run differs from the straight one"
expect_ok "resume done" $LOUPE evaluate $ARGS --out "$T/b.json" --resume
cmp -s "$T/a.json" "$T/b.json" && ok || bad "second resume changed the file"
expect_err "resume other settings" "different settings (methods differs)" \
    $LOUPE evaluate --model $R --data $CIFAR --limit 12 --method gradcam --metric deletion \
    --out "$T/b.json" --resume --quiet
# the same path and count, other images: the data's fingerprint differs
cp $CIFAR "$T/other.bin"
printf '\377' | dd of="$T/other.bin" bs=1 seek=100 conv=notrunc 2>/dev/null
expect_ok "other data, first run" $LOUPE evaluate --model $R --data "$T/other.bin" --limit 2 \
    --method saliency --metric deletion --out "$T/o.json" --quiet
cp $CIFAR "$T/other.bin"
expect_err "resume other data" "different settings (data-crc32c differs)" \
    $LOUPE evaluate --model $R --data "$T/other.bin" --limit 2 --method saliency \
    --metric deletion --out "$T/o.json" --resume --quiet

# ---- one and two threads, either parallel choice, give the same bytes --------------------------------------
expect_ok "threads 1" $LOUPE --threads 1 evaluate $ARGS --out "$T/t1.json"
expect_ok "threads 2" $LOUPE --threads 2 evaluate $ARGS --out "$T/t2.json"
cmp -s "$T/t1.json" "$T/t2.json" && ok || bad "1 and 2 threads differ"
# 2 threads share out the images here (--parallel auto at 32x32); the
# other choice splits the kernels instead: the same bytes again
expect_ok "threads 2 batches" $LOUPE --threads 2 evaluate $ARGS --parallel batches --out "$T/tb.json"
cmp -s "$T/t1.json" "$T/tb.json" && ok || bad "--parallel batches differs"
expect_err "bad parallel" "--parallel" $LOUPE evaluate $ARGS --parallel cores

# ---- bad data ----------------------------------------------------------------------
mkdir -p "$T/empty" "$T/mixed/cat"
expect_err "empty dir" "no images" $LOUPE evaluate --model $R --data "$T/empty" \
    --method saliency --metric deletion
expect_err "missing data" "no such file" $LOUPE evaluate --model $R --data "$T/nope" \
    --method saliency --metric deletion
expect_err "unknown metric" "unknown metric" $LOUPE evaluate --model $R --data $CIFAR \
    --method saliency --metric delet
expect_err "unknown method" "saliency" $LOUPE evaluate --model $R --data $CIFAR \
    --method salency --metric deletion
expect_err "missing labels file" "No such file" $LOUPE evaluate --model $R --data "$T/flat" \
    --labels "$T/nolabels.txt" --method saliency --metric deletion
printf 'one.jpg zebra\n' >"$T/badlabels.txt"
expect_err "unknown class" "'zebra'" $LOUPE evaluate --model $R --data "$T/flat" \
    --labels "$T/badlabels.txt" --method saliency --metric deletion
mkdir -p "$T/badclass/zebra"
expect_err "unknown class folder" "'zebra'" $LOUPE evaluate --model $R --data "$T/badclass" \
    --method saliency --metric deletion
cp weights/samples/cat_0000.jpg "$T/mixed/cat/a.jpg"
head -c 300 weights/samples/cat_0000.jpg >"$T/mixed/cat/b.jpg"
cp weights/samples/cat_0000.jpg "$T/mixed/cat/c.jpg"
expect_ok "corrupt image skipped" $LOUPE evaluate --model $R --data "$T/mixed" \
    --method saliency --metric deletion --out "$T/m.json" --quiet
grep -q "warning: skipping cat/b.jpg" "$T/err" && grep -q '"skipped": 1' "$T/m.json" && ok \
    || bad "corrupt image: $(cat "$T/err")"
expect_err "vit method on cnn" "Vision Transformer" $LOUPE evaluate --model $R --data $CIFAR \
    --method rollout --metric deletion
expect_err "mege without models" "--models" $LOUPE evaluate --model $R --data $CIFAR \
    --method saliency --metric mege

# ---- known orderings on real weights ---------------------------------------------------
expect_ok "orderings" $LOUPE evaluate --model $R --data $CIFAR --limit $N \
    --method gradcam,rise,random --masks 500 --metric deletion,insertion --csv "$T/o.csv" --quiet
for m in gradcam rise; do
    d=$(mean $m deletion "$T/o.csv"); dr=$(mean random deletion "$T/o.csv")
    i=$(mean $m insertion "$T/o.csv"); ir=$(mean random insertion "$T/o.csv")
    gt "$dr" "$d" 0.02 && ok || bad "$m deletion $d is not clearly below random's $dr"
    gt "$i" "$ir" 0.05 && ok || bad "$m insertion $i is not clearly above random's $ir"
done
expect_ok "randomization" $LOUPE evaluate --model $R --data $CIFAR --limit 10 \
    --method saliency --metric randomization --csv "$T/r.csv" --quiet
first=$(mean saliency "randomization@linear" "$T/r.csv")
last=$(mean saliency randomization "$T/r.csv")
gt "$first" "$last" 0.3 && gt 0.3 "$last" 0 && ok \
    || bad "saliency does not decorrelate: first stage $first, last $last"

echo "evaluate: $pass passed, $fail failed"
[ $fail -eq 0 ]
