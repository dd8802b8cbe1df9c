#!/bin/sh
# replay.sh BUILD NAME... — part of `make test`: runs the committed corpus
# and regression inputs of each fuzz harness through its replay driver
# (BUILD/fuzz/replay_NAME, built with the build's own compiler and flags,
# so under ASan/UBSan with SANITIZE=1). What the harnesses print on
# stderr (the CLI's error messages) goes to BUILD/fuzz/replay_NAME.log.
set -u
b=$1
shift
status=0
export LOUPE_ROOT="$(pwd)"
for name in "$@"; do
  dirs=""
  for d in "tests/fuzz/corpus/$name" "tests/fuzz/regress/$name"; do
    if [ -d "$d" ]; then dirs="$dirs $d"; fi
  done
  if [ -z "$dirs" ]; then continue; fi
  log="$b/fuzz/replay_$name.log"
  # shellcheck disable=SC2086
  if out=$("$b/fuzz/replay_$name" $dirs 2>"$log"); then
    echo "fuzz replay: $out"
  else
    echo "fuzz replay: replay_$name FAILED; last lines of $log:"
    tail -40 "$log"
    status=1
  fi
done
exit $status
