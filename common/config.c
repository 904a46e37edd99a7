#include <config.h>

#include "config.h"

#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <stddef.h>
#include <sys/stat.h>

#include "fsutil.h"

/* Config files are small; anything bigger is a mistake.  */
#define CONFIG_MAX_BYTES (1024 * 1024)

/* Images are pulled for the platform this host runs unless configured.  */
#if defined(__aarch64__)
#define HOST_PLATFORM "linux/arm64"
#else
#define HOST_PLATFORM "linux/amd64"
#endif

const struct boxer_limits boxer_limits_floor = {
  .cpu_cores = 0.05,
  .memory_mb = 16,
  .wall_clock_secs = 1,
  .pids_limit = 1,
  .nofile = 16,
};

enum entry_type
{
  T_STRING,
  T_BOOL,
  T_INT,
  T_DOUBLE,
  T_LIMITS,             /* a nested object of the limits table */
  T_CHOICE,             /* one of the strings of choices, stored as its index (int) */
  T_REGISTRIES,         /* an object of registry_table objects keyed by registry host */
  T_STRV,               /* an array of at most max non-empty strings (char **) */
  T_PORTS,              /* an array of at most max ports 1..65535 (int *, 0-terminated) */
  T_API_KEYS,           /* an array of api_key_table objects */
  T_WARM_POOL,          /* an array of {"image", "network", "size"} */
};

struct entry
{
  const char *name;
  enum entry_type type;
  size_t offset;
  double min, max;      /* for T_INT and T_DOUBLE */
  const char *const *choices;   /* for T_CHOICE, NULL-terminated */
};

#define ENTRY(n, t, field, lo, hi) { n, t, offsetof (struct boxer_config, field), lo, hi, NULL }
#define LIMIT(n, t, field, lo, hi) { n, t, offsetof (struct boxer_limits, field), lo, hi, NULL }
#define CHOICE(n, field, list) { n, T_CHOICE, offsetof (struct boxer_config, field), 0, 0, list }
#define REGISTRY(n, t, field) { n, t, offsetof (struct boxer_registry_config, field), 0, 0, NULL }
#define KEY(n, t, field, lo, hi) { n, t, offsetof (struct boxer_api_key, field), lo, hi, NULL }

/* Indexed by enum boxer_pull_policy.  */
static const char *const pull_policies[] = { "if-not-present", "always", "never", NULL };

static const struct entry config_table[] = {
  ENTRY ("home", T_STRING, home, 0, 0),
  ENTRY ("runsc_path", T_STRING, runsc_path, 0, 0),
  ENTRY ("init_path", T_STRING, init_path, 0, 0),
  ENTRY ("platform", T_STRING, platform, 0, 0),
  ENTRY ("listen_addr", T_STRING, listen_addr, 0, 0),
  ENTRY ("ignore_cgroups", T_BOOL, ignore_cgroups, 0, 0),
  /* Both streams travel base64 in one protocol frame (executor/protocol.h).  */
  ENTRY ("output_limit_bytes", T_INT, output_limit_bytes, 1024, 536870912),
  ENTRY ("upload_limit_bytes", T_INT, upload_limit_bytes, 1024, 17179869184.0),
  ENTRY ("max_batch_runs", T_INT, max_batch_runs, 1, 100000),
  ENTRY ("batch_output_limit_bytes", T_INT, batch_output_limit_bytes, 1024, 1073741824),
  ENTRY ("max_sessions", T_INT, max_sessions, 0, 10000),
  ENTRY ("max_session_ttl_secs", T_INT, max_session_ttl_secs, 1, 31 * 86400),
  ENTRY ("outputs_limit_bytes", T_INT, outputs_limit_bytes, 1024, 1073741824),
  ENTRY ("outputs_limit_files", T_INT, outputs_limit_files, 1, 100000),
  ENTRY ("runs_ttl_secs", T_INT, runs_ttl_secs, 1, 31536000),
  ENTRY ("files_ttl_secs", T_INT, files_ttl_secs, 1, 31536000),
  ENTRY ("files_budget_bytes", T_INT, files_budget_bytes, 0, 9007199254740992.0),
  ENTRY ("runs_budget_bytes", T_INT, runs_budget_bytes, 0, 9007199254740992.0),
  ENTRY ("min_free_bytes", T_INT, min_free_bytes, 0, 9007199254740992.0),
  ENTRY ("defaults", T_LIMITS, defaults, 0, 0),
  ENTRY ("max_limits", T_LIMITS, max_limits, 0, 0),
  ENTRY ("registries", T_REGISTRIES, registries, 0, 0),
  ENTRY ("image_platform", T_STRING, image_platform, 0, 0),
  CHOICE ("pull_policy", pull_policy, pull_policies),
  ENTRY ("images_budget_bytes", T_INT, images_budget_bytes, 0, 9007199254740992.0),
  ENTRY ("registry_timeout_secs", T_INT, registry_timeout_secs, 1, 3600),
  ENTRY ("pull_timeout_secs", T_INT, pull_timeout_secs, 1, 86400),
  ENTRY ("allowed_registries", T_STRV, allowed_registries, 0, 256),
  ENTRY ("image_max_bytes", T_INT, image_max_bytes, 1048576, 9007199254740992.0),
  ENTRY ("image_max_entries", T_INT, image_max_entries, 16, 100000000),
  ENTRY ("image_max_depth", T_INT, image_max_depth, 4, 1024),
  ENTRY ("image_max_path_bytes", T_INT, image_max_path_bytes, 64, 2047),
  ENTRY ("sandbox_subnet", T_STRING, sandbox_subnet, 0, 0),
  ENTRY ("dns_servers", T_STRV, dns_servers, 0, 3),
  ENTRY ("sandbox_deny_ranges", T_STRV, sandbox_deny_ranges, 0, 256),
  ENTRY ("sandbox_host_allow", T_PORTS, sandbox_host_allow, 0, 64),
  ENTRY ("allow_host_network", T_BOOL, allow_host_network, 0, 0),
  ENTRY ("executor_socket", T_STRING, executor_socket, 0, 0),
  ENTRY ("worker_user", T_STRING, worker_user, 0, 0),
  ENTRY ("max_concurrent_runs", T_INT, max_concurrent_runs, 0, 4096),
  ENTRY ("max_queued_runs", T_INT, max_queued_runs, 0, 65536),
  ENTRY ("queue_timeout_secs", T_INT, queue_timeout_secs, 1, 3600),
  ENTRY ("api_keys", T_API_KEYS, api_keys, 0, 1024),
  ENTRY ("warm_pool", T_WARM_POOL, warm_pool, 0, BOXER_WARM_POOL_MAX_ENTRIES),
  { NULL, 0, 0, 0, 0, NULL },
};

