#include <config.h>

#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "cache/layer.h"
#include "cache/unpack.h"
#include "common/fsutil.h"

/* Classification, pure.  */

struct classify_case
{
  const char *name;
  int ok;
  enum boxer_layer_entry_kind kind;
  const char *path;     /* or a substring of the error message */
};

static const struct classify_case classify_cases[] = {
  { "a/b", 1, BOXER_LAYER_ENTRY_FILE, "a/b" },
  { "./a/b/", 1, BOXER_LAYER_ENTRY_FILE, "a/b" },
  { "/a//b", 1, BOXER_LAYER_ENTRY_FILE, "a/b" },
  { "a/./b", 1, BOXER_LAYER_ENTRY_FILE, "a/b" },
  { "./", 1, BOXER_LAYER_ENTRY_ROOT, "" },
  { "/", 1, BOXER_LAYER_ENTRY_ROOT, "" },
  { "a/.wh.b", 1, BOXER_LAYER_ENTRY_WHITEOUT, "a/b" },
  { ".wh.b", 1, BOXER_LAYER_ENTRY_WHITEOUT, "b" },
  { "./x/y/.wh..hidden", 1, BOXER_LAYER_ENTRY_WHITEOUT, "x/y/.hidden" },
  { "a/.wh..wh..opq", 1, BOXER_LAYER_ENTRY_OPAQUE, "a" },
  { ".wh..wh..opq", 1, BOXER_LAYER_ENTRY_OPAQUE, "" },
  { "a/b/.wh..wh..opq", 1, BOXER_LAYER_ENTRY_OPAQUE, "a/b" },
  { "a/.wh..wh.plnk", 1, BOXER_LAYER_ENTRY_IGNORED, NULL },
  { ".wh.a/b", 1, BOXER_LAYER_ENTRY_FILE, ".wh.a/b" },
  { "a.wh.b", 1, BOXER_LAYER_ENTRY_FILE, "a.wh.b" },
  { "../evil", 0, 0, "layer entry '../evil' contains '..'" },
  { "a/../../b", 0, 0, "contains '..'" },
  { "a/..", 0, 0, "contains '..'" },
  { "/../etc/passwd", 0, 0, "contains '..'" },
  { "a/.wh.", 0, 0, "layer whiteout 'a/.wh.' does not name a file to remove" },
  { "a/.wh..", 0, 0, "does not name a file" },
  { "a/.wh...", 0, 0, "does not name a file" },
};

START_TEST (test_classify)
{
  const struct classify_case *c = &classify_cases[_i];
  enum boxer_layer_entry_kind kind = 99;
  struct boxer_error *err = NULL;
  char *path = NULL;
  int r = boxer_layer_classify_path (c->name, &kind, &path, &err);

  if (c->ok)
    {
      ck_assert_msg (r == 0, "%s: %s", c->name, err ? err->msg : "");
      ck_assert_int_eq (kind, c->kind);
      if (c->path)
        ck_assert_str_eq (path, c->path);
    }
  else
    {
      ck_assert_int_lt (r, 0);
      ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
      ck_assert_msg (strstr (err->msg, c->path) != NULL, "'%s' lacks '%s'", err->msg, c->path);
      boxer_error_free (err);
    }
  free (path);
}
END_TEST

START_TEST (test_link_target)
{
  struct boxer_error *err = NULL;
  char *p = NULL;

  ck_assert_int_eq (boxer_layer_clean_link_target ("./usr//bin/sh", &p, &err), 0);
  ck_assert_str_eq (p, "usr/bin/sh");
  free (p);
  ck_assert_int_lt (boxer_layer_clean_link_target ("/etc/passwd", &p, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "'/etc/passwd' is an absolute path"));
  boxer_error_release (&err);
  ck_assert_int_lt (boxer_layer_clean_link_target ("../outside", &p, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "layer hard link target '../outside' contains '..'"));
  boxer_error_release (&err);
  ck_assert_int_lt (boxer_layer_clean_link_target ("./", &p, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "names the root directory"));
  boxer_error_release (&err);
}
END_TEST

/* Building layers with libarchive.  */

enum kind
{
  F = 'f',      /* regular file, arg = contents */
  D = 'd',      /* directory */
  L = 'l',      /* symlink, arg = target */
  H = 'h',      /* hard link, arg = target */
  C = 'c',      /* character device */
  B = 'b',      /* block device */
  P = 'p',      /* fifo */
};

struct ent
{
  const char *path;
  enum kind kind;
  const char *arg;
  int mode;     /* 0: a default */
};

enum compression
{
  NONE,
  GZIP,
  ZSTD,
};

static char base[64];
static char rootfs[128];
static char outside[128];
static int layer_count;

static void
setup (void)
{
  struct boxer_error *err = NULL;

  strcpy (base, "/tmp/check_layer.XXXXXX");
  ck_assert_ptr_nonnull (mkdtemp (base));
  snprintf (rootfs, sizeof rootfs, "%s/rootfs", base);
  snprintf (outside, sizeof outside, "%s/outside", base);
  ck_assert_int_eq (boxer_mkdir_p (rootfs, 0755, &err), 0);
  ck_assert_int_eq (boxer_mkdir_p (outside, 0755, &err), 0);
}

static void
teardown (void)
{
  struct boxer_error *err = NULL;

  boxer_rm_rf (base, &err);
  boxer_error_free (err);
}

