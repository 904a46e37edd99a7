#include <config.h>

#include "store.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <search.h>
#include <stdbool.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "common/fsutil.h"
#include "common/json.h"
#include "reference.h"
#include "unpack.h"

#define TMP_ID_HEX 32
/* A ref file's write temporary this old belongs to a dead process.  */
#define REF_TMP_STALE_SECS 3600
#define IMAGE_JSON_VERSION 1

/* An unpacking that failed, still on disk: tmp/<id>, with tmp/<id>.lock
   still held so that no sweep races us to it.  */
struct leftover
{
  struct leftover *next;
  char *tmpdir;
  int lockfd;
};

struct boxer_store
{
  char *dir;            /* absolute <home>/images */
  struct leftover *leftovers;
};

const char *
boxer_store_dir (const struct boxer_store *store)
{
  return store->dir;
}

void
boxer_store_tidy (struct boxer_store *store)
{
  while (store->leftovers)
    {
      struct leftover *l = store->leftovers;
      cleanup_free char *lock = xasprintf ("%s.lock", l->tmpdir);
      cleanup_error struct boxer_error *err = NULL;

      store->leftovers = l->next;
      /* Should this fail, the sweep tries again once our lock is gone.  */
      if (boxer_rm_rf (l->tmpdir, &err) == 0)
        unlink (lock);
      close (l->lockfd);
      free (l->tmpdir);
      free (l);
    }
}

void
boxer_store_free (struct boxer_store *store)
{
  if (store == NULL)
    return;
  boxer_store_tidy (store);
  free (store->dir);
  free (store);
}

static int
make_dir (const char *path, mode_t mode, struct boxer_error **err)
{
  if (mkdir (path, mode) < 0 && errno != EEXIST)
    return boxer_error_errno (err, errno, "mkdir '%s'", path);
  /* Whatever the umask: the sandbox runtime must be able to traverse.  */
  if (chmod (path, mode) < 0)
    return boxer_error_errno (err, errno, "chmod '%s'", path);
  return 0;
}

int
boxer_store_open (struct boxer_store **out, const char *home, struct boxer_error **err)
{
  static const char *const subdirs[] = { "rootfs", "refs", "tmp", "locks", "used", NULL };
  cleanup_free char *dir = xasprintf ("%s/images", home);
  struct boxer_store *store;

  /* Only the server enters the store: what images hold (their files,
     whatever their modes) is nobody else's on this host.  */
  if (boxer_ensure_private_dir (dir, err) < 0)
    return boxer_error_wrap (err, "create the image store");
  for (size_t i = 0; subdirs[i]; i++)
    {
      cleanup_free char *sub = xasprintf ("%s/%s", dir, subdirs[i]);
      if (make_dir (sub, 0755, err) < 0)
        return boxer_error_wrap (err, "create the image store");
    }
  store = xmalloc0 (sizeof *store);
  store->dir = realpath (dir, NULL);
  if (store->dir == NULL)
    {
      boxer_store_free (store);
      return boxer_error_errno (err, errno, "resolve '%s'", dir);
    }
  if (boxer_store_sweep (store, err) < 0)
    {
      boxer_store_free (store);
      return -1;
    }
  *out = store;
  return 0;
}

/* Re-file an error from a file we wrote ourselves: if it is bad, that is
   our corruption, not the client's mistake.  */
static int
as_internal (struct boxer_error **err)
{
  if (err && *err)
    (*err)->category = BOXER_ERR_INTERNAL;
  return -1;
}

/* Whether fd is still the file at path: a lock taken on a file that was
   unlinked meanwhile protects nothing.  */
static bool
same_file (int fd, const char *path)
{
  struct stat a, b;

  return fstat (fd, &a) == 0 && stat (path, &b) == 0 && a.st_dev == b.st_dev
         && a.st_ino == b.st_ino;
}

/* Sweeping.  */

static int
sweep_tmp_entry (struct boxer_store *store, const char *name, struct boxer_error **err)
{
  cleanup_free char *base = xstrdup (name);
  cleanup_free char *lock = NULL;
  cleanup_free char *path = NULL;
  cleanup_close int fd = -1;
  size_t len = strlen (base);
  struct boxer_error *busy = NULL;

  if (len > 5 && strcmp (base + len - 5, ".lock") == 0)
    base[len - 5] = '\0';
  lock = xasprintf ("%s/tmp/%s.lock", store->dir, base);
  path = xasprintf ("%s/tmp/%s", store->dir, base);
  fd = boxer_lock_path (lock, LOCK_EX | LOCK_NB, &busy);
  if (fd < 0)
    {
      /* Held: a live process is unpacking there.  */
      boxer_error_free (busy);
      return 0;
    }
  if (!same_file (fd, lock))
    return 0;
  if (boxer_rm_rf (path, err) < 0)
    return boxer_error_wrap (err, "sweep");
  unlink (lock);
  return 0;
}

