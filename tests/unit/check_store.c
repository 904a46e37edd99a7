#include <config.h>

#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "cache/cache.h"
#include "cache/image_config.h"
#include "cache/reference.h"
#include "cache/store.h"
#include "common/fsutil.h"

static char base[64];
static char home[128];

static void
setup (void)
{
  strcpy (base, "/tmp/check_store.XXXXXX");
  ck_assert_ptr_nonnull (mkdtemp (base));
  snprintf (home, sizeof home, "%s/home", base);
}

static void
teardown (void)
{
  struct boxer_error *err = NULL;

  boxer_rm_rf (base, &err);
  boxer_error_free (err);
}

/* Building OCI layouts.  */

struct file
{
  const char *path;
  const char *contents;   /* NULL: a directory */
};

/* A tar of files in memory (caller frees), gzip'd or not.  */
static char *
make_tar (const struct file *files, bool gzip, size_t *len_out)
{
  size_t cap = 1 << 20, used = 0;
  char *buf = xmalloc (cap);
  struct archive *a = archive_write_new ();

  ck_assert_int_eq (archive_write_set_format_pax_restricted (a), ARCHIVE_OK);
  if (gzip)
    ck_assert_int_eq (archive_write_add_filter_gzip (a), ARCHIVE_OK);
  ck_assert_int_eq (archive_write_open_memory (a, buf, cap, &used), ARCHIVE_OK);
  for (const struct file *f = files; f->path; f++)
    {
      struct archive_entry *e = archive_entry_new ();
      size_t n = f->contents ? strlen (f->contents) : 0;
      archive_entry_set_pathname (e, f->path);
      archive_entry_set_filetype (e, f->contents ? AE_IFREG : AE_IFDIR);
      archive_entry_set_perm (e, f->contents ? 0644 : 0755);
      archive_entry_set_size (e, n);
      ck_assert_int_eq (archive_write_header (a, e), ARCHIVE_OK);
      if (n)
        ck_assert_int_eq (archive_write_data (a, f->contents, n), (la_ssize_t) n);
      archive_entry_free (e);
    }
  ck_assert_int_eq (archive_write_close (a), ARCHIVE_OK);
  archive_write_free (a);
  *len_out = used;
  return buf;
}

/* Store data as a blob of layout; digest receives "sha256:<hex>".  */
static void
write_blob (const char *layout, const void *data, size_t len, char digest[72])
{
  struct boxer_error *err = NULL;
  char hex[65];
  char *dir = xasprintf ("%s/blobs/sha256", layout);
  char *path;

  boxer_sha256_hex (data, len, hex);
  snprintf (digest, 72, "sha256:%s", hex);
  path = xasprintf ("%s/%s", dir, hex);
  ck_assert_int_eq (boxer_mkdir_p (dir, 0755, &err), 0);
  ck_assert_int_eq (boxer_write_file_atomic (path, data, len, 0644, &err), 0);
  free (path);
  free (dir);
}

static void
write_text (const char *dir, const char *name, const char *text)
{
  struct boxer_error *err = NULL;
  char *path = xasprintf ("%s/%s", dir, name);

  ck_assert_int_eq (boxer_write_file_atomic (path, text, strlen (text), 0644, &err), 0);
  free (path);
}

struct layout_opts
{
  const char *arch;       /* NULL: this host's */
  const char *ref_name;   /* index.json annotation, or NULL */
  const char *cmd;        /* the config's Cmd[0] */
};

struct built
{
  char dir[256];
  char manifest[72];
  char layers[2][72];
};

/* An OCI layout under base/name with two gzip'd layers: the lower one
   has etc/os-release and usr/bin/tool, the upper removes usr/bin/tool and
   adds app/main.py.  */
static void
build_layout (const char *name, const struct layout_opts *o, struct built *out)
{
  static const struct file lower[] = {
    { "etc/", NULL }, { "etc/os-release", "ID=boxer\n" }, { "usr/bin/tool", "#!tool" },
    { NULL, NULL },
  };
  static const struct file upper[] = {
    { "usr/bin/.wh.tool", "" }, { "app/main.py", "print(42)\n" }, { NULL, NULL },
  };
  const struct file *layers[2] = { lower, upper };
  char diff_ids[2][72], config_digest[72];
  struct boxer_error *err = NULL;
  char *json, *annotation;
  size_t len[2], config_len, manifest_len;

  snprintf (out->dir, sizeof out->dir, "%s/%s", base, name);
  ck_assert_int_eq (boxer_mkdir_p (out->dir, 0755, &err), 0);
  for (int i = 0; i < 2; i++)
    {
      size_t n;
      char *tar = make_tar (layers[i], false, &n);
      char *gz = make_tar (layers[i], true, &len[i]);
      char hex[65];
      boxer_sha256_hex (tar, n, hex);
      snprintf (diff_ids[i], sizeof diff_ids[i], "sha256:%s", hex);
      write_blob (out->dir, gz, len[i], out->layers[i]);
      free (tar);
      free (gz);
    }

  json = xasprintf ("{\"architecture\": \"%s\", \"os\": \"linux\", \"config\": {"
                    "\"Env\": [\"PATH=/usr/bin\", \"LANG=C.UTF-8\"], \"Cmd\": [\"%s\", \"x\"],"
                    " \"WorkingDir\": \"/app\"},"
                    " \"rootfs\": {\"type\": \"layers\", \"diff_ids\": [\"%s\", \"%s\"]}}",
                    o->arch ? o->arch : boxer_oci_host_architecture (),
                    o->cmd ? o->cmd : "python3", diff_ids[0], diff_ids[1]);
  config_len = strlen (json);
  write_blob (out->dir, json, config_len, config_digest);
  free (json);

  json = xasprintf ("{\"schemaVersion\": 2, \"mediaType\": \"%s\","
                    " \"config\": {\"mediaType\": \"%s\", \"digest\": \"%s\", \"size\": %zu},"
                    " \"layers\": [{\"mediaType\": \"%s\", \"digest\": \"%s\", \"size\": %zu},"
                    " {\"mediaType\": \"%s\", \"digest\": \"%s\", \"size\": %zu}]}",
                    BOXER_OCI_MEDIA_MANIFEST, BOXER_OCI_MEDIA_CONFIG, config_digest, config_len,
                    BOXER_OCI_MEDIA_LAYER_GZIP, out->layers[0], len[0],
                    BOXER_OCI_MEDIA_LAYER_GZIP, out->layers[1], len[1]);
  manifest_len = strlen (json);
  write_blob (out->dir, json, manifest_len, out->manifest);
  free (json);

  annotation = o->ref_name ? xasprintf (", \"annotations\": {\"%s\": \"%s\"}",
                                        BOXER_OCI_ANNOTATION_REF_NAME, o->ref_name)
                           : xstrdup ("");
  json = xasprintf ("{\"schemaVersion\": 2, \"manifests\": [{\"mediaType\": \"%s\","
                    " \"digest\": \"%s\", \"size\": %zu%s}]}",
                    BOXER_OCI_MEDIA_MANIFEST, out->manifest, manifest_len, annotation);
  write_text (out->dir, "index.json", json);
  free (json);
  free (annotation);
  write_text (out->dir, "oci-layout", "{\"imageLayoutVersion\": \"1.0.0\"}");
}

