#include <config.h>

#include "cgroup.h"

#include <fcntl.h>
#include <inttypes.h>
#include <libcgroup.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "common/fsutil.h"

/* Why two backends.  On v1 and hybrid hosts libcgroup finds each
   controller's mount point and writes a run's values across three
   hierarchies; that is what it is good at.  On v2 a run is one directory
   with five flat files, and what matters is the delegation contract: touch
   nothing above the cgroup systemd delegated to us, move our own processes
   into a leaf, enable controllers in subtree_control of our subtree only.
   libcgroup 2.0 has no call for the leaf move, and its cgroup_create_cgroup
   enables controllers in subtree_control from the hierarchy root down,
   i.e. in cgroups that belong to systemd.  So v2 is written directly,
   with open/write of the documented files (Documentation/admin-guide/
   cgroup-v2.rst), which reads as plainly as the kernel's interface.  */

struct boxer_cgroup
{
  char *name;
  char *path;   /* linux.cgroupsPath: relative to the hierarchy root(s) */
};

/* The controllers whose limits Boxer sets; runsc handles the rest.  */
static const char *const owned_controllers[] = { "memory", "cpu", "pids" };

static struct
{
  enum boxer_cgroup_mode mode;
  char *root;       /* /sys/fs/cgroup */
  char *runs_rel;   /* v2: <base>/runs, relative to root */
  char *runs_dir;   /* v2: root + runs_rel */
} state;

const char *
boxer_cgroup_mode_name (enum boxer_cgroup_mode mode)
{
  switch (mode)
    {
    case BOXER_CGROUP_V1:
      return "v1";
    case BOXER_CGROUP_HYBRID:
      return "hybrid";
    case BOXER_CGROUP_V2:
      return "v2";
    case BOXER_CGROUP_NONE:
      break;
    }
  return "none";
}

static bool
exists_under (const char *root, const char *rel)
{
  cleanup_free char *p = xasprintf ("%s/%s", root, rel);
  return access (p, F_OK) == 0;
}

enum boxer_cgroup_mode
boxer_cgroup_detect (const char *root)
{
  cleanup_dir DIR *d = NULL;
  struct dirent *de;

  if (exists_under (root, "cgroup.controllers"))
    return BOXER_CGROUP_V2;
  /* v1: any hierarchy mounted below root (they have cgroup.procs at their
     roots; the cgroup2 mount of a hybrid host has it too).  */
  d = opendir (root);
  if (d == NULL)
    return BOXER_CGROUP_NONE;
  while ((de = readdir (d)) != NULL)
    {
      cleanup_free char *procs = NULL;
      if (de->d_name[0] == '.' || strcmp (de->d_name, "unified") == 0)
        continue;
      procs = xasprintf ("%s/cgroup.procs", de->d_name);
      if (exists_under (root, procs))
        return exists_under (root, "unified/cgroup.controllers") ? BOXER_CGROUP_HYBRID
                                                                 : BOXER_CGROUP_V1;
    }
  return BOXER_CGROUP_NONE;
}

int
boxer_cgroup_parse_own (const char *text, char **out, struct boxer_error **err)
{
  for (const char *line = text; line && *line;
       line = strchr (line, '\n'), line = line ? line + 1 : NULL)
    if (strncmp (line, "0::/", 4) == 0)
      {
        size_t len = strcspn (line + 3, "\n");
        *out = xstrndup (line + 3, len);
        return 0;
      }
  return boxer_error_make (err, BOXER_ERR_RUNTIME,
                           "no cgroup v2 entry (0::/...) in /proc/self/cgroup");
}

char *
boxer_cgroup_v2_base (const char *own, bool own_is_leaf)
{
  size_t len = strlen (own);

  while (len > 1 && own[len - 1] == '/')
    len--;
  if (own_is_leaf)
    {
      const char *slash = memrchr (own, '/', len);
      len = slash ? (size_t) (slash - own) : 0;
    }
  /* Processes at the root cannot be moved (kernel threads), and the root is
     the host's: a cgroup of our own below it instead.  */
  if (len <= 1)
    return xstrdup ("/boxer");
  return xstrndup (own, len);
}

