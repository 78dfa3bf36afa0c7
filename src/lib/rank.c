/*
 * rank.c - which process of a distributed run this is.
 *
 * Only rank -1 (not distributed) or 0 talks to the hub, so that N workers
 * do not create N models. The launchers each export their own variable; the
 * first one that is set and holds a whole number wins, in the order torchrun,
 * Open MPI, MPICH/PMI, Slurm.
 */
#include "chub.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

/* The value of `name` as a rank, or -1 when unset or not a whole number
 * (a malformed variable must not silence rank 0). */
static int chub_rank_from_env(const char *name) {
  const char *v = getenv(name);
  if (!v || !*v)
    return -1;
  char *end = NULL;
  errno = 0;
  long r = strtol(v, &end, 10);
  while (end && (*end == ' ' || *end == '\n' || *end == '\t'))
    end++;
  if (errno || end == v || (end && *end) || r < 0 || r > INT_MAX)
    return -1;
  return (int)r;
}

int chub_rank(void) {
  static const char *const vars[] = {"RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK",
                                     "SLURM_PROCID"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    int r = chub_rank_from_env(vars[i]);
    if (r >= 0)
      return r;
  }
  return -1;
}
