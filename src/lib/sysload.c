/*
 * sysload.c - the machine's load for the heartbeat (sysload.h): CPU and
 * memory use from /proc/stat and /proc/meminfo, disk and network throughput
 * from /proc/diskstats and /proc/net/dev, the used space of the run's
 * filesystem from statvfs, and each NVIDIA GPU through NVML.
 *
 * Rates (cpu, disk, network) need two readings of a counter: each source
 * keeps its last reading and when it was taken. A reading closer than
 * SYSLOAD_MIN_INTERVAL_S to the kept one gives no rate (the first heartbeat
 * goes right after the sampler is made) and does not replace it, so the
 * next sample measures over the longer interval. A counter that went
 * backwards (a device removed) counts as 0.
 *
 * Disks are whole devices only. A partition is told from diskstats itself:
 * its name is another listed device's name and a number (sda1, nvme0n1p1,
 * mmcblk0p2). loop and RAM devices (loop*, ram*, zram*) are not disks, and
 * devices stacked on disks (dm-*, md*) are left out so that their I/O is
 * not counted twice.
 *
 * NVML is never a build dependency: the few functions used are declared
 * here and looked up with dlsym, at the first sample (its init may take a
 * while: the sampling thread waits for it, not the trainer). When it cannot
 * be loaded or initialised, gpus is {} for the rest of the sampler's life:
 * it is tried once. NVML is thread-safe and counts its inits, so every
 * sampler loads and shuts it down on its own.
 */
#include "sysload.h"

#include "internal.h"

#include <ctype.h>
#include <dlfcn.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#define SYSLOAD_MIN_INTERVAL_S 0.1
#define SYSLOAD_MB 1048576.0
#define SYSLOAD_GB 1073741824.0
#define SYSLOAD_SECTOR 512ull
/* Largest /proc file read (thousands of devices fit). */
#define SYSLOAD_MAX_FILE (4u << 20)
enum { SYSLOAD_MAX_GPUS = 64, SYSLOAD_LINE = 512 };

/* ------------------------------------------------------------ NVML's ABI */

/* nvmlReturn_t and the sensor enum are ints (0: success), nvmlDevice_t an
 * opaque pointer. */
typedef struct sysload_nvml_util {
  unsigned int gpu, memory; /* percent */
} sysload_nvml_util;
typedef struct sysload_nvml_memory {
  unsigned long long total, free, used; /* bytes */
} sysload_nvml_memory;
typedef int (*sysload_nvml_void_fn)(void);
typedef int (*sysload_nvml_count_fn)(unsigned int *count);
typedef int (*sysload_nvml_handle_fn)(unsigned int index, void **device);
typedef int (*sysload_nvml_util_fn)(void *device, sysload_nvml_util *util);
typedef int (*sysload_nvml_memory_fn)(void *device, sysload_nvml_memory *mem);
typedef int (*sysload_nvml_temp_fn)(void *device, int sensor,
                                    unsigned int *celsius);
typedef int (*sysload_nvml_power_fn)(void *device, unsigned int *milliwatts);
#define SYSLOAD_NVML_TEMPERATURE_GPU 0
#define SYSLOAD_NVML_DEFAULT_LIB "libnvidia-ml.so.1"

_Static_assert(sizeof(void *) == sizeof(sysload_nvml_void_fn),
               "dlsym's pointers must hold function pointers");

typedef enum sysload_nvml_state {
  SYSLOAD_NVML_UNTRIED,
  SYSLOAD_NVML_READY,
  SYSLOAD_NVML_NONE
} sysload_nvml_state;

typedef struct sysload_nvml {
  sysload_nvml_state state;
  void *lib;
  sysload_nvml_void_fn init, shutdown;
  sysload_nvml_count_fn count;
  sysload_nvml_handle_fn handle;
  sysload_nvml_util_fn util;
  sysload_nvml_memory_fn memory;
  sysload_nvml_temp_fn temp;
  sysload_nvml_power_fn power;
} sysload_nvml;

/* ------------------------------------------------------------ the sampler */

/* One reading of a pair of counters, taken at `at`: cpu total and idle
 * jiffies, disk bytes read and written, network bytes received and sent. */
typedef struct sysload_reading {
  bool ok;
  unsigned long long a, b;
  double at;
} sysload_reading;

