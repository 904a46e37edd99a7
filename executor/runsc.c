#include <config.h>

#include "runsc.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "common/buf.h"
#include "common/fsutil.h"

/* How long the short runsc commands (version, kill, delete, probe) may take
   before we give up on them.  */
#define RUNSC_COMMAND_TIMEOUT_MS 10000

static int
pidfd_open_ (pid_t pid)
{
  return (int) syscall (SYS_pidfd_open, pid, 0);
}

/* In the child: stdio onto the given fds, everything else closed, a new
   session so the whole runsc process tree can be signalled at once.  */
static void __attribute__ ((noreturn))
exec_child (char *const argv[], int in_fd, int out_fd, int err_fd)
{
  sigset_t none;

  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  signal (SIGPIPE, SIG_DFL);
  setsid ();
  if (dup2 (in_fd, 0) < 0 || dup2 (out_fd, 1) < 0 || dup2 (err_fd, 2) < 0)
    _exit (127);
  /* The FastCGI listening socket and connection must not reach runsc.  */
  syscall (SYS_close_range, 3, ~0U, 0);
  execv (argv[0], argv);
  _exit (127);
}

static int
spawn (char *const argv[], int in_fd, int out_fd, int err_fd, pid_t *pid_out,
       struct boxer_error **err)
{
  pid_t pid = fork ();

  if (pid < 0)
    return boxer_error_errno (err, errno, "fork runsc");
  if (pid == 0)
    exec_child (argv, in_fd, out_fd, err_fd);
  *pid_out = pid;
  return 0;
}

/* Wait for pid (a runsc we spawned) until deadline, then kill its whole
   session.  Returns its exit status (0..255, 128 + signal) or -1.  */
static int
wait_until (pid_t pid, long long deadline, struct boxer_error **err)
{
  cleanup_close int pidfd = pidfd_open_ (pid);
  int status;

  if (pidfd >= 0)
    {
      struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
      long long left = deadline - boxer_now_ms ();
      while (poll (&pfd, 1, left > 0 ? (int) left : 0) < 0 && errno == EINTR)
        left = deadline - boxer_now_ms ();
      if (!(pfd.revents & POLLIN))
        {
          kill (-pid, SIGKILL);
          kill (pid, SIGKILL);
        }
    }
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return boxer_error_errno (err, errno, "waitpid");
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  return 128 + WTERMSIG (status);
}

/* Run a short runsc command to completion within the timeout, collecting
   its stdout (capped).  Returns its exit status (0..255) or -1.  */
