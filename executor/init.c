/* boxer-init: the first process of a sandbox.  It reads commands on its
   stdin and answers on its stdout (executor/init_proto.h): writes files,
   starts programs as an unprivileged user with their limits, relays their
   output as it comes, reports how they ended, and reads back a directory
   the programs wrote, from inside the sandbox, never following a link.
   Its own complaints go to stderr.

   It is PID 1 of its sandbox (or, in tests, a subreaper), so it also reaps
   every orphan.  One thread, one poll () loop; nothing it does for one
   program waits on another.  libc only, linked statically: it is mounted
   into images whatever libc they have, or none.  */
#include <config.h>

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "init_proto.h"

#define MAX_RUNS 64
#define MAX_FILES 16
/* After a program's main process has exited, how long its output pipes
   may stay open (a process it left behind) before they are closed.  */
#define DRAIN_GRACE_MS 1000

extern char **environ;

struct run
{
  uint32_t id;
  pid_t pid;                    /* 0: slot free */
  int in_fd, out_fd, err_fd;    /* -1 once closed */
  unsigned char *in_buf;        /* stdin not yet written */
  size_t in_len, in_off;
  bool in_eof;                  /* STDIN with no bytes came: close when written */
  uint64_t out_left, err_left;
  uint32_t flags;
  long long start_ms, deadline_ms, drain_until_ms;
  uint32_t uid;                 /* its uid, when START said KILL_UID; else 0 */
  bool exited;
  int status;
};

struct file
{
  uint32_t id;
  int fd;                       /* -1: slot free */
  int dir;                      /* its directory */
  char tmp[32];                 /* the name it is written under */
  char *name;                   /* the name it gets when whole */
  uint32_t uid, gid, mode;
};

/* Forget an open file: its partial data goes.  */
static void
file_drop (struct file *f)
{
  close (f->fd);
  if (f->tmp[0])
    unlinkat (f->dir, f->tmp, 0);
  close (f->dir);
  free (f->name);
  f->fd = f->dir = -1;
  f->name = NULL;
}

static struct run runs[MAX_RUNS];
static struct file files[MAX_FILES];
static int sigchld_pipe[2];

static long long
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
die (const char *what)
{
  fprintf (stderr, "boxer-init: %s: %s\n", what, strerror (errno));
  exit (1);
}

/* --- events -------------------------------------------------------------- */

static void
write_all (int fd, const unsigned char *p, size_t n)
{
  while (n > 0)
    {
      ssize_t w = write (fd, p, n);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        die ("write an event");
      p += w;
      n -= (size_t) w;
    }
}

static void
send_frame (struct boxer_init_writer *w)
{
  if (boxer_init_frame_finish (w) < 0)
    {
      fprintf (stderr, "boxer-init: an event did not fit a frame\n");
      exit (1);
    }
  write_all (STDOUT_FILENO, w->data, w->len);
}

static void
send_simple (uint8_t type, uint32_t id)
{
  struct boxer_init_writer w = { 0 };
  boxer_init_frame_start (&w, type, id);
  send_frame (&w);
  boxer_init_writer_release (&w);
}

static void
send_u32 (uint8_t type, uint32_t id, uint32_t v)
{
  struct boxer_init_writer w = { 0 };
  boxer_init_frame_start (&w, type, id);
  boxer_init_put_u32 (&w, v);
  send_frame (&w);
  boxer_init_writer_release (&w);
}

static void
send_bytes (uint8_t type, uint32_t id, const void *p, size_t n)
{
  struct boxer_init_writer w = { 0 };
  boxer_init_frame_start (&w, type, id);
  boxer_init_put_bytes (&w, p, n);
  send_frame (&w);
  boxer_init_writer_release (&w);
}

static void __attribute__ ((format (printf, 2, 3)))
send_error (uint32_t id, const char *fmt, ...)
{
  struct boxer_init_writer w = { 0 };
  char msg[512];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  boxer_init_frame_start (&w, BOXER_INIT_ERROR, id);
  boxer_init_put_str (&w, msg, strlen (msg));
  send_frame (&w);
  boxer_init_writer_release (&w);
}

/* --- files --------------------------------------------------------------- */

/* Paths the executor may not write: the kernel's and the outputs'.  */
static bool
path_is_reserved (const char *path)
{
  static const char *const reserved[] = { "/proc", "/sys", "/dev", "/output" };

  for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
    {
      size_t n = strlen (reserved[i]);
      if (strncmp (path, reserved[i], n) == 0 && (path[n] == '\0' || path[n] == '/'))
        return true;
    }
  return false;
}

