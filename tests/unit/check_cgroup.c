/* Unit tests for executor/cgroup.c: mode detection from fake cgroup trees
   in a temporary directory, the v2 layout and files (pure), and the values
   written into a directory of cgroup-like files.  */
#include <config.h>

#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "executor/cgroup.h"

static char *
tmpdir (void)
{
  char *d = xstrdup ("/tmp/boxer-check-cgroup.XXXXXX");
  ck_assert_ptr_nonnull (mkdtemp (d));
  return d;
}

/* Create root/rel (a file; its directories too).  */
static void
touch (const char *root, const char *rel)
{
  cleanup_free char *path = xasprintf ("%s/%s", root, rel);
  cleanup_free char *dir = xstrdup (path);
  FILE *f;

  *strrchr (dir, '/') = '\0';
  ck_assert_int_eq (boxer_mkdir_p (dir, 0755, NULL), 0);
  f = fopen (path, "w");
  ck_assert_ptr_nonnull (f);
  fclose (f);
}

static char *
slurp (const char *dir, const char *file)
{
  cleanup_free char *path = xasprintf ("%s/%s", dir, file);
  char *data = NULL;
  ck_assert_int_eq (boxer_read_file (path, 4096, &data, NULL, NULL), 0);
  return data;
}

START_TEST (test_detect)
{
  cleanup_free char *v2 = tmpdir ();
  cleanup_free char *hybrid = tmpdir ();
  cleanup_free char *v1 = tmpdir ();
  cleanup_free char *none = tmpdir ();

  /* The unified hierarchy: cgroup.controllers at the root.  */
  touch (v2, "cgroup.controllers");
  touch (v2, "cgroup.procs");
  touch (v2, "system.slice/cgroup.procs");
  ck_assert_int_eq (boxer_cgroup_detect (v2), BOXER_CGROUP_V2);

  /* v1 hierarchies plus cgroup2 at unified/ (the test machines).  */
  touch (hybrid, "memory/cgroup.procs");
  touch (hybrid, "cpu/cgroup.procs");
  touch (hybrid, "unified/cgroup.procs");
  touch (hybrid, "unified/cgroup.controllers");
  ck_assert_int_eq (boxer_cgroup_detect (hybrid), BOXER_CGROUP_HYBRID);

  touch (v1, "memory/cgroup.procs");
  touch (v1, "pids/cgroup.procs");
  ck_assert_int_eq (boxer_cgroup_detect (v1), BOXER_CGROUP_V1);

  /* An empty tmpfs, and no directory at all.  */
  ck_assert_int_eq (boxer_cgroup_detect (none), BOXER_CGROUP_NONE);
  ck_assert_int_eq (boxer_cgroup_detect ("/nonexistent/boxer-cgroup"), BOXER_CGROUP_NONE);

  ck_assert_str_eq (boxer_cgroup_mode_name (BOXER_CGROUP_V2), "v2");
  ck_assert_str_eq (boxer_cgroup_mode_name (BOXER_CGROUP_HYBRID), "hybrid");
  ck_assert_str_eq (boxer_cgroup_mode_name (BOXER_CGROUP_V1), "v1");
  ck_assert_str_eq (boxer_cgroup_mode_name (BOXER_CGROUP_NONE), "none");

  boxer_rm_rf (v2, NULL);
  boxer_rm_rf (hybrid, NULL);
  boxer_rm_rf (v1, NULL);
  boxer_rm_rf (none, NULL);
}
END_TEST

START_TEST (test_detect_real)
{
  /* Whatever this machine is, it is one of the modes (the test machines
     are hybrid, the VM test's guest is v2).  */
  enum boxer_cgroup_mode m = boxer_cgroup_detect ("/sys/fs/cgroup");
  ck_assert (m == BOXER_CGROUP_V1 || m == BOXER_CGROUP_HYBRID || m == BOXER_CGROUP_V2);
}
END_TEST

