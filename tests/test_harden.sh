#!/bin/sh
# test_harden.sh — failure behaviour of the `loupe` program:
#   - outputs that cannot be written (missing directory, a file where a
#     directory should be, a read-only directory, a full disk) give exit
#     status 2, one line on stderr naming the path, and leave neither the
#     output nor a temporary file behind (an existing output is untouched);
#   - --max-memory refuses a weight file, an image, an array or a pass
#     that would need more, before allocating it, with exit status 2.
# The full-disk case mounts a 64 KiB tmpfs: as root, or in a user
# namespace (unshare -rm) otherwise; it is skipped, with a message, where
# neither works (e.g. a container without CAP_SYS_ADMIN).
#   usage: tests/test_harden.sh BUILD_DIR
# Prints "N passed, N failed" and exits non-zero on any failure.

BUILD=${1:-build}
LOUPE=$BUILD/loupe
T=$(mktemp -d "${TMPDIR:-/tmp}/loupe-harden.XXXXXX")
trap 'chmod -R u+w "$T" 2>/dev/null; umount "$T/full" 2>/dev/null; rm -rf "$T"' EXIT
pass=0
fail=0
R=weights/resnet20_cifar10.lpw
CAT=weights/samples/cat_0000.jpg
DOG=weights/samples/dog_0000.jpg

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# expect_err NAME PATTERN CMD... : exit 2, exactly one stderr line
# matching PATTERN, nothing on stdout
expect_err() {
    name=$1; pattern=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    lines=$(wc -l <"$T/err")
    if [ $rc -ne 2 ]; then bad "$name: exit $rc, want 2: $(head -c 300 "$T/err")"
    elif [ "$lines" -ne 1 ]; then bad "$name: $lines lines on stderr: $(head -c 300 "$T/err")"
    elif ! grep -q -- "$pattern" "$T/err"; then bad "$name: '$(cat "$T/err")' lacks '$pattern'"
    elif [ -s "$T/out" ]; then bad "$name: wrote to stdout: $(head -c 200 "$T/out")"
    else ok; fi
}

# only_entries NAME DIR N : DIR holds exactly N entries (no temporaries)
only_entries() {
    n=$(ls -A "$2" | wc -l)
    if [ "$n" -eq "$3" ]; then ok; else bad "$1: $2 holds $(ls -A "$2" | tr '\n' ' ')"; fi
}

