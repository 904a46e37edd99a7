#include <config.h>

#include "layout.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "fsutil.h"

int
boxer_layout_worker_ids (const struct boxer_config *cfg, uid_t *uid, gid_t *gid,
                         struct boxer_error **err)
{
  struct passwd *pw = getpwnam (cfg->worker_user);

  if (pw == NULL)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "worker_user '%s' does not exist; create it (useradd --system "
                             "--no-create-home --shell /usr/sbin/nologin %s) or remove "
                             "worker_user from the config",
                             cfg->worker_user, cfg->worker_user);
  if (pw->pw_uid == 0)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "worker_user '%s' is root; name an unprivileged user",
                             cfg->worker_user);
  *uid = pw->pw_uid;
  *gid = pw->pw_gid;
  return 0;
}

struct owner
{
  uid_t uid;
  gid_t gid;
  const char *top;
};

/* Directories change owner after their children (DIR_POST): one already
   the worker's is whole, and the walk skips it, so a store taken over once
   costs a look at its top entries; a walk cut short is finished by the
   next start.  */
static int
chown_one (int parentfd, const char *name, const struct stat *st, enum boxer_walk_event ev,
           void *data, struct boxer_error **err)
{
  const struct owner *o = data;
  bool mine = st->st_uid == o->uid && st->st_gid == o->gid;

  if (ev == BOXER_WALK_DIR_PRE)
    return mine && name != o->top ? 1 : 0;
  if (mine)
    return 0;
  if (fchownat (parentfd, name, o->uid, o->gid, AT_SYMLINK_NOFOLLOW) < 0)
    return boxer_error_errno (err, errno, "chown '%s'", name);
  return 0;
}

/* dir, created if missing, and what is under it: the worker's.  */
static int
give (const char *home, const char *dir, const struct owner *owner, struct boxer_error **err)
{
  cleanup_free char *path = xasprintf ("%s/%s", home, dir);
  struct owner o = *owner;
  struct stat st;

  if (boxer_mkdir_p (path, 0700, err) < 0)
    return -1;
  if (lstat (path, &st) < 0)
    return boxer_error_errno (err, errno, "stat '%s'", path);
  if (!S_ISDIR (st.st_mode))
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "'%s' is not a directory", path);
  o.top = path;
  if (boxer_walk_at (AT_FDCWD, path, false, chown_one, &o, err) < 0)
    return boxer_error_wrap (err, "give '%s' to the worker user", path);
  if (chmod (path, 0700) < 0)
    return boxer_error_errno (err, errno, "chmod '%s'", path);
  return 0;
}

static int
root_dir (const char *path, mode_t mode, struct boxer_error **err)
{
  if (boxer_mkdir_p (path, mode, err) < 0)
    return -1;
  if (chown (path, 0, 0) < 0 || chmod (path, mode) < 0)
    return boxer_error_errno (err, errno, "make '%s' root's, mode %o", path, (unsigned) mode);
  return 0;
}

int
boxer_layout_prepare (const struct boxer_config *cfg, struct boxer_error **err)
{
  cleanup_free char *runs = NULL;
  struct owner o = { 0 };

  if (cfg->worker_user == NULL)
    return boxer_ensure_private_dir (cfg->home, err);
  if (boxer_layout_worker_ids (cfg, &o.uid, &o.gid, err) < 0)
    return -1;
  runs = xasprintf ("%s/runs", cfg->home);
  if (root_dir (cfg->home, 0711, err) < 0 || root_dir (runs, 0711, err) < 0
      || give (cfg->home, "files", &o, err) < 0 || give (cfg->home, "runs/records", &o, err) < 0
      || give (cfg->home, "images", &o, err) < 0)
    return -1;
  return 0;
}

int
boxer_layout_drop_to_worker (const struct boxer_config *cfg, struct boxer_error **err)
{
  uid_t uid;
  gid_t gid;

  if (cfg->worker_user == NULL || geteuid () != 0)
    return 0;
  if (boxer_layout_worker_ids (cfg, &uid, &gid, err) < 0)
    return -1;
  if (setgroups (0, NULL) < 0 || setresgid (gid, gid, gid) < 0 || setresuid (uid, uid, uid) < 0)
    return boxer_error_errno (err, errno, "become worker_user '%s'", cfg->worker_user);
  /* setresuid () from root to another uid clears every capability; make
     sure, and that nothing can bring them back.  */
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || setuid (0) == 0)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "could not drop root for good");
  return 0;
}
