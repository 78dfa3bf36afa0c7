/*
 * fetch.c - one HTTP download with libcurl, written straight to disk.
 *
 * The hub serves weights with their size and digest; the weights file
 * carries its own CRC, so this only has to get the bytes there or say why
 * it could not.
 */
#include "fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int fetch_file(const char *url, const char *path, char *err, size_t errlen) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *fp = fopen(tmp, "wb");
  if (!fp) {
    snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
    return -1;
  }
  CURL *curl = curl_easy_init();
  char curl_err[CURL_ERROR_SIZE] = "";
  CURLcode rc = CURLE_FAILED_INIT;
  long status = 0;
  if (curl) {
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, fp);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 300L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
  }
  int closed = fclose(fp);
  if (rc != CURLE_OK) {
    snprintf(err, errlen, "cannot download %s: %s", url,
             *curl_err ? curl_err : curl_easy_strerror(rc));
  } else if (status < 200 || status > 299) {
    snprintf(err, errlen, "cannot download %s: the hub answered HTTP %ld", url,
             status);
  } else if (closed != 0) {
    snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
  } else if (rename(tmp, path) != 0) {
    snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path,
             strerror(errno));
  } else {
    return 0;
  }
  unlink(tmp);
  return -1;
}
