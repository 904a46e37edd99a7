#include <config.h>

#include "layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <search.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "common/fsutil.h"
#include "reference.h"

#define READ_BLOCK (64 * 1024)

/* Pure path handling.  */

/* Drop a leading '/', empty and "." components; refuse "..".  */
static int
clean_path (const char *name, const char *what, char **out, struct boxer_error **err)
{
  cleanup_free char *r = xmalloc (strlen (name) + 1);
  size_t n = 0;

  for (const char *p = name; *p;)
    {
      const char *s = p;
      size_t len;

      if (*p == '/')
        {
          p++;
          continue;
        }
      while (*p && *p != '/')
        p++;
      len = p - s;
      if (len == 1 && s[0] == '.')
        continue;
      if (len > BOXER_LAYER_NAME_MAX)
        {
          cleanup_free char *q = boxer_quote (name, strlen (name), 160);
          return boxer_error_make (err, BOXER_ERR_TOO_LARGE,
                                   "%s '%s' has a name longer than %d bytes", what, q,
                                   BOXER_LAYER_NAME_MAX);
        }
      if (len == 2 && s[0] == '.' && s[1] == '.')
        {
          cleanup_free char *q = boxer_quote_str (name);
          return boxer_error_make (err, BOXER_ERR_INVALID,
                                   "%s '%s' contains '..'; layer entries must stay inside the "
                                   "image's root filesystem",
                                   what, q);
        }
      if (n)
        r[n++] = '/';
      memcpy (r + n, s, len);
      n += len;
    }
  r[n] = '\0';
  if (n >= PATH_MAX / 2)
    {
      cleanup_free char *q = boxer_quote (name, strlen (name), 160);
      return boxer_error_make (err, BOXER_ERR_TOO_LARGE,
                               "%s '%s' is longer than %d bytes (image_max_path_bytes)", what, q,
                               PATH_MAX / 2 - 1);
    }
  *out = steal_pointer (&r);
  return 0;
}

int
boxer_layer_classify_path (const char *name, enum boxer_layer_entry_kind *kind, char **path_out,
                           struct boxer_error **err)
{
  cleanup_free char *clean = NULL;
  const char *base;
  size_t dirlen;

  if (clean_path (name, "layer entry", &clean, err) < 0)
    return -1;
  base = strrchr (clean, '/');
  base = base ? base + 1 : clean;
  dirlen = base > clean ? (size_t) (base - clean - 1) : 0;

  if (*clean == '\0')
    *kind = BOXER_LAYER_ENTRY_ROOT;
  else if (strncmp (base, BOXER_LAYER_WHITEOUT_PREFIX, 4) != 0)
    *kind = BOXER_LAYER_ENTRY_FILE;
  else if (strcmp (base, BOXER_LAYER_OPAQUE_MARKER) == 0)
    {
      *kind = BOXER_LAYER_ENTRY_OPAQUE;
      *path_out = xstrndup (clean, dirlen);
      return 0;
    }
  else if (strncmp (base, ".wh..wh.", 8) == 0)
    *kind = BOXER_LAYER_ENTRY_IGNORED;
  else
    {
      const char *target = base + 4;
      if (*target == '\0' || strcmp (target, ".") == 0 || strcmp (target, "..") == 0)
        {
          cleanup_free char *q = boxer_quote_str (name);
          return boxer_error_make (err, BOXER_ERR_INVALID,
                                   "layer whiteout '%s' does not name a file to remove", q);
        }
      *kind = BOXER_LAYER_ENTRY_WHITEOUT;
      *path_out = xasprintf ("%.*s%s%s", (int) dirlen, clean, dirlen ? "/" : "", target);
      return 0;
    }
  *path_out = steal_pointer (&clean);
  return 0;
}

