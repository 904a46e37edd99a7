/* Unit tests for fcgi/request.c: POST /run bodies.  */
#include <config.h>

#include <check.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/buf.h"
#include "common/config.h"
#include "fcgi/auth.h"
#include "fcgi/request.h"

static struct boxer_config cfg;

static void
setup (void)
{
  boxer_config_init_defaults (&cfg);
}

static void
teardown (void)
{
  boxer_config_release (&cfg);
}

static int
parse_len (const char *body, size_t len, struct boxer_run_request *req, struct boxer_error **err)
{
  /* Garbage in: the parser must not read or free what was there.  */
  memset (req, 0xa5, sizeof *req);
  return boxer_request_parse_run (&cfg, NULL, body, len, req, err);
}

static void
assert_zeroed (const struct boxer_run_request *req)
{
  ck_assert_ptr_null (req->image);
  ck_assert_ptr_null (req->cmd);
  ck_assert_ptr_null (req->env);
  ck_assert_ptr_null (req->workdir);
  ck_assert_ptr_null (req->stdin_data);
  ck_assert_uint_eq (req->stdin_len, 0);
  ck_assert_int_eq (req->network, BOXER_NETWORK_NONE);
  ck_assert_int_eq (req->limits.memory_mb, 0);
}

/* Parse body (of len bytes) expecting failure with category and a message
   containing want.  */
static void
expect_fail_len (const char *body, size_t len, enum boxer_error_category category,
                 const char *want)
{
  struct boxer_run_request req;
  cleanup_error struct boxer_error *err = NULL;
  int r = parse_len (body, len, &req, &err);

  ck_assert_msg (r < 0, "accepted: %s", body);
  ck_assert_ptr_nonnull (err);
  ck_assert_msg (err->category == category, "category %d, want %d for %s (message '%s')",
                 err->category, category, body, err->msg);
  ck_assert_msg (strstr (err->msg, want) != NULL, "message '%s' lacks '%s'", err->msg, want);
  assert_zeroed (&req);
}

static void
expect_fail (const char *body, enum boxer_error_category category, const char *want)
{
  expect_fail_len (body, strlen (body), category, want);
}

static void
expect_invalid (const char *body, const char *want)
{
  expect_fail (body, BOXER_ERR_INVALID, want);
}

/* Parse body expecting success; the caller releases *req.  */
static void
expect_ok_len (const char *body, size_t len, struct boxer_run_request *req)
{
  cleanup_error struct boxer_error *err = NULL;
  int r = parse_len (body, len, req, &err);

  ck_assert_msg (r == 0, "refused %s: %s", body, err ? err->msg : "(no error)");
  ck_assert_ptr_null (err);
}

static void
expect_ok (const char *body, struct boxer_run_request *req)
{
  expect_ok_len (body, strlen (body), req);
}

static void
assert_limits_eq (const struct boxer_limits *a, const struct boxer_limits *b)
{
  ck_assert_double_eq (a->cpu_cores, b->cpu_cores);
  ck_assert_int_eq (a->memory_mb, b->memory_mb);
  ck_assert_int_eq (a->wall_clock_secs, b->wall_clock_secs);
  ck_assert_int_eq (a->pids_limit, b->pids_limit);
  ck_assert_int_eq (a->nofile, b->nofile);
}

static void
append_str (struct boxer_buf *b, const char *s)
{
  ck_assert_int_eq (boxer_buf_append (b, s, strlen (s), NULL), 0);
}

/* Valid requests.  */

START_TEST (test_minimal)
{
  struct boxer_run_request req;

  expect_ok ("{\"image\": \"python:3.12-slim\"}", &req);
  ck_assert_str_eq (req.image, "python:3.12-slim");
  ck_assert_ptr_null (req.cmd);
  ck_assert_ptr_null (req.env);
  ck_assert_ptr_null (req.workdir);
  ck_assert_ptr_null (req.stdin_data);
  ck_assert_uint_eq (req.stdin_len, 0);
  ck_assert_int_eq (req.network, BOXER_NETWORK_NONE);
  assert_limits_eq (&req.limits, &cfg.defaults);
  boxer_run_request_release (&req);
}
END_TEST

START_TEST (test_full)
{
  struct boxer_run_request req;
  const char *body =
    "{\n"
    "  \"image\": \"localhost:5000/boxer/python:3.11\",\n"
    "  \"cmd\": [\"python3\", \"-c\", \"print(42)\", \"\"],\n"
    "  \"env\": {\"PYTHONHASHSEED\": \"0\", \"EMPTY\": \"\", \"EQ\": \"a=b\"},\n"
    "  \"workdir\": \"/workspace\",\n"
    "  \"stdin\": \"some text\\n\",\n"
    "  \"limits\": {\"cpu_cores\": 1.5, \"memory_mb\": 512, \"wall_clock_secs\": 10,\n"
    "             \"pids_limit\": 32, \"nofile\": 128},\n"
    "  \"network\": \"none\"\n"
    "}\n";

  expect_ok (body, &req);
  ck_assert_str_eq (req.image, "localhost:5000/boxer/python:3.11");
  ck_assert_uint_eq (boxer_strv_len (req.cmd), 4);
  ck_assert_str_eq (req.cmd[0], "python3");
  ck_assert_str_eq (req.cmd[1], "-c");
  ck_assert_str_eq (req.cmd[2], "print(42)");
  ck_assert_str_eq (req.cmd[3], "");
  ck_assert_ptr_null (req.cmd[4]);
  ck_assert_uint_eq (boxer_strv_len (req.env), 3);
  ck_assert_str_eq (req.env[0], "PYTHONHASHSEED=0");
  ck_assert_str_eq (req.env[1], "EMPTY=");
  ck_assert_str_eq (req.env[2], "EQ=a=b");
  ck_assert_ptr_null (req.env[3]);
  ck_assert_str_eq (req.workdir, "/workspace");
  ck_assert_uint_eq (req.stdin_len, 10);
  ck_assert_mem_eq (req.stdin_data, "some text\n", 10);
  ck_assert_double_eq (req.limits.cpu_cores, 1.5);
  ck_assert_int_eq (req.limits.memory_mb, 512);
  ck_assert_int_eq (req.limits.wall_clock_secs, 10);
  ck_assert_int_eq (req.limits.pids_limit, 32);
  ck_assert_int_eq (req.limits.nofile, 128);
  ck_assert_int_eq (req.network, BOXER_NETWORK_NONE);
  boxer_run_request_release (&req);
}
END_TEST

START_TEST (test_empty_env_and_limits)
{
  struct boxer_run_request req;

  expect_ok ("{\"image\": \"x\", \"env\": {}, \"limits\": {}}", &req);
  ck_assert_ptr_nonnull (req.env);
  ck_assert_ptr_null (req.env[0]);
  assert_limits_eq (&req.limits, &cfg.defaults);
  boxer_run_request_release (&req);
}
END_TEST

START_TEST (test_defaults_applied)
{
  struct boxer_run_request req;

  /* The defaults come from the config, not from constants.  */
  cfg.defaults = (struct boxer_limits) {
    .cpu_cores = 0.5, .memory_mb = 100, .wall_clock_secs = 7, .pids_limit = 9, .nofile = 33,
  };
  expect_ok ("{\"image\": \"x\", \"limits\": {\"memory_mb\": 300, \"nofile\": 64}}", &req);
  ck_assert_double_eq (req.limits.cpu_cores, 0.5);
  ck_assert_int_eq (req.limits.memory_mb, 300);
  ck_assert_int_eq (req.limits.wall_clock_secs, 7);
  ck_assert_int_eq (req.limits.pids_limit, 9);
  ck_assert_int_eq (req.limits.nofile, 64);
  boxer_run_request_release (&req);
}
END_TEST

