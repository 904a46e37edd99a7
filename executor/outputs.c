#include <config.h>

#include "outputs.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "common/fsutil.h"
#include "common/paths.h"
#include "common/utf8.h"

int
boxer_openat_beneath (int dirfd, const char *path, int flags, int mode)
{
  struct open_how how = {
    .flags = (uint64_t) (flags | O_NOFOLLOW | O_CLOEXEC),
    .mode = (uint64_t) ((flags & O_CREAT) ? mode : 0),
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
  };
  int fd;

  do
    fd = (int) syscall (SYS_openat2, dirfd, path, &how, sizeof how);
  while (fd < 0 && errno == EINTR);
  return fd;
}

int
boxer_outputs_mount (const char *dir, int64_t limit_bytes, int64_t limit_files,
                     struct boxer_error **err)
{
  /* tmpfs counts whole pages, so every file may cost one more than its
     bytes.  The root directory takes an inode, and so does every
     directory a run makes to arrange its files.  */
  long long page = sysconf (_SC_PAGESIZE);
  cleanup_free char *opts = xasprintf ("size=%lld,nr_inodes=%lld,mode=1777",
                                       (long long) limit_bytes * 2
                                         + (long long) limit_files * 2 * page,
                                       (long long) limit_files * 2 + 64);

  if (mount ("boxer-output", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
    return boxer_error_errno (err, errno, "mount a tmpfs for /output on '%s'", dir);
  return 0;
}

int
boxer_outputs_unmount (const char *dir, struct boxer_error **err)
{
  /* Mounted at most once; a second unmount would find the bundle's own
     filesystem (EINVAL: not a mount point).  */
  if (umount2 (dir, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
    return boxer_error_errno (err, errno, "unmount '%s'", dir);
  return 0;
}

void
boxer_outputs_capture_release (struct boxer_outputs_capture *c)
{
  for (size_t i = 0; i < c->nfiles; i++)
    free (c->files[i].path);
  free (c->files);
  c->files = NULL;
  c->nfiles = 0;
}

/* Whether a name the run chose can be listed in JSON and asked for again
   in a URL: valid UTF-8 without control characters.  */
static bool
representable (const char *name)
{
  size_t len = strlen (name), clean_len;
  cleanup_free char *clean = boxer_utf8_sanitize (name, len, &clean_len);

  if (clean_len != len || memcmp (clean, name, len) != 0)
    return false;
  for (const char *p = name; *p; p++)
    if ((unsigned char) *p < 0x20 || *p == 0x7f)
      return false;
  return true;
}

static int
compare_names (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static int
compare_outputs (const void *a, const void *b)
{
  return strcmp (((const struct boxer_run_output *) a)->path,
                 ((const struct boxer_run_output *) b)->path);
}

/* The names in directory fd, sorted (*out, NULL-terminated).  */
static int
list_dir (int fd, char ***out, struct boxer_error **err)
{
  cleanup_dir DIR *d = NULL;
  cleanup_strv char **names = NULL;
  size_t n = 0, alloc = 0;
  struct dirent *de;
  int dup_fd = fcntl (fd, F_DUPFD_CLOEXEC, 0);

  if (dup_fd < 0)
    return boxer_error_errno (err, errno, "dup");
  d = fdopendir (dup_fd);
  if (d == NULL)
    {
      close (dup_fd);
      return boxer_error_errno (err, errno, "fdopendir");
    }
  names = xmalloc0 (sizeof *names);
  while ((errno = 0, de = readdir (d)) != NULL)
    {
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      if (n + 2 > alloc)
        {
          alloc = alloc ? alloc * 2 : 16;
          names = xrealloc (names, alloc * sizeof *names);
        }
      names[n++] = xstrdup (de->d_name);
      names[n] = NULL;
    }
  if (errno)
    return boxer_error_errno (err, errno, "readdir");
  if (n > 1)
    qsort (names, n, sizeof *names, compare_names);
  *out = steal_pointer (&names);
  return 0;
}

static int
copy_fd (int in, int out, int64_t size, int64_t *copied, struct boxer_error **err)
{
  *copied = 0;
  while (*copied < size)
    {
      ssize_t n = sendfile (out, in, NULL, (size_t) (size - *copied));
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return boxer_error_errno (err, errno, "copy an output file");
        }
      if (n == 0)
        break;          /* shorter than it was: keep what there is */
      *copied += n;
    }
  return 0;
}

static void
add_output (struct boxer_outputs_capture *c, const char *path, int64_t size)
{
  c->files = xrealloc (c->files, (c->nfiles + 1) * sizeof *c->files);
  c->files[c->nfiles].path = xstrdup (path);
  c->files[c->nfiles].size = size;
  c->nfiles++;
  c->bytes += size;
}

static int
capture_file (struct boxer_outputs_capture *c, int src_fd, int dst_fd, const char *name,
              const char *path, const struct stat *st, struct boxer_error **err)
{
  cleanup_close int in = -1;
  cleanup_close int out = -1;
  struct stat st2;
  int64_t copied;

  if ((int64_t) c->nfiles + 1 > c->limit_files || c->bytes + st->st_size > c->limit_bytes)
    {
      c->truncated = true;
      return 0;
    }
  /* O_NONBLOCK: were the name swapped for a FIFO since the lstat, opening
     it must not hang (the sandbox is gone by now, but this costs nothing).  */
  in = boxer_openat_beneath (src_fd, name, O_RDONLY | O_NONBLOCK, 0);
  if (in < 0)
    {
      if (errno == ELOOP || errno == ENOENT || errno == EXDEV || errno == ENXIO)
        return 0;       /* not a regular file after all */
      /* One the run kept from us (a worker is not root): left out.  */
      if (errno == EACCES)
        {
          c->truncated = true;
          return 0;
        }
      return boxer_error_errno (err, errno, "open output '%s'", path);
    }
  if (fstat (in, &st2) < 0)
    return boxer_error_errno (err, errno, "stat output '%s'", path);
  if (!S_ISREG (st2.st_mode) || st2.st_ino != st->st_ino || st2.st_dev != st->st_dev)
    return 0;

  out = openat (dst_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0)
    return boxer_error_errno (err, errno, "create the copy of output '%s'", path);
  if (copy_fd (in, out, st->st_size, &copied, err) < 0)
    return -1;
  add_output (c, path, copied);
  return 0;
}

static int
capture_dir (struct boxer_outputs_capture *c, int src_fd, int dst_fd, char *path, size_t len,
             int depth, struct boxer_error **err)
{
  cleanup_strv char **names = NULL;

  if (list_dir (src_fd, &names, err) < 0)
    return -1;
  for (size_t i = 0; names[i]; i++)
    {
      const char *name = names[i];
      size_t nlen = strlen (name);
      struct stat st;

      if (fstatat (src_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        {
          if (errno == ENOENT)
            continue;
          return boxer_error_errno (err, errno, "stat an output");
        }
      /* Symlinks, FIFOs, sockets and devices are not outputs: never
         followed, never opened, and not worth a flag either.  */
      if (!S_ISREG (st.st_mode) && !S_ISDIR (st.st_mode))
        continue;
      if (!representable (name) || len + (len ? 1 : 0) + nlen > BOXER_PATH_MAX)
        {
          c->truncated = true;
          continue;
        }
      sprintf (path + len, "%s%s", len ? "/" : "", name);

      if (S_ISREG (st.st_mode))
        {
          if (capture_file (c, src_fd, dst_fd, name, path, &st, err) < 0)
            return -1;
        }
      else if (depth + 1 >= BOXER_OUTPUTS_MAX_DEPTH)
        c->truncated = true;
      else
        {
          cleanup_close int sub_src = boxer_openat_beneath (src_fd, name,
                                                            O_RDONLY | O_DIRECTORY, 0);
          cleanup_close int sub_dst = -1;
          size_t before = c->nfiles;

          if (sub_src < 0)
            {
              if (errno == ELOOP || errno == ENOENT || errno == ENOTDIR || errno == EXDEV)
                {
                  path[len] = '\0';
                  continue;
                }
              if (errno == EACCES)
                {
                  c->truncated = true;
                  path[len] = '\0';
                  continue;
                }
              return boxer_error_errno (err, errno, "open output directory '%s'", path);
            }
          if (mkdirat (dst_fd, name, 0700) < 0)
            return boxer_error_errno (err, errno, "create output directory '%s'", path);
          sub_dst = openat (dst_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (sub_dst < 0)
            return boxer_error_errno (err, errno, "open output directory '%s'", path);
          if (capture_dir (c, sub_src, sub_dst, path, strlen (path), depth + 1, err) < 0)
            return -1;
          /* Directories only list what is in them: an empty one is not
             kept.  */
          if (c->nfiles == before)
            unlinkat (dst_fd, name, AT_REMOVEDIR);
        }
      path[len] = '\0';
    }
  return 0;
}

int
boxer_outputs_capture_fd (int src, int dst_fd, struct boxer_outputs_capture *c,
                          struct boxer_error **err)
{
  char path[BOXER_PATH_MAX + 1] = "";

  c->files = NULL;
  c->nfiles = 0;
  c->bytes = 0;
  c->truncated = false;
  if (capture_dir (c, src, dst_fd, path, 0, 0, err) < 0)
    {
      boxer_outputs_capture_release (c);
      return -1;
    }
  if (c->nfiles > 1)
    qsort (c->files, c->nfiles, sizeof *c->files, compare_outputs);
  return 0;
}

int
boxer_outputs_capture (const char *src_dir, int dst_fd, struct boxer_outputs_capture *c,
                       struct boxer_error **err)
{
  cleanup_close int src = open (src_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

  if (src < 0)
    return boxer_error_errno (err, errno, "open '%s'", src_dir);
  return boxer_outputs_capture_fd (src, dst_fd, c, err);
}

/* In the child that makes /output readable: the run's uid owns all that
   the run wrote, so it may change its modes; anything else is left.  */
static int
make_readable_one (int parentfd, const char *name, const struct stat *st,
                   enum boxer_walk_event ev, void *data, struct boxer_error **err)
{
  mode_t want;

  (void) data;
  (void) err;
  if (ev == BOXER_WALK_DIR_POST || st->st_uid != getuid () || strcmp (name, ".") == 0)
    return 0;
  if (S_ISDIR (st->st_mode))
    want = (st->st_mode & 07777) | 0555;
  else if (S_ISREG (st->st_mode))
    want = (st->st_mode & 07777) | 0444;
  else
    return 0;
  /* The sandbox is gone, so nothing swaps name for a symlink between the
     walk's lstat and this; and this process may touch nothing but what
     the run's uid owns anyway.  */
  if (want != (st->st_mode & 07777))
    fchmodat (parentfd, name, want, 0);
  return 0;
}

/* Whether the directory holds no entry.  Reading one directory's names
   follows nothing a run made, so root may; false when unsure.  */
static bool
dir_is_empty (int dir_fd)
{
  int fd = openat (dir_fd, ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  cleanup_dir DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  struct dirent *de;

  if (d == NULL)
    {
      if (fd >= 0)
        close (fd);
      return false;
    }
  while ((errno = 0, de = readdir (d)) != NULL)
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      return false;
  return errno == 0;
}

int
boxer_outputs_make_readable (int dir_fd, uid_t run_uid, gid_t run_gid, struct boxer_error **err)
{
  pid_t pid;
  int status;

  /* Most runs leave /output empty: no process to start for those.  */
  if (dir_is_empty (dir_fd))
    return 0;
  pid = fork ();
  if (pid < 0)
    return boxer_error_errno (err, errno, "fork");
  if (pid == 0)
    {
      if (setgroups (0, NULL) < 0 || setresgid (run_gid, run_gid, run_gid) < 0
          || setresuid (run_uid, run_uid, run_uid) < 0
          || prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        _exit (2);
      _exit (boxer_walk_at (dir_fd, ".", false, make_readable_one, NULL, NULL) < 0 ? 1 : 0);
    }
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return boxer_error_errno (err, errno, "waitpid");
  if (!WIFEXITED (status) || WEXITSTATUS (status) == 2)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "making /output readable failed (%d)",
                             status);
  /* A walk stopped early (a tree too odd to walk) leaves some files
     unreadable: the worker skips those, as it skips what it cannot keep.  */
  return 0;
}
