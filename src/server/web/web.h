/*
 * web.h - chubd's pages (HTML, CSS, JS and uPlot), embedded into the binary
 * at build time so that chubd is one file that works with no network.
 */
#ifndef CHUBD_WEB_H
#define CHUBD_WEB_H

#include <stddef.h>

typedef struct chubd_asset {
  const char *path;         /* "/static/model.js", "/index.html", ... */
  const char *content_type; /* "text/html; charset=utf-8", ... */
  const unsigned char *data;
  size_t len;
  const char *etag; /* quoted hash of the bytes */
} chubd_asset;

/* The embedded asset at `path`, or NULL. */
const chubd_asset *chubd_web_asset(const char *path);

#endif