static void
add_entry (struct archive *a, const struct ent *e)
{
  struct archive_entry *ae = archive_entry_new ();
  size_t len = (e->kind == F && e->arg) ? strlen (e->arg) : 0;

  archive_entry_set_pathname (ae, e->path);
  archive_entry_set_uid (ae, 1234);
  archive_entry_set_gid (ae, 5678);
  archive_entry_set_mtime (ae, 1700000000, 0);
  switch (e->kind)
    {
    case F:
      archive_entry_set_filetype (ae, AE_IFREG);
      archive_entry_set_size (ae, len);
      break;
    case D:
      archive_entry_set_filetype (ae, AE_IFDIR);
      break;
    case L:
      archive_entry_set_filetype (ae, AE_IFLNK);
      archive_entry_set_symlink (ae, e->arg);
      break;
    case H:
      archive_entry_set_filetype (ae, AE_IFREG);
      archive_entry_set_hardlink (ae, e->arg);
      break;
    case C:
    case B:
      archive_entry_set_filetype (ae, e->kind == C ? AE_IFCHR : AE_IFBLK);
      archive_entry_set_rdev (ae, makedev (1, 3));
      break;
    case P:
      archive_entry_set_filetype (ae, AE_IFIFO);
      break;
    }
  archive_entry_set_perm (ae, e->mode ? e->mode : (e->kind == D ? 0755 : 0644));
  ck_assert_int_eq (archive_write_header (a, ae), ARCHIVE_OK);
  if (len)
    ck_assert_int_eq (archive_write_data (a, e->arg, len), (la_ssize_t) len);
  archive_entry_free (ae);
}

/* Write the entries (up to one with path NULL) as a tar and return an fd
   open on it.  */
static int
make_layer (const struct ent *ents, enum compression comp)
{
  char path[PATH_MAX];
  struct archive *a = archive_write_new ();
  int fd;

  snprintf (path, sizeof path, "%s/layer%d.tar", base, layer_count++);
  ck_assert_int_eq (archive_write_set_format_pax_restricted (a), ARCHIVE_OK);
  if (comp == GZIP)
    ck_assert_int_eq (archive_write_add_filter_gzip (a), ARCHIVE_OK);
  if (comp == ZSTD)
    ck_assert_int_eq (archive_write_add_filter_zstd (a), ARCHIVE_OK);
  ck_assert_int_eq (archive_write_open_filename (a, path), ARCHIVE_OK);
  for (const struct ent *e = ents; e->path; e++)
    add_entry (a, e);
  ck_assert_int_eq (archive_write_close (a), ARCHIVE_OK);
  archive_write_free (a);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge (fd, 0);
  return fd;
}

static int
apply (const struct ent *ents, enum compression comp, struct boxer_error **err)
{
  int fd = make_layer (ents, comp);
  int r = boxer_layer_apply (rootfs, fd, NULL, err);

  close (fd);
  return r;
}

static void
apply_ok (const struct ent *ents)
{
  struct boxer_error *err = NULL;

  ck_assert_msg (apply (ents, NONE, &err) == 0, "apply failed: %s", err ? err->msg : "");
}

/* Expect the layer to be refused as invalid with a message holding want.  */
static void
apply_refused (const struct ent *ents, const char *want)
{
  struct boxer_error *err = NULL;

  ck_assert_int_lt (apply (ents, NONE, &err), 0);
  ck_assert_ptr_nonnull (err);
  ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
  ck_assert_msg (strstr (err->msg, want) != NULL, "message '%s' lacks '%s'", err->msg, want);
  /* Client-visible messages never name host paths.  */
  ck_assert_msg (strstr (err->msg, base) == NULL, "message '%s' leaks the rootfs path", err->msg);
  boxer_error_free (err);
}

static char *
in_root (const char *rel)
{
  static char buf[PATH_MAX];
  snprintf (buf, sizeof buf, "%s/%s", rootfs, rel);
  return buf;
}

static char *
in_outside (const char *rel)
{
  static char buf[PATH_MAX];
  snprintf (buf, sizeof buf, "%s/%s", outside, rel);
  return buf;
}

static void
assert_file (const char *path, const char *contents)
{
  struct boxer_error *err = NULL;
  char *data = NULL;
  size_t len;
  struct stat st;

  ck_assert_int_eq (lstat (path, &st), 0);
  ck_assert_msg (S_ISREG (st.st_mode), "%s is not a regular file", path);
  ck_assert_int_eq (boxer_read_file (path, 1 << 20, &data, &len, &err), 0);
  ck_assert_str_eq (data, contents);
  free (data);
}

static bool
exists (const char *path)
{
  struct stat st;
  return lstat (path, &st) == 0;
}

START_TEST (test_plain)
{
  const struct ent layer[] = {
    { "./", D, NULL, 0755 },
    { "etc/", D, NULL, 0750 },
    { "etc/hosts", F, "127.0.0.1 localhost\n", 0640 },
    { "usr/bin/sh", F, "#!shell", 04755 },
    { "bin", L, "usr/bin", 0 },
    { "usr/bin/bash", H, "usr/bin/sh", 0 },
    { "/abs/file", F, "abs", 0 },
    { "run/fifo", P, NULL, 0600 },
    { "empty", F, "", 0 },
    { NULL, 0, NULL, 0 },
  };
  struct stat st, st2;
  char target[64] = { 0 };

  apply_ok (layer);
  assert_file (in_root ("etc/hosts"), "127.0.0.1 localhost\n");
  ck_assert_int_eq (stat (in_root ("etc/hosts"), &st), 0);
  ck_assert_int_eq (st.st_mode & 07777, 0640);
  ck_assert_int_eq (st.st_mtime, 1700000000);
  if (geteuid () == 0)
    {
      ck_assert_int_eq (st.st_uid, 1234);
      ck_assert_int_eq (st.st_gid, 5678);
    }
  ck_assert_int_eq (stat (in_root ("etc"), &st), 0);
  ck_assert (S_ISDIR (st.st_mode));
  ck_assert_int_eq (st.st_mode & 07777, 0750);
  ck_assert_int_eq (readlink (in_root ("bin"), target, sizeof target - 1), 7);
  ck_assert_str_eq (target, "usr/bin");
  ck_assert_int_eq (stat (in_root ("usr/bin/sh"), &st), 0);
  ck_assert_int_eq (stat (in_root ("usr/bin/bash"), &st2), 0);
  ck_assert_int_eq (st.st_ino, st2.st_ino);
  /* setuid dropped, whoever unpacks.  */
  ck_assert_int_eq (st.st_mode & 07777, 0755);
  /* A leading '/' is dropped, as Docker does.  */
  assert_file (in_root ("abs/file"), "abs");
  ck_assert_int_eq (lstat (in_root ("run/fifo"), &st), 0);
  ck_assert (S_ISFIFO (st.st_mode));
  assert_file (in_root ("empty"), "");
}
END_TEST

