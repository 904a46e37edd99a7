/* Parsing and validation of request bodies.  Pure: no I/O, so it can be
   unit-tested (tests/unit/check_request.c) and fuzzed.

   Every message here goes to the client (category BOXER_ERR_INVALID,
   _FORBIDDEN or _TOO_LARGE), so it names the field in the client's terms and
   quotes client values only through sanitize ().  */
#include <config.h>

#include "request.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/paths.h"
#include "executor/files.h"

#define IMAGE_MAX_BYTES BOXER_RUN_IMAGE_MAX_BYTES
#define CMD_MAX_ARGS BOXER_RUN_CMD_MAX_ARGS
#define CMD_MAX_BYTES BOXER_RUN_CMD_MAX_BYTES
#define ENV_MAX_ENTRIES BOXER_RUN_ENV_MAX_ENTRIES
#define ENV_MAX_BYTES BOXER_RUN_ENV_MAX_BYTES
#define WORKDIR_MAX_BYTES BOXER_RUN_WORKDIR_MAX_BYTES
#define QUOTE_MAX 40                    /* client text quoted in a message is cut here */

/* Client text quoted in messages is cut short: enough to recognise.  */
static char *
sanitize (const char *s, size_t len)
{
  return boxer_quote (s, len, QUOTE_MAX);
}

static const char *
type_name (json_object *v)
{
  switch (json_object_get_type (v))
    {
    case json_type_null:
      return "null";
    case json_type_boolean:
      return "a boolean";
    case json_type_int:
    case json_type_double:
      return "a number";
    case json_type_string:
      return "a string";
    case json_type_array:
      return "an array";
    case json_type_object:
      return "an object";
    }
  return "an unknown type";
}

static bool
is_json_ws (char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Whether the JSON string v holds a NUL byte (written \u0000 in JSON).  */
static bool
string_has_nul (json_object *v)
{
  return strlen (json_object_get_string (v)) != (size_t) json_object_get_string_len (v);
}

/* Whether the JSON string v is exactly lit (a NUL inside v never matches).  */
static bool
string_is (json_object *v, const char *lit)
{
  size_t n = strlen (lit);
  return (size_t) json_object_get_string_len (v) == n
         && memcmp (json_object_get_string (v), lit, n) == 0;
}

/* json-c cuts object keys at their first NUL byte, so {"a\u0000b": 1}
   would silently become {"a": 1}.  Look for such keys in the text itself.
   json-c has already accepted the text in strict mode, so every string is
   double-quoted and there are no comments.  */
static bool
text_has_nul_in_key (const char *s, size_t len)
{
  size_t i = 0;

  while (i < len)
    {
      bool nul = false;

      if (s[i++] != '"')
        continue;
      for (; i < len && s[i] != '"'; i++)
        if (s[i] == '\\')
          {
            if (len - i >= 6 && memcmp (s + i + 1, "u0000", 5) == 0)
              nul = true;
            i++;        /* skip the escaped character; hex digits need no care */
          }
      i++;              /* the closing quote */
      if (nul)
        {
          while (i < len && is_json_ws (s[i]))
            i++;
          if (i < len && s[i] == ':')
            return true;
        }
    }
  return false;
}

static void
tokener_freep (json_tokener **tok)
{
  if (*tok)
    json_tokener_free (*tok);
}

static void
json_putp (json_object **obj)
{
  json_object_put (*obj);
}

#define cleanup_tokener __attribute__ ((cleanup (tokener_freep)))
#define cleanup_json __attribute__ ((cleanup (json_putp)))

/* Parse body into a JSON object (*out, caller puts it).  */
static int
parse_json (const char *body, size_t len, json_object **out, struct boxer_error **err)
{
  cleanup_tokener json_tokener *tok = NULL;
  cleanup_json json_object *root = NULL;
  enum json_tokener_error jerr;
  size_t end = len;

  if (len == 0)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "request body is empty; send a JSON object with at least 'image'");
  if (len > INT_MAX)
    return boxer_error_make (err, BOXER_ERR_TOO_LARGE,
                             "request body is larger than %d bytes", INT_MAX);

  tok = json_tokener_new_ex (BOXER_REQUEST_MAX_DEPTH);
  if (tok == NULL)
    abort ();
  json_tokener_set_flags (tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
  root = json_tokener_parse_ex (tok, body, (int) len);
  jerr = json_tokener_get_error (tok);
  if (jerr == json_tokener_success)
    end = json_tokener_get_parse_end (tok);
  else if (jerr == json_tokener_continue)
    {
      /* The text ended inside a value.  Only a top-level number (which
         might have gone on) is complete at this point: json-c takes a NUL
         byte as the end of the input.  */
      root = json_tokener_parse_ex (tok, "", 1);
      if (json_tokener_get_error (tok) != json_tokener_success)
        return boxer_error_make (err, BOXER_ERR_INVALID,
                                 "request body is not valid JSON: %s; is the body cut short?",
                                 json_tokener_error_desc (json_tokener_error_parse_eof));
      jerr = json_tokener_success;
    }

  if (jerr == json_tokener_error_depth)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "request body is not valid JSON: nesting too deep; at most %d "
                             "levels of arrays and objects are allowed",
                             BOXER_REQUEST_MAX_DEPTH);
  if (jerr != json_tokener_success)
    return boxer_error_make (err, BOXER_ERR_INVALID, "request body is not valid JSON: %s",
                             json_tokener_error_desc (jerr));

  /* json-c stops after the first value; only white space may follow it.
     (Strict mode catches most trailing text, but not text after a NUL.)  */
  for (size_t i = end; i < len; i++)
    if (!is_json_ws (body[i]))
      return boxer_error_make (err, BOXER_ERR_INVALID,
                               "request body is not valid JSON: unexpected data after the "
                               "top-level value at byte %zu", i);

  if (!json_object_is_type (root, json_type_object))
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "request body must be a JSON object, got %s", type_name (root));

  if (text_has_nul_in_key (body, end))
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "request body has an object key containing a NUL byte "
                             "(\\u0000); remove it");

  *out = steal_pointer (&root);
  return 0;
}

