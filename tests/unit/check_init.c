/* Tests of boxer-init (executor/init.c) and its protocol: the real binary,
   driven through its stdin and stdout as the executor will drive it,
   outside a sandbox (it is then a subreaper instead of PID 1).  As root
   the programs run as uid 65534, as in a sandbox.  */
#include <config.h>

#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "executor/init_proto.h"

#define NOBODY 65534

struct init
{
  pid_t pid;
  int to, from;
};

struct event
{
  uint8_t type;
  uint32_t id;
  unsigned char *data;
  size_t len;
};

static char *tmp;

static void
setup (void)
{
  tmp = xstrdup ("/tmp/boxer-check-init.XXXXXX");
  ck_assert_ptr_nonnull (mkdtemp (tmp));
  chmod (tmp, 0755);
}

static void
teardown (void)
{
  boxer_rm_rf (tmp, NULL);
  free (tmp);
}

static uint32_t
run_uid (void)
{
  return geteuid () == 0 ? NOBODY : geteuid ();
}

static void
spawn (struct init *in)
{
  int a[2], b[2];

  ck_assert_int_eq (pipe2 (a, O_CLOEXEC), 0);
  ck_assert_int_eq (pipe2 (b, O_CLOEXEC), 0);
  in->pid = fork ();
  ck_assert_int_ge (in->pid, 0);
  if (in->pid == 0)
    {
      dup2 (a[0], 0);
      dup2 (b[1], 1);
      execl (BOXER_INIT_BIN, "boxer-init", (char *) NULL);
      _exit (127);
    }
  close (a[0]);
  close (b[1]);
  in->to = a[1];
  in->from = b[0];
}

static void
write_frame (struct init *in, struct boxer_init_writer *w)
{
  ck_assert_int_eq (boxer_init_frame_finish (w), 0);
  ck_assert_int_eq (write (in->to, w->data, w->len), (ssize_t) w->len);
  boxer_init_writer_release (w);
}

static void
read_exactly (int fd, void *buf, size_t n)
{
  size_t got = 0;

  while (got < n)
    {
      struct pollfd p = { .fd = fd, .events = POLLIN };
      ssize_t r;
      ck_assert_msg (poll (&p, 1, 20000) == 1, "boxer-init said nothing for 20 s");
      r = read (fd, (char *) buf + got, n - got);
      ck_assert_msg (r > 0, "boxer-init closed its stdout");
      got += (size_t) r;
    }
}

static struct event
next_event (struct init *in)
{
  unsigned char head[9];
  struct event e;
  uint32_t len;

  read_exactly (in->from, head, 4);
  len = (uint32_t) head[0] << 24 | (uint32_t) head[1] << 16 | (uint32_t) head[2] << 8 | head[3];
  ck_assert_uint_ge (len, 5);
  ck_assert_uint_le (len, BOXER_INIT_FRAME_MAX);
  read_exactly (in->from, head + 4, 5);
  e.type = head[4];
  e.id = (uint32_t) head[5] << 24 | (uint32_t) head[6] << 16 | (uint32_t) head[7] << 8 | head[8];
  e.len = len - 5;
  e.data = xmalloc (e.len + 1);
  read_exactly (in->from, e.data, e.len);
  e.data[e.len] = '\0';
  return e;
}

static void
start_init (struct init *in)
{
  struct event e;
  struct boxer_init_reader r;
  uint32_t v;

  spawn (in);
  e = next_event (in);
  ck_assert_int_eq (e.type, BOXER_INIT_READY);
  boxer_init_reader_init (&r, e.data, e.len);
  ck_assert (boxer_init_get_u32 (&r, &v) && boxer_init_reader_done (&r));
  ck_assert_uint_eq (v, BOXER_INIT_VERSION);
  free (e.data);
}

static void
stop_init (struct init *in)
{
  int status;

  /* End of its input: it exits, and takes its programs along.  */
  close (in->to);
  ck_assert_int_eq (waitpid (in->pid, &status, 0), in->pid);
  ck_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  close (in->from);
}

struct start_opts
{
  uint64_t wall_ms, out_cap, err_cap, nofile, nproc;
  uint32_t flags;
  uint32_t uid;                 /* 0: run_uid () */
  const char *cwd;
  const char *const *env;
};

