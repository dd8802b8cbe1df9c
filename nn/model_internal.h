/*
 * model_internal.h — the network as a plain list of nodes (darknet's layer
 * array, llm.c's fixed forward/backward sequence), shared by the builders
 * (resnet.c, vit.c), the builder helpers (build.c) and the executor
 * (model.c, node.c). Not part of the public API.
 *
 * A node is one step of the network with one output tensor. Its inputs are
 * the outputs of earlier nodes (node 0 is the network input), so the list
 * is already in execution order and backward simply walks it in reverse.
 * Shapes are per image; the batch size is chosen per pass.
 */
#ifndef LOUPE_MODEL_INTERNAL_H
#define LOUPE_MODEL_INTERNAL_H

#include "loupe.h"
#include "internal.h"

#define LP_NODE_NAME 96
#define LP_NODE_ALIASES 4
#define LP_MAX_NODES 4096

typedef enum {
    LP_NODE_INPUT,
    LP_NODE_CONV,        /* conv2d, optional bias */
    LP_NODE_BN,          /* batchnorm2d, running statistics */
    LP_NODE_RELU,
    LP_NODE_GELU,
    LP_NODE_MAXPOOL,
    LP_NODE_ADD,         /* in[0] + in[1] */
    LP_NODE_PAD_SUB,     /* option-A shortcut */
    LP_NODE_GAP,         /* global average pool + flatten: [C,H,W] -> [C] */
    LP_NODE_LINEAR,      /* over the last dimension */
    LP_NODE_TOKENS,      /* [D,h,w] -> [h*w, D] (flatten(2).transpose(1,2)) */
    LP_NODE_PATCHIFY,    /* [C,H,W] -> [(H/p)(W/p), p*p*C], (p1 p2 c) order */
    LP_NODE_EMBED,       /* prepend the class token, add position embeddings */
    LP_NODE_LAYERNORM,
    LP_NODE_ATTN_SCORES, /* fused qkv [T, 3*inner] -> scores [H, T, T] */
    LP_NODE_SOFTMAX,     /* softmax over the last dimension */
    LP_NODE_ATTN_APPLY,  /* probs [H,T,T] (in[0]), qkv (in[1]) -> [T, inner] */
    LP_NODE_TOKEN_SELECT,/* [T,D] -> [D], token 0 */
    LP_NODE_TOKEN_MEAN,  /* [T,D] -> [D], mean of tokens 1.. */
    LP_NODE_KIND_COUNT
} lp_node_kind;

typedef struct {
    lp_node_kind kind;
    char name[LP_NODE_NAME];
    char alias[LP_NODE_ALIASES][LP_NODE_NAME];
    int n_alias;
    int in[2];              /* producing nodes, -1 when unused */
    int ndim;               /* per-image output shape */
    int dims[4];
    size_t size;            /* per-image output elements */
    int last_use;           /* last node that reads this output */

    /* parameters, borrowed from the weight file */
    const float *w, *b;     /* conv/linear weight and bias; LN/BN gamma, beta;
                               EMBED: w = class token [D], b = positions [T,D] */
    const float *mean, *var;/* BN running statistics */
    float eps;

    union {
        lp_conv2d_params conv;  /* n is set per pass */
        lp_pool2d_params pool;  /* n is set per pass */
        struct { int in_f, out_f; } linear;
        struct { int stride, before, after; } pad;
        struct { int heads, head_dim; float scale; } attn;
        lp_gelu_kind gelu;
        int patch;          /* PATCHIFY: patch side */
        int first_token;    /* TOKEN_MEAN: mean over tokens first_token.. */
    } p;
} lp_node;

/* One attached hook (nn/hooks.c). view: 0 = the node's output; 1, 2, 3 =
 * the q, k, v columns of a fused qkv node. */
typedef struct {
    int handle;
    int node;
    unsigned when;
    int view;
    char name[LP_NODE_NAME + 8];
    lp_hook_fn fn;
    void *user;
} lp_hook_entry;

struct lp_model {
    struct lp_lpw *file;
    lp_model_info info;
    lp_node *nodes;
    int n_nodes;
    char **labels;            /* info.num_classes names, or NULL */