START_TEST (test_compressed)
{
  const struct ent layer[] = {
    { "gz/data", F, "gzip layer", 0 },
    { NULL, 0, NULL, 0 },
  };
  const struct ent layer2[] = {
    { "zst/data", F, "zstd layer", 0 },
    { NULL, 0, NULL, 0 },
  };
  struct boxer_error *err = NULL;

  ck_assert_int_eq (apply (layer, GZIP, &err), 0);
  ck_assert_int_eq (apply (layer2, ZSTD, &err), 0);
  assert_file (in_root ("gz/data"), "gzip layer");
  assert_file (in_root ("zst/data"), "zstd layer");
}
END_TEST

START_TEST (test_whiteout)
{
  const struct ent lower[] = {
    { "a/x", F, "x", 0 }, { "a/y", F, "y", 0 }, { "b/z", F, "z", 0 },
    { "b/sub/deep", F, "d", 0 }, { "c", F, "c", 0 }, { "s", L, "a", 0 },
    { NULL, 0, NULL, 0 },
  };
  const struct ent upper[] = {
    { "a/.wh.x", F, "", 0 },
    { ".wh.b", F, "", 0 },
    { ".wh.c", F, "", 0 },
    { ".wh.s", F, "", 0 },
    { ".wh.never-existed", F, "", 0 },
    { "a/new", F, "new", 0 },
    { NULL, 0, NULL, 0 },
  };

  apply_ok (lower);
  apply_ok (upper);
  ck_assert (!exists (in_root ("a/x")));
  assert_file (in_root ("a/y"), "y");
  assert_file (in_root ("a/new"), "new");
  ck_assert (!exists (in_root ("b")));
  ck_assert (!exists (in_root ("c")));
  ck_assert (!exists (in_root ("s")));
  /* Whiteout files themselves never appear.  */
  ck_assert (!exists (in_root ("a/.wh.x")));
  ck_assert (!exists (in_root (".wh.b")));
}
END_TEST

START_TEST (test_opaque)
{
  const struct ent lower[] = {
    { "d/old1", F, "1", 0 }, { "d/sub/old2", F, "2", 0 }, { "d/gone/x", F, "x", 0 },
    { "other/keep", F, "k", 0 }, { NULL, 0, NULL, 0 },
  };
  /* Entries of the same layer before and after the marker both stay.  */
  const struct ent upper[] = {
    { "d/", D, NULL, 0 },
    { "d/new", F, "new", 0 },
    { "d/sub/before", F, "b", 0 },
    { "d/.wh..wh..opq", F, "", 0 },
    { "d/sub/after", F, "a", 0 },
    { NULL, 0, NULL, 0 },
  };

  apply_ok (lower);
  apply_ok (upper);
  assert_file (in_root ("d/new"), "new");
  assert_file (in_root ("d/sub/before"), "b");
  assert_file (in_root ("d/sub/after"), "a");
  ck_assert (!exists (in_root ("d/old1")));
  ck_assert (!exists (in_root ("d/sub/old2")));
  ck_assert (!exists (in_root ("d/gone")));
  ck_assert (!exists (in_root ("d/.wh..wh..opq")));
  assert_file (in_root ("other/keep"), "k");
}
END_TEST

START_TEST (test_dotdot_refused)
{
  const struct ent layer[] = {
    { "ok", F, "fine", 0 },
    { "../evil", F, "evil", 0 },
    { NULL, 0, NULL, 0 },
  };
  const struct ent layer2[] = {
    { "a/../../outside/evil2", F, "evil", 0 },
    { NULL, 0, NULL, 0 },
  };

  apply_refused (layer, "layer entry '../evil' contains '..'");
  ck_assert (!exists (in_outside ("../evil")));
  apply_refused (layer2, "contains '..'");
  ck_assert (!exists (in_outside ("evil2")));
}
END_TEST

START_TEST (test_symlink_escape_refused)
{
  const struct ent layer[] = {
    { "a", L, outside, 0 },
    { "a/passwd", F, "root::0:0::/:/bin/sh\n", 0 },
    { NULL, 0, NULL, 0 },
  };
  const struct ent layer_etc[] = {
    { "e", L, "/etc", 0 },
    { "e/boxer-check-layer-canary", F, "x", 0 },
    { NULL, 0, NULL, 0 },
  };
  const struct ent rel[] = {
    { "r", L, "../outside", 0 },
    { "r/rel-escape", F, "x", 0 },
    { NULL, 0, NULL, 0 },
  };
  int canary;

  apply_refused (layer, "cannot unpack layer entry 'a/passwd'");
  ck_assert (!exists (in_outside ("passwd")));
  /* The symlink itself is fine: it is resolved inside the sandbox.  */
  ck_assert (exists (in_root ("a")));

  apply_refused (layer_etc, "'e/boxer-check-layer-canary'");
  canary = exists ("/etc/boxer-check-layer-canary");
  if (canary)
    unlink ("/etc/boxer-check-layer-canary");
  ck_assert_msg (!canary, "a layer wrote to the host's /etc");

  apply_refused (rel, "'r/rel-escape'");
  ck_assert (!exists (in_outside ("rel-escape")));
}
END_TEST

