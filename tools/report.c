/*
 * report.c — the HTML report of `loupe evaluate` (ev_write_report): one
 * self-contained file a user can send to a colleague.
 *
 *   - pictures are PNG files embedded as base64 data URIs, plots are inline
 *     SVG, the style sheet is inline; there is no script and nothing is
 *     fetched, so any browser shows it offline, and so does a mail client;
 *   - deterministic: the same ev_run gives the same bytes (no date, numbers
 *     in fixed formats, methods ranked by a stable sort);
 *   - every string that came from a file or the command line (paths, image
 *     names, class names, errors, the protocol) is HTML-escaped;
 *   - written with lp_write_file_atomic: a failure leaves no file.
 *
 * Sections, in order: header (model, data, image counts, protocol), the
 * summary (methods ranked per metric, mean and 95 % CI), time per method,
 * deletion/insertion curves, one row per shown image (input and every
 * method's map over it, with the prediction and the image's metric
 * values), and the skipped images with their errors. docs/REPORT.md says
 * how to read it.
 */
#include "loupe.h"
#include "evaluate.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- a growing text buffer ---------------------------------------------- */

typedef struct {
    char *data;
    size_t len, cap;
    int failed; /* an allocation failed: everything after is dropped */
} html_buf;

static int buf_reserve(html_buf *b, size_t extra)
{
    size_t cap;
    char *grown;
    if (b->failed)
        return 0;
    if (b->len + extra + 1 <= b->cap)
        return 1;
    cap = b->cap ? b->cap : 65536;
    while (cap < b->len + extra + 1)
        cap *= 2;
    grown = lp_alloc(cap, 1);
    if (grown == NULL) {
        b->failed = 1;
        return 0;
    }
    if (b->len > 0)
        memcpy(grown, b->data, b->len);
    lp_free(b->data);
    b->data = grown;
    b->cap = cap;
    return 1;
}

static void put_raw(html_buf *b, const char *s, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void put(html_buf *b, const char *s)
{
    put_raw(b, s, strlen(s));
}

/* printf into the buffer (markup and numbers only: never file strings). */
__attribute__((format(printf, 2, 3)))
static void putf(html_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        put_raw(b, small, (size_t)n);
        return;
    }
    if (!buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Text from outside (file names, labels, errors): the five HTML special
 * characters become entities, control characters other than tab and
 * newline become '?'. NULL prints nothing. */
static void put_text(html_buf *b, const char *s)
{
    for (; s != NULL && *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&': put(b, "&amp;"); break;
        case '<': put(b, "&lt;"); break;
        case '>': put(b, "&gt;"); break;
        case '"': put(b, "&quot;"); break;
        case '\'': put(b, "&#39;"); break;
        default:
            if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
                c = '?';
            put_raw(b, (const char *)&c, 1);
        }
    }
}

static void put_base64(html_buf *b, const uint8_t *p, size_t n)
{
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out;
    if (!buf_reserve(b, (n + 2) / 3 * 4))
        return;
    out = b->data + b->len;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        *out++ = digits[(v >> 18) & 63];
        *out++ = digits[(v >> 12) & 63];
        *out++ = i + 1 < n ? digits[(v >> 6) & 63] : '=';
        *out++ = i + 2 < n ? digits[v & 63] : '=';
    }
    b->len = (size_t)(out - b->data);
    b->data[b->len] = '\0';
}

/* A number, or a dash when it is not finite. */
static void put_number(html_buf *b, double v)
{
    if (isfinite(v))
        putf(b, "%.4g", v);
    else
        put(b, "&ndash;");
}

/* ---- pictures ----------------------------------------------------------- */

/* Thumbnails are shown at least this wide (small inputs are scaled up by
 * a whole factor, pixels kept sharp) and at most MAX_SHOW wide. */
#define MIN_SHOW 112
#define MAX_SHOW 176