int
boxer_layer_clean_link_target (const char *target, char **path_out, struct boxer_error **err)
{
  cleanup_free char *q = boxer_quote_str (target);

  if (*target == '/')
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "layer hard link target '%s' is an absolute path; hard links must "
                             "name a path inside the image",
                             q);
  if (clean_path (target, "layer hard link target", path_out, err) < 0)
    return -1;
  if (**path_out == '\0')
    {
      free (steal_pointer (path_out));
      return boxer_error_make (err, BOXER_ERR_INVALID,
                               "layer hard link target '%s' names the root directory", q);
    }
  return 0;
}

/* Applying.  */

struct applier
{
  char *rootfs;         /* canonical: libarchive refuses symlinks anywhere in it */
  int rootfd;
  struct archive *in;
  struct archive *out;
  int out_flags;
  void *written;        /* tsearch set of paths this layer created, with parents */
  const struct boxer_layer_limits *limits;
  struct boxer_layer_usage *usage;
};

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (a, b);
}

static bool
was_written (struct applier *ap, const char *path)
{
  return tfind (path, &ap->written, cmp_str) != NULL;
}

/* Remember path and every parent of it as part of this layer, so an
   opaque directory keeps them.  */
static void
record_written (struct applier *ap, const char *path)
{
  cleanup_free char *p = xstrdup (path);

  for (char *s = p;; s++)
    {
      if (*s != '/' && *s != '\0')
        continue;
      char c = *s;
      *s = '\0';
      if (!was_written (ap, p))
        {
          char *copy = xstrdup (p);
          if (tsearch (copy, &ap->written, cmp_str) == NULL)
            abort ();
        }
      *s = c;
      if (c == '\0')
        break;
    }
}

static bool
is_resource_errno (int e)
{
  return e == ENOSPC || e == EDQUOT || e == EIO || e == ENOMEM || e == EROFS || e == EMFILE
         || e == ENFILE;
}

/* A libarchive error, with the host path of the rootfs cut out of it:
   messages other than internal ones reach clients.  */
static int
archive_fail (struct applier *ap, struct archive *a, const char *entry, struct boxer_error **err)
{
  const char *msg = archive_error_string (a);
  cleanup_free char *clean = NULL;
  cleanup_free char *q = boxer_quote_str (entry);
  size_t plen = strlen (ap->rootfs);
  int e = archive_errno (a);
  char *hit;

  clean = xstrdup (msg ? msg : "unknown error");
  while (plen > 1 && (hit = strstr (clean, ap->rootfs)) != NULL)
    {
      size_t skip = plen + (hit[plen] == '/');
      memmove (hit, hit + skip, strlen (hit + skip) + 1);
    }
  if (e > 0 && is_resource_errno (e))
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "unpack layer entry '%s': %s", q, clean);
  return boxer_error_make (err, BOXER_ERR_INVALID, "cannot unpack layer entry '%s': %s", q, clean);
}

static int
new_writer (struct applier *ap, struct boxer_error **err)
{
  ap->out = archive_write_disk_new ();
  if (ap->out == NULL)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "archive_write_disk_new failed");
  if (archive_write_disk_set_options (ap->out, ap->out_flags) != ARCHIVE_OK)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "set extraction options: %s",
                             archive_error_string (ap->out));
  return 0;
}

/* libarchive fixes up directory modes and times when the writer closes,
   by path.  Flush those before we remove anything, so a path can never
   turn into a symlink between being recorded and being fixed up.  */
static int
flush_writer (struct applier *ap, struct boxer_error **err)
{
  int r = archive_write_close (ap->out);

  if (r < ARCHIVE_WARN)
    {
      archive_fail (ap, ap->out, "(directory metadata)", err);
      return -1;
    }
  archive_write_free (ap->out);
  ap->out = NULL;
  return new_writer (ap, err);
}

/* Open directory dir (relative, "" = root) below the rootfs without
   following any symlink.  Returns 1 with *fd_out, 0 when there is no such
   directory (missing, or a symlink or non-directory on the way), -1 on
   error.  */
