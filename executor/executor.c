#include <config.h>

#include "executor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "capture.h"
#include "cgroup.h"
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
  bool runsc_clean;    /* runsc run exited normally and deleted its state */
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
  if (run->runsc_started && !run->runsc_clean)
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

static void
kill_sandbox (void *data, int attempt)
{
  struct run *run = data;
  cleanup_free char *cg = cgroup_name (run->ex, run->id);

  /* First ask runsc, which knows the sandbox; if that does not end it,
     kill every process in its cgroups, then runsc run's whole session.  */
  if (attempt == 0)
    boxer_runsc_kill (&run->ex->runsc, run->id, NULL);
  else if (!run->ex->cfg->ignore_cgroups && attempt == 1)
    boxer_cgroup_kill (cg);
  else
    boxer_runsc_delete (&run->ex->runsc, run->id, NULL);
}

static int
write_spec (struct run *run, const struct boxer_run_request *req, const struct boxer_image *image,
            struct boxer_error **err)
{
  cleanup_strv char **args = NULL;
  cleanup_strv char **env = NULL;
  cleanup_free char *spec = NULL;
  cleanup_free char *path = NULL;
  const char *cwd = req->workdir ? req->workdir : image->workdir && *image->workdir ? image->workdir : "/";
  struct boxer_spec_input in = {
    .rootfs = image->rootfs,
    .cwd = cwd,
    .hostname = "boxer",
    .cgroups_path = run->cgroup ? boxer_cgroup_path (run->cgroup) : NULL,
    .limits = &req->limits,
    .netns_path = run->net.netns_path,
    .host_network = run->net.mode == BOXER_NETWORK_HOST,
  };
  const struct boxer_spec_bind name_files[] = {
    { run->net.resolv_conf, "/etc/resolv.conf", false },
    { run->net.hosts, "/etc/hosts", false },
  };

  /* A run with a network gets Boxer's resolver list and a hosts file
     naming itself, whatever the image has.  */
  if (run->net.resolv_conf)
    {
      in.binds = name_files;
      in.n_binds = sizeof name_files / sizeof name_files[0];
    }
  /* Then the uploads and /output.  */
  cleanup_free struct boxer_spec_bind *all_binds
    = boxer_runfiles_binds (&run->files, req, in.binds, in.n_binds, &in.n_binds);
  in.binds = all_binds;
  if (boxer_spec_resolve_args (req->cmd, image->entrypoint, image->cmd, &args, err) < 0)
    return -1;
  env = boxer_spec_merge_env (image->env, req->env);
  in.args = args;
  in.env = env;
  if (boxer_spec_build (&in, &spec, err) < 0)
    return -1;
  path = xasprintf ("%s/config.json", run->bundle);
  return boxer_write_file_atomic (path, spec, strlen (spec), 0600, err);
}

/* Turn runsc's failure to start the program into the answer a shell
   would give (127: not found, 126: cannot execute), which the client can
   act on; anything else is Boxer's problem.  */
static int
classify_runsc_failure (const char *msg, const char *argv0, struct boxer_run_result *out,
                        struct boxer_error **err)
{
  const char *why = NULL;

  /* "failed to load /x: ..." for a path, "error finding executable "x" in
     PATH [...]: ..." for a bare name.  */
  if (strstr (msg, "failed to load") || strstr (msg, "creating process")
      || strstr (msg, "error finding executable"))
    {
      if (strstr (msg, "no such file or directory"))
        {
          out->exit_code = 127;
          why = "not found in the image";
        }
      else if (strstr (msg, "permission denied") || strstr (msg, "exec format error"))
        {
          out->exit_code = 126;
          why = "cannot be executed";
        }
    }
  if (why == NULL)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "runsc failed: %s", msg);

  free (out->stderr_data);
  out->stderr_data = xasprintf ("boxer: '%s': %s\n", argv0, why);
  out->stderr_len = strlen (out->stderr_data);
  out->stderr_truncated = false;
  return 0;
}

static int
open_stdio (const struct boxer_run_request *req, int child[3], int parent[3],
            struct boxer_error **err)
{
  int p[2];

