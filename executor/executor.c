#include <config.h>

#include "executor.h"

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <poll.h>

#include "batch.h"
#include "common/log.h"
#include "cgroup.h"
#include "init_link.h"
#include "common/buf.h"
#include "common/fsutil.h"
#include "network.h"
#include "runfiles.h"
#include "runsc.h"
#include "spec.h"

#define RUN_ID_PREFIX "r_"
#define RUN_ID_HEX 32

struct boxer_executor
{
  const struct boxer_config *cfg;
  struct boxer_runsc runsc;
  char *active_dir;    /* <home>/runs/active: one bundle + lock per live run */
  char *cgroup_prefix; /* "boxer-<instance id>-" */
  enum boxer_cgroup_mode cgroup_mode;
  struct boxer_net *net;
};

/* Everything one run has set up, torn down in reverse by run_teardown (),
   which is safe to call twice.  */
struct run
{
  struct boxer_executor *ex;
  char id[sizeof RUN_ID_PREFIX + RUN_ID_HEX];
  char *bundle;
  char *lock_path;
  int lock_fd;
  struct boxer_cgroup *cgroup;
  bool runsc_started;
  struct boxer_net_run net;
  struct boxer_runfiles files;  /* uploads mounted, /output */
};

static char *
cgroup_name (const struct boxer_executor *ex, const char *id)
{
  return xasprintf ("%s%s", ex->cgroup_prefix, id);
}

/* Remove what a run left: runsc state and processes, cgroups, bundle,
   lock.  Used both for our own runs and for orphans.  */
static void
cleanup_run_leftovers (struct boxer_executor *ex, const char *id, bool runsc_state)
{
  cleanup_free char *cg = cgroup_name (ex, id);
  cleanup_free char *bundle = xasprintf ("%s/%s", ex->active_dir, id);

  if (runsc_state)
    {
      boxer_runsc_kill (&ex->runsc, id, NULL);
      boxer_runsc_delete (&ex->runsc, id, NULL);
    }
  if (!ex->cfg->ignore_cgroups)
    boxer_cgroup_remove (cg, NULL);
  /* Before the bundle goes: its /output tmpfs.  */
  boxer_runfiles_sweep (bundle);
  boxer_rm_rf (bundle, NULL);
}

/* Whether the run with this id is in progress: its lock file exists and
   someone holds it.  For the network sweeper, which finds run ids in
   names of its own objects.  */