void
boxer_cgroup_v2_settings (const struct boxer_limits *limits,
                          struct boxer_cgroup_setting out[BOXER_CGROUP_V2_SETTINGS])
{
  memset (out, 0, sizeof (struct boxer_cgroup_setting) * BOXER_CGROUP_V2_SETTINGS);
  out[0].file = "memory.max";
  snprintf (out[0].value, sizeof out[0].value, "%" PRId64, limits->memory_mb << 20);
  /* Over its limit a run is OOM-killed, never swapped out.  The file exists
     only where the kernel accounts swap.  */
  out[1].file = "memory.swap.max";
  strcpy (out[1].value, "0");
  out[1].optional = true;
  /* The sandbox (Sentry, gofer, the program) dies as a whole, as one
     process does on v1 when the kernel picks the Sentry.  */
  out[2].file = "memory.oom.group";
  strcpy (out[2].value, "1");
  out[3].file = "cpu.max";
  snprintf (out[3].value, sizeof out[3].value, "%" PRId64 " 100000",
            (int64_t) (limits->cpu_cores * 100000));
  out[4].file = "pids.max";
  snprintf (out[4].value, sizeof out[4].value, "%" PRId64,
            limits->pids_limit + BOXER_CGROUP_PIDS_HEADROOM);
}

static int
write_value (const char *path, const char *value, bool optional, struct boxer_error **err)
{
  cleanup_close int fd = open (path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);

  if (fd < 0 && optional && errno == ENOENT)
    return 0;
  if (fd < 0)
    return boxer_error_errno (err, errno, "open '%s'", path);
  /* cgroup files take one value per write ().  */
  if (write (fd, value, strlen (value)) < 0)
    return boxer_error_errno (err, errno, "write '%s' to '%s'", value, path);
  return 0;
}

int
boxer_cgroup_write_settings (const char *dir, const struct boxer_cgroup_setting *settings,
                             size_t n, struct boxer_error **err)
{
  for (size_t i = 0; i < n; i++)
    {
      cleanup_free char *path = xasprintf ("%s/%s", dir, settings[i].file);
      if (write_value (path, settings[i].value, settings[i].optional, err) < 0)
        return -1;
    }
  return 0;
}

/* Read one "key value" line out of a flat-keyed cgroup file's text.  */
static int64_t
keyed_value (const char *data, const char *key)
{
  size_t klen = strlen (key);

  for (const char *line = data; line && *line;
       line = strchr (line, '\n'), line = line ? line + 1 : NULL)
    if (strncmp (line, key, klen) == 0 && line[klen] == ' ')
      return strtoll (line + klen + 1, NULL, 10);
  return 0;
}

void
boxer_cgroup_v2_parse_stats (const char *events, const char *peak, struct boxer_cgroup_stats *out)
{
  /* oom_group_kill counts the group kills of memory.oom.group; oom_kill
     the processes killed.  Either means the run hit its limit.  */
  out->oom_killed = keyed_value (events, "oom_kill") > 0
                    || keyed_value (events, "oom_group_kill") > 0;
  out->memory_peak_bytes = peak ? strtoll (peak, NULL, 10) : -1;
}

/* --- v2 start-up: the delegated layout ----------------------------------- */

/* Move every process of dir into leaf, until no live thread is left in
   dir (the kernel's condition for enabling controllers below it).
   cgroup.threads, not cgroup.procs, is what says so: a process whose main
   thread has exited while others run stays listed in the source's
   cgroup.procs for as long as they do, although writing its pid moved
   them; a process that is exiting is listed until its exit completes.  A
   process may also fork while we move it.  So: move what is listed, look
   again, give up only after timeout_ms.  */
int
boxer_cgroup_v2_move_procs (const char *dir, const char *leaf, int timeout_ms,
                            struct boxer_error **err)
{
  cleanup_free char *from = xasprintf ("%s/cgroup.procs", dir);
  cleanup_free char *threads = xasprintf ("%s/cgroup.threads", dir);
  cleanup_free char *to = xasprintf ("%s/cgroup.procs", leaf);
  cleanup_free char *left = NULL;
  long long deadline = boxer_now_ms () + timeout_ms;