/* <img> of pixels[h, w, channels] as an embedded PNG. */
static int put_png_img(html_buf *b, const uint8_t *pixels, int w, int h,
                       int channels, const char *alt)
{
    uint8_t *png = NULL;
    size_t size = 0;
    int show_w = w, show_h = h, sharp = 0;
    int rc = lp_png_encode(&png, &size, pixels, w, h, channels);
    if (rc != LP_OK)
        return rc;
    if (w < MIN_SHOW) {
        int k = (MIN_SHOW + w - 1) / w;
        show_w = w * k;
        show_h = h * k;
        sharp = 1;
    } else if (w > MAX_SHOW) {
        show_w = MAX_SHOW;
        show_h = (int)((long)h * MAX_SHOW / w);
    }
    putf(b, "<img%s width=\"%d\" height=\"%d\" alt=\"", sharp ? " class=\"px\"" : "",
         show_w, show_h);
    put_text(b, alt);
    put(b, "\" src=\"data:image/png;base64,");
    put_base64(b, png, size);
    put(b, "\">");
    lp_free(png);
    return LP_OK;
}

/* The model input x[C, H, W] de-normalised to 8-bit: RGB from the first
 * three channels, grey from the first when there are fewer. */
static int put_input_img(html_buf *b, const lp_model_info *info,
                         const float *x, const char *alt)
{
    int h = info->in_h, w = info->in_w, ch = info->in_c >= 3 ? 3 : 1, rc;
    size_t plane = (size_t)h * w;
    uint8_t *px = lp_alloc(plane * ch, 1);
    if (px == NULL)
        return LP_ENOMEM;
    for (int c = 0; c < ch; c++)
        for (size_t i = 0; i < plane; i++) {
            float v = x[c * plane + i] * info->std[c] + info->mean[c];
            v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
            px[i * ch + c] = (uint8_t)(v * 255.0f + 0.5f);
        }
    rc = put_png_img(b, px, w, h, ch, alt);
    lp_free(px);
    return rc;
}

/* A map over the input, and the values at the two ends of its scale. */
static int put_map_img(html_buf *b, const lp_model_info *info, const float *x,
                       const float *map, const char *alt)
{
    uint8_t *rgb = NULL;
    float range[2];
    int rc = lp_render_overlay(info, x, map, info->in_h, info->in_w, &rgb, range);
    if (rc != LP_OK)
        return rc;
    rc = put_png_img(b, rgb, info->in_w, info->in_h, 3, alt);
    lp_free(rgb);
    put(b, "<div class=\"range\">");
    if (range[0] < 0.0f && range[0] == -range[1])
        putf(b, "&minus;%.3g &hellip; 0 &hellip; %.3g", (double)range[1],
             (double)range[1]);
    else
        putf(b, "%.3g &hellip; %.3g", (double)range[0], (double)range[1]);
    put(b, "</div>");
    return LP_OK;
}

/* ---- header -------------------------------------------------------------- */

