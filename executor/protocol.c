#include <config.h>

#include "protocol.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>

#include "common/json.h"
#include "common/log.h"
#include "common/paths.h"
#include "expiry.h"
#include "files.h"
#include "records.h"

/* Error categories on the wire, by name: a number would tie the protocol
   to the enum's order.  */
static const struct
{
  enum boxer_error_category category;
  const char *name;
} category_names[] = {
  { BOXER_ERR_INTERNAL, "internal" },
  { BOXER_ERR_INVALID, "invalid" },
  { BOXER_ERR_FORBIDDEN, "forbidden" },
  { BOXER_ERR_NOT_FOUND, "not_found" },
  { BOXER_ERR_IMAGE_NOT_FOUND, "image_not_found" },
  { BOXER_ERR_RUN_NOT_FOUND, "run_not_found" },
  { BOXER_ERR_FILE_NOT_FOUND, "file_not_found" },
  { BOXER_ERR_METHOD, "method" },
  { BOXER_ERR_TOO_LARGE, "too_large" },
  { BOXER_ERR_UNSUPPORTED_MEDIA, "unsupported_media" },
  { BOXER_ERR_REGISTRY, "registry" },
  { BOXER_ERR_BUSY, "busy" },
  { BOXER_ERR_RUNTIME, "runtime" },
  { BOXER_ERR_NO_SPACE, "no_space" },
  { BOXER_ERR_UNAUTHORIZED, "unauthorized" },
  { BOXER_ERR_TOO_MANY, "too_many" },
  { BOXER_ERR_SESSION_NOT_FOUND, "session_not_found" },
};

#define N_CATEGORIES (sizeof category_names / sizeof category_names[0])

static const char *const network_names[] = {
  [BOXER_NETWORK_NONE] = "none",
  [BOXER_NETWORK_SANDBOX] = "sandbox",
  [BOXER_NETWORK_HOST] = "host",
};

static int
bad (struct boxer_error **err, const char *what)
{
  return boxer_error_make (err, BOXER_ERR_INVALID, "protocol: %s", what);
}

/* Framing.  */

static size_t
base64_len (int64_t bytes)
{
  return 4 * ((size_t) bytes / 3 + 1);
}

size_t
boxer_proto_run_frame_max (const struct boxer_config *cfg)
{
  /* argv, env, the image's env, entrypoint and cmd, workdirs and file
     paths: each bounded in bytes, and at most six times that once JSON
     escapes a control character as \u00XX.  */
  size_t strings = 6 * (3 * (size_t) BOXER_RUN_CMD_MAX_BYTES + 2 * (size_t) BOXER_RUN_ENV_MAX_BYTES
                        + (BOXER_RUN_MAX_FILES + 2) * (size_t) BOXER_RUN_WORKDIR_MAX_BYTES);
  size_t n = base64_len (cfg->upload_limit_bytes) + strings + 64 * 1024;

  return n < BOXER_PROTO_FRAME_MAX ? n : BOXER_PROTO_FRAME_MAX;
}

size_t
boxer_proto_result_frame_max (const struct boxer_config *cfg)
{
  size_t n = 2 * base64_len (cfg->output_limit_bytes)
             + (size_t) cfg->outputs_limit_files * (6 * 4096 + 64) + 64 * 1024;

  return n < BOXER_PROTO_FRAME_MAX ? n : BOXER_PROTO_FRAME_MAX;
}

void
boxer_proto_reader_init (struct boxer_proto_reader *r, size_t max)
{
  memset (r, 0, sizeof *r);
  r->max = max;
  r->fd_received = -1;
}

void
boxer_proto_reader_release (struct boxer_proto_reader *r)
{
  free (r->body);
  if (r->fd_received >= 0)
    close (r->fd_received);
  boxer_proto_reader_init (r, r->max);
}

/* recvmsg () that takes at most one passed fd; more is an error (and
   closed), so a peer cannot fill our descriptor table.  */
static ssize_t
recv_some (struct boxer_proto_reader *r, int fd, void *buf, size_t len, struct boxer_error **err)
{
  union
  {
    struct cmsghdr align;
    char buf[CMSG_SPACE (4 * sizeof (int))];
  } ctl;
  struct iovec iov = { .iov_base = buf, .iov_len = len };
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                       .msg_controllen = sizeof ctl.buf };
  bool extra = false;
  ssize_t n;

  do
    n = recvmsg (fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    {
      if (errno == EAGAIN)
        return 0;
      return boxer_error_errno (err, errno, "protocol: receive");
    }
  for (struct cmsghdr *c = CMSG_FIRSTHDR (&mh); c; c = CMSG_NXTHDR (&mh, c))
    {
      size_t nfd;
      int *fds;

      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
        continue;
      nfd = (c->cmsg_len - CMSG_LEN (0)) / sizeof (int);
      fds = (int *) CMSG_DATA (c);
      for (size_t i = 0; i < nfd; i++)
        {
          if (r->fd_received < 0 && r->have == 0 && i == 0)
            r->fd_received = fds[i];
          else
            {
              close (fds[i]);
              extra = true;
            }
        }
    }
  if (mh.msg_flags & MSG_CTRUNC)
    extra = true;
  if (extra)
    return bad (err, "more than one file descriptor, or one not with a frame's first byte");
  if (n == 0)
    {
      if (r->have == 0)
        return boxer_error_make (err, BOXER_ERR_RUNTIME, "closed");
      return bad (err, "the peer closed the connection in the middle of a frame");
    }
  return n;
}

int
boxer_proto_reader_feed (struct boxer_proto_reader *r, int fd, struct boxer_error **err)
{
  for (;;)
    {
      ssize_t n;

      if (r->have < 4)
        {
          n = recv_some (r, fd, r->head + r->have, 4 - r->have, err);
          if (n <= 0)
            return (int) n;
          r->have += n;
          if (r->have < 4)
            continue;
          r->len = ((size_t) r->head[0] << 24) | ((size_t) r->head[1] << 16)
                   | ((size_t) r->head[2] << 8) | r->head[3];
          if (r->len == 0 || r->len > r->max)
            return boxer_error_make (err, BOXER_ERR_INVALID,
                                     "protocol: a frame of %zu bytes (1 to %zu allowed)", r->len,
                                     r->max);
          r->body = malloc (r->len + 1);
          if (r->body == NULL)
            return boxer_error_errno (err, ENOMEM, "protocol: a frame of %zu bytes", r->len);
        }
      if (r->have == 4 + r->len)
        {
          r->body[r->len] = '\0';
          return 1;
        }
      n = recv_some (r, fd, r->body + (r->have - 4), 4 + r->len - r->have, err);
      if (n <= 0)
        return (int) n;
      r->have += n;
    }
}

int
boxer_proto_reader_take (struct boxer_proto_reader *r, json_object **msg, int *fd_out,
                         struct boxer_error **err)
{
  json_tokener *tok = json_tokener_new_ex (16);
  json_object *obj;
  enum json_tokener_error jerr;
  int ret = -1;

  *msg = NULL;
  if (fd_out)
    *fd_out = -1;
  if (tok == NULL)
    return boxer_error_errno (err, ENOMEM, "json_tokener_new");
  obj = json_tokener_parse_ex (tok, r->body, (int) r->len);
  jerr = json_tokener_get_error (tok);
  if (obj == NULL || jerr != json_tokener_success
      || json_tokener_get_parse_end (tok) != r->len)
    {
      bad (err, "a frame that is not one JSON value");
      json_object_put (obj);
    }
  else if (!json_object_is_type (obj, json_type_object))
    {
      bad (err, "a frame that is not a JSON object");
      json_object_put (obj);
    }
  else
    {
      *msg = obj;
      if (fd_out)
        {
          *fd_out = r->fd_received;
          r->fd_received = -1;
        }
      ret = 0;
    }
  json_tokener_free (tok);
  boxer_proto_reader_release (r);
  return ret;
}

int
boxer_proto_recv (int fd, size_t max, int timeout_ms, json_object **msg, int *fd_out,
                  struct boxer_error **err)
{
  struct boxer_proto_reader r;
  long long deadline = timeout_ms < 0 ? -1 : boxer_now_ms () + timeout_ms;
  int ret;