static bool
run_is_live (const char *id, void *data)
{
  struct boxer_executor *ex = data;
  cleanup_free char *lock = NULL;
  cleanup_close int fd = -1;

  if (strlen (id) != strlen (RUN_ID_PREFIX) + RUN_ID_HEX
      || strncmp (id, RUN_ID_PREFIX, strlen (RUN_ID_PREFIX)) != 0
      || strspn (id + strlen (RUN_ID_PREFIX), "0123456789abcdef") != RUN_ID_HEX)
    return false;
  lock = xasprintf ("%s/%s.lock", ex->active_dir, id);
  /* Not boxer_lock_path (): it would create a lock that is gone.  */
  fd = open (lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return false;
  return flock (fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
}

static void
run_teardown (struct run *run)
{
  if (run->runsc_started)
    cleanup_run_leftovers (run->ex, run->id, true);
  run->runsc_started = false;
  boxer_runfiles_teardown (&run->files);
  if (run->cgroup)
    {
      boxer_cgroup_destroy (run->cgroup, NULL);
      run->cgroup = NULL;
    }
  boxer_network_teardown (run->ex->net, &run->net);
  if (run->bundle)
    {
      boxer_rm_rf (run->bundle, NULL);
      free (run->bundle);
      run->bundle = NULL;
    }
  /* The lock goes last: while it is held no sweeper touches the run.  */
  if (run->lock_path)
    {
      unlink (run->lock_path);
      free (run->lock_path);
      run->lock_path = NULL;
    }
  if (run->lock_fd >= 0)
    {
      close (run->lock_fd);
      run->lock_fd = -1;
    }
}

/* Claim the run id: the lock file is created and locked under a temporary
   name, then renamed into place, so a sweeper never finds an unlocked lock
   of a live run.  */
static int
run_claim (struct run *run, const char *id, struct boxer_error **err)
{
  struct boxer_executor *ex = run->ex;
  cleanup_free char *tmp = NULL;
  cleanup_close int fd = -1;

  if (strlen (id) != strlen (RUN_ID_PREFIX) + RUN_ID_HEX
      || strncmp (id, RUN_ID_PREFIX, strlen (RUN_ID_PREFIX)) != 0
      || strspn (id + strlen (RUN_ID_PREFIX), "0123456789abcdef") != RUN_ID_HEX)
    return boxer_error_make (err, BOXER_ERR_INVALID, "a malformed run id");
  memcpy (run->id, id, sizeof run->id);
  tmp = xasprintf ("%s/.%s.lock.tmp", ex->active_dir, run->id);
  fd = boxer_lock_path (tmp, LOCK_EX | LOCK_NB, err);
  if (fd < 0)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "cannot lock new run '%s'", run->id);
  run->lock_path = xasprintf ("%s/%s.lock", ex->active_dir, run->id);
  /* Never over another run's lock: the worker chose the id.  */
  if (renameat2 (AT_FDCWD, tmp, AT_FDCWD, run->lock_path, RENAME_NOREPLACE) < 0)
    {
      int e = errno;
      unlink (tmp);
      free (run->lock_path);
      run->lock_path = NULL;
      if (e == EEXIST)
        return boxer_error_make (err, BOXER_ERR_INVALID, "run id '%s' is taken", run->id);
      return boxer_error_errno (err, e, "claim run '%s'", run->id);
    }
  run->lock_fd = steal_fd (&fd);

  run->bundle = xasprintf ("%s/%s", ex->active_dir, run->id);
  if (mkdir (run->bundle, 0700) < 0)
    return boxer_error_errno (err, errno, "mkdir '%s'", run->bundle);
  return 0;
}

static int
sweep_cgroup (const char *name, void *data)
{
  struct boxer_executor *ex = data;
  const char *id = name + strlen (ex->cgroup_prefix);
  cleanup_free char *lock = xasprintf ("%s/%s.lock", ex->active_dir, id);
  cleanup_close int fd = -1;

  if (access (lock, F_OK) == 0)
    {
      fd = boxer_lock_path (lock, LOCK_EX | LOCK_NB, NULL);
      if (fd < 0)
        return 0;                       /* a live run */
    }
  boxer_cgroup_remove (name, NULL);
  return 0;
}

int
boxer_executor_sweep (struct boxer_executor *ex, struct boxer_error **err)
{
  cleanup_dir DIR *d = opendir (ex->active_dir);
  struct dirent *de;

  if (d == NULL)
    return boxer_error_errno (err, errno, "open '%s'", ex->active_dir);
  while ((de = readdir (d)) != NULL)
    {
      const char *name = de->d_name;
      size_t len = strlen (name);
      cleanup_free char *path = NULL;
      cleanup_close int fd = -1;

      if (strncmp (name, RUN_ID_PREFIX, strlen (RUN_ID_PREFIX)) != 0)
        {
          /* A lock that never got renamed into place.  */
          if (name[0] == '.' && len > 9 && strcmp (name + len - 9, ".lock.tmp") == 0)
            {
              path = xasprintf ("%s/%s", ex->active_dir, name);
              fd = boxer_lock_path (path, LOCK_EX | LOCK_NB, NULL);
              if (fd >= 0)
                unlink (path);
            }
          continue;
        }
      path = xasprintf ("%s/%s", ex->active_dir, name);
      if (len > 5 && strcmp (name + len - 5, ".lock") == 0)
        {
          cleanup_free char *id = xstrndup (name, len - 5);
          fd = boxer_lock_path (path, LOCK_EX | LOCK_NB, NULL);
          if (fd < 0)
            continue;                   /* a live run */
          cleanup_run_leftovers (ex, id, true);
          unlink (path);
        }
      else
        {
          /* A bundle whose lock is gone belongs to nobody.  */
          cleanup_free char *lock = xasprintf ("%s.lock", path);
          if (access (lock, F_OK) < 0)
            cleanup_run_leftovers (ex, name, true);
        }
    }
  if (!ex->cfg->ignore_cgroups
      && boxer_cgroup_foreach (ex->cgroup_prefix, sweep_cgroup, ex, err) < 0)
    return -1;
  /* After the runs' processes are gone: namespaces, veths, leases and
     firewall elements of runs whose lock nobody holds.  */
  return ex->net ? boxer_network_sweep (ex->net, err) : 0;
}

/* Whether <home>/runs/active holds anything (a run, or what one left).  */
static bool
active_runs_left (struct boxer_executor *ex)
{
  cleanup_dir DIR *d = opendir (ex->active_dir);
  struct dirent *de;

  if (d == NULL)
    return false;
  while ((de = readdir (d)) != NULL)
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      return true;
  return false;
}

int
boxer_executor_sweep_orphans (struct boxer_executor *ex, int timeout_ms,
                              struct boxer_error **err)
{
  long long deadline = boxer_now_ms () + timeout_ms;

  for (;;)
    {
      if (boxer_executor_sweep (ex, err) < 0)
        return -1;
      if (!active_runs_left (ex))
        return 0;
      if (boxer_now_ms () >= deadline)
        return boxer_error_make (err, BOXER_ERR_INTERNAL,
                                 "runs of a dead server still hold their locks after %d ms; "
                                 "they are swept when they let go", timeout_ms);
      nanosleep (&(struct timespec) { .tv_nsec = 100 * 1000 * 1000 }, NULL);
    }
}

int
boxer_executor_shutdown (struct boxer_executor *ex, struct boxer_error **err)
{
  if (boxer_executor_sweep (ex, err) < 0 || boxer_runsc_cleanup_root (&ex->runsc, err) < 0)
    return -1;
  return ex->net ? boxer_network_shutdown (ex->net, err) : 0;
}

/* A short random id, made once per Boxer home, that tells this Boxer's
   host-wide objects (cgroups) from another's on the same machine.  */
static char *
instance_id (const char *home, struct boxer_error **err)
{
  cleanup_free char *path = xasprintf ("%s/instance-id", home);
  cleanup_free char *tmp = NULL;
  cleanup_free char *data = NULL;
  char id[9];

  if (access (path, F_OK) < 0)
    {
      if (boxer_random_id (id, "", 8, err) < 0)
        return NULL;
      tmp = xasprintf ("%s.%d", path, (int) getpid ());
      if (boxer_write_file_atomic (tmp, id, 8, 0600, err) < 0)
        return NULL;
      /* link () fails if another process got there first; theirs wins.  */
      if (link (tmp, path) < 0 && errno != EEXIST)
        {
          unlink (tmp);
          boxer_error_errno (err, errno, "create '%s'", path);
          return NULL;
        }
      unlink (tmp);
    }
  if (boxer_read_file (path, 64, &data, NULL, err) < 0)
    return NULL;
  if (strlen (data) != 8 || strspn (data, "0123456789abcdef") != 8)
    {
      boxer_error_make (err, BOXER_ERR_INTERNAL, "'%s' is corrupt; remove it", path);
      return NULL;
    }
  return xstrdup (data);
}

int
boxer_executor_new (struct boxer_executor **out, const struct boxer_config *cfg,
                    struct boxer_error **err)
{
  struct boxer_executor *ex = xmalloc0 (sizeof *ex);
  cleanup_free char *root = xasprintf ("%s/runsc", cfg->home);

  ex->cfg = cfg;
  ex->active_dir = xasprintf ("%s/runs/active", cfg->home);
  if (boxer_mkdir_p (ex->active_dir, 0700, err) < 0)
    goto fail;
  {
    cleanup_free char *instance = instance_id (cfg->home, err);
    if (instance == NULL)
      goto fail;
    ex->cgroup_prefix = xasprintf ("%s%s-", BOXER_CGROUP_PREFIX, instance);
    if (boxer_network_new (&ex->net, cfg, instance, run_is_live, ex, err) < 0)
      goto fail;
  }
  if (cfg->ignore_cgroups)
    ex->cgroup_mode = boxer_cgroup_detect (BOXER_CGROUP_ROOT);
  else if (boxer_cgroup_global_init (BOXER_CGROUP_ROOT, err) < 0)
    goto fail;
  else
    ex->cgroup_mode = boxer_cgroup_mode ();
  if (boxer_runsc_init (&ex->runsc, cfg->runsc_path, root, cfg->platform, cfg->ignore_cgroups,
                        err) < 0)
    goto fail;
  if (boxer_executor_sweep (ex, err) < 0)
    goto fail;
  *out = ex;
  return 0;

fail:
  /* Nothing of a service that never started stays on the host.  */
  if (ex->net)
    boxer_network_shutdown (ex->net, NULL);
  boxer_executor_free (ex);
  return -1;
}

void
boxer_executor_free (struct boxer_executor *ex)
{
  if (ex == NULL)
    return;
  boxer_runsc_release (&ex->runsc);
  boxer_network_free (ex->net);
  free (ex->active_dir);
  free (ex->cgroup_prefix);
  free (ex);
}

const char *
boxer_executor_runsc_version (const struct boxer_executor *ex)
{
  return ex->runsc.version;
}

const char *
boxer_executor_platform (const struct boxer_executor *ex)
{
  return ex->runsc.platform;
}

const char *
boxer_executor_cgroup_mode (const struct boxer_executor *ex)
{
  return boxer_cgroup_mode_name (ex->cgroup_mode);
}

const char *
boxer_executor_cgroup_runs_dir (const struct boxer_executor *ex)
{
  return ex->cfg->ignore_cgroups ? "(ignore_cgroups)" : boxer_cgroup_runs_dir ();
}

int
boxer_executor_check (struct boxer_executor *ex, struct boxer_error **err)
{
  if (access (ex->runsc.path, X_OK) < 0)
    return boxer_error_make (err, BOXER_ERR_RUNTIME, "runsc is no longer executable: %s",
                             strerror (errno));
  return 0;
}

/* --- warm sandboxes ------------------------------------------------------ */

/* The boxer-init protocol ids of one run: its files count up from 1.  */
#define INIT_RUN_ID 0x10000u
/* How long boxer-init may take to say READY once started.  */
#define WARM_READY_TIMEOUT_MS 10000
/* Past the run's wall clock, how long boxer-init has to report the kill
   it does itself before the sandbox is killed from outside.  */
#define WARM_BACKSTOP_MS 5000

static const char *
init_path (const struct boxer_executor *ex)
{
  return ex->cfg->init_path ? ex->cfg->init_path : PKGLIBEXECDIR "/boxer-init";
}

void
boxer_executor_warm_close (struct boxer_warm_sandbox *sb)
{
  int *fds[] = { &sb->lock_fd, &sb->to_init, &sb->from_init, &sb->init_in, &sb->init_out };

  for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
    if (*fds[i] >= 0)
      {
        close (*fds[i]);
        *fds[i] = -1;
      }
}

int
boxer_executor_warm_claim (struct boxer_executor *ex, const char *digest,
                           enum boxer_network network, const char *run_id,
                           struct boxer_warm_sandbox *sb, struct boxer_error **err)
{
  struct run run = { .ex = ex, .lock_fd = -1 };
  char id[sizeof RUN_ID_PREFIX + RUN_ID_HEX];
  int in[2] = { -1, -1 }, out[2];

  memset (sb, 0, sizeof *sb);
  sb->lock_fd = sb->to_init = sb->from_init = sb->init_in = sb->init_out = -1;
  sb->lease = -1;
  if (strlen (digest) >= sizeof sb->digest)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "a digest too long");
  if ((run_id == NULL && boxer_random_id (id, RUN_ID_PREFIX, RUN_ID_HEX, err) < 0)
      || run_claim (&run, run_id ? run_id : id, err) < 0)
    {
      run_teardown (&run);
      return -1;
    }
  if (network == BOXER_NETWORK_SANDBOX
      && boxer_network_lease (ex->net, run.id, &sb->lease, err) < 0)
    {
      run_teardown (&run);
      return -1;
    }
  if (pipe2 (in, O_CLOEXEC) < 0 || pipe2 (out, O_CLOEXEC) < 0)
    {
      int e = errno;
      if (in[0] >= 0)
        {
          close (in[0]);
          close (in[1]);
        }
      boxer_network_release_lease (ex->net, run.id, sb->lease);
      sb->lease = -1;
      run_teardown (&run);
      return boxer_error_errno (err, e, "pipe");
    }
  sb->network = network;
  memcpy (sb->id, run.id, sizeof run.id);
  strcpy (sb->digest, digest);
  sb->init_in = in[0];
  sb->to_init = in[1];
  sb->from_init = out[0];
  sb->init_out = out[1];
  /* The lock and the bundle stay: they are the sandbox's from now on.  */
  sb->lock_fd = run.lock_fd;
  free (run.lock_path);
  free (run.bundle);
  return 0;
}

