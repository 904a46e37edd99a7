/* Unit tests for the pure parts of registry pulls: authentication
   challenges and token responses (cache/auth.c), the token cache, and
   endpoints, platforms and manifest choice (cache/registry.c).  The
   network parts are covered by tests/integration/test_registry.py against
   a real registry on loopback.  */
#include <config.h>

#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "cache/auth.h"
#include "cache/registry.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* Challenges.  */

struct challenge_case
{
  const char *header;
  enum boxer_auth_scheme scheme;
  const char *realm, *service, *scope, *error;
};

static const struct challenge_case challenges[] = {
  { "Bearer realm=\"https://auth.example/token\",service=\"registry.example\","
    "scope=\"repository:library/python:pull\"",
    BOXER_AUTH_BEARER, "https://auth.example/token", "registry.example",
    "repository:library/python:pull", NULL },
  /* Several scopes, spaces, upper-case names, an error, unknown params.  */
  { "bearer  Realm = \"http://127.0.0.1:5001/token\" , Service=\"r\", "
    "scope=\"repository:a/b:pull,push repository:c:pull\", error=\"insufficient_scope\", x=y",
    BOXER_AUTH_BEARER, "http://127.0.0.1:5001/token", "r",
    "repository:a/b:pull,push repository:c:pull", "insufficient_scope" },
  { "Basic realm=\"Registry Realm\"", BOXER_AUTH_BASIC, "Registry Realm", NULL, NULL, NULL },
  /* Bearer wins over Basic, wherever it comes.  */
  { "Basic realm=\"b\", Bearer realm=\"https://t/x\",service=s", BOXER_AUTH_BEARER, "https://t/x",
    "s", NULL, NULL },
  { "Bearer realm=\"https://t\", Basic realm=\"b\"", BOXER_AUTH_BEARER, "https://t", NULL, NULL,
    NULL },
  /* Unknown schemes are skipped, tokens unquoted, escapes honoured.  */
  { "Negotiate, Basic realm=\"a \\\"quoted\\\" realm\"", BOXER_AUTH_BASIC, "a \"quoted\" realm",
    NULL, NULL, NULL },
  { "Bearer realm=https://t/token,service=svc", BOXER_AUTH_BEARER, "https://t/token", "svc", NULL,
    NULL },
  /* token68 forms have no parameters to keep.  */
  { "Foo dGVzdA==, Basic realm=r", BOXER_AUTH_BASIC, "r", NULL, NULL, NULL },
};

START_TEST (test_challenge)
{
  const struct challenge_case *c = &challenges[_i];
  struct boxer_auth_challenge ch;
  struct boxer_error *err = NULL;

  ck_assert_msg (boxer_auth_parse_challenge (c->header, &ch, &err) == 0, "%s: %s", c->header,
                 err ? err->msg : "");
  ck_assert_int_eq (ch.scheme, c->scheme);
  ck_assert_pstr_eq (ch.realm, c->realm);
  ck_assert_pstr_eq (ch.service, c->service);
  ck_assert_pstr_eq (ch.scope, c->scope);
  ck_assert_pstr_eq (ch.error, c->error);
  boxer_auth_challenge_release (&ch);
}
END_TEST

struct bad_challenge
{
  const char *header;
  const char *message;
};

static char long_header[BOXER_AUTH_HEADER_MAX + 100];

static const struct bad_challenge bad_challenges[] = {
  { "", "no WWW-Authenticate header" },
  { NULL, "no WWW-Authenticate header" },
  { "Negotiate", "authentication Boxer does not speak ('Negotiate')" },
  { "Bearer service=\"x\"", "Bearer challenge names no token realm" },
  { "Bearer realm=\"\"", "names no token realm" },
  { "Bearer realm=\"unterminated", "malformed authentication challenge" },
  { "Bearer realm=\"x\" @", "malformed authentication challenge 'Bearer realm=\"x\" @'" },
  { "\x01\x02", "malformed authentication challenge '?" "?'" },
  { long_header, "longer than 4096 bytes" },
};