static void
send_start (struct init *in, uint32_t id, const char *const *argv, const struct start_opts *o)
{
  struct boxer_init_writer w = { 0 };
  static const char *const no_env[] = { "PATH=/usr/bin:/bin", NULL };
  const char *const *env = o && o->env ? o->env : no_env;
  uint32_t argc = 0, envc = 0;

  while (argv[argc])
    argc++;
  while (env[envc])
    envc++;
  boxer_init_frame_start (&w, BOXER_INIT_START, id);
  boxer_init_put_u32 (&w, o && o->uid ? o->uid : run_uid ());
  boxer_init_put_u32 (&w, o && o->uid ? o->uid : geteuid () == 0 ? NOBODY : getegid ());
  boxer_init_put_u32 (&w, o ? o->flags : 0);
  boxer_init_put_u64 (&w, o && o->nproc ? o->nproc : 0);
  boxer_init_put_u64 (&w, o && o->nofile ? o->nofile : 0);
  boxer_init_put_u64 (&w, 0);
  boxer_init_put_u64 (&w, o && o->wall_ms ? o->wall_ms : 20000);
  boxer_init_put_u64 (&w, o && o->out_cap ? o->out_cap : 1 << 20);
  boxer_init_put_u64 (&w, o && o->err_cap ? o->err_cap : 1 << 20);
  boxer_init_put_str (&w, o && o->cwd ? o->cwd : "/", strlen (o && o->cwd ? o->cwd : "/"));
  boxer_init_put_u32 (&w, argc);
  for (uint32_t i = 0; i < argc; i++)
    boxer_init_put_str (&w, argv[i], strlen (argv[i]));
  boxer_init_put_u32 (&w, envc);
  for (uint32_t i = 0; i < envc; i++)
    boxer_init_put_str (&w, env[i], strlen (env[i]));
  write_frame (in, &w);
}

struct outcome
{
  char *out, *err;
  size_t out_len, err_len;
  uint32_t status, sig, flags;
  uint64_t wall_ms;
  int errors;                   /* ERROR events for the run */
  char error[512];
  pid_t pid;
};

/* Events of run id until its EXIT (or an ERROR, when it never started).  */
static void
wait_run (struct init *in, uint32_t id, struct outcome *o)
{
  memset (o, 0, sizeof *o);
  o->out = xstrdup ("");
  o->err = xstrdup ("");
  for (;;)
    {
      struct event e = next_event (in);
      struct boxer_init_reader r;
      ck_assert_uint_eq (e.id, id);
      boxer_init_reader_init (&r, e.data, e.len);
      if (e.type == BOXER_INIT_STARTED)
        {
          uint32_t pid;
          ck_assert (boxer_init_get_u32 (&r, &pid) && boxer_init_reader_done (&r));
          o->pid = (pid_t) pid;
        }
      else if (e.type == BOXER_INIT_STDOUT || e.type == BOXER_INIT_STDERR)
        {
          char **buf = e.type == BOXER_INIT_STDOUT ? &o->out : &o->err;
          size_t *len = e.type == BOXER_INIT_STDOUT ? &o->out_len : &o->err_len;
          *buf = xrealloc (*buf, *len + e.len + 1);
          memcpy (*buf + *len, e.data, e.len);
          *len += e.len;
          (*buf)[*len] = '\0';
        }
      else if (e.type == BOXER_INIT_EXIT)
        {
          ck_assert (boxer_init_get_u32 (&r, &o->status) && boxer_init_get_u32 (&r, &o->sig)
                     && boxer_init_get_u32 (&r, &o->flags) && boxer_init_get_u64 (&r, &o->wall_ms)
                     && boxer_init_reader_done (&r));
          free (e.data);
          return;
        }
      else if (e.type == BOXER_INIT_ERROR)
        {
          char *msg;
          ck_assert (boxer_init_get_str (&r, 4096, &msg));
          snprintf (o->error, sizeof o->error, "%s", msg);
          free (msg);
          o->errors++;
          free (e.data);
          return;
        }
      else
        ck_abort_msg ("unexpected event %u", e.type);
      free (e.data);
    }
}

static void
outcome_release (struct outcome *o)
{
  free (o->out);
  free (o->err);
}

static void
run_sh (struct init *in, uint32_t id, const char *script, const struct start_opts *opts,
        struct outcome *o)
{
  const char *argv[] = { "/bin/sh", "-c", script, NULL };
  send_start (in, id, argv, opts);
  wait_run (in, id, o);
}

START_TEST (test_runs_a_program)
{
  struct init in;
  struct outcome o;

  start_init (&in);
  run_sh (&in, 7, "echo out; echo err >&2; exit 3", NULL, &o);
  ck_assert_int_eq (o.errors, 0);
  ck_assert_int_gt (o.pid, 0);
  ck_assert_str_eq (o.out, "out\n");
  ck_assert_str_eq (o.err, "err\n");
  ck_assert_uint_eq (o.status, 3);
  ck_assert_uint_eq (o.sig, 0);
  ck_assert_uint_eq (o.flags, 0);
  outcome_release (&o);

  /* As the run's user, in its working directory, with its environment
     only, and with none of boxer-init's descriptors.  */
  {
    static const char *const env[] = { "PATH=/usr/bin:/bin", "GREETING=hi there", NULL };
    struct start_opts opts = { .cwd = "/tmp", .env = env, .nofile = 64 };
    cleanup_free char *want = NULL;
    run_sh (&in, 8, "echo $(id -u) $(pwd) \"$GREETING\" $(ulimit -n); ls /proc/self/fd | wc -l; "
            "env | wc -l",
            &opts, &o);
    /* ls sees 0, 1, 2 and its own directory; env has PATH, GREETING and
       the shell's PWD.  */
    want = xasprintf ("%u /tmp hi there 64\n4\n3\n", run_uid ());
    ck_assert_str_eq (o.out, want);
    ck_assert_uint_eq (o.status, 0);
    outcome_release (&o);
  }
  stop_init (&in);
}
END_TEST

