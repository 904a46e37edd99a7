/* Control of gVisor's runsc: finding it, its version, probing a platform,
   starting `runsc run` attached to pipes, and killing or deleting a
   sandbox.  */
#ifndef BOXER_EXECUTOR_RUNSC_H
#define BOXER_EXECUTOR_RUNSC_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

/* Sandbox networking on current kernels needs a runsc from this date or
   later (see README, "runsc").  */
#define BOXER_RUNSC_MIN_DATE 20240801

struct boxer_runsc
{
  char *path;        /* absolute path of the binary */
  char *root;        /* --root: runsc's state directory */
  char *platform;    /* the platform probed to work */
  char *version;     /* as `runsc --version` prints it */
  long version_date; /* YYYYMMDD parsed from the version, 0 if unknown */
  bool ignore_cgroups;
};

/* Find runsc (path, or "runsc" on PATH when NULL), read its version and
   probe platforms: the configured one first, then the safe fallbacks
   (systrap, ptrace).  kvm is only ever used when configured.  */
int boxer_runsc_init (struct boxer_runsc *rs, const char *path, const char *root,
                      const char *platform, bool ignore_cgroups, struct boxer_error **err);
void boxer_runsc_release (struct boxer_runsc *rs);

/* The date in a runsc version string: "release-20240807.0" or a Go
   pseudo-version "v0.0.0-20260905035102-160fafc42237".  0 if none.  */
long boxer_runsc_parse_version_date (const char *version);

/* `runsc run --detach` of bundle as container id, waited for (bounded):
   the sandbox boots and its first process starts with the given fds as
   stdio, and runsc returns, leaving it running.  One runsc process where
   `create` and `start` are two: about 20 ms less on the test machine.
   network: "none", "sandbox" or "host"; runsc's own log goes to
   log_path.  */
int boxer_runsc_run_detached (const struct boxer_runsc *rs, const char *bundle, const char *id,
                              const char *network, const char *log_path, int stdin_fd,
                              int stdout_fd, int stderr_fd, struct boxer_error **err);

/* `runsc kill --all ID KILL`, bounded in time.  */
int boxer_runsc_kill (const struct boxer_runsc *rs, const char *id, struct boxer_error **err);
/* `runsc delete --force ID`, bounded in time; a missing container is fine.  */
int boxer_runsc_delete (const struct boxer_runsc *rs, const char *id, struct boxer_error **err);

/* Undo what runsc keeps in its root between sandboxes: the empty network
   namespace it bind-mounts there for --network=none.  Only when no sandbox
   can start any more (service shutdown).  */
int boxer_runsc_cleanup_root (const struct boxer_runsc *rs, struct boxer_error **err);

/* Scan runsc's JSON log for the error that made runsc fail; NULL if
   none.  Caller frees.  */
char *boxer_runsc_log_error (const char *log_path);

#endif