/* The fields of one registries entry.  */
static const struct entry registry_table[] = {
  REGISTRY ("mirror", T_STRING, mirror),
  REGISTRY ("insecure", T_BOOL, insecure),
  REGISTRY ("username", T_STRING, username),
  REGISTRY ("password", T_STRING, password),
  { NULL, 0, 0, 0, 0, NULL },
};

/* The fields of one api_keys entry; "name", "sha256" and "allow_network"
   are read by set_api_keys () itself.  */
static const struct entry api_key_table[] = {
  KEY ("max_concurrent_runs", T_INT, max_concurrent_runs, 1, 4096),
  KEY ("max_limits", T_LIMITS, max_limits, 0, 0),
  KEY ("allow_images", T_BOOL, allow_images, 0, 0),
  KEY ("allow_sessions", T_BOOL, allow_sessions, 0, 0),
  { NULL, 0, 0, 0, 0, NULL },
};

/* The absolute bounds a config may set a limit to; requests are then held
   to the config's own max_limits.  */
static const struct entry limits_table[] = {
  LIMIT ("cpu_cores", T_DOUBLE, cpu_cores, 0.05, 256),
  LIMIT ("memory_mb", T_INT, memory_mb, 16, 1048576),
  LIMIT ("wall_clock_secs", T_INT, wall_clock_secs, 1, 86400),
  LIMIT ("pids_limit", T_INT, pids_limit, 1, 65536),
  LIMIT ("nofile", T_INT, nofile, 16, 1048576),
  { NULL, 0, 0, 0, 0, NULL },
};

void
boxer_config_init_defaults (struct boxer_config *cfg)
{
  const char *h = getenv ("HOME");

  memset (cfg, 0, sizeof *cfg);
  if (h == NULL || *h != '/')
    {
      struct passwd *pw = getpwuid (getuid ());
      h = pw ? pw->pw_dir : "/root";
    }
  cfg->home = xasprintf ("%s/.boxer", h);
  cfg->runsc_path = NULL;
  cfg->platform = xstrdup ("systrap");
  cfg->listen_addr = xstrdup (":8080");
  cfg->ignore_cgroups = false;
  cfg->output_limit_bytes = 10485760;
  cfg->upload_limit_bytes = 10485760;
  cfg->max_batch_runs = 1000;
  cfg->batch_output_limit_bytes = 64LL * 1024 * 1024;
  cfg->max_sessions = 8;
  cfg->max_session_ttl_secs = 86400;
  cfg->outputs_limit_bytes = 10485760;
  cfg->outputs_limit_files = 1000;
  cfg->runs_ttl_secs = 3600;
  cfg->files_ttl_secs = 3600;
  cfg->files_budget_bytes = 2LL * 1024 * 1024 * 1024;
  cfg->runs_budget_bytes = 2LL * 1024 * 1024 * 1024;
  cfg->min_free_bytes = 256LL * 1024 * 1024;
  cfg->defaults = (struct boxer_limits) {
    .cpu_cores = 1.0, .memory_mb = 256, .wall_clock_secs = 30, .pids_limit = 64, .nofile = 256,
  };
  cfg->max_limits = (struct boxer_limits) {
    .cpu_cores = 4.0, .memory_mb = 8192, .wall_clock_secs = 600, .pids_limit = 4096,
    .nofile = 65536,
  };
  cfg->image_platform = xstrdup (HOST_PLATFORM);
  cfg->pull_policy = BOXER_PULL_IF_NOT_PRESENT;
  /* Sized from the disk when the cache opens (cache.c).  */
  cfg->images_budget_bytes = -1;
  cfg->registry_timeout_secs = 30;
  cfg->pull_timeout_secs = 900;
  cfg->allowed_registries = NULL;
  /* As cache/layer.h: far above real images, far below a bomb.  */
  cfg->image_max_bytes = 16LL * 1024 * 1024 * 1024;
  cfg->image_max_entries = 1000000;
  cfg->image_max_depth = 128;
  cfg->image_max_path_bytes = 1024;
  /* Private, and far from the 10.0.0.0/24-ish ranges LANs and clouds use.  */
  cfg->sandbox_subnet = xstrdup ("10.200.0.0/16");
  cfg->dns_servers = boxer_strv_dup ((char *[]) { (char *) "8.8.8.8", (char *) "8.8.4.4", NULL });
  /* Link-local (cloud metadata at 169.254.169.254 included), private,
     shared (CGNAT, another metadata address), loopback, this-network,
     multicast and reserved ranges: a run reaches the public Internet only.  */
  cfg->sandbox_deny_ranges = boxer_strv_dup ((char *[]) {
    (char *) "0.0.0.0/8", (char *) "10.0.0.0/8", (char *) "100.64.0.0/10",
    (char *) "127.0.0.0/8", (char *) "169.254.0.0/16", (char *) "172.16.0.0/12",
    (char *) "192.168.0.0/16", (char *) "224.0.0.0/4", (char *) "240.0.0.0/4", NULL });
  cfg->sandbox_host_allow = xmalloc0 (sizeof *cfg->sandbox_host_allow);
  cfg->allow_host_network = false;
  cfg->executor_socket = NULL;
  cfg->worker_user = NULL;
  cfg->max_concurrent_runs = 0;
  cfg->max_queued_runs = 0;
  cfg->queue_timeout_secs = 60;
}

