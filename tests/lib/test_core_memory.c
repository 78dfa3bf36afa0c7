/*
 * test_core_memory.c - a checkpoint far larger than memory should matter
 * uploads with flat client memory.
 *
 * A 1 GiB sparse file (ftruncate; CORE_MEMORY_TEST_MB overrides the size)
 * is queued as a checkpoint and streamed to the test server, which hashes
 * and discards it. The process's peak RSS may grow by far less than the
 * file: the bound (64 MiB) is a memory bound, not a timing. The digest the
 * client sent must be the SHA-256 of the file's bytes.
 */
#include "core_test.h"
#include "internal.h"
#include "session.h"
#include "fakehub.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/resource.h>
#include <cmocka.h>

#define ROUTE_UPLOAD "POST /v1/models/" FAKEHUB_MODEL_ID "/upload"

static long peak_rss_kib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* The SHA-256 of `size` zero bytes, computed without the file. */
static void zeros_sha256(long long size, char hex[65]) {
  static unsigned char zero[1 << 16];
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  for (long long left = size; left > 0; left -= (long long)sizeof zero)
    EVP_DigestUpdate(
        ctx, zero, left < (long long)sizeof zero ? (size_t)left : sizeof zero);
  unsigned char md[32];
  unsigned int l;
  EVP_DigestFinal_ex(ctx, md, &l);
  EVP_MD_CTX_free(ctx);
  for (int i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static void test_large_checkpoint_flat_memory(void **state) {
  (void)state;
  const char *mb_env = getenv("CORE_MEMORY_TEST_MB");
  long long mb = mb_env ? atoll(mb_env) : 1024;
  assert_true(mb > 0);
  long long size = mb << 20;
  fakehub *srv = fakehub_start();
  assert_non_null(srv);
  core_test_env env;
  core_test_env_init(&env, fakehub_url(srv),
                     "memorytestkey0123456789memorytestkey01234");
  char path[256];
  snprintf(path, sizeof path, "%s/big.pt", env.root);
  int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(ftruncate(fd, (off_t)size), 0);
  close(fd);
  chub_args args = {.model = "big.pt", .data = "none", .epochs = 1};
  chub_session *s = NULL;
  assert_int_equal(chub_session_open("big.pt", &args, &s), CHUB_OK);
  long before = peak_rss_kib();
  assert_int_equal(chub_session_queue_checkpoint(s, 0, path, true), CHUB_OK);
  /* Bounded: the upload must finish within the test's own limit. */
  assert_true(fakehub_wait(srv, ROUTE_UPLOAD, 1, 100));
  size_t m = 0, c = 1;
  bool fin = false;
  for (int i = 0; i < 1000 && c; i++) {
    spool_pending_counts(session_spool(s), &m, &c, &fin);
    usleep(10000);
  }
  assert_int_equal(c, 0);
  long after = peak_rss_kib();
  printf("checkpoint of %lld MiB uploaded; peak RSS %ld KiB before, %ld KiB "
         "after (growth %ld KiB)\n",
         mb, before, after, after - before);
  assert_true(after - before < 64 * 1024);
  const fakehub_request *r = fakehub_find(srv, ROUTE_UPLOAD, 0);
  assert_non_null(r);
  assert_true((long long)r->body_len > size);
  char want[65];
  zeros_sha256(size, want);
  assert_string_equal(r->sha256_header, want);
  chub_session_close(s);
  fakehub_stop(srv);
  core_test_env_free(&env);
}

int main(void) {
  setenv("CHUB_TESTING", "1", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_large_checkpoint_flat_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
