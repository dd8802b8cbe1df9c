#!/bin/sh
# test_cli.sh — the `loupe` program end to end: the shipped models on the
# shipped images, machine-readable output, and bad input of every kind
# (each must give a one-line error naming the file, exit status 2, and
# leave no output file behind).
#   usage: tests/test_cli.sh BUILD_DIR
# Prints "N passed, N failed" and exits non-zero on any failure.
# LOUPE_RUN, when set, prefixes every loupe invocation (make valgrind sets
# it to "valgrind -q --error-exitcode=1 ...").

LOUPE="${LOUPE_RUN:+$LOUPE_RUN }${1:-build}/loupe"
T=$(mktemp -d "${TMPDIR:-/tmp}/loupe-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
R=weights/resnet20_cifar10.lpw
V=weights/vit_mnist.lpw
CAT=weights/samples/cat_0000.jpg

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# expect_ok NAME CMD... : exit status 0
expect_ok() {
    name=$1; shift
    if "$@" >"$T/out" 2>"$T/err"; then ok; else bad "$name (exit $?): $(cat "$T/err")"; fi
}

# expect_err NAME PATTERN CMD... : exit 2, exactly one stderr line
# matching PATTERN, no crash, nothing on stdout
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

# ---- working paths ----------------------------------------------------
expect_ok "predict cat" $LOUPE predict --model $R --image $CAT --topk 3
grep -q "1\..*cat" "$T/out" && ok || bad "predict cat: top-1 is not cat: $(cat "$T/out")"
expect_ok "predict json" $LOUPE predict --model $R --image $CAT --json
grep -q '"label": "cat"' "$T/out" && ok || bad "predict json: $(cat "$T/out")"
expect_ok "predict mnist" $LOUPE predict --model $V --image weights/samples/mnist_7_0000.png --topk 1
grep -q "1\..* 7 " "$T/out" && ok || bad "predict mnist: $(cat "$T/out")"
expect_ok "predict logits-out" $LOUPE predict --model $R --image $CAT --image weights/samples/dog_0000.jpg --logits-out "$T/y.npy"
[ -s "$T/y.npy" ] && ok || bad "logits-out: no file"
expect_ok "predict --input" $LOUPE capture --model $R --image $CAT --layer input --out "$T/x.npy"
expect_ok "predict --input npy" $LOUPE predict --model $R --input "$T/x.npy" --topk 1
grep -q "cat" "$T/out" && ok || bad "predict --input: $(cat "$T/out")"
expect_ok "capture grad" $LOUPE capture --model $R --image $CAT --layer layer3.2.relu \
    --out "$T/a.npy" --grad-out "$T/g.npy" --target 3
[ -s "$T/a.npy" ] && [ -s "$T/g.npy" ] && ok || bad "capture: missing outputs"
# npy_shape FILE "(1, 50, 64)": the array's shape, read from its header
npy_shape() { head -c 128 "$1" | grep -a -q "'shape': $2" && ok || bad "$1: shape is not $2"; }
M7=weights/samples/mnist_7_0000.png
expect_ok "capture tokens" $LOUPE capture --model $V --image $M7 \
    --layer transformer.layers.0.1.norm --out "$T/tok.npy" --grad-out "$T/gtok.npy"
npy_shape "$T/tok.npy" "(1, 50, 64)"
npy_shape "$T/gtok.npy" "(1, 50, 64)"
expect_ok "capture q view" $LOUPE capture --model $V --image $M7 \
    --layer transformer.layers.5.0.fn.q --out "$T/q.npy" --grad-out "$T/gq.npy"
npy_shape "$T/q.npy" "(1, 50, 256)"
expect_ok "capture pattern" $LOUPE capture --model $V --image $M7 --image $M7 \
    --layer 'transformer.layers.*.0.fn.probs' --out "$T/probs" --grad-out "$T/gprobs"
[ "$(wc -l <"$T/out")" -eq 6 ] && [ "$(ls "$T/probs" | wc -l)" -eq 6 ] &&
    [ "$(ls "$T/gprobs" | wc -l)" -eq 6 ] && ok || bad "capture pattern: $(cat "$T/out")"
npy_shape "$T/probs/transformer.layers.3.0.fn.probs.npy" "(2, 4, 50, 50)"
expect_ok "capture kind" $LOUPE capture --model $R --image $CAT --layer kind:relu --out "$T/relus"
[ "$(ls "$T/relus" | wc -l)" -eq 19 ] && ok || bad "capture kind:relu: $(ls "$T/relus" | wc -l) files"
expect_ok "layers" $LOUPE layers --model $V
grep -q "transformer.layers.5" "$T/out" && ok || bad "layers: $(head -3 "$T/out")"
expect_ok "inspect verify" $LOUPE inspect $R --verify
expect_ok "threads" $LOUPE --threads 1 predict --model $R --image $CAT
expect_ok "help" $LOUPE --help
expect_ok "predict help" $LOUPE predict --help

# ---- bad weight files ---------------------------------------------------
head -c 1000 $R >"$T/trunc.lpw"
expect_err "truncated lpw" "trunc.lpw" $LOUPE predict --model "$T/trunc.lpw" --image $CAT
printf 'GGUF\0\0\0\0' >"$T/magic.lpw"; head -c 5000 $R | tail -c 4992 >>"$T/magic.lpw"
expect_err "wrong magic" "magic.lpw" $LOUPE predict --model "$T/magic.lpw" --image $CAT
cp $R "$T/flip.lpw"
printf '\377' | dd of="$T/flip.lpw" bs=1 seek=600000 conv=notrunc 2>/dev/null
expect_err "bit flip in payload" "flip.lpw" $LOUPE inspect "$T/flip.lpw" --verify
: >"$T/empty.lpw"
expect_err "empty lpw" "empty.lpw" $LOUPE predict --model "$T/empty.lpw" --image $CAT
expect_err "missing lpw" "nope.lpw" $LOUPE predict --model "$T/nope.lpw" --image $CAT
expect_err "image as model" "cat_0000.jpg" $LOUPE layers --model $CAT
# patch_at FILE OFFSET BYTES(printf escapes): overwrite bytes in place
patch_at() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null; }
cp $R "$T/v2.lpw"; patch_at "$T/v2.lpw" 12 '\002'
expect_err "lpw major version 2" "version 2" $LOUPE predict --model "$T/v2.lpw" --image $CAT
cp $R "$T/be.lpw"; patch_at "$T/be.lpw" 8 '\001\002\003\004'
expect_err "lpw big-endian" "big-endian" $LOUPE predict --model "$T/be.lpw" --image $CAT
cp $R "$T/count.lpw"; patch_at "$T/count.lpw" 56 '\377\377\377\000'
expect_err "lpw oversized tensor count" "count.lpw" $LOUPE predict --model "$T/count.lpw" --image $CAT

