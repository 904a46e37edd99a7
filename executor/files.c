#include <config.h>

#include "files.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <time.h>

#include "common/fsutil.h"
#include "common/utf8.h"
#include "expiry.h"

struct boxer_upload
{
  char *dir;                    /* <home>/files */
  char *staging;                /* <home>/files/.new-<id> */
  char id[BOXER_FILE_ID_LEN + 1];
  char *name;
  char *owner;                  /* the API key's name, or NULL */
  int fd;                       /* staging/data */
  int64_t size;
  EVP_MD_CTX *md;
  bool committed;
};

void
boxer_file_info_release (struct boxer_file_info *fi)
{
  free (fi->name);
  memset (fi, 0, sizeof *fi);
}

bool
boxer_files_id_is_valid (const char *s)
{
  return boxer_expiry_id_is_valid (s, BOXER_FILE_ID_PREFIX, BOXER_FILE_ID_HEX);
}

char *
boxer_files_clean_name (const char *name)
{
  const char *base = name ? name : "";
  cleanup_free char *clean = NULL;
  size_t len;

  for (const char *p = base; *p; p++)
    if (*p == '/' || *p == '\\')
      base = p + 1;
  clean = boxer_utf8_sanitize (base, strlen (base), &len);
  for (size_t i = 0; i < len; i++)
    if ((unsigned char) clean[i] < 0x20 || clean[i] == 0x7f)
      clean[i] = '_';
  if (len > BOXER_FILE_NAME_MAX)
    {
      /* Cut before a character, never inside one.  */
      len = BOXER_FILE_NAME_MAX;
      while (len > 0 && ((unsigned char) clean[len] & 0xc0) == 0x80)
        len--;
      clean[len] = '\0';
    }
  if (len == 0 || strcmp (clean, ".") == 0 || strcmp (clean, "..") == 0)
    return xstrdup ("file");
  return steal_pointer (&clean);
}

static char *
files_dir (const char *home)
{
  return xasprintf ("%s/files", home);
}

int
boxer_files_admit (const struct boxer_config *cfg, int64_t incoming, struct boxer_error **err)
{
  cleanup_free char *dir = files_dir (cfg->home);

  if (boxer_check_free_space (cfg->home, cfg->min_free_bytes, "uploads", err) < 0)
    return -1;
  return boxer_expiry_admit (dir, BOXER_FILE_ID_PREFIX, BOXER_FILE_ID_HEX, "meta.json",
                             cfg->files_ttl_secs, cfg->files_budget_bytes, incoming,
                             "files_budget_bytes", "uploads", NULL, err);
}

int
boxer_files_upload_begin (const char *home, const char *name, const char *owner,
                          struct boxer_upload **out, struct boxer_error **err)
{
  struct boxer_upload *up = xmalloc0 (sizeof *up);
  cleanup_free char *data = NULL;

  up->fd = -1;
  up->dir = files_dir (home);
  up->name = boxer_files_clean_name (name);
  up->owner = owner ? xstrdup (owner) : NULL;
  if (boxer_mkdir_p (up->dir, 0700, err) < 0
      || boxer_random_id (up->id, BOXER_FILE_ID_PREFIX, BOXER_FILE_ID_HEX, err) < 0)
    goto fail;
  up->staging = xasprintf ("%s/" BOXER_EXPIRY_NEW_PREFIX "%s", up->dir, up->id);
  if (mkdir (up->staging, 0700) < 0)
    {
      boxer_error_errno (err, errno, "mkdir '%s'", up->staging);
      free (up->staging);
      up->staging = NULL;
      goto fail;
    }
  data = xasprintf ("%s/data", up->staging);
  up->fd = open (data, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (up->fd < 0)
    {
      boxer_error_errno (err, errno, "create '%s'", data);
      goto fail;
    }
  up->md = EVP_MD_CTX_new ();
  if (up->md == NULL || EVP_DigestInit_ex (up->md, EVP_sha256 (), NULL) != 1)
    abort ();
  *out = up;
  return 0;

fail:
  boxer_files_upload_free (up);
  return -1;
}

int
boxer_files_upload_write (struct boxer_upload *up, const void *data, size_t len,
                          struct boxer_error **err)
{
  if (boxer_write_all (up->fd, data, len, err) < 0)
    return boxer_error_wrap (err, "write upload '%s'", up->staging);
  if (EVP_DigestUpdate (up->md, data, len) != 1)
    abort ();
  up->size += (int64_t) len;
  return 0;
}

static void
digest_hex (EVP_MD_CTX *md, char out[65])
{
  static const char digits[] = "0123456789abcdef";
  unsigned char raw[EVP_MAX_MD_SIZE];
  unsigned int n = 0;

  if (EVP_DigestFinal_ex (md, raw, &n) != 1 || n != 32)
    abort ();
  for (unsigned int i = 0; i < n; i++)
    {
      out[2 * i] = digits[raw[i] >> 4];
      out[2 * i + 1] = digits[raw[i] & 0xf];
    }
  out[64] = '\0';
}

int
boxer_files_upload_commit (struct boxer_upload *up, struct boxer_file_info *out,
                           struct boxer_error **err)
{
  cleanup_free char *meta_path = xasprintf ("%s/meta.json", up->staging);
  cleanup_free char *final = xasprintf ("%s/%s", up->dir, up->id);
  json_object *meta = json_object_new_object ();
  struct boxer_file_info info = { 0 };
  const char *text;
  int r;

  memcpy (info.id, up->id, sizeof info.id);
  info.size = up->size;
  info.created_at = time (NULL);
  digest_hex (up->md, info.sha256);