char *
boxer_config_executor_socket (const struct boxer_config *cfg)
{
  return cfg->executor_socket ? xstrdup (cfg->executor_socket)
                              : xasprintf ("%s/executor.sock", cfg->home);
}

int64_t
boxer_config_max_concurrent_runs (const struct boxer_config *cfg)
{
  long cores = sysconf (_SC_NPROCESSORS_ONLN);

  if (cfg->max_concurrent_runs > 0)
    return cfg->max_concurrent_runs;
  return 2 * (cores > 0 ? cores : 1);
}

int64_t
boxer_config_max_queued_runs (const struct boxer_config *cfg)
{
  return cfg->max_queued_runs > 0 ? cfg->max_queued_runs
                                  : 4 * boxer_config_max_concurrent_runs (cfg);
}

static int set_entries (const struct entry *table, void *base, const char *prefix,
                        json_object *obj, struct boxer_error **err);

static int
set_choice (const struct entry *e, void *field, const char *name, json_object *val,
            struct boxer_error **err)
{
  cleanup_free char *list = xstrdup ("");

  if (json_object_is_type (val, json_type_string))
    for (int i = 0; e->choices[i]; i++)
      if (strcmp (json_object_get_string (val), e->choices[i]) == 0
          && strlen (e->choices[i]) == (size_t) json_object_get_string_len (val))
        {
          *(int *) field = i;
          return 0;
        }
  for (int i = 0; e->choices[i]; i++)
    {
      char *more = xasprintf ("%s%s\"%s\"", list, i ? ", " : "", e->choices[i]);
      free (list);
      list = more;
    }
  return boxer_error_make (err, BOXER_ERR_INVALID, "config: '%s' must be one of %s", name, list);
}

/* An array of strings replaces the default list as a whole; what the
   strings mean is checked by their user (executor/network.c).  */
static int
set_strv (const struct entry *e, void *field, const char *name, json_object *val,
          struct boxer_error **err)
{
  size_t n;
  char **v;

  if (!json_object_is_type (val, json_type_array))
    return boxer_error_make (err, BOXER_ERR_INVALID, "config: '%s' must be an array of strings",
                             name);
  n = json_object_array_length (val);
  if (n > e->max)
    return boxer_error_make (err, BOXER_ERR_INVALID, "config: '%s' holds more than %.0f entries",
                             name, e->max);
  for (size_t i = 0; i < n; i++)
    {
      json_object *s = json_object_array_get_idx (val, i);
      if (!json_object_is_type (s, json_type_string) || json_object_get_string_len (s) == 0
          || strlen (json_object_get_string (s)) != (size_t) json_object_get_string_len (s))
        return boxer_error_make (err, BOXER_ERR_INVALID,
                                 "config: '%s[%zu]' must be a non-empty string without NUL bytes",
                                 name, i);
    }
  v = xmalloc0 ((n + 1) * sizeof *v);
  for (size_t i = 0; i < n; i++)
    v[i] = xstrdup (json_object_get_string (json_object_array_get_idx (val, i)));
  boxer_strv_free (*(char ***) field);
  *(char ***) field = v;
  return 0;
}

static int
set_ports (const struct entry *e, void *field, const char *name, json_object *val,
           struct boxer_error **err)
{
  size_t n;
  int *v;

  if (!json_object_is_type (val, json_type_array))
    return boxer_error_make (err, BOXER_ERR_INVALID, "config: '%s' must be an array of ports",
                             name);
  n = json_object_array_length (val);
  if (n > e->max)
    return boxer_error_make (err, BOXER_ERR_INVALID, "config: '%s' holds more than %.0f entries",
                             name, e->max);
  v = xmalloc0 ((n + 1) * sizeof *v);
  for (size_t i = 0; i < n; i++)
    {
      json_object *p = json_object_array_get_idx (val, i);
      int64_t port = json_object_is_type (p, json_type_int) ? json_object_get_int64 (p) : 0;
      if (port < 1 || port > 65535)
        {
          free (v);
          return boxer_error_make (err, BOXER_ERR_INVALID,
                                   "config: '%s[%zu]' must be a port number between 1 and 65535",
                                   name, i);
        }
      v[i] = (int) port;
    }
  free (*(int **) field);
  *(int **) field = v;
  return 0;
}

