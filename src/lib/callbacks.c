/*
 * callbacks.c - the callback registry: for each lifecycle event, an ordered
 * list of (function, user data) pairs.
 *
 * Built like Ultralytics' callbacks/base.py: a trainer owns one registry,
 * adds what it wants, and runs an event at the point its loop reaches it.
 * Each event's list is a growable array so that running an event is a plain
 * walk over contiguous memory; adding the same pair twice is a no-op so that
 * adding the integration callbacks twice cannot double every upload.
 */
#include "internal.h"

#include "hot_path.h"

#include <stdlib.h>
#include <string.h>

typedef struct chub_callback_entry {
  chub_callback_fn fn;
  void *user;
} chub_callback_entry;

typedef struct chub_callback_list {
  chub_callback_entry *items;
  size_t n, cap;
} chub_callback_list;

struct chub_callbacks {
  chub_callback_list lists[CHUB_EVENT_COUNT];
};

/* Indexed by chub_event; the names Ultralytics uses. */
static const char *const chub_event_names[CHUB_EVENT_COUNT] = {
    "on_pretrain_routine_start",
    "on_pretrain_routine_end",
    "on_train_start",
    "on_train_epoch_start",
    "on_train_batch_start",
    "optimizer_step",
    "on_before_zero_grad",
    "on_train_batch_end",
    "on_train_epoch_end",
    "on_fit_epoch_end",
    "on_model_save",
    "on_train_end",
    "on_params_update",
    "teardown",
    "on_val_start",
    "on_val_batch_start",
    "on_val_batch_end",
    "on_val_end",
    "on_predict_start",
    "on_predict_batch_start",
    "on_predict_postprocess_end",
    "on_predict_batch_end",
    "on_predict_end",
    "on_export_start",
    "on_export_end",
};

static bool chub_event_valid(chub_event event) {
  return (int)event >= 0 && event < CHUB_EVENT_COUNT;
}

const char *chub_event_name(chub_event event) {
  return chub_event_valid(event) ? chub_event_names[event] : NULL;
}

chub_event chub_event_from_name(const char *name) {
  if (!name)
    return CHUB_EVENT_COUNT;
  for (int i = 0; i < CHUB_EVENT_COUNT; i++)
    if (strcmp(chub_event_names[i], name) == 0)
      return (chub_event)i;
  return CHUB_EVENT_COUNT;
}

chub_callbacks *chub_callbacks_new(void) {
  return calloc(1, sizeof(chub_callbacks));
}

void chub_callbacks_free(chub_callbacks *cb) {
  if (!cb)
    return;
  for (int i = 0; i < CHUB_EVENT_COUNT; i++)
    free(cb->lists[i].items);
  free(cb);
}

static long chub_callbacks_find(const chub_callback_list *l,
                                chub_callback_fn fn, void *user) {
  for (size_t i = 0; i < l->n; i++)
    if (l->items[i].fn == fn && l->items[i].user == user)
      return (long)i;
  return -1;
}

chub_code chub_callbacks_add(chub_callbacks *cb, chub_event event,
                             chub_callback_fn fn, void *user) {
  if (!cb || !fn || !chub_event_valid(event))
    return CHUB_EINVAL;
  chub_callback_list *l = &cb->lists[event];
  if (chub_callbacks_find(l, fn, user) >= 0)
    return CHUB_OK;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 4;
    chub_callback_entry *items = realloc(l->items, cap * sizeof *items);
    if (!items)
      return CHUB_ENOMEM;
    l->items = items;
    l->cap = cap;
  }
  l->items[l->n++] = (chub_callback_entry){fn, user};
  return CHUB_OK;
}

chub_code chub_callbacks_remove(chub_callbacks *cb, chub_event event,
                                chub_callback_fn fn, void *user) {
  if (!cb || !chub_event_valid(event))
    return CHUB_EINVAL;
  chub_callback_list *l = &cb->lists[event];
  long i = chub_callbacks_find(l, fn, user);
  if (i < 0)
    return CHUB_EINVAL;
  memmove(&l->items[i], &l->items[i + 1],
          (l->n - (size_t)i - 1) * sizeof l->items[0]);
  l->n--;
  return CHUB_OK;
}

size_t chub_callbacks_count(const chub_callbacks *cb, chub_event event) {
  if (!cb || !chub_event_valid(event))
    return 0;
  return cb->lists[event].n;
}

CHUB_HOT void chub_callbacks_run(const chub_callbacks *cb, chub_event event,
                                 void *subject) {
  if (!cb || !chub_event_valid(event))
    return;
  const chub_callback_list *l = &cb->lists[event];
  /* l->n is read on every turn: a callback may remove itself or add another
   * while the event runs, and the walk must never read past the end. */
  for (size_t i = 0; i < l->n; i++)
    l->items[i].fn(subject, l->items[i].user);
}

chub_code chub_add_integration_callbacks(chub_callbacks *cb) {
  if (!cb)
    return CHUB_EINVAL;
  chub_settings s;
  chub_code rc = chub_settings_load(&s);
  if (rc != CHUB_OK)
    return rc;
  if (!s.hub) {
    chub_log(CHUB_LOG_DEBUG, "setting hub is false; HUB callbacks not added");
    return CHUB_EDISABLED;
  }
  hub_callbacks_add(cb);
  return CHUB_OK;
}