START_TEST (test_symlink_from_lower_layer)
{
  const struct ent lower[] = {
    { "a", L, outside, 0 },
    { NULL, 0, NULL, 0 },
  };
  const struct ent write_through[] = {
    { "a/file", F, "x", 0 },
    { NULL, 0, NULL, 0 },
  };
  const struct ent whiteout_through[] = {
    { "a/.wh.victim", F, "", 0 },
    { "a/.wh..wh..opq", F, "", 0 },
    { NULL, 0, NULL, 0 },
  };
  const struct ent replace[] = {
    { "a", F, "now a file", 0 },
    { NULL, 0, NULL, 0 },
  };
  struct boxer_error *err = NULL;
  FILE *f = fopen (in_outside ("victim"), "w");

  ck_assert_ptr_nonnull (f);
  fclose (f);
  apply_ok (lower);
  apply_refused (write_through, "'a/file'");
  ck_assert (!exists (in_outside ("file")));
  /* Removals never follow a symlink either; nothing to remove there.  */
  ck_assert_int_eq (apply (whiteout_through, NONE, &err), 0);
  ck_assert (exists (in_outside ("victim")));
  /* A file replaces the symlink; the target is untouched.  */
  apply_ok (replace);
  assert_file (in_root ("a"), "now a file");
  ck_assert (exists (in_outside ("victim")));
}
END_TEST

START_TEST (test_deferred_fixup_not_redirected)
{
  /* libarchive sets directory modes and times when the layer ends, by
     path.  If x/y's fixup were still pending when x became a symlink to
     the outside, it would land on outside/y.  */
  const struct ent layer[] = {
    { "x/", D, NULL, 0755 },
    { "x/y/", D, NULL, 0777 },
    { ".wh.x", F, "", 0 },
    { "x", L, outside, 0 },
    { NULL, 0, NULL, 0 },
  };
  char y[256];
  struct stat st;

  snprintf (y, sizeof y, "%s/y", outside);
  ck_assert_int_eq (mkdir (y, 0700), 0);
  ck_assert_int_eq (chmod (y, 0700), 0);
  apply_ok (layer);
  ck_assert_int_eq (stat (y, &st), 0);
  ck_assert_int_eq (st.st_mode & 07777, 0700);
  ck_assert_int_eq (lstat (in_root ("x"), &st), 0);
  ck_assert (S_ISLNK (st.st_mode));
}
END_TEST

START_TEST (test_hardlink_refused)
{
  const struct ent dotdot[] = {
    { "h", H, "../outside/secret", 0 },
    { NULL, 0, NULL, 0 },
  };
  const struct ent absolute[] = {
    { "h", H, "/etc/passwd", 0 },
    { NULL, 0, NULL, 0 },
  };
  const struct ent lower[] = {
    { "a", L, outside, 0 },
    { NULL, 0, NULL, 0 },
  };
  const struct ent through[] = {
    { "h", H, "a/secret", 0 },
    { NULL, 0, NULL, 0 },
  };
  FILE *f = fopen (in_outside ("secret"), "w");

  ck_assert_ptr_nonnull (f);
  fclose (f);
  apply_refused (dotdot, "layer hard link target '../outside/secret' contains '..'");
  apply_refused (absolute, "layer hard link target '/etc/passwd' is an absolute path");
  apply_ok (lower);
  apply_refused (through, "layer hard link target 'a/secret' does not exist in the image");
  ck_assert (!exists (in_root ("h")));
}
END_TEST

START_TEST (test_device_refused)
{
  const struct ent chr[] = {
    { "dev/null", C, NULL, 0666 },
    { NULL, 0, NULL, 0 },
  };
  const struct ent blk[] = {
    { "dev/sda", B, NULL, 0660 },
    { NULL, 0, NULL, 0 },
  };

  apply_refused (chr, "layer contains device node 'dev/null'; device nodes are not allowed");
  ck_assert (!exists (in_root ("dev/null")));
  apply_refused (blk, "layer contains device node 'dev/sda'");
}
END_TEST

START_TEST (test_replace_dir_with_file)
{
  const struct ent lower[] = {
    { "x/y/z", F, "z", 0 },
    { NULL, 0, NULL, 0 },
  };
  const struct ent upper[] = {
    { "x", F, "file now", 0 },
    { NULL, 0, NULL, 0 },
  };

  apply_ok (lower);
  apply_ok (upper);
  assert_file (in_root ("x"), "file now");
}
END_TEST