static int
run_command (char *const argv[], struct boxer_buf *out, struct boxer_error **err)
{
  int pipefd[2];
  cleanup_close int null_fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
  cleanup_close int rd = -1;
  long long deadline = boxer_now_ms () + RUNSC_COMMAND_TIMEOUT_MS;
  pid_t pid = -1;

  if (null_fd < 0)
    return boxer_error_errno (err, errno, "open /dev/null");
  if (pipe2 (pipefd, O_CLOEXEC) < 0)
    return boxer_error_errno (err, errno, "pipe");
  rd = pipefd[0];
  if (spawn (argv, null_fd, pipefd[1], null_fd, &pid, err) < 0)
    {
      close (pipefd[1]);
      return -1;
    }
  close (pipefd[1]);

  for (;;)
    {
      char chunk[4096];
      struct pollfd pfd = { .fd = rd, .events = POLLIN };
      long long left = deadline - boxer_now_ms ();
      ssize_t n;

      if (left <= 0)
        {
          kill (-pid, SIGKILL);
          kill (pid, SIGKILL);
          waitpid (pid, NULL, 0);
          return boxer_error_make (err, BOXER_ERR_RUNTIME, "'%s %s' did not finish in %d s",
                                   argv[0], argv[argv[1] ? 1 : 0], RUNSC_COMMAND_TIMEOUT_MS / 1000);
        }
      if (poll (&pfd, 1, (int) left) < 0 && errno != EINTR)
        return boxer_error_errno (err, errno, "poll");
      if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      n = read (rd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      if (out)
        boxer_buf_append_capped (out, chunk, n);
    }

  /* stdout is closed; give the process what is left of the deadline.  */
  return wait_until (pid, deadline, err);
}

long
boxer_runsc_parse_version_date (const char *version)
{
  /* Find the first run of 8 digits starting with 20 (a year).  */
  for (const char *p = version; p && *p; p++)
    {
      size_t n = 0;
      while (p[n] >= '0' && p[n] <= '9')
        n++;
      if (n >= 8 && p[0] == '2' && p[1] == '0')
        {
          char d[9];
          memcpy (d, p, 8);
          d[8] = '\0';
          return strtol (d, NULL, 10);
        }
      if (n)
        p += n - 1;
    }
  return 0;
}

static char *
find_in_path (const char *name)
{
  const char *path = getenv ("PATH");
  cleanup_free char *copy = xstrdup (path && *path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  char *save = NULL;

  for (char *dir = strtok_r (copy, ":", &save); dir; dir = strtok_r (NULL, ":", &save))
    {
      char *candidate = xasprintf ("%s/%s", dir, name);
      if (*dir == '/' && access (candidate, X_OK) == 0)
        return candidate;
      free (candidate);
    }
  return NULL;
}

static int
read_version (struct boxer_runsc *rs, struct boxer_error **err)
{
  char *argv[] = { rs->path, (char *) "--version", NULL };
  cleanup_buf struct boxer_buf out;
  char *line, *nl;
  int r;

  boxer_buf_init (&out, 4096);
  r = run_command (argv, &out, err);
  if (r < 0)
    return -1;
  if (r != 0 || out.len == 0)
    return boxer_error_make (err, BOXER_ERR_RUNTIME, "'%s --version' failed (exit %d)", rs->path, r);
  /* "runsc version VERSION\nspec: ...".  */
  line = out.data;
  nl = strchr (line, '\n');
  if (nl)
    *nl = '\0';
  if (strncmp (line, "runsc version ", 14) == 0)
    line += 14;
  rs->version = xstrdup (line);
  rs->version_date = boxer_runsc_parse_version_date (rs->version);
  /* Older ones mistake every network namespace for the root one on current
     kernels and refuse sandbox networking; a version without a date (a
     local build) is taken on trust.  */
  if (rs->version_date > 0 && rs->version_date < BOXER_RUNSC_MIN_DATE)
    return boxer_error_make (err, BOXER_ERR_RUNTIME,
                             "runsc '%s' (%s) is older than %d; install a newer one with "
                             "contrib/build-runsc.sh or set runsc_path",
                             rs->path, rs->version, BOXER_RUNSC_MIN_DATE);
  return 0;
}

static int
probe_platform (struct boxer_runsc *rs, const char *platform, struct boxer_error **err)
{
  cleanup_free char *root = xasprintf ("%s/probe-%d", rs->root, (int) getpid ());
  cleanup_free char *root_flag = xasprintf ("--root=%s", root);
  cleanup_free char *platform_flag = xasprintf ("--platform=%s", platform);
  char *argv[8];
  int n = 0, r;

  argv[n++] = rs->path;
  argv[n++] = root_flag;
  argv[n++] = platform_flag;
  argv[n++] = (char *) "--network=none";
  if (rs->ignore_cgroups)
    argv[n++] = (char *) "--ignore-cgroups";
  argv[n++] = (char *) "do";
  argv[n++] = (char *) "/bin/true";
  argv[n] = NULL;

  if (boxer_mkdir_p (root, 0700, err) < 0)
    return -1;
  r = run_command (argv, NULL, err);
  boxer_rm_rf (root, NULL);
  if (r < 0)
    return -1;
  if (r != 0)
    return boxer_error_make (err, BOXER_ERR_RUNTIME, "platform '%s' does not work here (exit %d)",
                             platform, r);
  return 0;
}

int
boxer_runsc_init (struct boxer_runsc *rs, const char *path, const char *root,
                  const char *platform, bool ignore_cgroups, struct boxer_error **err)
{
  const char *candidates[] = { platform, "systrap", "ptrace" };
  cleanup_error struct boxer_error *first = NULL;

  memset (rs, 0, sizeof *rs);
  rs->ignore_cgroups = ignore_cgroups;
  rs->root = xstrdup (root);
  rs->path = path ? xstrdup (path) : find_in_path ("runsc");
  if (rs->path == NULL)
    return boxer_error_make (err, BOXER_ERR_RUNTIME,
                             "runsc not found on PATH; install it (contrib/build-runsc.sh) or set "
                             "runsc_path in the config");
  if (access (rs->path, X_OK) < 0)
    return boxer_error_make (err, BOXER_ERR_RUNTIME, "runsc '%s' is not executable: %s", rs->path,
                             strerror (errno));
  if (boxer_mkdir_p (rs->root, 0700, err) < 0)
    return -1;
  if (read_version (rs, err) < 0)
    return -1;

  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
    {
      struct boxer_error **slot = first ? NULL : &first;
      if (i > 0 && strcmp (candidates[i], platform) == 0)
        continue;
      if (probe_platform (rs, candidates[i], slot) == 0)
        {
          rs->platform = xstrdup (candidates[i]);
          return 0;
        }
    }
  return boxer_error_make (err, BOXER_ERR_RUNTIME,
                           "no runsc platform works here (%s); check that runsc runs as root",
                           first ? first->msg : "all probes failed");
}

void
boxer_runsc_release (struct boxer_runsc *rs)
{
  free (rs->path);
  free (rs->root);
  free (rs->platform);
  free (rs->version);
  memset (rs, 0, sizeof *rs);
}

int
boxer_runsc_run_detached (const struct boxer_runsc *rs, const char *bundle, const char *id,
                          const char *network, const char *log_path, int stdin_fd,
                          int stdout_fd, int stderr_fd, struct boxer_error **err)
{
  cleanup_free char *root_flag = xasprintf ("--root=%s", rs->root);
  cleanup_free char *platform_flag = xasprintf ("--platform=%s", rs->platform);
  cleanup_free char *log_flag = xasprintf ("--log=%s", log_path);
  cleanup_free char *network_flag = xasprintf ("--network=%s", network);
  long long deadline = boxer_now_ms () + RUNSC_COMMAND_TIMEOUT_MS;
  char *argv[16];
  pid_t pid = -1;
  int n = 0, r;

  argv[n++] = rs->path;
  argv[n++] = root_flag;
  argv[n++] = platform_flag;
  argv[n++] = network_flag;
  /* Each sandbox writes into a private in-memory layer over the shared,
     never-modified image rootfs.  */
  argv[n++] = (char *) "--overlay2=root:memory";
  argv[n++] = log_flag;
  argv[n++] = (char *) "--log-format=json";
  if (rs->ignore_cgroups)
    argv[n++] = (char *) "--ignore-cgroups";
  argv[n++] = (char *) "run";
  argv[n++] = (char *) "--detach";
  argv[n++] = (char *) "--bundle";
  argv[n++] = (char *) bundle;
  argv[n++] = (char *) id;
  argv[n] = NULL;

  if (spawn (argv, stdin_fd, stdout_fd, stderr_fd, &pid, err) < 0)
    return -1;
  /* Not run_command (): the sandbox keeps runsc's stdout, so it never
     reaches its end.  */
  r = wait_until (pid, deadline, err);
  if (r < 0)
    return -1;
  if (r != 0)
    {
      cleanup_free char *msg = boxer_runsc_log_error (log_path);
      return boxer_error_make (err, BOXER_ERR_INTERNAL, "runsc run --detach failed (exit %d): %s",
                               r, msg ? msg : "see its log");
    }
  return 0;
}

static int
simple (const struct boxer_runsc *rs, const char *what, char **args, struct boxer_error **err)
{
  cleanup_free char *root_flag = xasprintf ("--root=%s", rs->root);
  char *argv[8];
  int n = 0, r;

  argv[n++] = rs->path;
  argv[n++] = root_flag;
  while (*args && n < 7)
    argv[n++] = *args++;
  argv[n] = NULL;
  r = run_command (argv, NULL, err);
  if (r < 0)
    return -1;
  if (r != 0)
    return boxer_error_make (err, BOXER_ERR_RUNTIME, "runsc %s failed (exit %d)", what, r);
  return 0;
}

int
boxer_runsc_kill (const struct boxer_runsc *rs, const char *id, struct boxer_error **err)
{
  char *args[] = { (char *) "kill", (char *) "--all", (char *) id, (char *) "KILL", NULL };
  return simple (rs, "kill", args, err);
}

int
boxer_runsc_delete (const struct boxer_runsc *rs, const char *id, struct boxer_error **err)
{
  char *args[] = { (char *) "delete", (char *) "--force", (char *) id, NULL };
  cleanup_free char *sock = xasprintf ("%s/runsc-%s.sock", rs->root, id);
  cleanup_free char *lock = xasprintf ("%s/%s_sandbox:%s.lock", rs->root, id, id);
  int r = simple (rs, "delete", args, err);

  /* A sandbox that died on its own (its memory limit killed it as a
     session's limits were set) leaves these two behind its state, which
     delete removed: nothing of the container is there to use them.  */
  if (r == 0)
    {
      unlink (sock);
      unlink (lock);
    }
  return r;
}

int
boxer_runsc_cleanup_root (const struct boxer_runsc *rs, struct boxer_error **err)
{
  cleanup_free char *netns = xasprintf ("%s/null-netns", rs->root);

  /* Sandboxes starting at the same moment each mount it, so it can be
     stacked several times.  */
  for (int i = 0; i < 1024; i++)
    if (umount2 (netns, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
      {
        if (errno == EINVAL || errno == ENOENT)
          break;
        return boxer_error_errno (err, errno, "unmount '%s'", netns);
      }
  if (unlink (netns) < 0 && errno != ENOENT)
    return boxer_error_errno (err, errno, "remove '%s'", netns);
  return 0;
}

char *
boxer_runsc_log_error (const char *log_path)
{
  cleanup_free char *data = NULL;
  char *found = NULL;

  /* runsc logs little without --debug; a megabyte is plenty.  */
  if (boxer_read_file (log_path, 1 << 20, &data, NULL, NULL) < 0)
    return NULL;
  for (char *line = data; line && *line;)
    {
      char *nl = strchr (line, '\n');
      json_object *obj, *level, *msg;

      if (nl)
        *nl = '\0';
      obj = json_tokener_parse (line);
      if (obj && json_object_object_get_ex (obj, "level", &level)
          && strcmp (json_object_get_string (level), "error") == 0
          && json_object_object_get_ex (obj, "msg", &msg))
        {
          free (found);
          found = xstrdup (json_object_get_string (msg));
        }
      json_object_put (obj);
      line = nl ? nl + 1 : NULL;
    }
  return found;
}
