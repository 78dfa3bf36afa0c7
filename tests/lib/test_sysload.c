/*
 * test_sysload.c - the machine's load the heartbeat carries (sysload.c),
 * read from a fake /proc tree in a temporary directory: two samples of
 * known counters give exactly the expected cpu, ram, disk and network
 * numbers; partitions, loop/RAM/stacked devices and the loopback interface
 * are left out; a file that is missing or unreadable leaves its field out;
 * GPUs come from a stand-in NVML library (fake_nvml.c, its path the first
 * argument), tried once; and on this machine, without NVML, gpus is {}.
 */
#include "sysload.h"
#include "th_tmpdir.h"

#include <dlfcn.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>

static const char *fake_nvml_path;

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct fixture {
  char root[256];
  char nowhere[300]; /* a disk_path that does not exist: no used_gb */
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f || th_tmpdir_make(f->root, sizeof f->root, "chub-sysload") != 0)
    return -1;
  snprintf(f->nowhere, sizeof f->nowhere, "%s/nowhere", f->root);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  th_tmpdir_remove(f->root);
  free(f);
  unsetenv("FAKE_NVML_INIT_FAIL");
  return 0;
}

/* Writes {root}/proc/{rel} (directories made as needed). */
static void put(const fixture *f, const char *rel, const char *fmt, ...) {
  char path[512];
  snprintf(path, sizeof path, "%s/proc", f->root);
  mkdir(path, 0700);
  snprintf(path, sizeof path, "%s/proc/net", f->root);
  mkdir(path, 0700);
  snprintf(path, sizeof path, "%s/proc/%s", f->root, rel);
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(fp, fmt, ap);
  va_end(ap);
  assert_int_equal(fclose(fp), 0);
}

/* A /proc/diskstats line (kernel 5.5+ layout: 17 counters). */
static void disk_line(char *buf, size_t len, const char *name,
                      unsigned long long read_sectors,
                      unsigned long long written_sectors) {
  size_t used = strlen(buf);
  snprintf(buf + used, len - used,
           "   8       0 %s 100 0 %llu 40 50 0 %llu 60 0 70 100 0 0 0 0 0 0\n",
           name, read_sectors, written_sectors);
}

/* A /proc/net/dev line. */
static void net_line(char *buf, size_t len, const char *name,
                     unsigned long long recv, unsigned long long sent) {
  size_t used = strlen(buf);
  snprintf(buf + used, len - used,
           "%6s: %llu 10 0 0 0 0 0 0 %llu 10 0 0 0 0 0 0\n", name, recv, sent);
}

static const char net_header[] =
    "Inter-|   Receive                                                |  "
    "Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes  "
    "  packets errs drop fifo colls carrier compressed\n";

/* One state of the fake machine: sda and nvme0n1 with a partition each
 * (counting the same I/O again), loop0, zram0 and dm-0 (never counted),
 * and lo, eth0 and wlan0. */
typedef struct machine {
  const char *cpu; /* the "cpu" line's numbers */
  long long available_kb;
  unsigned long long sda_r, sda_w, nvme_r, nvme_w, noise;
  unsigned long long eth_r, eth_s, wlan_r;
} machine;

static void put_machine(const fixture *f, const machine *m) {
  put(f, "stat", "cpu  %s\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 12345\n", m->cpu);
  put(f, "meminfo",
      "MemTotal:       16000000 kB\nMemFree:          1000000 kB\n"
      "MemAvailable:   %lld kB\nBuffers:           1000 kB\n",
      m->available_kb);
  char disks[2048] = "";
  disk_line(disks, sizeof disks, "loop0", m->noise, m->noise);
  disk_line(disks, sizeof disks, "sda", m->sda_r, m->sda_w);
  disk_line(disks, sizeof disks, "sda1", m->sda_r, m->sda_w);
  disk_line(disks, sizeof disks, "nvme0n1", m->nvme_r, m->nvme_w);
  disk_line(disks, sizeof disks, "nvme0n1p1", m->nvme_r, m->nvme_w);
  disk_line(disks, sizeof disks, "zram0", m->noise, m->noise);
  disk_line(disks, sizeof disks, "dm-0", m->noise, m->noise);
  put(f, "diskstats", "%s", disks);
  char net[2048] = "";
  net_line(net, sizeof net, "lo", m->noise, m->noise);
  net_line(net, sizeof net, "eth0", m->eth_r, m->eth_s);
  net_line(net, sizeof net, "wlan0", m->wlan_r, 0);
  put(f, "net/dev", "%s%s", net_header, net);
}

static sysload *fake_sampler(const fixture *f, double now) {
  sysload_config cfg = {
      .root = f->root, .disk_path = f->nowhere, .nvml_lib = ""};
  sysload *s = sysload_new(&cfg, now);
  assert_non_null(s);
  return s;
}