static const char style_sheet[] =
    "body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "color:#222;margin:24px auto;max-width:1400px;padding:0 16px}"
    "h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse;margin:8px 0}"
    "th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "tr.best td{background:#e6f3e8;font-weight:600}"
    "td.metric,tr.best td.metric{background:#fff;font-weight:400}"
    "td.metric b{font-weight:600}"
    ".tag{font-size:11px;color:#1b6e2a;border:1px solid #1b6e2a;border-radius:3px;padding:0 3px}"
    "pre{background:#f7f7f7;padding:8px;white-space:pre-wrap}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px}"
    "dt{font-weight:600}dd{margin:0}"
    "img{display:block}img.px{image-rendering:pixelated}"
    ".range,.vals{font-size:11px;color:#555}.vals td{border:0;padding:0 6px 0 0}"
    ".plots{display:flex;flex-wrap:wrap;gap:24px}figure{margin:0}"
    "figcaption{font-weight:600;margin-bottom:4px}"
    "ul.legend{list-style:none;padding:0;margin:4px 0}ul.legend li{margin:2px 0}"
    ".muted{color:#777}";

static void count_images(const ev_run *run, int *ok, int *skipped)
{
    *ok = *skipped = 0;
    for (int i = 0; i < run->n_images; i++)
        (run->images[i].ok ? ok : skipped)[0]++;
}

static void put_header(html_buf *b, const ev_run *run)
{
    const lp_model_info *info = run->info;
    int ok, skipped;
    count_images(run, &ok, &skipped);
    put(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
           "<title>loupe evaluate: ");
    put_text(b, run->model_path);
    put(b, "</title>\n<style>");
    put(b, style_sheet);
    put(b, "</style>\n</head>\n<body>\n<h1>Explanation quality: ");
    put_text(b, run->model_path);
    put(b, "</h1>\n<dl id=\"run\">\n<dt>model</dt><dd>");
    put_text(b, run->model_path);
    put(b, " (");
    put_text(b, info->name);
    putf(b, ", input %d&times;%d&times;%d, %d classes)</dd>\n<dt>data</dt><dd>",
         info->in_c, info->in_h, info->in_w, info->num_classes);
    put_text(b, run->data_path);
    putf(b, "</dd>\n<dt>images</dt><dd>%d: %d evaluated, %d skipped</dd>\n"
            "<dt>methods</dt><dd>", run->n_images, ok, skipped);
    for (int m = 0; m < run->n_methods; m++) {
        put(b, m ? ", " : "");
        put_text(b, run->method[m]);
    }
    put(b, "</dd>\n</dl>\n<h2>Protocol</h2>\n<pre id=\"protocol\">");
    put_text(b, run->protocol);
    put(b, "</pre>\n");
}

/* ---- summary: methods ranked per metric ---------------------------------- */

static const ev_summary *summary_at(const ev_run *run, int method, int value)
{
    return &run->summary[(long)method * run->n_values + value];
}

static int has_mean(const ev_summary *s)
{
    return s->n > 0 && isfinite(s->mean);
}

/* Does method a come strictly before method c for this value? Methods
 * without a mean go last; without a direction (higher_is_better < 0) the
 * order of --method is kept. */
static int ranks_before(const ev_run *run, int value, int a, int c)
{
    const ev_summary *sa = summary_at(run, a, value);
    const ev_summary *sc = summary_at(run, c, value);
    int dir = run->higher_is_better[value];
    if (!has_mean(sa) || dir < 0)
        return 0;
    if (!has_mean(sc))
        return 1;
    return dir ? sa->mean > sc->mean : sa->mean < sc->mean;
}

/* Method indices, best first (a stable insertion sort: ties keep the
 * order of --method). */
static void rank_methods(const ev_run *run, int value, int order[])
{
    for (int m = 0; m < run->n_methods; m++)
        order[m] = m;
    for (int i = 1; i < run->n_methods; i++)
        for (int j = i; j > 0 && ranks_before(run, value, order[j], order[j - 1]); j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
}

static const char *direction_text(int higher_is_better)
{
    return higher_is_better > 0 ? "higher is better"
           : higher_is_better == 0 ? "lower is better"
                                   : "not a ranking";
}

static void put_summary_rows(html_buf *b, const ev_run *run, int v)
{
    int order[EV_MAX_METHODS];
    rank_methods(run, v, order);
    for (int r = 0; r < run->n_methods; r++) {
        int m = order[r];
        const ev_summary *s = summary_at(run, m, v);
        int ranked = run->higher_is_better[v] >= 0 && has_mean(s);
        int best = ranked && r == 0;
        put(b, best ? "<tr class=\"best\">" : "<tr>");
        if (r == 0) {
            putf(b, "<td class=\"metric\" rowspan=\"%d\"><b>", run->n_methods);
            put_text(b, run->value_name[v]);
            putf(b, "</b><br><span class=\"muted\">%s</span></td>",
                 direction_text(run->higher_is_better[v]));
        }
        if (ranked)
            putf(b, "<td class=\"num\">%d</td><td>", r + 1);
        else
            put(b, "<td class=\"num\">&ndash;</td><td>");
        put_text(b, run->method[m]);
        put(b, best ? " <span class=\"tag\">best</span></td><td class=\"num\">"
                    : "</td><td class=\"num\">");
        put_number(b, has_mean(s) ? s->mean : NAN);
        put(b, "</td><td class=\"num\">");
        if (has_mean(s)) {
            put(b, "[");
            put_number(b, s->ci_lo);
            put(b, ", ");
            put_number(b, s->ci_hi);
            put(b, "]");
        } else {
            put(b, "&ndash;");
        }
        putf(b, "</td><td class=\"num\">%d</td></tr>\n", s->n);
    }
}

static void put_summary(html_buf *b, const ev_run *run)
{
    put(b, "<h2>Summary</h2>\n<p>Mean over the evaluated images and its 95 % "
           "confidence interval (Student&rsquo;s t); methods ranked best first "
           "for each metric.</p>\n<table id=\"summary\">\n<thead><tr><th>metric"
           "</th><th>rank</th><th>method</th><th>mean</th><th>95 % CI</th>"
           "<th>n</th></tr></thead>\n<tbody>\n");
    for (int v = 0; v < run->n_values; v++)
        put_summary_rows(b, run, v);
    put(b, "</tbody>\n</table>\n");
}

static void put_timing(html_buf *b, const ev_run *run)
{
    int ok, skipped;
    count_images(run, &ok, &skipped);
    put(b, "<h2>Time per method</h2>\n<table id=\"timing\">\n<thead><tr><th>"
           "method</th><th>seconds</th><th>seconds per image</th></tr></thead>"
           "\n<tbody>\n");
    for (int m = 0; m < run->n_methods; m++) {
        double s = run->method_seconds ? run->method_seconds[m] : NAN;
        put(b, "<tr><td>");
        put_text(b, run->method[m]);
        put(b, "</td><td class=\"num\">");
        put_number(b, s);
        put(b, "</td><td class=\"num\">");
        put_number(b, ok > 0 ? s / ok : NAN);
        put(b, "</td></tr>\n");
    }
    put(b, "</tbody>\n</table>\n<p class=\"muted\">Time spent in each method and "
           "its metrics, summed over images (with several threads this can "
           "exceed the wall-clock time).</p>\n");
}

/* ---- curves -------------------------------------------------------------- */

/* Okabe & Ito (2008) colour-blind-safe palette, yellow last (weak on
 * white); methods beyond eight repeat it with dashed lines. */
static const char *const palette[8] = {
    "#0072B2", "#D55E00", "#009E73", "#CC79A7",
    "#E69F00", "#56B4E9", "#000000", "#F0E442",
};
static const char *const dashes[4] = {"", "6 3", "2 2", "8 3 2 3"};

#define PLOT_W 520
#define PLOT_H 320
#define PAD_L 60
#define PAD_R 16
#define PAD_T 12
#define PAD_B 48

/* Mean curve of (method, value) over evaluated images whose curve has the
 * length of the first one and only finite points; returns how many
 * images went in (0: no curve). mean[] holds *len points. */
static int mean_curve(const ev_run *run, int m, int v, double *mean, int *len)
{
    int n = 0;
    *len = 0;
    for (int i = 0; i < run->n_images; i++) {
        const ev_value *e = ev_at(run, i, m, v);
        int finite = 1;
        if (!run->images[i].ok || e->curve_len < 2 || e->curve == NULL)
            continue;
        if (*len == 0) {
            *len = e->curve_len;
            for (int k = 0; k < *len; k++)
                mean[k] = 0.0;
        }
        if (e->curve_len != *len)
            continue;
        for (int k = 0; k < *len; k++)
            finite &= isfinite(e->curve[k]) != 0;
        if (!finite)
            continue;
        for (int k = 0; k < *len; k++)
            mean[k] += e->curve[k];
        n++;
    }
    for (int k = 0; k < *len && n > 0; k++)
        mean[k] /= n;
    return n;
}

static int is_curve_value(const ev_run *run, int v)
{
    for (int i = 0; i < run->n_images; i++)
        for (int m = 0; m < run->n_methods; m++)
            if (run->images[i].ok && ev_at(run, i, m, v)->curve_len > 1)
                return 1;
    return 0;
}

/* 1, 2 or 5 times a power of ten, near span / 5. */
static double nice_step(double span)
{
    double raw = span / 5.0, p = pow(10.0, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0) * p;
}

typedef struct {
    double lo, hi, step;
} axis;

static axis y_axis(double lo, double hi)
{
    axis a;
    if (!(hi > lo)) {
        lo -= 0.5;
        hi += 0.5;
    }
    a.step = nice_step(hi - lo);
    a.lo = floor(lo / a.step + 1e-9) * a.step;
    a.hi = ceil(hi / a.step - 1e-9) * a.step;
    return a;
}

static double px_x(double t) { return PAD_L + t * (PLOT_W - PAD_L - PAD_R); }

static double px_y(const axis *a, double v)
{
    return PAD_T + (a->hi - v) / (a->hi - a->lo) * (PLOT_H - PAD_T - PAD_B);
}

static void put_axes(html_buf *b, const axis *a, const char *x_label)
{
    int decimals = a->step >= 1.0 ? 0 : (int)ceil(-log10(a->step) - 1e-9);
    putf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
            "stroke=\"#999\"/>\n", PAD_L, PAD_T, PLOT_W - PAD_L - PAD_R,
         PLOT_H - PAD_T - PAD_B);
    for (int k = 0; k <= 5; k++) {
        double x = px_x(k / 5.0);
        putf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#eee\"/>"
                "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.1f</text>\n",
             x, PAD_T + 1, x, PLOT_H - PAD_B - 1, x, PLOT_H - PAD_B + 16, k / 5.0);
    }
    for (int k = 0; a->lo + k * a->step <= a->hi + 1e-9 * a->step; k++) {
        double v = a->lo + k * a->step, y = px_y(a, v);
        if (fabs(v) < 1e-12 * a->step)
            v = 0.0; /* no "-0.0" */
        putf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.*f</text>\n",
             PAD_L + 1, y, PLOT_W - PAD_R - 1, y, PAD_L - 6, y + 4, decimals, v);
    }
    putf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n"
            "<text transform=\"translate(14 %.1f) rotate(-90)\" "
            "text-anchor=\"middle\">score of the target class</text>\n",
         px_x(0.5), PLOT_H - 10, x_label, (PLOT_H - PAD_B + PAD_T) / 2.0);
}

