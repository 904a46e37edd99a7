#include <config.h>

#include "registry.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <strings.h>
#include <time.h>

#include "common/buf.h"
#include "common/fsutil.h"

/* What we keep of a refusal's body, to quote the registry's reason.  */
#define ERROR_BODY_MAX (64 * 1024)
#define MAX_REDIRECTS 5
#define BACKOFF_MS 250
#define USER_AGENT "boxer/" PACKAGE_VERSION
/* Quoted registry text (error codes and messages) is cut here.  */
#define QUOTE_MAX 160

/* Endpoints and platforms (pure).  */

void
boxer_registry_endpoint_for (const struct boxer_config *cfg, const struct boxer_reference *ref,
                             struct boxer_registry_endpoint *out)
{
  const struct boxer_registry_config *rc = cfg ? boxer_config_registry (cfg, ref->domain) : NULL;

  memset (out, 0, sizeof *out);
  out->domain = xstrdup (ref->domain);
  if (rc && rc->mirror)
    {
      size_t len = strlen (rc->mirror);
      out->base = xstrndup (rc->mirror, len && rc->mirror[len - 1] == '/' ? len - 1 : len);
      out->mirror = true;
    }
  else
    {
      cleanup_free char *host = boxer_reference_registry_host (ref);
      out->base = xasprintf ("%s://%s", rc && rc->insecure ? "http" : "https", host);
    }
  out->plain_http = strncmp (out->base, "http://", 7) == 0;
  out->username = rc ? rc->username : NULL;
  out->password = rc ? rc->password : NULL;
}

void
boxer_registry_endpoint_release (struct boxer_registry_endpoint *ep)
{
  free (ep->domain);
  free (ep->base);
  memset (ep, 0, sizeof *ep);
}

/* Body bytes this process has received from registries, for
   boxer_pulled_bytes_total: a worker takes the difference around a pull.  */
static uint64_t bytes_received;

int
boxer_platform_parse (const char *s, struct boxer_platform *out, struct boxer_error **err)
{
  const char *a = strchr (s, '/');
  const char *v = a ? strchr (a + 1, '/') : NULL;

  memset (out, 0, sizeof *out);
  if (a == NULL || a == s || a[1] == '\0' || a[1] == '/' || (v && v[1] == '\0'))
    {
      cleanup_free char *q = boxer_quote_str (s);
      return boxer_error_make (err, BOXER_ERR_INVALID,
                               "platform '%s' must be OS/ARCH or OS/ARCH/VARIANT", q);
    }
  out->os = xstrndup (s, a - s);
  out->architecture = v ? xstrndup (a + 1, v - a - 1) : xstrdup (a + 1);
  out->variant = v ? xstrdup (v + 1) : NULL;
  return 0;
}

void
boxer_platform_release (struct boxer_platform *p)
{
  free (p->os);
  free (p->architecture);
  free (p->variant);
  memset (p, 0, sizeof *p);
}

/* How well index entry d fits: 0 not at all, 1 it will do, 2 exactly.  */
static int
platform_fit (const struct boxer_oci_descriptor *d, const struct boxer_platform *want)
{
  if (d->os == NULL || d->architecture == NULL || strcmp (d->os, want->os) != 0
      || strcmp (d->architecture, want->architecture) != 0)
    return 0;
  if (want->variant == NULL)
    return d->variant == NULL ? 2 : 1;
  if (d->variant == NULL)
    return 1;
  return strcmp (d->variant, want->variant) == 0 ? 2 : 0;
}

static char *
offered_platforms (const struct boxer_oci_index *idx)
{
  struct boxer_buf list;

  boxer_buf_init (&list, 512);
  for (size_t i = 0; i < idx->n_manifests; i++)
    {
      const struct boxer_oci_descriptor *d = &idx->manifests[i];
      cleanup_free char *one = NULL;
      bool seen = false;
      if (d->os == NULL || d->architecture == NULL)
        continue;
      for (size_t j = 0; j < i && !seen; j++)
        {
          const struct boxer_oci_descriptor *e = &idx->manifests[j];
          seen = e->os && e->architecture && strcmp (e->os, d->os) == 0
                 && strcmp (e->architecture, d->architecture) == 0
                 && (e->variant == NULL) == (d->variant == NULL)
                 && (d->variant == NULL || strcmp (e->variant, d->variant) == 0);
        }
      if (seen)
        continue;
      one = xasprintf ("%s%s/%s%s%s", list.len ? ", " : "", d->os, d->architecture,
                       d->variant ? "/" : "", d->variant ? d->variant : "");
      boxer_buf_append_capped (&list, one, strlen (one));
    }
  if (list.len == 0)
    boxer_buf_append_capped (&list, "none", 4);
  return boxer_buf_steal (&list, NULL);
}

int
boxer_registry_select_manifest (const struct boxer_oci_index *idx,
                                const struct boxer_platform *platform, size_t *out,
                                struct boxer_error **err)
{
  int best = 0;
  cleanup_free char *offered = NULL;
  cleanup_free char *q = NULL;

  for (size_t i = 0; i < idx->n_manifests; i++)
    {
      int fit = platform_fit (&idx->manifests[i], platform);
      if (fit > best)
        {
          best = fit;
          *out = i;
        }
    }
  if (best > 0)
    return 0;
  offered = offered_platforms (idx);
  q = boxer_quote (offered, strlen (offered), QUOTE_MAX);
  return boxer_error_make (err, BOXER_ERR_IMAGE_NOT_FOUND,
                           "the image has no variant for %s/%s%s%s (it offers %s)", platform->os,
                           platform->architecture, platform->variant ? "/" : "",
                           platform->variant ? platform->variant : "", q);
}