/* Fields.  */

static int
parse_image (const struct boxer_config *cfg, json_object *v, struct boxer_run_request *out,
             struct boxer_error **err)
{
  if (!json_object_is_type (v, json_type_string))
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "'image' must be a string such as \"python:3.12-slim\", got %s",
                             type_name (v));
  if (json_object_get_string_len (v) == 0)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "'image' must not be empty; name an image such as "
                             "\"python:3.12-slim\"");
  if (json_object_get_string_len (v) > IMAGE_MAX_BYTES)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "'image' is longer than %d bytes", IMAGE_MAX_BYTES);
  if (string_has_nul (v))
    return boxer_error_make (err, BOXER_ERR_INVALID, "'image' must not contain NUL bytes");

  out->image = xstrdup (json_object_get_string (v));
  return 0;
}

static int
parse_cmd (const struct boxer_config *cfg, json_object *v, struct boxer_run_request *out,
           struct boxer_error **err)
{
  cleanup_strv char **argv = NULL;
  size_t n, total = 0;

  if (!json_object_is_type (v, json_type_array))
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "'cmd' must be an array of strings, got %s", type_name (v));
  n = json_object_array_length (v);
  if (n == 0)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "'cmd' must not be empty; leave it out to run the image's "
                             "entrypoint and command");
  if (n > CMD_MAX_ARGS)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "'cmd' has %zu arguments; at most %d are allowed", n, CMD_MAX_ARGS);

  argv = xmalloc0 ((n + 1) * sizeof *argv);
  for (size_t i = 0; i < n; i++)
    {
      json_object *a = json_object_array_get_idx (v, i);

      if (!json_object_is_type (a, json_type_string))
        return boxer_error_make (err, BOXER_ERR_INVALID,
                                 "'cmd' must be an array of strings, but cmd[%zu] is %s", i,
                                 type_name (a));
      if (string_has_nul (a))
        return boxer_error_make (err, BOXER_ERR_INVALID,
                                 "'cmd[%zu]' must not contain NUL bytes", i);
      total += (size_t) json_object_get_string_len (a) + 1;
      if (total > CMD_MAX_BYTES)
        return boxer_error_make (err, BOXER_ERR_INVALID,
                                 "'cmd' is larger than %d bytes in total; pass large input "
                                 "through 'stdin' instead",
                                 CMD_MAX_BYTES);
      argv[i] = xstrdup (json_object_get_string (a));
    }
  if (argv[0][0] == '\0')
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "'cmd[0]' must not be empty; name the program to run");

  out->cmd = steal_pointer (&argv);
  return 0;
}

static int
parse_env (const struct boxer_config *cfg, json_object *v, struct boxer_run_request *out,
           struct boxer_error **err)
{
  cleanup_strv char **envv = NULL;
  size_t n, i = 0, total = 0;