  boxer_proto_reader_init (&r, max);
  for (;;)
    {
      struct pollfd p = { .fd = fd, .events = POLLIN };
      long long left = deadline < 0 ? -1 : deadline - boxer_now_ms ();

      ret = boxer_proto_reader_feed (&r, fd, err);
      if (ret != 0)
        break;
      if (deadline >= 0 && left <= 0)
        {
          ret = boxer_error_make (err, BOXER_ERR_INVALID, "protocol: a frame did not come in %d ms",
                                  timeout_ms);
          break;
        }
      if (poll (&p, 1, (int) left) < 0 && errno != EINTR)
        {
          ret = boxer_error_errno (err, errno, "protocol: poll");
          break;
        }
    }
  if (ret < 0)
    {
      boxer_proto_reader_release (&r);
      return -1;
    }
  return boxer_proto_reader_take (&r, msg, fd_out, err);
}

int
boxer_proto_send (int fd, json_object *msg, int pass_fd, struct boxer_error **err)
{
  return boxer_proto_send_until (fd, msg, pass_fd, -1, err);
}

int
boxer_proto_send_until (int fd, json_object *msg, int pass_fd, long long deadline_ms,
                        struct boxer_error **err)
{
  size_t len;
  const char *text = json_object_to_json_string_length (msg, JSON_C_TO_STRING_PLAIN, &len);
  unsigned char head[4] = { len >> 24, len >> 16, len >> 8, len };
  union
  {
    struct cmsghdr align;
    char buf[CMSG_SPACE (sizeof (int))];
  } ctl;
  struct iovec iov[2] = { { head, 4 }, { (void *) text, len } };
  struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
  size_t sent = 0;

  if (len == 0)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "protocol: an empty message");
  if (len > BOXER_PROTO_FRAME_MAX)
    return boxer_error_make (err, BOXER_ERR_TOO_LARGE,
                             "the run is too large to pass to the executor (%zu bytes encoded, "
                             "at most %zu); send less stdin", len, (size_t) BOXER_PROTO_FRAME_MAX);
  if (pass_fd >= 0)
    {
      struct cmsghdr *c;
      memset (&ctl, 0, sizeof ctl);
      mh.msg_control = ctl.buf;
      mh.msg_controllen = sizeof ctl.buf;
      c = CMSG_FIRSTHDR (&mh);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN (sizeof (int));
      memcpy (CMSG_DATA (c), &pass_fd, sizeof (int));
    }
  while (sent < 4 + len)
    {
      ssize_t n = sendmsg (fd, &mh, MSG_NOSIGNAL | (deadline_ms >= 0 ? MSG_DONTWAIT : 0));
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN)
            {
              struct pollfd p = { .fd = fd, .events = POLLOUT };
              long long wait = 1000;
              if (deadline_ms >= 0)
                {
                  wait = deadline_ms - boxer_now_ms ();
                  if (wait <= 0)
                    return boxer_error_make (err, BOXER_ERR_RUNTIME,
                                             "closed: the reader took nothing in time");
                }
              poll (&p, 1, wait > 1000 ? 1000 : (int) wait);
              continue;
            }
          if (errno == EPIPE || errno == ECONNRESET)
            return boxer_error_make (err, BOXER_ERR_RUNTIME, "closed");
          return boxer_error_errno (err, errno, "protocol: send");
        }
      sent += n;
      /* The fd went with the first bytes; the rest is plain data.  */
      mh.msg_control = NULL;
      mh.msg_controllen = 0;
      while (n > 0 && mh.msg_iovlen > 0)
        {
          size_t take = (size_t) n < mh.msg_iov->iov_len ? (size_t) n : mh.msg_iov->iov_len;
          mh.msg_iov->iov_base = (char *) mh.msg_iov->iov_base + take;
          mh.msg_iov->iov_len -= take;
          n -= take;
          if (mh.msg_iov->iov_len == 0)
            {
              mh.msg_iov++;
              mh.msg_iovlen--;
            }
        }
    }
  return 0;
}

/* Fields.  */

const char *
boxer_proto_type (json_object *msg)
{
  json_object *v;

  if (msg == NULL || !json_object_object_get_ex (msg, "type", &v)
      || !json_object_is_type (v, json_type_string))
    return NULL;
  return json_object_get_string (v);
}

/* The field key of obj, of type want: 1 with *v set; 0 when it is absent
   or null and nullable may say so; else -1 (BOXER_ERR_INVALID).  */
static int
field (json_object *obj, const char *key, bool nullable, enum json_type want, const char *what,
       json_object **v, struct boxer_error **err)
{
  if (!json_object_object_get_ex (obj, key, v) || *v == NULL)
    {
      if (nullable)
        return 0;
      return boxer_error_make (err, BOXER_ERR_INVALID, "protocol: '%s' is missing", key);
    }
  if (!json_object_is_type (*v, want))
    return boxer_error_make (err, BOXER_ERR_INVALID, "protocol: '%s' must be %s", key, what);
  return 1;
}

/* A string field without NUL bytes, at most max bytes; NULL when absent
   or null and nullable.  */
static int
get_string (json_object *obj, const char *key, bool nullable, size_t max, const char **out,
            struct boxer_error **err)
{
  json_object *v;
  int r;

  *out = NULL;
  if ((r = field (obj, key, nullable, json_type_string, "a string", &v, err)) <= 0)
    return r;
  if ((size_t) json_object_get_string_len (v) > max)
    return boxer_error_make (err, BOXER_ERR_INVALID, "protocol: '%s' is longer than %zu bytes",
                             key, max);
  if (strlen (json_object_get_string (v)) != (size_t) json_object_get_string_len (v))
    return boxer_error_make (err, BOXER_ERR_INVALID, "protocol: '%s' holds a NUL byte", key);
  *out = json_object_get_string (v);
  return 0;
}

static int
get_int (json_object *obj, const char *key, int64_t lo, int64_t hi, int64_t *out,
         struct boxer_error **err)
{
  json_object *v;

  if (!json_object_object_get_ex (obj, key, &v) || !json_object_is_type (v, json_type_int))
    return boxer_error_make (err, BOXER_ERR_INVALID, "protocol: '%s' must be an integer", key);
  *out = json_object_get_int64 (v);
  if (*out < lo || *out > hi)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "protocol: '%s' is %" PRId64 ", outside %" PRId64 "..%" PRId64, key,
                             *out, lo, hi);
  return 0;
}

static int
get_bool (json_object *obj, const char *key, bool *out, struct boxer_error **err)
{
  json_object *v;

  if (!json_object_object_get_ex (obj, key, &v) || !json_object_is_type (v, json_type_boolean))
    return boxer_error_make (err, BOXER_ERR_INVALID, "protocol: '%s' must be a boolean", key);
  *out = json_object_get_boolean (v);
  return 0;
}

/* An array of at most max_n strings of at most max_bytes in all (NULs
   counted); each must contain '=' if env.  NULL when null and nullable.  */
static int
get_strv (json_object *obj, const char *key, bool nullable, size_t max_n, size_t max_bytes,
          bool env, char ***out, struct boxer_error **err)
{
  json_object *v;
  size_t n, total = 0;
  char **strv;
  int r;

  *out = NULL;
  if ((r = field (obj, key, nullable, json_type_array, "an array", &v, err)) <= 0)
    return r;
  n = json_object_array_length (v);
  if (n > max_n)
    return boxer_error_make (err, BOXER_ERR_INVALID, "protocol: '%s' has more than %zu entries",
                             key, max_n);
  strv = xmalloc0 ((n + 1) * sizeof *strv);
  for (size_t i = 0; i < n; i++)
    {
      json_object *s = json_object_array_get_idx (v, i);
      size_t len;

      if (!json_object_is_type (s, json_type_string))
        goto fail;
      len = (size_t) json_object_get_string_len (s);
      total += len + 1;
      if (total > max_bytes || strlen (json_object_get_string (s)) != len
          || (env && (len == 0 || json_object_get_string (s)[0] == '='
                      || strchr (json_object_get_string (s), '=') == NULL)))
        goto fail;
      strv[i] = xstrndup (json_object_get_string (s), len);
    }
  *out = strv;
  return 0;

fail:
  boxer_strv_free (strv);
  return boxer_error_make (err, BOXER_ERR_INVALID,
                           "protocol: '%s' holds a value that is not a string of the allowed form "
                           "and size", key);
}