START_TEST (test_cpu_cores_integer)
{
  struct boxer_run_request req;

  expect_ok ("{\"image\": \"x\", \"limits\": {\"cpu_cores\": 2}}", &req);
  ck_assert_double_eq (req.limits.cpu_cores, 2.0);
  boxer_run_request_release (&req);
}
END_TEST

START_TEST (test_whitespace_around)
{
  struct boxer_run_request req;

  expect_ok (" \r\n\t{\"image\":\"x\"} \r\n\t ", &req);
  ck_assert_str_eq (req.image, "x");
  boxer_run_request_release (&req);
}
END_TEST

START_TEST (test_duplicate_key_last_wins)
{
  struct boxer_run_request req;

  /* json-c keeps the last value; documented, not endorsed.  */
  expect_ok ("{\"image\": \"a\", \"image\": \"b\"}", &req);
  ck_assert_str_eq (req.image, "b");
  boxer_run_request_release (&req);
}
END_TEST

/* Limits: floor, max, below, above for each one.  */

struct limit_case
{
  const char *name;
  bool is_double;
  size_t offset;
};

static const struct limit_case limit_cases[] = {
  { "cpu_cores", true, offsetof (struct boxer_limits, cpu_cores) },
  { "memory_mb", false, offsetof (struct boxer_limits, memory_mb) },
  { "wall_clock_secs", false, offsetof (struct boxer_limits, wall_clock_secs) },
  { "pids_limit", false, offsetof (struct boxer_limits, pids_limit) },
  { "nofile", false, offsetof (struct boxer_limits, nofile) },
};

static double
limit_value (const struct boxer_limits *l, const struct limit_case *c)
{
  const char *p = (const char *) l + c->offset;
  return c->is_double ? *(const double *) p : (double) *(const int64_t *) p;
}

static char *
limit_body (const struct limit_case *c, double v)
{
  if (c->is_double)
    return xasprintf ("{\"image\": \"x\", \"limits\": {\"%s\": %.17g}}", c->name, v);
  return xasprintf ("{\"image\": \"x\", \"limits\": {\"%s\": %" PRId64 "}}", c->name,
                    (int64_t) v);
}

START_TEST (test_limit_bounds)
{
  const struct limit_case *c = &limit_cases[_i];
  double lo = limit_value (&boxer_limits_floor, c);
  double hi = limit_value (&cfg.max_limits, c);
  double step = c->is_double ? 0.01 : 1;
  cleanup_free char *want = NULL;
  struct boxer_run_request req;

  if (c->is_double)
    want = xasprintf ("limits.%s must be between %g and %g", c->name, lo, hi);
  else
    want = xasprintf ("limits.%s must be between %" PRId64 " and %" PRId64, c->name,
                      (int64_t) lo, (int64_t) hi);

  {
    cleanup_free char *body = limit_body (c, lo);
    expect_ok (body, &req);
    ck_assert_double_eq (limit_value (&req.limits, c), lo);
    boxer_run_request_release (&req);
  }
  {
    cleanup_free char *body = limit_body (c, hi);
    expect_ok (body, &req);
    ck_assert_double_eq (limit_value (&req.limits, c), hi);
    boxer_run_request_release (&req);
  }
  {
    cleanup_free char *body = limit_body (c, lo - step);
    expect_invalid (body, want);
  }
  {
    cleanup_free char *body = limit_body (c, hi + step);
    expect_invalid (body, want);
  }
  {
    cleanup_free char *body = limit_body (c, -1);
    expect_invalid (body, want);
  }
}
END_TEST