  for (int i = 0; i < 3; i++)
    child[i] = parent[i] = -1;
  if (req->stdin_len > 0)
    {
      if (pipe2 (p, O_CLOEXEC) < 0)
        return boxer_error_errno (err, errno, "pipe");
      child[0] = p[0];
      parent[0] = p[1];
    }
  else if ((child[0] = open ("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
    return boxer_error_errno (err, errno, "open /dev/null");
  for (int i = 1; i < 3; i++)
    {
      if (pipe2 (p, O_CLOEXEC) < 0)
        return boxer_error_errno (err, errno, "pipe");
      parent[i] = p[0];
      child[i] = p[1];
    }
  return 0;
}

static void
close_all (int fds[3])
{
  for (int i = 0; i < 3; i++)
    if (fds[i] >= 0)
      {
        close (fds[i]);
        fds[i] = -1;
      }
}

static int
execute (struct run *run, const struct boxer_run_request *req, int cancel_fd,
         struct boxer_run_result *out, struct boxer_error **err)
{
  struct boxer_executor *ex = run->ex;
  cleanup_free char *log_path = xasprintf ("%s/runsc.log", run->bundle);
  int child[3], parent[3];
  struct boxer_capture cap = { 0 };
  long long t0;
  int r;

  if (open_stdio (req, child, parent, err) < 0)
    {
      close_all (child);
      close_all (parent);
      return -1;
    }

  t0 = boxer_now_ms ();
  out->started_at = time (NULL);
  r = boxer_runsc_spawn_run (&ex->runsc, run->bundle, run->id,
                             boxer_network_runsc_mode (run->net.mode), log_path, child[0],
                             child[1], child[2], &cap.pid, err);
  close_all (child);
  if (r < 0)
    {
      close_all (parent);
      return -1;
    }
  run->runsc_started = true;

  cap.stdin_fd = parent[0];
  cap.stdout_fd = parent[1];
  cap.stderr_fd = parent[2];
  cap.stdin_data = req->stdin_data;
  cap.stdin_len = req->stdin_len;
  cap.deadline_ms = t0 + req->limits.wall_clock_secs * 1000;
  cap.kill_cb = kill_sandbox;
  cap.kill_data = run;
  cap.cancel_fd = cancel_fd;
  boxer_buf_init (&cap.out, ex->cfg->output_limit_bytes);
  boxer_buf_init (&cap.err, ex->cfg->output_limit_bytes);
  r = boxer_capture_run (&cap, err);
  out->wall_ms = boxer_now_ms () - t0;
  out->finished_at = time (NULL);
  if (r < 0)
    {
      boxer_buf_release (&cap.out);
      boxer_buf_release (&cap.err);
      return -1;
    }

  if (cap.cancelled)
    {
      boxer_buf_release (&cap.out);
      boxer_buf_release (&cap.err);
      return boxer_error_make (err, BOXER_ERR_RUNTIME, "cancelled: the worker went away");
    }
  out->timed_out = cap.timed_out;
  out->stdout_truncated = cap.out.truncated;
  out->stderr_truncated = cap.err.truncated;
  out->stdout_data = boxer_buf_steal (&cap.out, &out->stdout_len);
  out->stderr_data = boxer_buf_steal (&cap.err, &out->stderr_len);

  if (WIFEXITED (cap.status))
    out->exit_code = WEXITSTATUS (cap.status);
  else
    out->exit_code = 128 + WTERMSIG (cap.status);
  /* runsc run reports the program's death by signal N as 128 + N.  */
  if (out->exit_code > 128 && out->exit_code <= 128 + 64)
    out->signal = out->exit_code - 128;
  run->runsc_clean = !out->timed_out && WIFEXITED (cap.status);

  if (out->timed_out)
    {
      /* Whatever runsc made of the kill, the program died of SIGKILL.  */
      out->exit_code = 128 + SIGKILL;
      out->signal = SIGKILL;
    }
  else if (out->exit_code == 128)
    {
      cleanup_free char *msg = boxer_runsc_log_error (log_path);
      if (msg)
        {
          run->runsc_clean = false;
          return classify_runsc_failure (msg, req->cmd ? req->cmd[0] : "entrypoint", out, err);
        }
    }
  return 0;
}

int
boxer_executor_run (struct boxer_executor *ex, const struct boxer_run_job *job,
                    struct boxer_run_result *out, int *output_fd, struct boxer_error **err)
{
  const struct boxer_run_request *req = job->req;
  const struct boxer_image *image = job->image;
  struct run run = { .ex = ex, .lock_fd = -1 };
  long long t0 = boxer_now_ms (), t_end;
  int r = -1;

  memset (out, 0, sizeof *out);
  out->memory_peak_bytes = -1;
  *output_fd = -1;

  if (run_claim (&run, job->id, err) < 0)
    goto done;
  if (boxer_runfiles_setup (&run.files, ex->cfg, run.bundle, image->rootfs, req, err) < 0)
    goto done;
  if (!ex->cfg->ignore_cgroups)
    {
      cleanup_free char *cg = cgroup_name (ex, run.id);
      if (boxer_cgroup_create (&run.cgroup, cg, &req->limits, err) < 0)
        goto done;
    }
  if (boxer_network_setup (ex->net, req->network, run.id, run.bundle, &run.net, err) < 0)
    goto done;
  if (write_spec (&run, req, image, err) < 0)
    goto done;
  out->setup_ms = boxer_now_ms () - t0;
  if (execute (&run, req, job->cancel_fd, out, err) < 0)
    goto done;

  if (run.cgroup)
    {
      struct boxer_cgroup_stats stats;
      if (boxer_cgroup_read_stats (run.cgroup, &stats, err) < 0)
        goto done;
      out->oom_killed = stats.oom_killed;
      out->memory_peak_bytes = stats.memory_peak_bytes;
    }
  if (boxer_runfiles_open_output (&run.files, output_fd, err) < 0)
    goto done;
  memcpy (out->id, run.id, sizeof run.id);
  out->image = xstrdup (req->image);
  out->image_digest = xstrdup (image->digest);
  r = 0;

done:
  /* Unmounts /output lazily: *output_fd keeps what the run wrote.  */
  t_end = boxer_now_ms ();
  run_teardown (&run);
  if (r < 0)
    boxer_run_result_release (out);
  else
    out->teardown_ms = boxer_now_ms () - t_end;
  return r;
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