/* The sandbox's resources as one run's, for run_teardown ().  */
static void
warm_as_run (struct boxer_executor *ex, struct boxer_warm_sandbox *sb, struct run *run)
{
  cleanup_free char *cg = cgroup_name (ex, sb->id);

  memset (run, 0, sizeof *run);
  run->ex = ex;
  memcpy (run->id, sb->id, sizeof run->id);
  run->bundle = xasprintf ("%s/%s", ex->active_dir, sb->id);
  run->lock_path = xasprintf ("%s/%s.lock", ex->active_dir, sb->id);
  run->lock_fd = sb->lock_fd;
  sb->lock_fd = -1;
  run->cgroup = ex->cfg->ignore_cgroups ? NULL : boxer_cgroup_open (cg);
  run->runsc_started = true;
  run->files.output_dir = xasprintf ("%s/output", run->bundle);
  run->files.files_dir = xasprintf ("%s/files", run->bundle);
  run->files.output_mounted = true;
  run->net.mode = sb->network;
  run->net.run_id = xstrdup (sb->id);
  run->net.lease = sb->lease;
}

/* Every process of a warm sandbox dies now, so that nothing of its run
   goes on while the answer is made; the slow rest (runsc delete, unmount,
   bundle) is boxer_executor_warm_destroy ()'s, once the answer is out.  */