static int
open_dir_beneath (struct applier *ap, const char *dir, int *fd_out, struct boxer_error **err)
{
  cleanup_free char *p = xstrdup (dir);
  cleanup_close int fd = fcntl (ap->rootfd, F_DUPFD_CLOEXEC, 0);
  char *save = NULL;

  if (fd < 0)
    return boxer_error_errno (err, errno, "dup");
  for (char *c = strtok_r (p, "/", &save); c; c = strtok_r (NULL, "/", &save))
    {
      int next = openat (fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0)
        {
          if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
            return 0;
          return boxer_error_errno (err, errno, "open '%s' in the rootfs", dir);
        }
      close (fd);
      fd = next;
    }
  *fd_out = steal_fd (&fd);
  return 1;
}

static void
split_parent (const char *path, char **parent, const char **base)
{
  const char *slash = strrchr (path, '/');

  *parent = slash ? xstrndup (path, slash - path) : xstrdup ("");
  *base = slash ? slash + 1 : path;
}

/* Resolving paths inside the rootfs.  Images put directories behind
   symlinks (merged /usr: bin -> usr/bin), and later layers write through
   them (bin/x).  Docker resolves such paths as if the rootfs were "/", so
   we do too: the kernel follows the symlinks with the rootfs as its root
   (openat2 RESOLVE_IN_ROOT), so neither ".." nor an absolute target can
   leave it, and the directory it lands on gives the path we hand to
   libarchive, which then contains no symlink at all.  The rootfs is our
   private temporary directory, so nothing changes it between the two.  */

#define RESOLVE_ATTEMPTS 8

static int
open_dir_in_root (int rootfd, const char *path)
{
  struct open_how how = {
    .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
  };
  long fd = -1;

  /* EAGAIN only says a rename raced the lookup: look again.  */
  for (int i = 0; i < RESOLVE_ATTEMPTS; i++)
    if ((fd = syscall (SYS_openat2, rootfd, path, &how, sizeof how)) >= 0 || errno != EAGAIN)
      break;
  return (int) fd;
}

/* The path of directory fd relative to the rootfs ("" for the rootfs).  */
static int
path_below_rootfs (struct applier *ap, int fd, char **out, struct boxer_error **err)
{
  char proc[64], buf[PATH_MAX];
  size_t plen = strlen (ap->rootfs);
  ssize_t n;

  if (plen == 1)
    {
      /* Confined (the rootfs is our "/", and there is no /proc): the
         kernel says where fd is relative to our root.  The cwd does not
         matter here: every path we hand libarchive is absolute.  */
      if (fchdir (fd) < 0 || getcwd (buf, sizeof buf) == NULL)
        return boxer_error_errno (err, errno, "find a directory of the rootfs");
      if (buf[0] != '/')
        return boxer_error_make (err, BOXER_ERR_INVALID,
                                 "a layer path resolves outside the image's root filesystem");
      *out = xstrdup (buf + 1);
      return 0;
    }
  snprintf (proc, sizeof proc, "/proc/self/fd/%d", fd);
  n = readlink (proc, buf, sizeof buf - 1);
  if (n < 0)
    return boxer_error_errno (err, errno, "readlink '%s'", proc);
  buf[n] = '\0';
  /* RESOLVE_IN_ROOT makes this impossible; refuse rather than trust it.  */
  if (strncmp (buf, ap->rootfs, plen) != 0 || (buf[plen] != '/' && buf[plen] != '\0'))
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "a layer path resolves outside the image's root filesystem");
  *out = xstrdup (buf[plen] ? buf + plen + 1 : "");
  return 0;
}

/* dir ("" = root), relative and clean, with the symlinks of its longest
   existing prefix resolved inside the rootfs; the part that does not exist
   yet is appended as it is (it holds no symlink, since it holds nothing).  */
static size_t
count_components (const char *path)
{
  size_t n = 0;

  for (const char *p = path; *p; p++)
    if (*p != '/' && (p == path || p[-1] == '/'))
      n++;
  return n;
}

static int
resolve_dir (struct applier *ap, const char *dir, char **out, size_t *missing,
             struct boxer_error **err)
{
  cleanup_free char *prefix = xstrdup (dir);
  size_t plen = strlen (prefix);

