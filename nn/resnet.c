/*
 * resnet.c — builds the ResNet family from a .lpw configuration:
 * torchvision ResNet-18…152, ResNeXt, Wide ResNet (He et al. 2016, "v1.5":
 * the stride sits on the 3×3 conv of a bottleneck) and the CIFAR ResNets
 * with option-A shortcuts (He et al. 2016 §4.2).
 *
 * Layer names are torchvision's module paths. Steps that PyTorch performs
 * with a reused or functional module get these names (docs/LAYERS.md):
 *   layerS.B.relu1 / relu2     the ReLUs inside the block
 *   layerS.B.add               the residual sum (pre-activation)
 *   layerS.B.relu              the block's last ReLU = "layerS.B" (and
 *                              "layerS" for the last block of the stage)
 *   layerS.B.shortcut          option-A shortcut (CIFAR)
 */
#include "model_internal.h"

#include <stdio.h>
#include <string.h>

#define RESNET_MAX_STAGES 8

typedef struct {
    char block[16];        /* basic | bottleneck */
    int layers[RESNET_MAX_STAGES];
    int planes[RESNET_MAX_STAGES];
    int stages;
    char stem[16];         /* imagenet | cifar */
    int stem_width;
    int groups, width_per_group;
    char shortcut[16];     /* projection | option_a */
    float bn_eps;
    char fc[32];
} resnet_config;

static int read_config(lp_model *m, resnet_config *c)
{
    int n_planes = 0;
    LP_TRY(lp_build_meta_str(m, "resnet.block", c->block, sizeof c->block));
    LP_TRY(lp_build_meta_ints(m, "resnet.layers", 1, 256, c->layers,
                              RESNET_MAX_STAGES, &c->stages));
    LP_TRY(lp_build_meta_ints(m, "resnet.planes", 1, 8192, c->planes,
                              RESNET_MAX_STAGES, &n_planes));
    if (c->stages < 1 || n_planes != c->stages)
        return lp_set_error(LP_EFORMAT,
                            "resnet.layers has %d stages but resnet.planes %d",
                            c->stages, n_planes);
    LP_TRY(lp_build_meta_str(m, "resnet.stem", c->stem, sizeof c->stem));
    LP_TRY(lp_build_meta_int(m, "resnet.stem_width", 1, 8192, &c->stem_width));
    LP_TRY(lp_build_meta_int_or(m, "resnet.groups", 1, 1024, 1, &c->groups));
    LP_TRY(lp_build_meta_int_or(m, "resnet.width_per_group", 1, 8192, 64,
                                &c->width_per_group));
    LP_TRY(lp_build_meta_str(m, "resnet.shortcut", c->shortcut,
                             sizeof c->shortcut));
    LP_TRY(lp_build_meta_float(m, "resnet.bn_eps", 0.0, 1.0, &c->bn_eps));
    LP_TRY(lp_build_meta_str(m, "resnet.fc", c->fc, sizeof c->fc));
    if (strcmp(c->block, "basic") && strcmp(c->block, "bottleneck"))
        return lp_set_error(LP_EFORMAT, "resnet.block '%s' is not basic or bottleneck",
                            c->block);
    if (strcmp(c->stem, "imagenet") && strcmp(c->stem, "cifar"))
        return lp_set_error(LP_EFORMAT, "resnet.stem '%s' is not imagenet or cifar",
                            c->stem);
    if (strcmp(c->shortcut, "projection") && strcmp(c->shortcut, "option_a"))
        return lp_set_error(LP_EFORMAT,
                            "resnet.shortcut '%s' is not projection or option_a",
                            c->shortcut);
    if (!strcmp(c->block, "basic") && (c->groups != 1 || c->width_per_group != 64))
        return lp_set_error(LP_EFORMAT,
                            "basic blocks need groups 1 and width_per_group 64");
    return LP_OK;
}

/* conv (no bias, as in every torchvision ResNet conv) */
static int add_conv(lp_model *m, const char *name, int in, int c_out, int k,
                    int stride, int pad, int groups)
{
    char wname[LP_NODE_NAME + 8];
    const lp_node *src = &m->nodes[in];
    lp_conv2d_params p = {0};
    int dims[3], node;
    p.n = 1;
    p.c_in = src->dims[0];
    p.h_in = src->dims[1];
    p.w_in = src->dims[2];
    p.c_out = c_out;
    p.k_h = p.k_w = k;
    p.stride_h = p.stride_w = stride;
    p.pad_h = p.pad_w = pad;
    p.dil_h = p.dil_w = 1;
    p.groups = groups;
    dims[0] = c_out;
    if (lp_conv2d_output_size(&p, &dims[1], &dims[2]) != LP_OK)
        return lp_set_error(LP_EFORMAT, "%s: %s", name, lp_last_error());
    node = lp_build_node(m, LP_NODE_CONV, name, in, -1, 3, dims);
    if (node < 0)
        return node;
    m->nodes[node].p.conv = p;
    snprintf(wname, sizeof wname, "%s.weight", name);
    m->nodes[node].w = lp_build_tensor(m, wname, 4, c_out, p.c_in / groups, k, k);
    if (m->nodes[node].w == NULL)
        return LP_EFORMAT;
    return node;
}