/* A registry as image references name it: host[:port], no scheme or path.  */
static bool
registry_key_is_valid (const char *key)
{
  size_t len = strlen (key);

  if (len == 0 || len > 255)
    return false;
  for (const char *c = key; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
          || strchr (".-:[]", *c)))
      return false;
  return true;
}

/* "http://" or "https://", then host[:port] and at most a trailing '/'.  */
static bool
mirror_is_valid (const char *url)
{
  const char *host = NULL;

  if (strncmp (url, "http://", 7) == 0)
    host = url + 7;
  else if (strncmp (url, "https://", 8) == 0)
    host = url + 8;
  if (host == NULL || *host == '\0' || *host == '/')
    return false;
  for (const char *c = host; *c; c++)
    if (*c == '/')
      return c[1] == '\0';
    else if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
               || strchr (".-:[]", *c)))
      return false;
  return true;
}

static void
registry_release (struct boxer_registry_config *r)
{
  free (r->host);
  free (r->mirror);
  free (r->username);
  /* Secrets do not linger in freed memory.  */
  if (r->password)
    explicit_bzero (r->password, strlen (r->password));
  free (r->password);
  memset (r, 0, sizeof *r);
}

static int
check_registry (const struct boxer_registry_config *r, const char *name,
                struct boxer_error **err)
{
  if (r->mirror && !mirror_is_valid (r->mirror))
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "config: '%s.mirror' must be http://HOST[:PORT] or "
                             "https://HOST[:PORT]",
                             name);
  if ((r->username == NULL) != (r->password == NULL))
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "config: '%s' needs both 'username' and 'password', or neither",
                             name);
  return 0;
}

/* "registries": {"<host>": {"mirror": ..., "insecure": ..., ...}, ...}.
   A later file's object replaces the whole map.  */
static int
set_registries (struct boxer_config *cfg, const char *name, json_object *val,
                struct boxer_error **err)
{
  struct boxer_registry_config *regs = NULL;
  size_t n = 0;
  int r = 0;

  if (!json_object_is_type (val, json_type_object))
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "config: '%s' must be an object keyed by registry host", name);
  regs = xmalloc0 ((json_object_object_length (val) + 1) * sizeof *regs);
  json_object_object_foreach (val, key, sub)
    {
      cleanup_free char *sub_name = xasprintf ("%s.%s", name, key);
      struct boxer_registry_config *reg = &regs[n++];

      reg->host = xstrdup (key);
      if (!registry_key_is_valid (key))
        {
          cleanup_free char *q = boxer_quote_str (key);
          r = boxer_error_make (err, BOXER_ERR_INVALID,
                                "config: '%s' has key '%s', which is not a registry host "
                                "(HOST or HOST:PORT, as image references name it)",
                                name, q);
          break;
        }
      if (set_entries (registry_table, reg, sub_name, sub, err) < 0
          || check_registry (reg, sub_name, err) < 0)
        {
          r = -1;
          break;
        }
    }
  if (r < 0)
    {
      for (size_t i = 0; i < n; i++)
        registry_release (&regs[i]);
      free (regs);
      return -1;
    }
  for (size_t i = 0; i < cfg->n_registries; i++)
    registry_release (&cfg->registries[i]);
  free (cfg->registries);
  cfg->registries = regs;
  cfg->n_registries = n;
  return 0;
}

const struct boxer_registry_config *
boxer_config_registry (const struct boxer_config *cfg, const char *host)
{
  for (size_t i = 0; i < cfg->n_registries; i++)
    if (strcmp (cfg->registries[i].host, host) == 0)
      return &cfg->registries[i];
  return NULL;
}

void
boxer_api_key_hash_hex (const char *secret, size_t len, char out[65])
{
  unsigned char md[32];
  unsigned int n = 0;

  if (EVP_Digest (secret, len, md, &n, EVP_sha256 (), NULL) != 1 || n != 32)
    abort ();
  for (size_t i = 0; i < 32; i++)
    snprintf (out + 2 * i, 3, "%02x", md[i]);
}

const struct boxer_api_key *
boxer_config_find_key (const struct boxer_config *cfg, const char *secret, size_t len)
{
  const struct boxer_api_key *found = NULL;
  unsigned char md[32];
  unsigned int n = 0;

  if (EVP_Digest (secret, len, md, &n, EVP_sha256 (), NULL) != 1 || n != 32)
    abort ();
  /* Every key is compared, each in constant time: how long the answer
     takes says nothing about which key came close.  */
  for (size_t i = 0; i < cfg->n_api_keys; i++)
    if (CRYPTO_memcmp (md, cfg->api_keys[i].sha256, sizeof md) == 0)
      found = &cfg->api_keys[i];
  OPENSSL_cleanse (md, sizeof md);
  return found;
}