START_TEST (test_limits)
{
  const struct ent three[] = {
    { "a", F, "12345", 0 }, { "b", F, "12345", 0 }, { "c", F, "1", 0 }, { NULL, 0, NULL, 0 },
  };
  struct boxer_layer_limits entries = { .max_bytes = 1 << 20, .max_entries = 2 };
  struct boxer_layer_limits bytes = { .max_bytes = 8192, .max_entries = 1000 };
  struct boxer_layer_usage usage = { 0, 0 };
  struct boxer_error *err = NULL;
  int fd = make_layer (three, NONE);

  ck_assert_int_lt (boxer_layer_apply (rootfs, fd, &entries, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_TOO_LARGE);
  ck_assert_str_eq (err->msg, "image has more than 2 files and directories (image_max_entries)");
  boxer_error_release (&err);

  /* Each file costs a block at least: two fit in 8192 bytes, not three.  */
  ck_assert_int_eq (lseek (fd, 0, SEEK_SET), 0);
  ck_assert_int_lt (boxer_layer_apply (rootfs, fd, &bytes, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_TOO_LARGE);
  ck_assert_str_eq (err->msg, "image unpacks to more than 8192 bytes (image_max_bytes)");
  boxer_error_release (&err);

  /* Counted over several layers: three blocks fit, the next three do not.  */
  bytes.max_bytes = 5 * 4096;
  ck_assert_int_eq (lseek (fd, 0, SEEK_SET), 0);
  ck_assert_int_eq (boxer_layer_apply_counted (rootfs, fd, &bytes, &usage, &err), 0);
  ck_assert_int_eq (usage.bytes, 3 * 4096);
  ck_assert_int_eq (usage.entries, 3);
  ck_assert_int_eq (lseek (fd, 0, SEEK_SET), 0);
  ck_assert_int_lt (boxer_layer_apply_counted (rootfs, fd, &bytes, &usage, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_TOO_LARGE);
  boxer_error_release (&err);

  /* Past the pull's deadline, unpacking stops too.  */
  bytes = (struct boxer_layer_limits) { .deadline_ms = boxer_now_ms () - 1 };
  ck_assert_int_eq (lseek (fd, 0, SEEK_SET), 0);
  ck_assert_int_lt (boxer_layer_apply (rootfs, fd, &bytes, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_REGISTRY);
  ck_assert_str_eq (err->msg, "the pull ran out of time (pull_timeout_secs) while unpacking "
                              "layer entry 1");
  boxer_error_release (&err);
  close (fd);
}
END_TEST

/* The directories a path implies count, as entries and as blocks, so a
   few entries with long paths cannot make a tree of directories.  */
START_TEST (test_implied_dirs_counted)
{
  const struct ent deep[] = {
    { "a/b/c/d/e/f", F, "x", 0 }, { "a/b/c/d/e/g", F, "y", 0 }, { "h/i", F, "z", 0 },
    { NULL, 0, NULL, 0 },
  };
  struct boxer_layer_limits lim = { .max_entries = 1000 };
  struct boxer_layer_usage usage = { 0, 0 };
  struct boxer_error *err = NULL;
  int fd = make_layer (deep, NONE);

  ck_assert_int_eq (boxer_layer_apply_counted (rootfs, fd, &lim, &usage, &err), 0);
  /* a..e, f, g, h, i.  */
  ck_assert_int_eq (usage.entries, 9);
  ck_assert_int_eq (usage.bytes, 9 * 4096);
  close (fd);

  /* Six entries allowed: the first entry alone makes six inodes, the
     second one more.  */
  boxer_rm_rf (rootfs, &err);
  ck_assert_int_eq (boxer_mkdir_p (rootfs, 0755, &err), 0);
  lim.max_entries = 6;
  fd = make_layer (deep, NONE);
  ck_assert_int_lt (boxer_layer_apply (rootfs, fd, &lim, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_TOO_LARGE);
  ck_assert_ptr_nonnull (strstr (err->msg, "image_max_entries"));
  boxer_error_release (&err);
  ck_assert (!exists (in_root ("a/b/c/d/e/g")));
  close (fd);
}
END_TEST

START_TEST (test_depth_and_length)
{
  static char deep_path[4096], long_path[1400], long_name[300];
  struct ent deep[] = { { deep_path, F, "x", 0 }, { NULL, 0, NULL, 0 } };
  struct ent longp[] = { { long_path, F, "x", 0 }, { NULL, 0, NULL, 0 } };
  struct ent longn[] = { { long_name, F, "x", 0 }, { NULL, 0, NULL, 0 } };
  const struct ent link[] = {
    { "l", L, "d/d/d/d/d/d/d/d", 0 }, { "l/x/y", F, "x", 0 }, { NULL, 0, NULL, 0 },
  };
  struct boxer_layer_limits shallow = { .max_depth = 8 };
  struct boxer_error *err = NULL;
  int fd;

  /* 200 levels: refused at once, before any directory is made.  */
  for (int i = 0; i < 200; i++)
    strcat (deep_path, "a/");
  strcat (deep_path, "f");
  fd = make_layer (deep, NONE);
  ck_assert_int_lt (boxer_layer_apply (rootfs, fd, NULL, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_TOO_LARGE);
  ck_assert_msg (strstr (err->msg, "more than 128 directories deep (image_max_depth)"), "%s",
                 err->msg);
  boxer_error_release (&err);
  ck_assert (!exists (in_root ("a")));
  close (fd);

  for (int i = 0; i < 130; i++)
    strcat (long_path, "abcdefghi/");
  strcat (long_path, "f");
  fd = make_layer (longp, NONE);
  ck_assert_int_lt (boxer_layer_apply (rootfs, fd, NULL, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_TOO_LARGE);
  ck_assert_msg (strstr (err->msg, "longer than 1024 bytes (image_max_path_bytes)"), "%s",
                 err->msg);
  boxer_error_release (&err);
  close (fd);

  memset (long_name, 'n', 256);
  fd = make_layer (longn, NONE);
  ck_assert_int_lt (boxer_layer_apply (rootfs, fd, NULL, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_TOO_LARGE);
  ck_assert_msg (strstr (err->msg, "has a name longer than 255 bytes"), "%s", err->msg);
  boxer_error_release (&err);
  close (fd);

  /* A symlink that makes a short path deep: the resolved path counts.  */
  ck_assert_int_eq (boxer_mkdir_p (in_root ("d/d/d/d/d/d/d/d"), 0755, &err), 0);
  fd = make_layer (link, NONE);
  ck_assert_int_lt (boxer_layer_apply (rootfs, fd, &shallow, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_TOO_LARGE);
  ck_assert_msg (strstr (err->msg, "more than 8 directories deep"), "%s", err->msg);
  boxer_error_release (&err);
  close (fd);
}
END_TEST

START_TEST (test_setid_dropped)
{
  const struct ent layer[] = {
    { "su", F, "x", 04755 }, { "sg", F, "x", 02755 }, { "dir", D, NULL, 03775 },
    { "fifo", P, NULL, 0600 }, { NULL, 0, NULL, 0 },
  };
  struct stat st;

  apply_ok (layer);
  ck_assert_int_eq (lstat (in_root ("su"), &st), 0);
  ck_assert_int_eq (st.st_mode & 07777, 0755);
  ck_assert_int_eq (lstat (in_root ("sg"), &st), 0);
  ck_assert_int_eq (st.st_mode & 07777, 0755);
  ck_assert_int_eq (lstat (in_root ("dir"), &st), 0);
  /* The sticky bit stays: it gives no one more rights.  */
  ck_assert_int_eq (st.st_mode & 07777, 01775);
  ck_assert_int_eq (lstat (in_root ("fifo"), &st), 0);
  ck_assert (S_ISFIFO (st.st_mode));
}
END_TEST

/* The same layers through the confined unpacking process: same tree,
   same owners and modes, errors and counts carried back.  */
START_TEST (test_confined)
{
  const struct ent layer[] = {
    { "ro/", D, NULL, 0555 }, { "ro/inside", F, "in a read-only dir", 0444 },
    { "usr/bin/tool", F, "#!tool", 04755 }, { "bin", L, "usr/bin", 0 },
    { "escape", L, "/", 0 }, { NULL, 0, NULL, 0 },
  };
  const struct ent upper[] = {
    { "bin/through", F, "via the symlink", 0 }, { "escape/etc/boxer-confined", F, "x", 0 },
    { NULL, 0, NULL, 0 },
  };
  const struct ent dev[] = { { "dev/null", C, NULL, 0666 }, { NULL, 0, NULL, 0 } };
  struct boxer_layer_usage usage = { 0, 0 };
  struct boxer_error *err = NULL;
  struct stat st;
  int fd;

  fd = make_layer (layer, GZIP);
  ck_assert_msg (boxer_unpack_layer (rootfs, fd, NULL, &usage, &err) == 0, "%s",
                 err ? err->msg : "");
  close (fd);
  fd = make_layer (upper, ZSTD);
  ck_assert_msg (boxer_unpack_layer (rootfs, fd, NULL, &usage, &err) == 0, "%s",
                 err ? err->msg : "");
  close (fd);
  assert_file (in_root ("ro/inside"), "in a read-only dir");
  assert_file (in_root ("usr/bin/through"), "via the symlink");
  assert_file (in_root ("etc/boxer-confined"), "x");
  ck_assert (!exists ("/etc/boxer-confined"));
  ck_assert_int_eq (stat (in_root ("ro"), &st), 0);
  ck_assert_int_eq (st.st_mode & 07777, 0555);
  ck_assert_int_eq (stat (in_root ("usr/bin/tool"), &st), 0);
  ck_assert_int_eq (st.st_mode & 07777, 0755);
  if (geteuid () == 0)
    ck_assert_int_eq (st.st_uid, 1234);
  /* ro, ro/inside, usr, usr/bin, usr/bin/tool, bin, escape; through, etc,
     etc/boxer-confined.  */
  ck_assert_int_eq (usage.entries, 10);

  fd = make_layer (dev, NONE);
  ck_assert_int_lt (boxer_unpack_layer (rootfs, fd, NULL, &usage, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
  ck_assert_msg (strstr (err->msg, "device node 'dev/null'"), "%s", err->msg);
  boxer_error_release (&err);
  close (fd);
}
END_TEST

/* What the unpacking process can reach, checked from inside it.  */
static int
probe (void *data, struct boxer_layer_usage *usage, struct boxer_error **err)
{
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct caps[2];
  const char *outside_path = data;
  struct sockaddr_in lo = { .sin_family = AF_INET, .sin_port = htons (9) };
  struct rlimit as;
  struct stat st, root;
  int fd;

  (void) usage;
  if (stat ("/marker", &st) < 0)
    return boxer_error_make (err, BOXER_ERR_INVALID, "the rootfs is not our root");
  /* Nothing above the rootfs: its ".." is itself.  */
  if (stat (outside_path, &st) == 0 || stat ("/proc/self", &st) == 0
      || stat ("/etc/passwd", &st) == 0 || stat ("/", &root) < 0 || stat ("/..", &st) < 0
      || st.st_ino != root.st_ino)
    return boxer_error_make (err, BOXER_ERR_INVALID, "the host's files are reachable");
  if (syscall (SYS_capget, &hdr, caps) < 0 || caps[1].effective != 0 || caps[1].permitted != 0
      || caps[0].effective
           != ((1u << CAP_CHOWN) | (1u << CAP_DAC_OVERRIDE) | (1u << CAP_FOWNER))
      || prctl (PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) != 0
      || prctl (PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
    return boxer_error_make (err, BOXER_ERR_INVALID, "capabilities are not dropped");
  /* A PID namespace of its own: it is its first process, and there is no
     other it could signal (kill -1 reaches all but itself and pid 1).  */
  if (getpid () != 1 || kill (-1, 0) == 0 || errno != ESRCH)
    return boxer_error_make (err, BOXER_ERR_INVALID, "other processes are visible (pid %d)",
                             (int) getpid ());
  if (mount ("none", "/", "tmpfs", 0, NULL) == 0 || chroot ("/") == 0)
    return boxer_error_make (err, BOXER_ERR_INVALID, "mount or chroot are allowed");
  /* A network namespace of its own: even loopback is down.  */
  lo.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect (fd, (struct sockaddr *) &lo, sizeof lo) == 0 || errno != ENETUNREACH)
    return boxer_error_make (err, BOXER_ERR_INVALID, "the network is reachable (%d)", errno);
  close (fd);
  /* cache/unpack.c leaves the address space alone under AddressSanitizer.  */
#if !defined(__SANITIZE_ADDRESS__)
  if (getrlimit (RLIMIT_AS, &as) < 0 || as.rlim_cur > (2ULL << 30))
    return boxer_error_make (err, BOXER_ERR_INVALID, "memory is not bounded");
#else
  (void) as;
#endif
  /* Of our fds, only stderr and the pipe of the answer are left (0 and 1
     are /dev/null).  */
  {
    int open_fds = 0;
    for (int i = 3; i < 1024; i++)
      open_fds += fcntl (i, F_GETFD) >= 0;
    if (open_fds != 1)
      return boxer_error_make (err, BOXER_ERR_INVALID, "%d fds are open", open_fds);
  }
  return 0;
}

START_TEST (test_confinement_probe)
{
  struct boxer_layer_usage usage = { 0, 0 };
  struct boxer_error *err = NULL;
  char marker[PATH_MAX];
  /* An fd of ours the process must not keep.  */
  int keep = open ("/dev/null", O_RDONLY | O_CLOEXEC);

  if (geteuid () != 0)
    return;
  snprintf (marker, sizeof marker, "%s/marker", rootfs);
  close (open (marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  ck_assert_msg (boxer_unpack_confined (rootfs, -1, probe, outside, &usage, &err) == 0, "%s",
                 err ? err->msg : "");
  close (keep);
}
END_TEST

START_TEST (test_not_a_tar)
{
  char path[PATH_MAX];
  struct boxer_error *err = NULL;
  int fd;

  snprintf (path, sizeof path, "%s/junk", base);
  ck_assert_int_eq (boxer_write_file_atomic (path, "this is not a tar archive at all", 32, 0644,
                                             &err), 0);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  ck_assert_int_lt (boxer_layer_apply (rootfs, fd, NULL, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
  ck_assert_ptr_nonnull (strstr (err->msg, "layer is not a"));
  boxer_error_free (err);
  close (fd);
}
END_TEST

START_TEST (test_utf8_names)
{
  /* Go's archive/tar (Docker, BuildKit) writes non-ASCII names as UTF-8
     pax records; they must unpack in the C locale too.  */
  const struct ent layer[] = {
    { "caf\xc3\xa9/na\xc3\xafve.txt", F, "utf8", 0 },
    { NULL, 0, NULL, 0 },
  };
  struct boxer_error *err = NULL;
  int fd;

  /* Written in a UTF-8 locale, so the pax path record is UTF-8 ...  */
  ck_assert_ptr_nonnull (setlocale (LC_CTYPE, "C.UTF-8"));
  fd = make_layer (layer, NONE);
  /* ... and applied in the C locale a server runs in.  */
  ck_assert_ptr_nonnull (setlocale (LC_CTYPE, "C"));
  ck_assert_msg (boxer_layer_apply (rootfs, fd, NULL, &err) == 0, "%s", err ? err->msg : "");
  close (fd);
  assert_file (in_root ("caf\xc3\xa9/na\xc3\xafve.txt"), "utf8");
}
END_TEST

/* Paths through symlinks of the image resolve inside the rootfs, as
   Docker resolves them: merged /usr images write bin/x meaning usr/bin/x.  */

static void
assert_symlink (const char *path, const char *target)
{
  char buf[PATH_MAX];
  ssize_t n = readlink (path, buf, sizeof buf - 1);

  ck_assert_msg (n >= 0, "%s is not a symlink", path);
  buf[n] = '\0';
  ck_assert_str_eq (buf, target);
}

START_TEST (test_write_through_image_symlink)
{
  const struct ent lower[] = {
    { "usr/bin/", D, NULL, 0 },
    { "usr/lib/", D, NULL, 0 },
    { "bin", L, "usr/bin", 0 },
    { "lib", L, "/usr/lib", 0 },
    { "l1", L, "l2", 0 },
    { "l2", L, "/usr/./lib/", 0 },
    { NULL, 0, NULL, 0 },
  };
  const struct ent upper[] = {
    { "bin/x", F, "x", 0 },
    { "/bin/new/deeper/y", F, "y", 0 },
    { "lib/libz.so.1", F, "z", 0 },
    { "l1/chained", F, "c", 0 },
    { "bin/hard", H, "bin/x", 0 },
    { "lib/", D, NULL, 0700 },
    { NULL, 0, NULL, 0 },
  };
  struct stat a, b;

  apply_ok (lower);
  apply_ok (upper);
  assert_file (in_root ("usr/bin/x"), "x");
  assert_file (in_root ("usr/bin/new/deeper/y"), "y");
  assert_file (in_root ("usr/lib/libz.so.1"), "z");
  assert_file (in_root ("usr/lib/chained"), "c");
  ck_assert_int_eq (lstat (in_root ("usr/bin/hard"), &a), 0);
  ck_assert_int_eq (lstat (in_root ("usr/bin/x"), &b), 0);
  ck_assert (a.st_ino == b.st_ino);
  /* The symlinks stay what they were, except lib: a directory entry
     replaces whatever was at its own path, as in Docker.  */
  assert_symlink (in_root ("bin"), "usr/bin");
  assert_symlink (in_root ("l1"), "l2");
  ck_assert_int_eq (lstat (in_root ("lib"), &a), 0);
  ck_assert (S_ISDIR (a.st_mode));
  ck_assert (!exists (in_root ("lib/libz.so.1")));
}
END_TEST

START_TEST (test_symlink_escape_contained)
{
  const struct ent lower[] = {
    { "etc/", D, NULL, 0 },
    { "tmp/", D, NULL, 0 },
    { "e", L, "/etc", 0 },
    { "up", L, "../../../../../../../..", 0 },
    { "mid/", D, NULL, 0 },
    { "mid/back", L, "../../tmp", 0 },
    { NULL, 0, NULL, 0 },
  };
  const struct ent upper[] = {
    { "e/boxer-check-layer-canary", F, "1", 0 },
    { "up/tmp/from-up", F, "2", 0 },
    { "mid/back/from-mid", F, "3", 0 },
    { "up/etc/.wh.boxer-check-layer-canary", F, "", 0 },
    { NULL, 0, NULL, 0 },
  };
  int canary = exists ("/etc/boxer-check-layer-canary");

  ck_assert_msg (!canary, "a leftover /etc/boxer-check-layer-canary exists");
  apply_ok (lower);
  apply_ok (upper);
  canary = exists ("/etc/boxer-check-layer-canary");
  if (canary)
    unlink ("/etc/boxer-check-layer-canary");
  ck_assert_msg (!canary, "a layer wrote to the host's /etc");
  /* Written into the rootfs, then whited out through another symlink.  */
  ck_assert (!exists (in_root ("etc/boxer-check-layer-canary")));
  assert_file (in_root ("tmp/from-up"), "2");
  assert_file (in_root ("tmp/from-mid"), "3");
  ck_assert (!exists (in_outside ("from-mid")));
  ck_assert (!exists ("/tmp/from-up"));
}
END_TEST

START_TEST (test_whiteout_through_image_symlink)
{
  const struct ent lower[] = {
    { "usr/bin/victim", F, "v", 0 },
    { "usr/bin/old", F, "o", 0 },
    { "usr/share/doc/a", F, "a", 0 },
    { "bin", L, "usr/bin", 0 },
    { "share", L, "usr/share", 0 },
    { NULL, 0, NULL, 0 },
  };
  const struct ent upper[] = {
    { "bin/.wh.victim", F, "", 0 },
    { "share/.wh..wh..opq", F, "", 0 },
    { "share/fresh", F, "f", 0 },
    { NULL, 0, NULL, 0 },
  };

  apply_ok (lower);
  apply_ok (upper);
  ck_assert (!exists (in_root ("usr/bin/victim")));
  assert_file (in_root ("usr/bin/old"), "o");
  ck_assert (!exists (in_root ("usr/share/doc")));
  assert_file (in_root ("usr/share/fresh"), "f");
  assert_symlink (in_root ("bin"), "usr/bin");
}
END_TEST

START_TEST (test_symlink_loop_refused)
{
  const struct ent layer[] = {
    { "a", L, "b", 0 },
    { "b", L, "a", 0 },
    { "a/x", F, "x", 0 },
    { NULL, 0, NULL, 0 },
  };
  const struct ent to_file[] = {
    { "f", F, "plain", 0 },
    { "s", L, "f", 0 },
    { "s/x", F, "x", 0 },
    { NULL, 0, NULL, 0 },
  };

  apply_refused (layer, "cannot unpack layer entry 'a/x'");
  apply_refused (to_file, "cannot unpack layer entry 's/x'");
  assert_file (in_root ("f"), "plain");
}
END_TEST

static Suite *
layer_suite (void)
{
  Suite *s = suite_create ("layer");
  TCase *pure = tcase_create ("pure");
  TCase *tc = tcase_create ("apply");

  tcase_add_loop_test (pure, test_classify, 0,
                       sizeof classify_cases / sizeof classify_cases[0]);
  tcase_add_test (pure, test_link_target);
  suite_add_tcase (s, pure);

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_plain);
  tcase_add_test (tc, test_compressed);
  tcase_add_test (tc, test_whiteout);
  tcase_add_test (tc, test_opaque);
  tcase_add_test (tc, test_dotdot_refused);
  tcase_add_test (tc, test_symlink_escape_refused);
  tcase_add_test (tc, test_symlink_from_lower_layer);
  tcase_add_test (tc, test_deferred_fixup_not_redirected);
  tcase_add_test (tc, test_hardlink_refused);
  tcase_add_test (tc, test_device_refused);
  tcase_add_test (tc, test_replace_dir_with_file);
  tcase_add_test (tc, test_limits);
  tcase_add_test (tc, test_implied_dirs_counted);
  tcase_add_test (tc, test_depth_and_length);
  tcase_add_test (tc, test_setid_dropped);
  tcase_add_test (tc, test_confined);
  tcase_add_test (tc, test_confinement_probe);
  tcase_add_test (tc, test_not_a_tar);
  tcase_add_test (tc, test_utf8_names);
  tcase_add_test (tc, test_write_through_image_symlink);
  tcase_add_test (tc, test_symlink_escape_contained);
  tcase_add_test (tc, test_whiteout_through_image_symlink);
  tcase_add_test (tc, test_symlink_loop_refused);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  SRunner *sr = srunner_create (layer_suite ());
  int failed;

  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
