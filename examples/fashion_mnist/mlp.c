/*
 * mlp.c - forward pass, back-propagation and Adam for the MLP in mlp.h.
 *
 * Plain loops, ordered so the innermost one walks contiguous memory and the
 * compiler can vectorise it; rows whose input is zero are skipped, which on
 * Fashion-MNIST (half the pixels are background) and after ReLU roughly
 * halves the work. One thread: the whole set trains in seconds per epoch.
 */
#include "mlp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MLP_BETA1 0.9
#define MLP_BETA2 0.999
#define MLP_EPS 1e-8

static const struct {
  const char *name;
  int n_layers;
  int sizes[MLP_MAX_LAYERS + 1];
} mlp_archs[] = {
    {"mlp", 3, {784, 256, 128, 10}},
    {"mlp-small", 2, {784, 128, 10}},
    {"mlp-large", 3, {784, 512, 256, 10}},
};

int mlp_arch(const char *name, int sizes[MLP_MAX_LAYERS + 1]) {
  size_t len = strlen(name);
  if (len > 4 && strcmp(name + len - 4, ".cfg") == 0)
    len -= 4;
  for (size_t i = 0; i < sizeof mlp_archs / sizeof mlp_archs[0]; i++) {
    if (strlen(mlp_archs[i].name) == len &&
        strncmp(mlp_archs[i].name, name, len) == 0) {
      memcpy(sizes, mlp_archs[i].sizes, sizeof mlp_archs[i].sizes);
      return mlp_archs[i].n_layers;
    }
  }
  return 0;
}

const char *mlp_arch_list(void) {
  return "mlp.cfg (784-256-128-10), mlp-small.cfg (784-128-10), "
         "mlp-large.cfg (784-512-256-10)";
}

