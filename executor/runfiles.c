#include <config.h>

#include "runfiles.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "common/paths.h"
#include "files.h"
#include "outputs.h"
#include "records.h"

/* Open path (relative to the image's root) as the container will see it:
   symlinks resolve inside the rootfs, never out of it.  */
static int
open_in_root (int root_fd, const char *path)
{
  struct open_how how = {
    .flags = O_PATH | O_CLOEXEC,
    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
  };
  int fd;

  do
    fd = (int) syscall (SYS_openat2, root_fd, path, &how, sizeof how);
  while (fd < 0 && errno == EINTR);
  return fd;
}

/* runsc creates a mount point's missing directories, but cannot make one
   under a file or put a file over a directory: catch those here, as the
   client's mistake, rather than as runsc failing to start.  */
static int
check_destination (int root_fd, const char *dest, size_t index, struct boxer_error **err)
{
  cleanup_free char *path = xstrdup (dest + 1);
  char *p = path;

  for (;;)
    {
      char *slash = strchr (p, '/');
      cleanup_close int fd = -1;
      struct stat st;

      if (slash)
        *slash = '\0';
      fd = open_in_root (root_fd, path);
      if (fd < 0)
        {
          if (errno == ENOENT)
            return 0;           /* runsc creates it and what is below */
          if (errno == ENOTDIR)
            goto not_dir;
          /* Symlink loops and the like: the container would fail as well.  */
          return boxer_error_make (err, BOXER_ERR_INVALID,
                                   "files[%zu].path '%s' cannot be resolved in the image (%s)",
                                   index, dest, strerror (errno));
        }
      if (fstat (fd, &st) < 0)
        return boxer_error_errno (err, errno, "stat '%s' in the image", path);
      if (slash == NULL)
        {
          if (S_ISDIR (st.st_mode))
            return boxer_error_make (err, BOXER_ERR_INVALID,
                                     "files[%zu].path '%s' is a directory in the image; name "
                                     "a file path instead",
                                     index, dest);
          return 0;
        }
      if (!S_ISDIR (st.st_mode))
        {
          *slash = '\0';
          goto not_dir;
        }
      *slash = '/';
      p = slash + 1;
    }

not_dir:
  return boxer_error_make (err, BOXER_ERR_INVALID,
                           "files[%zu].path '%s': '/%s' is not a directory in the image",
                           index, dest, path);
}

int
boxer_runfiles_setup (struct boxer_runfiles *rf, const struct boxer_config *cfg,
                      const char *bundle, const char *rootfs,
                      const struct boxer_run_request *req, struct boxer_error **err)
{
  memset (rf, 0, sizeof *rf);
  if (boxer_runfiles_link_uploads (rf, cfg, bundle, rootfs, req, err) < 0)
    return -1;

  /* The sandbox's gofer serves the mount; the host directory is reached
     through the bundle, which only root can enter.  */
  if (mkdir (rf->output_dir, 0700) < 0)
    return boxer_error_errno (err, errno, "mkdir '%s'", rf->output_dir);
  if (boxer_outputs_mount (rf->output_dir, cfg->outputs_limit_bytes, cfg->outputs_limit_files,
                           err) < 0)
    return -1;
  rf->output_mounted = true;
  return 0;
}

int
boxer_runfiles_link_uploads (struct boxer_runfiles *rf, const struct boxer_config *cfg,
                             const char *bundle, const char *rootfs,
                             const struct boxer_run_request *req, struct boxer_error **err)
{
  cleanup_close int root_fd = -1;
  cleanup_close int files_fd = -1;

  if (rf->files_dir == NULL)
    rf->files_dir = xasprintf ("%s/files", bundle);
  if (rf->output_dir == NULL)
    rf->output_dir = xasprintf ("%s/output", bundle);

  if (req->nfiles > 0)
    {
      root_fd = open (rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (root_fd < 0)
        return boxer_error_errno (err, errno, "open rootfs '%s'", rootfs);
      for (size_t i = 0; i < req->nfiles; i++)
        if (check_destination (root_fd, req->files[i].path, i, err) < 0)
          return -1;

      if (mkdir (rf->files_dir, 0700) < 0)
        return boxer_error_errno (err, errno, "mkdir '%s'", rf->files_dir);
      files_fd = open (rf->files_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (files_fd < 0)
        return boxer_error_errno (err, errno, "open '%s'", rf->files_dir);
      rf->sources = xmalloc0 ((req->nfiles + 1) * sizeof *rf->sources);
      for (size_t i = 0; i < req->nfiles; i++)
        {
          char name[32];

          snprintf (name, sizeof name, "%zu", i);
          if (boxer_files_link (cfg->home, req->files[i].id, cfg->files_ttl_secs, files_fd, name,
                                err) < 0)
            return boxer_error_wrap (err, "files[%zu]", i);
          rf->sources[rf->n++] = xasprintf ("%s/%s", rf->files_dir, name);
        }
    }
  return 0;
}

struct boxer_spec_bind *
boxer_runfiles_binds (const struct boxer_runfiles *rf, const struct boxer_run_request *req,
                      const struct boxer_spec_bind *binds, size_t n, size_t *n_out)
{
  struct boxer_spec_bind *all = xmalloc0 ((n + rf->n + 1) * sizeof *all);
  size_t k = 0;

  for (size_t i = 0; i < n; i++)
    all[k++] = binds[i];
  for (size_t i = 0; i < rf->n; i++)
    all[k++] = (struct boxer_spec_bind) { rf->sources[i], req->files[i].path, false };
  if (rf->output_mounted)
    all[k++] = (struct boxer_spec_bind) { rf->output_dir, "/output", true };
  *n_out = k;
  return all;
}

int
boxer_runfiles_open_output (struct boxer_runfiles *rf, int *fd_out, struct boxer_error **err)
{
  *fd_out = -1;
  if (!rf->output_mounted)
    return 0;
  *fd_out = open (rf->output_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (*fd_out < 0)
    return boxer_error_errno (err, errno, "open '%s'", rf->output_dir);
  if (boxer_outputs_make_readable (*fd_out, BOXER_RUN_UID, BOXER_RUN_GID, err) < 0)
    {
      close (*fd_out);
      *fd_out = -1;
      return -1;
    }
  return 0;
}

void
boxer_runfiles_teardown (struct boxer_runfiles *rf)
{
  if (rf->output_mounted)
    boxer_outputs_unmount (rf->output_dir, NULL);
  rf->output_mounted = false;
  boxer_strv_free (rf->sources);
  free (rf->files_dir);
  free (rf->output_dir);
  memset (rf, 0, sizeof *rf);
}

void
boxer_runfiles_sweep (const char *bundle)
{
  cleanup_free char *dir = xasprintf ("%s/output", bundle);
  boxer_outputs_unmount (dir, NULL);
}