static json_object *
base64_encode (const char *data, size_t len)
{
  size_t cap = 4 * ((len + 2) / 3) + 1;
  unsigned char *out = xmalloc (cap);
  int n = EVP_EncodeBlock (out, (const unsigned char *) data, (int) len);
  json_object *s = json_object_new_string_len ((const char *) out, n);

  free (out);
  return s;
}

/* Decode a base64 string field of at most max decoded bytes; absent or
   null is empty (*out NULL).  */
static int
get_base64 (json_object *obj, const char *key, size_t max, char **out, size_t *len_out,
            struct boxer_error **err)
{
  json_object *v;
  const char *s;
  size_t len, pad = 0;
  unsigned char *buf;
  int n;

  *out = NULL;
  *len_out = 0;
  if (!json_object_object_get_ex (obj, key, &v) || v == NULL)
    return 0;
  if (!json_object_is_type (v, json_type_string))
    return boxer_error_make (err, BOXER_ERR_INVALID, "protocol: '%s' must be a string", key);
  s = json_object_get_string (v);
  len = (size_t) json_object_get_string_len (v);
  if (len == 0)
    return 0;
  if (len % 4 != 0 || len / 4 * 3 > max + 2 || strlen (s) != len)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "protocol: '%s' is not base64 of at most %zu bytes", key, max);
  if (s[len - 1] == '=')
    pad++;
  if (s[len - 2] == '=')
    pad++;
  buf = xmalloc (len / 4 * 3 + 1);
  n = EVP_DecodeBlock (buf, (const unsigned char *) s, (int) len);
  if (n < 0 || (size_t) n < pad || (size_t) n - pad > max
      || memchr (s, '=', len - pad) != NULL)
    {
      free (buf);
      return boxer_error_make (err, BOXER_ERR_INVALID, "protocol: '%s' is not base64 of at most "
                               "%zu bytes", key, max);
    }
  *len_out = (size_t) n - pad;
  buf[*len_out] = '\0';
  *out = (char *) buf;
  return 0;
}

/* Messages.  */

/* The exchanges a connection may open with.  */
static const char *const open_types[] = { "run", "hello", "report", "metrics", "session" };

json_object *
boxer_proto_open (const char *type, const char *key)
{
  json_object *o = json_object_new_object ();

  json_object_object_add (o, "type", json_object_new_string (type));
  json_object_object_add (o, "version", json_object_new_int (BOXER_PROTO_VERSION));
  if (key)
    json_object_object_add (o, "key", json_object_new_string (key));
  return o;
}

int
boxer_proto_decode_open (json_object *msg, const char **type_out, const char **key_out,
                         struct boxer_error **err)
{
  const char *type = boxer_proto_type (msg);
  int64_t version;

  if (get_int (msg, "version", 0, INT32_MAX, &version, err) < 0
      || get_string (msg, "key", true, BOXER_API_KEY_NAME_MAX, key_out, err) < 0)
    return -1;
  if (version != BOXER_PROTO_VERSION)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "protocol: version %" PRId64 " (this executor speaks %d); restart the "
                             "workers and the executor from the same build", version,
                             BOXER_PROTO_VERSION);
  for (size_t i = 0; i < sizeof open_types / sizeof open_types[0]; i++)
    if (type && strcmp (type, open_types[i]) == 0)
      {
        *type_out = open_types[i];
        return 0;
      }
  return bad (err, "the first message must be of type \"run\", \"hello\", \"report\", "
                   "\"metrics\" or \"session\"");
}

static bool digest_is_valid (const char *d);

const char *
boxer_proto_network_name (enum boxer_network network)
{
  return network_names[network];
}

/* enum boxer_network of name, or -1.  */
static int
network_of (const char *name)
{
  for (size_t i = 0; i < sizeof network_names / sizeof network_names[0]; i++)
    if (strcmp (name, network_names[i]) == 0)
      return (int) i;
  return -1;
}

json_object *
boxer_proto_open_run (const char *key, const char *image, const char *digest,
                      enum boxer_network network)
{
  json_object *o = boxer_proto_open ("run", key);

  json_object_object_add (o, "image", json_object_new_string (image));
  json_object_object_add (o, "digest", json_object_new_string (digest));
  json_object_object_add (o, "network", json_object_new_string (network_names[network]));
  return o;
}

int
boxer_proto_decode_run_hint (json_object *msg, const char **image_out, const char **digest_out,
                             int *network_out, struct boxer_error **err)
{
  const char *network = NULL;

  *image_out = *digest_out = NULL;
  *network_out = -1;
  if (get_string (msg, "image", true, BOXER_RUN_IMAGE_MAX_BYTES, image_out, err) < 0
      || get_string (msg, "digest", true, 80, digest_out, err) < 0
      || get_string (msg, "network", true, 16, &network, err) < 0)
    return -1;
  if (*digest_out && !digest_is_valid (*digest_out))
    return boxer_error_make (err, BOXER_ERR_INVALID, "protocol: 'digest' is not a sha256 digest");
  if (network && (*network_out = network_of (network)) < 0)
    return boxer_error_make (err, BOXER_ERR_INVALID, "protocol: an unknown 'network'");
  return 0;
}

json_object *
boxer_proto_encode_report (const struct boxer_proto_report *r)
{
  json_object *o = boxer_proto_open ("report", NULL);

  json_object_object_add (o, "status", json_object_new_int (r->status));
  if (r->run_error)
    json_object_object_add (o, "run_error", json_object_new_string (r->run_error));
  json_object_object_add (o, "pull_ms", json_object_new_int64 (r->pull_ms));
  json_object_object_add (o, "pulled_bytes", json_object_new_int64 (r->pulled_bytes));
  return o;
}

int
boxer_proto_decode_report (json_object *msg, struct boxer_proto_report *out,
                           struct boxer_error **err)
{
  int64_t status;

  memset (out, 0, sizeof *out);
  if (get_int (msg, "status", 100, 599, &status, err) < 0
      || get_string (msg, "run_error", true, 31, &out->run_error, err) < 0
      || get_int (msg, "pull_ms", -1, INT32_MAX, &out->pull_ms, err) < 0
      || get_int (msg, "pulled_bytes", 0, INT64_MAX, &out->pulled_bytes, err) < 0)
    return -1;
  out->status = (int) status;
  return 0;
}

json_object *
boxer_proto_encode_metrics (const char *text)
{
  json_object *o = json_object_new_object ();

  json_object_object_add (o, "type", json_object_new_string ("metrics"));
  json_object_object_add (o, "text", json_object_new_string (text));
  return o;
}

int
boxer_proto_decode_metrics (json_object *msg, const char **text_out, struct boxer_error **err)
{
  if (boxer_proto_expect (msg, "metrics", err) < 0)
    return -1;
  return get_string (msg, "text", false, BOXER_PROTO_METRICS_MAX, text_out, err);
}

json_object *
boxer_proto_error (const struct boxer_error *e)
{
  json_object *o = json_object_new_object ();
  const char *name = "internal";

  for (size_t i = 0; i < N_CATEGORIES; i++)
    if (category_names[i].category == e->category)
      name = category_names[i].name;
  json_object_object_add (o, "type", json_object_new_string ("error"));
  json_object_object_add (o, "category", json_object_new_string (name));
  json_object_object_add (o, "message", json_object_new_string (e->msg ? e->msg : ""));
  return o;
}

int
boxer_proto_expect (json_object *msg, const char *want, struct boxer_error **err)
{
  const char *type = boxer_proto_type (msg);
  const char *cat, *text;

  if (type && strcmp (type, want) == 0)
    return 0;
  if (type == NULL || strcmp (type, "error") != 0)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "executor: a message of type '%s' where "
                             "'%s' was expected", type ? type : "(none)", want);
  if (get_string (msg, "category", false, 64, &cat, err) < 0
      || get_string (msg, "message", false, 64 * 1024, &text, err) < 0)
    return boxer_error_wrap (err, "executor");
  for (size_t i = 0; i < N_CATEGORIES; i++)
    if (strcmp (category_names[i].name, cat) == 0)
      return boxer_error_make (err, category_names[i].category, "%s", text);
  return boxer_error_make (err, BOXER_ERR_INTERNAL, "executor: %s", text);
}