static void put_polyline(html_buf *b, const axis *a, const double *curve,
                         int len, int method)
{
    putf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"",
         palette[method % 8]);
    if (method >= 8)
        putf(b, " stroke-dasharray=\"%s\"", dashes[(method / 8) % 4]);
    put(b, " points=\"");
    for (int k = 0; k < len; k++)
        putf(b, "%s%.2f,%.2f", k ? " " : "", px_x((double)k / (len - 1)),
             px_y(a, curve[k]));
    put(b, "\"/>\n");
}

static void put_legend_entry(html_buf *b, const ev_run *run, int m, int v, int n)
{
    const ev_summary *s = summary_at(run, m, v);
    putf(b, "<li><svg width=\"28\" height=\"10\" aria-hidden=\"true\"><line x1=\"0\" "
            "y1=\"5\" x2=\"28\" y2=\"5\" stroke=\"%s\" stroke-width=\"3\"%s%s%s/>"
            "</svg> ", palette[m % 8], m >= 8 ? " stroke-dasharray=\"" : "",
         m >= 8 ? dashes[(m / 8) % 4] : "", m >= 8 ? "\"" : "");
    put_text(b, run->method[m]);
    put(b, ": AUC ");
    put_number(b, has_mean(s) ? s->mean : NAN);
    putf(b, " <span class=\"muted\">(mean curve of %d images)</span></li>\n", n);
}