const struct boxer_api_key *
boxer_config_key_by_name (const struct boxer_config *cfg, const char *name)
{
  for (size_t i = 0; i < cfg->n_api_keys; i++)
    if (strcmp (cfg->api_keys[i].name, name) == 0)
      return &cfg->api_keys[i];
  return NULL;
}

static bool
key_name_is_valid (const char *s, size_t len)
{
  if (len == 0 || len > BOXER_API_KEY_NAME_MAX || strlen (s) != len)
    return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
          || strchr ("_.-", *s)))
      return false;
  return true;
}

static int
hex_digit (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static void
api_keys_release (struct boxer_api_key *keys, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free (keys[i].name);
  free (keys);
}

/* One api_keys entry: the fields the table does not know, then the table's.  */
static int
set_api_key (struct boxer_api_key *key, const char *name, json_object *obj,
             struct boxer_error **err)
{
  cleanup_free char *sub_name = NULL;
  json_object *rest, *v;

  if (!json_object_is_type (obj, json_type_object))
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "config: '%s' must be an object with 'name' and 'sha256'", name);
  if (!json_object_object_get_ex (obj, "name", &v) || !json_object_is_type (v, json_type_string)
      || !key_name_is_valid (json_object_get_string (v), json_object_get_string_len (v)))
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "config: '%s.name' must be 1 to %d characters of letters, digits, "
                             "'_', '.' and '-'",
                             name, BOXER_API_KEY_NAME_MAX);
  key->name = xstrdup (json_object_get_string (v));
  if (!json_object_object_get_ex (obj, "sha256", &v) || !json_object_is_type (v, json_type_string)
      || json_object_get_string_len (v) != 64)
    goto bad_hash;
  for (size_t i = 0; i < 32; i++)
    {
      const char *h = json_object_get_string (v) + 2 * i;
      int hi = hex_digit (h[0]), lo = hex_digit (h[1]);
      if (hi < 0 || lo < 0)
        goto bad_hash;
      key->sha256[i] = (unsigned char) (hi * 16 + lo);
    }
  if (json_object_object_get_ex (obj, "allow_network", &v))
    {
      if (!json_object_is_type (v, json_type_array))
        goto bad_network;
      for (size_t i = 0; i < json_object_array_length (v); i++)
        {
          json_object *m = json_object_array_get_idx (v, i);
          const char *mode = json_object_is_type (m, json_type_string) ? json_object_get_string (m)
                                                                      : "";
          if (strcmp (mode, "sandbox") == 0)
            key->allow_network_sandbox = true;
          else if (strcmp (mode, "host") == 0)
            key->allow_network_host = true;
          else if (strcmp (mode, "none") != 0)
            goto bad_network;
        }
    }

  /* The rest goes through the table, which refuses unknown fields.  */
  rest = json_object_new_object ();
  json_object_object_foreach (obj, k, val)
    if (strcmp (k, "name") != 0 && strcmp (k, "sha256") != 0 && strcmp (k, "allow_network") != 0)
      json_object_object_add (rest, k, json_object_get (val));
  sub_name = xasprintf ("%s", name);
  {
    int r = set_entries (api_key_table, key, sub_name, rest, err);
    json_object_put (rest);
    return r;
  }

bad_hash:
  return boxer_error_make (err, BOXER_ERR_INVALID,
                           "config: '%s.sha256' must be the 64 hex digits of the key's SHA-256 "
                           "(boxer-fcgi --hash-key prints it), never the key itself",
                           name);
bad_network:
  return boxer_error_make (err, BOXER_ERR_INVALID,
                           "config: '%s.allow_network' must be an array of \"none\", \"sandbox\" "
                           "and \"host\"",
                           name);
}

/* "api_keys": [{"name", "sha256", ...}, ...].  A later file's array
   replaces the whole list.  */
static int
set_api_keys (struct boxer_config *cfg, const struct entry *e, const char *name,
              json_object *val, struct boxer_error **err)
{
  struct boxer_api_key *keys;
  size_t n;

  if (!json_object_is_type (val, json_type_array))
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "config: '%s' must be an array of key objects", name);
  n = json_object_array_length (val);
  if (n > e->max)
    return boxer_error_make (err, BOXER_ERR_INVALID, "config: '%s' holds more than %.0f entries",
                             name, e->max);
  keys = xmalloc0 ((n + 1) * sizeof *keys);
  for (size_t i = 0; i < n; i++)
    {
      cleanup_free char *sub_name = xasprintf ("%s[%zu]", name, i);
      if (set_api_key (&keys[i], sub_name, json_object_array_get_idx (val, i), err) < 0)
        goto fail;
      for (size_t j = 0; j < i; j++)
        {
          if (strcmp (keys[j].name, keys[i].name) == 0)
            {
              boxer_error_make (err, BOXER_ERR_INVALID,
                                "config: '%s.name' is '%s' again; names must differ (they own "
                                "runs and files)",
                                sub_name, keys[i].name);
              goto fail;
            }
          if (memcmp (keys[j].sha256, keys[i].sha256, 32) == 0)
            {
              boxer_error_make (err, BOXER_ERR_INVALID,
                                "config: '%s.sha256' is the hash of key '%s' too; give each "
                                "client a key of its own",
                                sub_name, keys[j].name);
              goto fail;
            }
        }
    }
  api_keys_release (cfg->api_keys, cfg->n_api_keys);
  cfg->api_keys = keys;
  cfg->n_api_keys = n;
  return 0;