static struct boxer_cache *
open_cache (void)
{
  struct boxer_cache *cache = NULL;
  struct boxer_error *err = NULL;

  ck_assert_msg (boxer_cache_open (&cache, home, &err) == 0, "%s", err ? err->msg : "");
  return cache;
}

static struct boxer_image *
load_ok (struct boxer_cache *cache, const char *layout, const char *ref)
{
  struct boxer_image *image = NULL;
  struct boxer_error *err = NULL;

  ck_assert_msg (boxer_cache_load_oci_layout (cache, layout, ref, &image, &err) == 0, "%s",
                 err ? err->msg : "");
  return image;
}

static struct boxer_image *
lookup_ok (struct boxer_cache *cache, const char *ref)
{
  struct boxer_image *image = NULL;
  struct boxer_error *err = NULL;

  ck_assert_msg (boxer_cache_lookup (cache, ref, &image, &err) == 0, "%s: %s", ref,
                 err ? err->msg : "");
  return image;
}

static void
lookup_fails (struct boxer_cache *cache, const char *ref, enum boxer_error_category cat,
              const char *want)
{
  struct boxer_image *image = NULL;
  struct boxer_error *err = NULL;

  ck_assert_int_lt (boxer_cache_lookup (cache, ref, &image, &err), 0);
  ck_assert_ptr_null (image);
  ck_assert_int_eq (err->category, cat);
  ck_assert_msg (strstr (err->msg, want) != NULL, "'%s' lacks '%s'", err->msg, want);
  boxer_error_free (err);
}

static char *
rootfs_file (const struct boxer_image *image, const char *rel)
{
  static char buf[512];
  snprintf (buf, sizeof buf, "%s/%s", image->rootfs, rel);
  return buf;
}

static bool
exists (const char *path)
{
  struct stat st;
  return lstat (path, &st) == 0;
}

/* Entries of <home>/images/<sub>, not counting "." and "..".  */
static int
count_entries (const char *sub)
{
  char *dir = xasprintf ("%s/images/%s", home, sub);
  DIR *d = opendir (dir);
  struct dirent *de;
  int n = 0;

  ck_assert_ptr_nonnull (d);
  while ((de = readdir (d)) != NULL)
    if (strcmp (de->d_name, ".") && strcmp (de->d_name, ".."))
      n++;
  closedir (d);
  free (dir);
  return n;
}

START_TEST (test_load_and_lookup)
{
  struct boxer_cache *cache = open_cache ();
  struct boxer_image *image, *again;
  struct layout_opts o = { 0 };
  struct built b;
  char *by_digest;
  struct stat st;

  build_layout ("layout", &o, &b);
  image = load_ok (cache, b.dir, "boxer/test:1");
  ck_assert_str_eq (image->reference, "docker.io/boxer/test:1");
  ck_assert_str_eq (image->digest, b.manifest);
  ck_assert_int_eq (image->rootfs[0], '/');
  ck_assert_uint_eq (boxer_strv_len (image->env), 2);
  ck_assert_str_eq (image->env[1], "LANG=C.UTF-8");
  ck_assert_ptr_null (image->entrypoint);
  ck_assert_str_eq (image->cmd[0], "python3");
  ck_assert_str_eq (image->workdir, "/app");
  ck_assert_ptr_null (image->user);
  /* "ID=boxer\n" + "print(42)\n"; the tool was whited out.  */
  ck_assert_int_eq (image->size, 9 + 10);
  ck_assert (exists (rootfs_file (image, "etc/os-release")));
  ck_assert (exists (rootfs_file (image, "app/main.py")));
  ck_assert (!exists (rootfs_file (image, "usr/bin/tool")));
  ck_assert (exists (rootfs_file (image, "usr/bin")));
  ck_assert_int_eq (stat (image->rootfs, &st), 0);
  ck_assert_int_eq (st.st_mode & 0777, 0755);

  again = lookup_ok (cache, "boxer/test:1");
  ck_assert_str_eq (again->rootfs, image->rootfs);
  ck_assert_str_eq (again->digest, image->digest);
  ck_assert_str_eq (again->reference, "docker.io/boxer/test:1");
  boxer_image_free (again);
  again = lookup_ok (cache, "index.docker.io/boxer/test:1");
  ck_assert_str_eq (again->rootfs, image->rootfs);
  boxer_image_free (again);

  by_digest = xasprintf ("boxer/test@%s", b.manifest);
  again = lookup_ok (cache, by_digest);
  ck_assert_str_eq (again->rootfs, image->rootfs);
  ck_assert_str_eq (again->cmd[1], "x");
  boxer_image_free (again);
  free (by_digest);
  /* Any name with the digest finds it: the digest is the identity.  */
  by_digest = xasprintf ("other/name@%s", b.manifest);
  again = lookup_ok (cache, by_digest);
  ck_assert_str_eq (again->digest, b.manifest);
  boxer_image_free (again);
  free (by_digest);

  ck_assert_int_eq (count_entries ("tmp"), 0);
  boxer_image_free (image);
  boxer_cache_free (cache);
}
END_TEST