static void
warm_kill (struct boxer_executor *ex, const struct run *run)
{
  if (run->cgroup)
    {
      cleanup_free char *cg = cgroup_name (ex, run->id);
      boxer_cgroup_kill (cg);
    }
  else
    boxer_runsc_kill (&ex->runsc, run->id, NULL);
}

/* What warm_as_run () took goes back to sb, which keeps the sandbox (its
   lock, bundle, cgroup, /output mount) for boxer_executor_warm_destroy ().  */
static void
warm_from_run (struct run *run, struct boxer_warm_sandbox *sb)
{
  sb->lock_fd = run->lock_fd;
  run->lock_fd = -1;
  run->files.output_mounted = false;
  boxer_runfiles_teardown (&run->files);
  boxer_network_forget (&run->net);
  boxer_cgroup_close (run->cgroup);
  free (run->bundle);
  free (run->lock_path);
}

void
boxer_executor_warm_destroy (struct boxer_executor *ex, struct boxer_warm_sandbox *sb)
{
  struct run run;

  warm_as_run (ex, sb, &run);
  boxer_executor_warm_close (sb);
  run_teardown (&run);
}

/* Read boxer-init's READY, the first frame it sends.  */
static int
read_ready (int fd, struct boxer_error **err)
{
  unsigned char f[13];
  size_t have = 0;
  long long deadline = boxer_now_ms () + WARM_READY_TIMEOUT_MS;

  while (have < sizeof f)
    {
      struct pollfd p = { .fd = fd, .events = POLLIN };
      long long left = deadline - boxer_now_ms ();
      ssize_t n;

      if (left <= 0)
        return boxer_error_make (err, BOXER_ERR_INTERNAL,
                                 "boxer-init did not say READY within %d s",
                                 WARM_READY_TIMEOUT_MS / 1000);
      if (poll (&p, 1, (int) left) < 0 && errno != EINTR)
        return boxer_error_errno (err, errno, "poll");
      n = read (fd, f + have, sizeof f - have);
      if (n == 0)
        return boxer_error_make (err, BOXER_ERR_INTERNAL,
                                 "boxer-init exited before READY (its log is init.log in the "
                                 "sandbox's bundle; is init_path a boxer-init?)");
      if (n < 0 && errno != EINTR && errno != EAGAIN)
        return boxer_error_errno (err, errno, "read boxer-init");
      if (n > 0)
        have += (size_t) n;
    }
  /* Length 9: type, id 0, version.  */
  if (f[0] != 0 || f[1] != 0 || f[2] != 0 || f[3] != 9 || f[4] != BOXER_INIT_READY
      || f[12] != BOXER_INIT_VERSION || f[9] != 0 || f[10] != 0 || f[11] != 0)
    return boxer_error_make (err, BOXER_ERR_INTERNAL,
                             "boxer-init's first frame is not READY of version %d",
                             BOXER_INIT_VERSION);
  return 0;
}