static int
sweep_tmp (struct boxer_store *store, struct boxer_error **err)
{
  cleanup_free char *tmp = xasprintf ("%s/tmp", store->dir);
  cleanup_dir DIR *d = opendir (tmp);
  struct dirent *de;

  if (d == NULL)
    return boxer_error_errno (err, errno, "open '%s'", tmp);
  /* Entries removed or created while we read are fine: the work on each
     is idempotent.  */
  while ((errno = 0, de = readdir (d)) != NULL)
    {
      if (de->d_name[0] == '.')
        continue;
      if (sweep_tmp_entry (store, de->d_name, err) < 0)
        return -1;
    }
  if (errno)
    return boxer_error_errno (err, errno, "read '%s'", tmp);
  return 0;
}

static int
sweep_ref_temporaries (struct boxer_store *store, struct boxer_error **err)
{
  cleanup_free char *refs = xasprintf ("%s/refs", store->dir);
  cleanup_dir DIR *d = opendir (refs);
  time_t now = time (NULL);
  struct dirent *de;

  if (d == NULL)
    return boxer_error_errno (err, errno, "open '%s'", refs);
  while ((errno = 0, de = readdir (d)) != NULL)
    {
      struct stat st;
      if (strstr (de->d_name, ".tmp-") == NULL)
        continue;
      if (fstatat (dirfd (d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0
          && now - st.st_mtime > REF_TMP_STALE_SECS)
        unlinkat (dirfd (d), de->d_name, 0);
    }
  if (errno)
    return boxer_error_errno (err, errno, "read '%s'", refs);
  return 0;
}

int
boxer_store_sweep (struct boxer_store *store, struct boxer_error **err)
{
  if (sweep_tmp (store, err) < 0 || sweep_ref_temporaries (store, err) < 0)
    return -1;
  return 0;
}

/* image.json.  */

char *
boxer_store_image_json (const struct boxer_image_config *cfg, const char *digest, int64_t size)
{
  json_object *o = json_object_new_object ();
  char *r;

  json_object_object_add (o, "schemaVersion", json_object_new_int (IMAGE_JSON_VERSION));
  json_object_object_add (o, "digest", json_object_new_string (digest));
  json_object_object_add (o, "architecture", boxer_json_string_or_null (cfg->architecture));
  json_object_object_add (o, "os", boxer_json_string_or_null (cfg->os));
  json_object_object_add (o, "env", boxer_json_strv (cfg->env));
  json_object_object_add (o, "entrypoint", boxer_json_strv (cfg->entrypoint));
  json_object_object_add (o, "cmd", boxer_json_strv (cfg->cmd));
  json_object_object_add (o, "workdir", boxer_json_string_or_null (cfg->workdir));
  json_object_object_add (o, "user", boxer_json_string_or_null (cfg->user));
  json_object_object_add (o, "size", json_object_new_int64 (size));
  r = xasprintf ("%s\n", json_object_to_json_string_ext (o, JSON_C_TO_STRING_PRETTY
                                                                | JSON_C_TO_STRING_SPACED
                                                                | JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put (o);
  return r;
}

static int
parse_image_json (json_object *root, struct boxer_image *out, struct boxer_error **err)
{
  const char *w = "image.json";
  const size_t max = BOXER_IMAGE_CONFIG_MAX_STRING;
  json_object *size = NULL;

  if (boxer_oci_json_get_string (root, "digest", w, true, 128, &out->digest, err) < 0
      || boxer_oci_json_get_strv (root, "env", w, BOXER_IMAGE_CONFIG_MAX_ENV, &out->env, err) < 0
      || boxer_oci_json_get_strv (root, "entrypoint", w, BOXER_IMAGE_CONFIG_MAX_ARGS,
                                  &out->entrypoint, err) < 0
      || boxer_oci_json_get_strv (root, "cmd", w, BOXER_IMAGE_CONFIG_MAX_ARGS, &out->cmd, err) < 0
      || boxer_oci_json_get_string (root, "workdir", w, false, max, &out->workdir, err) < 0
      || boxer_oci_json_get_string (root, "user", w, false, max, &out->user, err) < 0)
    return -1;
  if (!boxer_digest_is_valid (out->digest))
    return boxer_error_make (err, BOXER_ERR_INVALID, "%s: 'digest' is not a sha256 digest", w);
  if (!json_object_object_get_ex (root, "size", &size) || !json_object_is_type (size, json_type_int)
      || json_object_get_int64 (size) < 0)
    return boxer_error_make (err, BOXER_ERR_INVALID, "%s: 'size' must be a non-negative integer",
                             w);
  out->size = json_object_get_int64 (size);
  if (out->env == NULL)
    out->env = xmalloc0 (sizeof *out->env);
  return 0;
}

int
boxer_store_image_json_parse (const char *data, size_t len, struct boxer_image *out,
                              struct boxer_error **err)
{
  json_object *root = NULL;
  int r;

  /* Twice the config's bound: it holds no more than the config did, but
     may escape it differently.  */
  if (boxer_oci_json_parse (data, len, 2 * BOXER_OCI_DOC_MAX, "image.json", &root, err) < 0)
    return -1;
  r = parse_image_json (root, out, err);
  json_object_put (root);
  return r;
}

/* Reading published images.  */

static char *
published_dir (struct boxer_store *store, const char *digest)
{
  return xasprintf ("%s/rootfs/%s", store->dir, digest + 7);
}

static char *
used_path (struct boxer_store *store, const char *digest)
{
  return xasprintf ("%s/used/%s", store->dir, digest + 7);
}

/* When digest was last used; an image never used since it was published
   counts from then.  */
static long long
last_used (struct boxer_store *store, const char *digest, const char *dir)
{
  cleanup_free char *path = used_path (store, digest);
  struct stat st;

  if (stat (path, &st) == 0 || stat (dir, &st) == 0)
    return (long long) st.st_mtime;
  return 0;
}

int
boxer_store_get (struct boxer_store *store, const char *digest, struct boxer_image **out,
                 struct boxer_error **err)
{
  cleanup_free char *dir = NULL;
  cleanup_free char *path = NULL;
  cleanup_free char *data = NULL;
  cleanup_image struct boxer_image *image = NULL;
  size_t len;

  *out = NULL;
  if (!boxer_digest_is_valid (digest))
    return boxer_error_make (err, BOXER_ERR_INVALID, "'%s' is not a sha256 digest", digest);
  dir = published_dir (store, digest);
  path = xasprintf ("%s/image.json", dir);
  if (access (path, F_OK) < 0 && errno == ENOENT)
    return 0;
  if (boxer_read_file (path, 2 * BOXER_OCI_DOC_MAX, &data, &len, err) < 0)
    return -1;
  image = xmalloc0 (sizeof *image);
  if (boxer_store_image_json_parse (data, len, image, err) < 0)
    {
      as_internal (err);
      return boxer_error_wrap (err, "read '%s'", path);
    }
  if (strcmp (image->digest, digest) != 0)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "'%s' names digest %s", path,
                             image->digest);
  image->rootfs = xasprintf ("%s/rootfs", dir);
  image->last_used = last_used (store, digest, dir);
  *out = steal_pointer (&image);
  return 0;
}

static bool
is_published (struct boxer_store *store, const char *digest)
{
  cleanup_free char *dir = published_dir (store, digest);
  cleanup_free char *path = xasprintf ("%s/image.json", dir);

  return access (path, F_OK) == 0;
}

/* Size of a tree: regular files, each inode once.  */

struct size_walk
{
  void *seen;           /* tsearch set of inode numbers with several links */
  int64_t total;
};

static int
cmp_ino (const void *a, const void *b)
{
  ino_t x = *(const ino_t *) a, y = *(const ino_t *) b;
  return x < y ? -1 : x > y;
}

static void
count_file (struct size_walk *w, const struct stat *st)
{
  if (st->st_nlink > 1)
    {
      ino_t *key = xmalloc (sizeof *key);
      *key = st->st_ino;
      if (tfind (key, &w->seen, cmp_ino))
        {
          free (key);
          return;
        }
      if (tsearch (key, &w->seen, cmp_ino) == NULL)
        abort ();
    }
  w->total += st->st_size;
}

static int
size_visit (int parentfd, const char *name, const struct stat *st, enum boxer_walk_event ev,
            void *data, struct boxer_error **err)
{
  (void) parentfd;
  (void) name;
  (void) err;
  if (ev == BOXER_WALK_FILE && S_ISREG (st->st_mode))
    count_file (data, st);
  return 0;
}

/* Bytes of the regular files under path, each inode once.  */
static int
tree_size (const char *path, int64_t *out, struct boxer_error **err)
{
  struct size_walk w = { NULL, 0 };
  int r = boxer_walk_at (AT_FDCWD, path, false, size_visit, &w, err);

  tdestroy (w.seen, free);
  *out = w.total;
  return r;
}

/* Publishing.  */

/* Create and lock tmp/<id>.lock for a fresh id: the lock tells the sweep
   that tmp/<id> is in use.  */
static int
lock_new_tmp (struct boxer_store *store, char id[TMP_ID_HEX + 1], struct boxer_error **err)
{
  for (int attempt = 0; attempt < 8; attempt++)
    {
      cleanup_free char *lock = NULL;
      cleanup_close int fd = -1;

      if (boxer_random_id (id, "", TMP_ID_HEX, err) < 0)
        return -1;
      lock = xasprintf ("%s/tmp/%s.lock", store->dir, id);
      fd = open (lock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0 && errno == EEXIST)
        continue;
      if (fd < 0)
        return boxer_error_errno (err, errno, "create '%s'", lock);
      while (flock (fd, LOCK_EX) < 0)
        if (errno != EINTR)
          return boxer_error_errno (err, errno, "lock '%s'", lock);
      /* A sweep may have locked and removed it between open and flock.  */
      if (same_file (fd, lock))
        return steal_fd (&fd);
    }
  return boxer_error_make (err, BOXER_ERR_INTERNAL, "could not create a temporary directory lock");
}

static int
unpack_layers (const struct boxer_store_source *src, const char *rootfs, struct boxer_error **err)
{
  struct boxer_layer_usage usage = { 0, 0 };

  for (size_t i = 0; i < src->n_layers; i++)
    {
      cleanup_close int fd = -1;
      if (src->open_layer (src->data, i, &fd, err) < 0
          || boxer_unpack_layer (rootfs, fd, src->limits, &usage, err) < 0)
        return boxer_error_wrap (err, "layer %zu of %zu", i + 1, src->n_layers);
    }
  return 0;
}

static int
fill_tmp (const struct boxer_store_source *src, const char *tmpdir, struct boxer_error **err)
{
  cleanup_free char *rootfs = xasprintf ("%s/rootfs", tmpdir);
  cleanup_free char *json_path = xasprintf ("%s/image.json", tmpdir);
  cleanup_free char *json = NULL;
  int64_t size = 0;

  if (make_dir (tmpdir, 0755, err) < 0 || make_dir (rootfs, 0755, err) < 0)
    return -1;
  if (src->prepare && src->prepare (src->data, err) < 0)
    return -1;
  if (unpack_layers (src, rootfs, err) < 0 || tree_size (rootfs, &size, err) < 0)
    return -1;
  json = boxer_store_image_json (src->config, src->digest, size);
  return boxer_write_file_atomic (json_path, json, strlen (json), 0644, err);
}

static int
unpack_and_rename (struct boxer_store *store, const struct boxer_store_source *src,
                   struct boxer_error **err)
{
  char id[TMP_ID_HEX + 1];
  cleanup_close int lockfd = lock_new_tmp (store, id, err);
  cleanup_free char *tmpdir = NULL;
  cleanup_free char *lock = NULL;
  cleanup_free char *final = published_dir (store, src->digest);
  int r;

  if (lockfd < 0)
    return -1;
  tmpdir = xasprintf ("%s/tmp/%s", store->dir, id);
  lock = xasprintf ("%s.lock", tmpdir);
  r = fill_tmp (src, tmpdir, err);
  if (r == 0 && rename (tmpdir, final) < 0)
    r = boxer_error_errno (err, errno, "rename '%s' to '%s'", tmpdir, final);
  if (r < 0)
    {
      /* Removing what a pull cut short at its deadline can take longer
         than the pull did: boxer_store_tidy () does it, once the caller
         has answered.  */
      struct leftover *l = xmalloc0 (sizeof *l);
      l->tmpdir = steal_pointer (&tmpdir);
      l->lockfd = steal_fd (&lockfd);
      l->next = store->leftovers;
      store->leftovers = l;
      return r;
    }
  /* Unlinked while still held, so a sweep never sees it free.  */
  unlink (lock);
  return r;
}

#define LOCK_POLL_MS 100

/* The digest's publish lock, waiting for another publisher no later than
   deadline_ms (0: without end).  */
static int
lock_until (const char *lock, int64_t deadline_ms, struct boxer_error **err)
{
  if (deadline_ms == 0)
    return boxer_lock_path (lock, LOCK_EX, err);
  for (;;)
    {
      struct timespec ts = { 0, LOCK_POLL_MS * 1000000L };
      int fd = boxer_lock_path (lock, LOCK_EX | LOCK_NB, err);

      if (fd >= 0 || (err && *err))
        return fd;
      if (boxer_now_ms () >= deadline_ms)
        return boxer_error_make (err, BOXER_ERR_BUSY,
                                 "another pull of this image is still unpacking it and did not "
                                 "finish within pull_timeout_secs; try again later");
      nanosleep (&ts, NULL);
    }
}

int
boxer_store_publish (struct boxer_store *store, const struct boxer_store_source *src,
                     struct boxer_error **err)
{
  cleanup_free char *lock = NULL;
  cleanup_close int lockfd = -1;

  if (!boxer_digest_is_valid (src->digest))
    return boxer_error_make (err, BOXER_ERR_INVALID, "image digest is not a sha256 digest");
  lock = xasprintf ("%s/locks/%s.lock", store->dir, src->digest + 7);
  lockfd = lock_until (lock, src->deadline_ms, err);
  if (lockfd < 0)
    return -1;
  /* Another worker may have published it while we waited.  */
  if (is_published (store, src->digest))
    return 0;
  if (unpack_and_rename (store, src, err) < 0)
    return -1;
  return 1;
}

/* References.  */

static char *
ref_path (struct boxer_store *store, const char *reference)
{
  char hex[65];

  boxer_sha256_hex (reference, strlen (reference), hex);
  return xasprintf ("%s/refs/%s", store->dir, hex);
}

int
boxer_store_set_ref (struct boxer_store *store, const char *reference, const char *digest,
                     struct boxer_error **err)
{
  cleanup_free char *path = ref_path (store, reference);
  json_object *o = json_object_new_object ();
  cleanup_free char *data = NULL;

  json_object_object_add (o, "reference", json_object_new_string (reference));
  json_object_object_add (o, "digest", json_object_new_string (digest));
  data = xasprintf ("%s\n", json_object_to_json_string_ext (
                                  o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put (o);
  return boxer_write_file_atomic (path, data, strlen (data), 0644, err);
}

/* Read a ref file into its reference and digest.  */
static int
read_ref_file (const char *path, char **ref_out, char **digest_out, struct boxer_error **err)
{
  cleanup_free char *data = NULL;
  json_object *root = NULL;
  size_t len;
  int r;

  if (boxer_read_file (path, BOXER_STORE_REF_MAX, &data, &len, err) < 0)
    return -1;
  if (boxer_oci_json_parse (data, len, BOXER_STORE_REF_MAX, "ref file", &root, err) < 0)
    {
      as_internal (err);
      return boxer_error_wrap (err, "'%s'", path);
    }
  r = boxer_oci_json_get_string (root, "reference", "ref file", true, 1024, ref_out, err);
  if (r == 0)
    r = boxer_oci_json_get_string (root, "digest", "ref file", true, 128, digest_out, err);
  json_object_put (root);
  if (r == 0 && !boxer_digest_is_valid (*digest_out))
    r = boxer_error_make (err, BOXER_ERR_INTERNAL, "ref file '%s' holds a bad digest", path);
  if (r < 0)
    return as_internal (err);
  return 0;
}

int
boxer_store_get_ref (struct boxer_store *store, const char *reference, char **digest_out,
                     struct boxer_error **err)
{
  cleanup_free char *path = ref_path (store, reference);
  cleanup_free char *stored = NULL;
  cleanup_free char *digest = NULL;

  *digest_out = NULL;
  if (access (path, F_OK) < 0 && errno == ENOENT)
    return 0;
  if (read_ref_file (path, &stored, &digest, err) < 0)
    return -1;
  if (strcmp (stored, reference) != 0)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "ref file '%s' is for '%s'", path, stored);
  *digest_out = steal_pointer (&digest);
  return 0;
}

int
boxer_store_remove_ref (struct boxer_store *store, const char *reference,
                        struct boxer_error **err)
{
  cleanup_free char *path = ref_path (store, reference);

  if (unlink (path) == 0)
    return 1;
  if (errno == ENOENT)
    return 0;
  return boxer_error_errno (err, errno, "remove '%s'", path);
}

static bool
is_ref_file_name (const char *name)
{
  return strlen (name) == 64 && strspn (name, "0123456789abcdef") == 64;
}

static int
cmp_strp (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static int
collect_refs (struct boxer_store *store, DIR *d, char ***pairs, size_t *n,
              struct boxer_error **err)
{
  struct dirent *de;

  while ((errno = 0, de = readdir (d)) != NULL)
    {
      cleanup_free char *path = NULL;
      char *ref = NULL, *digest = NULL;

      if (!is_ref_file_name (de->d_name))
        continue;
      path = xasprintf ("%s/refs/%s", store->dir, de->d_name);
      if (read_ref_file (path, &ref, &digest, err) < 0)
        {
          free (ref);
          free (digest);
          /* Removed since we listed it: not an error.  */
          if (err == NULL || *err == NULL || (*err)->errnum != ENOENT)
            return -1;
          boxer_error_release (err);
          continue;
        }
      *pairs = xrealloc (*pairs, (*n + 1) * 2 * sizeof **pairs);
      (*pairs)[2 * *n] = ref;
      (*pairs)[2 * *n + 1] = digest;
      (*n)++;
    }
  if (errno)
    return boxer_error_errno (err, errno, "read '%s/refs'", store->dir);
  return 0;
}

int
boxer_store_list_refs (struct boxer_store *store, char ***refs_out, char ***digests_out,
                       struct boxer_error **err)
{
  cleanup_free char *dir = xasprintf ("%s/refs", store->dir);
  cleanup_dir DIR *d = opendir (dir);
  cleanup_free char **pairs = NULL;
  char **refs, **digests;
  size_t n = 0;

  if (d == NULL)
    return boxer_error_errno (err, errno, "open '%s'", dir);
  if (collect_refs (store, d, &pairs, &n, err) < 0)
    {
      for (size_t i = 0; i < 2 * n; i++)
        free (pairs[i]);
      return -1;
    }
  /* Pairs sort by their first member, the reference.  */
  if (n > 1)
    qsort (pairs, n, 2 * sizeof *pairs, cmp_strp);
  refs = xmalloc0 ((n + 1) * sizeof *refs);
  digests = xmalloc0 ((n + 1) * sizeof *digests);
  for (size_t i = 0; i < n; i++)
    {
      refs[i] = pairs[2 * i];
      digests[i] = pairs[2 * i + 1];
    }
  *refs_out = refs;
  *digests_out = digests;
  return 0;
}

/* Images in use, last use, removal.  */

int
boxer_store_hold (struct boxer_store *store, const char *digest, int *fd_out,
                  struct boxer_error **err)
{
  cleanup_free char *dir = NULL;
  cleanup_close int fd = -1;

  if (!boxer_digest_is_valid (digest))
    return boxer_error_make (err, BOXER_ERR_INVALID, "'%s' is not a sha256 digest", digest);
  dir = published_dir (store, digest);
  fd = open (dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    return 0;
  if (fd < 0)
    return boxer_error_errno (err, errno, "open '%s'", dir);
  while (flock (fd, LOCK_SH) < 0)
    if (errno != EINTR)
      return boxer_error_errno (err, errno, "lock '%s'", dir);
  /* Removed while we waited for the lock: the removal took it first and
     renamed the directory away.  */
  if (!same_file (fd, dir) || !is_published (store, digest))
    return 0;
  *fd_out = steal_fd (&fd);
  return 1;
}

int
boxer_store_touch (struct boxer_store *store, const char *digest, struct boxer_error **err)
{
  cleanup_free char *path = NULL;
  cleanup_close int fd = -1;

  if (!boxer_digest_is_valid (digest))
    return boxer_error_make (err, BOXER_ERR_INVALID, "'%s' is not a sha256 digest", digest);
  path = used_path (store, digest);
  fd = open (path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0)
    return boxer_error_errno (err, errno, "open '%s'", path);
  if (futimens (fd, NULL) < 0)
    return boxer_error_errno (err, errno, "touch '%s'", path);
  return 0;
}

int
boxer_store_collect (struct boxer_store *store, const char *digest, struct boxer_error **err)
{
  cleanup_free char *lock = NULL;
  cleanup_free char *dir = NULL;
  cleanup_free char *tmpdir = NULL;
  cleanup_free char *tmplock = NULL;
  cleanup_free char *used = NULL;
  cleanup_close int lockfd = -1;
  cleanup_close int dirfd = -1;
  cleanup_close int tmpfd = -1;
  struct boxer_error *busy = NULL;
  char id[TMP_ID_HEX + 1];
  int r;

  if (!boxer_digest_is_valid (digest))
    return boxer_error_make (err, BOXER_ERR_INVALID, "'%s' is not a sha256 digest", digest);
  /* Being published right now: not ours to remove.  */
  lock = xasprintf ("%s/locks/%s.lock", store->dir, digest + 7);
  lockfd = boxer_lock_path (lock, LOCK_EX | LOCK_NB, &busy);
  if (lockfd < 0)
    {
      if (busy == NULL)
        return 0;
      *err = busy;
      return -1;
    }
  dir = published_dir (store, digest);
  dirfd = open (dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dirfd < 0)
    return errno == ENOENT ? 0 : boxer_error_errno (err, errno, "open '%s'", dir);
  /* In use by a run: it stays.  */
  while ((r = flock (dirfd, LOCK_EX | LOCK_NB)) < 0 && errno == EINTR)
    ;
  if (r < 0)
    return errno == EWOULDBLOCK ? 0 : boxer_error_errno (err, errno, "lock '%s'", dir);
  tmpfd = lock_new_tmp (store, id, err);
  if (tmpfd < 0)
    return -1;
  tmpdir = xasprintf ("%s/tmp/%s", store->dir, id);
  tmplock = xasprintf ("%s.lock", tmpdir);
  if (rename (dir, tmpdir) < 0)
    {
      r = boxer_error_errno (err, errno, "rename '%s' to '%s'", dir, tmpdir);
      unlink (tmplock);
      return r;
    }
  /* Whoever waits for the lock now finds the image gone.  */
  close (steal_fd (&dirfd));
  used = used_path (store, digest);
  unlink (used);
  r = boxer_rm_rf (tmpdir, err);
  /* Should that fail, the sweep finishes it once our lock is gone.  */
  unlink (tmplock);
  return r < 0 ? -1 : 1;
}

static bool
is_digest_hex (const char *name)
{
  return strlen (name) == 64 && strspn (name, "0123456789abcdef") == 64;
}

int
boxer_store_list_digests (struct boxer_store *store, char ***out, struct boxer_error **err)
{
  cleanup_free char *dir = xasprintf ("%s/rootfs", store->dir);
  cleanup_dir DIR *d = opendir (dir);
  cleanup_strv char **list = NULL;
  struct dirent *de;
  size_t n = 0;

  if (d == NULL)
    return boxer_error_errno (err, errno, "open '%s'", dir);
  list = xmalloc0 (sizeof *list);
  while ((errno = 0, de = readdir (d)) != NULL)
    {
      if (!is_digest_hex (de->d_name))
        continue;
      list = xrealloc (list, (n + 2) * sizeof *list);
      list[n++] = xasprintf ("sha256:%s", de->d_name);
      list[n] = NULL;
    }
  if (errno)
    return boxer_error_errno (err, errno, "read '%s'", dir);
  *out = steal_pointer (&list);
  return 0;
}

int
boxer_store_tmpfile (struct boxer_store *store, int *fd_out, struct boxer_error **err)
{
  cleanup_free char *tmp = xasprintf ("%s/tmp", store->dir);
  cleanup_free char *path = NULL;
  char id[TMP_ID_HEX + 1];
  int fd = open (tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

  if (fd >= 0)
    {
      *fd_out = fd;
      return 0;
    }
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
    return boxer_error_errno (err, errno, "create a temporary file in '%s'", tmp);
  /* A file system without O_TMPFILE: a name unlinked at once.  A crash in
     between leaves a file the sweep removes, since no lock holds it.  */
  if (boxer_random_id (id, "", TMP_ID_HEX, err) < 0)
    return -1;
  path = xasprintf ("%s/%s.blob", tmp, id);
  fd = open (path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return boxer_error_errno (err, errno, "create '%s'", path);
  unlink (path);
  *fd_out = fd;
  return 0;
}
