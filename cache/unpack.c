#include <config.h>

#include "unpack.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* What the unpacking process sends back: one fixed-size message.  */
#define MSG_MAX 1024

struct result
{
  int rc;
  int category;
  int errnum;
  int64_t bytes;
  int64_t entries;
  char msg[MSG_MAX];
};

/* Address space of the unpacking process: libarchive and zstd's largest
   windows fit many times over; a decompression bomb of memory does not.
   Not under AddressSanitizer (the suite's sanitizer build), which reserves
   terabytes of shadow address space and dies at its first mmap under any
   such limit.  */
#define UNPACK_AS_MAX (2LL * 1024 * 1024 * 1024)
#if defined(__SANITIZE_ADDRESS__)
# define UNPACK_LIMIT_AS 0
#elif defined(__has_feature)
# if __has_feature(address_sanitizer)
#  define UNPACK_LIMIT_AS 0
# endif
#endif
#ifndef UNPACK_LIMIT_AS
# define UNPACK_LIMIT_AS 1
#endif

/* The capabilities an unpack needs: give files the image's owners
   (CHOWN), set modes and times on them (FOWNER) and write into the
   directories the image made read-only (DAC_OVERRIDE).  */
static const int keep_caps[] = { CAP_CHOWN, CAP_FOWNER, CAP_DAC_OVERRIDE };