START_TEST (test_program_cannot_forge_frames)
{
  struct init in;
  struct outcome o;

  start_init (&in);
  /* A frame's bytes on its stdout are its output, nothing more; its
     descriptors beyond 2 do not exist.  */
  run_sh (&in, 1,
          "printf '\\000\\000\\000\\021\\206\\000\\000\\000\\001\\000\\000\\000\\000'; "
          "echo x >&3 || echo no-fd-3 >&2; echo x >&4 || echo no-fd-4 >&2",
          NULL, &o);
  ck_assert_uint_eq (o.out_len, 13);
  ck_assert_int_eq (o.out[4], (char) 0x86);
  ck_assert_ptr_nonnull (strstr (o.err, "no-fd-3"));
  ck_assert_ptr_nonnull (strstr (o.err, "no-fd-4"));
  ck_assert_uint_eq (o.status, 0);
  outcome_release (&o);
  /* The next run is answered normally: nothing was taken as a frame.  */
  run_sh (&in, 2, "echo fine", NULL, &o);
  ck_assert_str_eq (o.out, "fine\n");
  outcome_release (&o);
  stop_init (&in);
}
END_TEST

START_TEST (test_stdin)
{
  struct init in;
  struct outcome o;
  struct boxer_init_writer w = { 0 };
  const char *argv[] = { "/bin/cat", NULL };

  start_init (&in);
  send_start (&in, 5, argv, NULL);
  for (int i = 0; i < 3; i++)
    {
      boxer_init_frame_start (&w, BOXER_INIT_STDIN, 5);
      boxer_init_put_bytes (&w, "abc", 3);
      write_frame (&in, &w);
    }
  boxer_init_frame_start (&w, BOXER_INIT_STDIN, 5);
  write_frame (&in, &w);
  wait_run (&in, 5, &o);
  ck_assert_str_eq (o.out, "abcabcabc");
  ck_assert_uint_eq (o.status, 0);
  outcome_release (&o);
  stop_init (&in);
}
END_TEST

START_TEST (test_limits)
{
  struct init in;
  struct outcome o;
  struct start_opts quick = { .wall_ms = 300 };
  struct start_opts capped = { .out_cap = 1000, .err_cap = 10 };
  const char *missing[] = { "/no/such/program", NULL };

  start_init (&in);
  /* The wall clock, past which the group is killed (SIGTERM ignored).  */
  run_sh (&in, 1, "trap '' TERM; sleep 30", &quick, &o);
  ck_assert_uint_eq (o.flags, BOXER_INIT_TIMED_OUT);
  ck_assert_uint_eq (o.sig, 9);
  ck_assert_uint_eq (o.status, 137);
  ck_assert_uint_ge (o.wall_ms, 300);
  ck_assert_uint_lt (o.wall_ms, 3000);
  outcome_release (&o);

  /* Output caps: the rest is read and dropped, and said so.  */
  run_sh (&in, 2, "head -c 100000 /dev/zero; head -c 100 /dev/zero >&2; echo done >&2", &capped,
          &o);
  ck_assert_uint_eq (o.out_len, 1000);
  ck_assert_uint_eq (o.err_len, 10);
  ck_assert_uint_eq (o.flags, BOXER_INIT_STDOUT_TRUNCATED | BOXER_INIT_STDERR_TRUNCATED);
  ck_assert_uint_eq (o.status, 0);
  outcome_release (&o);

  /* A program that writes without end still meets its wall clock.  */
  {
    struct start_opts flood = { .wall_ms = 500, .out_cap = 1000 };
    run_sh (&in, 5, "yes", &flood, &o);
    ck_assert_uint_eq (o.flags, BOXER_INIT_TIMED_OUT | BOXER_INIT_STDOUT_TRUNCATED);
    ck_assert_uint_eq (o.out_len, 1000);
    ck_assert_uint_lt (o.wall_ms, 3000);
    outcome_release (&o);
  }

  /* A program that is not there: 127, as a shell says it.  */
  send_start (&in, 3, missing, NULL);
  wait_run (&in, 3, &o);
  ck_assert_uint_eq (o.status, 127);
  ck_assert_ptr_nonnull (strstr (o.err, "'/no/such/program': not found in the image"));
  outcome_release (&o);

  /* A signal of its own.  */
  run_sh (&in, 4, "kill -SEGV $$", NULL, &o);
  ck_assert_uint_eq (o.sig, 11);
  ck_assert_uint_eq (o.status, 139);
  outcome_release (&o);
  stop_init (&in);
}
END_TEST