  for (;;)
    {
      cleanup_free char *data = NULL;

      if (boxer_read_file (from, 1 << 20, &data, NULL, err) < 0)
        return -1;
      for (char *p = data; *p;)
        {
          char *end;
          long pid = strtol (p, &end, 10);
          char num[24];
          if (end == p)
            break;
          snprintf (num, sizeof num, "%ld", pid);
          /* ESRCH: it exited meanwhile.  */
          (void) write_value (to, num, false, NULL);
          p = end;
          while (*p == '\n')
            p++;
        }
      free (left);
      left = NULL;
      if (boxer_read_file (threads, 1 << 20, &left, NULL, err) < 0)
        return -1;
      if (*left == '\0')
        return 0;
      if (boxer_now_ms () >= deadline)
        break;
      nanosleep (&(struct timespec) { .tv_nsec = 10 * 1000 * 1000 }, NULL);
    }
  left[strcspn (left, "\n")] = '\0';
  return boxer_error_make (err, BOXER_ERR_RUNTIME,
                           "cannot move the processes of '%s' to '%s' (thread %s is still there "
                           "after %d ms; stop what else runs in the unit Boxer was started in)",
                           dir, leaf, left, timeout_ms);
}

static int
mkdir_cgroup (const char *dir, struct boxer_error **err)
{
  if (mkdir (dir, 0755) < 0 && errno != EEXIST)
    return boxer_error_errno (err, errno, "create cgroup '%s'", dir);
  return 0;
}

/* Enable memory, cpu and pids for the children of dir.  */
static int
enable_controllers (const char *dir, struct boxer_error **err)
{
  cleanup_free char *avail_path = xasprintf ("%s/cgroup.controllers", dir);
  cleanup_free char *subtree = xasprintf ("%s/cgroup.subtree_control", dir);
  cleanup_free char *avail = NULL;

  if (boxer_read_file (avail_path, 4096, &avail, NULL, err) < 0)
    return -1;
  for (size_t i = 0; i < sizeof owned_controllers / sizeof owned_controllers[0]; i++)
    {
      const char *c = owned_controllers[i];
      size_t len = strlen (c);
      bool found = false;
      char word[16];

      for (const char *p = avail; *p && !found; p += strcspn (p, " \n"), p += strspn (p, " \n"))
        found = strncmp (p, c, len) == 0 && (p[len] == ' ' || p[len] == '\n' || p[len] == '\0');
      if (!found)
        return boxer_error_make (err, BOXER_ERR_RUNTIME,
                                 "the cgroup v2 controller '%s' is not delegated to '%s' "
                                 "(start Boxer in a systemd unit with Delegate=yes, see "
                                 "contrib/systemd/boxer-executor.service, or set ignore_cgroups)",
                                 c, dir);
      snprintf (word, sizeof word, "+%s", c);
      if (write_value (subtree, word, false, err) < 0)
        return -1;
    }
  return 0;
}

static int
v2_init (struct boxer_error **err)
{
  cleanup_free char *self = NULL;
  cleanup_free char *own = NULL;
  cleanup_free char *base = NULL;
  cleanup_free char *base_dir = NULL;
  cleanup_free char *leaf = NULL;
  cleanup_free char *runs = NULL;
  size_t olen, llen;
  bool in_leaf = false;

  if (boxer_read_file ("/proc/self/cgroup", 65536, &self, NULL, err) < 0
      || boxer_cgroup_parse_own (self, &own, err) < 0)
    return -1;
  /* Already in the leaf of a layout made earlier (the pool restarted within
     the same unit): the layout is our parent's.  */
  olen = strlen (own);
  llen = strlen (BOXER_CGROUP_V2_LEAF);
  if (olen > llen + 1 && own[olen - llen - 1] == '/'
      && strcmp (own + olen - llen, BOXER_CGROUP_V2_LEAF) == 0)
    {
      cleanup_free char *sibling = xasprintf ("%.*s" BOXER_CGROUP_V2_RUNS, (int) (olen - llen), own);
      in_leaf = exists_under (state.root, sibling);
    }
  base = boxer_cgroup_v2_base (own, in_leaf);
  base_dir = xasprintf ("%s%s", state.root, base);
  leaf = xasprintf ("%s/" BOXER_CGROUP_V2_LEAF, base_dir);
  runs = xasprintf ("%s/" BOXER_CGROUP_V2_RUNS, base_dir);

  if (mkdir_cgroup (base_dir, err) < 0 || mkdir_cgroup (leaf, err) < 0)
    return -1;
  /* The whole delegated cgroup is ours (that is what Delegate=yes means):
     whatever else runs in it goes to the leaf too.  */
  if (strcmp (base, own) == 0 && boxer_cgroup_v2_move_procs (base_dir, leaf, 5000, err) < 0)
    return -1;
  if (strcmp (base, "/boxer") == 0)
    {
      /* Not below our own cgroup: only ourselves go to the leaf.  */
      char num[24];
      cleanup_free char *procs = xasprintf ("%s/cgroup.procs", leaf);
      snprintf (num, sizeof num, "%d", (int) getpid ());
      if (write_value (procs, num, false, err) < 0)
        return -1;
    }
  if (enable_controllers (base_dir, err) < 0 || mkdir_cgroup (runs, err) < 0
      || enable_controllers (runs, err) < 0)
    return -1;
  state.runs_rel = xasprintf ("%s/" BOXER_CGROUP_V2_RUNS, base);
  state.runs_dir = steal_pointer (&runs);
  return 0;
}