static void assert_sample(sysload *s, double now, const char *want) {
  char *text = sysload_sample_text(s, now);
  assert_non_null(text);
  assert_string_equal(text, want);
  free(text);
}

/* The first sample counts from the sampler's creation, the second from the
 * first; MB is 2^20 bytes, sectors 512 bytes, and fractions are rounded to
 * 3 decimals (1049 bytes in 2 s: 0.0005 MB/s -> 0.001). */
static void test_two_samples(void **state) {
  fixture *f = *state;
  machine m = {"100 0 100 700 100 0 0 0 0 0",
               10000000,
               1000,
               2000,
               500,
               500,
               0,
               5000,
               7000,
               100};
  put_machine(f, &m);
  sysload *s = fake_sampler(f, 100.0);

  /* cpu: 1000 more jiffies, 500 of them idle or iowait; guest (77) is
   * already in user. Disk: 4096 + 2048 sectors read (3 MB), 12288 written
   * (6 MB). Network: 1000000 + 48576 bytes in (1 MB), 262144 out. */
  m = (machine){"400 0 200 1100 200 0 50 50 77 0",
                10000000,
                5096,
                14288,
                2548,
                500,
                999999,
                1005000,
                269144,
                48676};
  put_machine(f, &m);
  assert_sample(s, 102.0,
                "{\"cpu\":50.0,\"ram\":37.5,"
                "\"disk\":{\"read_mbs\":1.5,\"write_mbs\":3.0},"
                "\"network\":{\"recv_mbs\":0.5,\"sent_mbs\":0.125},"
                "\"gpus\":{}}");

  m = (machine){"475 0 225 1300 200 0 50 50 77 0",
                12000000,
                5096,
                15312,
                2548,
                500,
                5555555,
                1006049,
                269144,
                48676};
  put_machine(f, &m);
  assert_sample(s, 104.0,
                "{\"cpu\":33.333,\"ram\":25.0,"
                "\"disk\":{\"read_mbs\":0.0,\"write_mbs\":0.25},"
                "\"network\":{\"recv_mbs\":0.001,\"sent_mbs\":0.0},"
                "\"gpus\":{}}");
  sysload_free(s);
}

/* Only whole disks count: every device moves a distinct number of MiB
 * (2048 sectors each) in one second, so the sum names what was counted:
 * sda 1, nvme0n1 4, mmcblk0 16, sr0 2048, vda 4096; never a partition,
 * loop, RAM or stacked device. On the network lo is left out. */
static void test_whole_disks_and_no_loopback(void **state) {
  fixture *f = *state;
  static const char *const names[] = {
      "sda",  "sda1",  "nvme0n1", "nvme0n1p1", "mmcblk0", "mmcblk0p2", "loop0",
      "ram0", "zram0", "dm-0",    "md0",       "sr0",     "vda",       "vda1"};
  size_t n = sizeof names / sizeof names[0];
  char disks[4096] = "", net[2048] = "";
  for (size_t i = 0; i < n; i++)
    disk_line(disks, sizeof disks, names[i], 0, 0);
  put(f, "diskstats", "%s", disks);
  net_line(net, sizeof net, "lo", 0, 0);
  net_line(net, sizeof net, "eth0", 0, 0);
  net_line(net, sizeof net, "docker0", 0, 0);
  put(f, "net/dev", "%s%s", net_header, net);
  sysload *s = fake_sampler(f, 10.0);

  disks[0] = '\0';
  for (size_t i = 0; i < n; i++)
    disk_line(disks, sizeof disks, names[i], 2048ull << i, 2048ull << i);
  put(f, "diskstats", "%s", disks);
  net[0] = '\0';
  net_line(net, sizeof net, "lo", 1u << 20, 1u << 20);
  net_line(net, sizeof net, "eth0", 2u << 20, 0);
  net_line(net, sizeof net, "docker0", 4u << 20, 8u << 20);
  put(f, "net/dev", "%s%s", net_header, net);
  assert_sample(s, 11.0,
                "{\"disk\":{\"read_mbs\":6165.0,\"write_mbs\":6165.0},"
                "\"network\":{\"recv_mbs\":6.0,\"sent_mbs\":8.0},"
                "\"gpus\":{}}");
  sysload_free(s);
}

/* No /proc at all (some containers): only gpus, always there. */
static void test_missing_files(void **state) {
  fixture *f = *state;
  sysload *s = fake_sampler(f, 1.0);
  assert_sample(s, 2.0, "{\"gpus\":{}}");
  /* Files that appear later are counted from their first reading. */
  machine m = {"100 0 100 700 100 0 0 0 0 0", 4000000, 0, 0, 0, 0, 0, 0, 0, 0};
  put_machine(f, &m);
  assert_sample(s, 3.0, "{\"ram\":75.0,\"gpus\":{}}");
  m.cpu = "200 0 100 800 100 0 0 0 0 0";
  put_machine(f, &m);
  assert_sample(s, 4.0,
                "{\"cpu\":50.0,\"ram\":75.0,"
                "\"disk\":{\"read_mbs\":0.0,\"write_mbs\":0.0},"
                "\"network\":{\"recv_mbs\":0.0,\"sent_mbs\":0.0},"
                "\"gpus\":{}}");
  sysload_free(s);
}

