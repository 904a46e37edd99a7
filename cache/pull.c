#include <config.h>

#include "pull.h"

#include "common/fsutil.h"
#include "layer.h"

struct pull
{
  struct boxer_store *store;
  struct boxer_registry *reg;
  const struct boxer_platform *platform;
  struct boxer_oci_manifest manifest;
  struct boxer_image_config config;
  int64_t max_bytes;    /* image_max_bytes */
};

/* Documents the registry sent that do not parse are the registry's
   fault, whatever the parser thinks.  */
static int
as_registry (struct boxer_error **err)
{
  if (err && *err && (*err)->category == BOXER_ERR_INVALID)
    (*err)->category = BOXER_ERR_REGISTRY;
  return -1;
}

static int
check_config (const struct pull *p, struct boxer_error **err)
{
  const struct boxer_platform *want = p->platform;
  cleanup_free char *qos = boxer_quote_str (p->config.os);
  cleanup_free char *qarch = boxer_quote_str (p->config.architecture);
  size_t n_diff = boxer_strv_len (p->config.diff_ids);

  if (strcmp (p->config.os, want->os) != 0 || strcmp (p->config.architecture, want->architecture)
                                                != 0)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "the image is for %s/%s but this server runs %s/%s images", qos,
                             qarch, want->os, want->architecture);
  if (n_diff != p->manifest.n_layers)
    return boxer_error_make (err, BOXER_ERR_REGISTRY,
                             "the image config lists %zu layers but its manifest has %zu", n_diff,
                             p->manifest.n_layers);
  return 0;
}

/* Under the image's lock, only when it must be unpacked: the config.  */
static int
prepare (void *data, struct boxer_error **err)
{
  struct pull *p = data;
  cleanup_free char *body = NULL;
  size_t len;

  if (boxer_registry_get_blob (p->reg, &p->manifest.config, BOXER_OCI_DOC_MAX, &body, &len, err)
      < 0)
    return -1;
  if (boxer_image_config_parse (body, len, &p->config, err) < 0)
    return as_registry (err);
  return check_config (p, err);
}

static int
open_layer (void *data, size_t index, int *fd_out, struct boxer_error **err)
{
  struct pull *p = data;
  cleanup_close int fd = -1;

  if (boxer_store_tmpfile (p->store, &fd, err) < 0
      || boxer_registry_fetch_blob (p->reg, &p->manifest.layers[index], fd, err) < 0)
    return -1;
  *fd_out = steal_fd (&fd);
  return 0;
}

static int
check_sizes (const struct boxer_oci_manifest *m, int64_t max_bytes, struct boxer_error **err)
{
  int64_t total = 0;

  /* Layers unpack to at least about their compressed size: more than the
     bound is refused before a byte is downloaded.  */
  for (size_t i = 0; i < m->n_layers; i++)
    {
      if (m->layers[i].size > max_bytes - total)
        return boxer_error_make (err, BOXER_ERR_TOO_LARGE,
                                 "the image's layers are larger than %lld bytes "
                                 "(image_max_bytes)",
                                 (long long) max_bytes);
      total += m->layers[i].size;
    }
  if (m->config.size > BOXER_OCI_DOC_MAX)
    return boxer_error_make (err, BOXER_ERR_REGISTRY, "the image config is larger than %d bytes",
                             BOXER_OCI_DOC_MAX);
  return 0;
}

/* From the first manifest the reference names, through an index if it is
   one, to the image manifest: parsed into p->manifest, its digest in
   digest.  */
static int
resolve_manifest (struct pull *p, const struct boxer_reference *ref, char digest[72],
                  struct boxer_error **err)
{
  cleanup_free char *body = NULL;
  cleanup_free char *media_type = NULL;
  size_t len;
  bool is_index;

  if (boxer_registry_get_manifest (p->reg, ref->digest ? ref->digest : ref->tag, &body, &len,
                                   &media_type, digest, err) < 0
      || boxer_registry_manifest_is_index (media_type, body, len, &is_index, err) < 0)
    return -1;
  if (is_index)
    {
      struct boxer_oci_index idx;
      size_t pick;
      int r;

      if (boxer_oci_index_parse (body, len, &idx, err) < 0)
        return as_registry (err);
      r = boxer_registry_select_manifest (&idx, p->platform, &pick, err);
      if (r == 0)
        {
          free (steal_pointer (&body));
          free (steal_pointer (&media_type));
          r = boxer_registry_get_manifest_desc (p->reg, &idx.manifests[pick], &body, &len,
                                                &media_type, err);
          if (r == 0)
            snprintf (digest, 72, "%s", idx.manifests[pick].digest);
        }
      boxer_oci_index_release (&idx);
      if (r < 0)
        return -1;
      if (boxer_registry_manifest_is_index (media_type, body, len, &is_index, err) < 0)
        return -1;
      if (is_index)
        return boxer_error_make (err, BOXER_ERR_REGISTRY,
                                 "the image index points to another index; Boxer follows one");
    }
  if (boxer_oci_manifest_parse (body, len, &p->manifest, err) < 0)
    return as_registry (err);
  return check_sizes (&p->manifest, p->max_bytes, err);
}

int
boxer_pull (struct boxer_store *store, const struct boxer_pull_options *opts,
            const struct boxer_reference *ref, char **digest_out, struct boxer_error **err)
{
  struct boxer_registry_endpoint ep;
  struct boxer_registry_options ropts = {
    .timeout_secs = opts->cfg ? (long) opts->cfg->registry_timeout_secs : 30,
    .tokens = opts->tokens,
    .cfg = opts->cfg,
    .deadline_ms = boxer_now_ms () + 1000 * (opts->cfg ? opts->cfg->pull_timeout_secs : 900),
  };
  struct pull p = { .store = store, .platform = opts->platform };
  struct boxer_layer_limits limits;
  struct boxer_error *ignored = NULL;
  char digest[72];
  int r;

  if (boxer_registry_check_allowed (opts->cfg, ref->domain, err) < 0
      || (opts->cfg
          && boxer_check_free_space (boxer_store_dir (store), opts->cfg->min_free_bytes, "pulls",
                                     err) < 0))
    return -1;
  boxer_layer_limits_from_config (opts->cfg, &limits);
  limits.deadline_ms = ropts.deadline_ms;
  p.max_bytes = limits.max_bytes;
  boxer_registry_endpoint_for (opts->cfg, ref, &ep);
  r = boxer_registry_open (&p.reg, &ep, ref->path, &ropts, err);
  if (r == 0)
    r = resolve_manifest (&p, ref, digest, err);
  if (r == 0)
    {
      struct boxer_store_source src = {
        .digest = digest,
        .config = &p.config,
        .n_layers = p.manifest.n_layers,
        .open_layer = open_layer,
        .data = &p,
        .limits = &limits,
        .prepare = prepare,
        .deadline_ms = ropts.deadline_ms,
      };
      /* What killed workers left in tmp/ goes first; failing that is no
         reason not to pull.  */
      boxer_store_sweep (store, &ignored);
      boxer_error_free (ignored);
      r = boxer_store_publish (store, &src, err);
    }
  if (r >= 0)
    *digest_out = xstrdup (digest);
  boxer_registry_free (p.reg);
  boxer_oci_manifest_release (&p.manifest);
  boxer_image_config_release (&p.config);
  boxer_registry_endpoint_release (&ep);
  return r;
}
