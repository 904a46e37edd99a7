/* cache/'s public face: references in, published images out.  It glues
   reference parsing, the OCI layout reader, pulls and the store together,
   and keeps the store within its disk budget.  */
#include <config.h>

#include "cache.h"

#include <curl/curl.h>
#include <sys/file.h>
#include <sys/statvfs.h>

#include "common/fsutil.h"
#include "layer.h"
#include "oci_layout.h"
#include "pull.h"
#include "reference.h"
#include "store.h"

/* Times a run's image may vanish (collected to make room) between being
   pulled and being held before we give up.  */
#define ACQUIRE_ATTEMPTS 3

struct boxer_cache
{
  struct boxer_store *store;
  const struct boxer_config *cfg;       /* NULL: pull defaults */
  struct boxer_platform platform;
  struct boxer_auth_cache *tokens;      /* this process's registry tokens */
};

struct boxer_image_hold
{
  int fd;               /* the shared flock on the image's directory */
};

void
boxer_image_free (struct boxer_image *image)
{
  if (image == NULL)
    return;
  free (image->reference);
  free (image->digest);
  free (image->rootfs);
  boxer_strv_free (image->env);
  boxer_strv_free (image->entrypoint);
  boxer_strv_free (image->cmd);
  free (image->workdir);
  free (image->user);
  if (image->hold)
    {
      close (image->hold->fd);
      free (image->hold);
    }
  free (image);
}

int
boxer_cache_open (struct boxer_cache **out, const char *home, struct boxer_error **err)
{
  struct boxer_cache *cache = xmalloc0 (sizeof *cache);
  cleanup_free char *platform = xasprintf ("linux/%s", boxer_oci_host_architecture ());

  if (boxer_store_open (&cache->store, home, err) < 0
      || boxer_platform_parse (platform, &cache->platform, err) < 0)
    {
      boxer_cache_free (cache);
      return -1;
    }
  cache->tokens = boxer_auth_cache_new ();
  *out = cache;
  return 0;
}

void
boxer_cache_free (struct boxer_cache *cache)
{
  if (cache == NULL)
    return;
  boxer_store_free (cache->store);
  boxer_platform_release (&cache->platform);
  boxer_auth_cache_free (cache->tokens);
  free (cache);
}

void
boxer_cache_tidy (struct boxer_cache *cache)
{
  boxer_store_tidy (cache->store);
}

int
boxer_cache_configure (struct boxer_cache *cache, const struct boxer_config *cfg,
                       struct boxer_error **err)
{
  struct boxer_platform platform;

  if (boxer_platform_parse (cfg->image_platform, &platform, err) < 0)
    return boxer_error_wrap (err, "config: 'image_platform'");
  if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK)
    {
      boxer_platform_release (&platform);
      return boxer_error_make (err, BOXER_ERR_INTERNAL, "curl_global_init failed");
    }
  boxer_platform_release (&cache->platform);
  cache->platform = platform;
  cache->cfg = cfg;
  return 0;
}

static int
not_found (const char *reference, struct boxer_error **err)
{
  cleanup_free char *q = boxer_quote_str (reference);

  return boxer_error_make (err, BOXER_ERR_IMAGE_NOT_FOUND,
                           "image '%s' not found; load it with boxer-image load or pull it", q);
}

/* The published image ref names, or NULL (no error) when there is none.  */
static int
resolve (struct boxer_cache *cache, const struct boxer_reference *ref, const char *normalised,
         struct boxer_image **out, struct boxer_error **err)
{
  cleanup_free char *digest = NULL;

  *out = NULL;
  /* A pulled digest reference has a ref file too: the digest of an index
     names the image of our platform only through it.  */
  if (boxer_store_get_ref (cache->store, normalised, &digest, err) < 0)
    return -1;
  if (digest == NULL && ref->digest)
    digest = xstrdup (ref->digest);
  if (digest == NULL)
    return 0;
  if (boxer_store_get (cache->store, digest, out, err) < 0)
    return -1;
  if (*out)
    (*out)->reference = xstrdup (normalised);
  return 0;
}