static const char *x_label_for(const char *name)
{
    if (strstr(name, "deletion") != NULL)
        return "fraction of the pixels deleted";
    if (strstr(name, "insertion") != NULL)
        return "fraction of the pixels inserted";
    return "fraction of the pixels changed";
}

/* One plot: the mean curve of every method for value v. */
static int put_curve_plot(html_buf *b, const ev_run *run, int v)
{
    int n_used[EV_MAX_METHODS], len[EV_MAX_METHODS], max_len = 2;
    double *curves, lo = INFINITY, hi = -INFINITY;
    axis a;
    for (int i = 0; i < run->n_images; i++)
        for (int m = 0; m < run->n_methods; m++)
            if (ev_at(run, i, m, v)->curve_len > max_len)
                max_len = ev_at(run, i, m, v)->curve_len;
    curves = lp_alloc((size_t)run->n_methods * max_len, sizeof(double));
    if (curves == NULL)
        return LP_ENOMEM;
    for (int m = 0; m < run->n_methods; m++) {
        double *c = curves + (size_t)m * max_len;
        n_used[m] = mean_curve(run, m, v, c, &len[m]);
        for (int k = 0; k < len[m] && n_used[m] > 0; k++) {
            lo = fmin(lo, c[k]);
            hi = fmax(hi, c[k]);
        }
    }
    a = y_axis(isfinite(lo) ? lo : 0.0, isfinite(hi) ? hi : 1.0);
    put(b, "<figure class=\"curve\"><figcaption>");
    put_text(b, run->value_name[v]);
    putf(b, " curves</figcaption>\n<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "role=\"img\" font-size=\"11\" font-family=\"sans-serif\" aria-label=\"",
         PLOT_W, PLOT_H, PLOT_W, PLOT_H);
    put_text(b, run->value_name[v]);
    put(b, " curves of every method\">\n");
    put_axes(b, &a, x_label_for(run->value_name[v]));
    for (int m = 0; m < run->n_methods; m++)
        if (n_used[m] > 0)
            put_polyline(b, &a, curves + (size_t)m * max_len, len[m], m);
    put(b, "</svg>\n<ul class=\"legend\">\n");
    for (int m = 0; m < run->n_methods; m++)
        if (n_used[m] > 0)
            put_legend_entry(b, run, m, v, n_used[m]);
    put(b, "</ul></figure>\n");
    lp_free(curves);
    return LP_OK;
}