  /* The directories that do not exist yet, which libarchive will create:
     all of them until a prefix is found.  */
  if (missing)
    *missing = count_components (dir);

  while (plen > 0)
    {
      cleanup_close int fd = open_dir_in_root (ap->rootfd, prefix);
      cleanup_free char *real = NULL;
      char *slash;

      if (fd >= 0)
        {
          if (path_below_rootfs (ap, fd, &real, err) < 0)
            return -1;
          if (missing)
            *missing = count_components (dir + plen);
          if (dir[plen] == '\0')
            *out = steal_pointer (&real);
          else
            *out = *real ? xasprintf ("%s%s", real, dir + plen) : xstrdup (dir + plen + 1);
          return 0;
        }
      /* A kernel without openat2 (before 5.6): leave the path alone, and
         libarchive refuses to write through the symlink as it always did.  */
      if (errno == ENOSYS)
        break;
      /* Missing, not a directory, or a symlink loop: resolve less of it.
         A symlink left in the rest makes libarchive refuse the entry.  */
      if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
        {
          cleanup_free char *q = boxer_quote_str (dir);
          return boxer_error_errno (err, errno, "resolve '%s' in the rootfs", q);
        }
      slash = strrchr (prefix, '/');
      plen = slash ? (size_t) (slash - prefix) : 0;
      prefix[plen] = '\0';
    }
  *out = xstrdup (dir);
  return 0;
}

/* path with its parent directory resolved inside the rootfs; the last
   component itself is never followed (an entry replaces a symlink).  */
static int
resolve_parent (struct applier *ap, const char *path, char **out, size_t *missing,
                struct boxer_error **err)
{
  cleanup_free char *parent = NULL;
  cleanup_free char *real = NULL;
  const char *base;

  if (missing)
    *missing = 0;
  split_parent (path, &parent, &base);
  if (*parent == '\0')
    {
      *out = xstrdup (path);
      return 0;
    }
  if (resolve_dir (ap, parent, &real, missing, err) < 0)
    return -1;
  *out = *real ? xasprintf ("%s/%s", real, base) : xstrdup (base);
  return 0;
}

static int
apply_whiteout (struct applier *ap, const char *path, struct boxer_error **err)
{
  cleanup_free char *parent = NULL;
  cleanup_close int dfd = -1;
  const char *base;
  int r;

  split_parent (path, &parent, &base);
  r = open_dir_beneath (ap, parent, &dfd, err);
  if (r <= 0)
    return r;
  if (flush_writer (ap, err) < 0)
    return -1;
  return boxer_rm_rf_at (dfd, base, err);
}

static int
list_dir (int dfd, char ***names_out, struct boxer_error **err)
{
  cleanup_dir DIR *d = NULL;
  cleanup_strv char **names = NULL;
  size_t n = 0;
  struct dirent *de;
  int fd = fcntl (dfd, F_DUPFD_CLOEXEC, 0);

  if (fd < 0)
    return boxer_error_errno (err, errno, "dup");
  d = fdopendir (fd);
  if (d == NULL)
    {
      close (fd);
      return boxer_error_errno (err, errno, "fdopendir");
    }
  names = xmalloc0 (sizeof *names);
  while ((errno = 0, de = readdir (d)) != NULL)
    {
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      names = xrealloc (names, (n + 2) * sizeof *names);
      names[n++] = xstrdup (de->d_name);
      names[n] = NULL;
    }
  if (errno)
    return boxer_error_errno (err, errno, "readdir");
  *names_out = steal_pointer (&names);
  return 0;
}

/* Remove from directory dfd (at path dir) everything this layer did not
   create, descending into directories it did.  */
