/* A run's /output: an empty, size-bounded tmpfs mounted on the host at
   <bundle>/output and bind-mounted writable into the sandbox, so a run
   cannot fill the host's disk; after the run its regular files are copied
   into the run record within limits, and it is unmounted.

   Everything under it was written by untrusted code.  It is walked one
   directory fd at a time, every name opened with openat2 ()
   (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
   RESOLVE_NO_XDEV) and O_NOFOLLOW after lstat-ing it: symlinks are never
   followed, and FIFOs, sockets and devices never opened.  */
#ifndef BOXER_EXECUTOR_OUTPUTS_H
#define BOXER_EXECUTOR_OUTPUTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "executor.h"

/* Deepest directory nesting under /output that is captured.  */
#define BOXER_OUTPUTS_MAX_DEPTH 32

/* openat2 (dirfd, path, flags | O_CLOEXEC) resolving strictly beneath
   dirfd, through no symlink and no mount point.  Returns the fd, or -1
   with errno set.  */
int boxer_openat_beneath (int dirfd, const char *path, int flags, int mode);

/* Mount the tmpfs on dir (which must exist): room for twice the kept
   limits (twice limit_bytes, plus a page for each of twice limit_files
   files), so that a run going over them is noticed (outputs_truncated)
   rather than only failing to write; nosuid, nodev, noexec; mode 1777 so
   the run's unprivileged user can write.  */
int boxer_outputs_mount (const char *dir, int64_t limit_bytes, int64_t limit_files,
                         struct boxer_error **err);

/* Lazily unmount whatever is mounted on dir; nothing mounted, or no dir,
   is fine.  Safe to call twice.  */
int boxer_outputs_unmount (const char *dir, struct boxer_error **err);

struct boxer_outputs_capture
{
  int64_t limit_bytes;
  int64_t limit_files;
  /* Results.  */
  struct boxer_run_output *files;       /* sorted by path */
  size_t nfiles;
  int64_t bytes;
  bool truncated;       /* a file was left out: over a limit, too deep, or
                           a name that is not valid UTF-8 text */
};

/* Copy the regular files under src_dir into the directory dst_fd (same
   relative paths), within c's limits, filling c's results.  Files are
   taken whole or not at all, in path order.  */
int boxer_outputs_capture (const char *src_dir, int dst_fd, struct boxer_outputs_capture *c,
                           struct boxer_error **err);

/* The same from the directory src_fd (the worker's copy of the /output
   tmpfs that the executor passed it, already unmounted).  */
int boxer_outputs_capture_fd (int src_fd, int dst_fd, struct boxer_outputs_capture *c,
                              struct boxer_error **err);
/* Make what a run left under dir_fd readable to others (files a+r,
   directories a+rx), so that an unprivileged worker can keep it: done in a
   child process with the run's own uid and gid and no privilege, the only
   identity that may change those modes and one that can reach nothing
   else of the host's.  */
int boxer_outputs_make_readable (int dir_fd, uid_t run_uid, gid_t run_gid,
                                 struct boxer_error **err);
void boxer_outputs_capture_release (struct boxer_outputs_capture *c);

#endif