int
boxer_cache_lookup (struct boxer_cache *cache, const char *reference, struct boxer_image **out,
                    struct boxer_error **err)
{
  struct boxer_reference ref;
  cleanup_free char *normalised = NULL;
  int r;

  if (boxer_reference_parse (reference, &ref, err) < 0)
    return -1;
  normalised = boxer_reference_string (&ref);
  r = resolve (cache, &ref, normalised, out, err);
  boxer_reference_release (&ref);
  if (r < 0)
    return -1;
  if (*out == NULL)
    return not_found (reference, err);
  return 0;
}

int
boxer_image_hold_fd (const struct boxer_image *image)
{
  return image->hold ? image->hold->fd : -1;
}

/* Pulling, and images in use.  */

static void free_images (struct boxer_image **images, size_t n);

/* Forget every reference to digest (it was collected).  */
static void
remove_refs_to (struct boxer_cache *cache, const char *digest)
{
  cleanup_strv char **refs = NULL;
  cleanup_strv char **digests = NULL;
  struct boxer_error *e = NULL;

  if (boxer_store_list_refs (cache->store, &refs, &digests, &e) < 0)
    {
      boxer_error_free (e);
      return;
    }
  for (size_t i = 0; refs[i]; i++)
    if (strcmp (digests[i], digest) == 0)
      {
        boxer_store_remove_ref (cache->store, refs[i], &e);
        boxer_error_release (&e);
      }
}

static int
cmp_least_recent (const void *a, const void *b)
{
  const struct boxer_image *x = *(struct boxer_image *const *) a;
  const struct boxer_image *y = *(struct boxer_image *const *) b;

  if (x->last_used != y->last_used)
    return x->last_used < y->last_used ? -1 : 1;
  return strcmp (x->digest, y->digest);
}

/* Keep the store within images_budget_bytes: remove the images used least
   recently, never keep (just pulled) nor one a run holds.  One process
   collects at a time; the others leave it to it.  */
static int
collect (struct boxer_cache *cache, const char *keep, struct boxer_error **err)
{
  int64_t budget = cache->cfg ? cache->cfg->images_budget_bytes : 0;
  cleanup_free char *lock = NULL;
  cleanup_close int lockfd = -1;
  cleanup_strv char **digests = NULL;
  struct boxer_image **images = NULL;
  struct boxer_error *busy = NULL;
  size_t n = 0;
  int64_t total = 0;
  int r = 0;

  /* The default: half the file system the store is on, so images alone
     never fill the disk.  */
  if (budget < 0)
    {
      struct statvfs sv;
      if (statvfs (boxer_store_dir (cache->store), &sv) < 0)
        return boxer_error_errno (err, errno, "statvfs '%s'", boxer_store_dir (cache->store));
      budget = (int64_t) sv.f_blocks * (int64_t) sv.f_frsize / 2;
    }
  if (budget <= 0)
    return 0;
  lock = xasprintf ("%s/locks/gc.lock", boxer_store_dir (cache->store));
  lockfd = boxer_lock_path (lock, LOCK_EX | LOCK_NB, &busy);
  if (lockfd < 0)
    {
      if (busy == NULL)
        return 0;
      *err = busy;
      return -1;
    }
  if (boxer_store_list_digests (cache->store, &digests, err) < 0)
    return -1;
  images = xmalloc0 ((boxer_strv_len (digests) + 1) * sizeof *images);
  for (size_t i = 0; digests[i]; i++)
    {
      if (boxer_store_get (cache->store, digests[i], &images[n], err) < 0)
        {
          r = -1;
          goto out;
        }
      if (images[n])
        total += images[n++]->size;
    }
  if (total <= budget)
    goto out;
  qsort (images, n, sizeof *images, cmp_least_recent);
  for (size_t i = 0; i < n && total > budget; i++)
    {
      int c;
      if (keep && strcmp (images[i]->digest, keep) == 0)
        continue;
      c = boxer_store_collect (cache->store, images[i]->digest, err);
      if (c < 0)
        {
          r = -1;
          goto out;
        }
      if (c == 0)
        continue;
      total -= images[i]->size;
      remove_refs_to (cache, images[i]->digest);
    }

out:
  free_images (images, n);
  return r;
}

