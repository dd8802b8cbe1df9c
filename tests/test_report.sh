#!/bin/sh
# test_report.sh — the HTML report of `loupe evaluate` (tools/report.c) in
# a real headless browser. Debian's chromium renders each report to a PNG
# screenshot (it must exit 0 and give a full-size, non-blank picture, with
# no failed resource in its console log), and the DOM as chromium parsed
# it (--dump-dom) must hold the expected <img> elements (each a base64 PNG
# that Pillow decodes), summary-table rows, curve plots and lines, and no
# script or external reference (tests/report/report_dom.py).
#
# Reports come from tests/report/report_demo.c (a made-up run with the
# awkward cases: a skipped image, a failed map, HTML in names and errors,
# a grey model input, a model's class names), built against BUILD_DIR's
# tools/report.o and libloupe.a, and, when the build has it, from a real
# `loupe evaluate` run on the shipped CIFAR-10 samples.
#
#   usage: tests/test_report.sh BUILD_DIR
# Prints "N passed, N failed" (or "SKIP: ..." and exits 0 where chromium
# or python3 cannot run) and exits non-zero on any failure.

B=${1:-build}
T=$(mktemp -d "${TMPDIR:-/tmp}/loupe-report.XXXXXX")
trap 'rm -rf "$T"' EXIT
PY=/usr/bin/python3
pass=0
fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# ---- can a browser run here? ---------------------------------------------
CHROME=
for c in chromium chromium-browser; do
    if command -v "$c" >/dev/null 2>&1; then CHROME=$c; break; fi
done
if [ -z "$CHROME" ]; then
    echo "SKIP: chromium not available (apt-get install chromium)"
    exit 0
fi
if ! [ -x "$PY" ]; then
    echo "SKIP: $PY not available (the DOM checks need it)"
    exit 0
fi

# browser LOG ARGS... : one headless chromium run, everything it says in LOG
browser() {
    log=$1; shift
    timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --no-first-run \
        --disable-extensions --disable-background-networking \
        --user-data-dir="$T/profile" --enable-logging=stderr --v=0 "$@" 2>"$log"
}

printf '<!DOCTYPE html><p id="probe">probe</p>' >"$T/probe.html"
if ! browser "$T/probe.log" --dump-dom "file://$T/probe.html" >"$T/probe.dom" ||
   ! grep -q 'id="probe"' "$T/probe.dom"; then
    echo "SKIP: chromium not available (it does not run here: $(grep -v '^$' "$T/probe.log" | tail -n 1))"
    exit 0
fi

# ---- the demo driver -------------------------------------------------------
for f in "$B/.flags" "$B/tools/report.o" "$B/libloupe.a"; do
    if ! [ -f "$f" ]; then
        echo "FAIL $f is missing: build first (make BUILD=$B)"
        exit 1
    fi
done
DEMO="$T/report_demo"
# the build's own compile-and-link line ($B/.flags) keeps OpenMP and the
# sanitizers consistent with the objects it links
if $(cat "$B/.flags") -Itools -o "$DEMO" tests/report/report_demo.c \
        "$B/tools/report.o" "$B/libloupe.a" -lm 2>"$T/cc.log"; then
    ok
else
    bad "building tests/report/report_demo.c: $(head -c 600 "$T/cc.log")"
    echo "$pass passed, $fail failed"
    exit 1
fi