static int
drop_capabilities (void)
{
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2] = { { 0, 0, 0 }, { 0, 0, 0 } };

  for (int cap = 0; cap <= 63; cap++)
    {
      bool keep = false;
      for (size_t i = 0; i < sizeof keep_caps / sizeof *keep_caps; i++)
        keep = keep || keep_caps[i] == cap;
      /* EINVAL: past the last capability this kernel knows.  */
      if (!keep && prctl (PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
        return -1;
    }
  for (size_t i = 0; i < sizeof keep_caps / sizeof *keep_caps; i++)
    {
      data[keep_caps[i] / 32].effective |= 1u << (keep_caps[i] % 32);
      data[keep_caps[i] / 32].permitted |= 1u << (keep_caps[i] % 32);
    }
  if (syscall (SYS_capset, &hdr, data) < 0)
    return -1;
  return prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

/* Make rootfs this process's "/", with nothing of the host's file systems
   left reachable, no network and no way back.  */
static int
enter_rootfs (const char *rootfs, const char **step)
{
  struct rlimit as = { UNPACK_AS_MAX, UNPACK_AS_MAX };

  *step = "unshare";
  if (unshare (CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
    return -1;
  *step = "make mounts private";
  if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return -1;
  *step = "bind the rootfs";
  if (mount (rootfs, rootfs, NULL, MS_BIND, NULL) < 0)
    return -1;
  *step = "pivot_root";
  if (chdir (rootfs) < 0 || syscall (SYS_pivot_root, ".", ".") < 0)
    return -1;
  /* The old root sits on top of the new one: detach it.  */
  *step = "detach the host's root";
  if (umount2 (".", MNT_DETACH) < 0 || chdir ("/") < 0)
    return -1;
  *step = "limit memory";
  if (UNPACK_LIMIT_AS && setrlimit (RLIMIT_AS, &as) < 0)
    return -1;
  *step = "drop capabilities";
  return drop_capabilities ();
}

/* Close every fd but stderr, layer_fd and out_fd: the worker's sockets
   (fd 0 is the FastCGI listener) are none of the unpacker's business.  */
static void
close_others (int layer_fd, int out_fd)
{
  struct rlimit nofile;
  int null = open ("/dev/null", O_RDWR | O_CLOEXEC);

  if (null >= 0)
    {
      dup2 (null, 0);
      dup2 (null, 1);
      close (null);
    }
#ifdef SYS_close_range
  {
    int lo = layer_fd < out_fd ? layer_fd : out_fd;
    int hi = layer_fd < out_fd ? out_fd : layer_fd;
    if ((lo <= 3 || syscall (SYS_close_range, 3u, (unsigned) lo - 1, 0u) == 0)
        && (hi - lo <= 1 || syscall (SYS_close_range, (unsigned) lo + 1, (unsigned) hi - 1, 0u)
                              == 0)
        && syscall (SYS_close_range, (unsigned) hi + 1, ~0u, 0u) == 0)
      return;
  }
#endif
  /* A kernel before 5.9: one by one.  */
  if (getrlimit (RLIMIT_NOFILE, &nofile) < 0 || nofile.rlim_cur > 1 << 20)
    nofile.rlim_cur = 1 << 20;
  for (int fd = 3; fd < (int) nofile.rlim_cur; fd++)
    if (fd != layer_fd && fd != out_fd)
      close (fd);
}

struct job
{
  int layer_fd;
  const struct boxer_layer_limits *limits;
};

static int
apply_job (void *data, struct boxer_layer_usage *usage, struct boxer_error **err)
{
  struct job *job = data;

  return boxer_layer_apply_counted ("/", job->layer_fd, job->limits, usage, err);
}

static void
child (const char *rootfs, int keep_fd, boxer_unpack_fn fn, void *data,
       struct boxer_layer_usage *usage, int out_fd, pid_t parent)
{
  struct boxer_error *err = NULL;
  struct result res = { 0 };
  const char *step = "";

  pid_t pid;
  int status;

  /* A worker killed mid-unpack takes us with it: its temporary tree is
     then the sweep's, which must not find us still writing.  */
  if (prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid () != parent)
    _exit (1);
  signal (SIGPIPE, SIG_DFL);
  close_others (keep_fd, out_fd);
  /* The unpacker keeps uid 0, which may signal every root process of the
     host: in a PID namespace of its own there are none to see.  unshare
     moves only the children, so the work goes to a child of this process,
     which stays outside and passes its exit status on.  */
  if (unshare (CLONE_NEWPID) < 0)
    {
      boxer_error_errno (&err, errno, "confine the unpacking process: unshare pid namespace");
      res.rc = -1;
      res.category = err->category;
      res.errnum = err->errnum;
      snprintf (res.msg, sizeof res.msg, "%s", err->msg);
      (void) !write (out_fd, &res, sizeof res);
      _exit (0);
    }
  pid = fork ();
  if (pid < 0)
    _exit (1);
  if (pid > 0)
    {
      close (out_fd);
      while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
      _exit (WIFEXITED (status) ? WEXITSTATUS (status) : 1);
    }
  /* Its parent (outside the namespace) reads as pid 0 here, so the death
     signal cannot be checked against a race as above; that parent only
     dies with the worker, which it follows at once.  */
  if (prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
    _exit (1);
  if (enter_rootfs (rootfs, &step) < 0)
    boxer_error_errno (&err, errno, "confine the unpacking process: %s", step);
  else if (fn (data, usage, &err) == 0)
    res.rc = 0;
  if (err)
    {
      res.rc = -1;
      res.category = err->category;
      res.errnum = err->errnum;
      snprintf (res.msg, sizeof res.msg, "%s", err->msg);
    }
  res.bytes = usage->bytes;
  res.entries = usage->entries;
  (void) !write (out_fd, &res, sizeof res);
  _exit (0);
}

static int
read_result (int fd, struct result *res)
{
  size_t got = 0;

  while (got < sizeof *res)
    {
      ssize_t n = read (fd, (char *) res + got, sizeof *res - got);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return -1;
      got += (size_t) n;
    }
  return 0;
}

int
boxer_unpack_confined (const char *rootfs, int keep_fd, boxer_unpack_fn fn, void *data,
                       struct boxer_layer_usage *usage, struct boxer_error **err)
{
  cleanup_free char *canonical = realpath (rootfs, NULL);
  cleanup_close int rd = -1;
  struct result res;
  int fds[2], status = 0;
  pid_t pid, self = getpid ();

  if (canonical == NULL)
    return boxer_error_errno (err, errno, "resolve rootfs '%s'", rootfs);
  if (pipe2 (fds, O_CLOEXEC) < 0)
    return boxer_error_errno (err, errno, "pipe");
  rd = fds[0];
  pid = fork ();
  if (pid < 0)
    {
      close (fds[1]);
      return boxer_error_errno (err, errno, "fork the unpacking process");
    }
  if (pid == 0)
    {
      close (fds[0]);
      child (canonical, keep_fd, fn, data, usage, fds[1], self);
    }
  close (fds[1]);
  if (read_result (rd, &res) < 0)
    {
      memset (&res, 0, sizeof res);
      res.rc = -2;
    }
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (res.rc == -2 || !WIFEXITED (status) || WEXITSTATUS (status) != 0)
    return boxer_error_make (err, BOXER_ERR_INTERNAL,
                             "the unpacking process died (status %d) before it finished",
                             status);
  usage->bytes = res.bytes;
  usage->entries = res.entries;
  if (res.rc < 0)
    {
      res.msg[MSG_MAX - 1] = '\0';
      boxer_error_make (err, (enum boxer_error_category) res.category, "%s", res.msg);
      if (err && *err)
        (*err)->errnum = res.errnum;
      return -1;
    }
  return 0;
}

int
boxer_unpack_layer (const char *rootfs, int layer_fd, const struct boxer_layer_limits *limits,
                    struct boxer_layer_usage *usage, struct boxer_error **err)
{
  cleanup_close int ro = -1;
  struct job job = { -1, limits };
  char proc[64];

  /* Only root needs confining, and only root can.  */
  if (geteuid () != 0)
    return boxer_layer_apply_counted (rootfs, layer_fd, limits, usage, err);
  /* The blob goes in read-only: a descriptor of its own, not ours.  */
  snprintf (proc, sizeof proc, "/proc/self/fd/%d", layer_fd);
  ro = open (proc, O_RDONLY | O_CLOEXEC);
  if (ro < 0 || lseek (ro, lseek (layer_fd, 0, SEEK_CUR), SEEK_SET) < 0)
    return boxer_error_errno (err, errno, "reopen a layer read-only");
  job.layer_fd = ro;
  return boxer_unpack_confined (rootfs, ro, apply_job, &job, usage, err);
}
