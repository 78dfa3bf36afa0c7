/*
 * trainer_files_test.c - the example trainer's files: weights that survive a
 * round trip exactly and refuse to load when damaged, and the dataset
 * reader's answers to a short or foreign IDX file.
 *
 * A resumed run trusts the weights it downloads; a damaged file must be
 * refused with a message, never trained on.
 */
#include "idx.h"
#include "mlp.h"
#include "weights.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

static char trainer_files_dir[256];

static int trainer_files_setup(void **state) {
  (void)state;
  snprintf(trainer_files_dir, sizeof trainer_files_dir,
           "%s/chub-trainer-files-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  return mkdtemp(trainer_files_dir) ? 0 : -1;
}

static int trainer_files_teardown(void **state) {
  (void)state;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", trainer_files_dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void trainer_files_path(char *buf, size_t len, const char *name) {
  snprintf(buf, len, "%s/%s", trainer_files_dir, name);
}

static void weights_round_trip(void **state) {
  (void)state;
  int sizes[MLP_MAX_LAYERS + 1];
  int n = mlp_arch("mlp-small.cfg", sizes);
  assert_int_equal(n, 2);
  mlp net, back;
  assert_int_equal(mlp_init(&net, n, sizes, 42), 0);
  for (size_t i = 0; i < net.n_params; i++) {
    net.adam_m[i] = (float)i * 0.5f;
    net.adam_v[i] = (float)i * 0.25f;
  }
  net.adam_step = 1234;
  char path[512], err[512];
  trainer_files_path(path, sizeof path, "w.bin");
  weights_meta meta = {7, 0.875, 0.9}, got;
  assert_int_equal(weights_save(path, &net, &meta, err, sizeof err), 0);
  assert_int_equal(access(path, F_OK), 0);
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  assert_int_not_equal(access(tmp, F_OK), 0); /* renamed into place */

  assert_int_equal(weights_load(path, &back, &got, err, sizeof err), 0);
  assert_int_equal(back.n_layers, 2);
  assert_memory_equal(back.sizes, net.sizes, sizeof net.sizes);
  assert_int_equal(back.n_params, net.n_params);
  assert_memory_equal(back.params, net.params, net.n_params * sizeof(float));
  assert_memory_equal(back.adam_m, net.adam_m, net.n_params * sizeof(float));
  assert_memory_equal(back.adam_v, net.adam_v, net.n_params * sizeof(float));
  assert_int_equal(back.adam_step, 1234);
  assert_int_equal(got.epoch, 7);
  assert_true(got.fitness == 0.875 && got.best_fitness == 0.9);
  mlp_free(&back);
  mlp_free(&net);
}

static void weights_refuse_damage(void **state) {
  (void)state;
  int sizes[MLP_MAX_LAYERS + 1];
  int n = mlp_arch("mlp-small", sizes);
  mlp net, back;
  assert_int_equal(mlp_init(&net, n, sizes, 1), 0);
  char path[512], err[512];
  trainer_files_path(path, sizeof path, "d.bin");
  weights_meta meta = {0, 0.5, 0.5}, got;
  assert_int_equal(weights_save(path, &net, &meta, err, sizeof err), 0);

  /* One flipped byte in the middle of the weights. */
  FILE *fp = fopen(path, "r+b");
  assert_non_null(fp);
  fseek(fp, 1000, SEEK_SET);
  int c = fgetc(fp);
  fseek(fp, 1000, SEEK_SET);
  fputc(c ^ 0x40, fp);
  fclose(fp);
  assert_int_equal(weights_load(path, &back, &got, err, sizeof err), -1);
  assert_non_null(strstr(err, "checksum"));
  assert_non_null(strstr(err, path));

  /* Cut short, as an interrupted download would be. */
  assert_int_equal(weights_save(path, &net, &meta, err, sizeof err), 0);
  assert_int_equal(truncate(path, 5000), 0);
  assert_int_equal(weights_load(path, &back, &got, err, sizeof err), -1);

  /* Not a weights file at all. */
  fp = fopen(path, "wb");
  fputs("PK\x03\x04 some other format", fp);
  fclose(fp);
  assert_int_equal(weights_load(path, &back, &got, err, sizeof err), -1);
  assert_non_null(strstr(err, "not a weights file"));

  trainer_files_path(path, sizeof path, "absent.bin");
  assert_int_equal(weights_load(path, &back, &got, err, sizeof err), -1);
  assert_non_null(strstr(err, "absent.bin"));
  mlp_free(&net);
}

static void trainer_files_write_gz(const char *name, const void *data,
                                   size_t len) {
  char path[512];
  trainer_files_path(path, sizeof path, name);
  gzFile gz = gzopen(path, "wb");
  assert_non_null(gz);
  assert_int_equal(gzwrite(gz, data, (unsigned)len), (int)len);
  gzclose(gz);
}

static void idx_checks_files(void **state) {
  (void)state;
  /* Two labels and two 28x28 images: a valid, tiny set. */
  unsigned char labels[8 + 2] = {0, 0, 8, 1, 0, 0, 0, 2, 3, 9};
  size_t img_len = 16 + 2 * 784;
  unsigned char *images = calloc(1, img_len);
  assert_non_null(images);
  unsigned char head[16] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28};
  memcpy(images, head, sizeof head);
  images[16 + 784 + 5] = 200;
  trainer_files_write_gz("ok-labels-idx1-ubyte.gz", labels, sizeof labels);
  trainer_files_write_gz("ok-images-idx3-ubyte.gz", images, img_len);
  idx_set set;
  char err[1024];
  assert_int_equal(idx_load(trainer_files_dir, "ok", 0, &set, err, sizeof err),
                   0);
  assert_int_equal(set.count, 2);
  assert_int_equal(set.labels[1], 9);
  assert_int_equal(set.pixels[784 + 5], 200);
  idx_free(&set);

  /* Images cut short: the message says truncated and names the file. */
  trainer_files_write_gz("short-labels-idx1-ubyte.gz", labels, sizeof labels);
  trainer_files_write_gz("short-images-idx3-ubyte.gz", images, img_len - 100);
  assert_int_equal(
      idx_load(trainer_files_dir, "short", 0, &set, err, sizeof err), -1);
  assert_non_null(strstr(err, "short-images-idx3-ubyte.gz"));
  assert_non_null(strstr(err, "truncated"));

  /* Images where labels belong: wrong magic number. */
  trainer_files_write_gz("swap-labels-idx1-ubyte.gz", images, img_len);
  assert_int_equal(
      idx_load(trainer_files_dir, "swap", 0, &set, err, sizeof err), -1);
  assert_non_null(strstr(err, "magic number"));

  /* A label outside 0..9. */
  labels[9] = 10;
  trainer_files_write_gz("bad-labels-idx1-ubyte.gz", labels, sizeof labels);
  assert_int_equal(idx_load(trainer_files_dir, "bad", 0, &set, err, sizeof err),
                   -1);
  assert_non_null(strstr(err, "not 0..9"));
  free(images);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(weights_round_trip),
      cmocka_unit_test(weights_refuse_damage),
      cmocka_unit_test(idx_checks_files),
  };
  return cmocka_run_group_tests(tests, trainer_files_setup,
                                trainer_files_teardown);
}