static int add_bn(lp_model *m, const char *name, int in, float eps)
{
    char t[LP_NODE_NAME + 16];
    int c = m->nodes[in].dims[0];
    int node = lp_build_node(m, LP_NODE_BN, name, in, -1, 3, m->nodes[in].dims);
    lp_node *nd;
    if (node < 0)
        return node;
    nd = &m->nodes[node];
    nd->eps = eps;
    snprintf(t, sizeof t, "%s.weight", name);
    nd->w = lp_build_tensor(m, t, 1, c);
    snprintf(t, sizeof t, "%s.bias", name);
    nd->b = nd->w ? lp_build_tensor(m, t, 1, c) : NULL;
    snprintf(t, sizeof t, "%s.running_mean", name);
    nd->mean = nd->b ? lp_build_tensor(m, t, 1, c) : NULL;
    snprintf(t, sizeof t, "%s.running_var", name);
    nd->var = nd->mean ? lp_build_tensor(m, t, 1, c) : NULL;
    return nd->var ? node : LP_EFORMAT;
}

static int add_simple(lp_model *m, lp_node_kind kind, const char *name, int in)
{
    return lp_build_node(m, kind, name, in, -1, m->nodes[in].ndim,
                         m->nodes[in].dims);
}

static int add_stem(lp_model *m, const resnet_config *c)
{
    int x;
    int imagenet = !strcmp(c->stem, "imagenet");
    lp_pool2d_params pp = {0};
    int dims[3];
    x = add_conv(m, "conv1", 0, c->stem_width, imagenet ? 7 : 3,
                 imagenet ? 2 : 1, imagenet ? 3 : 1, 1);
    if (x < 0) return x;
    x = add_bn(m, "bn1", x, c->bn_eps);
    if (x < 0) return x;
    x = add_simple(m, LP_NODE_RELU, "relu", x);
    if (x < 0 || !imagenet)
        return x;
    pp.n = 1;
    pp.c = m->nodes[x].dims[0];
    pp.h_in = m->nodes[x].dims[1];
    pp.w_in = m->nodes[x].dims[2];
    pp.k_h = pp.k_w = 3;
    pp.stride_h = pp.stride_w = 2;
    pp.pad_h = pp.pad_w = 1;
    dims[0] = pp.c;
    if (lp_pool2d_output_size(&pp, &dims[1], &dims[2]) != LP_OK)
        return lp_set_error(LP_EFORMAT, "maxpool: %s", lp_last_error());
    x = lp_build_node(m, LP_NODE_MAXPOOL, "maxpool", x, -1, 3, dims);
    if (x >= 0)
        m->nodes[x].p.pool = pp;
    return x;
}

/* The residual branch of one block; returns its last node (a BN). */
static int add_branch(lp_model *m, const resnet_config *c, const char *prefix,
                      int x, int planes, int stride, int *out_ch)
{
    char name[LP_NODE_NAME];
#define NAME(suffix) (snprintf(name, sizeof name, "%s.%s", prefix, suffix), name)
    if (!strcmp(c->block, "basic")) {
        *out_ch = planes;
        x = add_conv(m, NAME("conv1"), x, planes, 3, stride, 1, 1);
        if (x >= 0) x = add_bn(m, NAME("bn1"), x, c->bn_eps);
        if (x >= 0) x = add_simple(m, LP_NODE_RELU, NAME("relu1"), x);
        if (x >= 0) x = add_conv(m, NAME("conv2"), x, planes, 3, 1, 1, 1);
        if (x >= 0) x = add_bn(m, NAME("bn2"), x, c->bn_eps);
    } else {
        int width = (int)((long long)planes * c->width_per_group / 64) * c->groups;
        *out_ch = planes * 4;
        if (width <= 0 || width > 65536)
            return lp_set_error(LP_EFORMAT, "%s: bottleneck width %d out of range",
                                prefix, width);
        x = add_conv(m, NAME("conv1"), x, width, 1, 1, 0, 1);
        if (x >= 0) x = add_bn(m, NAME("bn1"), x, c->bn_eps);
        if (x >= 0) x = add_simple(m, LP_NODE_RELU, NAME("relu1"), x);
        if (x >= 0) x = add_conv(m, NAME("conv2"), x, width, 3, stride, 1, c->groups);
        if (x >= 0) x = add_bn(m, NAME("bn2"), x, c->bn_eps);
        if (x >= 0) x = add_simple(m, LP_NODE_RELU, NAME("relu2"), x);
        if (x >= 0) x = add_conv(m, NAME("conv3"), x, *out_ch, 1, 1, 0, 1);
        if (x >= 0) x = add_bn(m, NAME("bn3"), x, c->bn_eps);
    }
#undef NAME
    return x;
}

