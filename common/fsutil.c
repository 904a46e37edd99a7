#include <config.h>

#include "fsutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

int
boxer_mkdir_p (const char *path, mode_t mode, struct boxer_error **err)
{
  cleanup_free char *p = xstrdup (path);

  for (char *s = p + 1; *s; s++)
    {
      if (*s != '/')
        continue;
      *s = '\0';
      if (mkdir (p, mode) < 0 && errno != EEXIST)
        return boxer_error_errno (err, errno, "mkdir '%s'", p);
      *s = '/';
    }
  if (mkdir (p, mode) < 0 && errno != EEXIST)
    return boxer_error_errno (err, errno, "mkdir '%s'", p);
  return 0;
}

int
boxer_check_free_space (const char *path, int64_t floor, const char *what,
                        struct boxer_error **err)
{
  struct statvfs sv;
  int64_t avail;

  if (floor <= 0)
    return 0;
  if (statvfs (path, &sv) < 0)
    return boxer_error_errno (err, errno, "statvfs '%s'", path);
  avail = (int64_t) sv.f_bavail * (int64_t) sv.f_frsize;
  if (avail < floor)
    return boxer_error_make (err, BOXER_ERR_NO_SPACE,
                             "the server's disk has %lld bytes free, less than its "
                             "min_free_bytes of %lld; %s are refused until space is freed",
                             (long long) avail, (long long) floor, what);
  return 0;
}

int
boxer_ensure_private_dir (const char *path, struct boxer_error **err)
{
  cleanup_close int fd = -1;
  struct stat st;

  if (boxer_mkdir_p (path, 0700, err) < 0)
    return -1;
  fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fstat (fd, &st) < 0)
    return boxer_error_errno (err, errno, "open '%s'", path);
  if (st.st_uid != geteuid ())
    return boxer_error_make (err, BOXER_ERR_INTERNAL,
                             "'%s' belongs to uid %u, not to this server's uid %u; give it to "
                             "the server or choose another home",
                             path, (unsigned) st.st_uid, (unsigned) geteuid ());
  if ((st.st_mode & 07777) != 0700 && fchmod (fd, 0700) < 0)
    return boxer_error_errno (err, errno, "chmod 0700 '%s'", path);
  return 0;
}

/* One directory of the walk's path from its top: open (d) while it is
   among the first BOXER_WALK_OPEN_DIRS or the deepest, else closed with
   where to read on.  */
struct walk_frame
{
  DIR *d;
  char *name;           /* its name in the directory above */
  struct stat st;
  long pos;             /* telldir () when it was closed */
};

struct walk
{
  struct walk_frame *frames;
  size_t n, alloc;
  int topfd;            /* the dirfd given */
  bool destructive;
};

static void
walk_release (struct walk *w)
{
  for (size_t i = 0; i < w->n; i++)
    {
      if (w->frames[i].d)
        closedir (w->frames[i].d);
      free (w->frames[i].name);
    }
  free (w->frames);
}

static int
frame_fd (struct walk *w, size_t i)
{
  return i == 0 ? w->topfd : dirfd (w->frames[i - 1].d);
}

