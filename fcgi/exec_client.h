/* The worker's side of the executor protocol (executor/protocol.h): one
   connection per exchange.  An executor that is not there, or goes away,
   is BOXER_ERR_RUNTIME (503 runtime_unavailable); a full queue is
   BOXER_ERR_BUSY (503 busy, Retry-After).  */
#ifndef BOXER_FCGI_EXEC_CLIENT_H
#define BOXER_FCGI_EXEC_CLIENT_H

#include "cache/cache.h"
#include "executor/protocol.h"

/* The executor's runsc, platform, cgroup mode and load.  */
int boxer_exec_hello (const struct boxer_config *cfg, struct boxer_proto_hello *out,
                      struct boxer_error **err);

/* Run req in image (resolved and held by the caller) as run id.  While it
   waits for a slot or the result it watches client_fd (the FastCGI
   connection; -1: none): when the web server hangs up, because its client
   went away, the run is cancelled (BOXER_ERR_RUNTIME).  On success *out
   is the result (without outputs) and *output_fd a descriptor of the
   run's /output, or -1.  key: the name of the request's API key (NULL:
   none); a key at its max_concurrent_runs is BOXER_ERR_TOO_MANY.
   sink (NULL: none) streams the run: its started hook is called when the
   program runs, its output hook with each piece of output as it comes;
   -1 from either cancels the run (BOXER_ERR_RUNTIME).  */
int boxer_exec_run (const struct boxer_config *cfg, const char *id, const char *key,
                    const struct boxer_run_request *req, const struct boxer_image *image,
                    int client_fd, const struct boxer_run_sink *sink,
                    struct boxer_run_result *out, int *output_fd, struct boxer_error **err);

/* Run a batch as id (as boxer_exec_run (), one slot of the executor).
   on_run gets each run's end as it comes: its result (without image or
   outputs) or, for a run that could not start, run_err.  0 once every run
   was told; -1 with *err for the batch's own error.  sink streams it as
   boxer_exec_run ()'s does, with each output's run index.  */
int boxer_exec_batch (const struct boxer_config *cfg, const char *id, const char *key,
                      const struct boxer_batch_request *batch, const struct boxer_image *image,
                      int client_fd, const struct boxer_run_sink *sink,
                      void (*on_run) (void *data, size_t index, struct boxer_run_result *res,
                                      const struct boxer_error *run_err),
                      void *data, struct boxer_error **err);

/* Sessions (executor/session.h): create one of s on image (whose hold goes
   to the session's keeper), exec in one, put and get a file, look at one
   (info) or delete it (out NULL).  key: the request's API key name, whose
   sessions alone it finds (another's is BOXER_ERR_SESSION_NOT_FOUND).  */
int boxer_exec_session_create (const struct boxer_config *cfg, const char *key,
                               const struct boxer_session_request *s,
                               const struct boxer_image *image, int client_fd,
                               struct boxer_session_info *out, struct boxer_error **err);
int boxer_exec_session_exec (const struct boxer_config *cfg, const char *key, const char *id,
                             const struct boxer_run_request *req, int client_fd,
                             const struct boxer_run_sink *sink, struct boxer_run_result *out,
                             struct boxer_error **err);
int boxer_exec_session_put (const struct boxer_config *cfg, const char *key, const char *id,
                            const char *path, const char *data, size_t len, int client_fd,
                            struct boxer_error **err);
int boxer_exec_session_get (const struct boxer_config *cfg, const char *key, const char *id,
                            const char *path, int client_fd, char **data_out, size_t *len_out,
                            struct boxer_error **err);
int boxer_exec_session_simple (const struct boxer_config *cfg, const char *key, const char *id,
                               int client_fd, struct boxer_session_info *out,
                               struct boxer_error **err);

/* Tell the executor how one request was answered (for GET /metrics),
   without waiting: a report that cannot be sent at once is dropped.  */
void boxer_exec_report (const struct boxer_config *cfg, const struct boxer_proto_report *rep);

/* The Prometheus text of GET /metrics; caller frees.  */
int boxer_exec_metrics (const struct boxer_config *cfg, char **text_out,
                        struct boxer_error **err);

#endif