START_TEST (test_what_a_program_leaves_is_killed)
{
  struct init in;
  struct outcome o;
  long child;

  start_init (&in);
  /* A background process holding stdout open: killed with its group when
     the program ends, and reaped.  */
  run_sh (&in, 1, "sleep 60 & echo $!", NULL, &o);
  ck_assert_uint_eq (o.status, 0);
  ck_assert_uint_lt (o.wall_ms, 3000);
  child = strtol (o.out, NULL, 10);
  ck_assert_int_gt (child, 0);
  outcome_release (&o);
  for (int i = 0; i < 100 && kill ((pid_t) child, 0) == 0; i++)
    usleep (20000);
  ck_assert_int_eq (kill ((pid_t) child, 0), -1);

  /* KILL from the executor reaches a running program.  */
  {
    const char *argv[] = { "/bin/sleep", "30", NULL };
    struct boxer_init_writer w = { 0 };
    send_start (&in, 2, argv, NULL);
    boxer_init_frame_start (&w, BOXER_INIT_KILL, 2);
    boxer_init_put_u32 (&w, SIGTERM);
    write_frame (&in, &w);
    wait_run (&in, 2, &o);
    ck_assert_uint_eq (o.sig, SIGTERM);
    ck_assert_uint_eq (o.flags, 0);
    outcome_release (&o);
  }

  /* The executor going away ends everything.  */
  {
    const char *argv[] = { "/bin/sh", "-c", "echo $$; exec sleep 60", NULL };
    struct event e;
    long pid;
    send_start (&in, 3, argv, NULL);
    e = next_event (&in);
    ck_assert_int_eq (e.type, BOXER_INIT_STARTED);
    free (e.data);
    e = next_event (&in);
    ck_assert_int_eq (e.type, BOXER_INIT_STDOUT);
    pid = strtol ((char *) e.data, NULL, 10);
    free (e.data);
    stop_init (&in);
    /* Killed at once; reaped by whoever inherits it a moment later.  */
    for (int i = 0; i < 200 && kill ((pid_t) pid, 0) == 0; i++)
      usleep (10000);
    ck_assert_int_eq (kill ((pid_t) pid, 0), -1);
  }
}
END_TEST

/* A batch's run (root only: it takes a uid and a mount namespace): its
   /tmp is its own, nothing of the bounding set reaches it, and what it
   started in a session of its own dies with it.  */
START_TEST (test_batch_run_is_alone)
{
  struct init in;
  struct outcome o;
  struct start_opts batch = { .flags = BOXER_INIT_START_OWN_TMP | BOXER_INIT_START_KILL_UID,
                              .uid = 190000 + (uint32_t) (getpid () % 10000) };
  char marker[64];
  long child;

  if (geteuid () != 0)
    return;
  snprintf (marker, sizeof marker, "/tmp/boxer-check-init-%d", (int) getpid ());
  start_init (&in);
  {
    cleanup_free char *script = xasprintf ("echo x > %s && test -z \"$(ls -A /tmp | grep -v boxer-check-init)\" && "
                                           "grep CapBnd /proc/self/status && id -u && "
                                           "setsid sleep 60 > /dev/null 2>&1 < /dev/null & "
                                           "sleep 0.2; pgrep -u %u -x sleep",
                                           marker, batch.uid);
    run_sh (&in, 1, script, &batch, &o);
  }
  ck_assert_msg (o.status == 0, "status %u: %s", o.status, o.err);
  ck_assert_ptr_nonnull (strstr (o.out, "CapBnd:\t0000000000000000\n"));
  {
    char *line = strrchr (o.out, '\n');
    ck_assert_ptr_nonnull (line);
    *line = '\0';
    line = strrchr (o.out, '\n');
    child = strtol (line ? line + 1 : o.out, NULL, 10);
  }
  ck_assert_int_gt (child, 0);
  /* Written into the run's own /tmp, never the one outside.  */
  ck_assert_int_eq (access (marker, F_OK), -1);
  outcome_release (&o);
  for (int i = 0; i < 200 && kill ((pid_t) child, 0) == 0; i++)
    usleep (10000);
  ck_assert_int_eq (kill ((pid_t) child, 0), -1);

  stop_init (&in);
}
END_TEST

static void
file_frames (struct init *in, uint32_t id, const char *path, uint32_t mode, const char *data)
{
  struct boxer_init_writer w = { 0 };

  boxer_init_frame_start (&w, BOXER_INIT_FILE_OPEN, id);
  boxer_init_put_u32 (&w, 0);
  boxer_init_put_u32 (&w, 0);
  boxer_init_put_u32 (&w, mode);
  boxer_init_put_str (&w, path, strlen (path));
  write_frame (in, &w);
  boxer_init_frame_start (&w, BOXER_INIT_FILE_DATA, id);
  boxer_init_put_bytes (&w, data, strlen (data));
  write_frame (in, &w);
  boxer_init_frame_start (&w, BOXER_INIT_FILE_CLOSE, id);
  write_frame (in, &w);
}

/* The first answer to a file's frames: FILE_DONE (NULL) or the ERROR's
   message (caller frees); further answers of a refused file are read
   too.  */
