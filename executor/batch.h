/* The runs of a batch (POST /batch) through the boxer-init of its one
   sandbox: at most parallelism at once, each its own process, uid, mount
   namespace (a fresh /tmp), wall clock, address-space limit and share of
   the output.  executor.c gives it the sandbox and takes it down.  */
#ifndef BOXER_EXECUTOR_BATCH_H
#define BOXER_EXECUTOR_BATCH_H

#include <stdbool.h>

#include "executor.h"
#include "init_link.h"

/* Run uid of the batch's run i: a uid of its own, which no other run
   (and no file of the image) has, so that runs cannot signal, trace or
   write to one another.  */
#define BOXER_BATCH_UID_BASE 100000u

/* The cap of each stream of each of nruns runs.  */
size_t boxer_batch_output_cap (const struct boxer_config *cfg, size_t nruns);

/* Drive every run of job through l.  files_fd: an empty directory of the
   bundle where uploads are linked before they are sent.  done[i] is set
   as run i is reported through job->on_run.  0 when every run was
   reported; -1 with *err otherwise: the worker gone or cancelled
   (BOXER_ERR_RUNTIME), boxer-init gone (*gone set: the sandbox died), or
   boxer-init broken.  */
int boxer_batch_drive (struct boxer_init_link *l, const struct boxer_config *cfg,
                       const struct boxer_batch_job *job, int files_fd, bool *done, bool *gone,
                       struct boxer_error **err);

#endif