START_TEST (test_reload_does_not_unpack_again)
{
  struct boxer_cache *cache = open_cache ();
  struct layout_opts o = { 0 };
  struct boxer_image *first, *second;
  struct built b;
  struct stat st1, st2;

  build_layout ("layout", &o, &b);
  first = load_ok (cache, b.dir, "app:1");
  ck_assert_int_eq (stat (first->rootfs, &st1), 0);
  second = load_ok (cache, b.dir, "app:also");
  ck_assert_int_eq (stat (second->rootfs, &st2), 0);
  ck_assert_str_eq (first->rootfs, second->rootfs);
  ck_assert_int_eq (st1.st_ino, st2.st_ino);
  ck_assert_int_eq (st1.st_ctim.tv_sec, st2.st_ctim.tv_sec);
  ck_assert_int_eq (st1.st_ctim.tv_nsec, st2.st_ctim.tv_nsec);
  ck_assert_int_eq (count_entries ("rootfs"), 1);
  ck_assert_int_eq (count_entries ("refs"), 2);
  boxer_image_free (first);
  boxer_image_free (second);
  boxer_cache_free (cache);
}
END_TEST

/* Flip one byte of a blob, keeping its size.  */
static void
corrupt_blob (const char *layout, const char *digest)
{
  char *path = xasprintf ("%s/blobs/sha256/%s", layout, digest + 7);
  int fd = open (path, O_RDWR | O_CLOEXEC);
  unsigned char c;

  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (pread (fd, &c, 1, 20), 1);
  c ^= 0xff;
  ck_assert_int_eq (pwrite (fd, &c, 1, 20), 1);
  close (fd);
  free (path);
}

START_TEST (test_corrupted_blob_rejected)
{
  struct boxer_cache *cache = open_cache ();
  struct layout_opts o = { 0 };
  struct boxer_image *image = NULL;
  struct boxer_error *err = NULL;
  struct built b;

  build_layout ("layout", &o, &b);
  corrupt_blob (b.dir, b.layers[1]);
  ck_assert_int_lt (boxer_cache_load_oci_layout (cache, b.dir, "bad:1", &image, &err), 0);
  ck_assert_ptr_null (image);
  ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
  ck_assert_msg (strstr (err->msg, "does not match its digest") != NULL, "%s", err->msg);
  ck_assert_msg (strstr (err->msg, "layer 2 of 2") != NULL, "%s", err->msg);
  ck_assert_msg (strstr (err->msg, b.layers[1]) != NULL, "%s", err->msg);
  boxer_error_release (&err);
  /* Nothing published, no reference.  What was unpacked is still there,
     locked, for the caller to remove once it has answered: another
     process's sweep leaves it alone.  */
  ck_assert_int_eq (count_entries ("rootfs"), 0);
  ck_assert_int_eq (count_entries ("refs"), 0);
  ck_assert_int_eq (count_entries ("tmp"), 2);
  {
    struct boxer_cache *other = open_cache ();
    ck_assert_int_eq (count_entries ("tmp"), 2);
    boxer_cache_free (other);
  }
  boxer_cache_tidy (cache);
  ck_assert_int_eq (count_entries ("tmp"), 0);
  lookup_fails (cache, "bad:1", BOXER_ERR_IMAGE_NOT_FOUND, "not found");

  /* A corrupt manifest fails before anything is unpacked.  */
  build_layout ("layout2", &o, &b);
  corrupt_blob (b.dir, b.manifest);
  ck_assert_int_lt (boxer_cache_load_oci_layout (cache, b.dir, "bad:2", &image, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "does not match its digest"));
  boxer_error_release (&err);
  ck_assert_int_eq (count_entries ("rootfs"), 0);
  boxer_cache_free (cache);
}
END_TEST