json_object *
boxer_proto_encode_hello (const struct boxer_proto_hello *h)
{
  json_object *o = json_object_new_object ();

  json_object_object_add (o, "type", json_object_new_string ("hello"));
  json_object_object_add (o, "runsc_version", json_object_new_string (h->runsc_version));
  json_object_object_add (o, "platform", json_object_new_string (h->platform));
  json_object_object_add (o, "cgroup", json_object_new_string (h->cgroup));
  json_object_object_add (o, "running", json_object_new_int64 (h->running));
  json_object_object_add (o, "queued", json_object_new_int64 (h->queued));
  json_object_object_add (o, "max_concurrent_runs", json_object_new_int64 (h->max_concurrent_runs));
  json_object_object_add (o, "max_queued_runs", json_object_new_int64 (h->max_queued_runs));
  json_object_object_add (o, "sessions", json_object_new_int64 (h->sessions));
  return o;
}

int
boxer_proto_decode_hello (json_object *msg, struct boxer_proto_hello *out,
                          struct boxer_error **err)
{
  const char *version, *platform, *cgroup;
  json_object *pool;

  memset (out, 0, sizeof *out);
  if (boxer_proto_expect (msg, "hello", err) < 0
      || get_string (msg, "runsc_version", false, 256, &version, err) < 0
      || get_string (msg, "platform", false, 64, &platform, err) < 0
      || get_string (msg, "cgroup", false, 64, &cgroup, err) < 0
      || get_int (msg, "running", 0, INT64_MAX, &out->running, err) < 0
      || get_int (msg, "queued", 0, INT64_MAX, &out->queued, err) < 0
      || get_int (msg, "max_concurrent_runs", 0, INT64_MAX, &out->max_concurrent_runs, err) < 0
      || get_int (msg, "max_queued_runs", 0, INT64_MAX, &out->max_queued_runs, err) < 0
      || get_int (msg, "sessions", 0, INT64_MAX, &out->sessions, err) < 0)
    return -1;
  out->runsc_version = xstrdup (version);
  out->platform = xstrdup (platform);
  out->cgroup = xstrdup (cgroup);
  if (json_object_object_get_ex (msg, "warm_pool", &pool))
    {
      size_t n;
      if (!json_object_is_type (pool, json_type_array)
          || (n = json_object_array_length (pool)) > BOXER_WARM_POOL_MAX_ENTRIES)
        goto bad;
      out->warm_pool = xmalloc0 ((n + 1) * sizeof *out->warm_pool);
      for (size_t i = 0; i < n; i++)
        {
          json_object *e = json_object_array_get_idx (pool, i);
          struct boxer_proto_warm *w = &out->warm_pool[i];
          const char *image, *network;
          if (!json_object_is_type (e, json_type_object)
              || get_string (e, "image", false, BOXER_RUN_IMAGE_MAX_BYTES, &image, err) < 0
              || get_string (e, "network", false, 16, &network, err) < 0
              || get_int (e, "size", 0, BOXER_WARM_POOL_MAX_SIZE, &w->size, err) < 0
              || get_int (e, "ready", 0, BOXER_WARM_POOL_MAX_SIZE, &w->ready, err) < 0)
            goto bad;
          w->image = xstrdup (image);
          w->network = xstrdup (network);
          out->n_warm_pool = i + 1;
        }
    }
  return 0;

bad:
  boxer_proto_hello_release (out);
  if (err && *err == NULL)
    boxer_error_make (err, BOXER_ERR_INVALID, "protocol: a malformed 'warm_pool'");
  return -1;
}

void
boxer_proto_hello_release (struct boxer_proto_hello *h)
{
  free (h->runsc_version);
  free (h->platform);
  free (h->cgroup);
  for (size_t i = 0; i < h->n_warm_pool; i++)
    {
      free (h->warm_pool[i].image);
      free (h->warm_pool[i].network);
    }
  free (h->warm_pool);
  memset (h, 0, sizeof *h);
}

/* Run.  */

static json_object *encode_image (const struct boxer_image *image);

/* cmd, env, workdir, stdin and files into o.  */
static void
encode_program (json_object *o, const struct boxer_run_request *req)
{
  json_object *files = json_object_new_array ();

  json_object_object_add (o, "cmd", boxer_json_strv (req->cmd));
  json_object_object_add (o, "env", boxer_json_strv (req->env));
  json_object_object_add (o, "workdir", boxer_json_string_or_null (req->workdir));
  json_object_object_add (o, "stdin", base64_encode (req->stdin_data ? req->stdin_data : "",
                                                     req->stdin_len));
  for (size_t i = 0; i < req->nfiles; i++)
    {
      json_object *f = json_object_new_object ();
      json_object_object_add (f, "id", json_object_new_string (req->files[i].id));
      json_object_object_add (f, "path", json_object_new_string (req->files[i].path));
      json_object_array_add (files, f);
    }
  json_object_object_add (o, "files", files);
}

static json_object *
encode_limits (const struct boxer_limits *l)
{
  json_object *lim = json_object_new_object ();

  json_object_object_add (lim, "cpu_cores", json_object_new_double (l->cpu_cores));
  json_object_object_add (lim, "memory_mb", json_object_new_int64 (l->memory_mb));
  json_object_object_add (lim, "wall_clock_secs", json_object_new_int64 (l->wall_clock_secs));
  json_object_object_add (lim, "pids_limit", json_object_new_int64 (l->pids_limit));
  json_object_object_add (lim, "nofile", json_object_new_int64 (l->nofile));
  return lim;
}

/* image, limits and network into o.  */
static void
encode_sandbox (json_object *o, const struct boxer_run_request *req)
{
  json_object_object_add (o, "image", json_object_new_string (req->image));
  json_object_object_add (o, "limits", encode_limits (&req->limits));
  json_object_object_add (o, "network", json_object_new_string (network_names[req->network]));
}

json_object *
boxer_proto_encode_run (const char *id, const struct boxer_run_request *req,
                        const struct boxer_image *image, bool stream)
{
  json_object *o = json_object_new_object ();
  json_object *r = json_object_new_object ();

  json_object_object_add (o, "type", json_object_new_string ("run"));
  json_object_object_add (o, "id", json_object_new_string (id));
  if (stream)
    json_object_object_add (o, "stream", json_object_new_boolean (true));
  encode_sandbox (r, req);
  encode_program (r, req);
  json_object_object_add (o, "request", r);
  json_object_object_add (o, "image", encode_image (image));
  return o;
}

static int
decode_limits (json_object *obj, const struct boxer_config *cfg, struct boxer_limits *out,
               struct boxer_error **err)
{
  const struct boxer_limits *lo = &boxer_limits_floor, *hi = &cfg->max_limits;
  json_object *v;

  if (!json_object_is_type (obj, json_type_object))
    return bad (err, "'limits' must be an object");
  if (!json_object_object_get_ex (obj, "cpu_cores", &v)
      || !(json_object_is_type (v, json_type_double) || json_object_is_type (v, json_type_int)))
    return bad (err, "'cpu_cores' must be a number");
  out->cpu_cores = json_object_get_double (v);
  if (!(out->cpu_cores >= lo->cpu_cores && out->cpu_cores <= hi->cpu_cores))
    return bad (err, "'cpu_cores' is outside the configured bounds");
  return get_int (obj, "memory_mb", lo->memory_mb, hi->memory_mb, &out->memory_mb, err) < 0
           || get_int (obj, "wall_clock_secs", lo->wall_clock_secs, hi->wall_clock_secs,
                       &out->wall_clock_secs, err) < 0
           || get_int (obj, "pids_limit", lo->pids_limit, hi->pids_limit, &out->pids_limit, err) < 0
           || get_int (obj, "nofile", lo->nofile, hi->nofile, &out->nofile, err) < 0
           ? -1 : 0;
}