    /* builder bookkeeping: which file tensors were used */
    unsigned char *tensor_used;
    /* dry run (lp_model_expected_tensors): record required tensors
     * instead of fetching them */
    lp_tensor_spec *collect;
    int n_collect, cap_collect;

    /* state of the last pass */
    int batch;
    unsigned flags;
    float **act;              /* [n_nodes] outputs (in the arena), NULL when freed */
    float **grad;             /* [n_nodes] gradients w.r.t. outputs */
    int32_t **argmax;         /* [n_nodes] max-pool choices */

    /* the activation arena: one block holds every output of a forward
     * pass, at offsets planned from the outputs' lifetimes (model.c) and
     * kept for the next pass with the same plan */
    float *arena;
    size_t arena_floats;
    size_t *act_off;          /* [n_nodes] each output's offset, in floats */
    int plan_batch;           /* the batch the plan is for; 0: no plan */
    int plan_keep_all;        /* planned with every output kept to the end */
    unsigned char *plan_keep; /* [n_nodes] the keep requests planned for */

    /* hooks (nn/hooks.c) */
    lp_hook_entry *hooks;
    int n_hooks, cap_hooks, next_handle;
    unsigned char *hook_mask; /* [n_nodes] LP_HOOK_FORWARD|BACKWARD bits */
    int *keep;                /* [n_nodes] keep requests */
    lp_backward_rule *rules;  /* [n_nodes] replaced backward, or NULL */
    void **rule_user;
};

/* ---- hooks (hooks.c) ------------------------------------------------ */

int lp_hooks_init(lp_model *m);
void lp_hooks_free(lp_model *m);
/* Run the hooks of `when` attached to node i (call only when
 * m->hook_mask[i] & when). */
int lp_hooks_run(lp_model *m, int i, unsigned when);
/* Backward of node i through its replaced rule. */
int lp_hooks_backward_rule(lp_model *m, int i, int n);

/* ---- builder helpers (build.c) ----------------------------------- */

/* Append a node; returns its index or a negative status. dims are the
 * per-image output shape. */
int lp_build_node(lp_model *m, lp_node_kind kind, const char *name, int in0,
                  int in1, int ndim, const int *dims);
/* Add an alias (another PyTorch module path) to a node. */
int lp_build_alias(lp_model *m, int node, const char *alias);
/* The tensor `name` with exactly this shape, marked as used; NULL (error
 * set, naming the tensor and both shapes) when absent or different. */
const float *lp_build_tensor(lp_model *m, const char *name, int ndim, ...);
/* Fail if some tensor of the file was not used by the builder. */
int lp_build_check_all_used(const lp_model *m);
/* Typed metadata with a range check; the key must exist. */
int lp_build_meta_int(const lp_model *m, const char *key, int lo, int hi,
                      int *value);
int lp_build_meta_int_or(const lp_model *m, const char *key, int lo, int hi,
                         int fallback, int *value);
int lp_build_meta_float(const lp_model *m, const char *key, double lo,
                        double hi, float *value);
int lp_build_meta_str(const lp_model *m, const char *key, char *buf,
                      size_t cap);
int lp_build_meta_ints(const lp_model *m, const char *key, int lo, int hi,
                       int *values, int cap, int *count);

/* Node shape helper: dims of node i as ints. */
static inline int lp_node_channels(const lp_model *m, int i)
{
    return m->nodes[i].dims[0];
}

/* ---- the builders ------------------------------------------------- */

int lp_build_resnet(lp_model *m);
int lp_build_vit(lp_model *m);

/* ---- node execution (node.c) -------------------------------------- */

const char *lp_node_kind_name(lp_node_kind kind);
/* Forward one node over a batch of n: reads the inputs' outputs from
 * m->act, writes m->act[i] (allocated by the caller). */
int lp_node_forward(lp_model *m, int i, int n);
/* Backward one node: reads m->grad[i], accumulates into the inputs'
 * gradients (allocated and zeroed by the caller). */
int lp_node_backward(lp_model *m, int i, int n);

#endif /* LOUPE_MODEL_INTERNAL_H */
