/*
 * upload_sink_test.c - unit test of upload_sink.c on real files: whatever
 * the sizes the bytes come in, the file holds exactly them and the digest
 * is their SHA-256, for a file smaller than one staging buffer (no
 * threads), one that ends on a buffer's edge and one of many buffers,
 * with the file's flags as they were once it is finished; a
 * failing disk (/dev/full) is reported as ENOSPC; a sink dropped half way
 * stops its threads; and many sinks at once stay within the staging budget
 * (those beyond it write on the caller's thread) and hand it all back.
 * Runs under TSan too (label sender).
 */
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "th_bytes.h"
#include "th_tmpdir.h"
#include "upload_sink.h"

static char *dir;

static int open_file(const char *name, char path[4200]) {
  snprintf(path, 4200, "%s/%s", dir, name);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  return fd;
}

/* Puts data in pieces of 1, 7, 4093, 65536 and 300001 bytes in turn,
 * finishes, and checks the file and the digest. */
static void check_size(size_t n, uint32_t seed) {
  char path[4200];
  int fd = open_file("f", path);
  unsigned char *data = th_pattern(n, seed);
  upload_sink *s = upload_sink_new(fd);
  assert_non_null(s);
  static const size_t step[] = {1, 7, 4093, 65536, 300001};
  size_t at = 0;
  for (int i = 0; at < n; i++) {
    size_t k = step[i % 5] < n - at ? step[i % 5] : n - at;
    assert_int_equal(upload_sink_put(s, data + at, k), 0);
    at += k;
  }
  unsigned char got[32], want[32];
  assert_int_equal(upload_sink_finish(s, got), 0);
  /* The file is the caller's again as it was: no O_DIRECT left on it. */
  assert_int_equal(fcntl(fd, F_GETFL) & O_DIRECT, 0);
  upload_sink_free(s);
  unsigned int len = 32;
  assert_int_equal(EVP_Digest(data, n, want, &len, EVP_sha256(), NULL), 1);
  assert_memory_equal(got, want, 32);

  off_t size = lseek(fd, 0, SEEK_END);
  assert_int_equal((long long)size, (long long)n);
  unsigned char *back = malloc(n ? n : 1);
  assert_non_null(back);
  assert_int_equal(pread(fd, back, n, 0), (ssize_t)n);
  assert_memory_equal(back, data, n);
  free(back);
  free(data);
  close(fd);
  unlink(path);
  assert_int_equal(upload_sink_staged(), 0);
}

static void test_sizes(void **state) {
  (void)state;
  check_size(0, 1);
  check_size(1, 2);
  check_size(100000, 3);           /* within the first buffer: no threads */
  check_size(1u << 20, 4);         /* exactly one buffer */
  check_size(4u << 20, 5);         /* exactly all the buffers */
  check_size((9u << 20) + 777, 6); /* round the buffers twice, a part left */
  check_size(20u << 20, 7);        /* five times round the ring */
}

static void check_full(size_t n) {
  int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    skip();
  unsigned char *data = th_pattern(n, 9);
  upload_sink *s = upload_sink_new(fd);
  assert_non_null(s);
  int failed = 0;
  for (size_t at = 0; at < n && !failed; at += 65536) {
    size_t k = n - at < 65536 ? n - at : 65536;
    if (upload_sink_put(s, data + at, k) < 0) {
      assert_int_equal(errno, ENOSPC);
      failed = 1;
    }
  }
  unsigned char digest[32];
  errno = 0;
  assert_int_equal(upload_sink_finish(s, digest), -1);
  assert_int_equal(errno, ENOSPC);
  /* Once failed, it stays failed. */
  assert_int_equal(upload_sink_put(s, data, 10), -1);
  assert_int_equal(errno, ENOSPC);
  upload_sink_free(s);
  free(data);
  close(fd);
  assert_int_equal(upload_sink_staged(), 0);
}

static void test_disk_full(void **state) {
  (void)state;
  check_full(1000);     /* found at finish */
  check_full(8u << 20); /* found by the writer, while bytes still come */
}

static void test_dropped(void **state) {
  (void)state;
  char path[4200];
  int fd = open_file("dropped", path);
  unsigned char *data = th_pattern(3u << 20, 11);
  upload_sink *s = upload_sink_new(fd);
  assert_non_null(s);
  assert_int_equal(upload_sink_put(s, data, 3u << 20), 0);
  upload_sink_free(s); /* no finish: the threads stop, nothing leaks */
  assert_int_equal(upload_sink_staged(), 0);
  upload_sink_free(NULL);
  free(data);
  close(fd);
  unlink(path);
}

/* More sinks than the budget has staging for, all open at once, each
 * with a file of more than one buffer. */
#define MANY 80

static void test_budget(void **state) {
  (void)state;
  upload_sink *s[MANY];
  int fd[MANY];
  char path[MANY][4200];
  size_t n = (2u << 20) + 13; /* past one buffer: the threads start */
  unsigned char *data = th_pattern(n, 13);
  for (int i = 0; i < MANY; i++) {
    char name[32];
    snprintf(name, sizeof name, "many%d", i);
    fd[i] = open_file(name, path[i]);
    s[i] = upload_sink_new(fd[i]);
    assert_non_null(s[i]);
    assert_int_equal(upload_sink_put(s[i], data, n / 2), 0);
    assert_true(upload_sink_staged() <= UPLOAD_SINK_BUDGET);
  }
  assert_true(upload_sink_staged() > 0);
  unsigned char want[32];
  unsigned int len = 32;
  assert_int_equal(EVP_Digest(data, n, want, &len, EVP_sha256(), NULL), 1);
  for (int i = 0; i < MANY; i++) {
    unsigned char got[32];
    assert_int_equal(upload_sink_put(s[i], data + n / 2, n - n / 2), 0);
    assert_int_equal(upload_sink_finish(s[i], got), 0);
    assert_memory_equal(got, want, 32);
    upload_sink_free(s[i]);
    assert_int_equal((long long)lseek(fd[i], 0, SEEK_END), (long long)n);
    close(fd[i]);
    unlink(path[i]);
  }
  assert_int_equal(upload_sink_staged(), 0);
  free(data);
}

int main(void) {
  dir = th_tmpdir_new("chub-sink");
  assert_non_null(dir);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sizes),
      cmocka_unit_test(test_disk_full),
      cmocka_unit_test(test_dropped),
      cmocka_unit_test(test_budget),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  th_tmpdir_remove(dir);
  free(dir);
  return rc;
}
