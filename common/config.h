/* The server configuration: one table of entries (name, type, bounds,
   default) in config.c, loaded from a JSON file.  An unknown or invalid
   field stops start-up with a message naming it.  */
#ifndef BOXER_COMMON_CONFIG_H
#define BOXER_COMMON_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

/* Resource limits of one run.  Also used for the config's defaults and
   max_limits.  */
struct boxer_limits
{
  double cpu_cores;
  int64_t memory_mb;
  int64_t wall_clock_secs;
  int64_t pids_limit;
  int64_t nofile;
};

/* The hard floor under every limit, whatever the config says: below these
   a sandbox cannot start.  */
extern const struct boxer_limits boxer_limits_floor;

/* Where images come from: one entry of the config's "registries" object,
   keyed by the registry as image references name it ("docker.io",
   "localhost:5000").  */
struct boxer_registry_config
{
  char *host;
  char *mirror;         /* "http[s]://host[:port]" serving its images instead, or NULL */
  bool insecure;        /* plain HTTP allowed for host itself */
  char *username;       /* basic credentials: both or neither */
  char *password;
};

/* A client's API key, as the config's "api_keys" array describes it: the
   key itself is never stored, only its SHA-256.  */
struct boxer_api_key
{
  char *name;                   /* owner of its runs, uploads and records; in logs and metrics */
  unsigned char sha256[32];
  int64_t max_concurrent_runs;  /* its runs running or queued at once; 0: only the service's bound */
  struct boxer_limits max_limits;       /* within the config's max_limits (the default) */
  bool allow_network_sandbox;   /* network modes beyond "none" it may ask for */
  bool allow_network_host;
  bool allow_images;            /* pull (also by running an image not yet stored) and delete */
  bool allow_sessions;          /* open sessions (long-lived sandboxes) */
};

/* Longest key name; names are [A-Za-z0-9_.-].  */
#define BOXER_API_KEY_NAME_MAX 64

/* One entry of the config's "warm_pool": keep size sandboxes of image
   booted and waiting (executor/warm.h).  */
struct boxer_warm_pool_entry
{
  char *image;                  /* a reference, as runs name it */
  char *network;                /* "none" or "sandbox" */
  int64_t size;
};

#define BOXER_WARM_POOL_MAX_ENTRIES 16
#define BOXER_WARM_POOL_MAX_SIZE 64

enum boxer_pull_policy
{
  BOXER_PULL_IF_NOT_PRESENT = 0,        /* pull on first use only */
  BOXER_PULL_ALWAYS,                    /* ask the registry on every run */
  BOXER_PULL_NEVER,                     /* runs use stored images only */
};