static int
decode_files (json_object *obj, struct boxer_run_request *req, struct boxer_error **err)
{
  size_t n;

  if (obj == NULL)
    return 0;
  if (!json_object_is_type (obj, json_type_array))
    return bad (err, "'files' must be an array");
  n = json_object_array_length (obj);
  if (n > BOXER_RUN_MAX_FILES)
    return bad (err, "too many 'files'");
  req->files = xmalloc0 ((n ? n : 1) * sizeof *req->files);
  for (size_t i = 0; i < n; i++)
    {
      json_object *f = json_object_array_get_idx (obj, i);
      const char *id, *path;

      if (!json_object_is_type (f, json_type_object))
        return bad (err, "a 'files' entry must be an object");
      if (get_string (f, "id", false, 64, &id, err) < 0
          || get_string (f, "path", false, BOXER_RUN_WORKDIR_MAX_BYTES, &path, err) < 0)
        return -1;
      if (!boxer_files_id_is_valid (id))
        return bad (err, "a 'files' entry with a malformed id");
      if (boxer_paths_check_destination (path, strlen (path), "a file's path", err) < 0)
        return -1;
      for (size_t j = 0; j < i; j++)
        if (strcmp (req->files[j].path, path) == 0)
          return bad (err, "two 'files' entries with the same path");
      req->files[i].id = xstrdup (id);
      req->files[i].path = xstrdup (path);
      req->nfiles = i + 1;
    }
  return 0;
}

static bool
digest_is_valid (const char *d)
{
  return strncmp (d, "sha256:", 7) == 0 && strlen (d + 7) == 64
         && strspn (d + 7, "0123456789abcdef") == 64;
}

/* What a run does: cmd, env, workdir, stdin and files (a run's, or one
   run of a batch).  */
static int
decode_program (json_object *r, const struct boxer_config *cfg, struct boxer_run_request *req,
                struct boxer_error **err)
{
  const char *s;
  json_object *v = NULL;

  if (get_strv (r, "cmd", true, BOXER_RUN_CMD_MAX_ARGS, BOXER_RUN_CMD_MAX_BYTES, false, &req->cmd,
                err) < 0
      || get_strv (r, "env", true, BOXER_RUN_ENV_MAX_ENTRIES, BOXER_RUN_ENV_MAX_BYTES, true,
                   &req->env, err) < 0)
    return -1;
  if (req->cmd && (req->cmd[0] == NULL || req->cmd[0][0] == '\0'))
    return bad (err, "'cmd' must name a program");
  if (get_string (r, "workdir", true, BOXER_RUN_WORKDIR_MAX_BYTES, &s, err) < 0)
    return -1;
  if (s)
    {
      if (s[0] != '/')
        return bad (err, "'workdir' must be absolute");
      req->workdir = xstrdup (s);
    }
  if (get_base64 (r, "stdin", (size_t) cfg->upload_limit_bytes, &req->stdin_data, &req->stdin_len,
                  err) < 0)
    return -1;
  json_object_object_get_ex (r, "files", &v);
  return decode_files (v, req, err);
}

/* The sandbox's: image, limits, network.  */
static int
decode_sandbox (json_object *r, const struct boxer_config *cfg, struct boxer_run_request *req,
                struct boxer_error **err)
{
  const char *s, *net;
  json_object *v;
  int n;

  if (get_string (r, "image", false, BOXER_RUN_IMAGE_MAX_BYTES, &s, err) < 0)
    return -1;
  req->image = xstrdup (s);
  if (!json_object_object_get_ex (r, "limits", &v)
      || decode_limits (v, cfg, &req->limits, err) < 0)
    return boxer_error_make (err, BOXER_ERR_INVALID, "protocol: 'limits' missing or out of bounds");
  if (get_string (r, "network", false, 16, &net, err) < 0)
    return -1;
  if ((n = network_of (net)) < 0)
    return bad (err, "an unknown 'network'");
  req->network = (enum boxer_network) n;
  if (req->network == BOXER_NETWORK_HOST && !cfg->allow_host_network)
    return boxer_error_make (err, BOXER_ERR_FORBIDDEN,
                             "network 'host' is not allowed by this server's configuration");
  return 0;
}

static int
decode_image (json_object *msg, struct boxer_proto_image *img, struct boxer_error **err)
{
  json_object *im;
  const char *s;

  if (!json_object_object_get_ex (msg, "image", &im) || !json_object_is_type (im, json_type_object))
    return bad (err, "'image' must be an object");
  if (get_string (im, "digest", false, 80, &s, err) < 0)
    return -1;
  if (!digest_is_valid (s))
    return bad (err, "a malformed image digest");
  img->digest = xstrdup (s);
  if (get_strv (im, "env", false, BOXER_RUN_ENV_MAX_ENTRIES, BOXER_RUN_ENV_MAX_BYTES, false,
                &img->env, err) < 0
      || get_strv (im, "entrypoint", true, BOXER_RUN_CMD_MAX_ARGS, BOXER_RUN_CMD_MAX_BYTES, false,
                   &img->entrypoint, err) < 0
      || get_strv (im, "cmd", true, BOXER_RUN_CMD_MAX_ARGS, BOXER_RUN_CMD_MAX_BYTES, false,
                   &img->cmd, err) < 0
      || get_string (im, "workdir", true, BOXER_RUN_WORKDIR_MAX_BYTES, &s, err) < 0)
    return -1;
  img->workdir = s ? xstrdup (s) : NULL;
  return 0;
}

static json_object *
encode_image (const struct boxer_image *image)
{
  json_object *img = json_object_new_object ();

  json_object_object_add (img, "digest", json_object_new_string (image->digest));
  json_object_object_add (img, "env", boxer_json_strv (image->env));
  json_object_object_add (img, "entrypoint", boxer_json_strv (image->entrypoint));
  json_object_object_add (img, "cmd", boxer_json_strv (image->cmd));
  json_object_object_add (img, "workdir", boxer_json_string_or_null (image->workdir));
  return img;
}

int
boxer_proto_decode_run (json_object *msg, const struct boxer_config *cfg,
                        struct boxer_proto_run *out, struct boxer_error **err)
{
  json_object *r;
  const char *id;

  memset (out, 0, sizeof *out);
  /* From a worker, anything out of order is the worker's error.  */
  if (boxer_proto_type (msg) == NULL || strcmp (boxer_proto_type (msg), "run") != 0)
    return bad (err, "a message that is not the run where the run was expected");
  if (get_string (msg, "id", false, sizeof out->id - 1, &id, err) < 0)
    return -1;
  if (!boxer_records_id_is_valid (id))
    return bad (err, "a malformed run id");
  strcpy (out->id, id);
  if (json_object_object_get_ex (msg, "stream", NULL)
      && get_bool (msg, "stream", &out->stream, err) < 0)
    return -1;

  if (!json_object_object_get_ex (msg, "request", &r) || !json_object_is_type (r, json_type_object))
    return bad (err, "'request' must be an object");
  if (decode_sandbox (r, cfg, &out->req, err) < 0 || decode_program (r, cfg, &out->req, err) < 0)
    return -1;
  return decode_image (msg, &out->image, err);
}

void
boxer_proto_run_release (struct boxer_proto_run *run)
{
  boxer_run_request_release (&run->req);
  free (run->image.digest);
  boxer_strv_free (run->image.env);
  boxer_strv_free (run->image.entrypoint);
  boxer_strv_free (run->image.cmd);
  free (run->image.workdir);
  memset (run, 0, sizeof *run);
}

/* Streaming: what a run's program writes, as it writes it.  */

static const char *const stream_names[] = { "stdout", "stderr" };

json_object *
boxer_proto_encode_started (void)
{
  json_object *o = json_object_new_object ();

  json_object_object_add (o, "type", json_object_new_string ("started"));
  return o;
}

json_object *
boxer_proto_encode_output (long index, int stream, const char *data, size_t len)
{
  json_object *o = json_object_new_object ();

  json_object_object_add (o, "type", json_object_new_string ("output"));
  if (index >= 0)
    json_object_object_add (o, "index", json_object_new_int64 (index));
  json_object_object_add (o, "stream", json_object_new_string (stream_names[stream != 0]));
  json_object_object_add (o, "data", base64_encode (data, len));
  return o;
}

