/* Every handler of the routing table in router.c.  A handler answers the
   request and returns 0, or returns an error that the router answers.  */
#ifndef BOXER_FCGI_HANDLERS_H
#define BOXER_FCGI_HANDLERS_H

#include "http.h"

typedef int (*boxer_handler_fn) (struct boxer_server *srv, struct boxer_http *http,
                                 struct boxer_error **err);

/* fcgi/run.c */
int boxer_handle_run (struct boxer_server *srv, struct boxer_http *http, struct boxer_error **err);
int boxer_handle_health (struct boxer_server *srv, struct boxer_http *http,
                         struct boxer_error **err);
/* GET /metrics: the executor's counters (executor/metrics.h).  */
int boxer_handle_metrics (struct boxer_server *srv, struct boxer_http *http,
                          struct boxer_error **err);
/* Run a parsed request and answer with its result (also recorded for GET
   /runs/{id}).  */
int boxer_run_answer (struct boxer_server *srv, struct boxer_http *http,
                      const struct boxer_run_request *req, struct boxer_error **err);

/* fcgi/batch.c */
int boxer_handle_batch (struct boxer_server *srv, struct boxer_http *http,
                        struct boxer_error **err);

/* fcgi/sessions.c */
int boxer_handle_session_create (struct boxer_server *srv, struct boxer_http *http,
                                 struct boxer_error **err);
int boxer_handle_session_get (struct boxer_server *srv, struct boxer_http *http,
                              struct boxer_error **err);
int boxer_handle_session_delete (struct boxer_server *srv, struct boxer_http *http,
                                 struct boxer_error **err);
int boxer_handle_session_exec (struct boxer_server *srv, struct boxer_http *http,
                               struct boxer_error **err);
int boxer_handle_session_put_file (struct boxer_server *srv, struct boxer_http *http,
                                   struct boxer_error **err);
int boxer_handle_session_get_file (struct boxer_server *srv, struct boxer_http *http,
                                   struct boxer_error **err);

/* fcgi/files.c: uploads, one-shot multipart runs, run records.  */
int boxer_handle_files_upload (struct boxer_server *srv, struct boxer_http *http,
                               struct boxer_error **err);
int boxer_handle_run_multipart (struct boxer_server *srv, struct boxer_http *http,
                                struct boxer_error **err);
int boxer_handle_run_get (struct boxer_server *srv, struct boxer_http *http,
                          struct boxer_error **err);
int boxer_handle_run_outputs (struct boxer_server *srv, struct boxer_http *http,
                              struct boxer_error **err);
int boxer_handle_run_output (struct boxer_server *srv, struct boxer_http *http,
                             struct boxer_error **err);
/* Publish the run record of res with reply (its result JSON); failures are
   logged, the run's answer stands.  */
struct json_object;
void boxer_files_record_run (struct boxer_server *srv, const struct boxer_http *http,
                             const struct boxer_run_result *res, struct json_object *reply);
/* With API keys: every upload req names belongs to the request's key
   (another key's is BOXER_ERR_FILE_NOT_FOUND, as an unknown one).  */
int boxer_files_check_owners (struct boxer_server *srv, const struct boxer_http *http,
                              const struct boxer_run_request *req, struct boxer_error **err);
/* Between requests: remove expired uploads and run records, at most every
   so often.  */
void boxer_files_housekeeping (struct boxer_server *srv);

/* fcgi/images.c: the image store.  */
int boxer_handle_images_list (struct boxer_server *srv, struct boxer_http *http,
                              struct boxer_error **err);
int boxer_handle_images_pull (struct boxer_server *srv, struct boxer_http *http,
                              struct boxer_error **err);
int boxer_handle_images_delete (struct boxer_server *srv, struct boxer_http *http,
                                struct boxer_error **err);
/* The body of POST /images/pull, {"image": "<reference>"} (pure).  */
int boxer_images_parse_pull (const char *body, size_t len, char **image_out,
                             struct boxer_error **err);

#endif