int
boxer_registry_manifest_is_index (const char *media_type, const char *body, size_t len,
                                  bool *out, struct boxer_error **err)
{
  json_object *root = NULL;

  if (boxer_oci_media_type_is_index (media_type))
    {
      *out = true;
      return 0;
    }
  if (boxer_oci_media_type_is_manifest (media_type))
    {
      *out = false;
      return 0;
    }
  if (media_type && strncmp (media_type, "application/vnd.docker.distribution.manifest.v1", 47)
                      == 0)
    return boxer_error_make (err, BOXER_ERR_REGISTRY,
                             "the registry only offers a Docker schema 1 manifest, which Boxer "
                             "does not pull; push the image again with a current client");
  /* Registries answer generic types ("application/json", none) for
     documents pushed without one: the content says what it is.  */
  if (boxer_oci_json_parse (body, len, BOXER_OCI_DOC_MAX, "image manifest", &root, err) < 0)
    {
      (*err)->category = BOXER_ERR_REGISTRY;
      return -1;
    }
  *out = json_object_object_get_ex (root, "manifests", NULL);
  json_object_put (root);
  return 0;
}

/* Addresses.  */

struct v4_range
{
  uint32_t net;
  int prefix;
};

/* Not public: the default sandbox_deny_ranges, then special-purpose
   ranges no registry is on (IETF protocol assignments, documentation,
   benchmarking, 6to4 relay anycast).  */
static const struct v4_range v4_denied[] = {
  { 0x00000000, 8 },    /* 0.0.0.0/8 */
  { 0x0a000000, 8 },    /* 10.0.0.0/8 */
  { 0x64400000, 10 },   /* 100.64.0.0/10 */
  { 0x7f000000, 8 },    /* 127.0.0.0/8 */
  { 0xa9fe0000, 16 },   /* 169.254.0.0/16 */
  { 0xac100000, 12 },   /* 172.16.0.0/12 */
  { 0xc0a80000, 16 },   /* 192.168.0.0/16 */
  { 0xe0000000, 4 },    /* 224.0.0.0/4 */
  { 0xf0000000, 4 },    /* 240.0.0.0/4, 255.255.255.255 included */
  { 0xc0000000, 24 },   /* 192.0.0.0/24 */
  { 0xc0000200, 24 },   /* 192.0.2.0/24 */
  { 0xc0586300, 24 },   /* 192.88.99.0/24 */
  { 0xc6120000, 15 },   /* 198.18.0.0/15 */
  { 0xc6336400, 24 },   /* 198.51.100.0/24 */
  { 0xcb007100, 24 },   /* 203.0.113.0/24 */
};

static bool
v4_is_public (uint32_t a)
{
  for (size_t i = 0; i < sizeof v4_denied / sizeof *v4_denied; i++)
    {
      uint32_t mask = v4_denied[i].prefix ? ~0u << (32 - v4_denied[i].prefix) : 0;
      if ((a & mask) == v4_denied[i].net)
        return false;
    }
  return true;
}

static uint32_t
v4_at (const uint8_t *b)
{
  return (uint32_t) b[0] << 24 | (uint32_t) b[1] << 16 | (uint32_t) b[2] << 8 | b[3];
}

static bool
v6_is_public (const uint8_t *b)
{
  static const uint8_t zero[10] = { 0 };
  static const uint8_t nat64[12] = { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };

  /* ::/96 (unspecified, loopback, the deprecated compatible form) and
     ::ffff:0:0/96 (mapped): what matters is the IPv4 address, if any.  */
  if (memcmp (b, zero, 10) == 0)
    {
      if (b[10] == 0xff && b[11] == 0xff)
        return v4_is_public (v4_at (b + 12));
      return false;
    }
  /* 64:ff9b::/96, the NAT64 prefix: the IPv4 address it reaches.  */
  if (memcmp (b, nat64, 12) == 0)
    return v4_is_public (v4_at (b + 12));
  /* 64:ff9b:1::/48, local NAT64.  */
  if (b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0 && b[5] == 1)
    return false;
  /* 2002::/16, 6to4: the IPv4 address it tunnels to.  */
  if (b[0] == 0x20 && b[1] == 0x02)
    return v4_is_public (v4_at (b + 2));
  /* 2001::/23 (IETF protocol assignments, Teredo included), 2001:db8::/32
     (documentation), 100::/64 (discard).  */
  if (b[0] == 0x20 && b[1] == 0x01 && (b[2] < 0x02 || (b[2] == 0x0d && b[3] == 0xb8)))
    return false;
  if (b[0] == 0x01 && b[1] == 0x00 && memcmp (b + 2, zero, 6) == 0)
    return false;
  /* fc00::/7 (unique local), fe80::/10 (link-local), fec0::/10 (old
     site-local), ff00::/8 (multicast).  */
  if ((b[0] & 0xfe) == 0xfc || b[0] == 0xfe || b[0] == 0xff)
    return false;
  /* Only global unicast, 2000::/3, is routed on the Internet.  */
  return (b[0] & 0xe0) == 0x20;
}

bool
boxer_registry_address_is_public (const struct sockaddr *addr)
{
  if (addr->sa_family == AF_INET)
    return v4_is_public (ntohl (((const struct sockaddr_in *) addr)->sin_addr.s_addr));
  if (addr->sa_family == AF_INET6)
    return v6_is_public (((const struct sockaddr_in6 *) addr)->sin6_addr.s6_addr);
  return false;
}

static bool
domain_configured (const struct boxer_config *cfg, const char *domain)
{
  return cfg && boxer_config_registry (cfg, domain) != NULL;
}

int
boxer_registry_check_allowed (const struct boxer_config *cfg, const char *domain,
                              struct boxer_error **err)
{
  cleanup_free char *q = NULL;