static char *
pull_context (const char *reference, const char *normalised)
{
  cleanup_free char *q = boxer_quote_str (reference);

  if (strcmp (reference, normalised) == 0)
    return xasprintf ("pull '%s'", q);
  return xasprintf ("pull '%s' (%s)", q, normalised);
}

/* Pull ref from its registry, name it normalised, and return the image.  */
static int
pull (struct boxer_cache *cache, const char *reference, const struct boxer_reference *ref,
      const char *normalised, struct boxer_image **out, struct boxer_error **err)
{
  struct boxer_pull_options opts = { cache->cfg, &cache->platform, cache->tokens };
  cleanup_free char *digest = NULL;
  struct boxer_error *gc_err = NULL;

  *out = NULL;
  if (boxer_pull (cache->store, &opts, ref, &digest, err) < 0)
    {
      cleanup_free char *ctx = pull_context (reference, normalised);
      return boxer_error_wrap (err, "%s", ctx);
    }
  /* Digest references get a ref file too, so they are listed and an
     index digest finds the image of our platform.  */
  if (boxer_store_set_ref (cache->store, normalised, digest, err) < 0
      || boxer_store_touch (cache->store, digest, err) < 0
      || boxer_store_get (cache->store, digest, out, err) < 0)
    return -1;
  /* Making room is not this pull's business to fail over.  */
  if (collect (cache, digest, &gc_err) < 0)
    boxer_error_free (gc_err);
  if (*out)
    (*out)->reference = xstrdup (normalised);
  return 0;
}

int
boxer_cache_pull (struct boxer_cache *cache, const char *reference, bool for_client,
                  struct boxer_image **out, struct boxer_error **err)
{
  struct boxer_reference ref;
  cleanup_free char *normalised = NULL;
  int r;

  if (boxer_reference_parse (reference, &ref, err) < 0)
    return -1;
  normalised = boxer_reference_string (&ref);
  if (for_client && cache->cfg && cache->cfg->pull_policy == BOXER_PULL_NEVER)
    r = boxer_error_make (err, BOXER_ERR_FORBIDDEN,
                          "cannot pull '%s': this server's pull_policy is \"never\", so it runs "
                          "only the images it holds",
                          normalised);
  else
    r = pull (cache, reference, &ref, normalised, out, err);
  boxer_reference_release (&ref);
  if (r == 0 && *out == NULL)
    r = boxer_error_make (err, BOXER_ERR_BUSY,
                          "image '%s' was removed to make room as soon as it was pulled; raise "
                          "images_budget_bytes or try again",
                          normalised);
  return r;
}

static int
acquire (struct boxer_cache *cache, const char *reference, const struct boxer_reference *ref,
         const char *normalised, bool may_pull, struct boxer_image **out,
         struct boxer_error **err)
{
  int policy = cache->cfg ? cache->cfg->pull_policy : BOXER_PULL_IF_NOT_PRESENT;