int
boxer_cgroup_global_init (const char *root, struct boxer_error **err)
{
  int r;

  free (state.root);
  free (state.runs_rel);
  free (state.runs_dir);
  memset (&state, 0, sizeof state);
  state.root = xstrdup (root);
  state.mode = boxer_cgroup_detect (root);
  switch (state.mode)
    {
    case BOXER_CGROUP_NONE:
      return boxer_error_make (err, BOXER_ERR_RUNTIME,
                               "no cgroup file system at '%s'; mount it or set ignore_cgroups",
                               root);
    case BOXER_CGROUP_V2:
      if (v2_init (err) < 0)
        return boxer_error_wrap (err, "set up the cgroup v2 layout of runs");
      return 0;
    case BOXER_CGROUP_V1:
    case BOXER_CGROUP_HYBRID:
      break;
    }
  r = cgroup_init ();
  if (r != 0)
    return boxer_error_make (err, BOXER_ERR_RUNTIME,
                             "cannot use cgroups (%s); mount the cgroup v1 memory, cpu and pids "
                             "controllers or set ignore_cgroups",
                             cgroup_strerror (r));
  state.runs_dir = xstrdup (root);
  return 0;
}

enum boxer_cgroup_mode
boxer_cgroup_mode (void)
{
  return state.mode;
}

const char *
boxer_cgroup_runs_dir (void)
{
  return state.runs_dir ? state.runs_dir : "";
}

/* --- runs ---------------------------------------------------------------- */

static char *
controller_dir (const char *controller, const char *name)
{
  char *mount = NULL;
  char *dir;

  if (state.mode == BOXER_CGROUP_V2)
    return xasprintf ("%s/%s", state.runs_dir, name);
  if (cgroup_get_subsys_mount_point (controller, &mount) != 0 || mount == NULL)
    return NULL;
  dir = xasprintf ("%s/%s", mount, name);
  free (mount);
  return dir;
}

static bool
v1_has (const char *controller, const char *file)
{
  cleanup_free char *dir = controller_dir (controller, "");
  cleanup_free char *path = dir ? xasprintf ("%s%s", dir, file) : NULL;
  return path && access (path, F_OK) == 0;
}

static int
v1_create (const char *name, const struct boxer_limits *limits, struct boxer_error **err)
{
  struct cgroup *cg = cgroup_new_cgroup (name);
  struct cgroup_controller *c;
  int r;

  if (cg == NULL)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "cgroup '%s': cannot allocate", name);

  c = cgroup_add_controller (cg, "memory");
  if (c == NULL
      || cgroup_add_value_int64 (c, "memory.limit_in_bytes", limits->memory_mb << 20) != 0)
    goto fail;
  /* Memory plus swap, where the kernel accounts swap: without it a run over
     its limit swaps instead of being OOM-killed.  After limit_in_bytes
     (libcgroup writes in order): memsw may never be below it.  */
  if (v1_has ("memory", "memory.memsw.limit_in_bytes")
      && cgroup_add_value_int64 (c, "memory.memsw.limit_in_bytes", limits->memory_mb << 20) != 0)
    goto fail;
  c = cgroup_add_controller (cg, "cpu");
  if (c == NULL || cgroup_add_value_int64 (c, "cpu.cfs_period_us", 100000) != 0
      || cgroup_add_value_int64 (c, "cpu.cfs_quota_us",
                                 (int64_t) (limits->cpu_cores * 100000)) != 0)
    goto fail;
  c = cgroup_add_controller (cg, "pids");
  if (c == NULL
      || cgroup_add_value_int64 (c, "pids.max",
                                 limits->pids_limit + BOXER_CGROUP_PIDS_HEADROOM) != 0)
    goto fail;

  r = cgroup_create_cgroup (cg, 0);
  cgroup_free (&cg);
  if (r != 0)
    {
      boxer_cgroup_remove (name, NULL);
      return boxer_error_make (err, BOXER_ERR_INTERNAL, "create cgroup '%s': %s", name,
                               cgroup_strerror (r));
    }
  return 0;