int
boxer_proto_decode_output (json_object *msg, const struct boxer_config *cfg, long *index_out,
                           int *stream_out, char **data_out, size_t *len_out,
                           struct boxer_error **err)
{
  const char *name;
  int64_t index = -1;

  *data_out = NULL;
  *len_out = 0;
  if (json_object_object_get_ex (msg, "index", NULL)
      && get_int (msg, "index", 0, cfg->max_batch_runs - 1, &index, err) < 0)
    return -1;
  *index_out = (long) index;
  if (get_string (msg, "stream", false, 16, &name, err) < 0)
    return -1;
  if (strcmp (name, "stdout") != 0 && strcmp (name, "stderr") != 0)
    return bad (err, "an output of an unknown 'stream'");
  *stream_out = strcmp (name, "stderr") == 0;
  if (get_base64 (msg, "data", (size_t) cfg->output_limit_bytes, data_out, len_out, err) < 0)
    return -1;
  return 0;
}

/* The executor's side of a streamed run: its frames to the worker, each
   sent by a deadline.  */

#define STREAM_GRACE_MS 2000

static int
stream_send (struct boxer_proto_stream *s, json_object *msg)
{
  cleanup_error struct boxer_error *err = NULL;
  int r;

  if (s->per_frame)
    s->deadline_ms = boxer_now_ms () + s->wall_ms + STREAM_GRACE_MS;
  r = boxer_proto_send_until (s->fd, msg, -1, s->deadline_ms, &err);
  json_object_put (msg);
  if (r < 0)
    boxer_log_info ("streaming to the worker: %s", err->msg);
  return r;
}

static int
stream_started (void *data)
{
  struct boxer_proto_stream *s = data;

  s->deadline_ms = boxer_now_ms () + s->wall_ms + STREAM_GRACE_MS;
  return stream_send (s, boxer_proto_encode_started ());
}

static int
stream_output (void *data, long index, int stream, const char *bytes, size_t len)
{
  return stream_send (data, boxer_proto_encode_output (index, stream, bytes, len));
}

struct boxer_run_sink
boxer_proto_stream_sink (struct boxer_proto_stream *s)
{
  return (struct boxer_run_sink) { stream_started, stream_output, s };
}

/* Result.  */

json_object *
boxer_proto_encode_result (const struct boxer_run_result *res)
{
  json_object *o = json_object_new_object ();
  json_object *outs = json_object_new_array ();

  json_object_object_add (o, "type", json_object_new_string ("result"));
  json_object_object_add (o, "id", json_object_new_string (res->id));
  json_object_object_add (o, "exit_code", json_object_new_int (res->exit_code));
  json_object_object_add (o, "signal", json_object_new_int (res->signal));
  json_object_object_add (o, "timed_out", json_object_new_boolean (res->timed_out));
  json_object_object_add (o, "oom_killed", json_object_new_boolean (res->oom_killed));
  json_object_object_add (o, "stdout", base64_encode (res->stdout_data ? res->stdout_data : "",
                                                      res->stdout_len));
  json_object_object_add (o, "stdout_truncated", json_object_new_boolean (res->stdout_truncated));
  json_object_object_add (o, "stderr", base64_encode (res->stderr_data ? res->stderr_data : "",
                                                      res->stderr_len));
  json_object_object_add (o, "stderr_truncated", json_object_new_boolean (res->stderr_truncated));
  json_object_object_add (o, "wall_ms", json_object_new_int64 (res->wall_ms));
  json_object_object_add (o, "memory_peak_bytes", json_object_new_int64 (res->memory_peak_bytes));
  json_object_object_add (o, "started_at", json_object_new_int64 (res->started_at));
  json_object_object_add (o, "finished_at", json_object_new_int64 (res->finished_at));
  for (size_t i = 0; i < res->noutputs; i++)
    {
      json_object *f = json_object_new_object ();
      json_object_object_add (f, "path", json_object_new_string (res->outputs[i].path));
      json_object_object_add (f, "size", json_object_new_int64 (res->outputs[i].size));
      json_object_array_add (outs, f);
    }
  json_object_object_add (o, "outputs", outs);
  json_object_object_add (o, "outputs_truncated", json_object_new_boolean (res->outputs_truncated));
  return o;
}

int
boxer_proto_decode_result (json_object *msg, const struct boxer_config *cfg,
                           struct boxer_run_result *out, struct boxer_error **err)
{
  const char *id;
  int64_t v;
  json_object *outs;
  size_t n;

  memset (out, 0, sizeof *out);
  if (boxer_proto_expect (msg, "result", err) < 0)
    return -1;
  if (get_string (msg, "id", false, sizeof out->id - 1, &id, err) < 0)
    goto fail;
  strcpy (out->id, id);
  if (get_int (msg, "exit_code", 0, 255, &v, err) < 0)
    goto fail;
  out->exit_code = (int) v;
  if (get_int (msg, "signal", 0, 64, &v, err) < 0)
    goto fail;
  out->signal = (int) v;
  if (get_bool (msg, "timed_out", &out->timed_out, err) < 0
      || get_bool (msg, "oom_killed", &out->oom_killed, err) < 0
      || get_base64 (msg, "stdout", (size_t) cfg->output_limit_bytes, &out->stdout_data,
                     &out->stdout_len, err) < 0
      || get_bool (msg, "stdout_truncated", &out->stdout_truncated, err) < 0
      || get_base64 (msg, "stderr", (size_t) cfg->output_limit_bytes, &out->stderr_data,
                     &out->stderr_len, err) < 0
      || get_bool (msg, "stderr_truncated", &out->stderr_truncated, err) < 0
      || get_int (msg, "wall_ms", 0, INT64_MAX, &out->wall_ms, err) < 0
      || get_int (msg, "memory_peak_bytes", -1, INT64_MAX, &out->memory_peak_bytes, err) < 0
      || get_int (msg, "started_at", 0, INT64_MAX, &v, err) < 0)
    goto fail;
  out->started_at = v;
  if (get_int (msg, "finished_at", 0, INT64_MAX, &v, err) < 0
      || get_bool (msg, "outputs_truncated", &out->outputs_truncated, err) < 0)
    goto fail;
  out->finished_at = v;
  if (out->stdout_data == NULL)
    out->stdout_data = xstrdup ("");
  if (out->stderr_data == NULL)
    out->stderr_data = xstrdup ("");
  if (!json_object_object_get_ex (msg, "outputs", &outs)
      || !json_object_is_type (outs, json_type_array))
    {
      bad (err, "'outputs' must be an array");
      goto fail;
    }
  n = json_object_array_length (outs);
  if (n > (size_t) cfg->outputs_limit_files)
    {
      bad (err, "more 'outputs' than outputs_limit_files");
      goto fail;
    }
  out->outputs = n ? xmalloc0 (n * sizeof *out->outputs) : NULL;
  for (size_t i = 0; i < n; i++)
    {
      json_object *f = json_object_array_get_idx (outs, i);
      const char *path;

      if (!json_object_is_type (f, json_type_object)
          || get_string (f, "path", false, 4096, &path, err) < 0
          || get_int (f, "size", 0, INT64_MAX, &out->outputs[i].size, err) < 0)
        {
          if (err && *err == NULL)
            bad (err, "an 'outputs' entry must be an object");
          goto fail;
        }
      out->outputs[i].path = xstrdup (path);
      out->noutputs = i + 1;
    }
  return 0;

fail:
  boxer_run_result_release (out);
  return -1;
}

/* Batch.  */

size_t
boxer_proto_batch_frame_max (const struct boxer_config *cfg)
{
  /* The client's body is at most upload_limit_bytes: its strings, escaped
     again (six times at worst) or as base64, and a few fields per run.  */
  size_t n = 6 * (size_t) cfg->upload_limit_bytes + (size_t) cfg->max_batch_runs * 512
             + boxer_proto_run_frame_max (cfg);

  return n < BOXER_PROTO_FRAME_MAX ? n : BOXER_PROTO_FRAME_MAX;
}

