/* The files of one run: uploads bind-mounted read-only at the paths the
   request names, and /output, a bounded tmpfs captured into the run record
   afterwards.  executor.c calls these around the run; each step is undone
   by boxer_runfiles_teardown (), which is safe to call twice.

   In the bundle: files/<n> are hard links to the uploads (so an upload that
   expires during the run stays for it), output/ is the tmpfs mount point.  */
#ifndef BOXER_EXECUTOR_RUNFILES_H
#define BOXER_EXECUTOR_RUNFILES_H

#include <stdbool.h>

#include "executor.h"
#include "spec.h"

struct boxer_runfiles
{
  char *files_dir;      /* <bundle>/files */
  char *output_dir;     /* <bundle>/output */
  bool output_mounted;
  char **sources;       /* <bundle>/files/<n>, one per request file */
  size_t n;
};

/* Check every destination against the image (a parent that is a file, or a
   destination that is a directory, is BOXER_ERR_INVALID), link the uploads
   into the bundle (unknown or expired ones are BOXER_ERR_FILE_NOT_FOUND)
   and mount the /output tmpfs.  */
int boxer_runfiles_setup (struct boxer_runfiles *rf, const struct boxer_config *cfg,
                          const char *bundle, const char *rootfs,
                          const struct boxer_run_request *req, struct boxer_error **err);

/* Only the uploads' part of boxer_runfiles_setup (), into a zeroed rf or
   one set up before: for a warm sandbox, whose /output was mounted when
   it booted and whose files boxer-init writes.  */
int boxer_runfiles_link_uploads (struct boxer_runfiles *rf, const struct boxer_config *cfg,
                                 const char *bundle, const char *rootfs,
                                 const struct boxer_run_request *req, struct boxer_error **err);

/* A new array (caller frees) of the n binds given followed by this run's:
   each upload read-only and /output writable; *n_out is the new count.  */
struct boxer_spec_bind *boxer_runfiles_binds (const struct boxer_runfiles *rf,
                                              const struct boxer_run_request *req,
                                              const struct boxer_spec_bind *binds, size_t n,
                                              size_t *n_out);

/* After the run: a descriptor of the /output tmpfs (-1 when the run had
   none), which stays readable after boxer_runfiles_teardown () unmounts it
   lazily, so that the worker, not the executor, reads what the run wrote.  */
int boxer_runfiles_open_output (struct boxer_runfiles *rf, int *fd_out, struct boxer_error **err);
/* Unmount /output and forget the run's files (the bundle itself is removed
   by the executor).  */
void boxer_runfiles_teardown (struct boxer_runfiles *rf);

/* For runs of a dead executor server: unmount <bundle>/output if it is mounted, before
   the bundle is removed.  */
void boxer_runfiles_sweep (const char *bundle);

#endif