  if (!may_pull)
    policy = BOXER_PULL_NEVER;
  for (int attempt = 0; attempt < ACQUIRE_ATTEMPTS; attempt++)
    {
      cleanup_image struct boxer_image *image = NULL;
      int fd = -1, r;

      if (policy != BOXER_PULL_ALWAYS && resolve (cache, ref, normalised, &image, err) < 0)
        return -1;
      if (image == NULL && !may_pull)
        return boxer_error_make (err, BOXER_ERR_FORBIDDEN,
                                 "image '%s' is not stored on this server and this API key may "
                                 "not pull images; ask the operator to pull it or to set "
                                 "allow_images for the key",
                                 normalised);
      if (image == NULL && policy == BOXER_PULL_NEVER)
        return not_found (reference, err);
      if (image == NULL && pull (cache, reference, ref, normalised, &image, err) < 0)
        return -1;
      if (image == NULL)
        continue;
      r = boxer_store_hold (cache->store, image->digest, &fd, err);
      if (r < 0)
        return -1;
      if (r == 0)
        continue;       /* removed meanwhile: look again */
      image->hold = xmalloc0 (sizeof *image->hold);
      image->hold->fd = fd;
      if (boxer_store_touch (cache->store, image->digest, err) < 0)
        return -1;
      *out = steal_pointer (&image);
      return 0;
    }
  return boxer_error_make (err, BOXER_ERR_BUSY,
                           "image '%s' was removed to make room while the run started; raise "
                           "images_budget_bytes or try again",
                           normalised);
}

int
boxer_cache_acquire (struct boxer_cache *cache, const char *reference, bool may_pull,
                     struct boxer_image **out, struct boxer_error **err)
{
  struct boxer_reference ref;
  cleanup_free char *normalised = NULL;
  int r;

  *out = NULL;
  if (boxer_reference_parse (reference, &ref, err) < 0)
    return -1;
  normalised = boxer_reference_string (&ref);
  r = acquire (cache, reference, &ref, normalised, may_pull, out, err);
  boxer_reference_release (&ref);
  return r;
}

/* Loading from an OCI layout.  */

struct layout_layers
{
  struct boxer_oci_layout *layout;
  const struct boxer_oci_manifest *manifest;
};

static int
open_layout_layer (void *data, size_t index, int *fd_out, struct boxer_error **err)
{
  struct layout_layers *l = data;

  return boxer_oci_layout_open_blob (l->layout, &l->manifest->layers[index],
                                     BOXER_LAYER_DEFAULT_MAX_BYTES, fd_out, err);
}

static int
check_pinned_digest (const struct boxer_reference *ref, const char *digest,
                     struct boxer_error **err)
{
  if (ref->digest == NULL || strcmp (ref->digest, digest) == 0)
    return 0;
  return boxer_error_make (err, BOXER_ERR_INVALID,
                           "the reference pins digest %s but the layout's image is %s",
                           ref->digest, digest);
}

/* Unpack img (unless its digest is published already).  */
static int
publish (struct boxer_cache *cache, struct boxer_oci_layout *layout,
         const struct boxer_oci_image *img, struct boxer_error **err)
{
  struct layout_layers layers = { layout, &img->manifest };
  struct boxer_layer_limits limits;
  struct boxer_store_source src = {
    .digest = img->manifest_desc.digest,
    .config = &img->config,
    .n_layers = img->manifest.n_layers,
    .open_layer = open_layout_layer,
    .data = &layers,
    .limits = &limits,
  };

  boxer_layer_limits_from_config (cache->cfg, &limits);
  return boxer_store_publish (cache->store, &src, err);
}

static int
load (struct boxer_cache *cache, struct boxer_oci_layout *layout,
      const struct boxer_reference *ref, const char *normalised, struct boxer_image **out,
      struct boxer_error **err)
{
  struct boxer_oci_image img;
  const char *digest;
  int r;

  if (boxer_oci_layout_resolve (layout, ref, &img, err) < 0)
    return -1;
  digest = img.manifest_desc.digest;
  r = check_pinned_digest (ref, digest, err);
  if (r == 0)
    r = publish (cache, layout, &img, err);
  /* A digest reference needs no ref file: lookups go by the digest.  */
  if (r >= 0 && ref->digest == NULL)
    r = boxer_store_set_ref (cache->store, normalised, digest, err);
  if (r >= 0)
    r = resolve (cache, ref, normalised, out, err);
  if (r >= 0 && *out == NULL)
    r = boxer_error_make (err, BOXER_ERR_INTERNAL, "image %s vanished after publishing", digest);
  boxer_oci_image_release (&img);
  return r < 0 ? -1 : 0;
}

