/* Filesystem helpers.  Every fd is O_CLOEXEC; recursive removal never
   follows symlinks, so a tree a sandbox wrote can be removed safely.  */
#ifndef BOXER_COMMON_FSUTIL_H
#define BOXER_COMMON_FSUTIL_H

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "error.h"

/* Create path and missing parents; existing directories are fine.  */
int boxer_mkdir_p (const char *path, mode_t mode, struct boxer_error **err);

/* Walking a tree someone else wrote.  The walk is iterative and holds at
   most BOXER_WALK_OPEN_DIRS + 2 fds however deep the tree is: directories
   deeper than that are closed on the way down and reopened through ".."
   on the way up, checked to be the same directory (device and inode), so
   a tree changed meanwhile stops the walk with an error instead of
   leading it elsewhere.  Symlinks are never followed.  */
#define BOXER_WALK_OPEN_DIRS 32

enum boxer_walk_event
{
  BOXER_WALK_FILE,      /* anything but a directory */
  BOXER_WALK_DIR_PRE,   /* a directory, before its children; return 1 to skip them */
  BOXER_WALK_DIR_POST,  /* a directory, after its children */
};

/* parentfd is the directory holding name; st its lstat.  Return < 0 (with
   *err set) to stop the walk.  */
typedef int (*boxer_walk_fn) (int parentfd, const char *name, const struct stat *st,
                              enum boxer_walk_event ev, void *data, struct boxer_error **err);

/* Walk name under dirfd (AT_FDCWD allowed) and everything below it.
   destructive: the callback removes what it visits, so a directory that
   had to be reopened is read again from its start instead of from where
   the walk was (a position that deletions may have moved).  */
int boxer_walk_at (int dirfd, const char *name, bool destructive, boxer_walk_fn fn, void *data,
                   struct boxer_error **err);

/* Create path (and parents) if missing, and make sure it is a directory
   of ours that only we can enter: owned by our euid (refused otherwise:
   someone else's directory is not ours to take over) and mode 0700
   (enforced, whatever it was).  */
int boxer_ensure_private_dir (const char *path, struct boxer_error **err);

/* BOXER_ERR_NO_SPACE, naming min_free_bytes, when the file system
   holding path has less than floor bytes free for us; what says what was
   refused ("uploads", ...).  */
int boxer_check_free_space (const char *path, int64_t floor, const char *what,
                            struct boxer_error **err);

/* Remove name under dirfd (AT_FDCWD allowed) and everything below it,
   without following symlinks and regardless of the tree's permissions.
   A missing name is not an error.  */
int boxer_rm_rf_at (int dirfd, const char *name, struct boxer_error **err);
int boxer_rm_rf (const char *path, struct boxer_error **err);

/* Write through a temporary file in the same directory and rename it into
   place, so readers see the old contents or the new, never a part; synced
   first, so that a host crash leaves the one or the other too.  */
int boxer_write_file_atomic (const char *path, const void *data, size_t len, mode_t mode,
                             struct boxer_error **err);
/* The same without the sync (a millisecond or more of a request's path):
   for files nothing needs after a host crash, or whose damage after one
   their readers detect and report.  */
int boxer_write_file_unsynced (const char *path, const void *data, size_t len, mode_t mode,
                               struct boxer_error **err);

/* Read a whole file, refusing (BOXER_ERR_TOO_LARGE) more than cap bytes.
   *out is NUL-terminated.  */
int boxer_read_file (const char *path, size_t cap, char **out, size_t *len_out,
                     struct boxer_error **err);

/* Open (creating) path and flock it with how (LOCK_EX, LOCK_SH, optionally
   | LOCK_NB).  Returns the fd that holds the lock, or -1; with LOCK_NB a
   lock held elsewhere returns -1 with errno EWOULDBLOCK and no error set.  */
int boxer_lock_path (const char *path, int how, struct boxer_error **err);

/* Fill out with prefix followed by hex characters from getrandom (), for
   ids that must not be guessable.  out must hold strlen (prefix) + nhex + 1.  */
int boxer_random_id (char *out, const char *prefix, size_t nhex, struct boxer_error **err);

/* Write all of buf, retrying on EINTR and short writes.  */
int boxer_write_all (int fd, const void *buf, size_t len, struct boxer_error **err);

#endif