struct boxer_config
{
  char *home;                   /* absolute; ~ expanded */
  char *runsc_path;             /* NULL: look up "runsc" on PATH */
  char *init_path;              /* boxer-init; NULL: the one installed with Boxer */
  char *platform;
  char *listen_addr;
  bool ignore_cgroups;
  int64_t output_limit_bytes;
  int64_t upload_limit_bytes;
  /* POST /batch: runs in one batch, and their stdout and stderr in all
     (each stream of each run gets an equal share, so that whether a run's
     output is cut never depends on the others' timing).  */
  int64_t max_batch_runs;
  int64_t batch_output_limit_bytes;
  /* Sessions (POST /sessions): sandboxes kept alive at once, and the
     longest ttl_secs one may ask for.  */
  int64_t max_sessions;
  int64_t max_session_ttl_secs;
  /* Files in and out of runs: uploads, /output and run records.  */
  int64_t outputs_limit_bytes;  /* bytes of a run's /output kept, in total */
  int64_t outputs_limit_files;  /* files of a run's /output kept */
  int64_t runs_ttl_secs;        /* run records (GET /runs/{id}) expire after this */
  int64_t files_ttl_secs;       /* uploads (POST /files) expire after this */
  int64_t files_budget_bytes;   /* disk all uploads may use; 0: no budget */
  int64_t runs_budget_bytes;    /* disk all run records may use; 0: no budget */
  int64_t min_free_bytes;       /* below this free on home's disk, uploads, runs and pulls wait */
  struct boxer_limits defaults;
  struct boxer_limits max_limits;
  /* Registry pulls.  */
  struct boxer_registry_config *registries;
  size_t n_registries;
  char *image_platform;         /* "os/arch[/variant]" images are pulled for */
  int pull_policy;              /* enum boxer_pull_policy */
  int64_t images_budget_bytes;  /* unpacked images kept; 0: no budget; -1 (the default):
                                   half the size of the file system holding home */
  int64_t registry_timeout_secs;        /* connect, and longest stall of a transfer */
  int64_t pull_timeout_secs;    /* the whole of one pull, waiting for another included */
  char **allowed_registries;    /* NULL: any; else only these and the configured ones */
  /* What one image may put on disk (cache/layer.h counts it).  */
  int64_t image_max_bytes;
  int64_t image_max_entries;    /* files and directories, implied parents included */
  int64_t image_max_depth;
  int64_t image_max_path_bytes;
  /* Networks of runs (executor/network.h); checked at executor start-up.  */
  char *sandbox_subnet;         /* IPv4 pool of sandbox runs, "a.b.c.d/p" */
  char **dns_servers;           /* nameservers of sandbox and host runs; NULL-terminated */
  char **sandbox_deny_ranges;   /* destinations sandbox runs never reach; NULL-terminated */
  int *sandbox_host_allow;      /* gateway ports sandbox runs may reach; 0-terminated */
  bool allow_host_network;      /* whether `network: host` is served */
  /* The shared executor (executor/daemon.h).  */
  char *executor_socket;        /* NULL: <home>/executor.sock */
  char *worker_user;            /* the user workers run as, allowed on the socket; NULL: root */
  int64_t max_concurrent_runs;  /* 0: twice the host's cores */
  int64_t max_queued_runs;      /* runs waiting for a slot; 0: four times max_concurrent_runs */
  int64_t queue_timeout_secs;   /* a run waits at most this long for a slot */
  /* Clients: with keys, every request but the public ones names one.  */
  struct boxer_api_key *api_keys;
  size_t n_api_keys;
  /* Sandboxes booted ahead of the runs that will use them.  */
  struct boxer_warm_pool_entry *warm_pool;
  size_t n_warm_pool;
};

/* The key whose SHA-256 is that of secret (compared in constant time with
   every configured key), or NULL.  */
const struct boxer_api_key *boxer_config_find_key (const struct boxer_config *cfg,
                                                   const char *secret, size_t len);

/* The configured key called name, or NULL.  */
const struct boxer_api_key *boxer_config_key_by_name (const struct boxer_config *cfg,
                                                      const char *name);

/* The lower-case hex SHA-256 of secret, as "api_keys[].sha256" holds it.  */
void boxer_api_key_hash_hex (const char *secret, size_t len, char out[65]);

/* The executor's socket path, and the admission bounds with their
   machine-sized defaults applied.  */
char *boxer_config_executor_socket (const struct boxer_config *cfg);
int64_t boxer_config_max_concurrent_runs (const struct boxer_config *cfg);
int64_t boxer_config_max_queued_runs (const struct boxer_config *cfg);

/* The registries entry for host (as references name it), or NULL.  */
const struct boxer_registry_config *boxer_config_registry (const struct boxer_config *cfg,
                                                           const char *host);

/* Fill cfg with the built-in defaults.  */
void boxer_config_init_defaults (struct boxer_config *cfg);

/* Apply a JSON document over cfg (pure: no I/O).  Unknown fields, wrong
   types, values out of range, and defaults above max_limits are
   BOXER_ERR_INVALID errors naming the field.  */
int boxer_config_parse (struct boxer_config *cfg, const char *json, size_t len,
                        struct boxer_error **err);

/* Find and load the config: explicit_path if given, else $BOXER_CONFIG,
   else ~/.boxer/config.json if it exists, else the defaults.  *source_out
   (optional, caller frees) names the file used or "defaults".  On failure
   cfg holds nothing (it is released).  */
int boxer_config_load (struct boxer_config *cfg, const char *explicit_path,
                       char **source_out, struct boxer_error **err);

void boxer_config_release (struct boxer_config *cfg);

#endif