struct sysload {
  char *root;
  char *disk_path; /* NULL: {root}/ */
  char *nvml_lib;
  sysload_reading cpu, disk, net; /* what the next rates count from */
  sysload_nvml nvml;
};

static double sysload_round3(double v) {
  return round(v * 1000.0) / 1000.0;
}

static double sysload_delta(unsigned long long from, unsigned long long to) {
  return to > from ? (double)(to - from) : 0.0;
}

/* The whole file {root}{rel}, NUL-terminated and malloc'd; NULL when it
 * cannot be read. */
static char *sysload_read(const sysload *s, const char *rel) {
  char path[4096];
  int n = snprintf(path, sizeof path, "%s%s", s->root, rel);
  if (n < 0 || (size_t)n >= sizeof path)
    return NULL;
  FILE *fp = fopen(path, "re");
  if (!fp)
    return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  while (buf) {
    len += fread(buf + len, 1, cap - 1 - len, fp);
    if (len < cap - 1)
      break; /* the end, or an error */
    char *more = cap < SYSLOAD_MAX_FILE ? realloc(buf, cap * 2) : NULL;
    if (!more)
      free(buf);
    buf = more;
    cap *= 2;
  }
  bool failed = ferror(fp) != 0;
  fclose(fp);
  if (!buf || failed) {
    free(buf);
    return NULL;
  }
  buf[len] = '\0';
  return buf;
}

/* Copies the line at *p into buf (cut to len - 1 bytes) and moves *p past
 * it; false at the end of the text. */
static bool sysload_line(const char **p, char *buf, size_t len) {
  if (!**p)
    return false;
  const char *nl = strchr(*p, '\n');
  size_t n = nl ? (size_t)(nl - *p) : strlen(*p);
  size_t keep = n < len - 1 ? n : len - 1;
  memcpy(buf, *p, keep);
  buf[keep] = '\0';
  *p += n + (nl ? 1 : 0);
  return true;
}

/* Moves the kept reading to `cur` when a rate can be counted over the two
 * and returns the interval in seconds, the older reading in *was; 0 when
 * there is no rate this time (see the top of the file). */
static double sysload_step(sysload_reading *kept, const sysload_reading *cur,
                           sysload_reading *was) {
  if (!cur->ok)
    return 0;
  if (!kept->ok) {
    *kept = *cur;
    return 0;
  }
  double dt = cur->at - kept->at;
  if (dt < SYSLOAD_MIN_INTERVAL_S)
    return 0;
  *was = *kept;
  *kept = *cur;
  return dt;
}

/* ------------------------------------------------------------ CPU, RAM */

/* The "cpu" line of /proc/stat: total jiffies (user to steal; guest time is
 * already in user) and idle ones (idle and iowait). */
