/*
 * sysload.h - the machine's load as the heartbeat carries it in "system":
 *
 *   {"cpu": 37.5, "ram": 41.2,
 *    "disk": {"read_mbs": 1.2, "write_mbs": 3.4, "used_gb": 51.0},
 *    "network": {"recv_mbs": 0.1, "sent_mbs": 0.2},
 *    "gpus": {"0": {"usage": 93, "memory": 61.5, "temp": 70, "power": 250.0}}}
 *
 * the shape Ultralytics Platform's trainer sends per epoch. cpu and the
 * rates are counted since the previous sample (the first one: since the
 * sampler was made); MB is 2^20 bytes and GB 2^30, as the trainer counts,
 * and every fraction is rounded to 3 decimals. A field whose source cannot
 * be read is left out; gpus is {} without NVML. Sampling reads a few small
 * files and never fails: no subprocess, no network.
 *
 * A sampler is used by one thread at a time (in libchub, the sender
 * thread); samplers share nothing, so several may live in one process.
 */
#ifndef CHUB_SYSLOAD_H
#define CHUB_SYSLOAD_H

#include <jansson.h>

/* The json_dumps flags that print a sample's rounded numbers as such
 * ("41.234", not "41.234000000000002"). */
#define SYSLOAD_JSON_FLAGS JSON_REAL_PRECISION(12)

typedef struct sysload sysload;

typedef struct sysload_config {
  /* Prefix of /proc: NULL or "" is the real one; tests name a fake tree. */
  const char *root;
  /* A directory on the filesystem whose used space is reported (the run's
   * directory); NULL: {root}/. */
  const char *disk_path;
  /* The NVML library to load: NULL is libnvidia-ml.so.1, "" none. */
  const char *nvml_lib;
} sysload_config;

/* A sampler reading the counters it will measure the first sample against,
 * at `now` (chub_now() seconds). NULL when out of memory. */
sysload *sysload_new(const sysload_config *cfg, double now);

/* The load at `now` as a JSON object (a new reference); NULL only when out
 * of memory. The first call tries to load NVML (once per sampler). */
json_t *sysload_sample(sysload *s, double now);

/* The same as compact JSON text (malloc'd; the caller frees). */
char *sysload_sample_text(sysload *s, double now);

/* Frees the sampler and lets go of NVML. NULL is a no-op. */
void sysload_free(sysload *s);

#endif
