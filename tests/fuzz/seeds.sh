#!/bin/sh
# seeds.sh GEN_SEEDS OUT — the raw seed inputs of every fuzz harness, in
# OUT/NAME/: copies of real files (tests/data fixtures, weights/, the
# CIFAR-10 sample photos in ../shared/data) plus what gen_seeds writes.
# `make fuzz-seeds` runs it; `make fuzz-merge` then minimises the raw
# seeds together with tests/fuzz/corpus/ (see tests/fuzz/README.md).
set -eu
gen=$1
out=$2
rm -rf "$out"
mkdir -p "$out"
for h in png jpeg bmp pnm npy image inflate lpw; do mkdir -p "$out/$h"; done

cp tests/data/images/png_*.png weights/samples/mnist_*.png "$out/png/"
cp tests/data/jpeg/*.jpg weights/samples/*.jpg "$out/jpeg/"
if [ -d ../shared/data/images/cifar10/samples ]; then
  for f in ../shared/data/images/cifar10/samples/*.jpg; do
    cp "$f" "$out/jpeg/shared_$(basename "$f")"
  done
fi
cp tests/data/images/bmp_*.bmp "$out/bmp/"
for f in tests/data/images/pnm_*; do
  case "$f" in *.raw) ;; *) cp "$f" "$out/pnm/" ;; esac
done
cp tests/data/images/npy_*.npy "$out/npy/"
cp tests/data/images/zlib_*.z "$out/inflate/"
# the dispatcher sees every format, and a text file
cp "$out"/png/png_* "$out"/jpeg/*.jpg "$out"/bmp/* "$out"/pnm/* tests/data/images/bad.txt "$out/image/"
cp weights/resnet20_cifar10.lpw "$out/lpw/"

"$gen" . "$out"
echo "seeds.sh: $(find "$out" -type f | wc -l) files in $out"