static int put_curves(html_buf *b, const ev_run *run)
{
    int any = 0, rc = LP_OK;
    for (int v = 0; v < run->n_values; v++)
        any |= is_curve_value(run, v);
    if (!any)
        return LP_OK;
    put(b, "<h2>Deletion and insertion curves</h2>\n<p>The target-class score as "
           "pixels are removed (deletion: lower is better, the score should "
           "fall fast) or put back (insertion: higher is better) in the order "
           "of each method&rsquo;s map, averaged over the evaluated images. "
           "The area under a curve is its AUC in the summary.</p>\n"
           "<div class=\"plots\">\n");
    for (int v = 0; v < run->n_values && rc == LP_OK; v++)
        if (is_curve_value(run, v))
            rc = put_curve_plot(b, run, v);
    put(b, "</div>\n");
    return rc;
}

/* ---- one row per shown image -------------------------------------------- */

/* "cat (3)", or "3" when the model has no class names. */
static void put_class(html_buf *b, const ev_run *run, int k)
{
    const char *name = run->model != NULL ? lp_model_label(run->model, k) : NULL;
    if (k < 0) {
        put(b, "unknown");
        return;
    }
    if (name != NULL) {
        put_text(b, name);
        putf(b, " (%d)", k);
    } else {
        putf(b, "%d", k);
    }
}

static void put_image_info(html_buf *b, const ev_run *run, const ev_image *im)
{
    put(b, "<td class=\"info\"><b>");
    put_text(b, im->name);
    put(b, "</b><br>predicted: ");
    put_class(b, run, im->predicted);
    putf(b, " <span class=\"muted\">p = %.3f</span><br>label: ", (double)im->prob);
    put_class(b, run, im->label);
    put(b, "<br>target: ");
    put_class(b, run, im->target);
    put(b, "</td>");
}

/* A value is per image when some shown image has it finite. */
static int is_per_image(const ev_run *run, int v)
{
    for (int s = 0; s < run->n_shown; s++)
        for (int m = 0; m < run->n_methods; m++)
            if (isfinite(ev_at(run, run->shown[s], m, v)->value))
                return 1;
    return 0;
}

static void put_image_values(html_buf *b, const ev_run *run, int image, int m)
{
    put(b, "<table class=\"vals\">");
    for (int v = 0; v < run->n_values; v++) {
        if (!is_per_image(run, v))
            continue;
        put(b, "<tr><td>");
        put_text(b, run->value_name[v]);
        put(b, "</td><td class=\"num\">");
        put_number(b, ev_at(run, image, m, v)->value);
        put(b, "</td></tr>");
    }
    put(b, "</table>");
}

static int put_image_row(html_buf *b, const ev_run *run, int s)
{
    const lp_model_info *info = run->info;
    int image = run->shown[s], rc;
    const ev_image *im = &run->images[image];
    const float *x = run->shown_input[s];
    put(b, "<tr>");
    put_image_info(b, run, im);
    put(b, "<td>");
    rc = put_input_img(b, info, x, im->name);
    put(b, "</td>");
    for (int m = 0; m < run->n_methods && rc == LP_OK; m++) {
        const float *map = run->shown_map[(long)s * run->n_methods + m];
        put(b, "<td>");
        if (map != NULL)
            rc = put_map_img(b, info, x, map, run->method[m]);
        else
            put(b, "<div class=\"muted\">no map (the method failed)</div>");
        put_image_values(b, run, image, m);
        put(b, "</td>");
    }
    put(b, "</tr>\n");
    return rc;
}