static sysload_reading sysload_read_cpu(const sysload *s, double now) {
  sysload_reading r = {.at = now};
  char *text = sysload_read(s, "/proc/stat");
  unsigned long long v[8] = {0};
  int n = 0;
  if (text && strncmp(text, "cpu ", 4) == 0)
    n = sscanf(text + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
               &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
  free(text);
  if (n < 4)
    return r;
  for (int i = 0; i < n; i++)
    r.a += v[i];
  r.b = v[3] + v[4];
  r.ok = true;
  return r;
}

static void sysload_add_cpu(sysload *s, json_t *out, double now) {
  sysload_reading cur = sysload_read_cpu(s, now), was;
  if (sysload_step(&s->cpu, &cur, &was) <= 0)
    return;
  double total = sysload_delta(was.a, cur.a);
  double idle = sysload_delta(was.b, cur.b);
  if (total <= 0)
    return;
  double busy = total > idle ? total - idle : 0;
  json_object_set_new(out, "cpu",
                      json_real(sysload_round3(busy * 100.0 / total)));
}

/* The number of "KEY: N kB" in /proc/meminfo's text; -1 when absent. */
static long long sysload_meminfo_kb(const char *text, const char *key) {
  size_t klen = strlen(key);
  char line[SYSLOAD_LINE];
  while (sysload_line(&text, line, sizeof line))
    if (strncmp(line, key, klen) == 0 && line[klen] == ':')
      return strtoll(line + klen + 1, NULL, 10);
  return -1;
}

static void sysload_add_ram(const sysload *s, json_t *out) {
  char *text = sysload_read(s, "/proc/meminfo");
  long long total = text ? sysload_meminfo_kb(text, "MemTotal") : -1;
  long long avail = text ? sysload_meminfo_kb(text, "MemAvailable") : -1;
  free(text);
  if (total <= 0 || avail < 0 || avail > total)
    return;
  double used = (double)(total - avail) * 100.0 / (double)total;
  json_object_set_new(out, "ram", json_real(sysload_round3(used)));
}

/* ------------------------------------------------------------ disk */

typedef struct sysload_dev {
  char name[64];
  unsigned long long read_sectors, written_sectors;
} sysload_dev;

/* Loop and RAM devices, and devices stacked on other disks. */
static bool sysload_dev_skipped(const char *name) {
  static const char *const prefixes[] = {"loop", "ram", "zram", "dm-"};
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
    if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
      return true;
  return strncmp(name, "md", 2) == 0 && isdigit((unsigned char)name[2]);
}

static bool sysload_dev_listed(const sysload_dev *devs, size_t n,
                               const char *name, size_t len) {
  for (size_t i = 0; i < n; i++)
    if (strlen(devs[i].name) == len && memcmp(devs[i].name, name, len) == 0)
      return true;
  return false;
}

/* Whether `name` is a partition of another listed device: that device's
 * name followed by a number, or by "p" and a number. */
static bool sysload_dev_partition(const sysload_dev *devs, size_t n,
                                  const char *name) {
  size_t len = strlen(name), base = len;
  while (base > 0 && isdigit((unsigned char)name[base - 1]))
    base--;
  if (base == len || base == 0)
    return false;
  if (sysload_dev_listed(devs, n, name, base))
    return true;
  return base > 1 && name[base - 1] == 'p' &&
         sysload_dev_listed(devs, n, name, base - 1);
}

/* The devices of /proc/diskstats' text into a malloc'd array; *n of them. */
static sysload_dev *sysload_parse_diskstats(const char *text, size_t *n) {
  size_t lines = 1;
  for (const char *p = text; *p; p++)
    lines += *p == '\n';
  sysload_dev *devs = calloc(lines, sizeof *devs);
  *n = 0;
  char line[SYSLOAD_LINE];
  while (devs && sysload_line(&text, line, sizeof line)) {
    sysload_dev *d = &devs[*n];
    /* major minor name reads merged SECTORS ms writes merged SECTORS ... */
    if (sscanf(line, "%*s %*s %63s %*s %*s %llu %*s %*s %*s %llu", d->name,
               &d->read_sectors, &d->written_sectors) == 3)
      (*n)++;
  }
  return devs;
}

/* Bytes read and written by the whole disks. */
static sysload_reading sysload_read_disk(const sysload *s, double now) {
  sysload_reading r = {.at = now};
  char *text = sysload_read(s, "/proc/diskstats");
  size_t n = 0;
  sysload_dev *devs = text ? sysload_parse_diskstats(text, &n) : NULL;
  free(text);
  if (!devs)
    return r;
  for (size_t i = 0; i < n; i++) {
    if (sysload_dev_skipped(devs[i].name) ||
        sysload_dev_partition(devs, n, devs[i].name))
      continue;
    r.a += devs[i].read_sectors * SYSLOAD_SECTOR;
    r.b += devs[i].written_sectors * SYSLOAD_SECTOR;
  }
  free(devs);
  r.ok = true;
  return r;
}

/* used_gb: the used space of the filesystem holding the run. */
static void sysload_add_used(const sysload *s, json_t *disk) {
  char root[4096];
  const char *path = s->disk_path;
  if (!path) {
    snprintf(root, sizeof root, "%s/", s->root);
    path = root;
  }
  struct statvfs st;
  if (statvfs(path, &st) != 0 || st.f_blocks < st.f_bfree)
    return;
  double used = (double)(st.f_blocks - st.f_bfree) * (double)st.f_frsize;
  json_object_set_new(disk, "used_gb",
                      json_real(sysload_round3(used / SYSLOAD_GB)));
}

/* Sets out[key] to the non-empty object o, else drops o. */
static void sysload_set_object(json_t *out, const char *key, json_t *o) {
  if (json_object_size(o) > 0)
    json_object_set_new(out, key, o);
  else
    json_decref(o);
}

/* Sets o[key] to the MB/s of the bytes between two counters over dt s. */
static void sysload_set_rate(json_t *o, const char *key,
                             unsigned long long from, unsigned long long to,
                             double dt) {
  double mbs = sysload_delta(from, to) / SYSLOAD_MB / dt;
  json_object_set_new(o, key, json_real(sysload_round3(mbs)));
}

static void sysload_add_disk(sysload *s, json_t *out, double now) {
  json_t *disk = json_object();
  if (!disk)
    return;
  sysload_reading cur = sysload_read_disk(s, now), was;
  double dt = sysload_step(&s->disk, &cur, &was);
  if (dt > 0) {
    sysload_set_rate(disk, "read_mbs", was.a, cur.a, dt);
    sysload_set_rate(disk, "write_mbs", was.b, cur.b, dt);
  }
  sysload_add_used(s, disk);
  sysload_set_object(out, "disk", disk);
}

/* ------------------------------------------------------------ network */

/* Bytes received and sent on every interface but the loopback. */
static sysload_reading sysload_read_net(const sysload *s, double now) {
  sysload_reading r = {.at = now};
  char *text = sysload_read(s, "/proc/net/dev");
  if (!text)
    return r;
  const char *p = text;
  char line[SYSLOAD_LINE];
  while (sysload_line(&p, line, sizeof line)) {
    char *colon = strchr(line, ':'); /* the two header lines have none */
    if (!colon)
      continue;
    *colon = '\0';
    char *name = line + strspn(line, " \t");
    unsigned long long v[9];
    if (strcmp(name, "lo") == 0 ||
        sscanf(colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
               &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8]) != 9)
      continue;
    r.a += v[0]; /* received bytes, then 7 more receive counters */
    r.b += v[8]; /* sent bytes */
  }
  free(text);
  r.ok = true;
  return r;
}