fail:
  cgroup_free (&cg);
  return boxer_error_make (err, BOXER_ERR_INTERNAL, "cgroup '%s': cannot set up controllers",
                           name);
}

static int
v2_create (const char *name, const struct boxer_limits *limits, struct boxer_error **err)
{
  cleanup_free char *dir = xasprintf ("%s/%s", state.runs_dir, name);
  struct boxer_cgroup_setting settings[BOXER_CGROUP_V2_SETTINGS];

  if (mkdir (dir, 0755) < 0)
    return boxer_error_errno (err, errno, "create cgroup '%s'", dir);
  boxer_cgroup_v2_settings (limits, settings);
  if (boxer_cgroup_write_settings (dir, settings, BOXER_CGROUP_V2_SETTINGS, err) < 0)
    {
      rmdir (dir);
      return -1;
    }
  return 0;
}

static struct boxer_cgroup *
cgroup_handle (const char *name)
{
  struct boxer_cgroup *bc = xmalloc0 (sizeof *bc);

  bc->name = xstrdup (name);
  bc->path = state.mode == BOXER_CGROUP_V2 ? xasprintf ("%s/%s", state.runs_rel, name)
                                           : xasprintf ("/%s", name);
  return bc;
}

int
boxer_cgroup_create (struct boxer_cgroup **out, const char *name,
                     const struct boxer_limits *limits, struct boxer_error **err)
{
  int r;

  r = state.mode == BOXER_CGROUP_V2 ? v2_create (name, limits, err)
                                    : v1_create (name, limits, err);
  if (r < 0)
    return -1;
  *out = cgroup_handle (name);
  return 0;
}

struct boxer_cgroup *
boxer_cgroup_open (const char *name)
{
  return cgroup_handle (name);
}

/* v1: through the controllers' files, in an order the kernel takes when
   lowering (memsw never below limit_in_bytes at any moment).  */
static int
v1_set_limits (const char *name, const struct boxer_limits *limits, struct boxer_error **err)
{
  struct
  {
    const char *controller, *file;
    int64_t value;
    bool optional;
  } settings[] = {
    { "memory", "memory.limit_in_bytes", limits->memory_mb << 20, false },
    { "memory", "memory.memsw.limit_in_bytes", limits->memory_mb << 20, true },
    { "cpu", "cpu.cfs_quota_us", (int64_t) (limits->cpu_cores * 100000), false },
    { "pids", "pids.max", limits->pids_limit + BOXER_CGROUP_PIDS_HEADROOM, false },
  };

  for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
    {
      cleanup_free char *dir = controller_dir (settings[i].controller, name);
      cleanup_free char *path = dir ? xasprintf ("%s/%s", dir, settings[i].file) : NULL;
      char value[32];

      if (path == NULL)
        return boxer_error_make (err, BOXER_ERR_INTERNAL, "cgroup '%s': no %s controller", name,
                                 settings[i].controller);
      snprintf (value, sizeof value, "%lld", (long long) settings[i].value);
      if (write_value (path, value, settings[i].optional, err) < 0)
        return -1;
    }
  return 0;
}

int
boxer_cgroup_set_limits (const struct boxer_cgroup *cg, const struct boxer_limits *limits,
                         struct boxer_error **err)
{
  struct boxer_cgroup_setting settings[BOXER_CGROUP_V2_SETTINGS];
  cleanup_free char *dir = NULL;

  if (state.mode != BOXER_CGROUP_V2)
    return v1_set_limits (cg->name, limits, err);
  dir = xasprintf ("%s/%s", state.runs_dir, cg->name);
  boxer_cgroup_v2_settings (limits, settings);
  return boxer_cgroup_write_settings (dir, settings, BOXER_CGROUP_V2_SETTINGS, err);
}

const char *
boxer_cgroup_path (const struct boxer_cgroup *cg)
{
  return cg->path;
}