int
boxer_executor_warm_boot (struct boxer_executor *ex, struct boxer_warm_sandbox *sb,
                          const struct boxer_limits *limits, struct boxer_error **err)
{
  const struct boxer_config *cfg = ex->cfg;
  cleanup_free char *rootfs = xasprintf ("%s/images/rootfs/%s/rootfs", cfg->home, sb->digest + 7);
  cleanup_free char *spec = NULL;
  cleanup_free char *path = NULL;
  cleanup_free char *log_path = NULL;
  cleanup_free char *init_log = NULL;
  cleanup_free struct boxer_spec_bind *binds = NULL;
  cleanup_close int log_fd = -1;
  struct boxer_run_request none = { .limits = limits ? *limits : cfg->max_limits };
  char *const env[] = { (char *) "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        NULL };
  struct run run;
  struct stat st;
  int r = -1;

  /* The boot is the service's work, not the program's: it gets the CPU a
     pool's boot gets (a quarter of a core under emulation takes longer
     than runsc waits), and the run's share applies from its start
     (boxer_executor_run_warm (), a batch's, a session's).  Memory and
     processes are the run's from the start: a limit too small for the
     boot is the run's OOM.  */
  none.limits.cpu_cores = cfg->max_limits.cpu_cores;
  warm_as_run (ex, sb, &run);
  /* Until it is up, nothing of it is ours to keep.  */
  run.files.output_mounted = false;
  if (lstat (rootfs, &st) < 0 || !S_ISDIR (st.st_mode))
    {
      boxer_error_make (err, BOXER_ERR_IMAGE_NOT_FOUND, "image %s is not in the store",
                        sb->digest);
      goto done;
    }
  if (run.cgroup)
    {
      cleanup_free char *cg = cgroup_name (ex, sb->id);
      boxer_cgroup_destroy (run.cgroup, NULL);
      run.cgroup = NULL;
      if (boxer_cgroup_create (&run.cgroup, cg, &none.limits, err) < 0)
        goto done;
    }
  boxer_runfiles_teardown (&run.files);
  if (boxer_runfiles_setup (&run.files, cfg, run.bundle, rootfs, &none, err) < 0)
    goto done;
  /* The network as a cold run's, on the address the claim leased.  */
  boxer_network_forget (&run.net);
  if (boxer_network_setup (ex->net, sb->network, sb->id, sb->lease, run.bundle, &run.net, err)
      < 0)
    goto done;
  {
    struct boxer_spec_input in = {
      .rootfs = rootfs,
      .init_path = init_path (ex),
      .env = env,
      .hostname = "boxer",
      .cgroups_path = run.cgroup ? boxer_cgroup_path (run.cgroup) : NULL,
      .limits = &none.limits,
      .netns_path = run.net.netns_path,
      .host_network = run.net.mode == BOXER_NETWORK_HOST,
    };
    const struct boxer_spec_bind name_files[] = {
      { run.net.resolv_conf, "/etc/resolv.conf", false },
      { run.net.hosts, "/etc/hosts", false },
    };
    binds = boxer_runfiles_binds (&run.files, &none, name_files,
                                  run.net.resolv_conf ? 2 : 0, &in.n_binds);
    in.binds = binds;
    if (boxer_spec_build (&in, &spec, err) < 0)
      goto done;
  }
  path = xasprintf ("%s/config.json", run.bundle);
  /* Unsynced: after a host crash the bundle is only removed.  */
  if (boxer_write_file_unsynced (path, spec, strlen (spec), 0600, err) < 0)
    goto done;
  log_path = xasprintf ("%s/runsc.log", run.bundle);
  init_log = xasprintf ("%s/init.log", run.bundle);
  log_fd = open (init_log, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (log_fd < 0)
    {
      boxer_error_errno (err, errno, "create '%s'", init_log);
      goto done;
    }
  if (boxer_runsc_run_detached (&ex->runsc, run.bundle, sb->id,
                                boxer_network_runsc_mode (sb->network), log_path, sb->init_in,
                                sb->init_out, log_fd, err) < 0)
    goto done;
  close (sb->init_in);
  close (sb->init_out);
  sb->init_in = sb->init_out = -1;
  if (read_ready (sb->from_init, err) < 0)
    goto done;
  r = 0;

done:
  if (r < 0)
    {
      struct boxer_cgroup_stats stats;
      /* A few MiB too few for gVisor itself: the host killed it.  */
      sb->boot_oom = run.cgroup && boxer_cgroup_read_stats (run.cgroup, &stats, NULL) == 0
                     && stats.oom_killed;
      /* All of it, the claim too: its owner only closes what it holds.  */
      run_teardown (&run);
      boxer_executor_warm_close (sb);
      return -1;
    }
  /* Up: the mount and the cgroup stay for the run.  */
  warm_from_run (&run, sb);
  return 0;
}

bool
boxer_executor_warm_fits (const struct boxer_warm_sandbox *sb, const struct boxer_run_request *req,
                          const struct boxer_image *image)
{
  return req->network == sb->network && image->digest && strcmp (image->digest, sb->digest) == 0;
}

/* Stream one upload (linked into the bundle) to boxer-init as a file
   root owns and the program may only read.  */
static int
send_file (struct boxer_init_link *l, uint32_t id, const char *source, const char *dest,
           long long deadline, int cancel_fd, struct boxer_error **err)
{
  cleanup_close int fd = open (source, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  struct boxer_init_event ev;
  bool cancelled;
  int r;

  if (fd < 0)
    return boxer_error_errno (err, errno, "open '%s'", source);
  if (boxer_init_link_queue_file (l, id, fd, dest, err) < 0)
    return -1;
  for (;;)
    {
      r = boxer_init_link_next (l, deadline, cancel_fd, &cancelled, &ev, err);
      if (r < 0)
        return -1;
      if (r == 0)
        return cancelled ? boxer_error_make (err, BOXER_ERR_RUNTIME, "cancelled")
                         : boxer_error_make (err, BOXER_ERR_INTERNAL,
                                             "boxer-init took too long to write '%s'", dest);
      if (ev.id != id)
        continue;
      if (ev.type == BOXER_INIT_FILE_DONE)
        return 0;
      if (ev.type == BOXER_INIT_ERROR)
        {
          struct boxer_init_reader rd;
          cleanup_free char *msg = NULL;
          boxer_init_reader_init (&rd, ev.payload, ev.len);
          boxer_init_get_str (&rd, 1024, &msg);
          return boxer_error_make (err, BOXER_ERR_INVALID, "cannot write '%s' in the sandbox: %s",
                                   dest, msg ? msg : "refused");
        }
    }
}

static int
queue_start (struct boxer_init_link *l, const struct boxer_config *cfg,
             const struct boxer_run_request *req, const struct boxer_image *image,
             struct boxer_error **err)
{
  const char *cwd = req->workdir ? req->workdir : image->workdir && *image->workdir ? image->workdir : "/";
  cleanup_strv char **args = NULL;
  cleanup_strv char **env = NULL;
  struct boxer_init_start s;

  if (boxer_spec_resolve_args (req->cmd, image->entrypoint, image->cmd, &args, err) < 0)
    return -1;
  env = boxer_spec_merge_env (image->env, req->env);
  s = (struct boxer_init_start) {
    .uid = BOXER_RUN_UID,
    .gid = BOXER_RUN_GID,
    .nproc = (uint64_t) req->limits.pids_limit,
    .nofile = (uint64_t) req->limits.nofile,
    /* No address-space limit: the memory cgroup bounds a run.  */
    .wall_ms = (uint64_t) req->limits.wall_clock_secs * 1000,
    .stdout_cap = (uint64_t) cfg->output_limit_bytes,
    .stderr_cap = (uint64_t) cfg->output_limit_bytes,
    .cwd = (char *) cwd,
    .argv = args,
    .env = env,
  };
  return boxer_init_link_queue_start (l, INIT_RUN_ID, &s, req->stdin_data, req->stdin_len, err);
}

/* The run's exchange with boxer-init: files, START, stdin, then output
   until EXIT.  *gone: the sandbox died under it (an OOM kill, say).  */
static int
execute_init (struct run *run, struct boxer_init_link *l, const struct boxer_run_job *job,
              struct boxer_run_result *out, bool *gone, struct boxer_error **err)
{
  struct boxer_executor *ex = run->ex;
  const struct boxer_run_request *req = job->req;
  struct boxer_buf obuf, ebuf;
  long long t0 = boxer_now_ms ();
  long long deadline = t0 + req->limits.wall_clock_secs * 1000 + WARM_BACKSTOP_MS;
  bool cancelled, exited = false;
  int r = -1;

  *gone = false;
  boxer_buf_init (&obuf, ex->cfg->output_limit_bytes);
  boxer_buf_init (&ebuf, ex->cfg->output_limit_bytes);
  out->started_at = time (NULL);
  for (size_t i = 0; i < run->files.n; i++)
    if (send_file (l, (uint32_t) i + 1, run->files.sources[i], req->files[i].path, deadline,
                   job->cancel_fd, err) < 0)
      {
        if ((*err)->category == BOXER_ERR_RUNTIME && strncmp ((*err)->msg, "closed", 6) == 0)
          *gone = true;
        goto done;
      }
  if (queue_start (l, ex->cfg, req, job->image, err) < 0)
    goto done;
  if (job->sink && job->sink->started (job->sink->data) < 0)
    {
      boxer_error_make (err, BOXER_ERR_RUNTIME, "cancelled: the worker went away");
      goto done;
    }

  while (!exited)
    {
      struct boxer_init_event ev;
      struct boxer_init_reader rd;
      int n = boxer_init_link_next (l, deadline, job->cancel_fd, &cancelled, &ev, err);

      if (n < 0)
        {
          if ((*err)->category == BOXER_ERR_RUNTIME)
            *gone = true;
          goto done;
        }
      if (n == 0 && cancelled)
        {
          boxer_error_make (err, BOXER_ERR_RUNTIME, "cancelled: the worker went away");
          goto done;
        }
      if (n == 0)
        {
          /* boxer-init did not end it: the sandbox goes, whole.  */
          boxer_runsc_kill (&ex->runsc, run->id, NULL);
          out->timed_out = true;
          break;
        }
      if (ev.id != INIT_RUN_ID)
        continue;
      boxer_init_reader_init (&rd, ev.payload, ev.len);
      switch (ev.type)
        {
        case BOXER_INIT_STDOUT:
        case BOXER_INIT_STDERR:
          {
            int stream = ev.type == BOXER_INIT_STDERR;
            size_t kept = boxer_buf_append_capped (stream ? &ebuf : &obuf, ev.payload, ev.len);
            if (kept > 0 && job->sink
                && job->sink->output (job->sink->data, -1, stream, (const char *) ev.payload, kept)
                     < 0)
              {
                boxer_error_make (err, BOXER_ERR_RUNTIME, "cancelled: the worker went away");
                goto done;
              }
          }
          break;
        case BOXER_INIT_EXIT:
          {
            uint32_t status, sig, flags;
            uint64_t wall;
            if (!boxer_init_get_u32 (&rd, &status) || !boxer_init_get_u32 (&rd, &sig)
                || !boxer_init_get_u32 (&rd, &flags) || !boxer_init_get_u64 (&rd, &wall)
                || !boxer_init_reader_done (&rd) || status > 255 || sig > 64)
              {
                boxer_error_make (err, BOXER_ERR_INTERNAL, "boxer-init sent a malformed EXIT");
                goto done;
              }
            out->exit_code = (int) status;
            out->signal = (int) sig;
            /* The program's own time, from its start to its end.  */
            out->wall_ms = (int64_t) wall;
            out->timed_out = flags & BOXER_INIT_TIMED_OUT;
            if (flags & BOXER_INIT_STDOUT_TRUNCATED)
              obuf.truncated = true;
            if (flags & BOXER_INIT_STDERR_TRUNCATED)
              ebuf.truncated = true;
            exited = true;
          }
          break;
        case BOXER_INIT_ERROR:
          {
            cleanup_free char *msg = NULL;
            boxer_init_get_str (&rd, 1024, &msg);
            boxer_error_make (err, BOXER_ERR_INTERNAL, "boxer-init could not start the run: %s",
                              msg ? msg : "?");
            goto done;
          }
        default:
          break;
        }
    }
  r = 0;

done:
  if (!exited)
    out->wall_ms = boxer_now_ms () - t0;
  out->finished_at = time (NULL);
  if (r == 0 || *gone)
    {
      out->stdout_truncated = obuf.truncated;
      out->stderr_truncated = ebuf.truncated;
      out->stdout_data = boxer_buf_steal (&obuf, &out->stdout_len);
      out->stderr_data = boxer_buf_steal (&ebuf, &out->stderr_len);
    }
  boxer_buf_release (&obuf);
  boxer_buf_release (&ebuf);
  if (out->timed_out)
    {
      out->exit_code = 128 + SIGKILL;
      out->signal = SIGKILL;
    }
  return r;
}

int
boxer_executor_run_warm (struct boxer_executor *ex, const struct boxer_run_job *job,
                         struct boxer_warm_sandbox *sb, struct boxer_run_result *out,
                         int *output_fd, struct boxer_error **err)
{
  const struct boxer_run_request *req = job->req;
  struct boxer_init_link link;
  struct run run;
  long long t0 = boxer_now_ms (), t_end;
  bool gone = false;
  int r = -1;

  memset (out, 0, sizeof *out);
  out->memory_peak_bytes = -1;
  *output_fd = -1;
  boxer_init_link_init (&link, sb->to_init, sb->from_init);
  sb->to_init = sb->from_init = -1;
  warm_as_run (ex, sb, &run);
  boxer_executor_warm_close (sb);

  if (!boxer_executor_warm_fits (sb, req, job->image))
    {
      boxer_error_make (err, BOXER_ERR_INTERNAL, "a warm sandbox of another image");
      goto done;
    }
  if (run.cgroup && boxer_cgroup_set_limits (run.cgroup, &req->limits, err) < 0)
    goto done;
  if (boxer_runfiles_link_uploads (&run.files, ex->cfg, run.bundle, job->image->rootfs, req, err)
      < 0)
    goto done;
  out->setup_ms = boxer_now_ms () - t0;
  if (execute_init (&run, &link, job, out, &gone, err) < 0 && !gone)
    goto done;

  if (run.cgroup)
    {
      struct boxer_cgroup_stats stats;
      cleanup_error struct boxer_error *e2 = NULL;
      if (boxer_cgroup_read_stats (run.cgroup, &stats, &e2) == 0)
        {
          out->oom_killed = stats.oom_killed;
          out->memory_peak_bytes = stats.memory_peak_bytes;
        }
    }
  if (gone)
    {
      /* The sandbox died before its program's end was told: at its
         memory limit the host killed it, as a cold run's would be.
         Anything else is ours to explain (and not the worker going away,
         which is what BOXER_ERR_RUNTIME says to the caller).  */
      boxer_error_free (*err);
      *err = NULL;
      if (!out->oom_killed)
        {
          boxer_error_make (err, BOXER_ERR_INTERNAL, "the warm sandbox %s died during the run",
                            run.id);
          goto done;
        }
      out->exit_code = 128 + SIGKILL;
      out->signal = SIGKILL;
    }
  if (boxer_runfiles_open_output (&run.files, output_fd, err) < 0)
    goto done;
  memcpy (out->id, job->id, sizeof out->id);
  out->image = xstrdup (req->image);
  out->image_digest = xstrdup (job->image->digest);
  r = 0;

done:
  t_end = boxer_now_ms ();
  boxer_init_link_release (&link);
  if (r < 0)
    {
      run_teardown (&run);
      boxer_run_result_release (out);
      return -1;
    }
  /* Nothing of the run may go on while its outputs are read.  */
  warm_kill (ex, &run);
  warm_from_run (&run, sb);
  out->teardown_ms = boxer_now_ms () - t_end;
  return 0;
}

/* --- batches ------------------------------------------------------------- */

/* Report every run of the batch not yet reported with what happened to
   the sandbox: its memory ran out (oom: oom_killed, as a run's), or
   something nobody can explain (an error of the run).  */
static int
report_unfinished (const struct boxer_batch_job *job, const bool *done, bool oom)
{
  struct boxer_error e = { .category = BOXER_ERR_INTERNAL,
                           .msg = (char *) "the batch's sandbox died before this run ended" };

  for (size_t i = 0; i < job->batch->nruns; i++)
    {
      struct boxer_run_result res = {
        .exit_code = 128 + SIGKILL, .signal = SIGKILL, .oom_killed = true,
        .memory_peak_bytes = -1, .stdout_data = (char *) "", .stderr_data = (char *) "",
        .started_at = time (NULL), .finished_at = time (NULL),
      };
      if (done[i])
        continue;
      if (job->on_run (job->data, i, oom ? &res : NULL, oom ? NULL : &e) != 0)
        return -1;
    }
  return 0;
}

int
boxer_executor_run_batch (struct boxer_executor *ex, const struct boxer_batch_job *job,
                          struct boxer_warm_sandbox *sb, bool warm, long long *boot_ms,
                          struct boxer_error **err)
{
  const struct boxer_batch_request *batch = job->batch;
  cleanup_free bool *done = xmalloc0 (batch->nruns * sizeof *done);
  cleanup_free char *files_dir = NULL;
  cleanup_close int files_fd = -1;
  struct boxer_init_link link;
  struct run run;
  bool gone = false;
  int r = -1;

  if (warm && !boxer_executor_warm_fits (sb, &batch->req, job->image))
    {
      boxer_executor_warm_destroy (ex, sb);
      warm = false;
    }
  /* No sandbox waiting: boot one now, the batch's one boot.  */
  *boot_ms = -1;
  if (!warm)
    {
      long long t0 = boxer_now_ms ();
      if (boxer_executor_warm_claim (ex, job->image->digest, batch->req.network, NULL, sb, err)
              < 0
          || boxer_executor_warm_boot (ex, sb, &batch->req.limits, err) < 0)
        return -1;
      *boot_ms = boxer_now_ms () - t0;
    }

  boxer_init_link_init (&link, sb->to_init, sb->from_init);
  sb->to_init = sb->from_init = -1;
  warm_as_run (ex, sb, &run);
  boxer_executor_warm_close (sb);
  if (run.cgroup && boxer_cgroup_set_limits (run.cgroup, &batch->req.limits, err) < 0)
    goto done;
  files_dir = xasprintf ("%s/files", run.bundle);
  if (mkdir (files_dir, 0700) < 0 && errno != EEXIST)
    {
      boxer_error_errno (err, errno, "mkdir '%s'", files_dir);
      goto done;
    }
  files_fd = open (files_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (files_fd < 0)
    {
      boxer_error_errno (err, errno, "open '%s'", files_dir);
      goto done;
    }
  if (boxer_batch_drive (&link, ex->cfg, job, files_fd, done, &gone, err) == 0)
    r = 0;
  else if (gone)
    {
      /* The sandbox died: at its memory limit, what each run not yet
         ended is told; else nobody can say what happened to them.  */
      struct boxer_cgroup_stats stats = { 0 };
      cleanup_error struct boxer_error *e2 = NULL;
      if (run.cgroup)
        boxer_cgroup_read_stats (run.cgroup, &stats, &e2);
      boxer_error_free (*err);
      *err = NULL;
      if (report_unfinished (job, done, stats.oom_killed) < 0)
        boxer_error_make (err, BOXER_ERR_RUNTIME, "cancelled: the worker went away");
      else
        r = 0;
    }

done:
  boxer_init_link_release (&link);
  warm_kill (ex, &run);
  if (r < 0)
    {
      run_teardown (&run);
      return -1;
    }
  warm_from_run (&run, sb);
  return 0;
}

/* Sessions: sandboxes kept for many execs (executor/session.c).  */

/* Kill the run of INIT_RUN_ID, if any, and wait for its EXIT (or
   boxer-init's refusal, when there was none).  False when boxer-init did
   not answer in time or is gone (*gone).  */
static bool
session_end_run (struct boxer_init_link *l, bool *gone)
{
  cleanup_error struct boxer_error *err = NULL;
  struct boxer_init_writer w = { 0 };
  long long deadline = boxer_now_ms () + WARM_BACKSTOP_MS;

  boxer_init_frame_start (&w, BOXER_INIT_KILL, INIT_RUN_ID);
  boxer_init_put_u32 (&w, SIGKILL);
  if (boxer_init_link_queue (l, &w, &err) < 0)
    return false;
  for (;;)
    {
      struct boxer_init_event ev;
      bool cancelled;
      int n = boxer_init_link_next (l, deadline, -1, &cancelled, &ev, &err);
      if (n < 0)
        *gone = true;
      if (n <= 0)
        return false;
      if (ev.id == INIT_RUN_ID && (ev.type == BOXER_INIT_EXIT || ev.type == BOXER_INIT_ERROR))
        return true;
    }
}

int
boxer_executor_warm_set_limits (struct boxer_executor *ex, const struct boxer_warm_sandbox *sb,
                                const struct boxer_limits *limits, struct boxer_error **err)
{
  cleanup_free char *cg = cgroup_name (ex, sb->id);
  struct boxer_cgroup_stats stats = { .memory_peak_bytes = -1 };
  struct boxer_cgroup *c;
  int r;

  if (ex->cfg->ignore_cgroups)
    return 0;
  c = boxer_cgroup_open (cg);
  /* Below what the sandbox took to boot, the limit would kill it at once:
     say so, rather than hand out a session that is already dead.  */
  if (boxer_cgroup_read_stats (c, &stats, NULL) == 0
      && stats.memory_peak_bytes > limits->memory_mb * 1024 * 1024)
    {
      int64_t mib = (stats.memory_peak_bytes + 1024 * 1024 - 1) / (1024 * 1024);
      boxer_cgroup_close (c);
      return boxer_error_make (err, BOXER_ERR_INVALID,
                               "limits.memory_mb of %" PRId64 " is less than the sandbox took to "
                               "boot (%" PRId64 " MiB); ask for more, as the programs need room "
                               "too", limits->memory_mb, mib);
    }
  r = boxer_cgroup_set_limits (c, limits, err);
  boxer_cgroup_close (c);
  return r;
}

int
boxer_executor_session_exec (struct boxer_executor *ex, const struct boxer_warm_sandbox *sb,
                             struct boxer_init_link *l, const struct boxer_run_job *job,
                             struct boxer_run_result *out, bool *gone, struct boxer_error **err)
{
  cleanup_free char *cg = cgroup_name (ex, sb->id);
  struct run run = { .ex = ex, .lock_fd = -1 };
  int r;

  memset (out, 0, sizeof *out);
  out->memory_peak_bytes = -1;
  memcpy (run.id, sb->id, sizeof run.id);
  r = execute_init (&run, l, job, out, gone, err);
  if (r < 0 && !*gone)
    {
      /* Cancelled (its client went away): the session goes on, so its
         program must not.  Until boxer-init says it is over, the next exec
         could not start.  (Any other failure had no program started.)  */
      if ((*err)->category == BOXER_ERR_RUNTIME && !session_end_run (l, gone))
        boxer_log_warning ("session sandbox %s: a cancelled exec would not end", sb->id);
      boxer_run_result_release (out);
      return -1;
    }
  if (*gone)
    {
      /* The sandbox died under the exec: at its memory limit (the session
         ends with it), or for a reason that is ours to explain.  */
      struct boxer_cgroup *c = ex->cfg->ignore_cgroups ? NULL : boxer_cgroup_open (cg);
      struct boxer_cgroup_stats stats = { 0 };
      cleanup_error struct boxer_error *e2 = NULL;

      if (c && boxer_cgroup_read_stats (c, &stats, &e2) == 0 && stats.oom_killed)
        {
          boxer_error_release (err);
          out->oom_killed = true;
          out->exit_code = 128 + SIGKILL;
          out->signal = SIGKILL;
        }
      boxer_cgroup_close (c);
      if (!out->oom_killed)
        {
          boxer_error_release (err);
          boxer_run_result_release (out);
          return boxer_error_make (err, BOXER_ERR_INTERNAL, "the session's sandbox %s died",
                                   sb->id);
        }
    }
  return 0;
}