START_TEST (test_parse_own)
{
  cleanup_error struct boxer_error *err = NULL;
  cleanup_free char *a = NULL;
  cleanup_free char *b = NULL;
  cleanup_free char *c = NULL;

  ck_assert_int_eq (boxer_cgroup_parse_own ("0::/system.slice/boxer.service\n", &a, NULL), 0);
  ck_assert_str_eq (a, "/system.slice/boxer.service");
  /* A hybrid host's file: v1 lines first, the v2 one last.  */
  ck_assert_int_eq (boxer_cgroup_parse_own ("4:memory:/process_api/x\n1:cpu:/\n0::/\n", &b, NULL),
                    0);
  ck_assert_str_eq (b, "/");
  ck_assert_int_eq (boxer_cgroup_parse_own ("0::/user.slice/session-1.scope", &c, NULL), 0);
  ck_assert_str_eq (c, "/user.slice/session-1.scope");

  ck_assert_int_lt (boxer_cgroup_parse_own ("4:memory:/a\n1:cpu:/\n", &a, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_RUNTIME);
  ck_assert_str_eq (err->msg, "no cgroup v2 entry (0::/...) in /proc/self/cgroup");
}
END_TEST

START_TEST (test_v2_base)
{
  struct
  {
    const char *own;
    bool leaf;
    const char *want;
  } cases[] = {
    { "/system.slice/boxer.service", false, "/system.slice/boxer.service" },
    { "/system.slice/boxer.service/", false, "/system.slice/boxer.service" },
    /* Restarted inside the layout it made: the leaf's parent.  */
    { "/system.slice/boxer.service/service", true, "/system.slice/boxer.service" },
    { "/", false, "/boxer" },
    { "/boxer/service", true, "/boxer" },
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      cleanup_free char *base = boxer_cgroup_v2_base (cases[i].own, cases[i].leaf);
      ck_assert_msg (strcmp (base, cases[i].want) == 0, "'%s': '%s', want '%s'", cases[i].own,
                     base, cases[i].want);
    }
}
END_TEST

START_TEST (test_v2_settings)
{
  struct boxer_limits l = { .cpu_cores = 1.5, .memory_mb = 256, .wall_clock_secs = 5,
                            .pids_limit = 64, .nofile = 256 };
  struct boxer_cgroup_setting s[BOXER_CGROUP_V2_SETTINGS];

  boxer_cgroup_v2_settings (&l, s);
  ck_assert_str_eq (s[0].file, "memory.max");
  ck_assert_str_eq (s[0].value, "268435456");
  ck_assert_str_eq (s[1].file, "memory.swap.max");
  ck_assert_str_eq (s[1].value, "0");
  ck_assert (s[1].optional);
  ck_assert_str_eq (s[2].file, "memory.oom.group");
  ck_assert_str_eq (s[2].value, "1");
  ck_assert_str_eq (s[3].file, "cpu.max");
  ck_assert_str_eq (s[3].value, "150000 100000");
  ck_assert_str_eq (s[4].file, "pids.max");
  ck_assert_int_eq (atoi (s[4].value), 64 + BOXER_CGROUP_PIDS_HEADROOM);
  ck_assert (!s[0].optional && !s[2].optional && !s[3].optional && !s[4].optional);

  l.cpu_cores = 0.25;
  l.memory_mb = 8192;
  boxer_cgroup_v2_settings (&l, s);
  ck_assert_str_eq (s[0].value, "8589934592");
  ck_assert_str_eq (s[3].value, "25000 100000");
}
END_TEST

START_TEST (test_write_settings)
{
  cleanup_error struct boxer_error *err = NULL;
  cleanup_free char *dir = tmpdir ();
  struct boxer_limits l = { .cpu_cores = 2, .memory_mb = 64, .pids_limit = 16 };
  struct boxer_cgroup_setting s[BOXER_CGROUP_V2_SETTINGS];

  /* A kernel without swap accounting: no memory.swap.max, and that is
     fine; every other file is required.  */
  touch (dir, "memory.max");
  touch (dir, "memory.oom.group");
  touch (dir, "cpu.max");
  touch (dir, "pids.max");
  boxer_cgroup_v2_settings (&l, s);
  ck_assert_int_eq (boxer_cgroup_write_settings (dir, s, BOXER_CGROUP_V2_SETTINGS, NULL), 0);
  {
    cleanup_free char *mem = slurp (dir, "memory.max");
    cleanup_free char *cpu = slurp (dir, "cpu.max");
    cleanup_free char *pids = slurp (dir, "pids.max");
    cleanup_free char *group = slurp (dir, "memory.oom.group");
    cleanup_free char *swap = xasprintf ("%s/memory.swap.max", dir);
    ck_assert_str_eq (mem, "67108864");
    ck_assert_str_eq (cpu, "200000 100000");
    ck_assert_str_eq (pids, "528");
    ck_assert_str_eq (group, "1");
    ck_assert_int_lt (access (swap, F_OK), 0);
  }
  /* With it, it is written.  */
  touch (dir, "memory.swap.max");
  ck_assert_int_eq (boxer_cgroup_write_settings (dir, s, BOXER_CGROUP_V2_SETTINGS, NULL), 0);
  {
    cleanup_free char *swap = slurp (dir, "memory.swap.max");
    ck_assert_str_eq (swap, "0");
  }
  /* A controller that is not enabled: its files are missing.  */
  {
    cleanup_free char *pids = xasprintf ("%s/pids.max", dir);
    cleanup_free char *want = xasprintf ("open '%s'", pids);
    unlink (pids);
    ck_assert_int_lt (boxer_cgroup_write_settings (dir, s, BOXER_CGROUP_V2_SETTINGS, &err), 0);
    ck_assert_msg (strstr (err->msg, want) != NULL, "message '%s'", err->msg);
  }
  boxer_rm_rf (dir, NULL);
}
END_TEST

START_TEST (test_v2_stats)
{
  struct boxer_cgroup_stats st;

  boxer_cgroup_v2_parse_stats ("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n",
                               "67100672\n", &st);
  ck_assert (st.oom_killed);
  ck_assert_int_eq (st.memory_peak_bytes, 67100672);

  /* memory.oom.group: the kernels that count the group kill apart.  */
  boxer_cgroup_v2_parse_stats ("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\noom_group_kill 1\n",
                               NULL, &st);
  ck_assert (st.oom_killed);
  ck_assert_int_eq (st.memory_peak_bytes, -1);

  /* "max" events alone (reclaim at the limit) are not an OOM kill.  */
  boxer_cgroup_v2_parse_stats ("low 0\nhigh 0\nmax 40\noom 0\noom_kill 0\n", "1000\n", &st);
  ck_assert (!st.oom_killed);
  ck_assert_int_eq (st.memory_peak_bytes, 1000);
}
END_TEST

/* The cgroup2 mount of this machine: /sys/fs/cgroup on v2 hosts,
   /sys/fs/cgroup/unified on hybrid ones.  */
static const char *
cgroup2_mount (void)
{
  static const char *const candidates[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
  struct statfs st;

  for (size_t i = 0; i < 2; i++)
    if (statfs (candidates[i], &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC)
      return candidates[i];
  return NULL;
}

static void
join_cgroup (const char *dir)
{
  cleanup_free char *procs = xasprintf ("%s/cgroup.procs", dir);
  char num[24];
  int fd = open (procs, O_WRONLY | O_CLOEXEC);
  snprintf (num, sizeof num, "%d", (int) getpid ());
  if (fd < 0 || write (fd, num, strlen (num)) < 0)
    _exit (1);
  close (fd);
}

static void *
linger (void *arg)
{
  (void) arg;
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  pause ();
  return NULL;
}

static bool
is_zombie (pid_t pid)
{
  cleanup_free char *path = xasprintf ("/proc/%d/stat", (int) pid);
  cleanup_free char *stat = NULL;
  const char *paren;

  if (boxer_read_file (path, 4096, &stat, NULL, NULL) < 0)
    return false;
  paren = strrchr (stat, ')');
  return paren && paren[1] == ' ' && paren[2] == 'Z';
}

/* The start-up move into the leaf, on the real cgroup2 hierarchy: with a
   process whose main thread has exited while another runs (it stays in
   the source's cgroup.procs after its threads moved: a loop that waits for
   cgroup.procs to empty never ends, which is how the quickstart once
   failed in a v2 VM) and a plain one.  */
START_TEST (test_v2_move_procs)
{
  cleanup_error struct boxer_error *err = NULL;
  cleanup_error struct boxer_error *err2 = NULL;
  const char *mnt = cgroup2_mount ();
  cleanup_free char *base = NULL;
  cleanup_free char *src = NULL;
  cleanup_free char *leaf = NULL;
  cleanup_free char *src_procs = NULL;
  cleanup_free char *threads = NULL;
  cleanup_free char *procs = NULL;
  cleanup_free char *moved = NULL;
  cleanup_free char *leader_num = NULL;
  cleanup_free char *plain_num = NULL;
  cleanup_free char *want = NULL;
  bool zombie = false;
  int moved_r = 0, stuck_r = 0, removed = 0;
  pid_t leader, plain;

  if (geteuid () != 0 || mnt == NULL)
    {
      /* A test machine has both; a skip there would hide the case.  */
      ck_assert_msg (getenv ("CI") == NULL || strcmp (getenv ("CI"), "true") != 0,
                     "needs root and a cgroup2 mount");
      return;
    }
  base = xasprintf ("%s/boxer-check-move.%d", mnt, (int) getpid ());
  src = xasprintf ("%s/src", base);
  leaf = xasprintf ("%s/leaf", base);
  src_procs = xasprintf ("%s/cgroup.procs", src);
  ck_assert_int_eq (mkdir (base, 0755), 0);
  ck_assert_int_eq (mkdir (src, 0755), 0);
  ck_assert_int_eq (mkdir (leaf, 0755), 0);

  /* Both children die with this test process, whatever happens to it.  */
  leader = fork ();
  if (leader == 0)
    {
      pthread_t t;
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      join_cgroup (src);
      if (pthread_create (&t, NULL, linger, NULL) != 0)
        _exit (1);
      pthread_exit (NULL);
    }
  plain = fork ();
  if (plain == 0)
    {
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      join_cgroup (src);
      pause ();
      _exit (0);
    }
  leader_num = xasprintf ("%d\n", (int) leader);
  plain_num = xasprintf ("%d\n", (int) plain);
  want = xasprintf ("thread %d is still there after 100 ms", (int) plain);

  /* Checked once all is cleaned up: a failed assertion ends the test
     process, and would leave the cgroups behind.  */
  for (int i = 0; i < 500 && leader > 0 && plain > 0; i++)
    {
      cleanup_free char *now = NULL;
      if (boxer_read_file (src_procs, 4096, &now, NULL, NULL) == 0 && is_zombie (leader)
          && strstr (now, plain_num))
        {
          zombie = true;
          break;
        }
      usleep (10000);
    }
  if (zombie)
    {
      cleanup_free char *src_threads = xasprintf ("%s/cgroup.threads", src);
      cleanup_free char *leaf_procs = xasprintf ("%s/cgroup.procs", leaf);
      cleanup_free char *nowhere = xasprintf ("%s/missing", base);
      int fd;

      moved_r = boxer_cgroup_v2_move_procs (src, leaf, 2000, &err);
      boxer_read_file (src_threads, 4096, &threads, NULL, NULL);
      boxer_read_file (src_procs, 4096, &procs, NULL, NULL);
      boxer_read_file (leaf_procs, 4096, &moved, NULL, NULL);

      /* A live process that cannot go (here: the target is missing) is
         waited for, then named in the error.  */
      fd = open (src_procs, O_WRONLY | O_CLOEXEC);
      if (fd >= 0 && write (fd, plain_num, strlen (plain_num) - 1) > 0)
        stuck_r = boxer_cgroup_v2_move_procs (src, nowhere, 100, &err2);
      if (fd >= 0)
        close (fd);
    }
  if (leader > 0)
    kill (leader, SIGKILL), waitpid (leader, NULL, 0);
  if (plain > 0)
    kill (plain, SIGKILL), waitpid (plain, NULL, 0);
  removed = rmdir (leaf) + rmdir (src) + rmdir (base);

  ck_assert_int_gt (leader, 0);
  ck_assert_int_gt (plain, 0);
  ck_assert_msg (zombie, "the leader never became a zombie with a live thread");
  ck_assert_msg (moved_r == 0, "%s", err ? err->msg : "");
  /* No live thread is left in the source...  */
  ck_assert_str_eq (threads, "");
  /* ...though the exited main thread is still listed there...  */
  ck_assert_str_eq (procs, leader_num);
  /* ...and the plain process moved.  */
  ck_assert_ptr_nonnull (strstr (moved, plain_num));
  ck_assert_int_eq (stuck_r, -1);
  ck_assert_ptr_nonnull (err2);
  ck_assert_ptr_nonnull (strstr (err2->msg, want));
  ck_assert_int_eq (removed, 0);
}
END_TEST

static Suite *
cgroup_suite (void)
{
  Suite *s = suite_create ("cgroup");
  TCase *tc = tcase_create ("core");

  tcase_add_test (tc, test_detect);
  tcase_add_test (tc, test_detect_real);
  tcase_add_test (tc, test_parse_own);
  tcase_add_test (tc, test_v2_base);
  tcase_add_test (tc, test_v2_settings);
  tcase_add_test (tc, test_write_settings);
  tcase_add_test (tc, test_v2_stats);
  tcase_add_test (tc, test_v2_move_procs);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  SRunner *sr = srunner_create (cgroup_suite ());
  int failed;

  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