/* Open directory name under parentfd as a new deepest frame.  */
static int
walk_push (struct walk *w, int parentfd, const char *name, const struct stat *st,
           struct boxer_error **err)
{
  int fd = openat (parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat now;
  DIR *d;

  if (fd < 0)
    return boxer_error_errno (err, errno, "open '%s'", name);
  if (fstat (fd, &now) < 0 || now.st_dev != st->st_dev || now.st_ino != st->st_ino)
    {
      close (fd);
      return boxer_error_make (err, BOXER_ERR_INTERNAL, "'%s' changed while it was walked", name);
    }
  d = fdopendir (fd);
  if (d == NULL)
    {
      close (fd);
      return boxer_error_errno (err, errno, "fdopendir '%s'", name);
    }
  /* The directory above, unless near the top, is let go: it is reopened
     through ".." when we come back to it.  */
  if (w->n > BOXER_WALK_OPEN_DIRS)
    {
      struct walk_frame *up = &w->frames[w->n - 1];
      up->pos = telldir (up->d);
      closedir (up->d);
      up->d = NULL;
    }
  if (w->n == w->alloc)
    {
      w->alloc = w->alloc ? 2 * w->alloc : 16;
      w->frames = xrealloc (w->frames, w->alloc * sizeof *w->frames);
    }
  w->frames[w->n++] = (struct walk_frame) { d, xstrdup (name), *st, 0 };
  return 0;
}

/* Leave the deepest frame, reopening the one above it if it was let go.  */
static int
walk_pop (struct walk *w, struct boxer_error **err)
{
  struct walk_frame *f = &w->frames[w->n - 1];

  if (w->n >= 2 && w->frames[w->n - 2].d == NULL)
    {
      struct walk_frame *up = &w->frames[w->n - 2];
      int fd = openat (dirfd (f->d), "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      struct stat now;

      if (fd < 0)
        return boxer_error_errno (err, errno, "open the directory above '%s'", f->name);
      if (fstat (fd, &now) < 0 || now.st_dev != up->st.st_dev || now.st_ino != up->st.st_ino)
        {
          close (fd);
          return boxer_error_make (err, BOXER_ERR_INTERNAL,
                                   "the directory above '%s' moved while it was walked", f->name);
        }
      up->d = fdopendir (fd);
      if (up->d == NULL)
        {
          close (fd);
          return boxer_error_errno (err, errno, "fdopendir '%s'", up->name);
        }
      if (!w->destructive)
        seekdir (up->d, up->pos);
    }
  closedir (f->d);
  f->d = NULL;
  return 0;
}

int
boxer_walk_at (int topfd, const char *name, bool destructive, boxer_walk_fn fn, void *data,
               struct boxer_error **err)
{
  struct walk w = { NULL, 0, 0, topfd, destructive };
  struct stat st;
  int r = -1;

  if (fstatat (topfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return boxer_error_errno (err, errno, "stat '%s'", name);
  if (!S_ISDIR (st.st_mode))
    return fn (topfd, name, &st, BOXER_WALK_FILE, data, err) < 0 ? -1 : 0;
  r = fn (topfd, name, &st, BOXER_WALK_DIR_PRE, data, err);
  if (r != 0)
    return r < 0 ? -1 : 0;
  if (walk_push (&w, topfd, name, &st, err) < 0)
    goto out;
  while (w.n > 0)
    {
      struct walk_frame *f = &w.frames[w.n - 1];
      struct dirent *de;
      int fd = dirfd (f->d);

      errno = 0;
      de = readdir (f->d);
      if (de == NULL)
        {
          cleanup_free char *done = NULL;
          struct stat done_st = f->st;
          if (errno)
            {
              boxer_error_errno (err, errno, "read '%s'", f->name);
              goto out;
            }
          if (walk_pop (&w, err) < 0)
            goto out;
          done = steal_pointer (&w.frames[w.n - 1].name);
          w.n--;
          if (fn (frame_fd (&w, w.n), done, &done_st, BOXER_WALK_DIR_POST, data, err) < 0)
            goto out;
          continue;
        }
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      if (fstatat (fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        {
          /* Gone since it was listed.  */
          if (errno == ENOENT)
            continue;
          boxer_error_errno (err, errno, "stat '%s'", de->d_name);
          goto out;
        }
      if (!S_ISDIR (st.st_mode))
        {
          if (fn (fd, de->d_name, &st, BOXER_WALK_FILE, data, err) < 0)
            goto out;
          continue;
        }
      r = fn (fd, de->d_name, &st, BOXER_WALK_DIR_PRE, data, err);
      if (r < 0)
        goto out;
      if (r > 0)
        continue;
      {
        /* walk_push may close f->d, which owns de.  */
        cleanup_free char *child = xstrdup (de->d_name);
        if (walk_push (&w, fd, child, &st, err) < 0)
          goto out;
      }
    }
  r = 0;
out:
  walk_release (&w);
  return r < 0 ? -1 : 0;
}

static int
rm_visit (int parentfd, const char *name, const struct stat *st, enum boxer_walk_event ev,
          void *data, struct boxer_error **err)
{
  (void) data;
  switch (ev)
    {
    case BOXER_WALK_FILE:
      if (unlinkat (parentfd, name, 0) < 0 && errno != ENOENT)
        return boxer_error_errno (err, errno, "remove '%s'", name);
      return 0;
    case BOXER_WALK_DIR_PRE:
      /* A directory we may not read, or whose children we may not unlink:
         make it ours first.  */
      if ((st->st_mode & 0700) != 0700 && fchmodat (parentfd, name, 0700, 0) < 0)
        return boxer_error_errno (err, errno, "chmod '%s'", name);
      return 0;
    case BOXER_WALK_DIR_POST:
      if (unlinkat (parentfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return boxer_error_errno (err, errno, "rmdir '%s'", name);
      return 0;
    }
  return 0;
}

int
boxer_rm_rf_at (int dirfd, const char *name, struct boxer_error **err)
{
  if (unlinkat (dirfd, name, 0) == 0 || errno == ENOENT)
    return 0;
  if (boxer_walk_at (dirfd, name, true, rm_visit, NULL, err) < 0)
    {
      if (err && *err && (*err)->errnum == ENOENT)
        {
          boxer_error_release (err);
          return 0;
        }
      return boxer_error_wrap (err, "remove '%s'", name);
    }
  return 0;
}

int
boxer_rm_rf (const char *path, struct boxer_error **err)
{
  return boxer_rm_rf_at (AT_FDCWD, path, err);
}

int
boxer_write_all (int fd, const void *buf, size_t len, struct boxer_error **err)
{
  const char *p = buf;

  while (len > 0)
    {
      ssize_t n = write (fd, p, len);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return boxer_error_errno (err, errno, "write");
        }
      p += n;
      len -= n;
    }
  return 0;
}

static int
write_file_via_tmp (const char *path, const void *data, size_t len, mode_t mode, bool sync,
                    struct boxer_error **err)
{
  cleanup_free char *tmp = NULL;
  cleanup_close int fd = -1;
  char id[17];

  if (boxer_random_id (id, "", 16, err) < 0)
    return -1;
  tmp = xasprintf ("%s.tmp-%s", path, id);
  fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0)
    return boxer_error_errno (err, errno, "create '%s'", tmp);
  if (boxer_write_all (fd, data, len, err) < 0 || (sync && fsync (fd) < 0))
    {
      if (*err == NULL)
        boxer_error_errno (err, errno, "fsync '%s'", tmp);
      unlink (tmp);
      return boxer_error_wrap (err, "write '%s'", path);
    }
  if (rename (tmp, path) < 0)
    {
      int e = errno;
      unlink (tmp);
      return boxer_error_errno (err, e, "rename '%s' to '%s'", tmp, path);
    }
  return 0;
}

int
boxer_write_file_atomic (const char *path, const void *data, size_t len, mode_t mode,
                         struct boxer_error **err)
{
  return write_file_via_tmp (path, data, len, mode, true, err);
}

int
boxer_write_file_unsynced (const char *path, const void *data, size_t len, mode_t mode,
                           struct boxer_error **err)
{
  return write_file_via_tmp (path, data, len, mode, false, err);
}

int
boxer_read_file (const char *path, size_t cap, char **out, size_t *len_out,
                 struct boxer_error **err)
{
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  cleanup_free char *buf = NULL;
  size_t len = 0, alloc = 0;

  if (fd < 0)
    return boxer_error_errno (err, errno, "open '%s'", path);
  for (;;)
    {
      ssize_t n;
      if (alloc - len < 4096 + 1)
        {
          alloc = alloc ? alloc * 2 : 8192;
          buf = xrealloc (buf, alloc);
        }
      n = read (fd, buf + len, alloc - len - 1);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return boxer_error_errno (err, errno, "read '%s'", path);
        }
      if (n == 0)
        break;
      len += n;
      if (len > cap)
        return boxer_error_make (err, BOXER_ERR_TOO_LARGE, "file is larger than %zu bytes",
                                 cap);
    }
  buf[len] = '\0';
  if (len_out)
    *len_out = len;
  *out = steal_pointer (&buf);
  return 0;
}

int
boxer_lock_path (const char *path, int how, struct boxer_error **err)
{
  cleanup_close int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

  if (fd < 0)
    return boxer_error_errno (err, errno, "open lock '%s'", path);
  while (flock (fd, how) < 0)
    {
      if (errno == EINTR)
        continue;
      if (errno == EWOULDBLOCK && (how & LOCK_NB))
        return -1;
      return boxer_error_errno (err, errno, "lock '%s'", path);
    }
  return steal_fd (&fd);
}

int
boxer_random_id (char *out, const char *prefix, size_t nhex, struct boxer_error **err)
{
  static const char hex[] = "0123456789abcdef";
  unsigned char raw[64];
  size_t plen = strlen (prefix);
  size_t nbytes = (nhex + 1) / 2;

  if (nbytes > sizeof raw)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "random id too long");
  if (getrandom (raw, nbytes, 0) != (ssize_t) nbytes)
    return boxer_error_errno (err, errno, "getrandom");
  memcpy (out, prefix, plen);
  for (size_t i = 0; i < nhex; i++)
    out[plen + i] = hex[(raw[i / 2] >> ((i % 2) ? 0 : 4)) & 0xf];
  out[plen + nhex] = '\0';
  return 0;
}