/* Files that say something else (an old kernel's meminfo without
 * MemAvailable, a stat without its cpu line, a directory in place of a
 * file) are left out too. */
static void test_unreadable_files(void **state) {
  fixture *f = *state;
  put(f, "stat", "intr 1 2 3\ncpu0 1 2 3 4\n");
  put(f, "meminfo", "MemTotal: 1000 kB\nMemFree: 10 kB\n");
  char dir[512];
  snprintf(dir, sizeof dir, "%s/proc/diskstats", f->root);
  assert_int_equal(mkdir(dir, 0700), 0);
  sysload *s = fake_sampler(f, 1.0);
  assert_sample(s, 2.0, "{\"gpus\":{}}");
  sysload_free(s);
}

/* Samples closer than a tenth of a second give no rates and keep what
 * they count from: the next sample measures over the longer interval. */
static void test_short_interval(void **state) {
  fixture *f = *state;
  machine m = {"100 0 100 700 100 0 0 0 0 0", 8000000, 0, 0, 0, 0, 0, 0, 0, 0};
  put_machine(f, &m);
  sysload *s = fake_sampler(f, 50.0);
  m = (machine){
      "150 0 100 750 100 0 0 0 0 0", 8000000, 2048, 0, 0, 0, 0, 0, 0, 0};
  put_machine(f, &m);
  assert_sample(s, 50.05, "{\"ram\":50.0,\"gpus\":{}}");
  m = (machine){
      "300 0 100 750 100 0 0 0 0 0", 8000000, 4096, 0, 0, 0, 0, 1u << 20, 0, 0};
  put_machine(f, &m);
  assert_sample(s, 52.0,
                "{\"cpu\":80.0,\"ram\":50.0,"
                "\"disk\":{\"read_mbs\":1.0,\"write_mbs\":0.0},"
                "\"network\":{\"recv_mbs\":0.5,\"sent_mbs\":0.0},"
                "\"gpus\":{}}");
  sysload_free(s);
}

/* A counter that went backwards (a device or interface removed) counts 0,
 * never a negative or a wrapped rate. */
static void test_counters_backwards(void **state) {
  fixture *f = *state;
  machine m = {"100 0 100 700 100 0 0 0 0 0",
               8000000,
               9000,
               9000,
               0,
               0,
               0,
               9000,
               9000,
               0};
  put_machine(f, &m);
  sysload *s = fake_sampler(f, 1.0);
  m = (machine){
      "100 0 100 700 100 0 0 0 0 0", 8000000, 10, 10, 0, 0, 0, 10, 10, 0};
  put_machine(f, &m);
  assert_sample(s, 2.0,
                "{\"ram\":50.0,"
                "\"disk\":{\"read_mbs\":0.0,\"write_mbs\":0.0},"
                "\"network\":{\"recv_mbs\":0.0,\"sent_mbs\":0.0},"
                "\"gpus\":{}}");
  sysload_free(s);
}

/* used_gb is the used space of the filesystem holding disk_path. */
static void test_used_gb(void **state) {
  fixture *f = *state;
  sysload_config cfg = {.root = f->root, .disk_path = f->root, .nvml_lib = ""};
  sysload *s = sysload_new(&cfg, 1.0);
  assert_non_null(s);
  json_t *o = sysload_sample(s, 2.0);
  struct statvfs st;
  assert_int_equal(statvfs(f->root, &st), 0);
  double want =
      (double)(st.f_blocks - st.f_bfree) * (double)st.f_frsize / (1 << 30);
  json_t *used = json_object_get(json_object_get(o, "disk"), "used_gb");
  assert_true(json_is_real(used));
  /* Other processes write meanwhile: the same to within a GB. */
  assert_true(fabs(json_real_value(used) - want) < 1.0);
  json_decref(o);
  sysload_free(s);
}

/* The library's counters of nvmlInit_v2 and nvmlShutdown calls. */
typedef struct nvml_counts {
  void *lib;
  int *inits, *shutdowns;
} nvml_counts;

static nvml_counts open_fake_nvml(void) {
  nvml_counts c = {dlopen(fake_nvml_path, RTLD_NOW), NULL, NULL};
  assert_non_null(c.lib);
  c.inits = dlsym(c.lib, "fake_nvml_inits");
  c.shutdowns = dlsym(c.lib, "fake_nvml_shutdowns");
  assert_non_null(c.inits);
  assert_non_null(c.shutdowns);
  *c.inits = *c.shutdowns = 0;
  return c;
}

