/*
 * mlp.h - a multilayer perceptron classifier: fully connected layers with
 * ReLU between them, softmax cross-entropy on top, trained with Adam.
 *
 * All parameters and both Adam moments live in three flat arrays so that the
 * weights file is one write and one read, and so that resuming restores the
 * optimizer exactly where it stopped.
 */
#ifndef FASHION_MNIST_MLP_H
#define FASHION_MNIST_MLP_H

#include <stddef.h>
#include <stdint.h>

#define MLP_MAX_LAYERS 4 /* weight layers; sizes has one more entry */

typedef struct mlp {
  int n_layers;                  /* weight layers */
  int sizes[MLP_MAX_LAYERS + 1]; /* input, hidden..., classes */
  size_t n_params;               /* weights and biases of every layer */
  float *params;                 /* per layer: W [in][out], then b [out] */
  float *adam_m, *adam_v;        /* Adam's first and second moments */
  uint64_t adam_step;            /* optimizer steps taken */
  size_t w_off[MLP_MAX_LAYERS];  /* offsets of W and b in params */
  size_t b_off[MLP_MAX_LAYERS];
} mlp;

/* Scratch space for one minibatch: activations and their gradients. */
typedef struct mlp_work {
  int batch;
  float *act[MLP_MAX_LAYERS + 1];  /* act[0] is the input batch */
  float *grad[MLP_MAX_LAYERS + 1]; /* d loss / d act */
  float *grads;                    /* d loss / d params, like params */
} mlp_work;

/* Fills `sizes` for an architecture name ("mlp.cfg", "mlp-small.cfg",
 * "mlp-large.cfg"; the ".cfg" may be left off). Returns the number of weight
 * layers, or 0 for an unknown name. */
int mlp_arch(const char *name, int sizes[MLP_MAX_LAYERS + 1]);

/* The names mlp_arch() knows, for help text. */
const char *mlp_arch_list(void);

/* Allocates a network with `n_layers` weight layers of the given sizes, its
 * weights drawn (He initialisation) from `seed`. Returns 0 or -1 (memory). */
int mlp_init(mlp *net, int n_layers, const int *sizes, uint64_t seed);
void mlp_free(mlp *net);

int mlp_work_init(mlp_work *w, const mlp *net, int batch);
void mlp_work_free(mlp_work *w);

/* Multiply-accumulates of one forward pass for one image. */
long long mlp_macs(const mlp *net);

/* Runs the forward pass on w->act[0] (n rows) and leaves class
 * probabilities in w->act[n_layers]. */
void mlp_forward(const mlp *net, mlp_work *w, int n);

/* Mean cross-entropy of the probabilities in w->act[n_layers] against
 * `labels` for n rows; also counts top-1 and top-5 hits. */
double mlp_loss(const mlp *net, const mlp_work *w, int n,
                const unsigned char *labels, int *top1, int *top5);

/* Back-propagates the mean cross-entropy of the last forward pass into
 * w->grads, then takes one Adam step with learning rate `lr`. */
void mlp_train_step(mlp *net, mlp_work *w, int n, const unsigned char *labels,
                    double lr);

#endif