static int add_shortcut(lp_model *m, const resnet_config *c, const char *prefix,
                        int x, int out_ch, int stride)
{
    char name[LP_NODE_NAME];
    int in_ch = m->nodes[x].dims[0];
    if (stride == 1 && in_ch == out_ch)
        return x; /* identity */
    if (!strcmp(c->shortcut, "projection")) {
        int y;
        snprintf(name, sizeof name, "%s.downsample.0", prefix);
        y = add_conv(m, name, x, out_ch, 1, stride, 0, 1);
        if (y < 0) return y;
        snprintf(name, sizeof name, "%s.downsample.1", prefix);
        y = add_bn(m, name, y, c->bn_eps);
        if (y < 0) return y;
        snprintf(name, sizeof name, "%s.downsample", prefix);
        LP_TRY(lp_build_alias(m, y, name));
        return y;
    } else {
        /* option A: x[:, :, ::s, ::s] then planes/4 zero channels on each side */
        int pad = (out_ch - in_ch) / 2, dims[3], y;
        if (out_ch < in_ch || (out_ch - in_ch) % 2)
            return lp_set_error(LP_EFORMAT,
                                "%s: option-A shortcut cannot map %d to %d channels",
                                prefix, in_ch, out_ch);
        dims[0] = out_ch;
        dims[1] = (m->nodes[x].dims[1] + stride - 1) / stride;
        dims[2] = (m->nodes[x].dims[2] + stride - 1) / stride;
        snprintf(name, sizeof name, "%s.shortcut", prefix);
        y = lp_build_node(m, LP_NODE_PAD_SUB, name, x, -1, 3, dims);
        if (y < 0) return y;
        m->nodes[y].p.pad.stride = stride;
        m->nodes[y].p.pad.before = pad;
        m->nodes[y].p.pad.after = pad;
        return y;
    }
}

static int add_block(lp_model *m, const resnet_config *c, int stage, int block,
                     int x, int planes, int stride)
{
    char prefix[64], name[LP_NODE_NAME];
    int out_ch, branch, shortcut, sum, relu;
    snprintf(prefix, sizeof prefix, "layer%d.%d", stage + 1, block);
    branch = add_branch(m, c, prefix, x, planes, stride, &out_ch);
    if (branch < 0) return branch;
    shortcut = add_shortcut(m, c, prefix, x, out_ch, stride);
    if (shortcut < 0) return shortcut;
    for (int d = 0; d < 3; d++)
        if (m->nodes[shortcut].dims[d] != m->nodes[branch].dims[d])
            return lp_set_error(LP_EFORMAT, "%s: shortcut and branch shapes differ",
                                prefix);
    snprintf(name, sizeof name, "%s.add", prefix);
    sum = lp_build_node(m, LP_NODE_ADD, name, branch, shortcut, 3,
                        m->nodes[branch].dims);
    if (sum < 0) return sum;
    snprintf(name, sizeof name, "%s.relu", prefix);
    relu = add_simple(m, LP_NODE_RELU, name, sum);
    if (relu < 0) return relu;
    LP_TRY(lp_build_alias(m, relu, prefix));
    if (block == c->layers[stage] - 1) {
        snprintf(name, sizeof name, "layer%d", stage + 1);
        LP_TRY(lp_build_alias(m, relu, name));
    }
    return relu;
}

static int add_head(lp_model *m, const resnet_config *c, int x)
{
    char name[64];
    int dims[1] = {m->nodes[x].dims[0]};
    int k = m->info.num_classes;
    lp_node *nd;
    x = lp_build_node(m, LP_NODE_GAP, "avgpool", x, -1, 1, dims);
    if (x < 0 || k == 0)
        return x;
    dims[0] = k;
    x = lp_build_node(m, LP_NODE_LINEAR, c->fc, x, -1, 1, dims);
    if (x < 0) return x;
    nd = &m->nodes[x];
    nd->p.linear.in_f = m->nodes[nd->in[0]].dims[0];
    nd->p.linear.out_f = k;
    snprintf(name, sizeof name, "%s.weight", c->fc);
    nd->w = lp_build_tensor(m, name, 2, k, nd->p.linear.in_f);
    snprintf(name, sizeof name, "%s.bias", c->fc);
    nd->b = nd->w ? lp_build_tensor(m, name, 1, k) : NULL;
    return nd->b ? x : LP_EFORMAT;
}

int lp_build_resnet(lp_model *m)
{
    resnet_config c;
    int x;
    memset(&c, 0, sizeof c);
    LP_TRY(read_config(m, &c));
    x = add_stem(m, &c);
    for (int s = 0; s < c.stages && x >= 0; s++)
        for (int b = 0; b < c.layers[s] && x >= 0; b++)
            x = add_block(m, &c, s, b, x, c.planes[s], (s > 0 && b == 0) ? 2 : 1);
    if (x >= 0)
        x = add_head(m, &c, x);
    return x < 0 ? x : LP_OK;
}