  if (!json_object_is_type (v, json_type_object))
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "'env' must be an object of string values, got %s",
                             type_name (v));
  n = (size_t) json_object_object_length (v);
  if (n > ENV_MAX_ENTRIES)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "'env' has %zu variables; at most %d are allowed", n,
                             ENV_MAX_ENTRIES);

  envv = xmalloc0 ((n + 1) * sizeof *envv);
  json_object_object_foreach (v, key, val)
    {
      size_t klen = strlen (key);

      /* A NUL in a key was refused by parse_json (), before json-c's cut.  */
      if (klen == 0)
        return boxer_error_make (err, BOXER_ERR_INVALID, "'env' keys must not be empty");
      if (strchr (key, '='))
        {
          cleanup_free char *q = sanitize (key, klen);
          return boxer_error_make (err, BOXER_ERR_INVALID,
                                   "'env' key '%s' must not contain '='", q);
        }
      if (!json_object_is_type (val, json_type_string))
        {
          cleanup_free char *q = sanitize (key, klen);
          return boxer_error_make (err, BOXER_ERR_INVALID,
                                   "'env' must be an object of string values, but '%s' is %s",
                                   q, type_name (val));
        }
      if (string_has_nul (val))
        {
          cleanup_free char *q = sanitize (key, klen);
          return boxer_error_make (err, BOXER_ERR_INVALID,
                                   "'env' value of '%s' must not contain NUL bytes", q);
        }
      total += klen + 1 + (size_t) json_object_get_string_len (val) + 1;
      if (total > ENV_MAX_BYTES)
        return boxer_error_make (err, BOXER_ERR_INVALID,
                                 "'env' is larger than %d bytes in total", ENV_MAX_BYTES);
      envv[i++] = xasprintf ("%s=%s", key, json_object_get_string (val));
    }

  out->env = steal_pointer (&envv);
  return 0;
}

static int
parse_workdir (const struct boxer_config *cfg, json_object *v, struct boxer_run_request *out,
               struct boxer_error **err)
{
  const char *s;
  size_t len;

  if (!json_object_is_type (v, json_type_string))
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "'workdir' must be a string holding an absolute path, got %s",
                             type_name (v));
  s = json_object_get_string (v);
  len = (size_t) json_object_get_string_len (v);
  if (string_has_nul (v))
    return boxer_error_make (err, BOXER_ERR_INVALID, "'workdir' must not contain NUL bytes");
  if (len > WORKDIR_MAX_BYTES)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "'workdir' is longer than %d bytes", WORKDIR_MAX_BYTES);
  if (s[0] != '/')
    {
      cleanup_free char *q = sanitize (s, len);
      return boxer_error_make (err, BOXER_ERR_INVALID,
                               "'workdir' must be an absolute path starting with '/', got '%s'",
                               q);
    }
  for (const char *p = s; *p;)
    {
      size_t n = strcspn (p, "/");
      if (n == 2 && p[0] == '.' && p[1] == '.')
        {
          cleanup_free char *q = sanitize (s, len);
          return boxer_error_make (err, BOXER_ERR_INVALID,
                                   "'workdir' must not contain '..' components, got '%s'", q);
        }
      p += n;
      p += strspn (p, "/");
    }

  out->workdir = xstrdup (s);
  return 0;
}

static int
parse_stdin (const struct boxer_config *cfg, json_object *v, struct boxer_run_request *out,
             struct boxer_error **err)
{
  size_t len;

  if (!json_object_is_type (v, json_type_string))
    return boxer_error_make (err, BOXER_ERR_INVALID, "'stdin' must be a string, got %s",
                             type_name (v));
  len = (size_t) json_object_get_string_len (v);
  if (cfg->upload_limit_bytes >= 0 && len > (uint64_t) cfg->upload_limit_bytes)
    return boxer_error_make (err, BOXER_ERR_TOO_LARGE,
                             "'stdin' is larger than the upload limit of %" PRId64
                             " bytes; send less input",
                             cfg->upload_limit_bytes);
  if (len == 0)
    return 0;   /* NULL: stdin is empty */

  /* Exact bytes, NULs included; the extra NUL is for text users only.  */
  out->stdin_data = xmalloc (len + 1);
  memcpy (out->stdin_data, json_object_get_string (v), len);
  out->stdin_data[len] = '\0';
  out->stdin_len = len;
  return 0;
}

/* Limits: requests are held to [boxer_limits_floor, cfg->max_limits].  */

struct limit_entry
{
  const char *name;
  bool is_double;
  size_t offset;
};

#define LIMIT(n, d, field) { n, d, offsetof (struct boxer_limits, field) }

static const struct limit_entry limit_table[] = {
  LIMIT ("cpu_cores", true, cpu_cores),
  LIMIT ("memory_mb", false, memory_mb),
  LIMIT ("wall_clock_secs", false, wall_clock_secs),
  LIMIT ("pids_limit", false, pids_limit),
  LIMIT ("nofile", false, nofile),
  { NULL, false, 0 },
};

static int
parse_one_limit (const struct boxer_config *cfg, const struct limit_entry *e, json_object *v,
                 struct boxer_limits *out, struct boxer_error **err)
{
  const char *lo = (const char *) &boxer_limits_floor + e->offset;
  const char *hi = (const char *) &cfg->max_limits + e->offset;
  char *field = (char *) out + e->offset;