START_TEST (test_stale_tmp_swept)
{
  struct boxer_cache *cache = open_cache ();
  struct boxer_error *err = NULL;
  char *dead = xasprintf ("%s/images/tmp/deadbeef", home);
  char *dead_lock = xasprintf ("%s.lock", dead);
  char *orphan = xasprintf ("%s/images/tmp/orphan", home);
  char *live = xasprintf ("%s/images/tmp/live", home);
  char *live_lock = xasprintf ("%s.lock", live);
  char *etc = xasprintf ("%s/rootfs/etc", dead);
  char *file = xasprintf ("%s/x", etc);
  int held;

  boxer_cache_free (cache);
  /* What killed processes left: an unlocked lock with its directory, and
     a directory whose lock file is gone.  */
  ck_assert_int_eq (boxer_mkdir_p (etc, 0755, &err), 0);
  write_text (etc, "x", "stale");
  /* Read-only, as an unpacked tree often is.  */
  ck_assert_int_eq (chmod (etc, 0555), 0);
  ck_assert_int_eq (boxer_write_file_atomic (dead_lock, "", 0, 0600, &err), 0);
  ck_assert_int_eq (boxer_mkdir_p (orphan, 0755, &err), 0);
  /* A live unpacker: we hold its lock.  */
  ck_assert_int_eq (boxer_mkdir_p (live, 0755, &err), 0);
  held = boxer_lock_path (live_lock, LOCK_EX, &err);
  ck_assert_int_ge (held, 0);

  cache = open_cache ();
  ck_assert (!exists (file));
  ck_assert (!exists (dead));
  ck_assert (!exists (dead_lock));
  ck_assert (!exists (orphan));
  ck_assert (exists (live));
  ck_assert (exists (live_lock));
  boxer_cache_free (cache);

  /* Released: the next open sweeps it.  */
  close (held);
  cache = open_cache ();
  ck_assert (!exists (live));
  ck_assert (!exists (live_lock));
  ck_assert_int_eq (count_entries ("tmp"), 0);
  boxer_cache_free (cache);
  free (dead);
  free (dead_lock);
  free (orphan);
  free (live);
  free (live_lock);
  free (etc);
  free (file);
}
END_TEST

START_TEST (test_reference_replaced)
{
  struct boxer_cache *cache = open_cache ();
  struct layout_opts a = { .cmd = "first" }, b2 = { .cmd = "second" };
  struct boxer_image *image;
  struct built la, lb;
  char *by_digest;

  build_layout ("a", &a, &la);
  build_layout ("b", &b2, &lb);
  ck_assert_str_ne (la.manifest, lb.manifest);
  boxer_image_free (load_ok (cache, la.dir, "app:v"));
  image = lookup_ok (cache, "app:v");
  ck_assert_str_eq (image->digest, la.manifest);
  ck_assert_str_eq (image->cmd[0], "first");
  boxer_image_free (image);

  boxer_image_free (load_ok (cache, lb.dir, "app:v"));
  image = lookup_ok (cache, "docker.io/library/app:v");
  ck_assert_str_eq (image->digest, lb.manifest);
  ck_assert_str_eq (image->cmd[0], "second");
  boxer_image_free (image);

  /* The old image stays published, reachable by digest.  */
  by_digest = xasprintf ("app@%s", la.manifest);
  image = lookup_ok (cache, by_digest);
  ck_assert_str_eq (image->cmd[0], "first");
  boxer_image_free (image);
  free (by_digest);
  ck_assert_int_eq (count_entries ("refs"), 1);
  ck_assert_int_eq (count_entries ("rootfs"), 2);
  boxer_cache_free (cache);
}
END_TEST

START_TEST (test_not_found)
{
  struct boxer_cache *cache = open_cache ();
  char *ref = xasprintf ("python@sha256:%064d", 0);

  lookup_fails (cache, "nosuch:tag", BOXER_ERR_IMAGE_NOT_FOUND,
                "image 'nosuch:tag' not found; load it with boxer-image load or pull it");
  lookup_fails (cache, ref, BOXER_ERR_IMAGE_NOT_FOUND, "not found");
  lookup_fails (cache, "Bad Ref\n", BOXER_ERR_INVALID,
                "invalid image reference 'Bad Ref?': reference must not contain white space");
  free (ref);
  boxer_cache_free (cache);
}
END_TEST

static void
load_fails (struct boxer_cache *cache, const char *dir, const char *ref, const char *want)
{
  struct boxer_image *image = NULL;
  struct boxer_error *err = NULL;

  ck_assert_int_lt (boxer_cache_load_oci_layout (cache, dir, ref, &image, &err), 0);
  ck_assert_ptr_null (image);
  ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
  ck_assert_msg (strstr (err->msg, want) != NULL, "'%s' lacks '%s'", err->msg, want);
  boxer_error_free (err);
}

START_TEST (test_layout_errors)
{
  struct boxer_cache *cache = open_cache ();
  struct layout_opts s390 = { .arch = "s390x-not-this-host" }, o = { 0 };
  struct built b;
  char *pinned;
  char *path;

  build_layout ("foreign", &s390, &b);
  load_fails (cache, b.dir, "x:1", "image is for linux/s390x-not-this-host but this host runs");

  build_layout ("ok", &o, &b);
  pinned = xasprintf ("x@sha256:%064d", 7);
  load_fails (cache, b.dir, pinned, "the reference pins digest sha256:0000");
  free (pinned);
  load_fails (cache, b.dir, "NOT valid", "invalid image reference");

  path = xasprintf ("%s/oci-layout", b.dir);
  write_text (b.dir, "oci-layout", "{\"imageLayoutVersion\": \"2.0.0\"}");
  load_fails (cache, b.dir, "x:1", "'imageLayoutVersion' must be \"1.0.0\"");
  unlink (path);
  load_fails (cache, b.dir, "x:1", "is not an OCI image layout: it has no oci-layout file");
  free (path);

  write_text (b.dir, "oci-layout", "{\"imageLayoutVersion\": \"1.0.0\"}");
  path = xasprintf ("%s/blobs/sha256/%s", b.dir, b.layers[0] + 7);
  unlink (path);
  load_fails (cache, b.dir, "x:1", "is missing from the OCI layout");
  free (path);
  boxer_cache_tidy (cache);
  ck_assert_int_eq (count_entries ("rootfs"), 0);
  ck_assert_int_eq (count_entries ("tmp"), 0);
  boxer_cache_free (cache);
}
END_TEST