static char *
file_answer (struct init *in, uint32_t id, int expected_errors)
{
  char *first = NULL;

  for (int i = 0; i < (expected_errors ? expected_errors : 1); i++)
    {
      struct event e = next_event (in);
      struct boxer_init_reader r;
      ck_assert_uint_eq (e.id, id);
      if (e.type == BOXER_INIT_ERROR)
        {
          char *msg;
          boxer_init_reader_init (&r, e.data, e.len);
          ck_assert (boxer_init_get_str (&r, 4096, &msg));
          if (first == NULL)
            first = msg;
          else
            free (msg);
        }
      else
        ck_assert_int_eq (e.type, BOXER_INIT_FILE_DONE);
      free (e.data);
    }
  return first;
}

START_TEST (test_files)
{
  struct init in;
  struct outcome o;
  cleanup_free char *path = xasprintf ("%s/work/deep/main.py", tmp);
  cleanup_free char *link = xasprintf ("%s/link", tmp);
  cleanup_free char *via_link = xasprintf ("%s/link/planted", tmp);
  cleanup_free char *outside = xasprintf ("%s/elsewhere", tmp);
  cleanup_free char *planted = xasprintf ("%s/elsewhere/planted", tmp);
  cleanup_free char *script = NULL;
  cleanup_free char *text = NULL;
  struct stat st;

  start_init (&in);
  /* Directories made, the file whole, setuid dropped.  */
  file_frames (&in, 1, path, 04755, "print('hi')\n");
  ck_assert_ptr_null (file_answer (&in, 1, 0));
  ck_assert_int_eq (stat (path, &st), 0);
  ck_assert_int_eq (st.st_mode & 07777, 0755);
  ck_assert_int_eq (st.st_uid, 0);
  ck_assert_int_eq (boxer_read_file (path, 4096, &text, NULL, NULL), 0);
  ck_assert_str_eq (text, "print('hi')\n");
  /* Read-only to the program: it can read the file, not change it.  */
  if (geteuid () == 0)
    {
      script = xasprintf ("cat %s; echo x >> %s || echo refused", path, path);
      run_sh (&in, 9, script, NULL, &o);
      ck_assert_str_eq (o.out, "print('hi')\nrefused\n");
      ck_assert_ptr_nonnull (strstr (o.err, "ermission denied"));
      outcome_release (&o);
      chmod (path, 0644);
      free (script);
      script = xasprintf ("echo x >> %s || echo refused", path);
      run_sh (&in, 10, script, NULL, &o);
      ck_assert_str_eq (o.out, "refused\n");
      outcome_release (&o);
    }

  /* An existing file is replaced whole, a link at the destination by
     the file (never followed), a directory never; bad and reserved paths
     refused; a link among the directories is not followed.  */
  {
    cleanup_free char *dest_link = xasprintf ("%s/work/deep/link.py", tmp);
    cleanup_free char *target = xasprintf ("%s/target", tmp);
    cleanup_free char *dir = xasprintf ("%s/work/deep/adir", tmp);
    char *msg;
    file_frames (&in, 2, path, 0644, "again");
    ck_assert_ptr_null (file_answer (&in, 2, 0));
    free (text);
    text = NULL;
    ck_assert_int_eq (boxer_read_file (path, 4096, &text, NULL, NULL), 0);
    ck_assert_str_eq (text, "again");
    ck_assert_int_eq (stat (path, &st), 0);
    ck_assert_int_eq (st.st_mode & 07777, 0644);
    ck_assert_int_eq (symlink (target, dest_link), 0);
    file_frames (&in, 5, dest_link, 0644, "x");
    ck_assert_ptr_null (file_answer (&in, 5, 0));
    ck_assert_int_eq (access (target, F_OK), -1);
    ck_assert_int_eq (lstat (dest_link, &st), 0);
    ck_assert (S_ISREG (st.st_mode));
    ck_assert_int_eq (mkdir (dir, 0755), 0);
    file_frames (&in, 6, dir, 0644, "x");
    msg = file_answer (&in, 6, 1);
    ck_assert_ptr_nonnull (strstr (msg, "cannot put the file in place"));
    free (msg);
    ck_assert_int_eq (stat (dir, &st), 0);
    ck_assert (S_ISDIR (st.st_mode));
    static const char *const bad[] = { "relative", "/a/../etc/x", "/a//b", "/a/./b", "/a/",
                                       "/proc/self/x", "/sys/x", "/dev/x", "/output/x", "/" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
      {
        file_frames (&in, 3, bad[i], 0644, "x");
        msg = file_answer (&in, 3, 3);
        ck_assert_msg (msg && strstr (msg, "is not a path a file may be written to"),
                       "%s: %s", bad[i], msg ? msg : "(accepted)");
        free (msg);
      }
    ck_assert_int_eq (mkdir (outside, 0755), 0);
    ck_assert_int_eq (symlink (outside, link), 0);
    file_frames (&in, 4, via_link, 0644, "x");
    msg = file_answer (&in, 4, 3);
    ck_assert_ptr_nonnull (strstr (msg, "cannot make the directories"));
    free (msg);
    ck_assert_int_eq (access (planted, F_OK), -1);
  }
  stop_init (&in);
}
END_TEST

struct collected
{
  char *paths;                  /* "path=bytes\n" lines in the order sent */
  uint32_t flags;
};

static void
send_collect (struct init *in, uint32_t id, const char *dir, uint64_t files, uint64_t bytes)
{
  struct boxer_init_writer w = { 0 };

  boxer_init_frame_start (&w, BOXER_INIT_COLLECT, id);
  boxer_init_put_str (&w, dir, strlen (dir));
  boxer_init_put_u64 (&w, files);
  boxer_init_put_u64 (&w, bytes);
  write_frame (in, &w);
}

static void
receive_collect (struct init *in, uint32_t id, struct collected *c)
{
  char *cur = NULL, *content = xstrdup ("");
  size_t clen = 0;

  c->paths = xstrdup ("");
  for (;;)
    {
      struct event e = next_event (in);
      struct boxer_init_reader r;
      ck_assert_uint_eq (e.id, id);
      boxer_init_reader_init (&r, e.data, e.len);
      if (e.type == BOXER_INIT_OUTPUT || e.type == BOXER_INIT_OUTPUT_END)
        {
          if (cur)
            {
              char *more = xasprintf ("%s%s=%s\n", c->paths, cur, content);
              free (c->paths);
              c->paths = more;
              free (cur);
              cur = NULL;
              content[0] = '\0';
              clen = 0;
            }
          if (e.type == BOXER_INIT_OUTPUT_END)
            {
              ck_assert (boxer_init_get_u32 (&r, &c->flags) && boxer_init_reader_done (&r));
              free (e.data);
              break;
            }
          {
            uint64_t size;
            ck_assert (boxer_init_get_str (&r, 4096, &cur) && boxer_init_get_u64 (&r, &size)
                       && boxer_init_reader_done (&r));
          }
        }
      else
        {
          ck_assert_int_eq (e.type, BOXER_INIT_OUTPUT_DATA);
          content = xrealloc (content, clen + e.len + 1);
          memcpy (content + clen, e.data, e.len);
          clen += e.len;
          content[clen] = '\0';
        }
      free (e.data);
    }
  free (content);
}

START_TEST (test_collect)
{
  struct init in;
  struct outcome o;
  struct collected c;
  cleanup_free char *out = xasprintf ("%s/output", tmp);
  cleanup_free char *script = NULL;

  ck_assert_int_eq (mkdir (out, 0777), 0);
  ck_assert_int_eq (chmod (out, 0777), 0);
  start_init (&in);
  /* What a hostile program leaves: files, a directory, links out, a FIFO.  */
  script = xasprintf ("cd %s && echo one > a && mkdir sub && echo two > sub/b && "
                      "ln -s /etc/passwd c && ln -s / sub/root && mkfifo d && : > empty",
                      out);
  run_sh (&in, 1, script, NULL, &o);
  ck_assert_uint_eq (o.status, 0);
  outcome_release (&o);

  send_collect (&in, 2, out, 100, 1 << 20);
  receive_collect (&in, 2, &c);
  ck_assert_uint_eq (c.flags, 0);
  ck_assert_ptr_nonnull (strstr (c.paths, "a=one\n"));
  ck_assert_ptr_nonnull (strstr (c.paths, "sub/b=two\n"));
  ck_assert_ptr_nonnull (strstr (c.paths, "empty=\n"));
  ck_assert_ptr_null (strstr (c.paths, "root"));
  ck_assert_ptr_null (strstr (c.paths, "c="));
  ck_assert_ptr_null (strstr (c.paths, "d="));
  ck_assert_ptr_null (strstr (c.paths, "root:"));
  free (c.paths);

  /* Bounds: files, then bytes.  */
  send_collect (&in, 3, out, 1, 1 << 20);
  receive_collect (&in, 3, &c);
  ck_assert_uint_eq (c.flags, BOXER_INIT_OUTPUTS_TRUNCATED);
  ck_assert_ptr_nonnull (strchr (c.paths, '='));
  ck_assert_ptr_eq (strchr (c.paths, '\n') + 1, c.paths + strlen (c.paths));
  free (c.paths);
  send_collect (&in, 4, out, 100, 4);
  receive_collect (&in, 4, &c);
  ck_assert_uint_eq (c.flags, BOXER_INIT_OUTPUTS_TRUNCATED);
  /* One of the two 4-byte files, whichever came first; never both.  */
  ck_assert ((strstr (c.paths, "a=one\n") != NULL) != (strstr (c.paths, "sub/b=two\n") != NULL));
  free (c.paths);

  /* A directory that is a link is not followed at all.  */
  {
    cleanup_free char *ln = xasprintf ("%s/linked-output", tmp);
    ck_assert_int_eq (symlink (out, ln), 0);
    send_collect (&in, 5, ln, 100, 1 << 20);
    receive_collect (&in, 5, &c);
    ck_assert_str_eq (c.paths, "");
    free (c.paths);
  }
  stop_init (&in);
}
END_TEST

static void
send_read (struct init *in, uint32_t id, const char *path, uint64_t max)
{
  struct boxer_init_writer w = { 0 };

  boxer_init_frame_start (&w, BOXER_INIT_READ, id);
  boxer_init_put_str (&w, path, strlen (path));
  boxer_init_put_u64 (&w, max);
  write_frame (in, &w);
}

/* READ: the file's content, or NULL when the answer was an ERROR.  */
static char *
receive_read (struct init *in, uint32_t id, uint32_t *flags)
{
  char *content = NULL;
  size_t clen = 0;

  for (;;)
    {
      struct event e = next_event (in);
      struct boxer_init_reader r;

      ck_assert_uint_eq (e.id, id);
      boxer_init_reader_init (&r, e.data, e.len);
      if (e.type == BOXER_INIT_ERROR)
        {
          ck_assert_ptr_null (content);
          free (e.data);
          return NULL;
        }
      if (e.type == BOXER_INIT_OUTPUT)
        {
          char *path;
          uint64_t size;
          ck_assert (boxer_init_get_str (&r, 4096, &path) && boxer_init_get_u64 (&r, &size)
                     && boxer_init_reader_done (&r));
          free (path);
          content = xstrdup ("");
        }
      else if (e.type == BOXER_INIT_OUTPUT_DATA)
        {
          content = xrealloc (content, clen + e.len + 1);
          memcpy (content + clen, e.data, e.len);
          clen += e.len;
          content[clen] = '\0';
        }
      else
        {
          ck_assert_int_eq (e.type, BOXER_INIT_OUTPUT_END);
          ck_assert (boxer_init_get_u32 (&r, flags) && boxer_init_reader_done (&r));
          free (e.data);
          return content ? content : xstrdup ("");
        }
      free (e.data);
    }
}

/* A session's files: written as its user, parents made as its user, read
   back by READ; what is not a regular file is not read.  */
START_TEST (test_session_files)
{
  struct init in;
  struct outcome o;
  uint32_t flags = 0;
  cleanup_free char *deep = xasprintf ("%s/s/new/dir/f.txt", tmp);
  cleanup_free char *dir = xasprintf ("%s/s/new", tmp);
  cleanup_free char *script = NULL;
  char *got;
  struct stat st;

  start_init (&in);
  {
    struct boxer_init_writer w = { 0 };
    boxer_init_frame_start (&w, BOXER_INIT_FILE_OPEN, 1);
    boxer_init_put_u32 (&w, run_uid ());
    boxer_init_put_u32 (&w, run_uid ());
    boxer_init_put_u32 (&w, 0644);
    boxer_init_put_str (&w, deep, strlen (deep));
    write_frame (&in, &w);
    boxer_init_frame_start (&w, BOXER_INIT_FILE_DATA, 1);
    boxer_init_put_bytes (&w, "hello", 5);
    write_frame (&in, &w);
    boxer_init_frame_start (&w, BOXER_INIT_FILE_CLOSE, 1);
    write_frame (&in, &w);
  }
  ck_assert_ptr_null (file_answer (&in, 1, 0));
  ck_assert_int_eq (stat (dir, &st), 0);
  ck_assert_uint_eq (st.st_uid, run_uid ());
  ck_assert_int_eq (stat (deep, &st), 0);
  ck_assert_uint_eq (st.st_uid, run_uid ());

  /* The session's user may change it, and what it writes is read back.  */
  script = xasprintf ("echo more >> %s && ln -s /etc/passwd %s/s/link && mkfifo %s/s/fifo",
                      deep, tmp, tmp);
  run_sh (&in, 2, script, NULL, &o);
  ck_assert_uint_eq (o.status, 0);
  outcome_release (&o);
  send_read (&in, 3, deep, 1 << 20);
  got = receive_read (&in, 3, &flags);
  ck_assert_ptr_nonnull (got);
  ck_assert_str_eq (got, "hellomore\n");
  ck_assert_uint_eq (flags, 0);
  free (got);

  /* Too large for max: truncated, nothing sent.  */
  send_read (&in, 4, deep, 3);
  got = receive_read (&in, 4, &flags);
  ck_assert_ptr_nonnull (got);
  ck_assert_uint_eq (flags, BOXER_INIT_OUTPUTS_TRUNCATED);
  free (got);
  /* Absent, a link, a FIFO, a directory, the kernel's: no file.  */
  {
    const char *names[] = { "s/absent", "s/link", "s/fifo", "s/new" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
      {
        cleanup_free char *p = xasprintf ("%s/%s", tmp, names[i]);
        send_read (&in, 10 + (uint32_t) i, p, 1 << 20);
        ck_assert_ptr_null (receive_read (&in, 10 + (uint32_t) i, &flags));
      }
    send_read (&in, 20, "/proc/self/status", 1 << 20);
    ck_assert_ptr_null (receive_read (&in, 20, &flags));
  }
  stop_init (&in);
}
END_TEST

START_TEST (test_malformed_commands)
{
  struct init in;
  struct outcome o;
  struct boxer_init_writer w = { 0 };
  struct event e;
  const char *no_args[] = { NULL };

  start_init (&in);
  /* Unknown type, a START without argv, a KILL with no signal, trailing
     bytes: each an ERROR, and boxer-init carries on.  */
  boxer_init_frame_start (&w, 0x42, 1);
  write_frame (&in, &w);
  e = next_event (&in);
  ck_assert_int_eq (e.type, BOXER_INIT_ERROR);
  free (e.data);
  send_start (&in, 2, no_args, NULL);
  e = next_event (&in);
  ck_assert_int_eq (e.type, BOXER_INIT_ERROR);
  ck_assert_uint_eq (e.id, 2);
  free (e.data);
  boxer_init_frame_start (&w, BOXER_INIT_KILL, 3);
  write_frame (&in, &w);
  e = next_event (&in);
  ck_assert_int_eq (e.type, BOXER_INIT_ERROR);
  free (e.data);
  boxer_init_frame_start (&w, BOXER_INIT_FILE_CLOSE, 4);
  boxer_init_put_u32 (&w, 1);
  write_frame (&in, &w);
  e = next_event (&in);
  ck_assert_int_eq (e.type, BOXER_INIT_ERROR);
  free (e.data);
  run_sh (&in, 5, "echo still here", NULL, &o);
  ck_assert_str_eq (o.out, "still here\n");
  outcome_release (&o);

  /* A length no frame may have: the stream cannot be trusted, so it ends.  */
  {
    unsigned char huge[4] = { 0x7f, 0xff, 0xff, 0xff };
    int status;
    ck_assert_int_eq (write (in.to, huge, 4), 4);
    ck_assert_int_eq (waitpid (in.pid, &status, 0), in.pid);
    close (in.to);
    close (in.from);
  }
}
END_TEST

START_TEST (test_decoders)
{
  struct boxer_init_writer w = { 0 };
  struct boxer_init_start s;
  struct boxer_init_reader r;
  char *str;
  uint32_t v;

  /* Paths.  */
  ck_assert (boxer_init_path_is_valid ("/a"));
  ck_assert (boxer_init_path_is_valid ("/a/b.c/..d"));
  ck_assert (!boxer_init_path_is_valid ("/"));
  ck_assert (!boxer_init_path_is_valid ("a/b"));
  ck_assert (!boxer_init_path_is_valid ("/a/../b"));
  ck_assert (!boxer_init_path_is_valid ("/a/."));
  ck_assert (!boxer_init_path_is_valid ("//a"));

  /* A string with a NUL, or longer than allowed, or past the end.  */
  boxer_init_frame_start (&w, 1, 1);
  boxer_init_put_str (&w, "a\0b", 3);
  ck_assert_int_eq (boxer_init_frame_finish (&w), 0);
  boxer_init_reader_init (&r, w.data + 9, w.len - 9);
  ck_assert (!boxer_init_get_str (&r, 100, &str));
  ck_assert_ptr_null (str);
  boxer_init_reader_init (&r, w.data + 9, w.len - 9);
  ck_assert (!boxer_init_get_str (&r, 2, &str));
  boxer_init_reader_init (&r, w.data + 9, 5);
  ck_assert (!boxer_init_get_str (&r, 100, &str));
  /* Once failed, always failed.  */
  ck_assert (!boxer_init_get_u32 (&r, &v));
  boxer_init_writer_release (&w);

  /* A START whose argc claims more strings than the frame holds.  */
  boxer_init_frame_start (&w, BOXER_INIT_START, 1);
  for (int i = 0; i < 2; i++)
    boxer_init_put_u32 (&w, 0);
  for (int i = 0; i < 6; i++)
    boxer_init_put_u64 (&w, 0);
  boxer_init_put_str (&w, "/", 1);
  boxer_init_put_u32 (&w, 1000000);
  ck_assert_int_eq (boxer_init_frame_finish (&w), 0);
  ck_assert (!boxer_init_decode_start (w.data + 9, w.len - 9, &s));
  boxer_init_writer_release (&w);

  /* Frames beyond the maximum are refused when built.  */
  {
    char *big = xmalloc0 (BOXER_INIT_FRAME_MAX);
    boxer_init_frame_start (&w, BOXER_INIT_STDOUT, 1);
    boxer_init_put_bytes (&w, big, BOXER_INIT_FRAME_MAX);
    ck_assert_int_eq (boxer_init_frame_finish (&w), -1);
    free (big);
  }
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("init");
  TCase *tc = tcase_create ("core");
  SRunner *sr;
  int failed;

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_decoders);
  tcase_add_test (tc, test_runs_a_program);
  tcase_add_test (tc, test_program_cannot_forge_frames);
  tcase_add_test (tc, test_stdin);
  tcase_add_test (tc, test_limits);
  tcase_add_test (tc, test_what_a_program_leaves_is_killed);
  tcase_add_test (tc, test_batch_run_is_alone);
  tcase_add_test (tc, test_files);
  tcase_add_test (tc, test_collect);
  tcase_add_test (tc, test_session_files);
  tcase_add_test (tc, test_malformed_commands);
  suite_add_tcase (s, tc);
  sr = srunner_create (s);
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
