#!/usr/bin/python3
"""report_dom.py — checks the DOM of a `loupe evaluate` HTML report as a
browser parsed it (chromium --dump-dom), for tests/test_report.sh.

    report_dom.py DOM.html [--images N] [--summary-rows N] [--best N]
                  [--plots N] [--polylines N] [--skipped N] [--text STRING]...

Asserts, besides the given counts:
  - nothing would be fetched or run: no <script>, <link>, <iframe>,
    <object>, <embed>, and every src/href is a data: URI (or an anchor);
  - every <img> is a base64 PNG that decodes (Pillow, when installed) to a
    picture with at least one pixel;
  - --text strings (HTML-escaped names in the file) come back as plain
    text, not as markup.

Prints one line per failed check and "ok" when all pass; exit status 1 on
any failure.
"""

import argparse
import base64
import io
import sys
from html.parser import HTMLParser

FORBIDDEN = {"script", "link", "iframe", "object", "embed", "base"}


class ReportParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []          # open elements: (tag, attrs dict)
        self.images = []         # src of every <img>
        self.summary_rows = []   # class of each <tr> in #summary's tbody
        self.plots = 0           # <svg role="img">: the curve plots
        self.polylines = 0
        self.skipped_rows = 0
        self.forbidden = []
        self.external = []
        self.text = []
        self.elements = []       # every start tag, in order

    def inside(self, tag, ident=None):
        for t, a in self.stack:
            if t == tag and (ident is None or a.get("id") == ident):
                return True
        return False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.elements.append(tag)
        if tag in FORBIDDEN:
            self.forbidden.append(tag)
        for key in ("src", "href", "srcset", "data", "poster"):
            value = a.get(key)
            if value is not None and not value.startswith(("data:", "#")):
                self.external.append(f"<{tag} {key}={value[:60]!r}>")
        if tag == "img":
            self.images.append(a.get("src", ""))
        elif tag == "tr" and self.inside("table", "summary") and self.inside("tbody"):
            self.summary_rows.append(a.get("class", ""))
        elif tag == "tr" and self.inside("table", "skipped") and self.inside("tbody"):
            self.skipped_rows += 1
        elif tag == "svg" and a.get("role") == "img":
            self.plots += 1
        elif tag == "polyline":
            self.polylines += 1
        if tag not in ("img", "br", "meta", "line", "rect", "polyline", "path",
                       "hr", "input", "wbr"):
            self.stack.append((tag, a))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if self.stack and self.stack[-1][0] == tag:
            self.stack.pop()

    def handle_endtag(self, tag):
        for k in range(len(self.stack) - 1, -1, -1):
            if self.stack[k][0] == tag:
                del self.stack[k:]
                break

    def handle_data(self, data):
        self.text.append(data)


def check_png(src, failures):
    prefix = "data:image/png;base64,"
    if not src.startswith(prefix):
        failures.append(f"img src is not a base64 PNG: {src[:40]!r}")
        return
    try:
        data = base64.b64decode(src[len(prefix):], validate=True)
    except ValueError as e:
        failures.append(f"img: bad base64: {e}")
        return
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        failures.append("img: data is not a PNG")
        return
    try:
        from PIL import Image
    except ImportError:
        return
    try:
        im = Image.open(io.BytesIO(data))
        im.load()
        if im.width < 1 or im.height < 1:
            failures.append("img: empty picture")
    except Exception as e:  # Pillow raises many types on corrupt data
        failures.append(f"img: Pillow cannot decode it: {e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dom")
    for name in ("images", "summary-rows", "best", "plots", "polylines", "skipped"):
        ap.add_argument("--" + name, type=int)
    ap.add_argument("--text", action="append", default=[])
    args = ap.parse_args()

    with open(args.dom, encoding="utf-8") as f:
        p = ReportParser()
        p.feed(f.read())
        p.close()

    failures = []

    def expect(what, got, want):
        if want is not None and got != want:
            failures.append(f"{what}: {got}, want {want}")

    expect("<img> elements", len(p.images), args.images)
    expect("summary table rows", len(p.summary_rows), args.summary_rows)
    expect("curve plots", p.plots, args.plots)
    expect("curve lines", p.polylines, args.polylines)
    expect("skipped-image rows", p.skipped_rows, args.skipped)
    if p.forbidden:
        failures.append(f"elements that load or run things: {sorted(set(p.forbidden))}")
    if p.external:
        failures.append(f"external references: {p.external[:5]}")
    for src in p.images:
        check_png(src, failures)
    expect("rows marked best", p.summary_rows.count("best"), args.best)
    text = "".join(p.text)
    for t in args.text:
        if t not in text:
            failures.append(f"text {t!r} is not in the page as text")

    for line in failures:
        print("FAIL report DOM:", line)
    if not failures:
        print("ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