/* splitmix64: a tiny, good-enough generator whose state is the caller's. */
static uint64_t mlp_rand(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double mlp_uniform(uint64_t *state) {
  return ((double)(mlp_rand(state) >> 11) + 0.5) / 9007199254740992.0;
}

static double mlp_gauss(uint64_t *state) {
  double u = mlp_uniform(state), v = mlp_uniform(state);
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

int mlp_init(mlp *net, int n_layers, const int *sizes, uint64_t seed) {
  memset(net, 0, sizeof *net);
  if (n_layers < 1 || n_layers > MLP_MAX_LAYERS)
    return -1;
  net->n_layers = n_layers;
  size_t off = 0;
  for (int l = 0; l <= n_layers; l++) {
    if (sizes[l] < 1 || sizes[l] > 65536)
      return -1;
    net->sizes[l] = sizes[l];
  }
  for (int l = 0; l < n_layers; l++) {
    net->w_off[l] = off;
    off += (size_t)sizes[l] * (size_t)sizes[l + 1];
    net->b_off[l] = off;
    off += (size_t)sizes[l + 1];
  }
  net->n_params = off;
  net->params = calloc(off, sizeof(float));
  net->adam_m = calloc(off, sizeof(float));
  net->adam_v = calloc(off, sizeof(float));
  if (!net->params || !net->adam_m || !net->adam_v) {
    mlp_free(net);
    return -1;
  }
  uint64_t state = seed;
  for (int l = 0; l < n_layers; l++) {
    /* He initialisation keeps ReLU activations from shrinking or blowing
     * up layer after layer; biases start at zero. */
    double sd = sqrt(2.0 / sizes[l]);
    size_t nw = (size_t)sizes[l] * (size_t)sizes[l + 1];
    float *w = net->params + net->w_off[l];
    for (size_t i = 0; i < nw; i++)
      w[i] = (float)(sd * mlp_gauss(&state));
  }
  return 0;
}

void mlp_free(mlp *net) {
  free(net->params);
  free(net->adam_m);
  free(net->adam_v);
  memset(net, 0, sizeof *net);
}

int mlp_work_init(mlp_work *w, const mlp *net, int batch) {
  memset(w, 0, sizeof *w);
  w->batch = batch;
  for (int l = 0; l <= net->n_layers; l++) {
    size_t n = (size_t)batch * (size_t)net->sizes[l];
    w->act[l] = calloc(n, sizeof(float));
    w->grad[l] = calloc(n, sizeof(float));
    if (!w->act[l] || !w->grad[l]) {
      mlp_work_free(w);
      return -1;
    }
  }
  w->grads = calloc(net->n_params, sizeof(float));
  if (!w->grads) {
    mlp_work_free(w);
    return -1;
  }
  return 0;
}

void mlp_work_free(mlp_work *w) {
  for (int l = 0; l <= MLP_MAX_LAYERS; l++) {
    free(w->act[l]);
    free(w->grad[l]);
  }
  free(w->grads);
  memset(w, 0, sizeof *w);
}

long long mlp_macs(const mlp *net) {
  long long macs = 0;
  for (int l = 0; l < net->n_layers; l++)
    macs += (long long)net->sizes[l] * net->sizes[l + 1];
  return macs;
}

/* Y[n][out] = X[n][in] W[in][out] + b, row by row. */
static void mlp_dense(const float *x, const float *wt, const float *b, float *y,
                      int n, int in, int out) {
  for (int r = 0; r < n; r++) {
    float *yr = y + (size_t)r * out;
    const float *xr = x + (size_t)r * in;
    memcpy(yr, b, (size_t)out * sizeof(float));
    for (int k = 0; k < in; k++) {
      float xk = xr[k];
      if (xk == 0.0f)
        continue;
      const float *wk = wt + (size_t)k * out;
      for (int j = 0; j < out; j++)
        yr[j] += xk * wk[j];
    }
  }
}

static void mlp_softmax(float *y, int n, int classes) {
  for (int r = 0; r < n; r++) {
    float *yr = y + (size_t)r * classes;
    float max = yr[0];
    for (int j = 1; j < classes; j++)
      max = yr[j] > max ? yr[j] : max;
    double sum = 0;
    for (int j = 0; j < classes; j++) {
      yr[j] = expf(yr[j] - max);
      sum += yr[j];
    }
    for (int j = 0; j < classes; j++)
      yr[j] = (float)(yr[j] / sum);
  }
}

void mlp_forward(const mlp *net, mlp_work *w, int n) {
  for (int l = 0; l < net->n_layers; l++) {
    int in = net->sizes[l], out = net->sizes[l + 1];
    mlp_dense(w->act[l], net->params + net->w_off[l],
              net->params + net->b_off[l], w->act[l + 1], n, in, out);
    if (l + 1 < net->n_layers) {
      float *y = w->act[l + 1];
      size_t len = (size_t)n * out;
      for (size_t i = 0; i < len; i++)
        y[i] = y[i] > 0.0f ? y[i] : 0.0f;
    }
  }
  mlp_softmax(w->act[net->n_layers], n, net->sizes[net->n_layers]);
}

double mlp_loss(const mlp *net, const mlp_work *w, int n,
                const unsigned char *labels, int *top1, int *top5) {
  int classes = net->sizes[net->n_layers];
  const float *p = w->act[net->n_layers];
  double loss = 0;
  int hit1 = 0, hit5 = 0;
  for (int r = 0; r < n; r++) {
    const float *pr = p + (size_t)r * classes;
    float py = pr[labels[r]];
    int above = 0; /* classes ranked above the true one */
    for (int j = 0; j < classes; j++)
      above += pr[j] > py;
    hit1 += above == 0;
    hit5 += above < 5;
    loss -= log(py > 1e-12f ? py : 1e-12f);
  }
  *top1 = hit1;
  *top5 = hit5;
  return n > 0 ? loss / n : 0.0;
}

/* dX[n][in] = dY[n][out] W^T, masked by ReLU's derivative (x > 0). */
static void mlp_dense_back_input(const float *dy, const float *wt,
                                 const float *x, float *dx, int n, int in,
                                 int out) {
  for (int r = 0; r < n; r++) {
    const float *dyr = dy + (size_t)r * out;
    const float *xr = x + (size_t)r * in;
    float *dxr = dx + (size_t)r * in;
    for (int k = 0; k < in; k++) {
      if (xr[k] <= 0.0f) {
        dxr[k] = 0.0f;
        continue;
      }
      const float *wk = wt + (size_t)k * out;
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      int j = 0;
      for (; j + 4 <= out; j += 4) {
        s0 += dyr[j] * wk[j];
        s1 += dyr[j + 1] * wk[j + 1];
        s2 += dyr[j + 2] * wk[j + 2];
        s3 += dyr[j + 3] * wk[j + 3];
      }
      for (; j < out; j++)
        s0 += dyr[j] * wk[j];
      dxr[k] = (s0 + s1) + (s2 + s3);
    }
  }
}

/* dW[in][out] = X^T dY and db[out] = column sums of dY. */
static void mlp_dense_back_params(const float *x, const float *dy, float *dw,
                                  float *db, int n, int in, int out) {
  memset(dw, 0, (size_t)in * out * sizeof(float));
  memset(db, 0, (size_t)out * sizeof(float));
  for (int r = 0; r < n; r++) {
    const float *xr = x + (size_t)r * in;
    const float *dyr = dy + (size_t)r * out;
    for (int j = 0; j < out; j++)
      db[j] += dyr[j];
    for (int k = 0; k < in; k++) {
      float xk = xr[k];
      if (xk == 0.0f)
        continue;
      float *dwk = dw + (size_t)k * out;
      for (int j = 0; j < out; j++)
        dwk[j] += xk * dyr[j];
    }
  }
}

static void mlp_adam(mlp *net, const float *g, double lr) {
  net->adam_step++;
  double t = (double)net->adam_step;
  /* Bias correction folded into the step size, as in the Adam paper. */
  float step =
      (float)(lr * sqrt(1.0 - pow(MLP_BETA2, t)) / (1.0 - pow(MLP_BETA1, t)));
  float b1 = (float)MLP_BETA1, b2 = (float)MLP_BETA2, eps = (float)MLP_EPS;
  float *p = net->params, *m = net->adam_m, *v = net->adam_v;
  for (size_t i = 0; i < net->n_params; i++) {
    m[i] = b1 * m[i] + (1.0f - b1) * g[i];
    v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
    p[i] -= step * m[i] / (sqrtf(v[i]) + eps);
  }
}

void mlp_train_step(mlp *net, mlp_work *w, int n, const unsigned char *labels,
                    double lr) {
  int top = net->n_layers, classes = net->sizes[top];
  /* Softmax with cross-entropy: d loss / d logits = (p - onehot) / n. */
  const float *p = w->act[top];
  float *d = w->grad[top];
  float inv = 1.0f / (float)n;
  for (int r = 0; r < n; r++) {
    for (int j = 0; j < classes; j++) {
      size_t i = (size_t)r * classes + j;
      d[i] = (p[i] - (j == labels[r] ? 1.0f : 0.0f)) * inv;
    }
  }
  for (int l = top - 1; l >= 0; l--) {
    int in = net->sizes[l], out = net->sizes[l + 1];
    mlp_dense_back_params(w->act[l], w->grad[l + 1], w->grads + net->w_off[l],
                          w->grads + net->b_off[l], n, in, out);
    if (l > 0) /* the input layer needs no gradient */
      mlp_dense_back_input(w->grad[l + 1], net->params + net->w_off[l],
                           w->act[l], w->grad[l], n, in, out);
  }
  mlp_adam(net, w->grads, lr);
}
