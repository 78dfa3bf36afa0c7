/*
 * hub_callbacks.c - the nine HUB training callbacks, as the reference's
 * callbacks/hub.py behaves, on chub's session.
 *
 * These run on the trainer's thread, so each one does only local work: the
 * epoch's entries are framed straight into a stack buffer (no JSON, no
 * number formatting, no allocation in the common case), appended to the
 * spool with one write, and the sender is poked when a rate limit passed. Only
 * on_train_end waits on the network, for the final sync, with a deadline.
 */
#include "flat_map.h"
#include "hot_path.h"
#include "internal.h"
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The trainer's metric `m` as an entry under `prefix` (plen bytes, known
 * here, so only the name is measured), written in place. */
static void hub_callbacks_item(flat_item *it, const char *prefix, size_t plen,
                               const chub_metric *m) {
  *it = (flat_item){.prefix = prefix,
                    .plen = plen,
                    .name = m->name,
                    .nlen = m->name ? strlen(m->name) : 0,
                    .value = m->value};
}

/* The epoch's entries into items (room for hub_callbacks_count(t)):
 * the train losses under "train/", the metrics as they are, and at epoch 0
 * the model's size and speed. Returns how many. */
CHUB_HOT static size_t hub_callbacks_items(const chub_trainer *t,
                                           flat_item *items) {
  size_t n = 0;
  for (size_t i = 0; i < t->n_tloss; i++)
    hub_callbacks_item(&items[n++], "train/", 6, &t->tloss[i]);
  for (size_t i = 0; i < t->n_metrics; i++)
    hub_callbacks_item(&items[n++], "", 0, &t->metrics[i]);
  if (t->epoch == 0) {
    items[n++] =
        flat_item_of("", "model/parameters", (double)t->model_parameters, true);
    items[n++] = flat_item_of("", "model/GFLOPs", t->model_gflops, false);
    items[n++] =
        flat_item_of("", "model/speed_PyTorch(ms)", t->model_speed_ms, false);
  }
  return n;
}

CHUB_HOT static size_t hub_callbacks_count(const chub_trainer *t) {
  return t->n_tloss + t->n_metrics + 3;
}

size_t hub_callbacks_metrics_json(const chub_trainer *t, char *buf, size_t cap,
                                  bool *dropped) {
  flat_item stack[64];
  size_t total = hub_callbacks_count(t);
  flat_item *items = total <= 64 ? stack : malloc(total * sizeof *items);
  if (!items) {
    if (cap)
      snprintf(buf, cap, "{}");
    return 2;
  }
  size_t len =
      flat_map_json(items, hub_callbacks_items(t, items), buf, cap, dropped);
  if (items != stack)
    free(items);
  return len;
}

static void hub_callbacks_on_pretrain_routine_start(void *subject, void *user) {
  (void)user;
  chub_trainer *t = subject;
  int rank = chub_rank();
  if ((rank != -1 && rank != 0) || t->hub_session)
    return;
  chub_settings set;
  if (chub_settings_load(&set) != CHUB_OK || !set.hub)
    return;
  if (!set.api_key[0] && strcmp(set.mode, "offline") != 0)
    return;
  chub_session *s = NULL;
  chub_session_open(t->args.model, &t->args, &s);
  t->hub_session = s;
}

static void hub_callbacks_on_pretrain_routine_end(void *subject, void *user) {
  (void)user;
  chub_trainer *t = subject;
  if (t->hub_session)
    session_on_train_start(t->hub_session);
}

CHUB_HOT static void hub_callbacks_on_fit_epoch_end(void *subject, void *user) {
  (void)user;
  chub_trainer *t = subject;
  if (!t->hub_session)
    return;
  /* The entries go to the spool as they are: the JSON is written when the
   * sender reads the epoch back, off the trainer's thread. */
  flat_item stack[64];
  size_t total = hub_callbacks_count(t);
  flat_item *items = total <= 64 ? stack : malloc(total * sizeof *items);
  if (!items)
    return;
  session_on_epoch_end(t->hub_session, t->epoch, items,
                       hub_callbacks_items(t, items));
  if (items != stack)
    free(items);
}

static void hub_callbacks_on_model_save(void *subject, void *user) {
  (void)user;
  chub_trainer *t = subject;
  if (!t->hub_session || !t->last)
    return;
  session_on_model_save(t->hub_session, t->epoch, t->last,
                        t->best_fitness == t->fitness);
}

static double hub_callbacks_final_map(const chub_trainer *t) {
  for (size_t i = 0; i < t->n_metrics; i++)
    if (t->metrics[i].name &&
        strcmp(t->metrics[i].name, "metrics/mAP50-95(B)") == 0)
      return t->metrics[i].value;
  return 0.0;
}

static void hub_callbacks_on_train_end(void *subject, void *user) {
  (void)user;
  chub_trainer *t = subject;
  if (!t->hub_session)
    return;
  session_on_train_end(t->hub_session, t->epoch, t->best,
                       hub_callbacks_final_map(t));
  t->hub_session = NULL;
}

static void hub_callbacks_on_train_start(void *subject, void *user) {
  (void)user;
  chub_trainer *t = subject;
  chub_event_record("train", &t->args, t);
}

static void hub_callbacks_on_val_start(void *subject, void *user) {
  (void)user;
  chub_validator *v = subject;
  if (!v->training)
    chub_event_record("val", &v->args, NULL);
}

static void hub_callbacks_on_predict_start(void *subject, void *user) {
  (void)user;
  chub_predictor *p = subject;
  chub_event_record("predict", &p->args, NULL);
}

static void hub_callbacks_on_export_start(void *subject, void *user) {
  (void)user;
  chub_exporter *e = subject;
  chub_event_record("export", &e->args, NULL);
}

void hub_callbacks_add(chub_callbacks *cb) {
  static const struct {
    chub_event event;
    chub_callback_fn fn;
  } table[] = {
      {CHUB_ON_PRETRAIN_ROUTINE_START, hub_callbacks_on_pretrain_routine_start},
      {CHUB_ON_PRETRAIN_ROUTINE_END, hub_callbacks_on_pretrain_routine_end},
      {CHUB_ON_FIT_EPOCH_END, hub_callbacks_on_fit_epoch_end},
      {CHUB_ON_MODEL_SAVE, hub_callbacks_on_model_save},
      {CHUB_ON_TRAIN_END, hub_callbacks_on_train_end},
      {CHUB_ON_TRAIN_START, hub_callbacks_on_train_start},
      {CHUB_ON_VAL_START, hub_callbacks_on_val_start},
      {CHUB_ON_PREDICT_START, hub_callbacks_on_predict_start},
      {CHUB_ON_EXPORT_START, hub_callbacks_on_export_start},
  };
  for (size_t i = 0; i < sizeof table / sizeof *table; i++)
    chub_callbacks_add(cb, table[i].event, table[i].fn, NULL);
}