int
boxer_cgroup_read_stats (const struct boxer_cgroup *cg, struct boxer_cgroup_stats *out,
                         struct boxer_error **err)
{
  cleanup_free char *dir = controller_dir ("memory", cg->name);
  cleanup_free char *a = NULL;
  cleanup_free char *b = NULL;
  cleanup_free char *data = NULL;
  cleanup_free char *peak = NULL;

  if (dir == NULL)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "the memory cgroup controller is not mounted");
  if (state.mode == BOXER_CGROUP_V2)
    {
      a = xasprintf ("%s/memory.events", dir);
      b = xasprintf ("%s/memory.peak", dir);
      if (boxer_read_file (a, 65536, &data, NULL, err) < 0)
        return -1;
      /* memory.peak: Linux 5.19 and later.  */
      if (access (b, F_OK) == 0 && boxer_read_file (b, 4096, &peak, NULL, err) < 0)
        return -1;
      boxer_cgroup_v2_parse_stats (data, peak, out);
      return 0;
    }
  a = xasprintf ("%s/memory.oom_control", dir);
  b = xasprintf ("%s/memory.max_usage_in_bytes", dir);
  if (boxer_read_file (a, 65536, &data, NULL, err) < 0
      || boxer_read_file (b, 4096, &peak, NULL, err) < 0)
    return -1;
  out->oom_killed = keyed_value (data, "oom_kill") > 0;
  out->memory_peak_bytes = strtoll (peak, NULL, 10);
  return 0;
}

static int
kill_procs (const char *dir)
{
  cleanup_free char *procs = xasprintf ("%s/cgroup.procs", dir);
  cleanup_free char *data = NULL;
  int killed = 0;

  if (boxer_read_file (procs, 1 << 20, &data, NULL, NULL) < 0)
    return 0;
  for (char *p = data; *p;)
    {
      char *end;
      long pid = strtol (p, &end, 10);
      if (end == p)
        break;
      if (pid > 1 && kill ((pid_t) pid, SIGKILL) == 0)
        killed++;
      p = end;
      while (*p == '\n')
        p++;
    }
  return killed;
}

int
boxer_cgroup_kill (const char *name)
{
  int killed = 0;

  if (state.mode == BOXER_CGROUP_V2)
    {
      cleanup_free char *dir = controller_dir (NULL, name);
      cleanup_free char *file = xasprintf ("%s/cgroup.kill", dir);
      /* cgroup.kill (Linux 5.14): the whole subtree, no race with forks.  */
      if (write_value (file, "1", false, NULL) == 0)
        return 1;
      return kill_procs (dir);
    }
  for (size_t i = 0; i < sizeof owned_controllers / sizeof owned_controllers[0]; i++)
    {
      cleanup_free char *dir = controller_dir (owned_controllers[i], name);
      if (dir)
        killed += kill_procs (dir);
    }
  return killed;
}

/* Remove dir, waiting briefly for the kernel to let go of processes that
   were just killed.  */
static int
rmdir_retry (const char *dir)
{
  for (int attempt = 0; attempt < 50; attempt++)
    {
      if (rmdir (dir) == 0 || errno == ENOENT)
        return 0;
      if (errno != EBUSY)
        return -1;
      nanosleep (&(struct timespec) { .tv_nsec = 20 * 1000 * 1000 }, NULL);
    }
  return -1;
}

/* Remove dir and the cgroups below it (runsc may make some in a cgroup it
   was given), deepest first, at most depth levels down.  */
static int
rmdir_tree (const char *dir, int depth)
{
  cleanup_dir DIR *d = depth > 0 ? opendir (dir) : NULL;
  struct dirent *de;

  while (d && (de = readdir (d)) != NULL)
    if (de->d_type == DT_DIR && de->d_name[0] != '.')
      {
        cleanup_free char *sub = xasprintf ("%s/%s", dir, de->d_name);
        rmdir_tree (sub, depth - 1);
      }
  return rmdir_retry (dir);
}