static int put_images(html_buf *b, const ev_run *run)
{
    int rc = LP_OK;
    if (run->n_shown == 0)
        return LP_OK;
    put(b, "<h2>Images</h2>\n<p>Each method&rsquo;s map over the input at half "
           "opacity, dark to bright from the map&rsquo;s lowest to its highest "
           "value (the range is under each map); a map with both signs uses "
           "blue (negative), white (0) and red (positive).</p>\n"
           "<table id=\"images\">\n<thead><tr><th>image</th><th>input</th>");
    for (int m = 0; m < run->n_methods; m++) {
        put(b, "<th>");
        put_text(b, run->method[m]);
        put(b, "</th>");
    }
    put(b, "</tr></thead>\n<tbody>\n");
    for (int s = 0; s < run->n_shown && rc == LP_OK; s++)
        rc = put_image_row(b, run, s);
    put(b, "</tbody>\n</table>\n");
    return rc;
}

static void put_skipped(html_buf *b, const ev_run *run)
{
    int ok, skipped;
    count_images(run, &ok, &skipped);
    put(b, "<h2>Skipped images</h2>\n");
    if (skipped == 0) {
        put(b, "<p id=\"no-skipped\">None: every image was evaluated.</p>\n");
        return;
    }
    put(b, "<table id=\"skipped\">\n<thead><tr><th>image</th><th>error</th></tr>"
           "</thead>\n<tbody>\n");
    for (int i = 0; i < run->n_images; i++) {
        if (run->images[i].ok)
            continue;
        put(b, "<tr><td>");
        put_text(b, run->images[i].name);
        put(b, "</td><td>");
        put_text(b, run->images[i].error);
        put(b, "</td></tr>\n");
    }
    put(b, "</tbody>\n</table>\n");
}

/* ---- the file ------------------------------------------------------------ */

static int check_run(const ev_run *run)
{
    if (run->info == NULL || run->n_images < 0 || run->n_methods < 1 ||
        run->n_methods > EV_MAX_METHODS || run->n_values < 0 ||
        run->n_values > EV_MAX_VALUES || run->n_shown < 0 ||
        run->n_shown > run->n_images ||
        (run->n_images > 0 && run->images == NULL) ||
        (run->n_images > 0 && run->n_values > 0 && run->values == NULL) ||
        (run->n_values > 0 && run->summary == NULL) ||
        (run->n_shown > 0 && (run->shown == NULL || run->shown_input == NULL ||
                              run->shown_map == NULL)))
        return lp_set_error(LP_EINVAL, "ev_write_report: incomplete results");
    if (run->info->in_c < 1 || run->info->in_h < 1 || run->info->in_w < 1)
        return lp_set_error(LP_EINVAL, "ev_write_report: bad input size");
    for (int s = 0; s < run->n_shown; s++)
        if (run->shown[s] < 0 || run->shown[s] >= run->n_images ||
            run->shown_input[s] == NULL)
            return lp_set_error(LP_EINVAL, "ev_write_report: bad shown image %d", s);
    return LP_OK;
}

int ev_write_report(const char *path, const ev_run *run)
{
    html_buf b = {0};
    int rc;
    if (path == NULL || run == NULL)
        return lp_set_error(LP_EINVAL, "ev_write_report: NULL argument");
    rc = check_run(run);
    if (rc != LP_OK)
        return rc;
    put_header(&b, run);
    put_summary(&b, run);
    put_timing(&b, run);
    rc = put_curves(&b, run);
    if (rc == LP_OK)
        rc = put_images(&b, run);
    if (rc == LP_OK) {
        put_skipped(&b, run);
        putf(&b, "<p class=\"muted\">Written by loupe %s.</p>\n</body>\n</html>\n",
             LOUPE_VERSION);
        if (b.failed)
            rc = lp_set_error(LP_ENOMEM, "report %s: out of memory", path);
        else
            rc = lp_write_file_atomic(path, b.data, b.len);
    }
    lp_free(b.data);
    return rc;
}
