/* Unit tests for executor/outputs.c (capturing what a run left under
   /output, hostile trees included, and the tmpfs) and executor/records.c
   (run records and reading their outputs), on temporary directories.  Run
   as root, like the whole suite: they make device nodes and mount tmpfs.  */
#include <config.h>

#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <json-c/json.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include "common/fsutil.h"
#include "executor/expiry.h"
#include "executor/outputs.h"
#include "executor/records.h"

#define RUN_ID "r_0123456789abcdef0123456789abcdef"

static char tmp[] = "/tmp/boxer-check-outputs-XXXXXX";
static char *src, *dst;
static int dst_fd = -1;

static void
setup (void)
{
  strcpy (tmp, "/tmp/boxer-check-outputs-XXXXXX");
  ck_assert_ptr_nonnull (mkdtemp (tmp));
  src = xasprintf ("%s/src", tmp);
  dst = xasprintf ("%s/dst", tmp);
  ck_assert_int_eq (mkdir (src, 0755), 0);
  ck_assert_int_eq (mkdir (dst, 0700), 0);
  dst_fd = open (dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ck_assert_int_ge (dst_fd, 0);
}

static void
teardown (void)
{
  close (dst_fd);
  umount2 (src, MNT_DETACH);
  boxer_rm_rf (tmp, NULL);
  free (src);
  free (dst);
}

/* Create src/rel with contents (NULL: a directory).  */
static void
put (const char *rel, const char *data, size_t len)
{
  cleanup_free char *p = xasprintf ("%s/%s", src, rel);
  cleanup_error struct boxer_error *err = NULL;

  if (data == NULL)
    ck_assert_int_eq (boxer_mkdir_p (p, 0755, &err), 0);
  else
    {
      *strrchr (p, '/') = '\0';
      ck_assert_int_eq (boxer_mkdir_p (p, 0755, &err), 0);
      p[strlen (p)] = '/';
      ck_assert_msg (boxer_write_file_atomic (p, data, len, 0644, &err) == 0, "%s",
                     err ? err->msg : "");
    }
}

static void
put_str (const char *rel, const char *data)
{
  put (rel, data, strlen (data));
}

static char *
dst_contents (const char *rel, size_t *len)
{
  cleanup_free char *p = xasprintf ("%s/%s", dst, rel);
  cleanup_error struct boxer_error *err = NULL;
  char *data = NULL;

  ck_assert_msg (boxer_read_file (p, 1 << 20, &data, len, &err) == 0, "%s",
                 err ? err->msg : "");
  return data;
}

static bool
dst_has (const char *rel)
{
  cleanup_free char *p = xasprintf ("%s/%s", dst, rel);
  struct stat st;
  return lstat (p, &st) == 0;
}

static void
capture (struct boxer_outputs_capture *c, int64_t bytes, int64_t files)
{
  cleanup_error struct boxer_error *err = NULL;

  *c = (struct boxer_outputs_capture) { .limit_bytes = bytes, .limit_files = files };
  ck_assert_msg (boxer_outputs_capture (src, dst_fd, c, &err) == 0, "%s", err ? err->msg : "");
}

START_TEST (test_capture_nested_and_binary)
{
  struct boxer_outputs_capture c;
  char bin[256];
  cleanup_free char *got = NULL;
  size_t len;

  for (int i = 0; i < 256; i++)
    bin[i] = (char) i;
  put_str ("result.json", "{\"ok\": true}");
  put ("d/e", NULL, 0);
  put_str ("d/e/f.txt", "nested");
  put ("bin/all-bytes", bin, sizeof bin);
  put ("empty-dir", NULL, 0);
  put_str ("empty", "");

  capture (&c, 1 << 20, 100);
  ck_assert_uint_eq (c.nfiles, 4);
  ck_assert (!c.truncated);
  ck_assert_str_eq (c.files[0].path, "bin/all-bytes");
  ck_assert_int_eq (c.files[0].size, 256);
  ck_assert_str_eq (c.files[1].path, "d/e/f.txt");
  ck_assert_str_eq (c.files[2].path, "empty");
  ck_assert_int_eq (c.files[2].size, 0);
  ck_assert_str_eq (c.files[3].path, "result.json");
  ck_assert_int_eq (c.bytes, 256 + 6 + 12);

  got = dst_contents ("bin/all-bytes", &len);
  ck_assert_uint_eq (len, 256);
  ck_assert_mem_eq (got, bin, 256);
  free (got);
  got = dst_contents ("d/e/f.txt", &len);
  ck_assert_str_eq (got, "nested");
  ck_assert (!dst_has ("empty-dir"));
  boxer_outputs_capture_release (&c);
}
END_TEST

START_TEST (test_capture_hostile_entries)
{
  struct boxer_outputs_capture c;
  cleanup_free char *p = NULL;

  put_str ("real", "r");
  p = xasprintf ("%s/leak", src);
  ck_assert_int_eq (symlink ("/etc/passwd", p), 0);
  free (p);
  p = xasprintf ("%s/root", src);
  ck_assert_int_eq (symlink ("/", p), 0);
  free (p);
  p = xasprintf ("%s/dotdot", src);
  ck_assert_int_eq (symlink ("..", p), 0);
  free (p);
  /* Opening a FIFO for reading would block for ever: the test's timeout
     catches that.  */
  p = xasprintf ("%s/fifo", src);
  ck_assert_int_eq (mkfifo (p, 0666), 0);
  free (p);
  p = xasprintf ("%s/null", src);
  ck_assert_int_eq (mknod (p, S_IFCHR | 0666, makedev (1, 3)), 0);
  free (p);
  p = xasprintf ("%s/zero", src);
  ck_assert_int_eq (mknod (p, S_IFCHR | 0666, makedev (1, 5)), 0);
  free (p);
  /* A directory reached through a symlink is not followed either.  */
  p = xasprintf ("%s/etc", src);
  ck_assert_int_eq (symlink ("/etc", p), 0);

  capture (&c, 1 << 20, 100);
  ck_assert_uint_eq (c.nfiles, 1);
  ck_assert_str_eq (c.files[0].path, "real");
  ck_assert (!c.truncated);
  ck_assert (!dst_has ("leak"));
  ck_assert (!dst_has ("root"));
  ck_assert (!dst_has ("fifo"));
  ck_assert (!dst_has ("null"));
  ck_assert (!dst_has ("etc"));
  boxer_outputs_capture_release (&c);
}
END_TEST

START_TEST (test_capture_limits)
{
  struct boxer_outputs_capture c;

  put_str ("a", "1111");
  put_str ("b", "22");
  put_str ("c", "3");
  put_str ("d", "4444444444");

  /* Whole files in name order while they fit; the rest are left out.  */
  capture (&c, 7, 100);
  ck_assert (c.truncated);
  ck_assert_uint_eq (c.nfiles, 3);
  ck_assert_str_eq (c.files[0].path, "a");
  ck_assert_str_eq (c.files[1].path, "b");
  ck_assert_str_eq (c.files[2].path, "c");
  ck_assert (!dst_has ("d"));
  boxer_outputs_capture_release (&c);
}
END_TEST

START_TEST (test_capture_file_count)
{
  struct boxer_outputs_capture c;

  put_str ("a", "1");
  put_str ("b", "2");
  put_str ("c", "3");
  capture (&c, 1 << 20, 2);
  ck_assert (c.truncated);
  ck_assert_uint_eq (c.nfiles, 2);
  ck_assert (!dst_has ("c"));
  boxer_outputs_capture_release (&c);
}
END_TEST

START_TEST (test_capture_depth_and_names)
{
  struct boxer_outputs_capture c;
  char deep[4096] = "";

  for (int i = 0; i < BOXER_OUTPUTS_MAX_DEPTH + 2; i++)
    strcat (deep, i ? "/d" : "d");
  put (deep, NULL, 0);
  strcat (deep, "/too-deep");
  put_str (deep, "x");
  put_str ("bad\xffname", "x");
  put_str ("ctl\x01name", "x");
  put_str ("ok-\xc3\xa9", "x");

  capture (&c, 1 << 20, 100);
  ck_assert (c.truncated);
  ck_assert_uint_eq (c.nfiles, 1);
  ck_assert_str_eq (c.files[0].path, "ok-\xc3\xa9");
  boxer_outputs_capture_release (&c);
}
END_TEST

START_TEST (test_tmpfs)
{
  cleanup_error struct boxer_error *err = NULL;
  cleanup_free char *big = xasprintf ("%s/big", src);
  cleanup_close int fd = -1;
  char block[4096] = { 0 };
  ssize_t written = 0, n;
  struct stat st;

  ck_assert_int_eq (boxer_outputs_mount (src, 64 * 1024, 4, &err), 0);
  ck_assert_int_eq (stat (src, &st), 0);
  ck_assert_int_eq (st.st_mode & 07777, 01777);

  /* Room for twice the limits (a page per file), and no more.  */
  fd = open (big, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ck_assert_int_ge (fd, 0);
  while ((n = write (fd, block, sizeof block)) > 0 && written < (1 << 20))
    written += n;
  ck_assert_int_lt (n, 0);
  ck_assert_int_eq (errno, ENOSPC);
  ck_assert_int_eq (written, 128 * 1024 + 2 * 4 * sysconf (_SC_PAGESIZE));
  close (fd);
  fd = -1;

  ck_assert_int_eq (boxer_outputs_unmount (src, &err), 0);
  ck_assert_int_ne (access (big, F_OK), 0);
  /* Twice, and on a missing directory: both fine.  */
  ck_assert_int_eq (boxer_outputs_unmount (src, &err), 0);
  ck_assert_int_eq (boxer_outputs_unmount ("/nonexistent/boxer/output", &err), 0);
}
END_TEST

/* Records.  */

static void
make_record (const char *home)
{
  cleanup_error struct boxer_error *err = NULL;
  cleanup_close int out = -1;
  struct boxer_outputs_capture c;
  static const char json[] = "{\"id\": \"" RUN_ID "\"}";

  put_str ("out.txt", "hello");
  put ("sub", NULL, 0);
  put_str ("sub/x.bin", "xx");
  ck_assert_int_eq (boxer_records_stage (home, RUN_ID, &out, &err), 0);
  *(&c) = (struct boxer_outputs_capture) { .limit_bytes = 1000, .limit_files = 10 };
  ck_assert_int_eq (boxer_outputs_capture (src, out, &c, &err), 0);
  boxer_outputs_capture_release (&c);
  /* Not visible before the commit.  */
  {
    cleanup_free char *text = NULL;
    size_t len;
    ck_assert_int_lt (boxer_records_read (home, RUN_ID, 60, &text, &len, &err), 0);
    ck_assert_int_eq (err->category, BOXER_ERR_RUN_NOT_FOUND);
    boxer_error_release (&err);
  }
  ck_assert_int_eq (boxer_records_commit (home, RUN_ID, json, strlen (json), &err), 0);
}

static void
expect_output (const char *home, const char *path, const char *want)
{
  cleanup_error struct boxer_error *err = NULL;
  cleanup_close int fd = -1;
  int64_t size;
  char buf[64] = "";

  ck_assert_msg (boxer_records_open_output (home, RUN_ID, 60, path, &fd, &size, &err) == 0,
                 "%s: %s", path, err ? err->msg : "");
  ck_assert_int_eq (size, (int64_t) strlen (want));
  ck_assert_int_eq (read (fd, buf, sizeof buf - 1), (ssize_t) strlen (want));
  ck_assert_str_eq (buf, want);
}

static void
expect_no_output (const char *home, const char *path, enum boxer_error_category category)
{
  cleanup_error struct boxer_error *err = NULL;
  cleanup_close int fd = -1;
  int64_t size;

  ck_assert_msg (boxer_records_open_output (home, RUN_ID, 60, path, &fd, &size, &err) < 0,
                 "%s opened", path);
  ck_assert_msg (err->category == category, "%s: category %d (%s)", path, err->category,
                 err->msg);
}

START_TEST (test_records)
{
  cleanup_free char *home = xasprintf ("%s/home", tmp);
  cleanup_error struct boxer_error *err = NULL;
  cleanup_free char *text = NULL;
  cleanup_free char *p = NULL;
  size_t len;

  make_record (home);
  ck_assert_int_eq (boxer_records_read (home, RUN_ID, 60, &text, &len, &err), 0);
  ck_assert_str_eq (text, "{\"id\": \"" RUN_ID "\"}");

  expect_output (home, "out.txt", "hello");
  expect_output (home, "sub/x.bin", "xx");
  expect_no_output (home, "nope", BOXER_ERR_FILE_NOT_FOUND);
  expect_no_output (home, "sub", BOXER_ERR_FILE_NOT_FOUND);
  expect_no_output (home, "../result.json", BOXER_ERR_INVALID);
  expect_no_output (home, "/etc/passwd", BOXER_ERR_INVALID);
  expect_no_output (home, "sub/../out.txt", BOXER_ERR_INVALID);

  /* Planted links in a record (which capture never makes) still lead
     nowhere.  */
  p = xasprintf ("%s/runs/records/%s/outputs/leak", home, RUN_ID);
  ck_assert_int_eq (symlink ("/etc/passwd", p), 0);
  free (p);
  p = xasprintf ("%s/runs/records/%s/outputs/up", home, RUN_ID);
  ck_assert_int_eq (symlink ("..", p), 0);
  expect_no_output (home, "leak", BOXER_ERR_FILE_NOT_FOUND);
  expect_no_output (home, "up/result.json", BOXER_ERR_FILE_NOT_FOUND);

  /* Unknown and malformed run ids.  */
  {
    cleanup_close int fd = -1;
    int64_t size;
    ck_assert_int_lt (boxer_records_open_output (home, "r_00000000000000000000000000000000", 60,
                                                 "out.txt", &fd, &size, &err), 0);
    ck_assert_int_eq (err->category, BOXER_ERR_RUN_NOT_FOUND);
    boxer_error_release (&err);
    ck_assert_int_lt (boxer_records_read (home, "../../etc", 60, &text, &len, &err), 0);
    ck_assert_int_eq (err->category, BOXER_ERR_RUN_NOT_FOUND);
    ck_assert_str_eq (err->msg, "run '../../etc' not found; run records are kept for 60 s");
    boxer_error_release (&err);
  }
}
END_TEST

/* A record as full as cfg lets a run make it: streams of control bytes
   (six bytes each in JSON), and files_n files of file_bytes each, every
   one at the bottom of /output's deepest chain of directories of its own,
   named with characters JSON doubles.  Returns the disk it takes.  */
static int64_t
fullest_record (const char *home, const struct boxer_config *cfg, int files_n,
                int64_t file_bytes)
{
  cleanup_error struct boxer_error *err = NULL;
  cleanup_close int out = -1;
  cleanup_free char *stream = xmalloc0 ((size_t) cfg->output_limit_bytes);
  cleanup_free char *data = xmalloc0 ((size_t) file_bytes);
  cleanup_free char *record = xasprintf ("%s/runs/records/%s", home, RUN_ID);
  struct boxer_outputs_capture c;
  json_object *o = json_object_new_object ();
  json_object *list = json_object_new_array ();
  char name[121];
  int64_t used;

  memset (stream, 1, (size_t) cfg->output_limit_bytes);
  for (int f = 0; f < files_n; f++)
    {
      cleanup_free char *rel = xasprintf ("%c", 'a' + f);
      /* 31 components of 120 and a file: within BOXER_PATH_MAX.  */
      memset (name, '"', 60);
      memset (name + 60, '\\', 60);
      name[120] = '\0';
      for (int d = 1; d < BOXER_OUTPUTS_MAX_DEPTH - 1; d++)
        {
          char *next = xasprintf ("%s/%s", rel, name);
          free (rel);
          rel = next;
        }
      {
        cleanup_free char *file = xasprintf ("%s/f", rel);
        put (file, data, (size_t) file_bytes);
      }
    }
  ck_assert_int_eq (boxer_records_stage (home, RUN_ID, &out, &err), 0);
  c = (struct boxer_outputs_capture) { .limit_bytes = cfg->outputs_limit_bytes,
                                       .limit_files = cfg->outputs_limit_files };
  ck_assert_int_eq (boxer_outputs_capture (src, out, &c, &err), 0);
  ck_assert_int_eq ((int) c.nfiles, files_n);
  ck_assert (!c.truncated);
  for (size_t i = 0; i < c.nfiles; i++)
    {
      json_object *f = json_object_new_object ();
      json_object_object_add (f, "path", json_object_new_string (c.files[i].path));
      json_object_object_add (f, "size", json_object_new_int64 (c.files[i].size));
      json_object_array_add (list, f);
    }
  boxer_outputs_capture_release (&c);
  json_object_object_add (o, "id", json_object_new_string (RUN_ID));
  json_object_object_add (o, "stdout", json_object_new_string_len (
                                         stream, (int) cfg->output_limit_bytes));
  json_object_object_add (o, "stderr", json_object_new_string_len (
                                         stream, (int) cfg->output_limit_bytes));
  json_object_object_add (o, "outputs", list);
  {
    size_t len;
    const char *text = json_object_to_json_string_length (
      o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    ck_assert_int_eq (boxer_records_commit (home, RUN_ID, text, len, &err), 0);
  }
  json_object_put (o);
  ck_assert_int_eq (boxer_expiry_usage (record, &used, &err), 0);
  return used;
}

/* A record can take more than its run was charged (escapes, directories):
   settled, the budget's ledger counts what it took.  */
START_TEST (test_records_settle)
{
  cleanup_free char *home = xasprintf ("%s/home", tmp);
  cleanup_free char *records = xasprintf ("%s/home/runs/records", tmp);
  cleanup_free char *ledger = xasprintf ("%s/home/runs/records/.usage", tmp);
  cleanup_free char *text = NULL;
  cleanup_error struct boxer_error *err = NULL;
  struct boxer_expiry_charge charge;
  struct boxer_config cfg;
  int64_t used;
  size_t len;

  boxer_config_init_defaults (&cfg);
  free (cfg.home);
  cfg.home = xstrdup (home);
  cfg.min_free_bytes = 0;
  cfg.output_limit_bytes = 64 * 1024;
  cfg.outputs_limit_bytes = 64 * 1024;
  cfg.outputs_limit_files = 3;
  ck_assert_int_eq (boxer_mkdir_p (records, 0700, &err), 0);
  ck_assert_int_eq (boxer_records_admit (&cfg, &charge, &err), 0);
  ck_assert_int_gt (charge.bytes, 0);
  used = fullest_record (home, &cfg, 3, 4097);
  ck_assert_msg (used > charge.bytes, "the record (%lld) fits its charge (%lld)",
                 (long long) used, (long long) charge.bytes);
  boxer_records_settle (&cfg, RUN_ID, &charge);
  ck_assert_int_eq (boxer_read_file (ledger, 96, &text, &len, &err), 0);
  ck_assert_msg (strtoll (text + 21, NULL, 10) >= used, "ledger %.41s, record %lld", text,
                 (long long) used);
  boxer_config_release (&cfg);
}
END_TEST

START_TEST (test_records_expiry)
{
  cleanup_free char *home = xasprintf ("%s/home", tmp);
  cleanup_free char *result = NULL;
  cleanup_free char *record = NULL;
  cleanup_error struct boxer_error *err = NULL;
  cleanup_free char *text = NULL;
  struct timespec ts[2] = { { time (NULL) - 100, 0 }, { time (NULL) - 100, 0 } };
  size_t len;

  make_record (home);
  result = xasprintf ("%s/runs/records/%s/result.json", home, RUN_ID);
  record = xasprintf ("%s/runs/records/%s", home, RUN_ID);
  ck_assert_int_eq (utimensat (AT_FDCWD, result, ts, 0), 0);

  /* Expired is gone for readers before the sweeper comes.  */
  ck_assert_int_lt (boxer_records_read (home, RUN_ID, 50, &text, &len, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_RUN_NOT_FOUND);
  boxer_error_release (&err);
  ck_assert_int_eq (boxer_records_read (home, RUN_ID, 200, &text, &len, &err), 0);

  ck_assert_int_eq (boxer_records_sweep (home, 200, &err), 0);
  ck_assert_int_eq (access (record, F_OK), 0);
  ck_assert_int_eq (boxer_records_sweep (home, 50, &err), 0);
  ck_assert_int_ne (access (record, F_OK), 0);
}
END_TEST

START_TEST (test_records_discard)
{
  cleanup_free char *home = xasprintf ("%s/home", tmp);
  cleanup_free char *records = xasprintf ("%s/runs/records", home);
  cleanup_error struct boxer_error *err = NULL;
  cleanup_close int out = -1;
  int n = 0;

  ck_assert_int_eq (boxer_records_stage (home, RUN_ID, &out, &err), 0);
  boxer_records_discard (home, RUN_ID);
  {
    cleanup_dir DIR *d = opendir (records);
    while (readdir (d))
      n++;
  }
  ck_assert_int_eq (n, 2);
}
END_TEST

static Suite *
outputs_suite (void)
{
  Suite *s = suite_create ("outputs");
  TCase *tc = tcase_create ("capture");

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_set_timeout (tc, 20);
  tcase_add_test (tc, test_capture_nested_and_binary);
  tcase_add_test (tc, test_capture_hostile_entries);
  tcase_add_test (tc, test_capture_limits);
  tcase_add_test (tc, test_capture_file_count);
  tcase_add_test (tc, test_capture_depth_and_names);
  tcase_add_test (tc, test_tmpfs);
  tcase_add_test (tc, test_records);
  tcase_add_test (tc, test_records_expiry);
  tcase_add_test (tc, test_records_settle);
  tcase_add_test (tc, test_records_discard);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  SRunner *sr = srunner_create (outputs_suite ());
  int failed;

  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