static void sysload_add_net(sysload *s, json_t *out, double now) {
  sysload_reading cur = sysload_read_net(s, now), was;
  double dt = sysload_step(&s->net, &cur, &was);
  json_t *net = dt > 0 ? json_object() : NULL;
  if (!net)
    return;
  sysload_set_rate(net, "recv_mbs", was.a, cur.a, dt);
  sysload_set_rate(net, "sent_mbs", was.b, cur.b, dt);
  sysload_set_object(out, "network", net);
}

/* ------------------------------------------------------------ GPUs */

static bool sysload_nvml_sym(void *lib, const char *name, void *fn) {
  void *p = dlsym(lib, name);
  if (p)
    memcpy(fn, &p, sizeof p); /* POSIX: a function's address */
  return p != NULL;
}

static bool sysload_nvml_syms(sysload_nvml *n) {
  return sysload_nvml_sym(n->lib, "nvmlInit_v2", &n->init) &&
         sysload_nvml_sym(n->lib, "nvmlShutdown", &n->shutdown) &&
         sysload_nvml_sym(n->lib, "nvmlDeviceGetCount_v2", &n->count) &&
         sysload_nvml_sym(n->lib, "nvmlDeviceGetHandleByIndex_v2",
                          &n->handle) &&
         sysload_nvml_sym(n->lib, "nvmlDeviceGetUtilizationRates", &n->util) &&
         sysload_nvml_sym(n->lib, "nvmlDeviceGetMemoryInfo", &n->memory) &&
         sysload_nvml_sym(n->lib, "nvmlDeviceGetTemperature", &n->temp) &&
         sysload_nvml_sym(n->lib, "nvmlDeviceGetPowerUsage", &n->power);
}

/* Loads and initialises NVML; the one try of this sampler. */
static void sysload_nvml_open(sysload *s) {
  sysload_nvml *n = &s->nvml;
  n->state = SYSLOAD_NVML_NONE;
  if (!*s->nvml_lib)
    return;
  n->lib = dlopen(s->nvml_lib, RTLD_NOW | RTLD_LOCAL);
  if (!n->lib) {
    const char *why = dlerror();
    chub_log(CHUB_LOG_DEBUG, "no GPU load in heartbeats: %s",
             why ? why : s->nvml_lib);
    return;
  }
  bool ready = false;
  int rc;
  if (!sysload_nvml_syms(n))
    chub_log(CHUB_LOG_DEBUG, "no GPU load in heartbeats: %s lacks NVML",
             s->nvml_lib);
  else if ((rc = n->init()) != 0)
    chub_log(CHUB_LOG_DEBUG, "no GPU load in heartbeats: nvmlInit_v2 gave %d",
             rc);
  else
    ready = true;
  if (!ready) {
    dlclose(n->lib);
    n->lib = NULL;
    return;
  }
  n->state = SYSLOAD_NVML_READY;
}

