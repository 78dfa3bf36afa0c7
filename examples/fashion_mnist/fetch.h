/*
 * fetch.h - downloads a hub model's weights so a run can resume from them.
 */
#ifndef FASHION_MNIST_FETCH_H
#define FASHION_MNIST_FETCH_H

#include <stddef.h>

/* GETs `url`, a hub's signed download URL (no key is sent: the URL is
 * the permission), into `path`, through `path`.tmp and a rename. Returns
 * 0, or -1 with a message naming the URL and the failure in `err`.
 * Blocks; gives up after 5 minutes. */
int fetch_file(const char *url, const char *path, char *err, size_t errlen);

#endif