json_object *
boxer_proto_encode_batch (const char *id, const struct boxer_batch_request *b,
                          const struct boxer_image *image, bool stream)
{
  json_object *o = json_object_new_object ();
  json_object *r = json_object_new_object ();
  json_object *runs = json_object_new_array ();

  json_object_object_add (o, "type", json_object_new_string ("batch"));
  json_object_object_add (o, "id", json_object_new_string (id));
  if (stream)
    json_object_object_add (o, "stream", json_object_new_boolean (true));
  json_object_object_add (o, "parallelism", json_object_new_int64 (b->parallelism));
  encode_sandbox (r, &b->req);
  json_object_object_add (o, "request", r);
  for (size_t i = 0; i < b->nruns; i++)
    {
      json_object *run = json_object_new_object ();
      json_object *lim = json_object_new_object ();
      encode_program (run, &b->runs[i]);
      json_object_object_add (lim, "wall_clock_secs",
                              json_object_new_int64 (b->runs[i].limits.wall_clock_secs));
      json_object_object_add (lim, "memory_mb",
                              json_object_new_int64 (b->runs[i].limits.memory_mb));
      json_object_object_add (run, "limits", lim);
      json_object_array_add (runs, run);
    }
  json_object_object_add (o, "runs", runs);
  json_object_object_add (o, "image", encode_image (image));
  return o;
}

static int
decode_batch_run (json_object *run, const struct boxer_config *cfg, struct boxer_run_request *req,
                  struct boxer_error **err)
{
  json_object *lim;

  if (!json_object_is_type (run, json_type_object))
    return bad (err, "a batch's run must be an object");
  if (decode_program (run, cfg, req, err) < 0)
    return -1;
  if (!json_object_object_get_ex (run, "limits", &lim) || !json_object_is_type (lim, json_type_object)
      || get_int (lim, "wall_clock_secs", boxer_limits_floor.wall_clock_secs,
                  cfg->max_limits.wall_clock_secs, &req->limits.wall_clock_secs, err) < 0
      || get_int (lim, "memory_mb", boxer_limits_floor.memory_mb, cfg->max_limits.memory_mb,
                  &req->limits.memory_mb, err) < 0)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "protocol: a batch run's 'limits' missing or out of bounds");
  for (size_t k = 0; k < req->nfiles; k++)
    if (boxer_batch_path_is_private (req->files[k].path))
      return bad (err, "a batch run's file in a directory each run has fresh");
  return 0;
}

int
boxer_proto_decode_batch (json_object *msg, const struct boxer_config *cfg,
                          struct boxer_proto_batch *out, struct boxer_error **err)
{
  struct boxer_batch_request *b = &out->batch;
  json_object *r, *runs;
  const char *id;
  size_t n;

  memset (out, 0, sizeof *out);
  if (boxer_proto_type (msg) == NULL || strcmp (boxer_proto_type (msg), "batch") != 0)
    return bad (err, "a message that is not the batch where the batch was expected");
  if (get_string (msg, "id", false, sizeof out->id - 1, &id, err) < 0)
    return -1;
  if (!boxer_expiry_id_is_valid (id, BOXER_BATCH_ID_PREFIX, BOXER_BATCH_ID_HEX))
    return bad (err, "a malformed batch id");
  strcpy (out->id, id);
  if (json_object_object_get_ex (msg, "stream", NULL)
      && get_bool (msg, "stream", &out->stream, err) < 0)
    return -1;
  if (get_int (msg, "parallelism", 1, BOXER_BATCH_MAX_PARALLELISM, &b->parallelism, err) < 0)
    return -1;
  if (!json_object_object_get_ex (msg, "request", &r) || !json_object_is_type (r, json_type_object))
    return bad (err, "'request' must be an object");
  if (decode_sandbox (r, cfg, &b->req, err) < 0)
    return -1;
  if (!json_object_object_get_ex (msg, "runs", &runs) || !json_object_is_type (runs, json_type_array))
    return bad (err, "'runs' must be an array");
  n = json_object_array_length (runs);
  if (n < 1 || n > (size_t) cfg->max_batch_runs)
    return bad (err, "a batch of no runs, or more than max_batch_runs");
  b->runs = xmalloc0 (n * sizeof *b->runs);
  for (size_t i = 0; i < n; i++)
    {
      b->nruns = i + 1;
      if (decode_batch_run (json_object_array_get_idx (runs, i), cfg, &b->runs[i], err) < 0)
        return -1;
    }
  return decode_image (msg, &out->image, err);
}

void
boxer_proto_batch_release (struct boxer_proto_batch *b)
{
  boxer_batch_request_release (&b->batch);
  free (b->image.digest);
  boxer_strv_free (b->image.env);
  boxer_strv_free (b->image.entrypoint);
  boxer_strv_free (b->image.cmd);
  free (b->image.workdir);
  memset (b, 0, sizeof *b);
}

json_object *
boxer_proto_encode_batch_result (size_t index, const struct boxer_run_result *res)
{
  json_object *o = boxer_proto_encode_result (res);

  json_object_object_add (o, "index", json_object_new_int64 ((int64_t) index));
  return o;
}

json_object *
boxer_proto_encode_batch_error (size_t index, const struct boxer_error *e)
{
  json_object *o = boxer_proto_error (e);

  json_object_object_add (o, "index", json_object_new_int64 ((int64_t) index));
  return o;
}

json_object *
boxer_proto_encode_batch_done (void)
{
  json_object *o = json_object_new_object ();

  json_object_object_add (o, "type", json_object_new_string ("batch_done"));
  return o;
}

int
boxer_proto_decode_batch_event (json_object *msg, const struct boxer_config *cfg, size_t nruns,
                                size_t *index, struct boxer_run_result *res,
                                struct boxer_error **run_err, struct boxer_error **err)
{
  const char *type = boxer_proto_type (msg);
  json_object *v;
  int64_t i;

  if (type && strcmp (type, "batch_done") == 0)
    return 0;
  if (!json_object_object_get_ex (msg, "index", &v))
    {
      /* The whole batch's error (or something out of place).  */
      boxer_proto_expect (msg, "batch_done", err);
      return -1;
    }
  if (get_int (msg, "index", 0, (int64_t) nruns - 1, &i, err) < 0)
    return -1;
  *index = (size_t) i;
  if (type && strcmp (type, "error") == 0)
    {
      boxer_proto_expect (msg, "result", run_err);
      return 2;
    }
  return boxer_proto_decode_result (msg, cfg, res, err) < 0 ? -1 : 1;
}

/* Sessions.  */

static const char *const session_ops[] = { "create", "exec", "put", "get", "info", "delete" };

json_object *
boxer_proto_open_session (const char *key, const char *op, const char *id, const char *digest)
{
  json_object *o = boxer_proto_open ("session", key);

  json_object_object_add (o, "op", json_object_new_string (op));
  if (id)
    json_object_object_add (o, "id", json_object_new_string (id));
  if (digest)
    json_object_object_add (o, "digest", json_object_new_string (digest));
  return o;
}

int
boxer_proto_decode_session_open (json_object *msg, const char **op_out, const char **id_out,
                                 const char **digest_out, struct boxer_error **err)
{
  const char *op;

  *op_out = *id_out = *digest_out = NULL;
  if (get_string (msg, "op", false, 16, &op, err) < 0
      || get_string (msg, "id", true, 64, id_out, err) < 0
      || get_string (msg, "digest", true, 80, digest_out, err) < 0)
    return -1;
  for (size_t i = 0; i < sizeof session_ops / sizeof session_ops[0]; i++)
    if (strcmp (op, session_ops[i]) == 0)
      *op_out = session_ops[i];
  if (*op_out == NULL)
    return bad (err, "an unknown session 'op'");
  if (strcmp (*op_out, "create") == 0
      ? *digest_out == NULL || !digest_is_valid (*digest_out) || *id_out != NULL
      : *id_out == NULL || !boxer_expiry_id_is_valid (*id_out, BOXER_SESSION_ID_PREFIX,
                                                      BOXER_SESSION_ID_HEX))
    return bad (err, "a session message without the id or digest its op needs");
  return 0;
}