static json_t *gpus_of(sysload *s, double now) {
  json_t *o = sysload_sample(s, now);
  assert_non_null(o);
  json_t *g = json_incref(json_object_get(o, "gpus"));
  json_decref(o);
  assert_true(json_is_object(g));
  return g;
}

/* Each GPU by its index: usage and temp whole numbers, memory a percent,
 * power in watts; a reading NVML cannot give is left out. NVML is
 * initialised once per sampler and shut down when it is freed. */
static void test_gpus_through_nvml(void **state) {
  fixture *f = *state;
  nvml_counts c = open_fake_nvml();
  sysload_config cfg = {
      .root = f->root, .disk_path = f->nowhere, .nvml_lib = fake_nvml_path};
  sysload *s = sysload_new(&cfg, 1.0);
  assert_int_equal(*c.inits, 0); /* not on the caller's thread */
  json_t *want = json_loads("{\"0\": {\"usage\": 93, \"memory\": 61.5, "
                            "\"temp\": 70, \"power\": 250.0}, "
                            "\"1\": {\"usage\": 5, \"memory\": 33.333, "
                            "\"temp\": 41}}",
                            0, NULL);
  for (int i = 0; i < 3; i++) {
    json_t *g = gpus_of(s, 2.0 + i);
    assert_true(json_equal(g, want));
    assert_true(
        json_is_integer(json_object_get(json_object_get(g, "0"), "usage")));
    assert_true(
        json_is_real(json_object_get(json_object_get(g, "0"), "power")));
    json_decref(g);
  }
  json_decref(want);
  assert_int_equal(*c.inits, 1);
  assert_int_equal(*c.shutdowns, 0);
  sysload_free(s);
  assert_int_equal(*c.shutdowns, 1);
  dlclose(c.lib);
}

/* An NVML that does not initialise is tried once: gpus stays {}. */
static void test_nvml_init_fails_once(void **state) {
  fixture *f = *state;
  nvml_counts c = open_fake_nvml();
  setenv("FAKE_NVML_INIT_FAIL", "1", 1);
  sysload_config cfg = {
      .root = f->root, .disk_path = f->nowhere, .nvml_lib = fake_nvml_path};
  sysload *s = sysload_new(&cfg, 1.0);
  for (int i = 0; i < 3; i++) {
    json_t *g = gpus_of(s, 2.0 + i);
    assert_int_equal(json_object_size(g), 0);
    json_decref(g);
  }
  assert_int_equal(*c.inits, 1);
  sysload_free(s);
  assert_int_equal(*c.shutdowns, 0); /* never initialised */
  dlclose(c.lib);
}

/* No NVML library: gpus {}. On this machine (no GPU driver) the default
 * libnvidia-ml.so.1 is absent too; the real /proc gives cpu and ram. */
static void test_no_nvml_and_real_proc(void **state) {
  fixture *f = *state;
  sysload_config cfg = {.root = f->root,
                        .disk_path = f->nowhere,
                        .nvml_lib = "/nonexistent/libnvidia-ml.so.1"};
  sysload *s = sysload_new(&cfg, 1.0);
  json_t *g = gpus_of(s, 2.0);
  assert_int_equal(json_object_size(g), 0);
  json_decref(g);
  sysload_free(s);

  void *nvml = dlopen("libnvidia-ml.so.1", RTLD_LAZY);
  s = sysload_new(NULL, mono()); /* the real machine */
  usleep(300 * 1000);            /* tens of jiffies */
  json_t *o = sysload_sample(s, mono());
  char *text = json_dumps(o, JSON_COMPACT | SYSLOAD_JSON_FLAGS);
  printf("this machine: %s\n", text);
  free(text);
  double cpu = json_number_value(json_object_get(o, "cpu"));
  double ram = json_number_value(json_object_get(o, "ram"));
  assert_true(json_is_real(json_object_get(o, "cpu")));
  assert_true(cpu >= 0 && cpu <= 100);
  assert_true(ram > 0 && ram < 100);
  assert_true(
      json_is_real(json_object_get(json_object_get(o, "disk"), "used_gb")));
  if (!nvml)
    assert_int_equal(json_object_size(json_object_get(o, "gpus")), 0);
  else
    dlclose(nvml);
  json_decref(o);
  sysload_free(s);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FAKE_NVML_LIBRARY\n", argv[0]);
    return 2;
  }
  fake_nvml_path = argv[1];
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_two_samples),
      T(test_whole_disks_and_no_loopback),
      T(test_missing_files),
      T(test_unreadable_files),
      T(test_short_interval),
      T(test_counters_backwards),
      T(test_used_gb),
      T(test_gpus_through_nvml),
      T(test_nvml_init_fails_once),
      T(test_no_nvml_and_real_proc),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
