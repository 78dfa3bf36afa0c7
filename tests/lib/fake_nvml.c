/*
 * fake_nvml.c - a stand-in for libnvidia-ml.so.1 with two fixed GPUs, so
 * that libchub's GPU load (src/lib/sysload.c) is tested on machines
 * without one. Loaded by path through sysload_config.nvml_lib.
 *
 * GPU 0: 93 % busy, 615 of 1000 bytes of memory used, 70 C, 250 W.
 * GPU 1: 5 % busy, 1 of 3 bytes used, 41 C, and no power reading (as on
 * boards without the sensor: NVML_ERROR_NOT_SUPPORTED).
 * With FAKE_NVML_INIT_FAIL set in the environment, nvmlInit_v2 fails. The
 * calls of nvmlInit_v2 and nvmlShutdown are counted for the test to read.
 */
#include <stdlib.h>

#define FAKE_NVML_SUCCESS 0
#define FAKE_NVML_ERROR_UNINITIALIZED 1
#define FAKE_NVML_ERROR_INVALID_ARGUMENT 2
#define FAKE_NVML_ERROR_NOT_SUPPORTED 3

typedef struct fake_nvml_device {
  unsigned int usage, temp, milliwatts;
  unsigned long long total, used;
  int power_rc;
} fake_nvml_device;

typedef struct fake_nvml_util {
  unsigned int gpu, memory;
} fake_nvml_util;

typedef struct fake_nvml_memory {
  unsigned long long total, free, used;
} fake_nvml_memory;

static fake_nvml_device fake_nvml_devices[2] = {
    {93, 70, 250000, 1000, 615, FAKE_NVML_SUCCESS},
    {5, 41, 0, 3, 1, FAKE_NVML_ERROR_NOT_SUPPORTED},
};

int fake_nvml_inits, fake_nvml_shutdowns;

int nvmlInit_v2(void) {
  fake_nvml_inits++;
  return getenv("FAKE_NVML_INIT_FAIL") ? FAKE_NVML_ERROR_UNINITIALIZED
                                       : FAKE_NVML_SUCCESS;
}

int nvmlShutdown(void) {
  fake_nvml_shutdowns++;
  return FAKE_NVML_SUCCESS;
}

int nvmlDeviceGetCount_v2(unsigned int *count) {
  *count = 2;
  return FAKE_NVML_SUCCESS;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **device) {
  if (index >= 2)
    return FAKE_NVML_ERROR_INVALID_ARGUMENT;
  *device = &fake_nvml_devices[index];
  return FAKE_NVML_SUCCESS;
}

int nvmlDeviceGetUtilizationRates(void *device, fake_nvml_util *util) {
  const fake_nvml_device *d = device;
  util->gpu = d->usage;
  util->memory = 0;
  return FAKE_NVML_SUCCESS;
}

int nvmlDeviceGetMemoryInfo(void *device, fake_nvml_memory *mem) {
  const fake_nvml_device *d = device;
  mem->total = d->total;
  mem->used = d->used;
  mem->free = d->total - d->used;
  return FAKE_NVML_SUCCESS;
}

int nvmlDeviceGetTemperature(void *device, int sensor, unsigned int *temp) {
  const fake_nvml_device *d = device;
  if (sensor != 0)
    return FAKE_NVML_ERROR_INVALID_ARGUMENT;
  *temp = d->temp;
  return FAKE_NVML_SUCCESS;
}

int nvmlDeviceGetPowerUsage(void *device, unsigned int *milliwatts) {
  const fake_nvml_device *d = device;
  *milliwatts = d->milliwatts;
  return d->power_rc;
}
