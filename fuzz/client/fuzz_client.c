/*
 * fuzz_client.c - libFuzzer target for what the client parses from outside:
 * a hub's answer body (the envelope and the data fields the session reads),
 * a Retry-After header value, and a model identifier (URL or file name);
 * and what it writes from a trainer's strings: the epoch's flat map, which
 * must always be JSON the hub can read, whatever bytes the names hold.
 *
 * The input's first byte picks the parser so one corpus covers all four;
 * every parser must reject garbage with an error code and never read past
 * the input (ASan) or misbehave on odd numbers (UBSan).
 */
#include "http.h"
#include "session.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_client_envelope(const char *body, size_t len) {
  json_t *data = NULL;
  char msg[64];
  chub_code rc = http_parse_envelope(body, len, &data, msg, sizeof msg);
  if (rc != CHUB_OK) {
    if (data)
      abort(); /* a failed parse must not hand out data */
    return;
  }
  if (strlen(msg) >= sizeof msg)
    abort();
  /* The fields a session reads from a model and an upload answer. */
  json_string_value(json_object_get(data, "id"));
  json_string_value(json_object_get(data, "agentId"));
  json_string_value(json_object_get(data, "sha256"));
  json_t *ta = json_object_get(data, "train_args");
  (void)(int)json_number_value(json_object_get(ta, "epochs"));
  json_decref(data);
}

/* Names split at '\n' (the text is NUL-terminated), values from the
 * name lengths and positions, including non-finite ones. */
static void fuzz_client_flat_map(char *text) {
  chub_metric m[16];
  size_t n = 0;
  for (char *p = text; p && n < 16; n++) {
    char *nl = strchr(p, '\n');
    if (nl)
      *nl = '\0';
    double v = (double)strlen(p) / (double)(n + 1);
    m[n] = (chub_metric){p, n == 3 ? v / 0.0 : n == 5 ? 0.0 / 0.0 : v};
    p = nl ? nl + 1 : NULL;
  }
  chub_trainer t = {.epoch = (int)(n % 2),
                    .metrics = m,
                    .n_metrics = n,
                    .tloss = m,
                    .n_tloss = n / 2,
                    .model_parameters = 7};
  char buf[8192];
  bool dropped = false;
  size_t len = hub_callbacks_metrics_json(&t, buf, sizeof buf, &dropped);
  if (len >= sizeof buf)
    return;
  json_error_t err;
  json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
  if (!j || !json_is_object(j))
    abort(); /* the hub would refuse the whole batch */
  json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  uint8_t which = data[0] % 4;
  const char *rest = (const char *)data + 1;
  size_t len = size - 1;
  char *text = malloc(len + 1);
  if (!text)
    return 0;
  memcpy(text, rest, len);
  text[len] = '\0';
  if (which == 0) {
    fuzz_client_envelope(rest, len);
  } else if (which == 1) {
    double s = http_retry_after(text, 1700000000LL);
    if (!(s >= 0 || s == -1))
      abort();
  } else if (which == 3) {
    fuzz_client_flat_map(text);
  } else {
    session_ident id;
    chub_code rc = session_parse_identifier(text, &id);
    if (rc == CHUB_OK && id.kind == SESSION_IDENT_URL &&
        strlen(id.model_id) != 20)
      abort();
    if (rc == CHUB_OK && id.kind == SESSION_IDENT_FILE) {
      chub_args a = {.data = "d", .epochs = 1};
      free(session_create_payload(&a, &id));
    }
  }
  free(text);
  return 0;
}
