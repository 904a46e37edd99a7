/* The only place errors become HTTP replies.  */
#ifndef BOXER_FCGI_RESPONSE_H
#define BOXER_FCGI_RESPONSE_H

#include <fcgiapp.h>
#include <json-c/json.h>

#include "executor/executor.h"

/* The HTTP status and API error code of a category.  */
int boxer_http_status (enum boxer_error_category category, const char **code_out);
const char *boxer_http_reason (int status);

/* Reply with a JSON body (not consumed).  extra_headers is NULL or lines
   each ending in "\r\n".  */
void boxer_reply_json (FCGX_Request *req, int status, json_object *body,
                       const char *extra_headers);
void boxer_reply_empty (FCGX_Request *req, int status);
/* Reply with len bytes of text (below INT_MAX) of content_type.  */
void boxer_reply_text (FCGX_Request *req, int status, const char *content_type, const char *text,
                       size_t len);
/* Reply with len raw bytes read from fd (a regular file; not closed), e.g.
   an output file as application/octet-stream.  */
void boxer_reply_fd (FCGX_Request *req, int status, const char *content_type, int fd,
                     int64_t len);

/* Reply with the error body of API.md.  Internal errors are logged in full
   and answered with a generic message naming the request id, so host paths
   and other details never reach the client.  */
void boxer_reply_error (FCGX_Request *req, const struct boxer_error *error,
                        const char *request_id);
/* The error body alone (logged as boxer_reply_error () logs it), for an
   error told inside a stream.  */
json_object *boxer_error_body (const struct boxer_error *error, const char *request_id);
/* The same with extra header lines, each ending in "\r\n".  */
void boxer_reply_error_headers (FCGX_Request *req, const struct boxer_error *error,
                                const char *request_id, const char *extra_headers);

/* The run result object of API.md; stdout/stderr made valid UTF-8.  */
json_object *boxer_run_result_to_json (const struct boxer_run_result *res);
/* Its "outputs" array: [{"path": ..., "size": ...}].  */
json_object *boxer_run_outputs_to_json (const struct boxer_run_result *res);

#endif
