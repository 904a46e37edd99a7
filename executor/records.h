/* Run records: the result of every completed run and the files it left
   under /output, kept on disk so that any worker can answer GET /runs/{id}
   and its outputs, and removed after runs_ttl_secs.

   Layout: <home>/runs/records/<run id>/result.json (the run result as POST
   /run answered it) and .../outputs/ (the captured files).  A record is
   built in .new-<run id> (boxer_records_stage (), filled by the executor
   after the run) and renamed into place by boxer_records_commit () once
   result.json is written, so readers see a whole record or none.  */
#ifndef BOXER_EXECUTOR_RECORDS_H
#define BOXER_EXECUTOR_RECORDS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/error.h"
#include "expiry.h"

#define BOXER_RECORD_ID_PREFIX "r_"
#define BOXER_RECORD_ID_HEX 32

/* Whether s is a run id in the form the executor makes.  Pure.  */
bool boxer_records_id_is_valid (const char *s);

/* The BOXER_ERR_RUN_NOT_FOUND error of an unknown run id.  */
int boxer_records_not_found (const char *id, int64_t ttl_secs, struct boxer_error **err);

/* Create the staging record of run id and return an fd (O_CLOEXEC) of its
   empty outputs directory in *outputs_fd_out.  */
int boxer_records_stage (const char *home, const char *id, int *outputs_fd_out,
                         struct boxer_error **err);
/* Write result.json (len bytes of json) into the staged record of id and
   publish it.  */
int boxer_records_commit (const char *home, const char *id, const char *json, size_t len,
                          struct boxer_error **err);
/* Remove the staged record of id, if there is one.  */
void boxer_records_discard (const char *home, const char *id);

/* The result.json of run id (*out NUL-terminated, caller frees).  A
   malformed, unknown or expired id is BOXER_ERR_RUN_NOT_FOUND.  */
int boxer_records_read (const char *home, const char *id, int64_t ttl_secs, char **out,
                        size_t *len_out, struct boxer_error **err);

/* Open output file path (relative, checked with boxer_paths_check_relative
   ()) of run id for reading: *fd_out (O_CLOEXEC) and its size.  Opened
   beneath the record's outputs directory without following any symlink;
   only regular files.  BOXER_ERR_RUN_NOT_FOUND for the run,
   BOXER_ERR_FILE_NOT_FOUND for the file.  */
int boxer_records_open_output (const char *home, const char *id, int64_t ttl_secs,
                               const char *path, int *fd_out, int64_t *size_out,
                               struct boxer_error **err);

/* Whether a run may start, as far as its record goes: the disk keeps
   cfg->min_free_bytes free and the records stay within
   cfg->runs_budget_bytes with room for what a run's limits let it keep
   (its /output and both streams).  BOXER_ERR_NO_SPACE otherwise.  What
   was charged for it goes to boxer_records_settle () once the record is
   written or given up.  */
int boxer_records_admit (const struct boxer_config *cfg, struct boxer_expiry_charge *charge,
                         struct boxer_error **err);
/* Settle the charge of an admission to what the record of run id takes
   (nothing when id is NULL or has no record).  */
void boxer_records_settle (const struct boxer_config *cfg, const char *id,
                           const struct boxer_expiry_charge *charge);
/* Bring the budget's ledger back to what the records take, once a minute
   (boxer_expiry_remeasure ()).  */
int boxer_records_remeasure (const struct boxer_config *cfg, struct boxer_error **err);

/* Remove records older than ttl_secs and what interrupted ones left.  */
int boxer_records_sweep (const char *home, int64_t ttl_secs, struct boxer_error **err);

/* After run id: stage its record and copy the regular files of the
   directory output_fd (the run's /output, -1 for none) into it within the
   config's limits, filling out->outputs, out->noutputs and
   out->outputs_truncated.  Published by boxer_records_commit () once the
   result is written; discarded on failure.  */
struct boxer_run_result;
int boxer_records_capture (const struct boxer_config *cfg, const char *id, int output_fd,
                           struct boxer_run_result *out, struct boxer_error **err);

#endif