  if (cfg == NULL || cfg->allowed_registries == NULL || domain_configured (cfg, domain))
    return 0;
  for (char **a = cfg->allowed_registries; *a; a++)
    if (strcasecmp (*a, domain) == 0)
      return 0;
  q = boxer_quote_str (domain);
  return boxer_error_make (err, BOXER_ERR_FORBIDDEN,
                           "pulling from registry '%s' is not allowed: it is not in the "
                           "server's allowed_registries",
                           q);
}

/* host and port of url, the port defaulted by scheme.  */
static bool
url_host_port (const char *url, char **host_out, long *port_out)
{
  CURLU *u = curl_url ();
  char *host = NULL, *port = NULL;
  bool ok = false;

  if (u && curl_url_set (u, CURLUPART_URL, url, 0) == CURLUE_OK
      && curl_url_get (u, CURLUPART_HOST, &host, 0) == CURLUE_OK
      && curl_url_get (u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
    {
      *host_out = xstrdup (host);
      *port_out = strtol (port, NULL, 10);
      ok = true;
    }
  curl_free (host);
  curl_free (port);
  curl_url_cleanup (u);
  return ok;
}

/* An authority configured as a registry or mirror: connections to it go
   to whatever address it has, as the operator chose.  */
struct authority
{
  char *host;
  long port;            /* 0: the scheme's default, 80 or 443 */
};

static void
add_authority (struct authority **list, size_t *n, const char *url, bool port_given)
{
  char *host = NULL;
  long port = 0;

  if (!url_host_port (url, &host, &port))
    return;
  *list = xrealloc (*list, (*n + 1) * sizeof **list);
  (*list)[*n].host = host;
  (*list)[*n].port = port_given ? port : 0;
  (*n)++;
}

static bool
has_port (const char *authority)
{
  const char *close = strrchr (authority, ']');
  const char *colon = strrchr (close ? close : authority, ':');

  return colon != NULL;
}

/* Sessions.  */

struct boxer_registry
{
  struct authority *configured;
  size_t n_configured;
  int64_t deadline_ms;
  bool denied;          /* the transfer tried an address it may not reach */
  const struct boxer_registry_endpoint *ep;
  char *repository;
  long timeout_secs;
  struct boxer_auth_cache *tokens;
  struct boxer_auth_cache *own_tokens;   /* when the caller gave none */
  CURL *curl;
  char *scope;          /* "repository:<repository>:pull" */
  char *token_key;      /* our entry in tokens */
  char *bearer;         /* the token we send, or NULL */
  bool basic;           /* send the configured credentials */
  char errbuf[CURL_ERROR_SIZE];
};

enum sink_kind
{
  SINK_MEMORY,
  SINK_FILE,
};

/* One request's response.  Only a 2xx body goes to the sink, hashed on the
   way; others are kept, capped, for the registry's error message.  */
struct transfer
{
  enum sink_kind kind;
  CURL *curl;
  struct boxer_buf body;        /* SINK_MEMORY */
  int fd;                       /* SINK_FILE */
  EVP_MD_CTX *md;
  int64_t max;                  /* of a 2xx body */
  int64_t received;
  bool too_large;
  int write_errno;
  struct boxer_buf error_body;
  /* Headers of the last response (redirects reset them).  */
  char *content_type;
  char *www_authenticate;
  char *docker_digest;
};

static void
transfer_init (struct transfer *t, enum sink_kind kind, int fd, int64_t max)
{
  memset (t, 0, sizeof *t);
  t->kind = kind;
  t->fd = fd;
  t->max = max;
  t->md = EVP_MD_CTX_new ();
  if (t->md == NULL)
    abort ();
  boxer_buf_init (&t->body, (size_t) max);
  boxer_buf_init (&t->error_body, ERROR_BODY_MAX);
}

static void
clear_headers (struct transfer *t)
{
  free (t->content_type);
  free (t->www_authenticate);
  free (t->docker_digest);
  t->content_type = t->www_authenticate = t->docker_digest = NULL;
}

static void
transfer_release (struct transfer *t)
{
  clear_headers (t);
  boxer_buf_release (&t->body);
  boxer_buf_release (&t->error_body);
  EVP_MD_CTX_free (t->md);
  t->md = NULL;
}

/* Back to nothing received, for another attempt.  */
static int
transfer_reset (struct transfer *t, struct boxer_error **err)
{
  clear_headers (t);
  boxer_buf_release (&t->body);
  boxer_buf_init (&t->body, (size_t) t->max);
  boxer_buf_release (&t->error_body);
  boxer_buf_init (&t->error_body, ERROR_BODY_MAX);
  t->received = 0;
  t->too_large = false;
  t->write_errno = 0;
  if (EVP_DigestInit_ex (t->md, EVP_sha256 (), NULL) != 1)
    abort ();
  if (t->kind == SINK_FILE && (ftruncate (t->fd, 0) < 0 || lseek (t->fd, 0, SEEK_SET) < 0))
    return boxer_error_errno (err, errno, "truncate a blob download");
  return 0;
}

static void
digest_hex (struct transfer *t, char hex[65])
{
  static const char digits[] = "0123456789abcdef";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;

  if (EVP_DigestFinal_ex (t->md, md, &n) != 1 || n != 32)
    abort ();
  for (unsigned int i = 0; i < n; i++)
    {
      hex[2 * i] = digits[md[i] >> 4];
      hex[2 * i + 1] = digits[md[i] & 15];
    }
  hex[64] = '\0';
}

static size_t
on_body (char *data, size_t size, size_t nmemb, void *userdata)
{
  struct transfer *t = userdata;
  size_t n = size * nmemb;
  long status = 0;

  curl_easy_getinfo (t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status > 299)
    {
      boxer_buf_append_capped (&t->error_body, data, n);
      return n;
    }
  if ((int64_t) n > t->max - t->received)
    {
      /* More than the descriptor or our bound: stop here, not at the end
         of whatever the registry wants to send.  */
      t->too_large = true;
      return 0;
    }
  t->received += n;
  if (t->kind == SINK_MEMORY)
    {
      if (boxer_buf_append (&t->body, data, n, NULL) < 0)
        {
          t->too_large = true;
          return 0;
        }
    }
  else
    {
      struct boxer_error *e = NULL;
      if (boxer_write_all (t->fd, data, n, &e) < 0)
        {
          t->write_errno = e->errnum ? e->errnum : EIO;
          boxer_error_free (e);
          return 0;
        }
    }
  if (EVP_DigestUpdate (t->md, data, n) != 1)
    abort ();
  return n;
}

/* Keep value (trimmed) of the header line if it is name.  */
static bool
header_value (const char *line, size_t len, const char *name, char **slot, bool append)
{
  size_t nlen = strlen (name);
  const char *v, *end;

  if (len <= nlen || line[nlen] != ':' || strncasecmp (line, name, nlen) != 0)
    return false;
  v = line + nlen + 1;
  end = line + len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
    end--;
  if (append && *slot)
    {
      /* Several WWW-Authenticate headers are one comma-separated list.  */
      char *joined = xasprintf ("%s, %.*s", *slot, (int) (end - v), v);
      free (*slot);
      *slot = joined;
    }
  else
    {
      free (*slot);
      *slot = xstrndup (v, end - v);
    }
  return true;
}

static size_t
on_header (char *data, size_t size, size_t nmemb, void *userdata)
{
  struct transfer *t = userdata;
  size_t n = size * nmemb;

  /* A status line starts a new response (after a redirect or a 100).  */
  if (n >= 5 && strncmp (data, "HTTP/", 5) == 0)
    {
      clear_headers (t);
      return n;
    }
  if (n > BOXER_AUTH_HEADER_MAX)
    return n;
  if (!header_value (data, n, "content-type", &t->content_type, false)
      && !header_value (data, n, "docker-content-digest", &t->docker_digest, false))
    header_value (data, n, "www-authenticate", &t->www_authenticate, true);
  if (t->www_authenticate && strlen (t->www_authenticate) > BOXER_AUTH_HEADER_MAX)
    t->www_authenticate[BOXER_AUTH_HEADER_MAX] = '\0';
  return n;
}

static void
free_slist (struct curl_slist **l)
{
  curl_slist_free_all (*l);
}

static const char *
allowed_protocols (const struct boxer_registry *reg)
{
  /* HTTPS stays HTTPS through redirects; plain HTTP was the operator's
     choice for this registry and may be redirected to either.  */
  return reg->ep->plain_http ? "http,https" : "https";
}

/* Whether the connection about to be made to addr may be: a public
   address, or a configured registry's authority (the URL being fetched,
   which libcurl has already switched on a redirect).  */
static bool
connection_allowed (struct boxer_registry *reg, const struct sockaddr *addr)
{
  cleanup_free char *host = NULL;
  char *url = NULL;
  long port = 0;

  if (boxer_registry_address_is_public (addr))
    return true;
  if (curl_easy_getinfo (reg->curl, CURLINFO_EFFECTIVE_URL, &url) != CURLE_OK || url == NULL
      || !url_host_port (url, &host, &port))
    return false;
  for (size_t i = 0; i < reg->n_configured; i++)
    {
      const struct authority *a = &reg->configured[i];
      if (strcasecmp (a->host, host) == 0
          && (a->port == port || (a->port == 0 && (port == 80 || port == 443))))
        return true;
    }
  return false;
}

static curl_socket_t
open_socket (void *data, curlsocktype purpose, struct curl_sockaddr *addr)
{
  struct boxer_registry *reg = data;

  /* One refused address fails the transfer, so a host is reached only if
     every address tried was allowed.  */
  if (reg->denied || purpose != CURLSOCKTYPE_IPCXN || !connection_allowed (reg, &addr->addr))
    {
      reg->denied = true;
      return CURL_SOCKET_BAD;
    }
  return socket (addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

/* One attempt at GET url.  user/password: basic credentials for this
   request only (curl never sends them to another host on a redirect, nor
   an Authorization header we set).  */
static CURLcode
attempt (struct boxer_registry *reg, const char *url, const char *accept, struct transfer *t,
         bool small, const char *user, const char *password)
{
  CURL *c = reg->curl;
  __attribute__ ((cleanup (free_slist))) struct curl_slist *headers = NULL;
  cleanup_free char *accept_h = accept ? xasprintf ("Accept: %s", accept) : NULL;
  cleanup_free char *auth_h = NULL;

  curl_easy_reset (c);
  t->curl = c;
  reg->errbuf[0] = '\0';
  if (accept_h)
    headers = curl_slist_append (headers, accept_h);
  if (reg->bearer && user == NULL)
    {
      auth_h = xasprintf ("Authorization: Bearer %s", reg->bearer);
      headers = curl_slist_append (headers, auth_h);
    }
  curl_easy_setopt (c, CURLOPT_URL, url);
  /* Every connection goes through the address policy; a proxy from the
     environment would hide the address really reached.  */
  curl_easy_setopt (c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
  curl_easy_setopt (c, CURLOPT_OPENSOCKETDATA, reg);
  curl_easy_setopt (c, CURLOPT_PROXY, "");
  reg->denied = false;
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt (c, CURLOPT_PROTOCOLS_STR, allowed_protocols (reg));
  curl_easy_setopt (c, CURLOPT_REDIR_PROTOCOLS_STR, allowed_protocols (reg));
#else
  curl_easy_setopt (c, CURLOPT_PROTOCOLS,
                    reg->ep->plain_http ? CURLPROTO_HTTP | CURLPROTO_HTTPS : CURLPROTO_HTTPS);
  curl_easy_setopt (c, CURLOPT_REDIR_PROTOCOLS,
                    reg->ep->plain_http ? CURLPROTO_HTTP | CURLPROTO_HTTPS : CURLPROTO_HTTPS);
#endif
  curl_easy_setopt (c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt (c, CURLOPT_MAXREDIRS, (long) MAX_REDIRECTS);
  curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (c, CURLOPT_CONNECTTIMEOUT, reg->timeout_secs);
  /* A transfer that stops moving for the timeout is dead; a big layer on
     a slow link is not.  Small documents also get a total bound.  */
  curl_easy_setopt (c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt (c, CURLOPT_LOW_SPEED_TIME, reg->timeout_secs);
  {
    /* The pull's deadline bounds every transfer, big or small.  */
    long total_ms = small ? 2000L * reg->timeout_secs : 0;
    if (reg->deadline_ms)
      {
        int64_t left = reg->deadline_ms - boxer_now_ms ();
        if (left < 1)
          left = 1;
        if (total_ms == 0 || left < total_ms)
          total_ms = (long) left;
      }
    curl_easy_setopt (c, CURLOPT_TIMEOUT_MS, total_ms);
  }
  curl_easy_setopt (c, CURLOPT_USERAGENT, USER_AGENT);
  curl_easy_setopt (c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt (c, CURLOPT_WRITEDATA, t);
  curl_easy_setopt (c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt (c, CURLOPT_HEADERDATA, t);
  curl_easy_setopt (c, CURLOPT_ERRORBUFFER, reg->errbuf);
  if (user)
    {
      curl_easy_setopt (c, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
      curl_easy_setopt (c, CURLOPT_USERNAME, user);
      curl_easy_setopt (c, CURLOPT_PASSWORD, password);
    }
  {
    CURLcode rc = curl_easy_perform (c);
    curl_off_t got = 0;
    if (curl_easy_getinfo (c, CURLINFO_SIZE_DOWNLOAD_T, &got) == CURLE_OK && got > 0)
      bytes_received += (uint64_t) got;
    return rc;
  }
}

uint64_t
boxer_registry_bytes_received (void)
{
  return bytes_received;
}

static bool
retryable_code (CURLcode code)
{
  switch (code)
    {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
    }
}

static bool
retryable_status (long status)
{
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

static void
backoff (int attempt_no)
{
  struct timespec ts = { 0, (long) BACKOFF_MS * 1000000L << attempt_no };

  while (ts.tv_nsec >= 1000000000L)
    {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
  while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
    ;
}

static const char *
via (const struct boxer_registry *reg)
{
  return reg->ep->mirror ? " (through its configured mirror)" : "";
}

static bool
past_deadline (const struct boxer_registry *reg)
{
  return reg->deadline_ms && boxer_now_ms () >= reg->deadline_ms;
}

static int
deadline_error (const struct boxer_registry *reg, const char *what, struct boxer_error **err)
{
  return boxer_error_make (err, BOXER_ERR_REGISTRY,
                           "the pull from registry '%s'%s ran out of time (pull_timeout_secs) "
                           "while getting %s",
                           reg->ep->domain, via (reg), what);
}

/* GET url with retries of what may pass; *status_out is the final
   response's status.  what names the object in messages.  */
static int
request (struct boxer_registry *reg, const char *url, const char *accept, struct transfer *t,
         bool small, const char *user, const char *password, const char *what,
         long *status_out, struct boxer_error **err)
{
  for (int i = 0;; i++)
    {
      CURLcode code;
      long status = 0;

      if (transfer_reset (t, err) < 0)
        return -1;
      if (past_deadline (reg))
        return deadline_error (reg, what, err);
      code = attempt (reg, url, accept, t, small, user, password);
      if (reg->denied)
        return boxer_error_make (err, BOXER_ERR_FORBIDDEN,
                                 "cannot get %s from registry '%s'%s: a connection it needs is "
                                 "not allowed (only registries configured under 'registries' "
                                 "may be on non-public addresses)",
                                 what, reg->ep->domain, via (reg));
      if (code == CURLE_OPERATION_TIMEDOUT && past_deadline (reg))
        return deadline_error (reg, what, err);
      if (t->too_large)
        return boxer_error_make (err, BOXER_ERR_REGISTRY,
                                 "registry '%s'%s sent more than %lld bytes for %s",
                                 reg->ep->domain, via (reg), (long long) t->max, what);
      if (t->write_errno)
        return boxer_error_errno (err, t->write_errno, "store %s", what);
      if (code == CURLE_OK)
        {
          curl_easy_getinfo (reg->curl, CURLINFO_RESPONSE_CODE, &status);
          if (retryable_status (status) && i + 1 < BOXER_REGISTRY_ATTEMPTS)
            {
              backoff (i);
              continue;
            }
          *status_out = status;
          return 0;
        }
      if (retryable_code (code) && i + 1 < BOXER_REGISTRY_ATTEMPTS)
        {
          backoff (i);
          continue;
        }
      {
        const char *why = reg->errbuf[0] ? reg->errbuf : curl_easy_strerror (code);
        cleanup_free char *q = boxer_quote (why, strlen (why), QUOTE_MAX);
        const char *hint = "";
        if (code == CURLE_SSL_CONNECT_ERROR && !reg->ep->plain_http && !reg->ep->mirror)
          hint = "; if it serves plain HTTP, list it in the config's 'registries' with "
                 "\"insecure\": true";
        else if (code == CURLE_UNSUPPORTED_PROTOCOL)
          hint = "; it redirected to a URL scheme that is not allowed";
        return boxer_error_make (err, BOXER_ERR_REGISTRY,
                                 "cannot get %s from registry '%s'%s: %s%s", what,
                                 reg->ep->domain, via (reg), q, hint);
      }
    }
}

/* The first error of a registry's {"errors": [{"code", "message"}]}
   body, quoted, or "".  */
static char *
registry_reason (const struct transfer *t)
{
  json_object *root = NULL, *errors = NULL, *e, *code = NULL, *msg = NULL;
  char *r = NULL;

  if (t->error_body.len == 0 || t->error_body.truncated)
    return xstrdup ("");
  root = json_tokener_parse (t->error_body.data);
  if (root && json_object_object_get_ex (root, "errors", &errors)
      && json_object_is_type (errors, json_type_array) && json_object_array_length (errors) > 0
      && (e = json_object_array_get_idx (errors, 0)) != NULL
      && json_object_is_type (e, json_type_object))
    {
      json_object_object_get_ex (e, "code", &code);
      json_object_object_get_ex (e, "message", &msg);
      if (code && json_object_is_type (code, json_type_string))
        {
          const char *c = json_object_get_string (code);
          const char *m = msg && json_object_is_type (msg, json_type_string)
                            ? json_object_get_string (msg)
                            : "";
          cleanup_free char *qc = boxer_quote (c, strlen (c), 40);
          cleanup_free char *qm = boxer_quote (m, strlen (m), QUOTE_MAX);
          r = xasprintf (" (%s%s%s)", qc, *qm ? ": " : "", qm);
        }
    }
  json_object_put (root);
  return r ? r : xstrdup ("");
}

/* Tokens.  */

static int
fetch_token (struct boxer_registry *reg, const struct boxer_auth_challenge *ch,
             struct boxer_error **err)
{
  struct transfer t;
  cleanup_free char *url = NULL;
  cleanup_free char *token = NULL;
  cleanup_free char *q = NULL;
  int64_t expires_in = 0;
  long status = 0;
  int r;

  if (strncmp (ch->realm, "https://", 8) != 0
      && !(reg->ep->plain_http && strncmp (ch->realm, "http://", 7) == 0))
    {
      q = boxer_quote_str (ch->realm);
      return boxer_error_make (err, BOXER_ERR_REGISTRY,
                               "registry '%s'%s sends clients for tokens to '%s', which is not "
                               "an HTTPS URL",
                               reg->ep->domain, via (reg), q);
    }
  url = boxer_auth_token_url (ch->realm, ch->service, reg->scope);
  transfer_init (&t, SINK_MEMORY, -1, BOXER_AUTH_RESPONSE_MAX);
  /* The token request carries no bearer token of ours.  */
  free (steal_pointer (&reg->bearer));
  r = request (reg, url, NULL, &t, true, reg->ep->username, reg->ep->password,
               "an authentication token", &status, err);
  if (r == 0 && (status == 401 || status == 403))
    r = boxer_error_make (err, BOXER_ERR_REGISTRY,
                          reg->ep->username
                            ? "the token server of registry '%s'%s refused the credentials "
                              "configured for it"
                            : "the token server of registry '%s'%s refused an anonymous token; "
                              "configure credentials for it in 'registries'",
                          reg->ep->domain, via (reg));
  else if (r == 0 && status != 200)
    r = boxer_error_make (err, BOXER_ERR_REGISTRY,
                          "the token server of registry '%s'%s answered HTTP %ld",
                          reg->ep->domain, via (reg), status);
  if (r == 0)
    r = boxer_auth_parse_token_response (t.body.data ? t.body.data : "", t.body.len, &token,
                                         &expires_in, err);
  transfer_release (&t);
  if (r < 0)
    return -1;
  boxer_auth_cache_put (reg->tokens, reg->token_key, token, expires_in, boxer_now_ms ());
  reg->bearer = steal_pointer (&token);
  return 0;
}

/* Answer a 401's challenge.  Returns 1 when the request is worth
   repeating, 0 when we have nothing better to offer.  */
static int
authenticate (struct boxer_registry *reg, const struct transfer *t, struct boxer_error **err)
{
  struct boxer_auth_challenge ch;
  int r = 0;

  if (boxer_auth_parse_challenge (t->www_authenticate, &ch, err) < 0)
    return -1;
  if (ch.scheme == BOXER_AUTH_BASIC)
    {
      if (reg->ep->username && !reg->basic)
        {
          reg->basic = true;
          free (steal_pointer (&reg->bearer));
          r = 1;
        }
    }
  else
    {
      boxer_auth_cache_drop (reg->tokens, reg->token_key);
      r = fetch_token (reg, &ch, err) < 0 ? -1 : 1;
    }
  boxer_auth_challenge_release (&ch);
  return r;
}

/* GET with authentication: a 401 is answered once.  */
static int
auth_request (struct boxer_registry *reg, const char *url, const char *accept,
              struct transfer *t, bool small, const char *what, long *status_out,
              struct boxer_error **err)
{
  const char *user = reg->basic ? reg->ep->username : NULL;
  const char *password = reg->basic ? reg->ep->password : NULL;
  int r;

  if (request (reg, url, accept, t, small, user, password, what, status_out, err) < 0)
    return -1;
  if (*status_out != 401)
    return 0;
  r = authenticate (reg, t, err);
  if (r <= 0)
    return r;
  user = reg->basic ? reg->ep->username : NULL;
  password = reg->basic ? reg->ep->password : NULL;
  return request (reg, url, accept, t, small, user, password, what, status_out, err);
}

/* An error for a final status other than 200.  */
static int
refused (struct boxer_registry *reg, const struct transfer *t, long status, bool manifest,
         const char *what, struct boxer_error **err)
{
  cleanup_free char *reason = registry_reason (t);

  if (manifest && status == 404)
    return boxer_error_make (err, BOXER_ERR_IMAGE_NOT_FOUND,
                             "not found in registry '%s'%s", reg->ep->domain, reason);
  if (status == 401 || status == 403)
    {
      /* Basic credentials a registry refuses are wrong: the operator's
         problem, not the client's.  */
      if (reg->basic && status == 401)
        return boxer_error_make (err, BOXER_ERR_REGISTRY,
                                 "registry '%s'%s refused the credentials configured for it%s",
                                 reg->ep->domain, via (reg), reason);
      /* A token the credentials got that does not reach the repository:
         it does not exist, or they may not see it.  */
      if (reg->ep->username)
        return boxer_error_make (err, manifest ? BOXER_ERR_IMAGE_NOT_FOUND : BOXER_ERR_REGISTRY,
                                 "not found in registry '%s', or the credentials configured for "
                                 "it may not read it%s",
                                 reg->ep->domain, reason);
      /* Registries answer so for repositories that do not exist, too.  */
      return boxer_error_make (err, manifest ? BOXER_ERR_IMAGE_NOT_FOUND : BOXER_ERR_REGISTRY,
                               "not found in registry '%s', or it needs credentials "
                               "(configure them in 'registries')%s",
                               reg->ep->domain, reason);
    }
  if (status == 404)
    return boxer_error_make (err, BOXER_ERR_REGISTRY,
                             "registry '%s'%s has no %s, which the image's manifest lists%s",
                             reg->ep->domain, via (reg), what, reason);
  return boxer_error_make (err, BOXER_ERR_REGISTRY, "registry '%s'%s answered HTTP %ld for %s%s",
                           reg->ep->domain, via (reg), status, what, reason);
}

int
boxer_registry_open (struct boxer_registry **out, const struct boxer_registry_endpoint *ep,
                     const char *repository, const struct boxer_registry_options *opts,
                     struct boxer_error **err)
{
  struct boxer_registry *reg;
  const char *cached;

  reg = xmalloc0 (sizeof *reg);
  reg->ep = ep;
  reg->repository = xstrdup (repository);
  reg->timeout_secs = opts && opts->timeout_secs > 0 ? opts->timeout_secs : 30;
  reg->tokens = opts ? opts->tokens : NULL;
  reg->deadline_ms = opts ? opts->deadline_ms : 0;
  if (opts && opts->cfg)
    for (size_t i = 0; i < opts->cfg->n_registries; i++)
      {
        const struct boxer_registry_config *rc = &opts->cfg->registries[i];
        struct boxer_reference r = { .domain = rc->host };
        cleanup_free char *host = boxer_reference_registry_host (&r);
        cleanup_free char *url = xasprintf ("https://%s", host);

        add_authority (&reg->configured, &reg->n_configured, url, has_port (host));
        if (rc->mirror)
          add_authority (&reg->configured, &reg->n_configured, rc->mirror, true);
      }
  if (reg->tokens == NULL)
    reg->tokens = reg->own_tokens = boxer_auth_cache_new ();
  reg->scope = xasprintf ("repository:%s:pull", repository);
  reg->token_key = xasprintf ("%s %s %s", ep->base, reg->scope,
                              ep->username ? ep->username : "");
  reg->curl = curl_easy_init ();
  if (reg->curl == NULL)
    {
      boxer_registry_free (reg);
      return boxer_error_make (err, BOXER_ERR_INTERNAL, "curl_easy_init failed");
    }
  /* A token from an earlier pull of this repository saves a round trip.  */
  cached = boxer_auth_cache_get (reg->tokens, reg->token_key, boxer_now_ms ());
  if (cached)
    reg->bearer = xstrdup (cached);
  *out = reg;
  return 0;
}

void
boxer_registry_free (struct boxer_registry *reg)
{
  if (reg == NULL)
    return;
  if (reg->curl)
    curl_easy_cleanup (reg->curl);
  for (size_t i = 0; i < reg->n_configured; i++)
    free (reg->configured[i].host);
  free (reg->configured);
  boxer_auth_cache_free (reg->own_tokens);
  if (reg->bearer)
    explicit_bzero (reg->bearer, strlen (reg->bearer));
  free (reg->bearer);
  free (reg->repository);
  free (reg->scope);
  free (reg->token_key);
  free (reg);
}

static char *
strip_params (const char *content_type)
{
  size_t n;

  if (content_type == NULL)
    return NULL;
  n = strcspn (content_type, "; \t");
  return n ? xstrndup (content_type, n) : NULL;
}

static int
get_manifest (struct boxer_registry *reg, const char *name, const char *expect_digest,
              int64_t expect_size, char **body_out, size_t *len_out, char **media_type_out,
              char digest_out[72], struct boxer_error **err)
{
  cleanup_free char *url = xasprintf ("%s/v2/%s/manifests/%s", reg->ep->base, reg->repository,
                                      name);
  cleanup_free char *what = xasprintf ("manifest '%s'", name);
  struct transfer t;
  char hex[65];
  long status = 0;
  int r;

  transfer_init (&t, SINK_MEMORY, -1, BOXER_OCI_DOC_MAX);
  r = auth_request (reg, url, BOXER_REGISTRY_MANIFEST_ACCEPT, &t, true, what, &status, err);
  if (r == 0 && status != 200)
    r = refused (reg, &t, status, true, what, err);
  if (r < 0)
    {
      transfer_release (&t);
      return -1;
    }
  digest_hex (&t, hex);
  snprintf (digest_out, 72, "sha256:%s", hex);
  if (expect_digest && strcmp (expect_digest, digest_out) != 0)
    r = boxer_error_make (err, BOXER_ERR_REGISTRY,
                          "registry '%s'%s sent a manifest for %s whose content is %s",
                          reg->ep->domain, via (reg), expect_digest, digest_out);
  else if (expect_size >= 0 && (int64_t) t.body.len != expect_size)
    r = boxer_error_make (err, BOXER_ERR_REGISTRY,
                          "registry '%s'%s sent %zu bytes for manifest %s, which is %lld bytes",
                          reg->ep->domain, via (reg), t.body.len, expect_digest,
                          (long long) expect_size);
  else if (t.docker_digest && boxer_digest_is_valid (t.docker_digest)
           && strcmp (t.docker_digest, digest_out) != 0)
    r = boxer_error_make (err, BOXER_ERR_REGISTRY,
                          "registry '%s'%s announced manifest %s but sent %s", reg->ep->domain,
                          via (reg), t.docker_digest, digest_out);
  if (r == 0)
    {
      *media_type_out = strip_params (t.content_type);
      *body_out = boxer_buf_steal (&t.body, len_out);
      if (*body_out == NULL)
        *body_out = xstrdup ("");
    }
  transfer_release (&t);
  return r;
}

int
boxer_registry_get_manifest (struct boxer_registry *reg, const char *tag_or_digest,
                             char **body_out, size_t *len_out, char **media_type_out,
                             char digest_out[72], struct boxer_error **err)
{
  const char *expect = boxer_digest_is_valid (tag_or_digest) ? tag_or_digest : NULL;

  return get_manifest (reg, tag_or_digest, expect, -1, body_out, len_out, media_type_out,
                       digest_out, err);
}

int
boxer_registry_get_manifest_desc (struct boxer_registry *reg,
                                  const struct boxer_oci_descriptor *desc, char **body_out,
                                  size_t *len_out, char **media_type_out,
                                  struct boxer_error **err)
{
  char digest[72];

  if (desc->size > BOXER_OCI_DOC_MAX)
    return boxer_error_make (err, BOXER_ERR_REGISTRY,
                             "manifest %s is %lld bytes, more than the %d Boxer reads",
                             desc->digest, (long long) desc->size, BOXER_OCI_DOC_MAX);
  return get_manifest (reg, desc->digest, desc->digest, desc->size, body_out, len_out,
                       media_type_out, digest, err);
}

/* GET blob desc into t, whose bound is desc->size, and check it.  */
static int
get_blob (struct boxer_registry *reg, const struct boxer_oci_descriptor *desc, struct transfer *t,
          bool small, struct boxer_error **err)
{
  cleanup_free char *url = NULL;
  cleanup_free char *what = NULL;
  char hex[65];
  long status = 0;

  /* The digest goes into the URL: only a checked one may.  */
  if (!boxer_digest_is_valid (desc->digest))
    return boxer_error_make (err, BOXER_ERR_REGISTRY, "blob digest is not a sha256 digest");
  url = xasprintf ("%s/v2/%s/blobs/%s", reg->ep->base, reg->repository, desc->digest);
  what = xasprintf ("blob %s", desc->digest);
  if (auth_request (reg, url, NULL, t, small, what, &status, err) < 0)
    return -1;
  if (status != 200)
    return refused (reg, t, status, false, what, err);
  if (t->received != desc->size)
    return boxer_error_make (err, BOXER_ERR_REGISTRY,
                             "registry '%s'%s sent %lld bytes for blob %s, which is %lld bytes",
                             reg->ep->domain, via (reg), (long long) t->received, desc->digest,
                             (long long) desc->size);
  digest_hex (t, hex);
  if (strcmp (hex, desc->digest + 7) != 0)
    return boxer_error_make (err, BOXER_ERR_REGISTRY,
                             "registry '%s'%s sent blob %s with other content (sha256:%s); "
                             "nothing was stored",
                             reg->ep->domain, via (reg), desc->digest, hex);
  return 0;
}

int
boxer_registry_get_blob (struct boxer_registry *reg, const struct boxer_oci_descriptor *desc,
                         size_t max, char **out, size_t *len_out, struct boxer_error **err)
{
  struct transfer t;
  int r;

  if (desc->size < 0 || (uint64_t) desc->size > max)
    return boxer_error_make (err, BOXER_ERR_REGISTRY,
                             "blob %s is %lld bytes, more than the %zu Boxer reads for it",
                             desc->digest, (long long) desc->size, max);
  transfer_init (&t, SINK_MEMORY, -1, desc->size);
  r = get_blob (reg, desc, &t, true, err);
  if (r == 0)
    {
      *out = boxer_buf_steal (&t.body, len_out);
      if (*out == NULL)
        *out = xstrdup ("");
    }
  transfer_release (&t);
  return r;
}

int
boxer_registry_fetch_blob (struct boxer_registry *reg, const struct boxer_oci_descriptor *desc,
                           int fd, struct boxer_error **err)
{
  struct transfer t;
  int r;

  if (desc->size < 0)
    return boxer_error_make (err, BOXER_ERR_REGISTRY, "blob %s has a negative size",
                             desc->digest);
  transfer_init (&t, SINK_FILE, fd, desc->size);
  r = get_blob (reg, desc, &t, false, err);
  transfer_release (&t);
  if (r == 0 && lseek (fd, 0, SEEK_SET) < 0)
    return boxer_error_errno (err, errno, "rewind blob %s", desc->digest);
  return r;
}