# ---- bad images ------------------------------------------------------------
head -c 400 $CAT >"$T/trunc.jpg"
expect_err "truncated jpeg" "trunc.jpg" $LOUPE predict --model $R --image "$T/trunc.jpg"
cp weights/samples/chelsea.png "$T/crc.png"; patch_at "$T/crc.png" 200 'XXXX'
expect_err "corrupt png chunk" "CRC mismatch" $LOUPE predict --model $R --image "$T/crc.png"
# the SOF0 marker of cat_0000.jpg is at byte 158: its height (bytes 163-164) -> 0
cp $CAT "$T/h0.jpg"; patch_at "$T/h0.jpg" 163 '\000\000'
expect_err "jpeg height 0" "height 0" $LOUPE predict --model $R --image "$T/h0.jpg"
printf 'BM\066\000\000\000\000\000\000\000\066\000\000\000\050\000\000\000' >"$T/short.bmp"
expect_err "truncated bmp header" "short.bmp" $LOUPE predict --model $R --image "$T/short.bmp"
printf "\223NUMPY\001\000\020\000{'descr': 'zz'}\n" >"$T/dtype.npy"
expect_err "npy bad dtype" "dtype.npy" $LOUPE predict --model $R --input "$T/dtype.npy"
head -c 300 weights/samples/chelsea.png >"$T/trunc.png"
expect_err "truncated png" "trunc.png" $LOUPE predict --model $R --image "$T/trunc.png"
printf 'P6\n0 0\n255\n' >"$T/zero.ppm"
expect_err "0x0 ppm" "zero.ppm" $LOUPE predict --model $R --image "$T/zero.ppm"
printf 'P6\n100000 100000\n255\n' >"$T/huge.ppm"
expect_err "100000^2 ppm" "huge.ppm" $LOUPE predict --model $R --image "$T/huge.ppm"
printf 'P5\n1 100000\n255\n' >"$T/tall.pgm"
expect_err "1x100000 truncated pgm" "tall.pgm" $LOUPE predict --model $R --image "$T/tall.pgm"
printf 'hello' >"$T/what.bmp"
expect_err "not an image" "what.bmp" $LOUPE predict --model $R --image "$T/what.bmp"
# a bad image among good ones: nothing printed for any of them
expect_err "bad image in batch" "trunc.jpg" $LOUPE predict --model $R --image $CAT --image "$T/trunc.jpg"