# check_report NAME HTML EXPECT... : render HTML in the browser and check
# the screenshot and the DOM (EXPECT: report_dom.py options)
check_report() {
    name=$1; html=$2; shift 2
    shot="$T/$name.png"
    if browser "$T/$name.shot.log" --screenshot="$shot" --window-size=1280,2000 \
            --hide-scrollbars "file://$html" >/dev/null && [ -s "$shot" ]; then
        ok
    else
        bad "$name: chromium made no screenshot: $(tail -n 3 "$T/$name.shot.log")"
    fi
    if grep -E 'Failed to load resource|Not allowed to load|Uncaught' "$T/$name.shot.log" >"$T/errs"; then
        bad "$name: the browser reported: $(head -n 3 "$T/errs")"
    else
        ok
    fi
    if [ -s "$shot" ]; then
        if "$PY" - "$shot" >"$T/shot.txt" 2>&1 <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", data[16:24])
assert (w, h) == (1280, 2000), f"screenshot is {w}x{h}, want 1280x2000"
try:
    from PIL import Image
except ImportError:
    sys.exit(0)
im = Image.open(sys.argv[1]).convert("RGB")
colours = im.getcolors(maxcolors=1 << 20)
assert colours is None or len(colours) > 50, f"blank screenshot ({len(colours)} colours)"
EOF
        then ok; else bad "$name screenshot: $(tail -n 1 "$T/shot.txt")"; fi
    fi
    if browser "$T/$name.dom.log" --dump-dom "file://$html" >"$T/$name.dom" &&
       [ -s "$T/$name.dom" ]; then
        if "$PY" tests/report/report_dom.py "$T/$name.dom" "$@" >"$T/dom.txt" 2>&1; then
            ok
        else
            bad "$name: $(cat "$T/dom.txt")"
        fi
    else
        bad "$name: chromium --dump-dom failed: $(tail -n 3 "$T/$name.dom.log")"
    fi
}

# demo NAME ARGS... : write $T/NAME.html with the driver and check it
demo() {
    name=$1; shift
    if "$DEMO" "$T/$name.html" "$@" >"$T/$name.expect" 2>"$T/err"; then
        ok
        # shellcheck disable=SC2046  # the driver prints options, one word each
        check_report "$name" "$T/$name.html" $(cat "$T/$name.expect") \
            --text 'evil<script>alert(1)</script> & "x".jpg' \
            --text "not a JPEG file (bad <marker> & 'tag')"
    else
        bad "report_demo $name: $(cat "$T/err")"
    fi
}

demo rgb
demo grey --grey
[ -f weights/resnet20_cifar10.lpw ] && demo labels --model weights/resnet20_cifar10.lpw
grep -q 'airplane (0)' "$T/labels.html" 2>/dev/null && ok ||
    bad "labels: class names from the model file are not in the report"

# same input, same bytes
"$DEMO" "$T/again.html" >/dev/null 2>&1 && cmp -s "$T/rgb.html" "$T/again.html" && ok ||
    bad "the same run gave a different report"
# a report that cannot be written leaves nothing behind
if "$DEMO" "$T/no/such/dir/r.html" >/dev/null 2>"$T/err"; then
    bad "writing into a missing directory succeeded"
elif [ -e "$T/no/such/dir/r.html" ] || [ -n "$(ls -A "$T/no" 2>/dev/null)" ]; then
    bad "a failed report left a file"
else
    ok
fi

# ---- the report of a real run ---------------------------------------------
# two CIFAR-10 samples in class folders and an unreadable file with HTML
# in its name: 2 evaluated, 1 skipped; 2 x (input + 2 maps) pictures, a
# summary row per (metric, method), a plot per metric with a line per
# method
if "$B/loupe" evaluate --help >/dev/null 2>&1; then
    D="$T/data"
    for c in airplane automobile; do
        mkdir -p "$D/$c" && cp "weights/samples/${c}_0000.jpg" "$D/$c/"
    done
    printf 'not an image' >"$D/airplane/b<r>oken & 'x'.jpg"
    if "$B/loupe" evaluate --model weights/resnet20_cifar10.lpw --data "$D" \
            --method saliency,gradcam --metric deletion,insertion --protocol xplique \
            --report "$T/real.html" --quiet >"$T/eval.out" 2>"$T/eval.err"; then
        ok
        check_report real "$T/real.html" --images 6 --summary-rows 4 --best 2 \
            --plots 2 --polylines 4 --skipped 1 --text "airplane/b<r>oken & 'x'.jpg"
    else
        bad "loupe evaluate --report: $(tail -n 3 "$T/eval.err")"
    fi
else
    echo "note: $B/loupe has no evaluate command: only the demo reports were checked"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
