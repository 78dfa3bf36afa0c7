/*
 * error.c - chub_code in words.
 *
 * One sentence per code, written for the person reading a log line, so that
 * "chub: upload failed: the hub rejected the API key" needs no lookup.
 */
#include "chub.h"

const char *chub_strerror(chub_code code) {
  switch (code) {
  case CHUB_OK:
    return "no error";
  case CHUB_EINVAL:
    return "an argument or an input is not valid";
  case CHUB_ENOMEM:
    return "out of memory";
  case CHUB_EIO:
    return "a local file could not be read or written";
  case CHUB_ENET:
    return "the hub gave no answer (refused, reset, timeout or DNS)";
  case CHUB_EAUTH:
    return "the hub rejected the API key";
  case CHUB_ENOTFOUND:
    return "the hub does not know this model";
  case CHUB_ECONFLICT:
    return "the hub refused a conflicting change";
  case CHUB_EHTTP:
    return "the hub answered with an error status";
  case CHUB_EPROTO:
    return "the hub's answer did not follow the protocol";
  case CHUB_EDISABLED:
    return "the hub is disabled (setting hub=false, no API key or rank > 0)";
  case CHUB_ETIMEDOUT:
    return "a deadline passed; the work stays spooled";
  case CHUB_EFULL:
    return "a queue or the spool reached its configured limit";
  case CHUB_ECORRUPT:
    return "stored local data failed its checksum or could not be parsed";
  case CHUB_EOFFLINE:
    return "running offline; data is spooled for `chub sync`";
  }
  return "unknown error code";
}
