#!/bin/sh
# run.sh — drives the libFuzzer binaries that `make fuzz` builds.
#
#   run.sh run   FUZZ_BUILD SECONDS NAME...  fuzz each harness for SECONDS,
#                FUZZ_JOBS (default 1) at a time, each a single process;
#                new inputs go to FUZZ_BUILD/fuzz/corpus/NAME (never to
#                the committed corpus), crashes to FUZZ_BUILD/fuzz/artifacts/
#   run.sh merge FUZZ_BUILD SEEDS NAME...    minimise tests/fuzz/corpus/NAME,
#                the inputs found since and SEEDS/NAME into a new
#                tests/fuzz/corpus/NAME (libFuzzer -merge=1)
#
# Per-harness flags: tests/fuzz/NAME.options (one line), NAME.dict.
set -eu
mode=$1
fb=$2
shift 2
common="-timeout=30 -rss_limit_mb=2560 -close_fd_mask=3"
export LOUPE_ROOT="$(pwd)" OMP_NUM_THREADS=1

options() {
  opts=""
  if [ -f "tests/fuzz/$1.options" ]; then opts=$(cat "tests/fuzz/$1.options"); fi
  if [ -f "tests/fuzz/$1.dict" ]; then opts="$opts -dict=tests/fuzz/$1.dict"; fi
  echo "$opts"
}

existing() {
  for d in "$@"; do if [ -d "$d" ]; then printf '%s ' "$d"; fi; done
}

# "N execs in S s: cov C ft F corp K" from a libFuzzer log
summary() {
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$1" | tail -1)
  secs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$1" | tail -1)
  last=$(grep -E '^#[0-9]+' "$1" | tail -1 | sed 's/^#[0-9]*[[:space:]]*[A-Z]*[[:space:]]*//')
  echo "$execs execs ($secs/s): $last"
}

# fuzz one harness for SECS; prints one line when it ends (the log's
# tail too when it failed)
fuzz_one() {
  name=$1 secs=$2 art=$3
  new="$fb/fuzz/corpus/$name"
  log="$fb/fuzz/$name.log"
  mkdir -p "$new"
  # shellcheck disable=SC2046
  if "$fb/fuzz/fuzz_$name" $(options "$name") $common -print_final_stats=1 \
      -max_total_time="$secs" -artifact_prefix="$art/$name-" \
      $(existing "$new" "tests/fuzz/corpus/$name" "tests/fuzz/regress/$name") \
      >"$log" 2>&1; then
    echo "fuzz $name: $secs s, $(summary "$log")"
  else
    { echo "fuzz $name: FAILED after $(summary "$log")"
      echo "---- last lines of $log (reproducer in $fb/fuzz/artifacts/):"
      tail -60 "$log"; }
    return 1
  fi
}

case "$mode" in
run)
  secs=$1
  shift
  jobs=${FUZZ_JOBS:-1}
  case "$jobs" in
  '' | *[!0-9]* | 0) echo "run.sh: FUZZ_JOBS must be a positive integer, not '$jobs'" >&2; exit 2 ;;
  esac
  mkdir -p "$fb/fuzz/artifacts"
  # absolute: the CLI harness runs each input in a directory of its own
  art=$(cd "$fb/fuzz/artifacts" && pwd)
  # FUZZ_JOBS harnesses at a time (each one process, one core); every
  # harness runs even after one failed, and the exit status says if any did
  status=0
  pids=""
  running=0
  for name in "$@"; do
    fuzz_one "$name" "$secs" "$art" &
    pids="$pids $!"
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
      for p in $pids; do wait "$p" || status=1; done
      pids=""
      running=0
    fi
  done
  for p in $pids; do wait "$p" || status=1; done
  exit $status
  ;;
merge)
  seeds=$1
  shift
  for name in "$@"; do
    tmp="$fb/fuzz/merged-$name"
    log="$fb/fuzz/$name.merge.log"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    # shellcheck disable=SC2046
    "$fb/fuzz/fuzz_$name" $(options "$name") $common -merge=1 "$tmp" \
      $(existing "tests/fuzz/corpus/$name" "$fb/fuzz/corpus/$name" "$seeds/$name") \
      >"$log" 2>&1 || { echo "merge $name: FAILED (log: $log)"; tail -30 "$log"; exit 1; }
    rm -rf "tests/fuzz/corpus/$name"
    mkdir -p "tests/fuzz/corpus/$name"
    cp "$tmp"/* "tests/fuzz/corpus/$name/" 2>/dev/null || true
    echo "merge $name: $(ls "tests/fuzz/corpus/$name" | wc -l) inputs," \
      "$(du -sk "tests/fuzz/corpus/$name" | cut -f1) KiB"
  done
  ;;
*)
  echo "usage: run.sh run|merge FUZZ_BUILD ..." >&2
  exit 2
  ;;
esac