  if (e->is_double)
    {
      double d;

      if (!json_object_is_type (v, json_type_double) && !json_object_is_type (v, json_type_int))
        return boxer_error_make (err, BOXER_ERR_INVALID, "limits.%s must be a number, got %s",
                                 e->name, type_name (v));
      d = json_object_get_double (v);
      /* NaN fails both comparisons, hence the isfinite ().  */
      if (!isfinite (d) || d < *(const double *) lo || d > *(const double *) hi)
        return boxer_error_make (err, BOXER_ERR_INVALID, "limits.%s must be between %g and %g",
                                 e->name, *(const double *) lo, *(const double *) hi);
      *(double *) field = d;
    }
  else
    {
      int64_t i;

      /* 2.0 and 1e3 are doubles to json-c, and refused like 1.5.  */
      if (json_object_is_type (v, json_type_double))
        return boxer_error_make (err, BOXER_ERR_INVALID,
                                 "limits.%s must be an integer, without a decimal point or "
                                 "exponent",
                                 e->name);
      if (!json_object_is_type (v, json_type_int))
        return boxer_error_make (err, BOXER_ERR_INVALID, "limits.%s must be an integer, got %s",
                                 e->name, type_name (v));
      /* Beyond INT64_MAX json-c gives INT64_MAX, which is out of range too.  */
      i = json_object_get_int64 (v);
      if (i < *(const int64_t *) lo || i > *(const int64_t *) hi)
        return boxer_error_make (err, BOXER_ERR_INVALID,
                                 "limits.%s must be between %" PRId64 " and %" PRId64, e->name,
                                 *(const int64_t *) lo, *(const int64_t *) hi);
      *(int64_t *) field = i;
    }
  return 0;
}

/* A "limits" object whose fields are table's; unknown says what the
   others are, after the name of one that is not.  */
static int
parse_limits_of (const struct boxer_config *cfg, json_object *v, struct boxer_limits *out,
                 const struct limit_entry *table, const char *unknown, struct boxer_error **err)
{
  if (!json_object_is_type (v, json_type_object))
    return boxer_error_make (err, BOXER_ERR_INVALID, "'limits' must be an object, got %s",
                             type_name (v));

  json_object_object_foreach (v, key, val)
    {
      const struct limit_entry *e;

      for (e = table; e->name; e++)
        if (strcmp (e->name, key) == 0)
          break;
      if (e->name == NULL)
        {
          cleanup_free char *q = sanitize (key, strlen (key));
          return boxer_error_make (err, BOXER_ERR_INVALID, "unknown field 'limits.%s'; %s", q,
                                   unknown);
        }
      if (parse_one_limit (cfg, e, val, out, err) < 0)
        return -1;
    }
  return 0;
}

static int
parse_limits (const struct boxer_config *cfg, json_object *v, struct boxer_run_request *out,
              struct boxer_error **err)
{
  return parse_limits_of (cfg, v, &out->limits, limit_table,
                          "known limits are cpu_cores, memory_mb, wall_clock_secs, pids_limit "
                          "and nofile",
                          err);
}

/* The network modes: 'host' only when the operator set
   allow_host_network.  */
static int
parse_network (const struct boxer_config *cfg, json_object *v, struct boxer_run_request *out,
               struct boxer_error **err)
{
  cleanup_free char *q = NULL;

  if (!json_object_is_type (v, json_type_string))
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "'network' must be one of \"none\", \"sandbox\", \"host\", got %s",
                             type_name (v));

  if (string_is (v, "none"))
    {
      out->network = BOXER_NETWORK_NONE;
      return 0;
    }
  if (string_is (v, "host"))
    {
      if (!cfg->allow_host_network)
        return boxer_error_make (err, BOXER_ERR_FORBIDDEN,
                                 "network 'host' is disabled on this server; ask the operator "
                                 "to set allow_host_network");
      out->network = BOXER_NETWORK_HOST;
      return 0;
    }
  if (string_is (v, "sandbox"))
    {
      out->network = BOXER_NETWORK_SANDBOX;
      return 0;
    }

  q = sanitize (json_object_get_string (v), (size_t) json_object_get_string_len (v));
  return boxer_error_make (err, BOXER_ERR_INVALID,
                           "'network' must be one of \"none\", \"sandbox\", \"host\", got '%s'",
                           q);
}

/* Uploaded files: [{"id": "f_...", "path": "/abs/path"}, ...].  */

static bool
file_id_is_valid (const char *s, size_t len)
{
  size_t plen = strlen (BOXER_FILE_ID_PREFIX);

  if (len != BOXER_FILE_ID_LEN || strncmp (s, BOXER_FILE_ID_PREFIX, plen) != 0)
    return false;
  for (size_t i = plen; i < len; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return true;
}

int
boxer_request_check_files (const struct boxer_run_request *req, struct boxer_error **err)
{
  if (req->nfiles > BOXER_RUN_MAX_FILES)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "a run may have at most %d files, got %zu", BOXER_RUN_MAX_FILES,
                             req->nfiles);
  /* A file at /a leaves no directory /a for another at /a/b.  */
  for (size_t i = 0; i < req->nfiles; i++)
    for (size_t j = 0; j < req->nfiles; j++)
      if (i != j && boxer_paths_is_under (req->files[j].path, req->files[i].path))
        {
          cleanup_free char *a = sanitize (req->files[i].path, strlen (req->files[i].path));
          cleanup_free char *b = sanitize (req->files[j].path, strlen (req->files[j].path));
          if (strcmp (req->files[i].path, req->files[j].path) == 0)
            return boxer_error_make (err, BOXER_ERR_INVALID,
                                     "two files have the same path '%s'; each path takes one "
                                     "file",
                                     a);
          return boxer_error_make (err, BOXER_ERR_INVALID,
                                   "file paths '%s' and '%s' collide: a file cannot also be a "
                                   "directory",
                                   a, b);
        }
  return 0;
}