int
boxer_cache_load_oci_layout (struct boxer_cache *cache, const char *layout_dir,
                             const char *reference, struct boxer_image **out,
                             struct boxer_error **err)
{
  struct boxer_reference ref;
  struct boxer_oci_layout *layout = NULL;
  cleanup_free char *normalised = NULL;
  int r;

  if (boxer_reference_parse (reference, &ref, err) < 0)
    return -1;
  normalised = boxer_reference_string (&ref);
  r = boxer_oci_layout_open (&layout, layout_dir, err);
  if (r == 0)
    r = load (cache, layout, &ref, normalised, out, err);
  boxer_oci_layout_free (layout);
  boxer_reference_release (&ref);
  if (r < 0)
    return boxer_error_wrap (err, "load '%s'", normalised);
  return 0;
}

/* Listing and removing.  */

static void
free_images (struct boxer_image **images, size_t n)
{
  for (size_t i = 0; images && i < n; i++)
    boxer_image_free (images[i]);
  free (images);
}

int
boxer_cache_list (struct boxer_cache *cache, struct boxer_image ***out, size_t *n_out,
                  struct boxer_error **err)
{
  cleanup_strv char **refs = NULL;
  cleanup_strv char **digests = NULL;
  struct boxer_image **images = NULL;
  size_t n = 0;

  if (boxer_store_list_refs (cache->store, &refs, &digests, err) < 0)
    return -1;
  images = xmalloc0 ((boxer_strv_len (refs) + 1) * sizeof *images);
  for (size_t i = 0; refs[i]; i++)
    {
      if (boxer_store_get (cache->store, digests[i], &images[n], err) < 0)
        {
          free_images (images, n);
          return -1;
        }
      /* A ref whose image was removed by hand is not an image.  */
      if (images[n] == NULL)
        continue;
      images[n++]->reference = xstrdup (refs[i]);
    }
  *out = images;
  *n_out = n;
  return 0;
}

int
boxer_cache_remove (struct boxer_cache *cache, const char *reference, struct boxer_error **err)
{
  struct boxer_reference ref;
  cleanup_free char *normalised = NULL;
  cleanup_free char *digest = NULL;
  cleanup_strv char **refs = NULL;
  cleanup_strv char **digests = NULL;
  bool named = false;
  int r;

  if (boxer_reference_parse (reference, &ref, err) < 0)
    return -1;
  normalised = boxer_reference_string (&ref);
  r = boxer_store_get_ref (cache->store, normalised, &digest, err);
  if (r == 0 && digest)
    r = boxer_store_remove_ref (cache->store, normalised, err);
  /* A digest reference that was loaded, not pulled, has no ref file.  */
  else if (r == 0 && ref.digest)
    {
      cleanup_image struct boxer_image *image = NULL;
      r = boxer_store_get (cache->store, ref.digest, &image, err);
      if (r == 0 && image)
        r = boxer_error_make (err, BOXER_ERR_INVALID,
                              "'%s' is a digest reference; remove the tag that names the image",
                              normalised);
    }
  boxer_reference_release (&ref);
  if (r < 0)
    return -1;
  if (digest == NULL)
    return not_found (reference, err);
  /* The image goes too when nothing else names it, unless a run uses it
     (then a later collection takes it).  */
  if (boxer_store_list_refs (cache->store, &refs, &digests, err) < 0)
    return -1;
  for (size_t i = 0; digests[i] && !named; i++)
    named = strcmp (digests[i], digest) == 0;
  if (!named && boxer_store_collect (cache->store, digest, err) < 0)
    return -1;
  return 0;
}
