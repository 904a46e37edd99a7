/* Parsing and validation of request bodies: pure, no I/O, unit-tested.  */
#ifndef BOXER_FCGI_REQUEST_H
#define BOXER_FCGI_REQUEST_H

#include "executor/executor.h"

/* Deepest JSON nesting a request may have; deeper is a 400.  */
#define BOXER_REQUEST_MAX_DEPTH 16

/* Parse a POST /run JSON body into out, applying cfg->defaults to missing
   limits and refusing (BOXER_ERR_INVALID, message naming the field) malformed
   JSON, unknown fields, wrong types, a missing image, limits outside
   [boxer_limits_floor, cfg->max_limits], NUL bytes in argv/env, and so on.
   `network: host` when cfg disallows it is BOXER_ERR_FORBIDDEN.  With key
   (NULL: no API keys), defaults are lowered to the key's max_limits, and a
   limit above them or a network mode it may not use is
   BOXER_ERR_FORBIDDEN.  */
int boxer_request_parse_run (const struct boxer_config *cfg, const struct boxer_api_key *key,
                             const char *body, size_t len, struct boxer_run_request *out,
                             struct boxer_error **err);

/* Parse a POST /batch JSON body: image, network, limits (the sandbox's;
   limits.wall_clock_secs is each run's default), parallelism (default 1,
   at most BOXER_BATCH_MAX_PARALLELISM) and runs (1 to max_batch_runs of
   {cmd, env, workdir, stdin, files, limits: {wall_clock_secs, memory_mb}},
   checked as POST /run's fields; a run's memory_mb, its address space,
   defaults to the sandbox's).  Messages name the run ("runs[3].cmd ...").
   A network other than "none", and a file where each run has a fresh
   directory (/tmp ...), are BOXER_ERR_INVALID; key as for runs.  */
/* POST /sessions: image, limits, network (none), env, workdir,
   idle_timeout_secs (default BOXER_SESSION_IDLE_DEFAULT) and ttl_secs
   (default BOXER_SESSION_TTL_DEFAULT, at most max_session_ttl_secs); as a
   run's, within the key's limits.  */
#define BOXER_SESSION_IDLE_DEFAULT 300
#define BOXER_SESSION_TTL_DEFAULT 3600
int boxer_request_parse_session (const struct boxer_config *cfg, const struct boxer_api_key *key,
                                 const char *body, size_t len, struct boxer_session_request *out,
                                 struct boxer_error **err);
/* POST /sessions/{id}/exec: cmd (required), env, workdir, stdin and
   timeout_secs (into limits.wall_clock_secs; 0 when absent: the
   session's).  */
int boxer_request_parse_exec (const struct boxer_config *cfg, const struct boxer_api_key *key,
                              const char *body, size_t len, struct boxer_run_request *out,
                              struct boxer_error **err);
int boxer_request_parse_batch (const struct boxer_config *cfg, const struct boxer_api_key *key,
                               const char *body, size_t len, struct boxer_batch_request *out,
                               struct boxer_error **err);

/* The checks on req->files that span entries: at most BOXER_RUN_MAX_FILES,
   no two at the same path or one under another (BOXER_ERR_INVALID).  For
   requests whose files come from several places (multipart POST /run).  */
int boxer_request_check_files (const struct boxer_run_request *req, struct boxer_error **err);

#endif