fail:
  api_keys_release (keys, n);
  return -1;
}

static void
warm_pool_release (struct boxer_warm_pool_entry *pool, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free (pool[i].image);
      free (pool[i].network);
    }
  free (pool);
}

/* "warm_pool": [{"image": REF, "network": "none", "size": N}, ...].  The
   reference is checked where it is used (the executor parses it); here
   only its shape.  A later file's array replaces the whole list.  */
static int
set_warm_pool (struct boxer_config *cfg, const struct entry *e, const char *name,
               json_object *val, struct boxer_error **err)
{
  struct boxer_warm_pool_entry *pool;
  size_t n;

  if (!json_object_is_type (val, json_type_array)
      || (n = json_object_array_length (val)) > e->max)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "config: '%s' must be an array of at most %.0f objects "
                             "{\"image\", \"network\", \"size\"}",
                             name, e->max);
  pool = xmalloc0 ((n + 1) * sizeof *pool);
  for (size_t i = 0; i < n; i++)
    {
      json_object *obj = json_object_array_get_idx (val, i), *v;
      struct boxer_warm_pool_entry *w = &pool[i];

      if (!json_object_is_type (obj, json_type_object))
        goto bad;
      json_object_object_foreach (obj, k, unused)
        {
          (void) unused;
          if (strcmp (k, "image") != 0 && strcmp (k, "network") != 0 && strcmp (k, "size") != 0)
            {
              boxer_error_make (err, BOXER_ERR_INVALID,
                                "config: '%s[%zu]' has an unknown field '%s'", name, i, k);
              goto fail;
            }
        }
      if (!json_object_object_get_ex (obj, "image", &v) || !json_object_is_type (v, json_type_string)
          || json_object_get_string_len (v) == 0 || json_object_get_string_len (v) > 512)
        goto bad;
      w->image = xstrdup (json_object_get_string (v));
      w->network = xstrdup ("none");
      if (json_object_object_get_ex (obj, "network", &v))
        {
          if (!json_object_is_type (v, json_type_string))
            goto bad;
          if (strcmp (json_object_get_string (v), "none") != 0
              && strcmp (json_object_get_string (v), "sandbox") != 0)
            {
              boxer_error_make (err, BOXER_ERR_INVALID,
                                "config: '%s[%zu].network' is '%s': a pool warms \"none\" or "
                                "\"sandbox\" (runs with network \"host\" take the cold path)",
                                name, i, json_object_get_string (v));
              goto fail;
            }
          free (w->network);
          w->network = xstrdup (json_object_get_string (v));
        }
      if (!json_object_object_get_ex (obj, "size", &v) || !json_object_is_type (v, json_type_int)
          || json_object_get_int64 (v) < 0 || json_object_get_int64 (v) > BOXER_WARM_POOL_MAX_SIZE)
        {
          boxer_error_make (err, BOXER_ERR_INVALID,
                            "config: '%s[%zu].size' must be an integer from 0 to %d", name, i,
                            BOXER_WARM_POOL_MAX_SIZE);
          goto fail;
        }
      w->size = json_object_get_int64 (v);
      for (size_t j = 0; j < i; j++)
        if (strcmp (pool[j].image, w->image) == 0 && strcmp (pool[j].network, w->network) == 0)
          {
            boxer_error_make (err, BOXER_ERR_INVALID,
                              "config: '%s[%zu]' warms '%s' with network '%s' again; give it one "
                              "entry", name, i, w->image, w->network);
            goto fail;
          }
    }
  warm_pool_release (cfg->warm_pool, cfg->n_warm_pool);
  cfg->warm_pool = pool;
  cfg->n_warm_pool = n;
  return 0;

bad:
  boxer_error_make (err, BOXER_ERR_INVALID,
                    "config: '%s' entries must be objects {\"image\": REFERENCE, "
                    "\"network\": \"none\" or \"sandbox\", \"size\": N}",
                    name);
fail:
  warm_pool_release (pool, n);
  return -1;
}

/* "os/arch" or "os/arch/variant", each part lower-case letters, digits
   and '_'.  */
static int
check_image_platform (const struct boxer_config *cfg, struct boxer_error **err)
{
  const char *p = cfg->image_platform;
  int parts = 1;
  bool empty = *p == '\0' || *p == '/';

  for (; *p; p++)
    {
      if (*p == '/')
        {
          parts++;
          empty |= p[1] == '\0' || p[1] == '/';
        }
      else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
        empty = true;
    }
  if (empty || parts < 2 || parts > 3)
    {
      cleanup_free char *q = boxer_quote_str (cfg->image_platform);
      return boxer_error_make (err, BOXER_ERR_INVALID,
                               "config: 'image_platform' must be OS/ARCH or OS/ARCH/VARIANT "
                               "(e.g. \"linux/amd64\"), got '%s'",
                               q);
    }
  return 0;
}

static int
set_entries (const struct entry *table, void *base, const char *prefix, json_object *obj,
             struct boxer_error **err)
{
  if (!json_object_is_type (obj, json_type_object))
    return boxer_error_make (err, BOXER_ERR_INVALID, "config: %s must be an object",
                             *prefix ? prefix : "the document");