/* GPU i's load; NULL when it cannot be reached. Each field its call could
 * not give (power on some boards) is left out. */
static json_t *sysload_gpu(const sysload_nvml *n, unsigned int i) {
  void *dev = NULL;
  json_t *g = n->handle(i, &dev) == 0 ? json_object() : NULL;
  if (!g)
    return NULL;
  sysload_nvml_util util = {0, 0};
  sysload_nvml_memory mem = {0, 0, 0};
  unsigned int celsius = 0, milliwatts = 0;
  if (n->util(dev, &util) == 0)
    json_object_set_new(g, "usage", json_integer(util.gpu));
  if (n->memory(dev, &mem) == 0 && mem.total > 0)
    json_object_set_new(g, "memory",
                        json_real(sysload_round3((double)mem.used * 100.0 /
                                                 (double)mem.total)));
  if (n->temp(dev, SYSLOAD_NVML_TEMPERATURE_GPU, &celsius) == 0)
    json_object_set_new(g, "temp", json_integer(celsius));
  if (n->power(dev, &milliwatts) == 0)
    json_object_set_new(g, "power",
                        json_real(sysload_round3(milliwatts / 1000.0)));
  return g;
}

static void sysload_add_gpus(sysload *s, json_t *out) {
  if (s->nvml.state == SYSLOAD_NVML_UNTRIED)
    sysload_nvml_open(s);
  json_t *gpus = json_object();
  unsigned int count = 0;
  if (gpus && s->nvml.state == SYSLOAD_NVML_READY &&
      s->nvml.count(&count) == 0) {
    for (unsigned int i = 0; i < count && i < SYSLOAD_MAX_GPUS; i++) {
      char key[16];
      snprintf(key, sizeof key, "%u", i);
      json_t *g = sysload_gpu(&s->nvml, i);
      if (g)
        json_object_set_new(gpus, key, g);
    }
  }
  if (gpus)
    json_object_set_new(out, "gpus", gpus);
}

/* ------------------------------------------------------------ the API */

sysload *sysload_new(const sysload_config *cfg, double now) {
  sysload *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  const char *lib =
      cfg && cfg->nvml_lib ? cfg->nvml_lib : SYSLOAD_NVML_DEFAULT_LIB;
  s->root = strdup(cfg && cfg->root ? cfg->root : "");
  s->nvml_lib = strdup(lib);
  s->disk_path = cfg && cfg->disk_path ? strdup(cfg->disk_path) : NULL;
  if (!s->root || !s->nvml_lib || (cfg && cfg->disk_path && !s->disk_path)) {
    sysload_free(s);
    return NULL;
  }
  s->cpu = sysload_read_cpu(s, now);
  s->disk = sysload_read_disk(s, now);
  s->net = sysload_read_net(s, now);
  return s;
}

json_t *sysload_sample(sysload *s, double now) {
  json_t *out = json_object();
  if (!out)
    return NULL;
  sysload_add_cpu(s, out, now);
  sysload_add_ram(s, out);
  sysload_add_disk(s, out, now);
  sysload_add_net(s, out, now);
  sysload_add_gpus(s, out);
  return out;
}

char *sysload_sample_text(sysload *s, double now) {
  json_t *o = sysload_sample(s, now);
  char *text = o ? json_dumps(o, JSON_COMPACT | SYSLOAD_JSON_FLAGS) : NULL;
  json_decref(o);
  return text;
}

void sysload_free(sysload *s) {
  if (!s)
    return;
  if (s->nvml.state == SYSLOAD_NVML_READY) {
    s->nvml.shutdown();
    dlclose(s->nvml.lib);
  }
  free(s->root);
  free(s->disk_path);
  free(s->nvml_lib);
  free(s);
}