START_TEST (test_digest_reference_load)
{
  struct boxer_cache *cache = open_cache ();
  struct layout_opts o = { .ref_name = "3.12" };
  struct boxer_image *image;
  struct built b;
  char *ref;

  build_layout ("layout", &o, &b);
  ref = xasprintf ("localhost:5000/team/py@%s", b.manifest);
  image = load_ok (cache, b.dir, ref);
  ck_assert_str_eq (image->digest, b.manifest);
  boxer_image_free (image);
  /* A digest reference writes no ref file.  */
  ck_assert_int_eq (count_entries ("refs"), 0);
  free (ref);
  boxer_cache_free (cache);
}
END_TEST

START_TEST (test_list_and_remove)
{
  struct boxer_cache *cache = open_cache ();
  struct layout_opts o = { 0 };
  struct boxer_image **images = NULL;
  struct boxer_error *err = NULL;
  struct built b;
  size_t n = 0;

  build_layout ("layout", &o, &b);
  boxer_image_free (load_ok (cache, b.dir, "zeta:1"));
  boxer_image_free (load_ok (cache, b.dir, "alpha:1"));
  ck_assert_int_eq (boxer_cache_list (cache, &images, &n, &err), 0);
  ck_assert_uint_eq (n, 2);
  ck_assert_str_eq (images[0]->reference, "docker.io/library/alpha:1");
  ck_assert_str_eq (images[1]->reference, "docker.io/library/zeta:1");
  ck_assert_str_eq (images[1]->digest, b.manifest);
  ck_assert_int_eq (images[0]->size, 19);
  for (size_t i = 0; i < n; i++)
    boxer_image_free (images[i]);
  free (images);

  ck_assert_int_eq (boxer_cache_remove (cache, "zeta:1", &err), 0);
  lookup_fails (cache, "zeta:1", BOXER_ERR_IMAGE_NOT_FOUND, "image 'zeta:1' not found");
  ck_assert_int_lt (boxer_cache_remove (cache, "zeta:1", &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_IMAGE_NOT_FOUND);
  boxer_error_release (&err);
  boxer_image_free (lookup_ok (cache, "alpha:1"));
  boxer_cache_free (cache);
}
END_TEST

START_TEST (test_concurrent_loads)
{
  struct layout_opts o = { 0 };
  struct boxer_cache *cache;
  struct built b;
  pid_t pids[6];

  build_layout ("layout", &o, &b);
  for (int i = 0; i < 6; i++)
    {
      pids[i] = fork ();
      ck_assert_int_ge (pids[i], 0);
      if (pids[i] == 0)
        {
          struct boxer_cache *c = NULL;
          struct boxer_image *image = NULL;
          struct boxer_error *err = NULL;
          char ref[32];
          snprintf (ref, sizeof ref, "race:%d", i);
          if (boxer_cache_open (&c, home, &err) < 0
              || boxer_cache_load_oci_layout (c, b.dir, ref, &image, &err) < 0)
            {
              fprintf (stderr, "child %d: %s\n", i, err->msg);
              _exit (1);
            }
          _exit (0);
        }
    }
  for (int i = 0; i < 6; i++)
    {
      int status;
      ck_assert_int_eq (waitpid (pids[i], &status, 0), pids[i]);
      ck_assert (WIFEXITED (status));
      ck_assert_int_eq (WEXITSTATUS (status), 0);
    }
  cache = open_cache ();
  ck_assert_int_eq (count_entries ("rootfs"), 1);
  ck_assert_int_eq (count_entries ("tmp"), 0);
  ck_assert_int_eq (count_entries ("refs"), 6);
  boxer_image_free (lookup_ok (cache, "race:3"));
  boxer_cache_free (cache);
}
END_TEST

START_TEST (test_image_json_roundtrip)
{
  char *env[] = { "A=1", "B=two/three", NULL };
  char *cmd[] = { "sh", "-c", "echo \"hi\"", NULL };
  struct boxer_image_config cfg = {
    .env = env, .cmd = cmd, .workdir = "/w", .architecture = "amd64", .os = "linux",
  };
  struct boxer_image image = { 0 };
  struct boxer_error *err = NULL;
  const char *digest = "sha256:" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  char *json = boxer_store_image_json (&cfg, digest, 12345);

  ck_assert_ptr_nonnull (strstr (json, "\"B=two/three\""));
  ck_assert_ptr_nonnull (strstr (json, "\"entrypoint\": null"));
  ck_assert_int_eq (boxer_store_image_json_parse (json, strlen (json), &image, &err), 0);
  ck_assert_str_eq (image.digest, digest);
  ck_assert_str_eq (image.env[1], "B=two/three");
  ck_assert_str_eq (image.cmd[2], "echo \"hi\"");
  ck_assert_ptr_null (image.entrypoint);
  ck_assert_str_eq (image.workdir, "/w");
  ck_assert_ptr_null (image.user);
  ck_assert_int_eq (image.size, 12345);
  free (json);
  free (image.digest);
  boxer_strv_free (image.env);
  boxer_strv_free (image.cmd);
  free (image.workdir);
}
END_TEST

/* Images in use, last use, removal, and the cache's acquire.  */

static struct boxer_store *open_store (void);

START_TEST (test_store_is_private)
{
  struct boxer_error *err = NULL;
  char *images = xasprintf ("%s/images", home);
  char *other = xasprintf ("%s/other", base);
  struct boxer_store *store;
  struct stat st;

  ck_assert_int_eq (boxer_mkdir_p (images, 0755, &err), 0);
  ck_assert_int_eq (chmod (images, 0777), 0);
  store = open_store ();
  ck_assert_int_eq (stat (images, &st), 0);
  ck_assert_int_eq (st.st_mode & 07777, 0700);
  boxer_store_free (store);
  /* Someone else's directory is refused, not taken over.  */
  if (geteuid () == 0)
    {
      ck_assert_int_eq (mkdir (other, 0755), 0);
      ck_assert_int_eq (chown (other, 65534, 65534), 0);
      ck_assert_int_lt (boxer_ensure_private_dir (other, &err), 0);
      ck_assert_msg (strstr (err->msg, "belongs to uid 65534"), "%s", err->msg);
      boxer_error_release (&err);
      ck_assert_int_eq (stat (other, &st), 0);
      ck_assert_int_eq (st.st_mode & 07777, 0755);
    }
  free (images);
  free (other);
}
END_TEST

/* Walks.  A tree deeper than the fds we may open, with a fan-out below
   the levels the walk keeps open, is walked and removed whole.  */

#define DEEP 3000
#define FAN_AT 40

struct counts
{
  long files, dirs_pre, dirs_post;
};

static int
count_visit (int parentfd, const char *name, const struct stat *st, enum boxer_walk_event ev,
             void *data, struct boxer_error **err)
{
  struct counts *c = data;

  (void) parentfd;
  (void) name;
  (void) st;
  (void) err;
  if (ev == BOXER_WALK_FILE)
    c->files++;
  else if (ev == BOXER_WALK_DIR_PRE)
    c->dirs_pre++;
  else
    c->dirs_post++;
  return 0;
}

/* top/d/d/.../d (DEEP levels), a file "f" every 100 levels, and at level
   FAN_AT three more directories each holding a chain of 50 and a file.  */
static void
build_deep (const char *top)
{
  int fd = open (top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  ck_assert_int_ge (fd, 0);
  for (int i = 1; i <= DEEP; i++)
    {
      int next;
      ck_assert_int_eq (mkdirat (fd, "d", 0755), 0);
      next = openat (fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      ck_assert_int_ge (next, 0);
      close (fd);
      fd = next;
      if (i % 100 == 0)
        close (openat (fd, "f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
      if (i == FAN_AT)
        for (int k = 0; k < 3; k++)
          {
            char name[8];
            int sub = -1, cur = dup (fd);
            snprintf (name, sizeof name, "fan%d", k);
            ck_assert_int_eq (mkdirat (cur, name, 0755), 0);
            sub = openat (cur, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            close (cur);
            for (int j = 0; j < 50; j++)
              {
                int n2;
                ck_assert_int_eq (mkdirat (sub, "c", 0755), 0);
                n2 = openat (sub, "c", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                close (sub);
                sub = n2;
              }
            close (openat (sub, "f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
            close (sub);
          }
      /* One directory nobody may read or write: removal makes it ours.  */
      if (i == DEEP - 10)
        ck_assert_int_eq (fchmod (fd, 0), 0);
    }
  close (fd);
}

START_TEST (test_deep_tree_walk_and_remove)
{
  struct rlimit few = { 48, 48 };
  struct boxer_error *err = NULL;
  struct counts c = { 0, 0, 0 };
  char *top = xasprintf ("%s/deep", base);
  long dirs = 1 + DEEP + 3 * 51;
  long files = DEEP / 100 + 3;

  ck_assert_int_eq (mkdir (top, 0755), 0);
  build_deep (top);
  /* Fewer fds than the tree has levels; a recursive walk with one fd per
     level fails with EMFILE here.  */
  ck_assert_int_eq (setrlimit (RLIMIT_NOFILE, &few), 0);
  if (geteuid () == 0)
    {
      ck_assert_msg (boxer_walk_at (AT_FDCWD, top, false, count_visit, &c, &err) == 0, "%s",
                     err ? err->msg : "");
      ck_assert_int_eq (c.files, files);
      ck_assert_int_eq (c.dirs_pre, dirs);
      ck_assert_int_eq (c.dirs_post, dirs);
    }
  ck_assert_msg (boxer_rm_rf (top, &err) == 0, "%s", err ? err->msg : "");
  ck_assert (!exists (top));
  /* Removing what is not there is no error.  */
  ck_assert_int_eq (boxer_rm_rf (top, &err), 0);
  free (top);
}
END_TEST

static struct boxer_store *
open_store (void)
{
  struct boxer_store *store = NULL;
  struct boxer_error *err = NULL;

  ck_assert_msg (boxer_store_open (&store, home, &err) == 0, "%s", err ? err->msg : "");
  return store;
}

START_TEST (test_hold_and_collect)
{
  struct boxer_cache *cache = open_cache ();
  struct boxer_store *store = open_store ();
  struct layout_opts o = { 0 };
  struct boxer_error *err = NULL;
  struct built b;
  int fd = -1, fd2 = -1;

  build_layout ("layout", &o, &b);
  boxer_image_free (load_ok (cache, b.dir, "x:1"));
  ck_assert_int_eq (boxer_store_hold (store, b.manifest, &fd, &err), 1);
  ck_assert_int_ge (fd, 0);
  /* Several runs hold one image at once.  */
  ck_assert_int_eq (boxer_store_hold (store, b.manifest, &fd2, &err), 1);
  ck_assert_int_eq (boxer_store_collect (store, b.manifest, &err), 0);
  ck_assert_int_eq (count_entries ("rootfs"), 1);
  close (fd);
  ck_assert_int_eq (boxer_store_collect (store, b.manifest, &err), 0);
  close (fd2);
  ck_assert_int_eq (boxer_store_collect (store, b.manifest, &err), 1);
  ck_assert_int_eq (count_entries ("rootfs"), 0);
  ck_assert_int_eq (count_entries ("tmp"), 0);
  ck_assert_int_eq (count_entries ("used"), 0);
  ck_assert_int_eq (boxer_store_hold (store, b.manifest, &fd, &err), 0);
  ck_assert_int_eq (boxer_store_collect (store, b.manifest, &err), 0);
  /* The ref is left; the lookup finds no image behind it.  */
  lookup_fails (cache, "x:1", BOXER_ERR_IMAGE_NOT_FOUND, "image 'x:1' not found");
  ck_assert_int_lt (boxer_store_collect (store, "sha256:../../x", &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
  boxer_error_release (&err);
  boxer_store_free (store);
  boxer_cache_free (cache);
}
END_TEST

START_TEST (test_collect_waits_for_no_publisher)
{
  struct boxer_cache *cache = open_cache ();
  struct boxer_store *store = open_store ();
  struct layout_opts o = { 0 };
  struct boxer_error *err = NULL;
  struct built b;
  char *lock;
  int fd;

  build_layout ("layout", &o, &b);
  boxer_image_free (load_ok (cache, b.dir, "x:1"));
  /* Someone holds the digest's publish lock: collection leaves it.  */
  lock = xasprintf ("%s/images/locks/%s.lock", home, b.manifest + 7);
  fd = boxer_lock_path (lock, LOCK_EX, &err);
  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (boxer_store_collect (store, b.manifest, &err), 0);
  ck_assert_int_eq (count_entries ("rootfs"), 1);
  close (fd);
  ck_assert_int_eq (boxer_store_collect (store, b.manifest, &err), 1);
  free (lock);
  boxer_store_free (store);
  boxer_cache_free (cache);
}
END_TEST

/* A second publisher of a digest waits for the first no later than its
   deadline.  */
START_TEST (test_publish_waits_with_a_deadline)
{
  struct boxer_store *store = open_store ();
  struct boxer_error *err = NULL;
  struct boxer_image_config cfg = { 0 };
  const char *digest = "sha256:" "0123456789abcdef0123456789abcdef"
                       "0123456789abcdef0123456789abcdef";
  struct boxer_store_source src = { .digest = digest, .config = &cfg, .n_layers = 0 };
  char *lock = xasprintf ("%s/images/locks/%s.lock", home, digest + 7);
  long long t0;
  int fd = boxer_lock_path (lock, LOCK_EX, &err);

  ck_assert_int_ge (fd, 0);
  src.deadline_ms = boxer_now_ms () + 300;
  t0 = boxer_now_ms ();
  ck_assert_int_lt (boxer_store_publish (store, &src, &err), 0);
  ck_assert_int_ge (boxer_now_ms () - t0, 250);
  ck_assert_int_lt (boxer_now_ms () - t0, 2000);
  ck_assert_int_eq (err->category, BOXER_ERR_BUSY);
  ck_assert_msg (strstr (err->msg, "pull_timeout_secs"), "%s", err->msg);
  boxer_error_release (&err);
  ck_assert_int_eq (count_entries ("rootfs"), 0);
  close (fd);
  free (lock);
  boxer_store_free (store);
}
END_TEST

START_TEST (test_last_used)
{
  struct boxer_cache *cache = open_cache ();
  struct boxer_store *store = open_store ();
  struct layout_opts o = { 0 };
  struct boxer_error *err = NULL;
  struct boxer_image *image;
  struct timespec old[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
  struct built b;
  char *used;
  time_t now = time (NULL);

  build_layout ("layout", &o, &b);
  image = load_ok (cache, b.dir, "x:1");
  /* Never used: counts from when it was published.  */
  ck_assert_int_ge (image->last_used, now - 5);
  boxer_image_free (image);
  ck_assert_int_eq (boxer_store_touch (store, b.manifest, &err), 0);
  used = xasprintf ("%s/images/used/%s", home, b.manifest + 7);
  ck_assert_int_eq (utimensat (AT_FDCWD, used, old, 0), 0);
  image = lookup_ok (cache, "x:1");
  ck_assert_int_eq (image->last_used, 1000000000);
  boxer_image_free (image);
  ck_assert_int_eq (boxer_store_touch (store, b.manifest, &err), 0);
  image = lookup_ok (cache, "x:1");
  ck_assert_int_ge (image->last_used, now - 5);
  boxer_image_free (image);
  free (used);
  boxer_store_free (store);
  boxer_cache_free (cache);
}
END_TEST

START_TEST (test_acquire_holds_the_image)
{
  struct boxer_cache *cache = open_cache ();
  struct boxer_store *store = open_store ();
  struct layout_opts o = { 0 };
  struct boxer_error *err = NULL;
  struct boxer_image *image = NULL;
  struct boxer_config cfg;
  struct built b;

  boxer_config_init_defaults (&cfg);
  cfg.pull_policy = BOXER_PULL_NEVER;
  ck_assert_int_eq (boxer_cache_configure (cache, &cfg, &err), 0);
  build_layout ("layout", &o, &b);
  boxer_image_free (load_ok (cache, b.dir, "x:1"));
  ck_assert_msg (boxer_cache_acquire (cache, "x:1", true, &image, &err) == 0, "%s",
                 err ? err->msg : "");
  ck_assert_str_eq (image->digest, b.manifest);
  ck_assert_ptr_nonnull (image->hold);
  ck_assert_int_ge (image->last_used, time (NULL) - 5);
  /* Held: neither collection nor removing its last reference takes it.  */
  ck_assert_int_eq (boxer_store_collect (store, b.manifest, &err), 0);
  ck_assert_int_eq (boxer_cache_remove (cache, "x:1", &err), 0);
  ck_assert_int_eq (count_entries ("rootfs"), 1);
  boxer_image_free (image);
  ck_assert_int_eq (boxer_store_collect (store, b.manifest, &err), 1);

  /* Policy never: no registry is asked, the image is simply not there.  */
  image = NULL;
  ck_assert_int_lt (boxer_cache_acquire (cache, "localhost:1/never/pulled:1", true, &image, &err), 0);
  ck_assert_ptr_null (image);
  ck_assert_int_eq (err->category, BOXER_ERR_IMAGE_NOT_FOUND);
  ck_assert_ptr_nonnull (strstr (err->msg, "image 'localhost:1/never/pulled:1' not found"));
  boxer_error_release (&err);
  ck_assert_int_lt (boxer_cache_acquire (cache, "Bad Ref", true, &image, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
  boxer_error_release (&err);
  /* A client that may not pull: a stored image serves it, whatever the
     policy; a missing one is refused as forbidden, not as not found.  */
  cfg.pull_policy = BOXER_PULL_ALWAYS;
  ck_assert_int_eq (boxer_cache_configure (cache, &cfg, &err), 0);
  boxer_image_free (load_ok (cache, b.dir, "x:1"));
  ck_assert_msg (boxer_cache_acquire (cache, "x:1", false, &image, &err) == 0, "%s",
                 err ? err->msg : "");
  boxer_image_free (image);
  image = NULL;
  ck_assert_int_lt (boxer_cache_acquire (cache, "localhost:1/never/pulled:1", false, &image, &err),
                    0);
  ck_assert_int_eq (err->category, BOXER_ERR_FORBIDDEN);
  ck_assert_ptr_nonnull (strstr (err->msg, "may not pull images"));
  boxer_error_release (&err);
  boxer_store_free (store);
  boxer_cache_free (cache);
  boxer_config_release (&cfg);
}
END_TEST

START_TEST (test_remove_collects_unnamed_images)
{
  struct boxer_cache *cache = open_cache ();
  struct layout_opts o = { 0 };
  struct boxer_error *err = NULL;
  struct built b;

  build_layout ("layout", &o, &b);
  boxer_image_free (load_ok (cache, b.dir, "a:1"));
  boxer_image_free (load_ok (cache, b.dir, "b:1"));
  ck_assert_int_eq (boxer_cache_remove (cache, "a:1", &err), 0);
  /* b still names it.  */
  ck_assert_int_eq (count_entries ("rootfs"), 1);
  boxer_image_free (lookup_ok (cache, "b:1"));
  ck_assert_int_eq (boxer_cache_remove (cache, "b:1", &err), 0);
  ck_assert_int_eq (count_entries ("rootfs"), 0);
  ck_assert_int_eq (count_entries ("refs"), 0);
  ck_assert_int_eq (count_entries ("tmp"), 0);

  /* Digest references: a loaded one names no ref file of its own; one
     never stored is simply not there.  */
  {
    char *by_digest = xasprintf ("c@%s", b.manifest);
    char *unknown = xasprintf ("c@sha256:%064d", 0);
    boxer_image_free (load_ok (cache, b.dir, by_digest));
    ck_assert_int_lt (boxer_cache_remove (cache, by_digest, &err), 0);
    ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
    ck_assert_ptr_nonnull (strstr (err->msg, "is a digest reference"));
    boxer_error_release (&err);
    ck_assert_int_lt (boxer_cache_remove (cache, unknown, &err), 0);
    ck_assert_int_eq (err->category, BOXER_ERR_IMAGE_NOT_FOUND);
    boxer_error_release (&err);
    free (by_digest);
    free (unknown);
  }
  boxer_cache_free (cache);
}
END_TEST

START_TEST (test_tmpfile)
{
  struct boxer_store *store = open_store ();
  struct boxer_error *err = NULL;
  int fd = -1;

  ck_assert_int_eq (boxer_store_tmpfile (store, &fd, &err), 0);
  ck_assert_int_eq (write (fd, "blob", 4), 4);
  /* Nameless: nothing to sweep, whatever becomes of its writer.  */
  ck_assert_int_eq (count_entries ("tmp"), 0);
  close (fd);
  boxer_store_free (store);
}
END_TEST

static Suite *
store_suite (void)
{
  Suite *s = suite_create ("store");
  TCase *tc = tcase_create ("core");

  tcase_set_timeout (tc, 60);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_load_and_lookup);
  tcase_add_test (tc, test_reload_does_not_unpack_again);
  tcase_add_test (tc, test_corrupted_blob_rejected);
  tcase_add_test (tc, test_stale_tmp_swept);
  tcase_add_test (tc, test_reference_replaced);
  tcase_add_test (tc, test_not_found);
  tcase_add_test (tc, test_layout_errors);
  tcase_add_test (tc, test_digest_reference_load);
  tcase_add_test (tc, test_list_and_remove);
  tcase_add_test (tc, test_concurrent_loads);
  tcase_add_test (tc, test_image_json_roundtrip);
  tcase_add_test (tc, test_hold_and_collect);
  tcase_add_test (tc, test_collect_waits_for_no_publisher);
  tcase_add_test (tc, test_last_used);
  tcase_add_test (tc, test_publish_waits_with_a_deadline);
  tcase_add_test (tc, test_acquire_holds_the_image);
  tcase_add_test (tc, test_remove_collects_unnamed_images);
  tcase_add_test (tc, test_tmpfile);
  tcase_add_test (tc, test_deep_tree_walk_and_remove);
  tcase_add_test (tc, test_store_is_private);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  SRunner *sr = srunner_create (store_suite ());
  int failed;

  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