static int
parse_files (const struct boxer_config *cfg, json_object *v, struct boxer_run_request *out,
             struct boxer_error **err)
{
  size_t n;

  if (!json_object_is_type (v, json_type_array))
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "'files' must be an array of {\"id\", \"path\"} objects, got %s",
                             type_name (v));
  n = json_object_array_length (v);
  if (n > BOXER_RUN_MAX_FILES)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "'files' has %zu entries; at most %d are allowed", n,
                             BOXER_RUN_MAX_FILES);
  out->files = xmalloc0 ((n + 1) * sizeof *out->files);
  for (size_t i = 0; i < n; i++)
    {
      json_object *f = json_object_array_get_idx (v, i);
      json_object *id = NULL, *path = NULL;
      char what[48];

      if (!json_object_is_type (f, json_type_object))
        return boxer_error_make (err, BOXER_ERR_INVALID,
                                 "'files[%zu]' must be an object with 'id' and 'path', got %s",
                                 i, type_name (f));
      json_object_object_foreach (f, key, val)
        {
          if (strcmp (key, "id") == 0)
            id = val;
          else if (strcmp (key, "path") == 0)
            path = val;
          else
            {
              cleanup_free char *q = sanitize (key, strlen (key));
              return boxer_error_make (err, BOXER_ERR_INVALID,
                                       "unknown field 'files[%zu].%s'; a file has only 'id' "
                                       "and 'path'",
                                       i, q);
            }
        }
      if (id == NULL || path == NULL)
        return boxer_error_make (err, BOXER_ERR_INVALID, "'files[%zu]' needs both 'id' and 'path'",
                                 i);
      if (!json_object_is_type (id, json_type_string)
          || !file_id_is_valid (json_object_get_string (id),
                                (size_t) json_object_get_string_len (id)))
        return boxer_error_make (err, BOXER_ERR_INVALID,
                                 "'files[%zu].id' must be an id that POST /files returned "
                                 "(\"f_\" and 32 hex digits)",
                                 i);
      if (!json_object_is_type (path, json_type_string))
        return boxer_error_make (err, BOXER_ERR_INVALID,
                                 "'files[%zu].path' must be a string, got %s", i,
                                 type_name (path));
      snprintf (what, sizeof what, "'files[%zu].path'", i);
      if (boxer_paths_check_destination (json_object_get_string (path),
                                         (size_t) json_object_get_string_len (path), what, err)
          < 0)
        return -1;
      out->files[i].id = xstrdup (json_object_get_string (id));
      out->files[i].path = xstrdup (json_object_get_string (path));
      out->nfiles = i + 1;
    }
  return boxer_request_check_files (out, err);
}

typedef int (*field_parser) (const struct boxer_config *cfg, json_object *v,
                             struct boxer_run_request *out, struct boxer_error **err);

/* The top-level fields of POST /run.  */
static const struct
{
  const char *name;
  field_parser parse;
} run_fields[] = {
  { "image", parse_image },
  { "cmd", parse_cmd },
  { "env", parse_env },
  { "workdir", parse_workdir },
  { "stdin", parse_stdin },
  { "limits", parse_limits },
  { "network", parse_network },
  { "files", parse_files },
  { NULL, NULL },
};

static int
parse_run (const struct boxer_config *cfg, json_object *root, struct boxer_run_request *out,
           struct boxer_error **err)
{
  json_object_object_foreach (root, key, val)
    {
      size_t i;

      for (i = 0; run_fields[i].name; i++)
        if (strcmp (run_fields[i].name, key) == 0)
          break;
      if (run_fields[i].name == NULL)
        {
          cleanup_free char *q = sanitize (key, strlen (key));
          return boxer_error_make (err, BOXER_ERR_INVALID, "unknown field '%s'", q);
        }
      /* json-c keeps only the last of duplicate keys, so each parser runs
         at most once and never finds its field already set.  */
      if (run_fields[i].parse (cfg, val, out, err) < 0)
        return -1;
    }

  if (out->image == NULL)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "'image' is required; name the image to run, such as "
                             "\"python:3.12-slim\"");
  return 0;
}

/* What a key may ask for, once the request is known to be valid: a 403
   names what is over.  Defaults were lowered to the key's maximums before
   parsing, so anything over them was asked for.  */