  json_object_object_foreach (obj, key, val)
    {
      const struct entry *e;
      void *field;
      cleanup_free char *name = xasprintf ("%s%s%s", prefix, *prefix ? "." : "", key);

      for (e = table; e->name; e++)
        if (strcmp (e->name, key) == 0)
          break;
      if (e->name == NULL)
        return boxer_error_make (err, BOXER_ERR_INVALID, "config: unknown field '%s'", name);

      field = (char *) base + e->offset;
      switch (e->type)
        {
        case T_STRING:
          if (!json_object_is_type (val, json_type_string) || json_object_get_string_len (val) == 0)
            return boxer_error_make (err, BOXER_ERR_INVALID,
                                     "config: '%s' must be a non-empty string", name);
          /* xstrdup () below would cut the value at a \u0000.  */
          if (strlen (json_object_get_string (val)) != (size_t) json_object_get_string_len (val))
            return boxer_error_make (err, BOXER_ERR_INVALID,
                                     "config: '%s' must not contain NUL bytes", name);
          free (*(char **) field);
          *(char **) field = xstrdup (json_object_get_string (val));
          break;

        case T_BOOL:
          if (!json_object_is_type (val, json_type_boolean))
            return boxer_error_make (err, BOXER_ERR_INVALID,
                                     "config: '%s' must be true or false", name);
          *(bool *) field = json_object_get_boolean (val);
          break;

        case T_INT:
          {
            int64_t v;
            if (!json_object_is_type (val, json_type_int))
              return boxer_error_make (err, BOXER_ERR_INVALID,
                                       "config: '%s' must be an integer", name);
            v = json_object_get_int64 (val);
            if (v < e->min || v > e->max)
              return boxer_error_make (err, BOXER_ERR_INVALID,
                                       "config: '%s' must be between %.0f and %.0f", name,
                                       e->min, e->max);
            *(int64_t *) field = v;
            break;
          }

        case T_DOUBLE:
          {
            double v;
            if (!json_object_is_type (val, json_type_double)
                && !json_object_is_type (val, json_type_int))
              return boxer_error_make (err, BOXER_ERR_INVALID,
                                       "config: '%s' must be a number", name);
            v = json_object_get_double (val);
            if (!isfinite (v) || v < e->min || v > e->max)
              return boxer_error_make (err, BOXER_ERR_INVALID,
                                       "config: '%s' must be between %g and %g", name,
                                       e->min, e->max);
            *(double *) field = v;
            break;
          }

        case T_LIMITS:
          if (set_entries (limits_table, field, name, val, err) < 0)
            return -1;
          break;

        case T_CHOICE:
          if (set_choice (e, field, name, val, err) < 0)
            return -1;
          break;

        case T_REGISTRIES:
          if (set_registries (base, name, val, err) < 0)
            return -1;
          break;

        case T_STRV:
          if (set_strv (e, field, name, val, err) < 0)
            return -1;
          break;

        case T_PORTS:
          if (set_ports (e, field, name, val, err) < 0)
            return -1;
          break;

        case T_API_KEYS:
          if (set_api_keys (base, e, name, val, err) < 0)
            return -1;
          break;

        case T_WARM_POOL:
          if (set_warm_pool (base, e, name, val, err) < 0)
            return -1;
          break;
        }
    }
  return 0;
}

static int
check_defaults_within_max (const struct boxer_config *cfg, struct boxer_error **err)
{
  for (const struct entry *e = limits_table; e->name; e++)
    {
      const void *d = (const char *) &cfg->defaults + e->offset;
      const void *m = (const char *) &cfg->max_limits + e->offset;
      bool over = e->type == T_DOUBLE ? *(const double *) d > *(const double *) m
                                      : *(const int64_t *) d > *(const int64_t *) m;
      if (over)
        return boxer_error_make (err, BOXER_ERR_INVALID,
                                 "config: 'defaults.%s' is above 'max_limits.%s'; raise the "
                                 "maximum or lower the default",
                                 e->name, e->name);
    }
  return 0;
}

/* A key's max_limits: what it left out is the config's; what it sets may
   not exceed the config's (a key narrows the service, never widens it).
   Unset fields are 0, below every floor.  */
static int
check_key_limits (struct boxer_config *cfg, struct boxer_error **err)
{
  for (size_t i = 0; i < cfg->n_api_keys; i++)
    for (const struct entry *e = limits_table; e->name; e++)
      {
        void *k = (char *) &cfg->api_keys[i].max_limits + e->offset;
        const void *m = (const char *) &cfg->max_limits + e->offset;
        bool is_double = e->type == T_DOUBLE;
        bool unset = is_double ? *(double *) k == 0 : *(int64_t *) k == 0;
        bool over = is_double ? *(double *) k > *(const double *) m
                              : *(int64_t *) k > *(const int64_t *) m;
        if (unset && is_double)
          *(double *) k = *(const double *) m;
        else if (unset)
          *(int64_t *) k = *(const int64_t *) m;
        else if (over)
          return boxer_error_make (err, BOXER_ERR_INVALID,
                                   "config: 'api_keys[%zu].max_limits.%s' is above "
                                   "'max_limits.%s'; a key can only narrow the service's limits",
                                   i, e->name, e->name);
      }
  return 0;
}