  /* Read-only for everyone: the run's unprivileged user reads it through
     a read-only bind mount, and nobody ever writes it again.  */
  if (fchmod (up->fd, 0444) < 0 || fsync (up->fd) < 0)
    {
      json_object_put (meta);
      return boxer_error_errno (err, errno, "finish upload '%s'", up->staging);
    }
  close (up->fd);
  up->fd = -1;

  json_object_object_add (meta, "id", json_object_new_string (info.id));
  json_object_object_add (meta, "name", json_object_new_string (up->name));
  json_object_object_add (meta, "size", json_object_new_int64 (info.size));
  json_object_object_add (meta, "sha256", json_object_new_string (info.sha256));
  json_object_object_add (meta, "created_at", json_object_new_int64 (info.created_at));
  if (up->owner)
    json_object_object_add (meta, "owner", json_object_new_string (up->owner));
  text = json_object_to_json_string_ext (meta, JSON_C_TO_STRING_PLAIN);
  r = boxer_write_file_atomic (meta_path, text, strlen (text), 0600, err);
  json_object_put (meta);
  if (r < 0)
    return -1;
  if (rename (up->staging, final) < 0)
    return boxer_error_errno (err, errno, "rename '%s' to '%s'", up->staging, final);
  up->committed = true;
  info.name = xstrdup (up->name);
  *out = info;
  return 0;
}

void
boxer_files_upload_free (struct boxer_upload *up)
{
  if (up == NULL)
    return;
  if (up->fd >= 0)
    close (up->fd);
  if (up->staging && !up->committed)
    boxer_rm_rf (up->staging, NULL);
  EVP_MD_CTX_free (up->md);
  free (up->staging);
  free (up->dir);
  free (up->name);
  free (up->owner);
  free (up);
}

int
boxer_files_remove (const char *home, const char *id, struct boxer_error **err)
{
  cleanup_free char *dir = files_dir (home);

  if (!boxer_files_id_is_valid (id))
    return 0;
  return boxer_expiry_remove (dir, id, err);
}

int
boxer_files_not_found (const char *id, int64_t ttl_secs, struct boxer_error **err)
{
  cleanup_free char *q = boxer_quote_str (id);
  return boxer_error_make (err, BOXER_ERR_FILE_NOT_FOUND,
                           "file '%s' not found; upload it with POST /files and use the id "
                           "it returns (uploads are kept for %lld s)",
                           q, (long long) ttl_secs);
}

int
boxer_files_link (const char *home, const char *id, int64_t ttl_secs, int dest_dirfd,
                  const char *dest_name, struct boxer_error **err)
{
  cleanup_free char *path = NULL;
  cleanup_close int fd = -1;
  struct stat st;

  if (!boxer_files_id_is_valid (id))
    return boxer_files_not_found (id, ttl_secs, err);
  path = xasprintf ("%s/files/%s", home, id);
  fd = open (path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    {
      if (errno == ENOENT)
        return boxer_files_not_found (id, ttl_secs, err);
      return boxer_error_errno (err, errno, "open '%s'", path);
    }
  if (fstatat (fd, "meta.json", &st, AT_SYMLINK_NOFOLLOW) < 0)
    {
      if (errno == ENOENT)
        return boxer_files_not_found (id, ttl_secs, err);
      return boxer_error_errno (err, errno, "stat '%s/meta.json'", path);
    }
  /* Expired but not swept yet is expired all the same.  */
  if (boxer_expiry_expired (&st, ttl_secs))
    return boxer_files_not_found (id, ttl_secs, err);
  if (linkat (fd, "data", dest_dirfd, dest_name, 0) < 0)
    {
      if (errno == ENOENT)
        return boxer_files_not_found (id, ttl_secs, err);
      return boxer_error_errno (err, errno, "link '%s/data'", path);
    }
  return 0;
}

int
boxer_files_owner (const char *home, const char *id, int64_t ttl_secs, char **owner_out,
                   struct boxer_error **err)
{
  cleanup_free char *path = NULL;
  cleanup_free char *text = NULL;
  json_object *meta, *owner;
  struct stat st;

  *owner_out = NULL;
  if (!boxer_files_id_is_valid (id))
    return boxer_files_not_found (id, ttl_secs, err);
  path = xasprintf ("%s/files/%s/meta.json", home, id);
  if (lstat (path, &st) < 0 || !S_ISREG (st.st_mode) || boxer_expiry_expired (&st, ttl_secs))
    return boxer_files_not_found (id, ttl_secs, err);
  /* Written by boxer_files_upload_commit (): small.  */
  if (boxer_read_file (path, 65536, &text, NULL, err) < 0)
    return -1;
  meta = json_tokener_parse (text);
  if (meta == NULL)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "upload %s has a damaged meta.json", id);
  if (json_object_object_get_ex (meta, "owner", &owner)
      && json_object_is_type (owner, json_type_string))
    *owner_out = xstrdup (json_object_get_string (owner));
  json_object_put (meta);
  return 0;
}

int
boxer_files_remeasure (const struct boxer_config *cfg, struct boxer_error **err)
{
  cleanup_free char *dir = files_dir (cfg->home);
  return boxer_expiry_remeasure (dir, cfg->files_budget_bytes, err);
}

int
boxer_files_sweep (const char *home, int64_t ttl_secs, struct boxer_error **err)
{
  cleanup_free char *dir = files_dir (home);
  return boxer_expiry_sweep (dir, BOXER_FILE_ID_PREFIX, BOXER_FILE_ID_HEX, "meta.json",
                             ttl_secs, err);
}