static int
check_key (const struct boxer_api_key *key, const struct boxer_run_request *req,
           struct boxer_error **err)
{
  for (const struct limit_entry *e = limit_table; e->name; e++)
    {
      const char *asked = (const char *) &req->limits + e->offset;
      const char *most = (const char *) &key->max_limits + e->offset;
      if (e->is_double ? *(const double *) asked > *(const double *) most
                       : *(const int64_t *) asked > *(const int64_t *) most)
        {
          char a[32], m[32];
          if (e->is_double)
            snprintf (a, sizeof a, "%g", *(const double *) asked),
              snprintf (m, sizeof m, "%g", *(const double *) most);
          else
            snprintf (a, sizeof a, "%" PRId64, *(const int64_t *) asked),
              snprintf (m, sizeof m, "%" PRId64, *(const int64_t *) most);
          return boxer_error_make (err, BOXER_ERR_FORBIDDEN,
                                   "limits.%s of %s is above the %s this API key may use", e->name,
                                   a, m);
        }
    }
  if ((req->network == BOXER_NETWORK_SANDBOX && !key->allow_network_sandbox)
      || (req->network == BOXER_NETWORK_HOST && !key->allow_network_host))
    return boxer_error_make (err, BOXER_ERR_FORBIDDEN,
                             "this API key may not use network '%s'; ask the operator to add it "
                             "to the key's allow_network",
                             req->network == BOXER_NETWORK_HOST ? "host" : "sandbox");
  return 0;
}

static void
lower_to (struct boxer_limits *l, const struct boxer_limits *most)
{
  for (const struct limit_entry *e = limit_table; e->name; e++)
    {
      char *v = (char *) l + e->offset;
      const char *m = (const char *) most + e->offset;
      if (e->is_double && *(double *) v > *(const double *) m)
        *(double *) v = *(const double *) m;
      else if (!e->is_double && *(int64_t *) v > *(const int64_t *) m)
        *(int64_t *) v = *(const int64_t *) m;
    }
}

int
boxer_request_parse_run (const struct boxer_config *cfg, const struct boxer_api_key *key,
                         const char *body, size_t len, struct boxer_run_request *out,
                         struct boxer_error **err)
{
  cleanup_json json_object *root = NULL;

  memset (out, 0, sizeof *out);
  out->limits = cfg->defaults;
  if (key)
    lower_to (&out->limits, &key->max_limits);
  out->network = BOXER_NETWORK_NONE;

  if (parse_json (body, len, &root, err) < 0 || parse_run (cfg, root, out, err) < 0
      || (key && check_key (key, out, err) < 0))
    {
      boxer_run_request_release (out);
      memset (out, 0, sizeof *out);
      return -1;
    }
  return 0;
}

/* POST /batch.  */

static const struct
{
  const char *name;
  field_parser parse;
} batch_run_fields[] = {
  { "cmd", parse_cmd },
  { "env", parse_env },
  { "workdir", parse_workdir },
  { "stdin", parse_stdin },
  { "files", parse_files },
  { NULL, NULL },
};

/* A batch run's own limits: its wall clock and address space.  */
static const struct limit_entry batch_run_limit_table[] = {
  LIMIT ("memory_mb", false, memory_mb),
  LIMIT ("wall_clock_secs", false, wall_clock_secs),
  { NULL, false, 0 },
};

static int
parse_batch_run (const struct boxer_config *cfg, json_object *v, struct boxer_run_request *run,
                 struct boxer_error **err)
{
  if (!json_object_is_type (v, json_type_object))
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "must be an object such as {\"cmd\": [\"python3\", \"-c\", \"print(1)\"]}, "
                             "got %s",
                             type_name (v));
  json_object_object_foreach (v, key, val)
    {
      size_t i;

      if (strcmp (key, "limits") == 0)
        {
          if (parse_limits_of (cfg, val, &run->limits, batch_run_limit_table,
                               "a batch's run has its own wall_clock_secs and memory_mb (its "
                               "address space), and shares the batch's other limits",
                               err) < 0)
            return -1;
          continue;
        }
      for (i = 0; batch_run_fields[i].name; i++)
        if (strcmp (batch_run_fields[i].name, key) == 0)
          break;
      if (batch_run_fields[i].name == NULL)
        {
          cleanup_free char *q = sanitize (key, strlen (key));
          return boxer_error_make (err, BOXER_ERR_INVALID,
                                   "unknown field '%s'; a batch's run has cmd, env, workdir, "
                                   "stdin, files and limits (image, network and the other "
                                   "limits are the batch's)",
                                   q);
        }
      if (batch_run_fields[i].parse (cfg, val, run, err) < 0)
        return -1;
    }
  for (size_t k = 0; k < run->nfiles; k++)
    if (boxer_batch_path_is_private (run->files[k].path))
      {
        cleanup_free char *q = sanitize (run->files[k].path, strlen (run->files[k].path));
        return boxer_error_make (err, BOXER_ERR_INVALID,
                                 "'files[%zu].path' '%s': /tmp, /var/tmp, /dev/shm and /output "
                                 "are each batch run's own and start empty; put the file "
                                 "elsewhere, such as /work/...",
                                 k, q);
      }
  return 0;
}

