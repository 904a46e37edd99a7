#include <config.h>

#include "sse.h"

#include <strings.h>

#include "common/log.h"
#include "common/utf8.h"
#include "common/util.h"
#include "response.h"

static const char *const stream_events[] = { "stdout", "stderr" };

void
boxer_sse_init (struct boxer_sse *sse, FCGX_Request *req, size_t nruns)
{
  memset (sse, 0, sizeof *sse);
  sse->req = req;
  sse->nruns = nruns ? nruns : 1;
  sse->carry = xmalloc0 (2 * sse->nruns * sizeof *sse->carry);
}

void
boxer_sse_release (struct boxer_sse *sse)
{
  free (sse->carry);
  sse->carry = NULL;
}

static struct boxer_sse_carry *
carry_of (struct boxer_sse *sse, long index, int stream)
{
  size_t run = index < 0 ? 0 : (size_t) index;

  return &sse->carry[2 * (run < sse->nruns ? run : 0) + (stream != 0)];
}

/* Put len bytes and flush: the event must reach the client now, not when
   a buffer fills.  */
static int
put (struct boxer_sse *sse, const char *text, size_t len)
{
  if (sse->gone)
    return -1;
  if (FCGX_PutStr (text, (int) len, sse->req->out) != (int) len || FCGX_FFlush (sse->req->out) < 0)
    sse->gone = true;
  return sse->gone ? -1 : 0;
}

int
boxer_sse_begin (struct boxer_sse *sse)
{
  /* X-Accel-Buffering: nginx passes this response on as it comes, while
     it buffers every other.  */
  static const char head[] = "Status: 200 OK\r\n"
                             "Content-Type: text/event-stream; charset=utf-8\r\n"
                             "Cache-Control: no-store\r\n"
                             "X-Accel-Buffering: no\r\n"
                             "\r\n";

  sse->begun = true;
  return put (sse, head, sizeof head - 1);
}

int
boxer_sse_event (struct boxer_sse *sse, const char *name, json_object *data)
{
  size_t len;
  /* Plain JSON has no newline, which would end the data line.  */
  const char *text = json_object_to_json_string_length (
    data, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
  cleanup_free char *event = xasprintf ("event: %s\ndata: %.*s\n\n", name, (int) len, text);

  return put (sse, event, strlen (event));
}

static int
output_event (struct boxer_sse *sse, int stream, long index, const char *bytes, size_t len)
{
  size_t clean_len;
  cleanup_free char *clean = boxer_utf8_sanitize (bytes, len, &clean_len);
  json_object *data = json_object_new_object ();
  int r;

  if (index >= 0)
    json_object_object_add (data, "index", json_object_new_int64 (index));
  json_object_object_add (data, "data", json_object_new_string_len (clean, (int) clean_len));
  r = boxer_sse_event (sse, stream_events[stream], data);
  json_object_put (data);
  return r;
}

int
boxer_sse_output (struct boxer_sse *sse, int stream, long index, const char *bytes, size_t len)
{
  struct boxer_sse_carry *c = carry_of (sse, index, stream);
  cleanup_free char *joined = xmalloc (c->len + len + 1);
  size_t total = c->len + len, keep;

  memcpy (joined, c->bytes, c->len);
  memcpy (joined + c->len, bytes, len);
  keep = boxer_utf8_incomplete_tail (joined, total);
  memcpy (c->bytes, joined + total - keep, keep);
  c->len = keep;
  if (total == keep)
    return sse->gone ? -1 : 0;
  return output_event (sse, stream != 0, index, joined, total - keep);
}

int
boxer_sse_output_end (struct boxer_sse *sse, long index)
{
  for (int stream = 0; stream < 2; stream++)
    {
      struct boxer_sse_carry *c = carry_of (sse, index, stream);
      size_t n = c->len;
      if (n == 0)
        continue;
      c->len = 0;
      if (output_event (sse, stream, index, c->bytes, n) < 0)
        return -1;
    }
  return 0;
}

static int
sink_started (void *data)
{
  return boxer_sse_begin (data);
}

static int
sink_output (void *data, long index, int stream, const char *bytes, size_t len)
{
  return boxer_sse_output (data, stream, index, bytes, len);
}

struct boxer_run_sink
boxer_sse_sink (struct boxer_sse *sse)
{
  return (struct boxer_run_sink) { sink_started, sink_output, sse };
}

int
boxer_sse_fail (struct boxer_sse *sse, struct boxer_http *http, struct boxer_error **err)
{
  http->status = 200;
  boxer_http_status ((*err)->category, &http->error_code);
  if (!sse->gone)
    {
      json_object *body = boxer_error_body (*err, http->request_id);
      boxer_sse_event (sse, "error", body);
      json_object_put (body);
    }
  else
    boxer_log_info ("streamed answer: %s", (*err)->msg);
  boxer_error_release (err);
  return 0;
}

void
boxer_sse_answer (struct boxer_sse *sse, bool streamed, json_object *result)
{
  if (!streamed)
    boxer_reply_json (sse->req, 200, result, NULL);
  else if ((sse->begun || boxer_sse_begin (sse) == 0) && boxer_sse_output_end (sse, -1) == 0)
    boxer_sse_event (sse, "result", result);
}

bool
boxer_sse_wanted (FCGX_Request *req, const char *media)
{
  const char *accept = FCGX_GetParam ("HTTP_ACCEPT", req->envp);
  size_t mlen = strlen (media);

  while (accept && *accept)
    {
      size_t n = strcspn (accept, ",");
      const char *end = accept + n, *p = accept, *q;

      while (p < end && (*p == ' ' || *p == '\t'))
        p++;
      if ((size_t) (end - p) >= mlen && strncasecmp (p, media, mlen) == 0
          && (p + mlen == end || p[mlen] == ';' || p[mlen] == ' ' || p[mlen] == '\t'))
        {
          /* "q=0" (or 0.0, 0.000) refuses it.  */
          q = strstr (p + mlen, "q=");
          if (q == NULL || q >= end || strspn (q + 2, "0.") < (size_t) (strcspn (q + 2, ",; \t")))
            return true;
        }
      accept = *end ? end + 1 : end;
    }
  return false;
}