# ---- a full disk: a 64 KiB tmpfs ----------------------------------------------
# The capture of conv1 for two images is 2 x 16 x 32 x 32 floats (128 KiB).
full_disk_case() {
    dir=$1
    echo old >"$dir/act.npy"
    expect_err "full disk: capture over a file" "act.npy" $LOUPE capture --model $R \
        --image $CAT --image $DOG --layer conv1 --out "$dir/act.npy"
    grep -q "No space left" "$T/err" && ok || bad "full disk: not ENOSPC: $(cat "$T/err")"
    [ "$(cat "$dir/act.npy")" = old ] && ok || bad "full disk: the old file changed"
    rm -f "$dir/act.npy"
    expect_err "full disk: capture" "big.npy" $LOUPE capture --model $R --image $CAT \
        --image $DOG --layer conv1 --out "$dir/big.npy"
    only_entries "full disk: capture" "$dir" 0
    # 18 heatmaps of about 7.5 KiB: those written before the disk filled
    # up are complete
    $LOUPE explain --model $R --image $CAT --image $DOG --image weights/samples/ship_0000.jpg \
        --image weights/samples/frog_0000.jpg --image weights/samples/horse_0000.jpg \
        --image weights/samples/truck_0000.jpg --method saliency,gradcam,gradxinput \
        --quiet --png "$dir/map.png" >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc -ne 2 ] || [ "$(wc -l <"$T/err")" -ne 1 ]; then
        bad "full disk: explain --png: exit $rc: $(head -c 300 "$T/err")"
    else ok; fi
    [ "$(ls -A "$dir" | grep -c '\.tmp\.')" -eq 0 ] && ok || bad "full disk: temporaries: $(ls -A "$dir")"
    for f in "$dir"/*.png; do
        [ -e "$f" ] || continue
        $LOUPE predict --model $R --image "$f" >/dev/null 2>&1 && ok || bad "full disk: $f is not a whole PNG"
    done
}

# Inside a user namespace (see the full-disk case below) only that case runs.
if [ -n "$LOUPE_HARDEN_FULL" ]; then
    full_disk_case "$LOUPE_HARDEN_FULL"
    echo "harden: $pass passed, $fail failed"
    [ $fail -eq 0 ]
    exit
fi

# ---- unwritable output paths ------------------------------------------------
mkdir "$T/w"
: >"$T/w/file"
for out in "$T/w/nodir/y.npy" "$T/w/file/y.npy"; do
    expect_err "logits-out $out" "$out" $LOUPE predict --model $R --image $CAT --logits-out "$out"
    expect_err "explain --out $out" "$out" $LOUPE explain --model $R --image $CAT \
        --method saliency --quiet --out "$out"
    expect_err "explain --png $out" "${out%.npy}.png" $LOUPE explain --model $R --image $CAT \
        --method saliency --quiet --png "${out%.npy}.png"
    expect_err "capture --out $out" "$out" $LOUPE capture --model $R --image $CAT \
        --layer input --out "$out"
done
only_entries "unwritable paths" "$T/w" 1

# a read-only directory (root ignores the permission bits: skip then)
mkdir "$T/ro"
echo old >"$T/ro/y.npy"
chmod 555 "$T/ro"
if [ "$(id -u)" -ne 0 ]; then
    expect_err "read-only dir" "$T/ro/y.npy" $LOUPE predict --model $R --image $CAT --logits-out "$T/ro/y.npy"
    [ "$(cat "$T/ro/y.npy")" = old ] && ok || bad "read-only dir: the old file changed"
    only_entries "read-only dir" "$T/ro" 1
else
    echo "harden: read-only directory case skipped (running as root)"
fi
chmod 755 "$T/ro"

# ---- a full disk ----------------------------------------------------------------
mkdir "$T/full"
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=64k tmpfs "$T/full" 2>/dev/null; then
    full_disk_case "$T/full"
    umount "$T/full"
elif [ "$(id -u)" -ne 0 ] && command -v unshare >/dev/null 2>&1 &&
     unshare -rm sh -c "mount -t tmpfs -o size=64k tmpfs '$T/full'" 2>/dev/null; then
    # run this script's full-disk case inside a user + mount namespace
    unshare -rm sh -c "mount -t tmpfs -o size=64k tmpfs '$T/full' &&
        LOUPE_HARDEN_FULL='$T/full' sh '$0' '$BUILD'" >"$T/ns.out" 2>&1
    if grep -q "^harden: .*, 0 failed" "$T/ns.out"; then ok; else bad "full disk (user namespace): $(cat "$T/ns.out")"; fi
else
    echo "harden: full-disk case skipped (cannot mount a tmpfs here: needs root with CAP_SYS_ADMIN or user namespaces)"
fi

# ---- --max-memory --------------------------------------------------------------
expect_err "max-memory weights" "more than --max-memory" $LOUPE --max-memory 512K predict \
    --model $R --image $CAT
grep -q "resnet20_cifar10.lpw" "$T/err" && ok || bad "max-memory weights: no file name: $(cat "$T/err")"
# a JPEG whose frame header promises 16000 x 16000 pixels (1.5 GB to decode):
# refused at the header, before the (missing) pixel data is looked at
sof=$(od -A n -v -t u1 $CAT | tr -s ' ' '\n' | grep -v '^$' |
      awk 'p == 255 && ($1 == 192 || $1 == 194) { print NR - 2; exit } { p = $1 }')
cp $CAT "$T/huge.jpg"
printf '\076\200\076\200' | dd of="$T/huge.jpg" bs=1 seek=$((sof + 5)) conv=notrunc 2>/dev/null
expect_err "max-memory image" "huge.jpg: JPEG: a 16000x16000 image needs" $LOUPE --max-memory 1G \
    predict --model $R --image "$T/huge.jpg"
expect_err "max-memory batch" "a forward pass of 12 images needs" $LOUPE --max-memory 5M capture \
    --model $R --image $CAT --image $DOG --image $CAT --image $DOG --image $CAT --image $DOG \
    --image $CAT --image $DOG --image $CAT --image $DOG --image $CAT --image $DOG \
    --layer conv1 --out "$T/w/never.npy"
[ -e "$T/w/never.npy" ] && bad "max-memory batch: output written" || ok
expect_err "max-memory syntax" "max-memory" $LOUPE --max-memory 12Q predict --model $R --image $CAT
expect_err "max-memory missing" "max-memory" $LOUPE --max-memory
if $LOUPE --max-memory 64M --threads 1 predict --model $R --image $CAT >"$T/out" 2>"$T/err" &&
   $LOUPE --max-memory none predict --model $R --image $CAT >/dev/null 2>&1; then ok
else bad "max-memory 64M/none: $(cat "$T/err")"; fi

echo "harden: $pass passed, $fail failed"
[ $fail -eq 0 ]