static int
parse_batch (const struct boxer_config *cfg, json_object *root, struct boxer_batch_request *out,
             struct boxer_error **err)
{
  json_object *runs = NULL;
  size_t n;

  json_object_object_foreach (root, key, val)
    {
      if (strcmp (key, "image") == 0)
        {
          if (parse_image (cfg, val, &out->req, err) < 0)
            return -1;
        }
      else if (strcmp (key, "network") == 0)
        {
          if (parse_network (cfg, val, &out->req, err) < 0)
            return -1;
        }
      else if (strcmp (key, "limits") == 0)
        {
          if (parse_limits (cfg, val, &out->req, err) < 0)
            return -1;
        }
      else if (strcmp (key, "parallelism") == 0)
        {
          if (!json_object_is_type (val, json_type_int) || json_object_get_int64 (val) < 1
              || json_object_get_int64 (val) > BOXER_BATCH_MAX_PARALLELISM)
            return boxer_error_make (err, BOXER_ERR_INVALID,
                                     "'parallelism' must be an integer from 1 to %d",
                                     BOXER_BATCH_MAX_PARALLELISM);
          out->parallelism = json_object_get_int64 (val);
        }
      else if (strcmp (key, "runs") == 0)
        runs = val;
      else
        {
          cleanup_free char *q = sanitize (key, strlen (key));
          return boxer_error_make (err, BOXER_ERR_INVALID,
                                   "unknown field '%s'; a batch has image, network, limits, "
                                   "parallelism and runs",
                                   q);
        }
    }
  if (out->req.image == NULL)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "'image' is required; name the image to run, such as "
                             "\"python:3.12-slim\"");
  if (runs == NULL || !json_object_is_type (runs, json_type_array))
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "'runs' is required: an array of runs such as "
                             "[{\"cmd\": [\"python3\", \"-c\", \"print(1)\"]}]");
  n = json_object_array_length (runs);
  if (n == 0 || n > (size_t) cfg->max_batch_runs)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "'runs' has %zu runs; a batch takes 1 to %" PRId64
                             " (max_batch_runs)",
                             n, cfg->max_batch_runs);
  out->runs = xmalloc0 (n * sizeof *out->runs);
  for (size_t i = 0; i < n; i++)
    {
      struct boxer_run_request *run = &out->runs[i];

      out->nruns = i + 1;
      run->limits.wall_clock_secs = out->req.limits.wall_clock_secs;
      run->limits.memory_mb = out->req.limits.memory_mb;
      if (parse_batch_run (cfg, json_object_array_get_idx (runs, i), run, err) < 0)
        return boxer_error_wrap (err, "runs[%zu]", i);
    }
  return 0;
}

int
boxer_request_parse_batch (const struct boxer_config *cfg, const struct boxer_api_key *key,
                           const char *body, size_t len, struct boxer_batch_request *out,
                           struct boxer_error **err)
{
  cleanup_json json_object *root = NULL;

  memset (out, 0, sizeof *out);
  out->req.limits = cfg->defaults;
  if (key)
    lower_to (&out->req.limits, &key->max_limits);
  out->req.network = BOXER_NETWORK_NONE;
  out->parallelism = 1;

  if (parse_json (body, len, &root, err) < 0 || parse_batch (cfg, root, out, err) < 0
      || (key && check_key (key, &out->req, err) < 0))
    goto fail;
  for (size_t i = 0; key && i < out->nruns; i++)
    if (out->runs[i].limits.wall_clock_secs > key->max_limits.wall_clock_secs
        || out->runs[i].limits.memory_mb > key->max_limits.memory_mb)
      {
        boxer_error_make (err, BOXER_ERR_FORBIDDEN,
                          "runs[%zu]: its limits are above what this API key may use", i);
        goto fail;
      }
  return 0;

fail:
  boxer_batch_request_release (out);
  memset (out, 0, sizeof *out);
  return -1;
}

/* Sessions.  */

/* A positive integer of at most max seconds in v.  */
static int
parse_secs (json_object *v, const char *name, int64_t max, int64_t *out, struct boxer_error **err)
{
  if (!json_object_is_type (v, json_type_int) || json_object_get_int64 (v) < 1
      || json_object_get_int64 (v) > max)
    return boxer_error_make (err, BOXER_ERR_INVALID, "'%s' must be an integer from 1 to %" PRId64,
                             name, max);
  *out = json_object_get_int64 (v);
  return 0;
}

