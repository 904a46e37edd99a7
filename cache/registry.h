/* Pulling from registries: the Distribution API v2 over libcurl.

   An endpoint is where one reference's repository is served (the
   registry itself over HTTPS, over plain HTTP only when the config lists
   it as insecure, or its configured mirror); a session talks to one
   repository of one endpoint for the length of a pull, answering
   authentication challenges (anonymous or basic-credential bearer tokens,
   or basic credentials) and reusing tokens until they expire.

   Every document and blob is checked against its digest and size before
   anyone uses it, every transfer has a size bound, connect and stall
   timeouts and a bounded number of retries of transient failures, and
   redirects (to blob storage) are followed without carrying credentials
   to another host or downgrading HTTPS to HTTP.

   Failures are BOXER_ERR_REGISTRY (502) when the registry is unreachable,
   refuses us or sends something broken, and BOXER_ERR_IMAGE_NOT_FOUND
   (404) when it says the repository or tag does not exist.  Messages name
   the registry as the reference names it, never a mirror's address.  */
#ifndef BOXER_CACHE_REGISTRY_H
#define BOXER_CACHE_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "auth.h"
#include "common/config.h"
#include "common/error.h"
#include "image_config.h"
#include "reference.h"

#define BOXER_REGISTRY_MANIFEST_ACCEPT                                                        \
  BOXER_OCI_MEDIA_INDEX ", " BOXER_OCI_MEDIA_MANIFEST ", " BOXER_DOCKER_MEDIA_LIST            \
  ", " BOXER_DOCKER_MEDIA_MANIFEST

/* Attempts of one request when the failure may pass (connection refused
   or reset, timeout, 429, 5xx).  */
#define BOXER_REGISTRY_ATTEMPTS 3

struct boxer_registry_endpoint
{
  char *domain;         /* the registry as references name it: "docker.io" */
  char *base;           /* "https://registry-1.docker.io", a mirror's URL, ... no '/' at the end */
  bool mirror;          /* base is the configured mirror */
  bool plain_http;
  const char *username; /* borrowed from the config; NULL: anonymous */
  const char *password;
};

/* Where ref is pulled from, according to cfg (pure).  */
void boxer_registry_endpoint_for (const struct boxer_config *cfg,
                                  const struct boxer_reference *ref,
                                  struct boxer_registry_endpoint *out);
void boxer_registry_endpoint_release (struct boxer_registry_endpoint *ep);

struct boxer_platform
{
  char *os;
  char *architecture;
  char *variant;        /* NULL: any */
};

/* Parse "os/arch[/variant]" (already validated by the config).  */
int boxer_platform_parse (const char *s, struct boxer_platform *out, struct boxer_error **err);
void boxer_platform_release (struct boxer_platform *p);

/* The entry of an image index (OCI index or Docker manifest list) to pull
   for platform (pure): os and architecture must match; with a variant
   asked for, an entry of that variant is preferred to one that names
   none, and one of another variant never taken; without, an entry naming
   no variant is preferred.  BOXER_ERR_IMAGE_NOT_FOUND, listing what the
   index offers, when nothing fits.  */
int boxer_registry_select_manifest (const struct boxer_oci_index *idx,
                                    const struct boxer_platform *platform, size_t *out,
                                    struct boxer_error **err);

/* Whether a manifest response is an index (by its media type, else by
   its content), or an error for media types we do not pull (schema 1).  */
int boxer_registry_manifest_is_index (const char *media_type, const char *body, size_t len,
                                      bool *out, struct boxer_error **err);

struct boxer_registry;

struct boxer_registry_options
{
  long timeout_secs;                    /* connect, and longest stall */
  struct boxer_auth_cache *tokens;      /* may be NULL: no reuse across sessions */
  const struct boxer_config *cfg;       /* its registries may be on any address; NULL: none */
  int64_t deadline_ms;                  /* boxer_now_ms () the session ends at; 0: none */
};

/* Whether addr is a public unicast address (pure): not unspecified,
   loopback, private, shared (CGNAT), link-local, multicast, documentation,
   benchmarking or reserved, for IPv4 and IPv6, including IPv4 addresses
   embedded in IPv6 (mapped, NAT64, 6to4).  The IPv4 ranges are those of
   the default sandbox_deny_ranges, and a few more that are never a
   registry's.

   Address policy: every connection a session makes (redirects and token
   servers included) is checked on the address it is about to connect to,
   before connecting.  It may go to a public address, or to any address
   of a host:port configured under 'registries' (or as a mirror); nothing
   else.  A refused connection fails the request with BOXER_ERR_FORBIDDEN
   ("not allowed"), the same text whatever listens there, since nothing
   was connected to.  */
bool boxer_registry_address_is_public (const struct sockaddr *addr);

/* Whether the host ref->domain may be pulled from at all under cfg's
   allowed_registries (pure); BOXER_ERR_FORBIDDEN when not.  */
int boxer_registry_check_allowed (const struct boxer_config *cfg, const char *domain,
                                  struct boxer_error **err);

/* A session with repository (e.g. "library/python") at ep, which must
   outlive it.  No request is made yet.  */
int boxer_registry_open (struct boxer_registry **out, const struct boxer_registry_endpoint *ep,
                         const char *repository, const struct boxer_registry_options *opts,
                         struct boxer_error **err);
void boxer_registry_free (struct boxer_registry *reg);

/* Body bytes this process has received from registries so far.  */
uint64_t boxer_registry_bytes_received (void);

/* GET the manifest named by a tag or digest.  *body_out (caller frees,
   NUL-terminated) is at most BOXER_OCI_DOC_MAX bytes; *media_type_out
   (caller frees) is its Content-Type without parameters, or NULL;
   digest_out its sha256 digest, which must equal the one asked for (or
   that the registry announced in Docker-Content-Digest).  */
int boxer_registry_get_manifest (struct boxer_registry *reg, const char *tag_or_digest,
                                 char **body_out, size_t *len_out, char **media_type_out,
                                 char digest_out[72], struct boxer_error **err);

/* GET the manifest desc names, verified against its digest and size.  */
int boxer_registry_get_manifest_desc (struct boxer_registry *reg,
                                      const struct boxer_oci_descriptor *desc, char **body_out,
                                      size_t *len_out, char **media_type_out,
                                      struct boxer_error **err);

/* GET the blob desc names into memory (at most max bytes), verified.
   *out (caller frees) is NUL-terminated.  */
int boxer_registry_get_blob (struct boxer_registry *reg, const struct boxer_oci_descriptor *desc,
                             size_t max, char **out, size_t *len_out, struct boxer_error **err);

/* Download the blob desc names into fd (an empty file of ours, truncated
   again on retries), hashing as it arrives; verify size and sha256, and
   leave fd at offset 0.  On failure the file's contents mean nothing.  */
int boxer_registry_fetch_blob (struct boxer_registry *reg, const struct boxer_oci_descriptor *desc,
                               int fd, struct boxer_error **err);

#endif
