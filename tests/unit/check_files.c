/* Unit tests for executor/files.c (the upload store) and executor/expiry.c
   (ids, expiry and sweeping), on a temporary home.  */
#include <config.h>

#include <check.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "executor/expiry.h"
#include "executor/files.h"

static char home[] = "/tmp/boxer-check-files-XXXXXX";

static void
setup (void)
{
  strcpy (home, "/tmp/boxer-check-files-XXXXXX");
  ck_assert_ptr_nonnull (mkdtemp (home));
}

static void
teardown (void)
{
  boxer_rm_rf (home, NULL);
}

/* home + "/" + the formatted relative path; caller frees.  */
#define PATH_OF(fmt, a) xasprintf ("%s/" fmt, home, a)

static bool
exists_path (char *p)
{
  struct stat st;
  bool r = lstat (p, &st) == 0;
  free (p);
  return r;
}
#define exists(fmt, a) exists_path (PATH_OF (fmt, a))

/* Set the mtime of a path to secs ago.  */
static void
age_path (char *p, long secs)
{
  struct timespec ts[2] = { { time (NULL) - secs, 0 }, { time (NULL) - secs, 0 } };
  ck_assert_int_eq (utimensat (AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
  free (p);
}
#define age(fmt, a, secs) age_path (PATH_OF (fmt, a), secs)

static void
upload (const char *name, const char *data, struct boxer_file_info *out)
{
  cleanup_error struct boxer_error *err = NULL;
  struct boxer_upload *up = NULL;

  ck_assert_int_eq (boxer_files_upload_begin (home, name, NULL, &up, &err), 0);
  /* In pieces, as the multipart parser hands them over.  */
  for (size_t i = 0; i < strlen (data); i += 3)
    {
      size_t n = strlen (data) - i < 3 ? strlen (data) - i : 3;
      ck_assert_int_eq (boxer_files_upload_write (up, data + i, n, &err), 0);
    }
  ck_assert_int_eq (boxer_files_upload_commit (up, out, &err), 0);
  boxer_files_upload_free (up);
}

START_TEST (test_ids)
{
  ck_assert (boxer_files_id_is_valid ("f_0123456789abcdef0123456789abcdef"));
  ck_assert (!boxer_files_id_is_valid ("f_0123456789abcdef0123456789abcde"));
  ck_assert (!boxer_files_id_is_valid ("f_0123456789abcdef0123456789abcdef0"));
  ck_assert (!boxer_files_id_is_valid ("f_0123456789ABCDEF0123456789abcdef"));
  ck_assert (!boxer_files_id_is_valid ("r_0123456789abcdef0123456789abcdef"));
  ck_assert (!boxer_files_id_is_valid ("f_../../../../../../../../etc/pass"));
  ck_assert (!boxer_files_id_is_valid (""));
  ck_assert (!boxer_files_id_is_valid (NULL));
}
END_TEST

static void
name_is (const char *in, const char *want)
{
  cleanup_free char *got = boxer_files_clean_name (in);
  ck_assert_msg (strcmp (got, want) == 0, "'%s' -> '%s', want '%s'", in ? in : "(null)", got,
                 want);
}

START_TEST (test_clean_name)
{
  name_is ("main.py", "main.py");
  name_is ("../../etc/passwd", "passwd");
  name_is ("C:\\Users\\me\\data.csv", "data.csv");
  name_is ("dir/", "file");
  name_is ("..", "file");
  name_is (".", "file");
  name_is ("", "file");
  name_is (NULL, "file");
  name_is ("a\nb\x1b[0m", "a_b_[0m");
  name_is ("bad\xff.txt", "bad\xef\xbf\xbd.txt");
  name_is ("\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9");
  {
    /* Cut at 255 bytes, never inside a character: 127 two-byte
       characters are 254 bytes.  */
    char longname[400] = "";
    cleanup_free char *got = NULL;
    for (int i = 0; i < 150; i++)
      strcat (longname, "\xc3\xa9");
    got = boxer_files_clean_name (longname);
    ck_assert_uint_eq (strlen (got), 254);
  }
}
END_TEST

START_TEST (test_upload_commit)
{
  struct boxer_file_info fi;
  cleanup_free char *data = NULL;
  cleanup_free char *meta = NULL;
  cleanup_free char *dpath = NULL;
  cleanup_free char *mpath = NULL;
  cleanup_error struct boxer_error *err = NULL;
  json_object *m, *v;
  struct stat st;

  upload ("../x/hello.txt", "hello", &fi);
  ck_assert (boxer_files_id_is_valid (fi.id));
  ck_assert_str_eq (fi.name, "hello.txt");
  ck_assert_int_eq (fi.size, 5);
  ck_assert_str_eq (fi.sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");

  dpath = PATH_OF ("files/%s/data", fi.id);
  ck_assert_int_eq (boxer_read_file (dpath, 100, &data, NULL, &err), 0);
  ck_assert_str_eq (data, "hello");
  ck_assert_int_eq (stat (dpath, &st), 0);
  ck_assert_int_eq (st.st_mode & 07777, 0444);

  mpath = PATH_OF ("files/%s/meta.json", fi.id);
  ck_assert_int_eq (boxer_read_file (mpath, 4096, &meta, NULL, &err), 0);
  m = json_tokener_parse (meta);
  ck_assert (json_object_object_get_ex (m, "id", &v));
  ck_assert_str_eq (json_object_get_string (v), fi.id);
  ck_assert (json_object_object_get_ex (m, "name", &v));
  ck_assert_str_eq (json_object_get_string (v), "hello.txt");
  ck_assert (json_object_object_get_ex (m, "size", &v));
  ck_assert_int_eq (json_object_get_int64 (v), 5);
  ck_assert (json_object_object_get_ex (m, "sha256", &v));
  ck_assert_str_eq (json_object_get_string (v), fi.sha256);
  json_object_put (m);

  /* Nothing half-built is left.  */
  {
    cleanup_free char *dir = PATH_OF ("%s", "files");
    cleanup_dir DIR *d = opendir (dir);
    struct dirent *de;
    int n = 0;
    while ((de = readdir (d)))
      if (de->d_name[0] != '.')
        n++;
      else
        ck_assert_msg (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0,
                       "left: %s", de->d_name);
    ck_assert_int_eq (n, 1);
  }
  boxer_file_info_release (&fi);
}
END_TEST

START_TEST (test_upload_empty_file)
{
  struct boxer_file_info fi;
  cleanup_error struct boxer_error *err = NULL;
  struct boxer_upload *up = NULL;

  ck_assert_int_eq (boxer_files_upload_begin (home, "empty", NULL, &up, &err), 0);
  ck_assert_int_eq (boxer_files_upload_commit (up, &fi, &err), 0);
  boxer_files_upload_free (up);
  ck_assert_int_eq (fi.size, 0);
  ck_assert_str_eq (fi.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  boxer_file_info_release (&fi);
}
END_TEST

START_TEST (test_upload_abandoned)
{
  cleanup_error struct boxer_error *err = NULL;
  struct boxer_upload *up = NULL;
  cleanup_free char *dir = PATH_OF ("%s", "files");
  int n = 0;

  ck_assert_int_eq (boxer_files_upload_begin (home, "x", NULL, &up, &err), 0);
  ck_assert_int_eq (boxer_files_upload_write (up, "abc", 3, &err), 0);
  boxer_files_upload_free (up);
  {
    cleanup_dir DIR *d = opendir (dir);
    while (readdir (d))
      n++;
  }
  ck_assert_int_eq (n, 2);      /* . and .. */
}
END_TEST

START_TEST (test_link)
{
  struct boxer_file_info fi;
  cleanup_error struct boxer_error *err = NULL;
  cleanup_close int dest = -1;
  cleanup_free char *dest_dir = PATH_OF ("%s", "bundle");
  cleanup_free char *linked = NULL;
  cleanup_free char *data = NULL;

  upload ("a.txt", "contents", &fi);
  ck_assert_int_eq (mkdir (dest_dir, 0700), 0);
  dest = open (dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  ck_assert_int_eq (boxer_files_link (home, fi.id, 3600, dest, "0", &err), 0);
  linked = PATH_OF ("%s/0", "bundle");
  ck_assert_int_eq (boxer_read_file (linked, 100, &data, NULL, &err), 0);
  ck_assert_str_eq (data, "contents");

  /* Unknown, malformed and expired ids are all "not found".  */
  ck_assert_int_lt (boxer_files_link (home, "f_00000000000000000000000000000000", 3600, dest, "1",
                                      &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_FILE_NOT_FOUND);
  ck_assert_str_eq (err->msg, "file 'f_00000000000000000000000000000000' not found; upload it "
                              "with POST /files and use the id it returns (uploads are kept "
                              "for 3600 s)");
  boxer_error_release (&err);
  ck_assert_int_lt (boxer_files_link (home, "../../etc", 3600, dest, "1", &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_FILE_NOT_FOUND);
  boxer_error_release (&err);

  age ("files/%s/meta.json", fi.id, 100);
  ck_assert_int_lt (boxer_files_link (home, fi.id, 50, dest, "1", &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_FILE_NOT_FOUND);
  boxer_error_release (&err);
  ck_assert_int_eq (boxer_files_link (home, fi.id, 200, dest, "1", &err), 0);

  /* Removing the upload leaves the run's link.  */
  ck_assert_int_eq (boxer_files_remove (home, fi.id, &err), 0);
  ck_assert (!exists ("files/%s", fi.id));
  ck_assert (exists ("%s/0", "bundle"));
  ck_assert_int_eq (boxer_files_remove (home, fi.id, &err), 0);
  boxer_file_info_release (&fi);
}
END_TEST

START_TEST (test_sweep)
{
  struct boxer_file_info old, fresh;
  cleanup_error struct boxer_error *err = NULL;
  cleanup_free char *stale_new = PATH_OF ("files/%s", ".new-f_stale");
  cleanup_free char *young_new = PATH_OF ("files/%s", ".new-f_young");
  cleanup_free char *dead_del = PATH_OF ("files/%s", ".del-f_dead-1");
  cleanup_free char *other = PATH_OF ("files/%s", "README");

  upload ("old", "o", &old);
  upload ("fresh", "f", &fresh);
  age ("files/%s/meta.json", old.id, 120);
  ck_assert_int_eq (mkdir (stale_new, 0700), 0);
  ck_assert_int_eq (mkdir (young_new, 0700), 0);
  age ("files/%s", ".new-f_stale", BOXER_EXPIRY_STAGING_SECS + 10);
  ck_assert_int_eq (mkdir (dead_del, 0700), 0);
  ck_assert_int_eq (boxer_write_file_atomic (other, "x", 1, 0600, &err), 0);

  ck_assert_int_eq (boxer_files_sweep (home, 60, &err), 0);
  ck_assert (!exists ("files/%s", old.id));
  ck_assert (exists ("files/%s", fresh.id));
  ck_assert (!exists ("files/%s", ".new-f_stale"));
  ck_assert (exists ("files/%s", ".new-f_young"));
  /* A .del- leftover goes once its rename is a minute old; this one was
     made just now.  */
  ck_assert (exists ("files/%s", ".del-f_dead-1"));
  ck_assert (exists ("files/%s", "README"));

  /* A missing store is nothing to sweep.  */
  {
    cleanup_free char *other_home = PATH_OF ("%s", "nohome");
    ck_assert_int_eq (boxer_files_sweep (other_home, 60, &err), 0);
  }
  boxer_file_info_release (&old);
  boxer_file_info_release (&fresh);
}
END_TEST

START_TEST (test_expiry_ids)
{
  ck_assert (boxer_expiry_id_is_valid ("r_0123456789abcdef0123456789abcdef", "r_", 32));
  ck_assert (!boxer_expiry_id_is_valid ("r_0123456789abcdef0123456789abcdeg", "r_", 32));
  ck_assert (!boxer_expiry_id_is_valid ("r_0123456789abcdef0123456789abcdef/", "r_", 32));
  ck_assert (!boxer_expiry_id_is_valid ("x_0123456789abcdef0123456789abcdef", "r_", 32));
}
END_TEST

/* An entry of n bytes named id in dir, as another worker leaves one.  */
static void
put_entry (const char *dir, const char *id, size_t n)
{
  cleanup_free char *d = xasprintf ("%s/%s", dir, id);
  cleanup_free char *f = xasprintf ("%s/meta.json", d);
  cleanup_free char *data = xmalloc0 (n);
  cleanup_close int fd = -1;

  ck_assert_int_eq (mkdir (d, 0700), 0);
  fd = open (f, O_WRONLY | O_CREAT | O_EXCL, 0600);
  ck_assert_int_ge (fd, 0);
  /* Blocks, not a hole: usage counts what the disk holds.  */
  memset (data, 'x', n);
  ck_assert_int_eq (write (fd, data, n), (ssize_t) n);
}

static int
admit (const char *dir, int64_t incoming, struct boxer_error **err)
{
  return boxer_expiry_admit (dir, "f_", 32, "meta.json", 3600, 1000000, incoming,
                             "files_budget_bytes", "uploads", NULL, err);
}

/* Admissions charge a ledger and walk the directory only when the charged
   sum would pass the budget, or the ledger is old or damaged.  */
START_TEST (test_admit_ledger)
{
  cleanup_error struct boxer_error *err = NULL;
  cleanup_free char *dir = PATH_OF ("%s", "files");
  cleanup_free char *ledger = PATH_OF ("%s", "files/.usage");
  cleanup_close int fd = -1;

  ck_assert_int_eq (mkdir (dir, 0700), 0);
  ck_assert_int_eq (admit (dir, 100000, &err), 0);
  /* Bytes no admission charged (they cannot come in any other way, but
     they show whether an admission walked).  */
  put_entry (dir, "f_00000000000000000000000000000001", 950000);
  /* The ledger says 100000 + 100000: room, without a walk (which would
     have refused).  */
  ck_assert_int_eq (admit (dir, 100000, &err), 0);
  /* 200000 charged + 850000 would pass the budget: a walk finds the
     entry, which has not expired, and refuses.  */
  ck_assert_int_lt (admit (dir, 850000, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_NO_SPACE);
  ck_assert_ptr_nonnull (strstr (err->msg, "files_budget_bytes"));
  boxer_error_free (err);
  err = NULL;
  /* The walk's measure is in the ledger now: a little still fits, more
     does not.  */
  ck_assert_int_eq (admit (dir, 20000, &err), 0);
  ck_assert_int_lt (admit (dir, 100000, &err), 0);
  boxer_error_free (err);
  err = NULL;

  /* A damaged ledger is measured again: after a walk that sees only the
     expired entry go, there is room.  */
  age ("files/%s/meta.json", "f_00000000000000000000000000000001", 7200);
  fd = open (ledger, O_WRONLY | O_TRUNC);
  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (write (fd, "garbage\n", 8), 8);
  ck_assert_int_eq (admit (dir, 900000, &err), 0);
  ck_assert (!exists ("files/%s", "f_00000000000000000000000000000001"));

  /* An old ledger is not walked for by an admission (that is for after an
     answer, boxer_expiry_remeasure ()): an entry written past it does not
     count yet.  */
  put_entry (dir, "f_00000000000000000000000000000002", 500000);
  ck_assert_int_eq (ftruncate (fd, 0), 0);
  ck_assert_int_eq (pwrite (fd, "00000000000000000001 00000000000000000000 00000000000000000001\n",
                           63, 0),
                    63);
  ck_assert_int_eq (admit (dir, 600000, &err), 0);
  /* Measured again, it does: 500000 on disk (the 600000 admitted wrote
     nothing), and 600000 more would pass the budget.  */
  ck_assert_int_eq (boxer_expiry_remeasure (dir, 1000000, &err), 0);
  {
    cleanup_free char *text = NULL;
    size_t len;
    ck_assert_int_eq (boxer_read_file (ledger, 96, &text, &len, &err), 0);
    ck_assert_msg (strtoll (text, NULL, 10) > 1, "%s", text);
    ck_assert_msg (strtoll (text + 21, NULL, 10) >= 500000, "%s", text);
    ck_assert_msg (strtoll (text + 21, NULL, 10) < 600000, "%s", text);
  }
  ck_assert_int_lt (admit (dir, 600000, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_NO_SPACE);
  boxer_error_free (err);
  err = NULL;
}
END_TEST

/* boxer_expiry_remeasure () walks only for a ledger a minute old (or a
   damaged one), and keeps what was charged meanwhile.  */
START_TEST (test_remeasure)
{
  cleanup_error struct boxer_error *err = NULL;
  cleanup_free char *dir = PATH_OF ("%s", "files");
  cleanup_free char *ledger = PATH_OF ("%s", "files/.usage");
  cleanup_free char *text = NULL;
  size_t len;

  ck_assert_int_eq (mkdir (dir, 0700), 0);
  /* No ledger yet: nothing to do, nothing made.  */
  ck_assert_int_eq (boxer_expiry_remeasure (dir, 1000000, &err), 0);
  ck_assert (!exists ("%s", "files/.usage"));
  ck_assert_int_eq (admit (dir, 100000, &err), 0);
  put_entry (dir, "f_00000000000000000000000000000001", 300000);
  /* Fresh: not walked, the uncharged entry unseen.  */
  ck_assert_int_eq (boxer_expiry_remeasure (dir, 1000000, &err), 0);
  ck_assert_int_eq (boxer_read_file (ledger, 96, &text, &len, &err), 0);
  ck_assert_msg (strtoll (text + 21, NULL, 10) < 300000, "%s", text);
  free (text);
  text = NULL;
  /* Damaged: walked, whatever its age.  */
  {
    cleanup_close int fd = open (ledger, O_WRONLY | O_TRUNC);
    ck_assert_int_ge (fd, 0);
    ck_assert_int_eq (write (fd, "x", 1), 1);
  }
  ck_assert_int_eq (boxer_expiry_remeasure (dir, 1000000, &err), 0);
  ck_assert_int_eq (boxer_read_file (ledger, 96, &text, &len, &err), 0);
  ck_assert_msg (strtoll (text + 21, NULL, 10) >= 300000, "%s", text);
  ck_assert_msg (strtoll (text + 21, NULL, 10) < 400000, "%s", text);
  /* No budget: nothing to keep.  */
  ck_assert_int_eq (boxer_expiry_remeasure (dir, 0, &err), 0);
}
END_TEST

static long long
ledger_bytes (const char *ledger)
{
  cleanup_error struct boxer_error *err = NULL;
  cleanup_free char *text = NULL;
  size_t len;

  ck_assert_int_eq (boxer_read_file (ledger, 96, &text, &len, &err), 0);
  return strtoll (text + 21, NULL, 10);
}

/* Once its entry is written, an admission's charge becomes what the entry
   took; after a walk measured the directory again, that walk's figure
   stands and what the entry took is added.  */
START_TEST (test_settle)
{
  cleanup_error struct boxer_error *err = NULL;
  cleanup_free char *dir = PATH_OF ("%s", "files");
  cleanup_free char *ledger = PATH_OF ("%s", "files/.usage");
  struct boxer_expiry_charge c, c2;
  long long before;

  ck_assert_int_eq (mkdir (dir, 0700), 0);
  ck_assert_int_eq (boxer_expiry_admit (dir, "f_", 32, "meta.json", 3600, 1000000, 600000,
                                        "files_budget_bytes", "uploads", &c, &err),
                    0);
  ck_assert_int_eq (c.bytes, 600000);
  before = ledger_bytes (ledger);
  ck_assert_int_ge (before, 600000);
  /* Unsettled, 600000 more would not fit; settled, it does.  */
  boxer_expiry_settle (dir, &c, 10000);
  ck_assert_int_eq (ledger_bytes (ledger), before - 600000 + 10000);
  ck_assert_int_eq (boxer_expiry_admit (dir, "f_", 32, "meta.json", 3600, 1000000, 600000,
                                        "files_budget_bytes", "uploads", &c2, &err),
                    0);
  boxer_expiry_settle (dir, &c2, 0);

  /* Charged, then measured again (the entry was not there yet): the
     walk's figure no longer holds the charge, and the entry is added.  */
  ck_assert_int_eq (boxer_expiry_admit (dir, "f_", 32, "meta.json", 3600, 1000000, 100000,
                                        "files_budget_bytes", "uploads", &c, &err),
                    0);
  {
    cleanup_close int fd = open (ledger, O_WRONLY);
    ck_assert_int_ge (fd, 0);
    ck_assert_int_eq (pwrite (fd, "00000000000000000001", 20, 0), 20);
  }
  ck_assert_int_eq (boxer_expiry_remeasure (dir, 1000000, &err), 0);
  before = ledger_bytes (ledger);
  ck_assert_int_lt (before, 100000);
  boxer_expiry_settle (dir, &c, 5000);
  ck_assert_int_eq (ledger_bytes (ledger), before + 5000);

  /* Nothing charged (no budget): nothing settled.  */
  ck_assert_int_eq (boxer_expiry_admit (dir, "f_", 32, "meta.json", 3600, 0, 100000,
                                        "files_budget_bytes", "uploads", &c, &err),
                    0);
  ck_assert_int_eq (c.bytes, 0);
  boxer_expiry_settle (dir, &c, 5000);
  ck_assert_int_eq (ledger_bytes (ledger), before + 5000);
}
END_TEST

static Suite *
files_suite (void)
{
  Suite *s = suite_create ("files");
  TCase *tc = tcase_create ("store");

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_ids);
  tcase_add_test (tc, test_clean_name);
  tcase_add_test (tc, test_upload_commit);
  tcase_add_test (tc, test_upload_empty_file);
  tcase_add_test (tc, test_upload_abandoned);
  tcase_add_test (tc, test_link);
  tcase_add_test (tc, test_sweep);
  tcase_add_test (tc, test_expiry_ids);
  tcase_add_test (tc, test_admit_ledger);
  tcase_add_test (tc, test_remeasure);
  tcase_add_test (tc, test_settle);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  SRunner *sr = srunner_create (files_suite ());
  int failed;

  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