int
boxer_cgroup_remove (const char *name, struct boxer_error **err)
{
  struct cgroup_mount_point info;
  void *handle = NULL;
  int r, failed = 0;

  if (name == NULL || strncmp (name, BOXER_CGROUP_PREFIX, strlen (BOXER_CGROUP_PREFIX)) != 0
      || strchr (name, '/'))
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "refusing to remove cgroup '%s'",
                             name ? name : "(null)");

  boxer_cgroup_kill (name);
  if (state.mode == BOXER_CGROUP_V2)
    {
      cleanup_free char *dir = controller_dir (NULL, name);
      if (rmdir_tree (dir, 4) < 0)
        return boxer_error_errno (err, errno, "remove cgroup '%s'", dir);
      return 0;
    }
  /* Every hierarchy, not just the owned ones: a killed runsc leaves the
     directories it created in the others.  */
  for (r = cgroup_get_controller_begin (&handle, &info); r == 0;
       r = cgroup_get_controller_next (&handle, &info))
    {
      cleanup_free char *dir = xasprintf ("%s/%s", info.path, name);
      if (rmdir_retry (dir) < 0 && !failed)
        {
          failed = errno;
          boxer_error_errno (err, errno, "remove cgroup '%s'", dir);
        }
    }
  cgroup_get_controller_end (&handle);
  /* And the hierarchies libcgroup lists no controller of, where runsc
     makes its directories too and leaves them when its sandbox is killed
     rather than deleted: systemd's named one, a hybrid host's unified one.
     The controllers' aliases (cpu -> cpu,cpuacct) are links, skipped.  */
  {
    cleanup_dir DIR *d = opendir (state.root ? state.root : "/sys/fs/cgroup");
    struct dirent *de;

    while (d && (de = readdir (d)) != NULL)
      {
        cleanup_free char *dir = NULL;
        if (de->d_type != DT_DIR || de->d_name[0] == '.')
          continue;
        dir = xasprintf ("%s/%s/%s", state.root ? state.root : "/sys/fs/cgroup", de->d_name, name);
        if (rmdir_tree (dir, 4) < 0 && !failed)
          {
            failed = errno;
            boxer_error_errno (err, errno, "remove cgroup '%s'", dir);
          }
      }
  }
  return failed ? -1 : 0;
}

void
boxer_cgroup_close (struct boxer_cgroup *cg)
{
  if (cg == NULL)
    return;
  free (cg->name);
  free (cg->path);
  free (cg);
}

int
boxer_cgroup_destroy (struct boxer_cgroup *cg, struct boxer_error **err)
{
  int r;

  if (cg == NULL)
    return 0;
  r = boxer_cgroup_remove (cg->name, err);
  free (cg->name);
  free (cg->path);
  free (cg);
  return r;
}

/* Add the names in dir that start with prefix to *seen, once each.  */
static void
collect (const char *dir, const char *prefix, char ***seen, size_t *nseen)
{
  cleanup_dir DIR *d = opendir (dir);
  struct dirent *de;

  while (d && (de = readdir (d)) != NULL)
    {
      bool dup = false;
      if (de->d_type != DT_DIR || strncmp (de->d_name, prefix, strlen (prefix)) != 0)
        continue;
      for (size_t i = 0; i < *nseen && !dup; i++)
        dup = strcmp ((*seen)[i], de->d_name) == 0;
      if (dup)
        continue;
      *seen = xrealloc (*seen, (*nseen + 1) * sizeof **seen);
      (*seen)[(*nseen)++] = xstrdup (de->d_name);
    }
}

int
boxer_cgroup_foreach (const char *prefix, int (*fn) (const char *name, void *data),
                      void *data, struct boxer_error **err)
{
  struct cgroup_mount_point info;
  void *handle = NULL;
  char **seen = NULL;
  size_t nseen = 0;
  int r, ret = 0;

  if (strncmp (prefix, BOXER_CGROUP_PREFIX, strlen (BOXER_CGROUP_PREFIX)) != 0)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "cgroup prefix '%s' is not Boxer's", prefix);
  if (state.mode == BOXER_CGROUP_V2)
    collect (state.runs_dir, prefix, &seen, &nseen);
  else
    {
      for (r = cgroup_get_controller_begin (&handle, &info); r == 0;
           r = cgroup_get_controller_next (&handle, &info))
        collect (info.path, prefix, &seen, &nseen);
      cgroup_get_controller_end (&handle);
    }

  for (size_t i = 0; i < nseen; i++)
    {
      if (ret == 0 && fn (seen[i], data) < 0)
        ret = boxer_error_make (err, BOXER_ERR_INTERNAL, "cgroup sweep stopped at '%s'", seen[i]);
      free (seen[i]);
    }
  free (seen);
  return ret;
}