START_TEST (test_bad_challenge)
{
  const struct bad_challenge *c = &bad_challenges[_i];
  struct boxer_auth_challenge ch;
  struct boxer_error *err = NULL;

  memset (long_header, 'a', sizeof long_header - 1);
  memcpy (long_header, "Basic realm=", 12);
  long_header[sizeof long_header - 1] = '\0';
  ck_assert_int_lt (boxer_auth_parse_challenge (c->header, &ch, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_REGISTRY);
  ck_assert_msg (strstr (err->msg, c->message) != NULL, "'%s' lacks '%s'", err->msg, c->message);
  ck_assert_int_eq (ch.scheme, BOXER_AUTH_NONE);
  ck_assert_ptr_null (ch.realm);
  boxer_error_free (err);
}
END_TEST

START_TEST (test_token_url)
{
  char *u;

  u = boxer_auth_token_url ("https://auth.example/token", "registry.example",
                            "repository:library/python:pull");
  ck_assert_str_eq (u, "https://auth.example/token?service=registry.example"
                       "&scope=repository%3Alibrary%2Fpython%3Apull");
  free (u);
  u = boxer_auth_token_url ("https://a/t?x=1", NULL, "repository:a b:pull");
  ck_assert_str_eq (u, "https://a/t?x=1&scope=repository%3Aa%20b%3Apull");
  free (u);
  u = boxer_auth_token_url ("https://a/t", "s&x=1", NULL);
  ck_assert_str_eq (u, "https://a/t?service=s%26x%3D1");
  free (u);
}
END_TEST

/* Token responses.  */

START_TEST (test_token_response)
{
  struct boxer_error *err = NULL;
  char *token = NULL;
  int64_t expires = 0;
  const char *both = "{\"token\": \"abc.def\", \"access_token\": \"other\", \"expires_in\": 300,"
                     " \"issued_at\": \"2026-01-01T00:00:00Z\"}";
  const char *access = "{\"access_token\": \"xyz\"}";
  const char *empty_token = "{\"token\": \"\", \"access_token\": \"fallback\"}";

  ck_assert_int_eq (boxer_auth_parse_token_response (both, strlen (both), &token, &expires, &err),
                    0);
  ck_assert_str_eq (token, "abc.def");
  ck_assert_int_eq (expires, 300);
  free (token);
  ck_assert_int_eq (
    boxer_auth_parse_token_response (access, strlen (access), &token, &expires, &err), 0);
  ck_assert_str_eq (token, "xyz");
  ck_assert_int_eq (expires, BOXER_AUTH_DEFAULT_EXPIRES_SECS);
  free (token);
  ck_assert_int_eq (boxer_auth_parse_token_response (empty_token, strlen (empty_token), &token,
                                                     &expires, &err),
                    0);
  ck_assert_str_eq (token, "fallback");
  free (token);
}
END_TEST

static const struct bad_challenge bad_tokens[] = {
  { "", "token response: not valid JSON" },
  { "[]", "token response: the document must be a JSON object" },
  { "{}", "the registry's token server answered without a token" },
  { "{\"token\": 5}", "token response: 'token' must be a string" },
  { "{\"token\": \"a b\"}", "a token with characters a header cannot carry" },
  { "{\"token\": \"a\\r\\nX-Evil: 1\"}", "characters a header cannot carry" },
  { "{\"token\": \"t\", \"expires_in\": 0}", "'expires_in' must be a positive integer" },
  { "{\"token\": \"t\", \"expires_in\": \"60\"}", "'expires_in' must be a positive integer" },
};

START_TEST (test_bad_token_response)
{
  const struct bad_challenge *c = &bad_tokens[_i];
  struct boxer_error *err = NULL;
  char *token = NULL;
  int64_t expires = 0;

  ck_assert_int_lt (boxer_auth_parse_token_response (c->header, strlen (c->header), &token,
                                                     &expires, &err),
                    0);
  ck_assert_ptr_null (token);
  ck_assert_int_eq (err->category, BOXER_ERR_REGISTRY);
  ck_assert_msg (strstr (err->msg, c->message) != NULL, "'%s' lacks '%s'", err->msg, c->message);
  boxer_error_free (err);
}
END_TEST

START_TEST (test_token_too_long)
{
  size_t n = BOXER_AUTH_TOKEN_MAX + 1;
  char *body = xmalloc (n + 32);
  struct boxer_error *err = NULL;
  char *token = NULL;
  int64_t expires;

  strcpy (body, "{\"token\": \"");
  memset (body + 11, 'x', n);
  strcpy (body + 11 + n, "\"}");
  ck_assert_int_lt (boxer_auth_parse_token_response (body, strlen (body), &token, &expires, &err),
                    0);
  ck_assert_ptr_nonnull (strstr (err->msg, "'token' is longer than"));
  boxer_error_free (err);
  free (body);
}
END_TEST

START_TEST (test_token_cache)
{
  struct boxer_auth_cache *c = boxer_auth_cache_new ();
  char key[32];

  ck_assert_ptr_null (boxer_auth_cache_get (c, "k", 0));
  /* 300 s: good until 10 s before the end.  */
  boxer_auth_cache_put (c, "k", "t1", 300, 1000);
  ck_assert_str_eq (boxer_auth_cache_get (c, "k", 1000), "t1");
  ck_assert_str_eq (boxer_auth_cache_get (c, "k", 1000 + 289999), "t1");
  ck_assert_ptr_null (boxer_auth_cache_get (c, "k", 1000 + 290000));
  /* 2 s: a quarter of its life is the margin.  */
  boxer_auth_cache_put (c, "short", "t2", 2, 0);
  ck_assert_str_eq (boxer_auth_cache_get (c, "short", 1499), "t2");
  ck_assert_ptr_null (boxer_auth_cache_get (c, "short", 1500));
  /* Replacing and dropping.  */
  boxer_auth_cache_put (c, "k", "t3", 60, 5000);
  ck_assert_str_eq (boxer_auth_cache_get (c, "k", 5000), "t3");
  boxer_auth_cache_drop (c, "k");
  ck_assert_ptr_null (boxer_auth_cache_get (c, "k", 5000));
  ck_assert_str_eq (boxer_auth_cache_get (c, "short", 0), "t2");
  /* Bounded: old entries make room for new ones.  */
  for (int i = 0; i < 200; i++)
    {
      snprintf (key, sizeof key, "key%d", i);
      boxer_auth_cache_put (c, key, "t", 100 + i, 0);
    }
  ck_assert_str_eq (boxer_auth_cache_get (c, "key199", 0), "t");
  ck_assert_ptr_null (boxer_auth_cache_get (c, "key0", 0));
  boxer_auth_cache_free (c);
}
END_TEST

/* Endpoints.  */

static struct boxer_config cfg;

static void
config_setup (void)
{
  const char *json = "{\"registries\": {"
                     "\"localhost:5000\": {\"insecure\": true},"
                     "\"mirrored.example\": {\"mirror\": \"http://127.0.0.1:5000/\","
                     "  \"username\": \"u\", \"password\": \"p\"},"
                     "\"" BOXER_REFERENCE_DEFAULT_DOMAIN "\": {\"mirror\": \"https://m.example:8443\"},"
                     "\"private.example\": {\"username\": \"me\", \"password\": \"secret\"}}}";
  struct boxer_error *err = NULL;

  boxer_config_init_defaults (&cfg);
  ck_assert_msg (boxer_config_parse (&cfg, json, strlen (json), &err) == 0, "%s",
                 err ? err->msg : "");
}

static void
config_teardown (void)
{
  boxer_config_release (&cfg);
}

struct endpoint_case
{
  const char *reference;
  const char *base;
  bool mirror, plain_http;
  const char *username;
};

static const struct endpoint_case endpoints[] = {
  { "localhost:5000/team/img:1", "http://localhost:5000", false, true, NULL },
  { "localhost:5001/team/img:1", "https://localhost:5001", false, false, NULL },
  { "localhost/img", "https://localhost", false, false, NULL },
  { "mirrored.example/a/b", "http://127.0.0.1:5000", true, true, "u" },
  { "python:3.12-slim", "https://m.example:8443", true, false, NULL },
  { "private.example:443/x", "https://private.example:443", false, false, NULL },
  { "private.example/x@sha256:" HEX64, "https://private.example", false, false, "me" },
  { "127.0.0.1:5000/x", "https://127.0.0.1:5000", false, false, NULL },
  { "[::1]:5000/x", "https://[::1]:5000", false, false, NULL },
};

START_TEST (test_endpoint)
{
  const struct endpoint_case *c = &endpoints[_i];
  struct boxer_registry_endpoint ep;
  struct boxer_reference ref;
  struct boxer_error *err = NULL;

  ck_assert_int_eq (boxer_reference_parse (c->reference, &ref, &err), 0);
  boxer_registry_endpoint_for (&cfg, &ref, &ep);
  ck_assert_str_eq (ep.base, c->base);
  ck_assert_str_eq (ep.domain, ref.domain);
  ck_assert_int_eq (ep.mirror, c->mirror);
  ck_assert_int_eq (ep.plain_http, c->plain_http);
  ck_assert_pstr_eq (ep.username, c->username);
  ck_assert_int_eq (ep.password == NULL, c->username == NULL);
  boxer_registry_endpoint_release (&ep);
  boxer_reference_release (&ref);
}
END_TEST

START_TEST (test_endpoint_default_registry)
{
  struct boxer_registry_endpoint ep;
  struct boxer_reference ref;
  struct boxer_error *err = NULL;
  char *host;

  /* Without config the default registry is its own host, over HTTPS.  */
  ck_assert_int_eq (boxer_reference_parse ("python", &ref, &err), 0);
  boxer_registry_endpoint_for (NULL, &ref, &ep);
  host = boxer_reference_registry_host (&ref);
  ck_assert_ptr_nonnull (strstr (ep.base, host));
  ck_assert_int_eq (strncmp (ep.base, "https://", 8), 0);
  ck_assert (!ep.mirror);
  ck_assert_ptr_null (ep.username);
  free (host);
  boxer_registry_endpoint_release (&ep);
  boxer_reference_release (&ref);
}
END_TEST

/* Platforms and manifest choice.  */

START_TEST (test_platform_parse)
{
  struct boxer_platform p;
  struct boxer_error *err = NULL;

  ck_assert_int_eq (boxer_platform_parse ("linux/amd64", &p, &err), 0);
  ck_assert_str_eq (p.os, "linux");
  ck_assert_str_eq (p.architecture, "amd64");
  ck_assert_ptr_null (p.variant);
  boxer_platform_release (&p);
  ck_assert_int_eq (boxer_platform_parse ("linux/arm/v7", &p, &err), 0);
  ck_assert_str_eq (p.architecture, "arm");
  ck_assert_str_eq (p.variant, "v7");
  boxer_platform_release (&p);
  ck_assert_int_lt (boxer_platform_parse ("amd64", &p, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
  ck_assert_str_eq (err->msg, "platform 'amd64' must be OS/ARCH or OS/ARCH/VARIANT");
  boxer_error_release (&err);
  ck_assert_int_lt (boxer_platform_parse ("linux/", &p, &err), 0);
  boxer_error_release (&err);
  ck_assert_int_lt (boxer_platform_parse ("linux/arm/", &p, &err), 0);
  boxer_error_release (&err);
}
END_TEST

static const char *multi_index
  = "{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.oci.image.index.v1+json\","
    " \"manifests\": ["
    "  {\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"size\": 1,"
    "   \"digest\": \"sha256:" HEX64 "\", \"platform\": {\"os\": \"linux\", \"architecture\": "
    "\"arm\", \"variant\": \"v6\"}},"
    "  {\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"size\": 1,"
    "   \"digest\": \"sha256:" HEX64 "\", \"platform\": {\"os\": \"linux\", \"architecture\": "
    "\"arm\", \"variant\": \"v7\"}},"
    "  {\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"size\": 1,"
    "   \"digest\": \"sha256:" HEX64 "\", \"platform\": {\"os\": \"unknown\", \"architecture\": "
    "\"unknown\"}},"
    "  {\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"size\": 1,"
    "   \"digest\": \"sha256:" HEX64 "\", \"platform\": {\"os\": \"linux\", \"architecture\": "
    "\"amd64\", \"variant\": \"v3\"}},"
    "  {\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"size\": 1,"
    "   \"digest\": \"sha256:" HEX64 "\", \"platform\": {\"os\": \"linux\", \"architecture\": "
    "\"amd64\"}},"
    "  {\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"size\": 1,"
    "   \"digest\": \"sha256:" HEX64 "\"},"
    "  {\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"size\": 1,"
    "   \"digest\": \"sha256:" HEX64 "\", \"platform\": {\"os\": \"windows\", \"architecture\": "
    "\"amd64\"}}]}";

struct select_case
{
  const char *platform;
  long want;            /* index, or -1 for none */
};

static const struct select_case selects[] = {
  { "linux/amd64", 4 },         /* no variant beats a variant */
  { "linux/amd64/v3", 3 },
  { "linux/amd64/v2", 4 },      /* none naming v2: the one naming no variant */
  { "linux/arm/v7", 1 },
  { "linux/arm/v6", 0 },
  { "linux/arm", 0 },           /* any variant will do, the first */
  { "linux/arm/v8", -1 },
  { "windows/amd64", 6 },
  { "linux/s390x", -1 },
};

START_TEST (test_select_manifest)
{
  const struct select_case *c = &selects[_i];
  struct boxer_oci_index idx;
  struct boxer_platform p;
  struct boxer_error *err = NULL;
  size_t pick = 999;

  ck_assert_int_eq (boxer_oci_index_parse (multi_index, strlen (multi_index), &idx, &err), 0);
  ck_assert_int_eq (boxer_platform_parse (c->platform, &p, &err), 0);
  if (c->want >= 0)
    {
      ck_assert_msg (boxer_registry_select_manifest (&idx, &p, &pick, &err) == 0, "%s: %s",
                     c->platform, err ? err->msg : "");
      ck_assert_uint_eq (pick, (size_t) c->want);
    }
  else
    {
      ck_assert_int_lt (boxer_registry_select_manifest (&idx, &p, &pick, &err), 0);
      ck_assert_int_eq (err->category, BOXER_ERR_IMAGE_NOT_FOUND);
      ck_assert_msg (strstr (err->msg, "(it offers linux/arm/v6, linux/arm/v7, unknown/unknown, "
                                       "linux/amd64/v3, linux/amd64, windows/amd64)")
                       != NULL,
                     "%s", err->msg);
      ck_assert_ptr_nonnull (strstr (err->msg, c->platform));
      boxer_error_release (&err);
    }
  boxer_platform_release (&p);
  boxer_oci_index_release (&idx);
}
END_TEST

START_TEST (test_manifest_is_index)
{
  struct boxer_error *err = NULL;
  const char *idx = "{\"schemaVersion\": 2, \"manifests\": []}";
  const char *man = "{\"schemaVersion\": 2, \"layers\": []}";
  bool is = false;

  ck_assert_int_eq (boxer_registry_manifest_is_index (BOXER_OCI_MEDIA_INDEX, "", 0, &is, &err), 0);
  ck_assert (is);
  ck_assert_int_eq (boxer_registry_manifest_is_index (BOXER_DOCKER_MEDIA_LIST, "", 0, &is, &err),
                    0);
  ck_assert (is);
  ck_assert_int_eq (
    boxer_registry_manifest_is_index (BOXER_DOCKER_MEDIA_MANIFEST, "", 0, &is, &err), 0);
  ck_assert (!is);
  ck_assert_int_eq (boxer_registry_manifest_is_index (NULL, idx, strlen (idx), &is, &err), 0);
  ck_assert (is);
  ck_assert_int_eq (
    boxer_registry_manifest_is_index ("application/json", man, strlen (man), &is, &err), 0);
  ck_assert (!is);
  ck_assert_int_lt (boxer_registry_manifest_is_index (
                      "application/vnd.docker.distribution.manifest.v1+prettyjws", man,
                      strlen (man), &is, &err),
                    0);
  ck_assert_int_eq (err->category, BOXER_ERR_REGISTRY);
  ck_assert_ptr_nonnull (strstr (err->msg, "Docker schema 1 manifest"));
  boxer_error_release (&err);
  ck_assert_int_lt (boxer_registry_manifest_is_index (NULL, "<html>", 6, &is, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_REGISTRY);
  ck_assert_ptr_nonnull (strstr (err->msg, "image manifest: not valid JSON"));
  boxer_error_release (&err);
}
END_TEST

/* The address classifier, on sockaddr values only: nothing is sent.  */
struct address_case
{
  const char *addr;
  bool is_public;
};

static const struct address_case addresses[] = {
  { "0.0.0.0", false }, { "127.0.0.1", false }, { "127.255.0.9", false },
  { "10.1.2.3", false }, { "172.16.0.1", false }, { "172.31.255.255", false },
  { "192.168.1.1", false }, { "169.254.169.254", false }, { "100.64.0.1", false },
  { "100.127.255.254", false }, { "224.0.0.1", false }, { "239.255.255.250", false },
  { "240.0.0.1", false }, { "255.255.255.255", false }, { "192.0.2.1", false },
  { "198.18.0.1", false }, { "198.51.100.7", false }, { "203.0.113.9", false },
  { "192.0.0.8", false },
  { "172.15.255.255", true }, { "172.32.0.0", true }, { "100.63.255.255", true },
  { "100.128.0.0", true }, { "11.0.0.1", true }, { "1.1.1.1", true }, { "9.9.9.9", true },
  { "::", false }, { "::1", false }, { "::ffff:127.0.0.1", false },
  { "::ffff:10.0.0.1", false }, { "::ffff:1.1.1.1", true }, { "::127.0.0.1", false },
  { "fe80::1", false }, { "fec0::1", false }, { "fc00::1", false }, { "fd12:3456::1", false },
  { "ff02::1", false }, { "2001:db8::1", false }, { "100::1", false },
  { "64:ff9b::a9fe:a9fe", false }, { "64:ff9b::101:101", true }, { "64:ff9b:1::1", false },
  { "2002:7f00:1::1", false }, { "2002:c0a8:101::1", false }, { "2002:101:101::1", true },
  { "2001:0:1::1", false }, { "2606:4700::1111", true }, { "2a00:1450::1", true },
  { "4000::1", false },
};

START_TEST (test_address_is_public)
{
  const struct address_case *c = &addresses[_i];
  struct sockaddr_in in4 = { .sin_family = AF_INET };
  struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };

  if (inet_pton (AF_INET, c->addr, &in4.sin_addr) == 1)
    ck_assert_msg (boxer_registry_address_is_public ((struct sockaddr *) &in4) == c->is_public,
                   "%s", c->addr);
  else
    {
      ck_assert_int_eq (inet_pton (AF_INET6, c->addr, &in6.sin6_addr), 1);
      ck_assert_msg (boxer_registry_address_is_public ((struct sockaddr *) &in6) == c->is_public,
                     "%s", c->addr);
    }
}
END_TEST

START_TEST (test_allowed_registries)
{
  struct boxer_config c;
  struct boxer_error *err = NULL;
  static const char json[] = "{\"allowed_registries\": [\"ghcr.io\", \"docker.io\"],"
                             " \"registries\": {\"localhost:5000\": {\"insecure\": true}}}";

  boxer_config_init_defaults (&c);
  /* No list: anything may be asked for (the address policy still holds).  */
  ck_assert_int_eq (boxer_registry_check_allowed (&c, "quay.io", &err), 0);
  ck_assert_int_eq (boxer_config_parse (&c, json, strlen (json), &err), 0);
  ck_assert_int_eq (boxer_registry_check_allowed (&c, "ghcr.io", &err), 0);
  ck_assert_int_eq (boxer_registry_check_allowed (&c, "docker.io", &err), 0);
  ck_assert_int_eq (boxer_registry_check_allowed (&c, "localhost:5000", &err), 0);
  ck_assert_int_lt (boxer_registry_check_allowed (&c, "quay.io", &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_FORBIDDEN);
  ck_assert_str_eq (err->msg, "pulling from registry 'quay.io' is not allowed: it is not in the "
                              "server's allowed_registries");
  boxer_error_release (&err);
  boxer_config_release (&c);
}
END_TEST

static Suite *
registry_suite (void)
{
  Suite *s = suite_create ("registry");
  TCase *auth = tcase_create ("auth");
  TCase *ep = tcase_create ("endpoint");
  TCase *pick = tcase_create ("manifest");
  TCase *policy = tcase_create ("policy");

  tcase_add_loop_test (auth, test_challenge, 0, sizeof challenges / sizeof challenges[0]);
  tcase_add_loop_test (auth, test_bad_challenge, 0,
                       sizeof bad_challenges / sizeof bad_challenges[0]);
  tcase_add_test (auth, test_token_url);
  tcase_add_test (auth, test_token_response);
  tcase_add_loop_test (auth, test_bad_token_response, 0, sizeof bad_tokens / sizeof bad_tokens[0]);
  tcase_add_test (auth, test_token_too_long);
  tcase_add_test (auth, test_token_cache);
  suite_add_tcase (s, auth);

  tcase_add_checked_fixture (ep, config_setup, config_teardown);
  tcase_add_loop_test (ep, test_endpoint, 0, sizeof endpoints / sizeof endpoints[0]);
  tcase_add_test (ep, test_endpoint_default_registry);
  suite_add_tcase (s, ep);

  tcase_add_test (pick, test_platform_parse);
  tcase_add_loop_test (pick, test_select_manifest, 0, sizeof selects / sizeof selects[0]);
  tcase_add_test (pick, test_manifest_is_index);
  suite_add_tcase (s, pick);

  tcase_add_loop_test (policy, test_address_is_public, 0, sizeof addresses / sizeof addresses[0]);
  tcase_add_test (policy, test_allowed_registries);
  suite_add_tcase (s, policy);
  return s;
}

int
main (void)
{
  SRunner *sr = srunner_create (registry_suite ());
  int failed;

  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
