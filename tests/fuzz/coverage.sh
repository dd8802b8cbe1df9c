#!/bin/sh
# coverage.sh COV_BUILD NAME... — part of `make fuzz-coverage`: replays each
# harness's committed corpus and reproducers through its replay driver
# built with clang's source-based coverage, and prints the line and branch
# coverage of the source files that harness is there to test (the files
# below; the rest of the library is reached too but not counted).
set -eu
cb=$1
shift
PROFDATA=${LLVM_PROFDATA:-llvm-profdata}
COV=${LLVM_COV:-llvm-cov}
export LOUPE_ROOT="$(pwd)"

sources() {
  case "$1" in
  lpw) echo formats/lpw.c formats/crc32c.c nn/build.c nn/resnet.c nn/vit.c nn/model.c ;;
  png) echo formats/png.c formats/inflate.c ;;
  jpeg) echo formats/jpeg.c ;;
  bmp) echo formats/bmp.c ;;
  pnm) echo formats/pnm.c ;;
  image) echo formats/image.c formats/png.c formats/inflate.c formats/jpeg.c formats/bmp.c formats/pnm.c ;;
  npy) echo formats/npy.c ;;
  inflate) echo formats/inflate.c ;;
  dataset) echo formats/dataset.c ;;
  labels) echo formats/labels.c ;;
  cli) echo tools/*.c ;;
  *) echo "coverage.sh: no source list for harness $1" >&2; exit 2 ;;
  esac
}

mkdir -p "$cb/cov"
out=$(cd "$cb/cov" && pwd) # absolute: the CLI harness changes directory
printf '%-8s %8s %9s %9s  %s\n' harness inputs lines branches files
for name in "$@"; do
  dirs=""
  for d in "tests/fuzz/corpus/$name" "tests/fuzz/regress/$name"; do
    if [ -d "$d" ]; then dirs="$dirs $d"; fi
  done
  bin="$cb/fuzz/replay_$name"
  raw="$out/$name.profraw"
  rm -f "$raw"
  # shellcheck disable=SC2086
  LLVM_PROFILE_FILE="$raw" "$bin" $dirs >"$cb/cov/$name.out" 2>/dev/null || {
    echo "coverage.sh: replay_$name failed"; exit 1; }
  "$PROFDATA" merge -sparse "$raw" -o "$cb/cov/$name.profdata"
  # shellcheck disable=SC2046
  total=$("$COV" report "$bin" -instr-profile="$cb/cov/$name.profdata" $(sources "$name") |
    awk '$1 == "TOTAL" { print $10, $13 }')
  inputs=$(sed -n 's/.*: \([0-9]*\) inputs replayed/\1/p' "$cb/cov/$name.out")
  # shellcheck disable=SC2086
  printf '%-8s %8s %9s %9s  %s\n' "$name" "$inputs" $total "$(sources "$name")"
done