int
boxer_request_parse_session (const struct boxer_config *cfg, const struct boxer_api_key *key,
                             const char *body, size_t len, struct boxer_session_request *out,
                             struct boxer_error **err)
{
  cleanup_json json_object *root = NULL;
  bool idle_given = false;

  memset (out, 0, sizeof *out);
  out->req.limits = cfg->defaults;
  if (key)
    lower_to (&out->req.limits, &key->max_limits);
  out->req.network = BOXER_NETWORK_NONE;
  out->idle_timeout_secs = BOXER_SESSION_IDLE_DEFAULT;
  out->ttl_secs = BOXER_SESSION_TTL_DEFAULT < cfg->max_session_ttl_secs
                    ? BOXER_SESSION_TTL_DEFAULT : cfg->max_session_ttl_secs;
  if (parse_json (body, len, &root, err) < 0)
    goto fail;
  json_object_object_foreach (root, name, val)
    {
      int r;
      if (strcmp (name, "image") == 0)
        r = parse_image (cfg, val, &out->req, err);
      else if (strcmp (name, "limits") == 0)
        r = parse_limits (cfg, val, &out->req, err);
      else if (strcmp (name, "network") == 0)
        r = parse_network (cfg, val, &out->req, err);
      else if (strcmp (name, "env") == 0)
        r = parse_env (cfg, val, &out->req, err);
      else if (strcmp (name, "workdir") == 0)
        r = parse_workdir (cfg, val, &out->req, err);
      else if (strcmp (name, "idle_timeout_secs") == 0)
        {
          r = parse_secs (val, name, cfg->max_session_ttl_secs, &out->idle_timeout_secs, err);
          idle_given = true;
        }
      else if (strcmp (name, "ttl_secs") == 0)
        r = parse_secs (val, name, cfg->max_session_ttl_secs, &out->ttl_secs, err);
      else
        {
          cleanup_free char *q = sanitize (name, strlen (name));
          r = boxer_error_make (err, BOXER_ERR_INVALID,
                                "unknown field '%s'; a session has image, limits, network, env, "
                                "workdir, idle_timeout_secs and ttl_secs", q);
        }
      if (r < 0)
        goto fail;
    }
  if (out->req.image == NULL)
    {
      boxer_error_make (err, BOXER_ERR_INVALID, "'image' is required; name the image the "
                        "session runs, such as \"python:3.12-slim\"");
      goto fail;
    }
  /* An idle timeout past the ttl means nothing: the ttl comes first.  */
  if (!idle_given && out->idle_timeout_secs > out->ttl_secs)
    out->idle_timeout_secs = out->ttl_secs;
  if (out->idle_timeout_secs > out->ttl_secs)
    {
      boxer_error_make (err, BOXER_ERR_INVALID,
                        "'idle_timeout_secs' (%" PRId64 ") must not be above 'ttl_secs' (%" PRId64
                        ")", out->idle_timeout_secs, out->ttl_secs);
      goto fail;
    }
  if (key && check_key (key, &out->req, err) < 0)
    goto fail;
  return 0;

fail:
  boxer_run_request_release (&out->req);
  memset (out, 0, sizeof *out);
  return -1;
}

int
boxer_request_parse_exec (const struct boxer_config *cfg, const struct boxer_api_key *key,
                          const char *body, size_t len, struct boxer_run_request *out,
                          struct boxer_error **err)
{
  cleanup_json json_object *root = NULL;
  int64_t most = key ? key->max_limits.wall_clock_secs : cfg->max_limits.wall_clock_secs;

  memset (out, 0, sizeof *out);
  /* 0: the session's own wall clock (the keeper knows it).  */
  out->limits.wall_clock_secs = 0;
  if (parse_json (body, len, &root, err) < 0)
    goto fail;
  json_object_object_foreach (root, name, val)
    {
      int r;
      if (strcmp (name, "cmd") == 0)
        r = parse_cmd (cfg, val, out, err);
      else if (strcmp (name, "env") == 0)
        r = parse_env (cfg, val, out, err);
      else if (strcmp (name, "workdir") == 0)
        r = parse_workdir (cfg, val, out, err);
      else if (strcmp (name, "stdin") == 0)
        r = parse_stdin (cfg, val, out, err);
      else if (strcmp (name, "timeout_secs") == 0)
        r = parse_secs (val, name, most, &out->limits.wall_clock_secs, err);
      else
        {
          cleanup_free char *q = sanitize (name, strlen (name));
          r = boxer_error_make (err, BOXER_ERR_INVALID,
                                "unknown field '%s'; an exec has cmd, env, workdir, stdin and "
                                "timeout_secs", q);
        }
      if (r < 0)
        goto fail;
    }
  if (out->cmd == NULL)
    {
      boxer_error_make (err, BOXER_ERR_INVALID, "'cmd' is required, such as "
                        "[\"python3\", \"main.py\"]");
      goto fail;
    }
  return 0;

fail:
  boxer_run_request_release (out);
  memset (out, 0, sizeof *out);
  return -1;
}