json_object *
boxer_proto_encode_session_create (const struct boxer_session_request *s,
                                   const struct boxer_image *image)
{
  json_object *o = json_object_new_object ();
  json_object *r = json_object_new_object ();

  json_object_object_add (o, "type", json_object_new_string ("session_create"));
  encode_sandbox (r, &s->req);
  json_object_object_add (r, "env", boxer_json_strv (s->req.env));
  json_object_object_add (r, "workdir", boxer_json_string_or_null (s->req.workdir));
  json_object_object_add (r, "idle_timeout_secs", json_object_new_int64 (s->idle_timeout_secs));
  json_object_object_add (r, "ttl_secs", json_object_new_int64 (s->ttl_secs));
  json_object_object_add (o, "request", r);
  json_object_object_add (o, "image", encode_image (image));
  return o;
}

int
boxer_proto_decode_session_create (json_object *msg, const struct boxer_config *cfg,
                                   struct boxer_session_request *out,
                                   struct boxer_proto_image *image, struct boxer_error **err)
{
  json_object *r;
  const char *s;

  memset (out, 0, sizeof *out);
  memset (image, 0, sizeof *image);
  if (boxer_proto_type (msg) == NULL || strcmp (boxer_proto_type (msg), "session_create") != 0)
    return bad (err, "a message that is not a session's creation where one was expected");
  if (!json_object_object_get_ex (msg, "request", &r) || !json_object_is_type (r, json_type_object))
    return bad (err, "'request' must be an object");
  if (decode_sandbox (r, cfg, &out->req, err) < 0
      || get_strv (r, "env", true, BOXER_RUN_ENV_MAX_ENTRIES, BOXER_RUN_ENV_MAX_BYTES, true,
                   &out->req.env, err) < 0
      || get_string (r, "workdir", true, BOXER_RUN_WORKDIR_MAX_BYTES, &s, err) < 0)
    return -1;
  if (s && s[0] != '/')
    return bad (err, "'workdir' must be absolute");
  out->req.workdir = s ? xstrdup (s) : NULL;
  if (get_int (r, "ttl_secs", 1, cfg->max_session_ttl_secs, &out->ttl_secs, err) < 0
      || get_int (r, "idle_timeout_secs", 1, out->ttl_secs, &out->idle_timeout_secs, err) < 0)
    return -1;
  return decode_image (msg, image, err);
}

json_object *
boxer_proto_encode_session_exec (const struct boxer_run_request *req, bool stream)
{
  json_object *o = json_object_new_object ();
  json_object *r = json_object_new_object ();

  json_object_object_add (o, "type", json_object_new_string ("session_exec"));
  if (stream)
    json_object_object_add (o, "stream", json_object_new_boolean (true));
  encode_program (r, req);
  json_object_object_add (r, "wall_clock_secs", json_object_new_int64 (req->limits.wall_clock_secs));
  json_object_object_add (o, "request", r);
  return o;
}

int
boxer_proto_decode_session_exec (json_object *msg, const struct boxer_config *cfg,
                                 struct boxer_run_request *out, bool *stream_out,
                                 struct boxer_error **err)
{
  json_object *r;

  memset (out, 0, sizeof *out);
  *stream_out = false;
  if (boxer_proto_type (msg) == NULL || strcmp (boxer_proto_type (msg), "session_exec") != 0)
    return bad (err, "a message that is not an exec where one was expected");
  if (json_object_object_get_ex (msg, "stream", NULL)
      && get_bool (msg, "stream", stream_out, err) < 0)
    return -1;
  if (!json_object_object_get_ex (msg, "request", &r) || !json_object_is_type (r, json_type_object))
    return bad (err, "'request' must be an object");
  if (decode_program (r, cfg, out, err) < 0
      || get_int (r, "wall_clock_secs", 0, cfg->max_limits.wall_clock_secs,
                  &out->limits.wall_clock_secs, err) < 0)
    return -1;
  if (out->cmd == NULL)
    return bad (err, "an exec without 'cmd'");
  if (out->nfiles > 0)
    return bad (err, "an exec with 'files'");
  return 0;
}

json_object *
boxer_proto_encode_session_file (const char *type, const char *path, const char *data,
                                 size_t len)
{
  json_object *o = json_object_new_object ();

  json_object_object_add (o, "type", json_object_new_string (type));
  if (path)
    json_object_object_add (o, "path", json_object_new_string (path));
  if (data)
    json_object_object_add (o, "data", base64_encode (data, len));
  return o;
}

int
boxer_proto_decode_session_file (json_object *msg, const struct boxer_config *cfg,
                                 const char *type, const char **path_out, char **data_out,
                                 size_t *len_out, struct boxer_error **err)
{
  *data_out = NULL;
  *len_out = 0;
  if (path_out)
    *path_out = NULL;
  if (boxer_proto_type (msg) == NULL || strcmp (boxer_proto_type (msg), type) != 0)
    return bad (err, "a message of another type where a file's was expected");
  if (path_out)
    {
      if (get_string (msg, "path", false, BOXER_RUN_WORKDIR_MAX_BYTES, path_out, err) < 0)
        return -1;
      if (boxer_paths_check_destination (*path_out, strlen (*path_out), "a session's file path",
                                         err) < 0)
        return -1;
    }
  return get_base64 (msg, "data", (size_t) cfg->upload_limit_bytes, data_out, len_out, err);
}

json_object *
boxer_proto_encode_session_info (const struct boxer_session_info *s)
{
  json_object *o = json_object_new_object ();

  json_object_object_add (o, "type", json_object_new_string ("session"));
  json_object_object_add (o, "id", json_object_new_string (s->id));
  json_object_object_add (o, "image", json_object_new_string (s->image));
  json_object_object_add (o, "digest", json_object_new_string (s->digest));
  json_object_object_add (o, "network", json_object_new_string (network_names[s->network]));
  json_object_object_add (o, "limits", encode_limits (&s->limits));
  json_object_object_add (o, "idle_timeout_secs", json_object_new_int64 (s->idle_timeout_secs));
  json_object_object_add (o, "ttl_secs", json_object_new_int64 (s->ttl_secs));
  json_object_object_add (o, "created_at", json_object_new_int64 (s->created_at));
  json_object_object_add (o, "last_used_at", json_object_new_int64 (s->last_used_at));
  json_object_object_add (o, "execs", json_object_new_int64 (s->execs));
  return o;
}

int
boxer_proto_decode_session_info (json_object *msg, const struct boxer_config *cfg,
                                 struct boxer_session_info *out, struct boxer_error **err)
{
  const char *s;
  json_object *v;

  memset (out, 0, sizeof *out);
  if (boxer_proto_expect (msg, "session", err) < 0)
    return -1;
  if (get_string (msg, "id", false, sizeof out->id - 1, &s, err) < 0)
    return -1;
  strcpy (out->id, s);
  if (get_string (msg, "digest", false, sizeof out->digest - 1, &s, err) < 0)
    return -1;
  strcpy (out->digest, s);
  if (get_string (msg, "image", false, BOXER_RUN_IMAGE_MAX_BYTES, &s, err) < 0)
    return -1;
  out->image = xstrdup (s);
  if (get_string (msg, "network", false, 16, &s, err) < 0 || network_of (s) < 0)
    {
      boxer_session_info_release (out);
      return boxer_error_make (err, BOXER_ERR_INVALID, "protocol: a session's 'network'");
    }
  out->network = (enum boxer_network) network_of (s);
  if (!json_object_object_get_ex (msg, "limits", &v) || decode_limits (v, cfg, &out->limits, err) < 0
      || get_int (msg, "idle_timeout_secs", 0, INT64_MAX, &out->idle_timeout_secs, err) < 0
      || get_int (msg, "ttl_secs", 0, INT64_MAX, &out->ttl_secs, err) < 0
      || get_int (msg, "created_at", 0, INT64_MAX, &out->created_at, err) < 0
      || get_int (msg, "last_used_at", 0, INT64_MAX, &out->last_used_at, err) < 0
      || get_int (msg, "execs", 0, INT64_MAX, &out->execs, err) < 0)
    {
      boxer_session_info_release (out);
      if (err && *err == NULL)
        boxer_error_make (err, BOXER_ERR_INTERNAL, "protocol: a session's 'limits'");
      return -1;
    }
  return 0;
}

void
boxer_session_info_release (struct boxer_session_info *s)
{
  free (s->image);
  s->image = NULL;
}