static int
expand_home (struct boxer_config *cfg, struct boxer_error **err)
{
  if (cfg->home[0] == '~' && (cfg->home[1] == '/' || cfg->home[1] == '\0'))
    {
      const char *h = getenv ("HOME");
      char *expanded;
      if (h == NULL || *h != '/')
        {
          struct passwd *pw = getpwuid (getuid ());
          h = pw ? pw->pw_dir : "/root";
        }
      expanded = xasprintf ("%s%s", h, cfg->home + 1);
      free (cfg->home);
      cfg->home = expanded;
    }
  if (cfg->home[0] != '/')
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "config: 'home' must be an absolute path, got '%s'", cfg->home);
  {
    /* A unix socket's path has room for 107 bytes.  */
    cleanup_free char *sock = boxer_config_executor_socket (cfg);
    if (sock[0] != '/' || strlen (sock) > 107)
      return boxer_error_make (err, BOXER_ERR_INVALID,
                               "config: the executor's socket '%s' must be an absolute path of at "
                               "most 107 bytes; set 'executor_socket' (or a shorter 'home')",
                               sock);
  }
  return 0;
}

int
boxer_config_parse (struct boxer_config *cfg, const char *json, size_t len,
                    struct boxer_error **err)
{
  json_tokener *tok;
  json_object *root;
  enum json_tokener_error jerr;
  int r;

  /* json-c takes an int length, and -1 would mean strlen ().  */
  if (len > INT_MAX)
    return boxer_error_make (err, BOXER_ERR_INVALID, "config: larger than %d bytes", INT_MAX);
  tok = json_tokener_new_ex (8);
  if (tok == NULL)
    abort ();
  root = json_tokener_parse_ex (tok, json, (int) len);
  jerr = json_tokener_get_error (tok);
  if (jerr == json_tokener_continue)
    {
      /* The text ended inside a value.  json-c takes a NUL byte as the end
         of the input, which completes a top-level number; anything else
         was cut short.  */
      root = json_tokener_parse_ex (tok, "", 1);
      jerr = json_tokener_get_error (tok);
      if (jerr != json_tokener_success)
        jerr = json_tokener_error_parse_eof;
    }
  else if (root != NULL && jerr == json_tokener_success
           && (size_t) json_tokener_get_parse_end (tok) < len)
    {
      /* Trailing bytes other than white space make the file ambiguous.
         (Not strchr (): it would take a NUL byte for white space.)  */
      for (size_t i = json_tokener_get_parse_end (tok); i < len; i++)
        if (json[i] != ' ' && json[i] != '\t' && json[i] != '\r' && json[i] != '\n')
          jerr = json_tokener_error_parse_unexpected;
    }
  json_tokener_free (tok);
  if (root == NULL || jerr != json_tokener_success)
    {
      json_object_put (root);
      return boxer_error_make (err, BOXER_ERR_INVALID, "config: not valid JSON (%s)",
                               json_tokener_error_desc (jerr == json_tokener_success
                                                          ? json_tokener_error_parse_eof
                                                          : jerr));
    }

  r = set_entries (config_table, cfg, "", root, err);
  json_object_put (root);
  if (r < 0)
    return -1;
  if (expand_home (cfg, err) < 0 || check_image_platform (cfg, err) < 0
      || check_key_limits (cfg, err) < 0)
    return -1;
  return check_defaults_within_max (cfg, err);
}

int
boxer_config_load (struct boxer_config *cfg, const char *explicit_path, char **source_out,
                   struct boxer_error **err)
{
  cleanup_free char *fallback = NULL;
  cleanup_free char *data = NULL;
  const char *path = explicit_path;
  size_t len;
  struct stat st;

  boxer_config_init_defaults (cfg);
  if (path == NULL)
    path = getenv ("BOXER_CONFIG");
  if (path == NULL || *path == '\0')
    {
      fallback = xasprintf ("%s/config.json", cfg->home);
      if (stat (fallback, &st) < 0)
        {
          if (source_out)
            *source_out = xstrdup ("defaults");
          return 0;
        }
      path = fallback;
    }

  if (boxer_read_file (path, CONFIG_MAX_BYTES, &data, &len, err) < 0)
    {
      boxer_error_wrap (err, "read config '%s'", path);
      goto fail;
    }
  if (boxer_config_parse (cfg, data, len, err) < 0)
    {
      boxer_error_wrap (err, "%s", path);
      goto fail;
    }
  if (source_out)
    *source_out = xstrdup (path);
  return 0;

fail:
  /* The caller gets nothing to release on failure.  */
  boxer_config_release (cfg);
  return -1;
}

void
boxer_config_release (struct boxer_config *cfg)
{
  free (cfg->home);
  free (cfg->runsc_path);
  free (cfg->init_path);
  free (cfg->platform);
  free (cfg->listen_addr);
  for (size_t i = 0; i < cfg->n_registries; i++)
    registry_release (&cfg->registries[i]);
  free (cfg->registries);
  free (cfg->image_platform);
  free (cfg->sandbox_subnet);
  free (cfg->executor_socket);
  free (cfg->worker_user);
  boxer_strv_free (cfg->dns_servers);
  boxer_strv_free (cfg->sandbox_deny_ranges);
  boxer_strv_free (cfg->allowed_registries);
  free (cfg->sandbox_host_allow);
  api_keys_release (cfg->api_keys, cfg->n_api_keys);
  warm_pool_release (cfg->warm_pool, cfg->n_warm_pool);
  memset (cfg, 0, sizeof *cfg);
}
