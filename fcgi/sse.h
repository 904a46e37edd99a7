/* Server-sent events (API.md, "Streaming"): a streamed answer's headers
   and events, each flushed to the web server as it is written.  */
#ifndef BOXER_FCGI_SSE_H
#define BOXER_FCGI_SSE_H

#include <fcgiapp.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "executor/executor.h"
#include "http.h"

/* The start of a character the next piece of a stream completes.  */
struct boxer_sse_carry
{
  char bytes[4];
  size_t len;
};

struct boxer_sse
{
  FCGX_Request *req;
  bool begun;           /* the 200 and its headers are out */
  bool gone;            /* a write failed: the client went away */
  struct boxer_sse_carry *carry;        /* stdout and stderr of each run */
  size_t nruns;
};

/* For nruns runs (1: a run alone, index -1 below).  */
void boxer_sse_init (struct boxer_sse *sse, FCGX_Request *req, size_t nruns);
void boxer_sse_release (struct boxer_sse *sse);
/* Answer 200 with the event stream's headers.  -1: the client is gone.  */
int boxer_sse_begin (struct boxer_sse *sse);
/* One "stdout" (stream 0) or "stderr" (1) event of a piece of output, made
   valid UTF-8; a character cut between pieces waits for the next piece.
   index >= 0 adds "index" (a run of a batch).  */
int boxer_sse_output (struct boxer_sse *sse, int stream, long index, const char *bytes,
                      size_t len);
/* The end of a run's output: what still waits is sent, replaced as
   invalid.  */
int boxer_sse_output_end (struct boxer_sse *sse, long index);
/* One event of name with data (not consumed).  */
int boxer_sse_event (struct boxer_sse *sse, const char *name, json_object *data);

/* The executor's frames of a streamed run or batch into sse: the 200 when
   the program (or the batch's sandbox) started, an output event per
   piece.  */
struct boxer_run_sink boxer_sse_sink (struct boxer_sse *sse);

/* A failure once the 200 is out: told as the stream's last event, an
   "error" with the body an error response would have.  The request
   counts as answered (200, with the error's code for /metrics); *err is
   released.  Returns 0.  */
int boxer_sse_fail (struct boxer_sse *sse, struct boxer_http *http, struct boxer_error **err);

/* A run's result (not consumed): the stream's last event, after the cut
   character still waiting (the events held all the rest), when streamed;
   else the 200 JSON answer.  */
void boxer_sse_answer (struct boxer_sse *sse, bool streamed, json_object *result);

#define cleanup_sse __attribute__ ((cleanup (boxer_sse_release)))

/* Whether the request lists media (e.g. "text/event-stream") in Accept,
   with a q above 0.  Wildcards do not count: a client that did not ask
   for a stream gets JSON.  */
bool boxer_sse_wanted (FCGX_Request *req, const char *media);

#endif