START_TEST (test_limit_message_exact)
{
  struct boxer_run_request req;
  cleanup_error struct boxer_error *err = NULL;
  const char *body = "{\"image\": \"x\", \"limits\": {\"memory_mb\": 9000}}";

  ck_assert_int_lt (parse_len (body, strlen (body), &req, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
  ck_assert_str_eq (err->msg, "limits.memory_mb must be between 16 and 8192");
}
END_TEST

START_TEST (test_limit_max_from_config)
{
  struct boxer_run_request req;

  cfg.max_limits.memory_mb = 100;
  expect_invalid ("{\"image\": \"x\", \"limits\": {\"memory_mb\": 101}}",
                  "limits.memory_mb must be between 16 and 100");
  expect_ok ("{\"image\": \"x\", \"limits\": {\"memory_mb\": 100}}", &req);
  boxer_run_request_release (&req);
}
END_TEST

START_TEST (test_limit_huge_and_special_numbers)
{
  expect_invalid ("{\"image\": \"x\", \"limits\": {\"memory_mb\": 18446744073709551615}}",
                  "limits.memory_mb must be between 16 and 8192");
  expect_invalid ("{\"image\": \"x\", \"limits\": {\"memory_mb\": -9223372036854775808}}",
                  "limits.memory_mb must be between 16 and 8192");
  expect_invalid ("{\"image\": \"x\", \"limits\": {\"memory_mb\": 99999999999999999999999}}",
                  "limits.memory_mb must be between 16 and 8192");
  expect_invalid ("{\"image\": \"x\", \"limits\": {\"cpu_cores\": 1e999}}",
                  "limits.cpu_cores must be between 0.05 and 4");
  /* json-c takes NaN and Infinity even in strict mode.  */
  expect_invalid ("{\"image\": \"x\", \"limits\": {\"cpu_cores\": NaN}}",
                  "limits.cpu_cores must be between 0.05 and 4");
  expect_invalid ("{\"image\": \"x\", \"limits\": {\"cpu_cores\": -Infinity}}",
                  "limits.cpu_cores must be between 0.05 and 4");
}
END_TEST

START_TEST (test_limit_float_for_integer)
{
  static const char *const names[] = { "memory_mb", "wall_clock_secs", "pids_limit", "nofile" };

  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    {
      cleanup_free char *want = xasprintf ("limits.%s must be an integer", names[i]);
      cleanup_free char *b1 = xasprintf ("{\"image\": \"x\", \"limits\": {\"%s\": 1.5}}",
                                         names[i]);
      cleanup_free char *b2 = xasprintf ("{\"image\": \"x\", \"limits\": {\"%s\": 64.0}}",
                                         names[i]);
      cleanup_free char *b3 = xasprintf ("{\"image\": \"x\", \"limits\": {\"%s\": 1e2}}",
                                         names[i]);
      expect_invalid (b1, want);
      expect_invalid (b2, want);
      expect_invalid (b3, want);
    }
}
END_TEST

START_TEST (test_limit_wrong_types)
{
  static const char *const names[] = { "memory_mb", "wall_clock_secs", "pids_limit", "nofile" };
  static const char *const values[] = { "\"256\"", "true", "false", "null", "[]", "{}" };

  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    for (size_t j = 0; j < sizeof values / sizeof values[0]; j++)
      {
        cleanup_free char *want = xasprintf ("limits.%s must be an integer, got ", names[i]);
        cleanup_free char *body = xasprintf ("{\"image\": \"x\", \"limits\": {\"%s\": %s}}",
                                             names[i], values[j]);
        expect_invalid (body, want);
      }
  for (size_t j = 0; j < sizeof values / sizeof values[0]; j++)
    {
      cleanup_free char *body = xasprintf ("{\"image\": \"x\", \"limits\": {\"cpu_cores\": %s}}",
                                           values[j]);
      expect_invalid (body, "limits.cpu_cores must be a number, got ");
    }
  expect_invalid ("{\"image\": \"x\", \"limits\": {\"memory_mb\": \"256\"}}",
                  "limits.memory_mb must be an integer, got a string");
  expect_invalid ("{\"image\": \"x\", \"limits\": {\"nofile\": true}}",
                  "limits.nofile must be an integer, got a boolean");
}
END_TEST

START_TEST (test_unknown_limit)
{
  expect_invalid ("{\"image\": \"x\", \"limits\": {\"memory\": 256}}",
                  "unknown field 'limits.memory'");
  expect_invalid ("{\"image\": \"x\", \"limits\": {\"cpu_cores\": 1, \"disk_mb\": 1}}",
                  "unknown field 'limits.disk_mb'");
}
END_TEST

/* Wrong types, field by field.  */

START_TEST (test_wrong_types)
{
  static const struct
  {
    const char *body;
    const char *want;
  } cases[] = {
    { "{\"image\": 42}", "'image' must be a string" },
    { "{\"image\": true}", "'image' must be a string" },
    { "{\"image\": null}", "'image' must be a string" },
    { "{\"image\": [\"x\"]}", "'image' must be a string" },
    { "{\"image\": {}}", "'image' must be a string" },
    { "{\"image\": \"x\", \"cmd\": \"ls -l\"}", "'cmd' must be an array of strings, got a string" },
    { "{\"image\": \"x\", \"cmd\": {}}", "'cmd' must be an array of strings, got an object" },
    { "{\"image\": \"x\", \"cmd\": null}", "'cmd' must be an array of strings, got null" },
    { "{\"image\": \"x\", \"cmd\": [\"ls\", 1]}", "'cmd' must be an array of strings, but cmd[1] is a number" },
    { "{\"image\": \"x\", \"cmd\": [null]}", "'cmd' must be an array of strings, but cmd[0] is null" },
    { "{\"image\": \"x\", \"cmd\": [[\"ls\"]]}", "'cmd' must be an array of strings, but cmd[0] is an array" },
    { "{\"image\": \"x\", \"env\": [\"A=B\"]}", "'env' must be an object of string values, got an array" },
    { "{\"image\": \"x\", \"env\": \"A=B\"}", "'env' must be an object of string values, got a string" },
    { "{\"image\": \"x\", \"env\": {\"A\": 1}}", "'env' must be an object of string values, but 'A' is a number" },
    { "{\"image\": \"x\", \"env\": {\"A\": null}}", "'env' must be an object of string values, but 'A' is null" },
    { "{\"image\": \"x\", \"env\": {\"A\": true}}", "'env' must be an object of string values, but 'A' is a boolean" },
    { "{\"image\": \"x\", \"workdir\": 1}", "'workdir' must be a string holding an absolute path, got a number" },
    { "{\"image\": \"x\", \"workdir\": [\"/\"]}", "'workdir' must be a string holding an absolute path, got an array" },
    { "{\"image\": \"x\", \"stdin\": 1}", "'stdin' must be a string, got a number" },
    { "{\"image\": \"x\", \"stdin\": [\"a\"]}", "'stdin' must be a string, got an array" },
    { "{\"image\": \"x\", \"stdin\": null}", "'stdin' must be a string, got null" },
    { "{\"image\": \"x\", \"limits\": []}", "'limits' must be an object, got an array" },
    { "{\"image\": \"x\", \"limits\": 5}", "'limits' must be an object, got a number" },
    { "{\"image\": \"x\", \"limits\": \"big\"}", "'limits' must be an object, got a string" },
    { "{\"image\": \"x\", \"network\": 1}", "'network' must be one of \"none\", \"sandbox\", \"host\", got a number" },
    { "{\"image\": \"x\", \"network\": null}", "'network' must be one of \"none\", \"sandbox\", \"host\", got null" },
    { "{\"image\": \"x\", \"network\": false}", "'network' must be one of \"none\", \"sandbox\", \"host\", got a boolean" },
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    expect_invalid (cases[i].body, cases[i].want);
}
END_TEST

START_TEST (test_unknown_fields)
{
  expect_invalid ("{\"image\": \"x\", \"foo\": 1}", "unknown field 'foo'");
  expect_invalid ("{\"Image\": \"x\"}", "unknown field 'Image'");
  expect_invalid ("{\"image\": \"x\", \"file\": []}", "unknown field 'file'");
  expect_invalid ("{\"image\": \"x\", \"memory_mb\": 256}", "unknown field 'memory_mb'");
}
END_TEST

START_TEST (test_unknown_field_sanitized)
{
  struct boxer_run_request req;
  cleanup_error struct boxer_error *err = NULL;
  cleanup_free char *body = NULL;
  char longname[300];

  memset (longname, 'k', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  body = xasprintf ("{\"image\": \"x\", \"bad\\u001b[31m\\n\\u00e9%s\": 1}", longname);
  ck_assert_int_lt (parse_len (body, strlen (body), &req, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
  ck_assert_msg (strstr (err->msg, "unknown field 'bad?[31m???kkk") != NULL, "%s", err->msg);
  ck_assert_msg (strstr (err->msg, "...'") != NULL, "not cut: %s", err->msg);
  ck_assert_uint_lt (strlen (err->msg), 100);
  for (const char *p = err->msg; *p; p++)
    ck_assert_msg ((unsigned char) *p >= 0x20 && (unsigned char) *p < 0x7f,
                   "unprintable byte in message");
}
END_TEST

START_TEST (test_bad_values_sanitized)
{
  struct boxer_run_request req;
  cleanup_error struct boxer_error *err = NULL;
  const char *body = "{\"image\": \"x\", \"network\": \"\\r\\nX-Injected: 1\\u0000\"}";

  ck_assert_int_lt (parse_len (body, strlen (body), &req, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
  ck_assert_msg (strstr (err->msg, "got '??X-Injected: 1?'") != NULL, "%s", err->msg);
}
END_TEST

/* Malformed bodies.  */

START_TEST (test_malformed)
{
  expect_invalid ("{\"image\": }", "request body is not valid JSON: ");
  expect_invalid ("{\"image\" \"x\"}", "request body is not valid JSON: ");
  expect_invalid ("{image: \"x\"}", "request body is not valid JSON: ");
  /* Strict mode: no single quotes, comments or trailing commas.  */
  expect_invalid ("{'image': 'x'}", "request body is not valid JSON: ");
  expect_invalid ("{\"image\": \"x\" /* c */}", "request body is not valid JSON: ");
  expect_invalid ("{\"image\": \"x\",}", "request body is not valid JSON: ");
  expect_invalid ("{\"image\": \"x\", \"cmd\": [\"a\",]}", "request body is not valid JSON: ");
  /* Not UTF-8.  */
  expect_invalid ("{\"image\": \"\xff\xfe\"}", "request body is not valid JSON: invalid utf-8");
  /* json-c's reason is passed on.  */
  expect_invalid ("{\"image\": \"x\" \"cmd\": []}",
                  "request body is not valid JSON: object value separator ',' expected");
}
END_TEST

START_TEST (test_empty_body)
{
  expect_fail_len ("", 0, BOXER_ERR_INVALID, "request body is empty");
  expect_fail_len (NULL, 0, BOXER_ERR_INVALID, "request body is empty");
  expect_invalid ("   \n", "request body is not valid JSON: unexpected end of data");
}
END_TEST

START_TEST (test_truncated)
{
  const char *body = "{\"image\": \"python:3.12-slim\", \"cmd\": [\"a\"]}";

  for (size_t n = 1; n < strlen (body); n++)
    expect_fail_len (body, n, BOXER_ERR_INVALID, "request body is not valid JSON: ");
  expect_invalid ("{\"image\": \"py", "request body is not valid JSON: unexpected end of data");
  expect_invalid ("{\"image\": \"x\", \"limits\": {\"memory_mb\": 25",
                  "request body is not valid JSON: unexpected end of data");
}
END_TEST

START_TEST (test_trailing_garbage)
{
  static const char nul_garbage[] = "{\"image\": \"x\"}\0garbage";

  expect_invalid ("{\"image\": \"x\"} x", "request body is not valid JSON: ");
  expect_invalid ("{\"image\": \"x\"}{}", "request body is not valid JSON: ");
  expect_invalid ("{\"image\": \"x\"},", "request body is not valid JSON: ");
  expect_fail_len (nul_garbage, sizeof nul_garbage - 1, BOXER_ERR_INVALID,
                   "request body is not valid JSON: unexpected data after the top-level value");
  expect_fail_len (nul_garbage, strlen (nul_garbage) + 1, BOXER_ERR_INVALID,
                   "request body is not valid JSON: unexpected data after the top-level value");
}
END_TEST

START_TEST (test_not_an_object)
{
  expect_invalid ("[]", "request body must be a JSON object, got an array");
  expect_invalid ("[{\"image\": \"x\"}]", "request body must be a JSON object, got an array");
  expect_invalid ("\"x\"", "request body must be a JSON object, got a string");
  expect_invalid ("42", "request body must be a JSON object, got a number");
  expect_invalid ("42 ", "request body must be a JSON object, got a number");
  expect_invalid ("1.5", "request body must be a JSON object, got a number");
  expect_invalid ("null", "request body must be a JSON object, got null");
  expect_invalid ("true", "request body must be a JSON object, got a boolean");
}
END_TEST

START_TEST (test_nesting_depth)
{
  cleanup_buf struct boxer_buf b = { 0 };
  char *body;
  size_t len;

  boxer_buf_init (&b, 4096);
  append_str (&b, "{\"image\": \"x\", \"cmd\": ");
  for (int i = 0; i < 100; i++)
    append_str (&b, "[");
  for (int i = 0; i < 100; i++)
    append_str (&b, "]");
  append_str (&b, "}");
  body = boxer_buf_steal (&b, &len);
  expect_fail_len (body, len, BOXER_ERR_INVALID, "nesting too deep");
  free (body);

  /* Objects too, and at the top level.  */
  boxer_buf_init (&b, 4096);
  for (int i = 0; i < 100; i++)
    append_str (&b, "{\"a\":");
  body = boxer_buf_steal (&b, &len);
  expect_fail_len (body, len, BOXER_ERR_INVALID, "nesting too deep");
  free (body);
}
END_TEST

/* NUL bytes.  */

START_TEST (test_nul_bytes)
{
  expect_invalid ("{\"image\": \"x\", \"cmd\": [\"ls\", \"a\\u0000b\"]}",
                  "'cmd[1]' must not contain NUL bytes");
  expect_invalid ("{\"image\": \"x\", \"cmd\": [\"\\u0000\"]}",
                  "'cmd[0]' must not contain NUL bytes");
  expect_invalid ("{\"image\": \"x\", \"env\": {\"A\\u0000B\": \"v\"}}",
                  "object key containing a NUL byte");
  expect_invalid ("{\"image\": \"x\", \"env\": {\"A\": \"v\\u0000w\"}}",
                  "'env' value of 'A' must not contain NUL bytes");
  expect_invalid ("{\"image\": \"x\", \"workdir\": \"/a\\u0000b\"}",
                  "'workdir' must not contain NUL bytes");
  expect_invalid ("{\"image\": \"x\\u0000y\"}", "'image' must not contain NUL bytes");
  /* Top-level keys too: json-c would otherwise read this one as "image".  */
  expect_invalid ("{\"image\\u0000\": \"x\"}", "object key containing a NUL byte");
  expect_invalid ("{\"image\": \"x\", \"limits\": {\"nofile\\u0000x\": 64}}",
                  "object key containing a NUL byte");
  /* A raw NUL byte is not JSON at all.  */
  expect_fail_len ("{\"image\": \"x\0\"}", 15, BOXER_ERR_INVALID,
                   "request body is not valid JSON");
}
END_TEST

START_TEST (test_nul_escape_lookalikes)
{
  struct boxer_run_request req;

  /* An escaped backslash followed by "u0000" is not a NUL.  */
  expect_ok ("{\"image\": \"x\", \"env\": {\"A\\\\u0000B\": \"\\\\u0000\"}}", &req);
  ck_assert_str_eq (req.env[0], "A\\u0000B=\\u0000");
  boxer_run_request_release (&req);
  /* A NUL in a value that looks like a key is still a value.  */
  expect_ok ("{\"image\": \"x\", \"stdin\": \"\\u0000\" , \"cmd\": [\"a\"]}", &req);
  ck_assert_uint_eq (req.stdin_len, 1);
  boxer_run_request_release (&req);
  expect_ok ("{\"image\": \"x\", \"stdin\": \"a\\\"\\u0000:\\\": \"}", &req);
  ck_assert_uint_eq (req.stdin_len, 7);
  ck_assert_mem_eq (req.stdin_data, "a\"\0:\": ", 7);
  boxer_run_request_release (&req);
}
END_TEST

START_TEST (test_stdin_exact_bytes)
{
  struct boxer_run_request req;

  expect_ok ("{\"image\": \"x\", \"stdin\": \"\\u0000a\\u0000\\u0000b\\n\\u00e9\\u0000\"}", &req);
  ck_assert_uint_eq (req.stdin_len, 9);
  ck_assert_mem_eq (req.stdin_data, "\0a\0\0b\n\xc3\xa9\0", 9);
  ck_assert_int_eq (req.stdin_data[9], '\0');
  boxer_run_request_release (&req);

  expect_ok ("{\"image\": \"x\", \"stdin\": \"\"}", &req);
  ck_assert_ptr_null (req.stdin_data);
  ck_assert_uint_eq (req.stdin_len, 0);
  boxer_run_request_release (&req);
}
END_TEST

START_TEST (test_stdin_upload_limit)
{
  struct boxer_run_request req;
  cleanup_free char *at = NULL, *over = NULL;
  char text[1026];

  cfg.upload_limit_bytes = 1024;
  memset (text, 'a', sizeof text);
  text[1024] = '\0';
  at = xasprintf ("{\"image\": \"x\", \"stdin\": \"%s\"}", text);
  text[1024] = 'a';
  text[1025] = '\0';
  over = xasprintf ("{\"image\": \"x\", \"stdin\": \"%s\"}", text);

  expect_ok (at, &req);
  ck_assert_uint_eq (req.stdin_len, 1024);
  boxer_run_request_release (&req);
  expect_fail (over, BOXER_ERR_TOO_LARGE, "'stdin' is larger than the upload limit of 1024 bytes");
}
END_TEST

/* cmd.  */

static char *
cmd_body (size_t nargs, size_t arglen)
{
  cleanup_buf struct boxer_buf b = { 0 };
  cleanup_free char *arg = xmalloc (arglen + 1);

  memset (arg, 'a', arglen);
  arg[arglen] = '\0';
  boxer_buf_init (&b, 64 * 1024 * 1024);
  append_str (&b, "{\"image\": \"x\", \"cmd\": [");
  for (size_t i = 0; i < nargs; i++)
    {
      append_str (&b, i ? ",\"" : "\"");
      append_str (&b, arg);
      append_str (&b, "\"");
    }
  append_str (&b, "]}");
  return boxer_buf_steal (&b, NULL);
}

START_TEST (test_cmd_limits)
{
  struct boxer_run_request req;

  {
    cleanup_free char *body = cmd_body (4096, 1);
    expect_ok (body, &req);
    ck_assert_uint_eq (boxer_strv_len (req.cmd), 4096);
    boxer_run_request_release (&req);
  }
  {
    cleanup_free char *body = cmd_body (4097, 1);
    expect_invalid (body, "'cmd' has 4097 arguments; at most 4096 are allowed");
  }
  {
    /* Exactly 256 KiB, counting each argument's NUL.  */
    cleanup_free char *body = cmd_body (4, 64 * 1024 - 1);
    expect_ok (body, &req);
    boxer_run_request_release (&req);
  }
  {
    cleanup_free char *body = cmd_body (4, 64 * 1024);
    expect_invalid (body, "'cmd' is larger than 262144 bytes in total");
  }
  {
    cleanup_free char *body = cmd_body (1, 10 * 1024 * 1024);
    expect_invalid (body, "'cmd' is larger than 262144 bytes in total");
  }
  expect_invalid ("{\"image\": \"x\", \"cmd\": []}", "'cmd' must not be empty");
  expect_invalid ("{\"image\": \"x\", \"cmd\": [\"\", \"a\"]}", "'cmd[0]' must not be empty");
}
END_TEST

/* env.  */

START_TEST (test_env_keys)
{
  expect_invalid ("{\"image\": \"x\", \"env\": {\"A=B\": \"v\"}}",
                  "'env' key 'A=B' must not contain '='");
  expect_invalid ("{\"image\": \"x\", \"env\": {\"=\": \"v\"}}",
                  "'env' key '=' must not contain '='");
  expect_invalid ("{\"image\": \"x\", \"env\": {\"\": \"v\"}}", "'env' keys must not be empty");
}
END_TEST

START_TEST (test_env_limits)
{
  struct boxer_run_request req;
  cleanup_buf struct boxer_buf b = { 0 };
  char *body;

  for (int n = 1024; n <= 1025; n++)
    {
      boxer_buf_init (&b, 1024 * 1024);
      append_str (&b, "{\"image\": \"x\", \"env\": {");
      for (int i = 0; i < n; i++)
        {
          char kv[32];
          snprintf (kv, sizeof kv, "%s\"K%d\": \"v\"", i ? "," : "", i);
          append_str (&b, kv);
        }
      append_str (&b, "}}");
      body = boxer_buf_steal (&b, NULL);
      if (n == 1024)
        {
          expect_ok (body, &req);
          ck_assert_uint_eq (boxer_strv_len (req.env), 1024);
          ck_assert_str_eq (req.env[1023], "K1023=v");
          boxer_run_request_release (&req);
        }
      else
        expect_invalid (body, "'env' has 1025 variables; at most 1024 are allowed");
      free (body);
    }

  {
    /* Two values of 128 KiB: over 256 KiB with the keys.  */
    cleanup_free char *v = xmalloc (128 * 1024 + 1);
    memset (v, 'v', 128 * 1024);
    v[128 * 1024] = '\0';
    body = xasprintf ("{\"image\": \"x\", \"env\": {\"A\": \"%s\", \"B\": \"%s\"}}", v, v);
    expect_invalid (body, "'env' is larger than 262144 bytes in total");
    free (body);
  }
}
END_TEST

/* workdir.  */

START_TEST (test_workdir)
{
  struct boxer_run_request req;
  static const char *const good[] = { "/", "/workspace", "/a/b/", "//a", "/a/..b", "/a../b",
                                      "/.../x", "/a/./b" };
  static const char *const dotdot[] = { "/..", "/../", "/a/..", "/a/../b", "/a//../b" };

  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    {
      cleanup_free char *body = xasprintf ("{\"image\": \"x\", \"workdir\": \"%s\"}", good[i]);
      expect_ok (body, &req);
      ck_assert_str_eq (req.workdir, good[i]);
      boxer_run_request_release (&req);
    }
  for (size_t i = 0; i < sizeof dotdot / sizeof dotdot[0]; i++)
    {
      cleanup_free char *body = xasprintf ("{\"image\": \"x\", \"workdir\": \"%s\"}", dotdot[i]);
      expect_invalid (body, "'workdir' must not contain '..' components");
    }
  expect_invalid ("{\"image\": \"x\", \"workdir\": \"workspace\"}",
                  "'workdir' must be an absolute path starting with '/', got 'workspace'");
  expect_invalid ("{\"image\": \"x\", \"workdir\": \"./a\"}",
                  "'workdir' must be an absolute path");
  expect_invalid ("{\"image\": \"x\", \"workdir\": \"\"}", "'workdir' must be an absolute path");

  {
    cleanup_free char *longpath = xmalloc (4098);
    cleanup_free char *body = NULL;
    memset (longpath, 'a', 4097);
    longpath[0] = '/';
    longpath[4097] = '\0';
    body = xasprintf ("{\"image\": \"x\", \"workdir\": \"%s\"}", longpath);
    expect_invalid (body, "'workdir' is longer than 4096 bytes");
    free (body);
    longpath[4096] = '\0';
    body = xasprintf ("{\"image\": \"x\", \"workdir\": \"%s\"}", longpath);
    expect_ok (body, &req);
    boxer_run_request_release (&req);
  }
}
END_TEST

/* network.  */

START_TEST (test_network)
{
  struct boxer_run_request req;

  expect_ok ("{\"image\": \"x\", \"network\": \"none\"}", &req);
  ck_assert_int_eq (req.network, BOXER_NETWORK_NONE);
  boxer_run_request_release (&req);

  expect_fail ("{\"image\": \"x\", \"network\": \"host\"}", BOXER_ERR_FORBIDDEN,
               "network 'host' is disabled on this server; ask the operator to set "
               "allow_host_network");
  expect_ok ("{\"image\": \"x\", \"network\": \"sandbox\"}", &req);
  ck_assert_int_eq (req.network, BOXER_NETWORK_SANDBOX);
  boxer_run_request_release (&req);
  /* 'host' only where the operator allows it.  */
  cfg.allow_host_network = true;
  expect_ok ("{\"image\": \"x\", \"network\": \"host\"}", &req);
  ck_assert_int_eq (req.network, BOXER_NETWORK_HOST);
  boxer_run_request_release (&req);
  cfg.allow_host_network = false;
  expect_fail ("{\"image\": \"x\", \"network\": \"host\"}", BOXER_ERR_FORBIDDEN,
               "allow_host_network");
  expect_invalid ("{\"image\": \"x\", \"network\": \"bridge\"}",
                  "'network' must be one of \"none\", \"sandbox\", \"host\", got 'bridge'");
  expect_invalid ("{\"image\": \"x\", \"network\": \"None\"}",
                  "'network' must be one of \"none\", \"sandbox\", \"host\", got 'None'");
  expect_invalid ("{\"image\": \"x\", \"network\": \"\"}",
                  "'network' must be one of \"none\", \"sandbox\", \"host\", got ''");
  expect_invalid ("{\"image\": \"x\", \"network\": \"none\\u0000\"}",
                  "'network' must be one of");
}
END_TEST

/* image.  */

START_TEST (test_image)
{
  struct boxer_run_request req;
  char name[514];

  expect_invalid ("{}", "'image' is required");
  expect_invalid ("{\"cmd\": [\"ls\"]}", "'image' is required");
  expect_invalid ("{\"image\": \"\"}", "'image' must not be empty");
  expect_invalid ("{\"image\": 1}", "'image' must be a string");

  memset (name, 'a', sizeof name);
  name[512] = '\0';
  {
    cleanup_free char *body = xasprintf ("{\"image\": \"%s\"}", name);
    expect_ok (body, &req);
    ck_assert_uint_eq (strlen (req.image), 512);
    boxer_run_request_release (&req);
  }
  name[512] = 'a';
  name[513] = '\0';
  {
    cleanup_free char *body = xasprintf ("{\"image\": \"%s\"}", name);
    expect_invalid (body, "'image' is longer than 512 bytes");
  }
}
END_TEST

#define FID "f_0123456789abcdef0123456789abcdef"
#define FID2 "f_ffffffffffffffffffffffffffffffff"

START_TEST (test_files)
{
  struct boxer_run_request req;

  expect_ok ("{\"image\": \"x\", \"files\": [{\"id\": \"" FID "\", \"path\": \"/w/main.py\"}, "
             "{\"path\": \"/w/data/\u00e9t\u00e9.csv\", \"id\": \"" FID2 "\"}]}",
             &req);
  ck_assert_uint_eq (req.nfiles, 2);
  ck_assert_str_eq (req.files[0].id, FID);
  ck_assert_str_eq (req.files[0].path, "/w/main.py");
  ck_assert_str_eq (req.files[1].id, FID2);
  ck_assert_str_eq (req.files[1].path, "/w/data/\xc3\xa9t\xc3\xa9.csv");
  boxer_run_request_release (&req);

  /* The same upload at two places is fine.  */
  expect_ok ("{\"image\": \"x\", \"files\": [{\"id\": \"" FID "\", \"path\": \"/a\"}, "
             "{\"id\": \"" FID "\", \"path\": \"/b\"}]}", &req);
  ck_assert_uint_eq (req.nfiles, 2);
  boxer_run_request_release (&req);

  expect_ok ("{\"image\": \"x\", \"files\": []}", &req);
  ck_assert_uint_eq (req.nfiles, 0);
  boxer_run_request_release (&req);
}
END_TEST

START_TEST (test_files_invalid)
{
  static const struct
  {
    const char *files;
    const char *want;
  } cases[] = {
    { "{}", "'files' must be an array of {\"id\", \"path\"} objects, got an object" },
    { "[1]", "'files[0]' must be an object with 'id' and 'path', got a number" },
    { "[{\"id\": \"" FID "\"}]", "'files[0]' needs both 'id' and 'path'" },
    { "[{\"path\": \"/a\"}]", "'files[0]' needs both 'id' and 'path'" },
    { "[{\"id\": \"" FID "\", \"path\": \"/a\", \"mode\": 1}]",
      "unknown field 'files[0].mode'; a file has only 'id' and 'path'" },
    { "[{\"id\": \"f_1\", \"path\": \"/a\"}]",
      "'files[0].id' must be an id that POST /files returned (\"f_\" and 32 hex digits)" },
    { "[{\"id\": \"f_0123456789ABCDEF0123456789abcdef\", \"path\": \"/a\"}]",
      "'files[0].id' must be an id that POST /files returned" },
    { "[{\"id\": \"../../etc/passwd\", \"path\": \"/a\"}]",
      "'files[0].id' must be an id that POST /files returned" },
    { "[{\"id\": 5, \"path\": \"/a\"}]", "'files[0].id' must be an id" },
    { "[{\"id\": \"" FID "\", \"path\": 5}]", "'files[0].path' must be a string, got a number" },
    { "[{\"id\": \"" FID "\", \"path\": \"a/b\"}]",
      "'files[0].path' 'a/b' must be an absolute path starting with '/'" },
    { "[{\"id\": \"" FID "\", \"path\": \"/w/../etc/passwd\"}]",
      "'files[0].path' '/w/../etc/passwd' must be an absolute, normalised path without '.' or "
      "'..' components" },
    { "[{\"id\": \"" FID "\", \"path\": \"/w//a\"}]", "no empty components" },
    { "[{\"id\": \"" FID "\", \"path\": \"/w/\"}]", "no trailing '/'" },
    { "[{\"id\": \"" FID "\", \"path\": \"/proc/self/x\"}]", "must not be at or under /proc" },
    { "[{\"id\": \"" FID "\", \"path\": \"/output/x\"}]", "must not be at or under /output" },
    { "[{\"id\": \"" FID "\", \"path\": \"/a\\u0000b\"}]",
      "'files[0].path' must not contain NUL bytes" },
    { "[{\"id\": \"" FID "\", \"path\": \"/a\"}, {\"id\": \"" FID2 "\", \"path\": \"/a\"}]",
      "two files have the same path '/a'; each path takes one file" },
    { "[{\"id\": \"" FID "\", \"path\": \"/a/b\"}, {\"id\": \"" FID2 "\", \"path\": \"/a\"}]",
      "file paths '/a' and '/a/b' collide: a file cannot also be a directory" },
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      cleanup_free char *body = xasprintf ("{\"image\": \"x\", \"files\": %s}", cases[i].files);
      expect_invalid (body, cases[i].want);
    }
}
END_TEST

START_TEST (test_files_count_bounded)
{
  struct boxer_buf b;
  cleanup_free char *body = NULL;

  boxer_buf_init (&b, 1 << 20);
  boxer_buf_append (&b, "{\"image\": \"x\", \"files\": [", 25, NULL);
  for (int i = 0; i <= BOXER_RUN_MAX_FILES; i++)
    {
      cleanup_free char *e = xasprintf ("%s{\"id\": \"" FID "\", \"path\": \"/f%d\"}",
                                        i ? ", " : "", i);
      boxer_buf_append (&b, e, strlen (e), NULL);
    }
  boxer_buf_append (&b, "]}", 2, NULL);
  body = boxer_buf_steal (&b, NULL);
  expect_invalid (body, "'files' has 257 entries; at most 256 are allowed");
}
END_TEST

/* Failure after fields were already filled must release them (run the
   suite under valgrind or ASan to see leaks).  */
START_TEST (test_late_failure_releases)
{
  expect_invalid ("{\"image\": \"x\", \"cmd\": [\"a\", \"b\"], \"env\": {\"A\": \"1\"}, "
                  "\"workdir\": \"/w\", \"stdin\": \"in\", \"network\": \"bogus\"}",
                  "'network' must be one of");
  expect_invalid ("{\"cmd\": [\"a\"], \"env\": {\"A\": \"1\"}, \"stdin\": \"in\"}",
                  "'image' is required");
  expect_invalid ("{\"image\": \"x\", \"env\": {\"A\": \"1\", \"B\": 2}}",
                  "but 'B' is a number");
  expect_invalid ("{\"image\": \"x\", \"cmd\": [\"a\", \"b\", 3]}", "but cmd[2] is a number");
}
END_TEST

/* A request through an API key: its max_limits and network modes.  */
START_TEST (test_key_limits_and_network)
{
  struct boxer_api_key key = {
    .name = (char *) "k",
    .max_limits = cfg.max_limits,
  };
  struct boxer_run_request req;
  cleanup_error struct boxer_error *err = NULL;
  const char *img = "{\"image\": \"x\"";

  key.max_limits.memory_mb = 128;         /* below the default 256 */
  key.max_limits.wall_clock_secs = 60;

  /* Defaults over the key's maximum are lowered to it, not refused.  */
  ck_assert_int_eq (boxer_request_parse_run (&cfg, &key, "{\"image\": \"x\"}", 14, &req, &err), 0);
  ck_assert_int_eq (req.limits.memory_mb, 128);
  ck_assert_int_eq (req.limits.wall_clock_secs, cfg.defaults.wall_clock_secs);
  boxer_run_request_release (&req);

  /* Asked for within the key's maximum: as asked.  */
  {
    cleanup_free char *b = xasprintf ("%s, \"limits\": {\"memory_mb\": 64, \"wall_clock_secs\": 60}}",
                                      img);
    ck_assert_int_eq (boxer_request_parse_run (&cfg, &key, b, strlen (b), &req, &err), 0);
    ck_assert_int_eq (req.limits.memory_mb, 64);
    ck_assert_int_eq (req.limits.wall_clock_secs, 60);
    boxer_run_request_release (&req);
  }

  /* Over the key's maximum but within the server's: 403, naming it.  */
  {
    cleanup_free char *b = xasprintf ("%s, \"limits\": {\"memory_mb\": 129}}", img);
    ck_assert_int_lt (boxer_request_parse_run (&cfg, &key, b, strlen (b), &req, &err), 0);
    ck_assert_int_eq (err->category, BOXER_ERR_FORBIDDEN);
    ck_assert_str_eq (err->msg, "limits.memory_mb of 129 is above the 128 this API key may use");
    boxer_error_release (&err);
    /* Without the key the same request is fine.  */
    ck_assert_int_eq (boxer_request_parse_run (&cfg, NULL, b, strlen (b), &req, &err), 0);
    boxer_run_request_release (&req);
  }
  {
    cleanup_free char *b = xasprintf ("%s, \"limits\": {\"cpu_cores\": 0.5}}", img);
    key.max_limits.cpu_cores = 0.25;
    ck_assert_int_lt (boxer_request_parse_run (&cfg, &key, b, strlen (b), &req, &err), 0);
    ck_assert_str_eq (err->msg, "limits.cpu_cores of 0.5 is above the 0.25 this API key may use");
    boxer_error_release (&err);
  }
  /* Over the server's maximum stays a 400, key or not.  */
  {
    cleanup_free char *b = xasprintf ("%s, \"limits\": {\"memory_mb\": 999999999}}", img);
    ck_assert_int_lt (boxer_request_parse_run (&cfg, &key, b, strlen (b), &req, &err), 0);
    ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
    boxer_error_release (&err);
  }

  /* Network modes: "none" always; the others only when listed.  */
  {
    cleanup_free char *b = xasprintf ("%s, \"network\": \"sandbox\"}", img);
    ck_assert_int_lt (boxer_request_parse_run (&cfg, &key, b, strlen (b), &req, &err), 0);
    ck_assert_int_eq (err->category, BOXER_ERR_FORBIDDEN);
    ck_assert_ptr_nonnull (strstr (err->msg, "this API key may not use network 'sandbox'"));
    boxer_error_release (&err);
    key.allow_network_sandbox = true;
    ck_assert_int_eq (boxer_request_parse_run (&cfg, &key, b, strlen (b), &req, &err), 0);
    ck_assert_int_eq (req.network, BOXER_NETWORK_SANDBOX);
    boxer_run_request_release (&req);
  }
  {
    cleanup_free char *b = xasprintf ("%s, \"network\": \"host\"}", img);
    cfg.allow_host_network = true;
    ck_assert_int_lt (boxer_request_parse_run (&cfg, &key, b, strlen (b), &req, &err), 0);
    ck_assert_ptr_nonnull (strstr (err->msg, "this API key may not use network 'host'"));
    boxer_error_release (&err);
    key.allow_network_host = true;
    ck_assert_int_eq (boxer_request_parse_run (&cfg, &key, b, strlen (b), &req, &err), 0);
    boxer_run_request_release (&req);
    /* The server's own switch still comes first.  */
    cfg.allow_host_network = false;
    ck_assert_int_lt (boxer_request_parse_run (&cfg, &key, b, strlen (b), &req, &err), 0);
    ck_assert_ptr_nonnull (strstr (err->msg, "disabled on this server"));
    boxer_error_release (&err);
  }
}
END_TEST

/* The Authorization header against the configured keys.  */
START_TEST (test_auth_find)
{
  static const char *const refused[] = {
    NULL, "", "Bearer", "Bearer ", "Bearer    ", "Basic YWJjOmRlZg==", "Token abc",
    "Bearerabc", "Bearer ab", "Bearer abcd", "Bearer ABC",
    "Bearer ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  };
  const struct boxer_api_key *key;

  const char *doc = "{\"api_keys\": [{\"name\": \"a\", \"sha256\": "
                    "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"}]}";

  /* sha256 ("abc").  */
  ck_assert_int_eq (boxer_config_parse (&cfg, doc, strlen (doc), NULL), 0);
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
    {
      cleanup_error struct boxer_error *err = NULL;
      ck_assert_msg (boxer_auth_find (&cfg, refused[i], &key, &err) < 0, "accepted '%s'",
                     refused[i] ? refused[i] : "(none)");
      ck_assert_int_eq (err->category, BOXER_ERR_UNAUTHORIZED);
      ck_assert_ptr_null (key);
      /* The message never repeats what was sent.  */
      ck_assert (refused[i] == NULL || strlen (refused[i]) < 9
                 || strstr (err->msg, refused[i] + 7) == NULL);
    }
  {
    cleanup_error struct boxer_error *err = NULL;
    char *big = xmalloc (BOXER_AUTH_HEADER_MAX + 16);
    memset (big, 'a', BOXER_AUTH_HEADER_MAX + 15);
    memcpy (big, "Bearer ", 7);
    big[BOXER_AUTH_HEADER_MAX + 15] = '\0';
    ck_assert_int_lt (boxer_auth_find (&cfg, big, &key, &err), 0);
    free (big);
  }
  /* The scheme is case-insensitive (RFC 7235); spaces around the key go.  */
  static const char *const taken[] = { "Bearer abc", "bearer abc", "BEARER  abc ", };
  for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++)
    {
      cleanup_error struct boxer_error *err = NULL;
      ck_assert_msg (boxer_auth_find (&cfg, taken[i], &key, &err) == 0, "refused '%s'", taken[i]);
      ck_assert_str_eq (key->name, "a");
    }
}
END_TEST

/* POST /sessions: defaults, bounds, what a session may not be.  */
START_TEST (test_session_parse)
{
  struct boxer_session_request s;
  struct boxer_api_key key = { .name = (char *) "k", .max_limits = cfg.max_limits };
  struct boxer_error *err = NULL;
  const char *ok = "{\"image\": \"busybox\", \"env\": {\"A\": \"1\"}, \"workdir\": \"/w\"}";
  static const char *const bad[] = {
    "{}",
    "{\"image\": \"busybox\", \"network\": \"bridge\"}",
    "{\"image\": \"busybox\", \"ttl_secs\": 0}",
    "{\"image\": \"busybox\", \"ttl_secs\": 86401}",
    "{\"image\": \"busybox\", \"ttl_secs\": 10, \"idle_timeout_secs\": 11}",
    "{\"image\": \"busybox\", \"idle_timeout_secs\": true}",
    "{\"image\": \"busybox\", \"cmd\": [\"true\"]}",
    "{\"image\": \"busybox\", \"workdir\": \"/a/../b\"}",
    "{\"image\": \"busybox\", \"limits\": {\"memory_mb\": 1}}",
  };

  ck_assert_int_eq (boxer_request_parse_session (&cfg, NULL, ok, strlen (ok), &s, &err), 0);
  ck_assert_str_eq (s.req.image, "busybox");
  ck_assert_str_eq (s.req.env[0], "A=1");
  ck_assert_str_eq (s.req.workdir, "/w");
  ck_assert_int_eq (s.idle_timeout_secs, BOXER_SESSION_IDLE_DEFAULT);
  ck_assert_int_eq (s.ttl_secs, BOXER_SESSION_TTL_DEFAULT);
  ck_assert_int_eq (s.req.limits.memory_mb, cfg.defaults.memory_mb);
  boxer_run_request_release (&s.req);

  /* A short ttl lowers the default idle timeout with it.  */
  ok = "{\"image\": \"busybox\", \"ttl_secs\": 60}";
  ck_assert_int_eq (boxer_request_parse_session (&cfg, NULL, ok, strlen (ok), &s, &err), 0);
  ck_assert_int_eq (s.idle_timeout_secs, 60);
  boxer_run_request_release (&s.req);

  /* A network, as a run's: the key must allow it.  */
  ok = "{\"image\": \"busybox\", \"network\": \"sandbox\"}";
  ck_assert_int_eq (boxer_request_parse_session (&cfg, NULL, ok, strlen (ok), &s, &err), 0);
  ck_assert_int_eq (s.req.network, BOXER_NETWORK_SANDBOX);
  boxer_run_request_release (&s.req);
  ck_assert_int_eq (boxer_request_parse_session (&cfg, &key, ok, strlen (ok), &s, &err), -1);
  ck_assert_int_eq (err->category, BOXER_ERR_FORBIDDEN);
  boxer_error_release (&err);

  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      ck_assert_msg (boxer_request_parse_session (&cfg, NULL, bad[i], strlen (bad[i]), &s, &err)
                     == -1, "accepted %s", bad[i]);
      ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
      ck_assert_ptr_null (s.req.image);
      boxer_error_release (&err);
    }

  /* A key's limits hold for sessions as for runs.  */
  key.max_limits.memory_mb = 64;
  ok = "{\"image\": \"busybox\", \"limits\": {\"memory_mb\": 128}}";
  ck_assert_int_eq (boxer_request_parse_session (&cfg, &key, ok, strlen (ok), &s, &err), -1);
  ck_assert_int_eq (err->category, BOXER_ERR_FORBIDDEN);
  boxer_error_release (&err);
}
END_TEST

START_TEST (test_exec_parse)
{
  struct boxer_run_request r;
  struct boxer_error *err = NULL;
  const char *ok = "{\"cmd\": [\"sh\", \"-c\", \"x\"], \"stdin\": \"in\", \"timeout_secs\": 5}";
  static const char *const bad[] = {
    "{}",
    "{\"cmd\": []}",
    "{\"cmd\": [\"\"]}",
    "{\"cmd\": [\"true\"], \"timeout_secs\": 0}",
    "{\"cmd\": [\"true\"], \"timeout_secs\": 601}",
    "{\"cmd\": [\"true\"], \"image\": \"busybox\"}",
    "{\"cmd\": [\"true\"], \"files\": []}",
  };

  ck_assert_int_eq (boxer_request_parse_exec (&cfg, NULL, ok, strlen (ok), &r, &err), 0);
  ck_assert_str_eq (r.cmd[2], "x");
  ck_assert_uint_eq (r.stdin_len, 2);
  ck_assert_int_eq (r.limits.wall_clock_secs, 5);
  boxer_run_request_release (&r);
  ok = "{\"cmd\": [\"true\"]}";
  ck_assert_int_eq (boxer_request_parse_exec (&cfg, NULL, ok, strlen (ok), &r, &err), 0);
  /* The session's own wall clock, which the keeper knows.  */
  ck_assert_int_eq (r.limits.wall_clock_secs, 0);
  boxer_run_request_release (&r);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      ck_assert_msg (boxer_request_parse_exec (&cfg, NULL, bad[i], strlen (bad[i]), &r, &err)
                     == -1, "accepted %s", bad[i]);
      ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
      ck_assert_ptr_null (r.cmd);
      boxer_error_release (&err);
    }
}
END_TEST

static Suite *
request_suite (void)
{
  Suite *s = suite_create ("request");
  TCase *tc = tcase_create ("parse_run");

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_minimal);
  tcase_add_test (tc, test_full);
  tcase_add_test (tc, test_empty_env_and_limits);
  tcase_add_test (tc, test_defaults_applied);
  tcase_add_test (tc, test_cpu_cores_integer);
  tcase_add_test (tc, test_whitespace_around);
  tcase_add_test (tc, test_duplicate_key_last_wins);
  tcase_add_loop_test (tc, test_limit_bounds, 0, sizeof limit_cases / sizeof limit_cases[0]);
  tcase_add_test (tc, test_limit_message_exact);
  tcase_add_test (tc, test_limit_max_from_config);
  tcase_add_test (tc, test_limit_huge_and_special_numbers);
  tcase_add_test (tc, test_limit_float_for_integer);
  tcase_add_test (tc, test_limit_wrong_types);
  tcase_add_test (tc, test_unknown_limit);
  tcase_add_test (tc, test_wrong_types);
  tcase_add_test (tc, test_unknown_fields);
  tcase_add_test (tc, test_files);
  tcase_add_test (tc, test_files_invalid);
  tcase_add_test (tc, test_files_count_bounded);
  tcase_add_test (tc, test_unknown_field_sanitized);
  tcase_add_test (tc, test_bad_values_sanitized);
  tcase_add_test (tc, test_malformed);
  tcase_add_test (tc, test_empty_body);
  tcase_add_test (tc, test_truncated);
  tcase_add_test (tc, test_trailing_garbage);
  tcase_add_test (tc, test_not_an_object);
  tcase_add_test (tc, test_nesting_depth);
  tcase_add_test (tc, test_nul_bytes);
  tcase_add_test (tc, test_nul_escape_lookalikes);
  tcase_add_test (tc, test_stdin_exact_bytes);
  tcase_add_test (tc, test_stdin_upload_limit);
  tcase_add_test (tc, test_cmd_limits);
  tcase_add_test (tc, test_env_keys);
  tcase_add_test (tc, test_env_limits);
  tcase_add_test (tc, test_workdir);
  tcase_add_test (tc, test_network);
  tcase_add_test (tc, test_image);
  tcase_add_test (tc, test_late_failure_releases);
  tcase_add_test (tc, test_key_limits_and_network);
  tcase_add_test (tc, test_auth_find);
  tcase_add_test (tc, test_session_parse);
  tcase_add_test (tc, test_exec_parse);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  SRunner *sr = srunner_create (request_suite ());
  int failed;

  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