static int
clear_lower (struct applier *ap, int dfd, const char *dir, struct boxer_error **err)
{
  cleanup_strv char **names = NULL;

  if (list_dir (dfd, &names, err) < 0)
    return -1;
  for (char **n = names; *n; n++)
    {
      cleanup_free char *child = *dir ? xasprintf ("%s/%s", dir, *n) : xstrdup (*n);
      cleanup_close int cfd = -1;

      if (!was_written (ap, child))
        {
          if (boxer_rm_rf_at (dfd, *n, err) < 0)
            return -1;
          continue;
        }
      cfd = openat (dfd, *n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (cfd >= 0 && clear_lower (ap, cfd, child, err) < 0)
        return -1;
    }
  return 0;
}

static int
apply_opaque (struct applier *ap, const char *dir, struct boxer_error **err)
{
  cleanup_close int dfd = -1;
  int r = open_dir_beneath (ap, dir, &dfd, err);

  if (r <= 0)
    return r;
  if (flush_writer (ap, err) < 0)
    return -1;
  return clear_lower (ap, dfd, dir, err);
}

/* A non-directory replacing a directory of a lower layer replaces the
   whole tree, as Docker does; libarchive would only rmdir an empty one.  */
static int
remove_dir_in_the_way (struct applier *ap, const char *path, struct boxer_error **err)
{
  cleanup_free char *parent = NULL;
  cleanup_close int dfd = -1;
  const char *base;
  struct stat st;
  int r;

  split_parent (path, &parent, &base);
  r = open_dir_beneath (ap, parent, &dfd, err);
  if (r <= 0)
    return r;
  if (fstatat (dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR (st.st_mode))
    return 0;
  if (flush_writer (ap, err) < 0)
    return -1;
  return boxer_rm_rf_at (dfd, base, err);
}

static int
check_type (struct archive_entry *entry, const char *path, struct boxer_error **err)
{
  cleanup_free char *q = NULL;

  switch (archive_entry_filetype (entry))
    {
    case AE_IFREG:
    case AE_IFDIR:
    case AE_IFLNK:
    case AE_IFIFO:
      return 0;
    case AE_IFCHR:
    case AE_IFBLK:
      q = boxer_quote_str (path);
      return boxer_error_make (err, BOXER_ERR_INVALID,
                               "layer contains device node '%s'; device nodes are not allowed "
                               "in images",
                               q);
    default:
      q = boxer_quote_str (path);
      return boxer_error_make (err, BOXER_ERR_INVALID,
                               "layer entry '%s' has an unsupported file type", q);
    }
}

/* Depth and length of path, cleaned or resolved, against the limits.  */
static int
check_shape (struct applier *ap, const char *path, struct boxer_error **err)
{
  size_t len = strlen (path);

  if ((int64_t) len > ap->limits->max_path_bytes)
    {
      cleanup_free char *q = boxer_quote (path, len, 160);
      return boxer_error_make (err, BOXER_ERR_TOO_LARGE,
                               "layer entry '%s' has a path longer than %lld bytes "
                               "(image_max_path_bytes)",
                               q, (long long) ap->limits->max_path_bytes);
    }
  if ((int64_t) count_components (path) > ap->limits->max_depth)
    {
      cleanup_free char *q = boxer_quote (path, len, 160);
      return boxer_error_make (err, BOXER_ERR_TOO_LARGE,
                               "layer entry '%s' is more than %lld directories deep "
                               "(image_max_depth)",
                               q, (long long) ap->limits->max_depth);
    }
  return 0;
}

static int64_t
blocks_of (int64_t size)
{
  if (size <= BOXER_LAYER_BLOCK)
    return BOXER_LAYER_BLOCK;
  return (size + BOXER_LAYER_BLOCK - 1) / BOXER_LAYER_BLOCK * BOXER_LAYER_BLOCK;
}

/* Count one tar entry, which creates `implied` missing parent directories
   too; inode: whether it makes an inode (not a hard link, whiteout or
   opaque marker).  */
static int
count_entry (struct applier *ap, struct archive_entry *entry, size_t implied, bool inode,
             struct boxer_error **err)
{
  int64_t size = archive_entry_size_is_set (entry) ? archive_entry_size (entry) : 0;
  int64_t bytes;

  if (size < 0 || size > ap->limits->max_bytes)
    size = ap->limits->max_bytes;
  bytes = (inode ? blocks_of (size) : 0) + (int64_t) implied * BOXER_LAYER_BLOCK;
  if ((int64_t) implied + 1 > ap->limits->max_entries - ap->usage->entries)
    return boxer_error_make (err, BOXER_ERR_TOO_LARGE,
                             "image has more than %lld files and directories "
                             "(image_max_entries)",
                             (long long) ap->limits->max_entries);
  if (bytes > ap->limits->max_bytes - ap->usage->bytes)
    return boxer_error_make (err, BOXER_ERR_TOO_LARGE,
                             "image unpacks to more than %lld bytes (image_max_bytes)",
                             (long long) ap->limits->max_bytes);
  ap->usage->entries += implied + 1;
  ap->usage->bytes += bytes;
  return 0;
}

/* Point a hard link at the same path under the rootfs, refusing targets
   outside it or reached through a symlink.  */
static int
prepare_hardlink (struct applier *ap, struct archive_entry *entry, const char *link,
                  struct boxer_error **err)
{
  cleanup_free char *clean = NULL;
  cleanup_free char *target = NULL;
  cleanup_free char *parent = NULL;
  cleanup_free char *full = NULL;
  cleanup_close int dfd = -1;
  const char *base;
  struct stat st;
  int r;

  if (boxer_layer_clean_link_target (link, &clean, err) < 0
      || resolve_parent (ap, clean, &target, NULL, err) < 0)
    return -1;
  split_parent (target, &parent, &base);
  r = open_dir_beneath (ap, parent, &dfd, err);
  if (r < 0)
    return -1;
  if (r == 0 || fstatat (dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
    {
      cleanup_free char *q = boxer_quote_str (link);
      return boxer_error_make (err, BOXER_ERR_INVALID,
                               "layer hard link target '%s' does not exist in the image", q);
    }
  full = xasprintf ("%s/%s", ap->rootfs, target);
  archive_entry_set_hardlink (entry, full);
  return 0;
}

static int
copy_data (struct applier *ap, const char *path, struct boxer_error **err)
{
  for (;;)
    {
      const void *buf;
      size_t size;
      la_int64_t offset;
      int r = archive_read_data_block (ap->in, &buf, &size, &offset);

      if (r == ARCHIVE_EOF)
        return 0;
      if (r < ARCHIVE_WARN)
        return archive_fail (ap, ap->in, path, err);
      if (archive_write_data_block (ap->out, buf, size, offset) < ARCHIVE_WARN)
        return archive_fail (ap, ap->out, path, err);
    }
}

static int
extract_entry (struct applier *ap, struct archive_entry *entry, const char *path,
               struct boxer_error **err)
{
  cleanup_free char *full = xasprintf ("%s/%s", ap->rootfs, path);
  const char *link = archive_entry_hardlink (entry);

  if (link == NULL && check_type (entry, path, err) < 0)
    return -1;
  if (link && prepare_hardlink (ap, entry, link, err) < 0)
    return -1;
  /* A setuid or setgid file of an image would be one on the host's disk
     too, where any local user who reaches it could run it.  */
  if (link == NULL)
    archive_entry_set_perm (entry, archive_entry_perm (entry) & ~(mode_t) (S_ISUID | S_ISGID));
  if (link || archive_entry_filetype (entry) != AE_IFDIR)
    if (remove_dir_in_the_way (ap, path, err) < 0)
      return -1;
  archive_entry_set_pathname (entry, full);
  if (archive_write_header (ap->out, entry) < ARCHIVE_WARN)
    return archive_fail (ap, ap->out, path, err);
  if (archive_entry_size (entry) > 0 && copy_data (ap, path, err) < 0)
    return -1;
  if (archive_write_finish_entry (ap->out) < ARCHIVE_WARN)
    return archive_fail (ap, ap->out, path, err);
  record_written (ap, path);
  return 0;
}

static int
apply_entry (struct applier *ap, struct archive_entry *entry, struct boxer_error **err)
{
  const char *name = archive_entry_pathname (entry);
  enum boxer_layer_entry_kind kind;
  cleanup_free char *clean = NULL;
  cleanup_free char *path = NULL;
  size_t implied = 0;
  bool inode;

  if (name == NULL)
    return boxer_error_make (err, BOXER_ERR_INVALID, "layer entry has no usable name");
  /* A layer within every bound may still take long to write out; the
     pull's deadline holds for unpacking too.  */
  if (ap->limits->deadline_ms && boxer_now_ms () >= ap->limits->deadline_ms)
    return boxer_error_make (err, BOXER_ERR_REGISTRY,
                             "the pull ran out of time (pull_timeout_secs) while unpacking "
                             "layer entry %lld",
                             (long long) ap->usage->entries + 1);
  if (boxer_layer_classify_path (name, &kind, &clean, err) < 0)
    return -1;
  if (kind == BOXER_LAYER_ENTRY_ROOT || kind == BOXER_LAYER_ENTRY_IGNORED)
    return count_entry (ap, entry, 0, false, err);
  /* Bounded before anything is resolved, and again once resolved: a
     symlink can make a short path deep.  */
  if (check_shape (ap, clean, err) < 0)
    return -1;
  /* Everything below works on the resolved path, which has no symlink in
     it: what we create, remove and remember is where it really is.  */
  if (kind == BOXER_LAYER_ENTRY_FILE || kind == BOXER_LAYER_ENTRY_WHITEOUT)
    {
      if (resolve_parent (ap, clean, &path, kind == BOXER_LAYER_ENTRY_FILE ? &implied : NULL,
                          err) < 0)
        return -1;
    }
  else if (resolve_dir (ap, clean, &path, NULL, err) < 0)
    return -1;
  if (check_shape (ap, path, err) < 0)
    return -1;
  inode = kind == BOXER_LAYER_ENTRY_FILE && archive_entry_hardlink (entry) == NULL;
  if (count_entry (ap, entry, implied, inode, err) < 0)
    return -1;
  switch (kind)
    {
    case BOXER_LAYER_ENTRY_FILE:
      return extract_entry (ap, entry, path, err);
    case BOXER_LAYER_ENTRY_WHITEOUT:
      return apply_whiteout (ap, path, err);
    case BOXER_LAYER_ENTRY_OPAQUE:
      return apply_opaque (ap, path, err);
    case BOXER_LAYER_ENTRY_ROOT:
    case BOXER_LAYER_ENTRY_IGNORED:
      return 0;
    }
  return 0;
}

static int
open_reader (struct applier *ap, int fd, struct boxer_error **err)
{
  ap->in = archive_read_new ();
  if (ap->in == NULL)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "archive_read_new failed");
  /* Only the compressions layers use: the catch-all would also enable
     filters that run external programs.  */
  if (archive_read_support_filter_gzip (ap->in) < ARCHIVE_WARN
      || archive_read_support_filter_zstd (ap->in) < ARCHIVE_WARN
      || archive_read_support_format_tar (ap->in) != ARCHIVE_OK)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "set up the layer reader: %s",
                             archive_error_string (ap->in));
  if (archive_read_open_fd (ap->in, fd, READ_BLOCK) != ARCHIVE_OK)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "layer is not a tar archive (plain, gzip or zstd): %s",
                             archive_error_string (ap->in));
  return 0;
}

static int
run (struct applier *ap, struct boxer_error **err)
{
  struct archive_entry *entry;

  for (;;)
    {
      int r = archive_read_next_header (ap->in, &entry);
      if (r == ARCHIVE_EOF)
        break;
      if (r < ARCHIVE_WARN)
        return boxer_error_make (err, BOXER_ERR_INVALID, "layer is not a valid tar archive: %s",
                                 archive_error_string (ap->in));
      if (apply_entry (ap, entry, err) < 0)
        return -1;
    }
  if (archive_write_close (ap->out) < ARCHIVE_WARN)
    return archive_fail (ap, ap->out, "(directory metadata)", err);
  return 0;
}

static void
applier_release (struct applier *ap)
{
  if (ap->in)
    archive_read_free (ap->in);
  if (ap->out)
    archive_write_free (ap->out);
  tdestroy (ap->written, free);
  if (ap->rootfd >= 0)
    close (ap->rootfd);
  free (ap->rootfs);
}

void
boxer_layer_limits_fill (struct boxer_layer_limits *limits)
{
  if (limits->max_bytes <= 0)
    limits->max_bytes = BOXER_LAYER_DEFAULT_MAX_BYTES;
  if (limits->max_entries <= 0)
    limits->max_entries = BOXER_LAYER_DEFAULT_MAX_ENTRIES;
  if (limits->max_depth <= 0)
    limits->max_depth = BOXER_LAYER_DEFAULT_MAX_DEPTH;
  /* Entry paths stay below PATH_MAX / 2 whatever is asked (see below).  */
  if (limits->max_path_bytes <= 0 || limits->max_path_bytes >= PATH_MAX / 2)
    limits->max_path_bytes = limits->max_path_bytes <= 0 ? BOXER_LAYER_DEFAULT_MAX_PATH_BYTES
                                                          : PATH_MAX / 2 - 1;
}

void
boxer_layer_limits_from_config (const struct boxer_config *cfg, struct boxer_layer_limits *out)
{
  memset (out, 0, sizeof *out);
  if (cfg)
    {
      out->max_bytes = cfg->image_max_bytes;
      out->max_entries = cfg->image_max_entries;
      out->max_depth = cfg->image_max_depth;
      out->max_path_bytes = cfg->image_max_path_bytes;
    }
  boxer_layer_limits_fill (out);
}

int
boxer_layer_apply_counted (const char *rootfs, int layer_fd,
                           const struct boxer_layer_limits *limits,
                           struct boxer_layer_usage *usage, struct boxer_error **err)
{
  struct boxer_layer_limits filled = { 0, 0, 0, 0, 0 };
  struct applier ap = { .rootfd = -1, .limits = &filled, .usage = usage };
  int r = -1;

  if (limits)
    filled = *limits;
  boxer_layer_limits_fill (&filled);

  /* libarchive refuses to write through any symlink in the path, the
     rootfs's own included, so give it the canonical one.  Entry paths are
     below PATH_MAX / 2 and so is this: libarchive never has to chdir () to
     shorten a path.  */
  ap.rootfs = realpath (rootfs, NULL);
  if (ap.rootfs == NULL)
    return boxer_error_errno (err, errno, "resolve rootfs '%s'", rootfs);
  ap.rootfd = open (ap.rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (ap.rootfd < 0)
    boxer_error_errno (err, errno, "open rootfs '%s'", ap.rootfs);
  else if (strlen (ap.rootfs) >= PATH_MAX / 2)
    boxer_error_make (err, BOXER_ERR_INTERNAL, "rootfs path '%s' is too long", ap.rootfs);
  else
    {
      /* Numeric ids from the tar, never the host's name lookup; no xattrs,
         ACLs or file flags.  Only root can give files away.
         SECURE_NOABSOLUTEPATHS cannot be used since we hand libarchive
         absolute paths under the rootfs (so the cwd never matters); the
         entry names were made relative and '..'-free before that.  */
      ap.out_flags = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME
                     | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT
                     | (geteuid () == 0 ? ARCHIVE_EXTRACT_OWNER : 0);
      if (open_reader (&ap, layer_fd, err) == 0 && new_writer (&ap, err) == 0)
        r = run (&ap, err);
    }
  applier_release (&ap);
  return r;
}

int
boxer_layer_apply (const char *rootfs, int layer_fd, const struct boxer_layer_limits *limits,
                   struct boxer_error **err)
{
  struct boxer_layer_usage usage = { 0, 0 };

  return boxer_layer_apply_counted (rootfs, layer_fd, limits, &usage, err);
}