# ---- bad arrays and arguments ----------------------------------------------
expect_ok "wrong-shape source" $LOUPE capture --model $V --image weights/samples/mnist_7_0000.png --layer input --out "$T/m.npy"
expect_err "wrong-shape npy" "m.npy" $LOUPE predict --model $R --input "$T/m.npy"
head -c 100 "$T/x.npy" >"$T/tr.npy"
expect_err "truncated npy" "tr.npy" $LOUPE predict --model $R --input "$T/tr.npy"
expect_err "unknown layer" "nearest: layer1.0.conv1" $LOUPE capture --model $R --image $CAT --layer layer9.conv --out "$T/no.npy"
[ -e "$T/no.npy" ] && bad "unknown layer: output written" || ok
expect_err "bad target" "target" $LOUPE capture --model $R --image $CAT --layer input --grad-out "$T/no2.npy" --target 10
[ -e "$T/no2.npy" ] && bad "bad target: output written" || ok
expect_err "logits-out bad dir" "nodir" $LOUPE predict --model $R --image $CAT --logits-out "$T/nodir/y.npy"
expect_err "unknown option" "--frobnicate" $LOUPE predict --model $R --frobnicate
expect_err "unknown command" "frobnicate" $LOUPE frobnicate
expect_err "bad threads" "threads" $LOUPE --threads 0 predict --model $R --image $CAT
expect_err "no images" "image" $LOUPE predict --model $R

# ---- explain ------------------------------------------------------------------
expect_ok "explain gradcam" $LOUPE explain --model $R --image $CAT --method gradcam,saliency \
    --out "$T/maps.npy" --png "$T/cat.png" --quiet
[ -s "$T/maps.gradcam.npy" ] && [ -s "$T/cat.saliency.png" ] && ok || bad "explain: outputs missing: $(ls "$T")"
expect_ok "explain vit rollout" $LOUPE explain --model $V --image weights/samples/mnist_7_0000.png \
    --method rollout --target label:7 --out "$T/roll.npy" --quiet
expect_err "explain unknown method" "gradcm" $LOUPE explain --model $R --image $CAT --method gradcm --out "$T/e1.npy"
expect_err "explain vit method on resnet" "Vision Transformer" $LOUPE explain --model $R --image $CAT --method rollout --out "$T/e2.npy"
expect_err "explain target range" "out of range" $LOUPE explain --model $R --image $CAT --method saliency --target 12 --out "$T/e3.npy"
expect_err "explain unknown label" "zebra" $LOUPE explain --model $R --image $CAT --method saliency --target label:zebra --out "$T/e4.npy"
expect_err "explain unknown layer" "nearest: layer1, layer2, layer3" $LOUPE explain --model $R --image $CAT --method gradcam --layer layer9 --quiet --out "$T/e5.npy"
expect_err "explain layer without grid" "grid" $LOUPE explain --model $R --image $CAT --method gradcam --layer linear --quiet --out "$T/e6.npy"
expect_err "explain grid too large" "grid" $LOUPE explain --model $R --image $CAT --method rise --grid 64 --quiet --out "$T/e7.npy"
expect_err "explain lime grid too large" "grid" $LOUPE explain --model $R --image $CAT --method lime --segments grid --grid 40 --quiet --out "$T/e7b.npy"
expect_err "explain bad segments" "segments" $LOUPE explain --model $R --image $CAT --method lime --segments slic --quiet --out "$T/e7c.npy"
expect_ok "explain lime quickshift" $LOUPE explain --model $R --image $CAT --method lime --lime-samples 20 --quiet --out "$T/lime.npy"
expect_err "explain bad quadrature" "quadrature" $LOUPE explain --model $R --image $CAT --method integrated-gradients --quadrature simpson --out "$T/e8.npy"
for e in e1 e2 e3 e4 e5 e6 e7 e8; do [ -e "$T/$e.npy" ] && bad "explain $e: output written"; done

echo "cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