/* The directory of path's last component, made (uid's and gid's, 0755)
   where missing, every component opened without following a link;
   *name_out points into path.  */
static int
open_parent (const char *path, bool create, uid_t uid, gid_t gid, const char **name_out)
{
  char part[NAME_MAX + 1];
  const char *c = path + 1;
  int dir = open ("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  while (dir >= 0)
    {
      size_t n = strcspn (c, "/");
      int next;

      if (c[n] == '\0')
        {
          *name_out = c;
          return dir;
        }
      if (n > NAME_MAX)
        {
          close (dir);
          errno = ENAMETOOLONG;
          return -1;
        }
      memcpy (part, c, n);
      part[n] = '\0';
      if (create && mkdirat (dir, part, 0755) == 0)
        {
          /* Made here: its owner's, as the file will be.  */
          if (fchownat (dir, part, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
            {
              close (dir);
              return -1;
            }
        }
      else if (create && errno != EEXIST)
        {
          close (dir);
          return -1;
        }
      next = openat (dir, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      close (dir);
      dir = next;
      c += n + 1;
    }
  return -1;
}

static struct file *
find_file (uint32_t id)
{
  for (int i = 0; i < MAX_FILES; i++)
    if (files[i].fd >= 0 && files[i].id == id)
      return &files[i];
  return NULL;
}

static void
file_open (uint32_t id, const unsigned char *p, size_t len)
{
  struct boxer_init_reader r;
  struct file *f = NULL;
  uint32_t uid, gid, mode;
  char *path = NULL;
  const char *name;
  int dir;

  boxer_init_reader_init (&r, p, len);
  if (!boxer_init_get_u32 (&r, &uid) || !boxer_init_get_u32 (&r, &gid)
      || !boxer_init_get_u32 (&r, &mode) || !boxer_init_get_str (&r, BOXER_INIT_PATH_MAX, &path)
      || !boxer_init_reader_done (&r))
    {
      send_error (id, "malformed FILE_OPEN");
      goto out;
    }
  if (!boxer_init_path_is_valid (path) || path_is_reserved (path))
    {
      send_error (id, "'%s' is not a path a file may be written to", path);
      goto out;
    }
  if (find_file (id))
    {
      send_error (id, "file %u is open already", id);
      goto out;
    }
  for (int i = 0; i < MAX_FILES && f == NULL; i++)
    if (files[i].fd < 0)
      f = &files[i];
  if (f == NULL)
    {
      send_error (id, "too many files open at once");
      goto out;
    }
  dir = open_parent (path, true, uid, gid, &name);
  if (dir < 0)
    {
      send_error (id, "cannot make the directories of '%s': %s", path, strerror (errno));
      goto out;
    }
  /* Private until it is whole, under a name of its own: owner and mode
     come with FILE_CLOSE, which renames it over whatever file (or link)
     the image had there, as a mount over it would hide that.  */
  snprintf (f->tmp, sizeof f->tmp, ".boxer-init.%u.%u", (unsigned) getpid (), id);
  f->fd = openat (dir, f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (f->fd < 0)
    {
      send_error (id, "cannot create '%s': %s", path, strerror (errno));
      close (dir);
      goto out;
    }
  f->dir = dir;
  f->name = strdup (name);
  if (f->name == NULL)
    die ("strdup");
  f->id = id;
  f->uid = uid;
  f->gid = gid;
  /* Never setuid, setgid or sticky.  */
  f->mode = mode & 0777;
out:
  free (path);
}

static void
file_data (uint32_t id, const unsigned char *p, size_t len)
{
  struct file *f = find_file (id);

  if (f == NULL)
    {
      send_error (id, "FILE_DATA for a file that is not open");
      return;
    }
  while (len > 0)
    {
      ssize_t w = write (f->fd, p, len);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        {
          send_error (id, "write: %s", w < 0 ? strerror (errno) : "no progress");
          file_drop (f);
          return;
        }
      p += w;
      len -= (size_t) w;
    }
}

static void
file_close (uint32_t id)
{
  struct file *f = find_file (id);
  int fd;

  if (f == NULL)
    {
      send_error (id, "FILE_CLOSE for a file that is not open");
      return;
    }
  fd = f->fd;
  if (fchown (fd, f->uid, f->gid) < 0 || fchmod (fd, f->mode) < 0)
    {
      send_error (id, "set owner and mode: %s", strerror (errno));
      file_drop (f);
      return;
    }
  /* A directory there stays: renaming a file over it fails.  */
  if (renameat (f->dir, f->tmp, f->dir, f->name) < 0)
    {
      send_error (id, "cannot put the file in place: %s", strerror (errno));
      file_drop (f);
      return;
    }
  f->tmp[0] = '\0';
  file_drop (f);
  send_simple (BOXER_INIT_FILE_DONE, id);
}

/* --- programs ------------------------------------------------------------ */

static struct run *
find_run (uint32_t id)
{
  for (int i = 0; i < MAX_RUNS; i++)
    if (runs[i].pid != 0 && runs[i].id == id)
      return &runs[i];
  return NULL;
}

/* In the child: a mount namespace of its own, where the places any user
   may write are fresh and empty, so that runs sharing the sandbox never
   meet there.  The rest of the tree is shared, and not theirs to write.  */
static int
own_tmp (void)
{
  static const char *const dirs[] = { "/tmp", "/var/tmp", "/dev/shm", "/output" };
  struct stat st;

  /* Mounts made here must not reach the namespace we came from: the
     mounts they land on are made private first.  Only those, not the whole
     tree (MS_REC): that costs every later path lookup of the run a great
     deal in gVisor (python3's start-up, three times as long).  A place
     that is not a mount point of its own has "/" as its mount.  */
  if (unshare (CLONE_NEWNS) < 0 || mount (NULL, "/", NULL, MS_PRIVATE, NULL) < 0)
    {
      dprintf (2, "boxer-init: cannot make the run a mount namespace: %s\n", strerror (errno));
      return -1;
    }
  if (mkdir ("/tmp", 01777) < 0 && errno != EEXIST)
    {
      dprintf (2, "boxer-init: cannot make /tmp: %s\n", strerror (errno));
      return -1;
    }
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
    {
      if (lstat (dirs[i], &st) < 0 || !S_ISDIR (st.st_mode))
        continue;
      if (mount (NULL, dirs[i], NULL, MS_PRIVATE, NULL) < 0 && errno != EINVAL)
        {
          dprintf (2, "boxer-init: cannot make %s private: %s\n", dirs[i], strerror (errno));
          return -1;
        }
      if (mount ("tmpfs", dirs[i], "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
        {
          dprintf (2, "boxer-init: cannot give the run its own %s: %s\n", dirs[i],
                   strerror (errno));
          return -1;
        }
    }
  return 0;
}

/* In the child: become the program, or die saying why (as a shell does:
   126 for a program that cannot run, 127 for one that is not there).  */
static void __attribute__ ((noreturn))
child (const struct boxer_init_start *s, int in, int out, int err)
{
  struct rlimit rl;
  sigset_t none;

  /* Our handlers are of no use to the program: gone before any signal
     can reach one.  */
  signal (SIGPIPE, SIG_DFL);
  signal (SIGCHLD, SIG_DFL);
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  setpgid (0, 0);
  if (dup2 (in, 0) < 0 || dup2 (out, 1) < 0 || dup2 (err, 2) < 0)
    _exit (126);
  /* Neither protocol descriptor, nor any other of ours, goes along.  */
  if (syscall (SYS_close_range, 3, ~0U, 0) < 0)
    for (int fd = 3; fd < 1024; fd++)
      close (fd);
  if (s->nproc)
    {
      /* nproc counts the program too, but gVisor counts a process
         against the user that created it: this one is root's, made by
         us, and only its descendants are the run's uid's.  */
      rl = (struct rlimit) { s->nproc - 1, s->nproc - 1 };
      setrlimit (RLIMIT_NPROC, &rl);
    }
  if (s->nofile)
    {
      rl = (struct rlimit) { s->nofile, s->nofile };
      setrlimit (RLIMIT_NOFILE, &rl);
    }
  if (s->as_bytes)
    {
      rl = (struct rlimit) { s->as_bytes, s->as_bytes };
      setrlimit (RLIMIT_AS, &rl);
    }
  if ((s->flags & BOXER_INIT_START_OWN_TMP) && own_tmp () < 0)
    _exit (126);
  /* The system calls themselves: libc's wrappers would signal the
     threads of a process whose memory this child shares (vfork ()).  */
  if (syscall (SYS_setgroups, 0, NULL) < 0 || syscall (SYS_setresgid, s->gid, s->gid, s->gid) < 0
      || syscall (SYS_setresuid, s->uid, s->uid, s->uid) < 0)
    {
      dprintf (2, "boxer-init: cannot become uid %u: %s\n", s->uid, strerror (errno));
      _exit (126);
    }
  if (chdir (s->cwd) < 0)
    {
      dprintf (2, "boxer-init: cannot enter the working directory '%s': %s\n", s->cwd,
               strerror (errno));
      _exit (126);
    }
  /* execvp () looks the program up in the PATH of environ.  */
  environ = s->env;
  execvp (s->argv[0], s->argv);
  /* Worded as a run without boxer-init reports it (executor.c).  */
  if (errno == ENOENT || errno == ENOTDIR)
    {
      dprintf (2, "boxer: '%s': not found in the image\n", s->argv[0]);
      _exit (127);
    }
  dprintf (2, "boxer: '%s': cannot be executed (%s)\n", s->argv[0], strerror (errno));
  _exit (126);
}

static void
start (uint32_t id, const unsigned char *p, size_t len)
{
  struct boxer_init_start s;
  struct run *r = NULL;
  int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
  pid_t pid;

  if (!boxer_init_decode_start (p, len, &s))
    {
      send_error (id, "malformed START");
      return;
    }
  if (find_run (id))
    {
      send_error (id, "run %u exists already", id);
      goto out;
    }
  for (int i = 0; i < MAX_RUNS && r == NULL; i++)
    if (runs[i].pid == 0)
      r = &runs[i];
  if (r == NULL)
    {
      send_error (id, "too many programs at once");
      goto out;
    }
  if (pipe2 (in, O_CLOEXEC) < 0 || pipe2 (out, O_CLOEXEC) < 0 || pipe2 (err, O_CLOEXEC) < 0)
    {
      send_error (id, "pipe: %s", strerror (errno));
      goto fail;
    }
  {
    char **env = environ;
    /* vfork (): the program's start copies none of our memory, a
       measurable part of a short run under gVisor.  We wait until it has
       exec'd or died; it changes nothing of ours but environ.  */
    pid = vfork ();
    if (pid == 0)
      child (&s, in[0], out[1], err[1]);
    environ = env;
  }
  if (pid < 0)
    {
      send_error (id, "vfork: %s", strerror (errno));
      goto fail;
    }
  /* Its group is set: vfork () resumed us only once it had exec'd or
     died, and it sets its group before anything that can end it (a
     second setpgid () here would cost a quarter of a millisecond under
     gVisor, and fail after an exec).  */
  close (in[0]);
  close (out[1]);
  close (err[1]);
  fcntl (in[1], F_SETFL, O_NONBLOCK);
  fcntl (out[0], F_SETFL, O_NONBLOCK);
  fcntl (err[0], F_SETFL, O_NONBLOCK);
  *r = (struct run) {
    .id = id, .pid = pid, .in_fd = in[1], .out_fd = out[0], .err_fd = err[0],
    .out_left = s.stdout_cap, .err_left = s.stderr_cap,
    .start_ms = now_ms (),
    .uid = s.flags & BOXER_INIT_START_KILL_UID ? s.uid : 0,
  };
  r->deadline_ms = s.wall_ms ? r->start_ms + (long long) s.wall_ms : 0;
  send_u32 (BOXER_INIT_STARTED, id, (uint32_t) pid);
  goto out;

fail:
  for (int i = 0; i < 2; i++)
    {
      if (in[i] >= 0)
        close (in[i]);
      if (out[i] >= 0)
        close (out[i]);
      if (err[i] >= 0)
        close (err[i]);
    }
out:
  boxer_init_start_release (&s);
}

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

static void
stdin_data (uint32_t id, const unsigned char *p, size_t len)
{
  struct run *r = find_run (id);
  unsigned char *more;

  if (r == NULL || r->in_eof)
    {
      send_error (id, "STDIN for a program that is not reading it");
      return;
    }
  if (len == 0)
    {
      r->in_eof = true;
      if (r->in_off == r->in_len)
        close_fd (&r->in_fd);
      return;
    }
  if (r->in_fd < 0)
    return;     /* the program closed its stdin: what it did not read is dropped */
  more = realloc (r->in_buf, r->in_len + len);
  if (more == NULL)
    die ("keep stdin");
  memcpy (more + r->in_len, p, len);
  r->in_buf = more;
  r->in_len += len;
}

static void
kill_run (uint32_t id, const unsigned char *p, size_t len)
{
  struct boxer_init_reader rd;
  struct run *r = find_run (id);
  uint32_t sig;

  boxer_init_reader_init (&rd, p, len);
  if (!boxer_init_get_u32 (&rd, &sig) || !boxer_init_reader_done (&rd) || sig == 0 || sig > 64)
    {
      send_error (id, "malformed KILL");
      return;
    }
  if (r && !r->exited)
    kill (-r->pid, (int) sig);
}

/* Relay what fd has, within *left; the rest is read and dropped, so the
   program never blocks on a full pipe.  Closed at end of file.  A few
   chunks at a time: a program that writes without end must not keep the
   loop from the others, or from its own wall clock.  */
static void
relay (struct run *r, int *fd, uint8_t type, uint64_t *left, uint32_t trunc_flag)
{
  unsigned char buf[BOXER_INIT_CHUNK];

  for (int chunks = 0; chunks < 16; chunks++)
    {
      ssize_t n = read (*fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        return;
      if (n <= 0)
        {
          close_fd (fd);
          return;
        }
      if ((uint64_t) n > *left)
        {
          r->flags |= trunc_flag;
          n = (ssize_t) *left;
        }
      if (n > 0)
        {
          send_bytes (type, r->id, buf, (size_t) n);
          *left -= (uint64_t) n;
        }
    }
}

static void
feed (struct run *r)
{
  while (r->in_fd >= 0 && r->in_off < r->in_len)
    {
      ssize_t w = write (r->in_fd, r->in_buf + r->in_off, r->in_len - r->in_off);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0 && errno == EAGAIN)
        return;
      if (w < 0)
        {
          /* EPIPE: the program closed its stdin.  */
          close_fd (&r->in_fd);
          break;
        }
      r->in_off += (size_t) w;
    }
  if (r->in_off == r->in_len)
    {
      free (r->in_buf);
      r->in_buf = NULL;
      r->in_len = r->in_off = 0;
      if (r->in_eof)
        close_fd (&r->in_fd);
    }
}

/* A run is over when its main process has exited and its output pipes are
   closed (or have had DRAIN_GRACE_MS to close).  */
static void
maybe_finish (struct run *r)
{
  struct boxer_init_writer w = { 0 };
  uint32_t status, sig = 0;

  if (!r->exited)
    return;
  if ((r->out_fd >= 0 || r->err_fd >= 0) && now_ms () < r->drain_until_ms)
    return;
  close_fd (&r->out_fd);
  close_fd (&r->err_fd);
  close_fd (&r->in_fd);
  if (WIFSIGNALED (r->status))
    {
      sig = (uint32_t) WTERMSIG (r->status);
      status = 128 + sig;
    }
  else
    status = (uint32_t) WEXITSTATUS (r->status);
  boxer_init_frame_start (&w, BOXER_INIT_EXIT, r->id);
  boxer_init_put_u32 (&w, status);
  boxer_init_put_u32 (&w, sig);
  boxer_init_put_u32 (&w, r->flags);
  boxer_init_put_u64 (&w, (uint64_t) (now_ms () - r->start_ms));
  send_frame (&w);
  boxer_init_writer_release (&w);
  free (r->in_buf);
  memset (r, 0, sizeof *r);
  r->in_fd = r->out_fd = r->err_fd = -1;
}

/* Every process of uid, wherever it went (another group, a session of
   its own): a child of ours becomes that uid, which may signal exactly
   those, and signals them all.  It is reaped like any orphan.  vfork (),
   as for a program (start ()), and the system calls themselves: it
   shares our memory until it exits, which is at once.  */
static void
kill_uid (uint32_t uid)
{
  pid_t pid = vfork ();

  if (pid == 0)
    {
      if (syscall (SYS_setgroups, 0, NULL) == 0 && syscall (SYS_setresgid, uid, uid, uid) == 0
          && syscall (SYS_setresuid, uid, uid, uid) == 0)
        kill (-1, SIGKILL);
      _exit (0);
    }
  if (pid < 0)
    fprintf (stderr, "boxer-init: vfork to end uid %u: %s\n", uid, strerror (errno));
}

static void
reap (void)
{
  int status;
  pid_t pid;

  while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
    for (int i = 0; i < MAX_RUNS; i++)
      if (runs[i].pid == pid && !runs[i].exited)
        {
          runs[i].exited = true;
          runs[i].status = status;
          runs[i].drain_until_ms = now_ms () + DRAIN_GRACE_MS;
          /* What it left running in its group goes with it.  */
          kill (-pid, SIGKILL);
          if (runs[i].uid)
            kill_uid (runs[i].uid);
        }
}

/* --- collecting a directory ---------------------------------------------- */

struct collect
{
  uint32_t id;
  uint64_t files_left, bytes_left;
  bool truncated;
  char path[BOXER_INIT_PATH_MAX + 1];   /* relative to the collected directory */
};

/* Send the regular file open on fd (closed here), of st's size, as c's
   next file.  */
static void
send_open_file (struct collect *c, int fd, const struct stat *st)
{
  struct boxer_init_writer w = { 0 };
  unsigned char *buf;
  uint64_t size, got = 0;

  size = (uint64_t) st->st_size;
  if (size > c->bytes_left)
    {
      c->truncated = true;
      close (fd);
      return;
    }
  buf = malloc (size ? size : 1);
  if (buf == NULL)
    die ("read an output");
  /* Read first, then announce: a file that changes meanwhile is sent as
     it was read.  */
  while (got < size)
    {
      ssize_t n = read (fd, buf + got, size - got);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      got += (uint64_t) n;
    }
  close (fd);
  boxer_init_frame_start (&w, BOXER_INIT_OUTPUT, c->id);
  boxer_init_put_str (&w, c->path, strlen (c->path));
  boxer_init_put_u64 (&w, got);
  send_frame (&w);
  boxer_init_writer_release (&w);
  for (uint64_t off = 0; off < got; off += BOXER_INIT_CHUNK)
    send_bytes (BOXER_INIT_OUTPUT_DATA, c->id, buf + off,
                got - off < BOXER_INIT_CHUNK ? (size_t) (got - off) : BOXER_INIT_CHUNK);
  free (buf);
  c->files_left--;
  c->bytes_left -= got;
}

static void
collect_file (struct collect *c, int dir, const char *name, const struct stat *seen)
{
  struct stat st;
  int fd;

  if (c->files_left == 0)
    {
      c->truncated = true;
      return;
    }
  /* O_NONBLOCK: a FIFO swapped in after the look is not waited on.  */
  fd = openat (dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return;
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode) || st.st_ino != seen->st_ino
      || st.st_dev != seen->st_dev)
    {
      close (fd);
      return;
    }
  send_open_file (c, fd, &st);
}

static void
collect_dir (struct collect *c, int dir, int depth)
{
  DIR *d;
  struct dirent *e;
  size_t base = strlen (c->path);

  if (depth > 64)
    {
      c->truncated = true;
      close (dir);
      return;
    }
  d = fdopendir (dir);
  if (d == NULL)
    {
      close (dir);
      return;
    }
  while ((e = readdir (d)) != NULL)
    {
      struct stat st;
      int len;

      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      len = snprintf (c->path + base, sizeof c->path - base, "%s%s", base ? "/" : "", e->d_name);
      if (len < 0 || (size_t) len >= sizeof c->path - base)
        {
          c->truncated = true;
          c->path[base] = '\0';
          continue;
        }
      if (fstatat (dirfd (d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        {
          if (S_ISREG (st.st_mode))
            collect_file (c, dirfd (d), e->d_name, &st);
          else if (S_ISDIR (st.st_mode))
            {
              int sub = openat (dirfd (d), e->d_name,
                                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
              if (sub >= 0)
                collect_dir (c, sub, depth + 1);
            }
          /* Links, FIFOs, sockets and devices are not outputs.  */
        }
      c->path[base] = '\0';
    }
  closedir (d);
}

static void
collect (uint32_t id, const unsigned char *p, size_t len)
{
  struct boxer_init_reader r;
  struct collect c = { .id = id };
  char *dir = NULL;
  const char *name;
  int parent, fd;

  boxer_init_reader_init (&r, p, len);
  if (!boxer_init_get_str (&r, BOXER_INIT_PATH_MAX, &dir)
      || !boxer_init_get_u64 (&r, &c.files_left) || !boxer_init_get_u64 (&r, &c.bytes_left)
      || !boxer_init_reader_done (&r) || !boxer_init_path_is_valid (dir))
    {
      send_error (id, "malformed COLLECT");
      free (dir);
      return;
    }
  parent = open_parent (dir, false, 0, 0, &name);
  fd = parent < 0 ? -1 : openat (parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (parent >= 0)
    close (parent);
  free (dir);
  if (fd >= 0)
    collect_dir (&c, fd, 0);
  send_u32 (BOXER_INIT_OUTPUT_END, id, c.truncated ? BOXER_INIT_OUTPUTS_TRUNCATED : 0);
}

/* A session's file, read for the executor: OUTPUT (its path, its size),
   OUTPUT_DATA, OUTPUT_END; ERROR when there is no regular file there
   (links are not followed) or it is larger than max bytes.  */
static void
read_file (uint32_t id, const unsigned char *p, size_t len)
{
  struct boxer_init_reader r;
  struct collect c = { .id = id, .files_left = 1 };
  char *path = NULL;
  const char *name;
  struct stat st;
  int parent, fd;

  boxer_init_reader_init (&r, p, len);
  if (!boxer_init_get_str (&r, BOXER_INIT_PATH_MAX, &path)
      || !boxer_init_get_u64 (&r, &c.bytes_left) || !boxer_init_reader_done (&r)
      || !boxer_init_path_is_valid (path))
    {
      send_error (id, "malformed READ");
      free (path);
      return;
    }
  /* The kernel's files are no session's.  */
  parent = path_is_reserved (path) && strncmp (path, "/output", 7) != 0
             ? -1 : open_parent (path, false, 0, 0, &name);
  /* O_NONBLOCK: a FIFO is not waited on; it is no file anyway.  */
  fd = parent < 0 ? -1 : openat (parent, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (parent >= 0)
    close (parent);
  if (fd < 0 || fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    {
      send_error (id, "no file");
      if (fd >= 0)
        close (fd);
      free (path);
      return;
    }
  snprintf (c.path, sizeof c.path, "%s", path);
  free (path);
  send_open_file (&c, fd, &st);
  send_u32 (BOXER_INIT_OUTPUT_END, id, c.truncated ? BOXER_INIT_OUTPUTS_TRUNCATED : 0);
}

/* --- the loop ------------------------------------------------------------ */

static void
on_sigchld (int sig)
{
  int saved = errno;
  (void) sig;
  if (write (sigchld_pipe[1], "", 1) < 0)
    {
      /* Full: a wake-up is pending anyway.  */
    }
  errno = saved;
}

static void
dispatch (uint8_t type, uint32_t id, const unsigned char *p, size_t len)
{
  switch (type)
    {
    case BOXER_INIT_FILE_OPEN:
      file_open (id, p, len);
      break;
    case BOXER_INIT_FILE_DATA:
      file_data (id, p, len);
      break;
    case BOXER_INIT_FILE_CLOSE:
      if (len == 0)
        file_close (id);
      else
        send_error (id, "malformed FILE_CLOSE");
      break;
    case BOXER_INIT_START:
      start (id, p, len);
      break;
    case BOXER_INIT_STDIN:
      stdin_data (id, p, len);
      break;
    case BOXER_INIT_KILL:
      kill_run (id, p, len);
      break;
    case BOXER_INIT_COLLECT:
      collect (id, p, len);
      break;
    case BOXER_INIT_READ:
      read_file (id, p, len);
      break;
    default:
      send_error (id, "unknown command type %u", type);
    }
}

/* Commands arrive in this buffer; whole frames are taken from its front.  */
static unsigned char *in_buf;
static size_t in_len;

/* Returns false at the end of the executor's input.  */
static bool
read_commands (void)
{
  size_t off = 0;
  ssize_t n;

  n = read (STDIN_FILENO, in_buf + in_len, BOXER_INIT_FRAME_MAX + 4 - in_len);
  if (n < 0)
    return errno == EINTR || errno == EAGAIN;
  if (n == 0)
    return false;
  in_len += (size_t) n;
  while (in_len - off >= 4)
    {
      const unsigned char *f = in_buf + off;
      uint32_t flen = (uint32_t) f[0] << 24 | (uint32_t) f[1] << 16 | (uint32_t) f[2] << 8 | f[3];
      if (flen < 5 || flen > BOXER_INIT_FRAME_MAX)
        {
          /* No way to find the next frame: the stream is broken.  */
          fprintf (stderr, "boxer-init: a command frame of %u bytes; giving up\n", flen);
          return false;
        }
      if (in_len - off - 4 < flen)
        break;
      dispatch (f[4], (uint32_t) f[5] << 24 | (uint32_t) f[6] << 16 | (uint32_t) f[7] << 8 | f[8],
                f + 9, flen - 5);
      off += 4 + flen;
    }
  memmove (in_buf, in_buf + off, in_len - off);
  in_len -= off;
  return true;
}

/* Nothing we hold may reach a program, not even through a setuid file
   (noNewPrivileges forbids that too): the bounding set, which our
   children inherit, goes once at our start rather than in each of
   theirs.  Only what it holds (what /proc says, else every number a
   capability may have) is dropped: under gVisor each PR_CAPBSET_DROP
   costs tens of microseconds.  Read without stdio, whose code (scanf's
   above all) a fresh sandbox pages in at a cost of milliseconds.  Ours
   stay effective: only exec () is bounded by it.  */
static void
drop_bounding_set (void)
{
  static const char key[] = "\nCapBnd:";
  unsigned long long held = ~0ULL;
  char buf[4096];
  size_t have = 0;
  int fd = open ("/proc/self/status", O_RDONLY | O_CLOEXEC);

  while (fd >= 0 && have < sizeof buf - 1)
    {
      ssize_t n = read (fd, buf + have, sizeof buf - 1 - have);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      have += (size_t) n;
    }
  if (fd >= 0)
    close (fd);
  buf[have] = '\0';
  {
    const char *at = strstr (buf, key);
    char *end;
    if (at)
      {
        unsigned long long v = strtoull (at + sizeof key - 1, &end, 16);
        if (end != at + sizeof key - 1 && (*end == '\n' || *end == '\0'))
          held = v;
      }
  }
  for (int cap = 0; cap < 64; cap++)
    if (held & (1ULL << cap))
      prctl (PR_CAPBSET_DROP, cap, 0, 0, 0);
}

int
main (void)
{
  struct sigaction sa = { .sa_handler = on_sigchld, .sa_flags = SA_RESTART | SA_NOCLDSTOP };
  struct boxer_init_writer w = { 0 };

  /* Outside a sandbox (tests), orphans of the programs come to us too.  */
  if (getpid () != 1)
    prctl (PR_SET_CHILD_SUBREAPER, 1);
  signal (SIGPIPE, SIG_IGN);
  if (pipe2 (sigchld_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
    die ("pipe");
  sigaction (SIGCHLD, &sa, NULL);
  for (int i = 0; i < MAX_RUNS; i++)
    runs[i].in_fd = runs[i].out_fd = runs[i].err_fd = -1;
  for (int i = 0; i < MAX_FILES; i++)
    files[i].fd = files[i].dir = -1;
  in_buf = malloc (BOXER_INIT_FRAME_MAX + 4);
  if (in_buf == NULL)
    die ("malloc");

  boxer_init_frame_start (&w, BOXER_INIT_READY, 0);
  boxer_init_put_u32 (&w, BOXER_INIT_VERSION);
  send_frame (&w);
  boxer_init_writer_release (&w);
  /* After READY, so that the executor's answer to it is on its way while
     this is done; before the loop, so that no program starts first.  */
  drop_bounding_set ();

  for (;;)
    {
      struct pollfd p[2 + 3 * MAX_RUNS];
      struct run *owner[2 + 3 * MAX_RUNS];
      long long now = now_ms (), wake = now + 1000;
      nfds_t n = 0;

      p[n++] = (struct pollfd) { .fd = STDIN_FILENO, .events = POLLIN };
      p[n++] = (struct pollfd) { .fd = sigchld_pipe[0], .events = POLLIN };
      for (int i = 0; i < MAX_RUNS; i++)
        {
          struct run *r = &runs[i];
          if (r->pid == 0)
            continue;
          if (r->deadline_ms && !r->exited && r->deadline_ms < wake)
            wake = r->deadline_ms;
          if (r->exited && r->drain_until_ms < wake)
            wake = r->drain_until_ms;
          if (r->out_fd >= 0)
            owner[n] = r, p[n++] = (struct pollfd) { .fd = r->out_fd, .events = POLLIN };
          if (r->err_fd >= 0)
            owner[n] = r, p[n++] = (struct pollfd) { .fd = r->err_fd, .events = POLLIN };
          if (r->in_fd >= 0 && r->in_off < r->in_len)
            owner[n] = r, p[n++] = (struct pollfd) { .fd = r->in_fd, .events = POLLOUT };
        }
      if (poll (p, n, wake > now ? (int) (wake - now) : 0) < 0 && errno != EINTR)
        die ("poll");

      for (nfds_t i = 2; i < n; i++)
        {
          struct run *r = owner[i];
          if (!p[i].revents)
            continue;
          if (p[i].fd == r->out_fd)
            relay (r, &r->out_fd, BOXER_INIT_STDOUT, &r->out_left, BOXER_INIT_STDOUT_TRUNCATED);
          else if (p[i].fd == r->err_fd)
            relay (r, &r->err_fd, BOXER_INIT_STDERR, &r->err_left, BOXER_INIT_STDERR_TRUNCATED);
          else if (p[i].fd == r->in_fd)
            feed (r);
        }
      if (p[1].revents)
        {
          char buf[64];
          while (read (sigchld_pipe[0], buf, sizeof buf) > 0)
            ;
        }
      reap ();
      now = now_ms ();
      for (int i = 0; i < MAX_RUNS; i++)
        {
          struct run *r = &runs[i];
          if (r->pid == 0)
            continue;
          if (r->deadline_ms && !r->exited && now >= r->deadline_ms
              && !(r->flags & BOXER_INIT_TIMED_OUT))
            {
              r->flags |= BOXER_INIT_TIMED_OUT;
              kill (-r->pid, SIGKILL);
            }
          maybe_finish (r);
        }
      /* Commands last: a KILL or START sees the runs as they are now.  */
      if (p[0].revents && !read_commands ())
        break;
    }

  /* The executor is gone: so is everything we started.  */
  for (int i = 0; i < MAX_RUNS; i++)
    if (runs[i].pid != 0 && !runs[i].exited)
      kill (-runs[i].pid, SIGKILL);
  return 0;
}
