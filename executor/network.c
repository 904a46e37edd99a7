#include <config.h>

#include "network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "common/fsutil.h"
#include "firewall.h"
#include "ipam.h"

/* Host ends of veths: "bx" and 13 hex digits of the run id, 15 bytes, the
   most an interface name holds.  */
#define VETH_PREFIX "bx"
#define VETH_ID_CHARS 13
/* The peer's name inside the run's namespace; runsc keeps it.  */
#define PEER_NAME "eth0"
#define ALIAS_PREFIX "boxer:"
/* resolv.conf holds at most this many nameservers; more are ignored by
   every resolver, so a longer list is a config mistake.  */
#define MAX_DNS_SERVERS 3

struct boxer_net
{
  const struct boxer_config *cfg;
  char *table;                    /* nftables table: "boxer_<instance>" */
  char *alias_prefix;             /* "boxer:<instance>:" */
  uint32_t group;                 /* interface group of our host ends */
  struct boxer_subnet subnet;
  struct boxer_subnet *deny;
  size_t n_deny;
  char *leases_dir;               /* <home>/network/leases */
  char *netns_dir;                /* <home>/netns */
  boxer_net_live_fn is_live;
  void *live_data;
};

/* ---- libnl plumbing ---------------------------------------------------- */

static void
nl_sock_freep (struct nl_sock **s)
{
  if (*s)
    nl_socket_free (*s);
}
static void
rtnl_link_putp (struct rtnl_link **l)
{
  if (*l)
    rtnl_link_put (*l);
}
static void
rtnl_addr_putp (struct rtnl_addr **a)
{
  if (*a)
    rtnl_addr_put (*a);
}
static void
rtnl_route_putp (struct rtnl_route **r)
{
  if (*r)
    rtnl_route_put (*r);
}
static void
nl_addr_putp (struct nl_addr **a)
{
  if (*a)
    nl_addr_put (*a);
}
static void
nl_cache_freep (struct nl_cache **c)
{
  if (*c)
    nl_cache_free (*c);
}
#define cleanup_nl_sock __attribute__ ((cleanup (nl_sock_freep)))
#define cleanup_link __attribute__ ((cleanup (rtnl_link_putp)))
#define cleanup_rtaddr __attribute__ ((cleanup (rtnl_addr_putp)))
#define cleanup_route __attribute__ ((cleanup (rtnl_route_putp)))
#define cleanup_nladdr __attribute__ ((cleanup (nl_addr_putp)))
#define cleanup_cache __attribute__ ((cleanup (nl_cache_freep)))

static int
nl_fail (struct boxer_error **err, int nlerr, const char *what, const char *name)
{
  return boxer_error_make (err, BOXER_ERR_INTERNAL, "%s '%s': %s", what, name,
                           nl_geterror (nlerr < 0 ? -nlerr : nlerr));
}

/* A route-netlink socket in the network namespace of the calling thread.  */
static struct nl_sock *
route_socket (struct boxer_error **err)
{
  struct nl_sock *s = nl_socket_alloc ();
  int r;

  if (s == NULL)
    abort ();
  r = nl_connect (s, NETLINK_ROUTE);
  if (r < 0)
    {
      nl_socket_free (s);
      nl_fail (err, r, "connect to", "route netlink");
      return NULL;
    }
  return s;
}

static struct nl_addr *
ipv4 (uint32_t addr, unsigned prefix)
{
  uint32_t be = htonl (addr);
  struct nl_addr *a = nl_addr_build (AF_INET, &be, sizeof be);

  if (a == NULL)
    abort ();
  nl_addr_set_prefixlen (a, (int) prefix);
  return a;
}

static int
link_index (struct nl_sock *s, const char *name, struct boxer_error **err)
{
  cleanup_link struct rtnl_link *link = NULL;
  int r = rtnl_link_get_kernel (s, 0, name, &link);

  if (r < 0)
    return nl_fail (err, r, "find interface", name);
  return rtnl_link_get_ifindex (link);
}

/* Bring an interface up, giving it an alias first when alias is not
   NULL (the kernel takes no alias when it creates a link).  */
static int
link_up (struct nl_sock *s, const char *name, const char *alias, struct boxer_error **err)
{
  cleanup_link struct rtnl_link *link = NULL;
  cleanup_link struct rtnl_link *change = rtnl_link_alloc ();
  int r = rtnl_link_get_kernel (s, 0, name, &link);

  if (r < 0)
    return nl_fail (err, r, "find interface", name);
  if (alias)
    rtnl_link_set_ifalias (change, alias);
  rtnl_link_set_flags (change, IFF_UP);
  r = rtnl_link_change (s, link, change, 0);
  if (r < 0)
    return nl_fail (err, r, "bring up", name);
  return 0;
}

static int
add_address (struct nl_sock *s, int ifindex, uint32_t addr, unsigned prefix, const char *name,
             struct boxer_error **err)
{
  cleanup_rtaddr struct rtnl_addr *a = rtnl_addr_alloc ();
  cleanup_nladdr struct nl_addr *local = ipv4 (addr, prefix);
  int r;

  rtnl_addr_set_ifindex (a, ifindex);
  rtnl_addr_set_family (a, AF_INET);
  if (rtnl_addr_set_local (a, local) < 0)
    abort ();
  r = rtnl_addr_add (s, a, 0);
  if (r < 0)
    return nl_fail (err, r, "add an address to", name);
  return 0;
}

/* dst/prefix through ifindex, via gateway when it is not 0, from src when
   it is not 0.  */
static int
add_route (struct nl_sock *s, int ifindex, uint32_t dst, unsigned prefix, uint32_t gateway,
           uint32_t src, const char *name, struct boxer_error **err)
{
  cleanup_route struct rtnl_route *route = rtnl_route_alloc ();
  cleanup_nladdr struct nl_addr *d = ipv4 (dst, prefix);
  cleanup_nladdr struct nl_addr *gw = gateway ? ipv4 (gateway, 32) : NULL;
  cleanup_nladdr struct nl_addr *from = src ? ipv4 (src, 32) : NULL;
  struct rtnl_nexthop *nh = rtnl_route_nh_alloc ();
  int r;

  rtnl_route_set_family (route, AF_INET);
  rtnl_route_set_table (route, RT_TABLE_MAIN);
  rtnl_route_set_protocol (route, RTPROT_STATIC);
  rtnl_route_set_scope (route, gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
  rtnl_route_set_type (route, RTN_UNICAST);
  if (rtnl_route_set_dst (route, d) < 0)
    abort ();
  if (from)
    rtnl_route_set_pref_src (route, from);
  rtnl_route_nh_set_ifindex (nh, ifindex);
  if (gw)
    rtnl_route_nh_set_gateway (nh, gw);
  rtnl_route_add_nexthop (route, nh);
  r = rtnl_route_add (s, route, NLM_F_CREATE | NLM_F_EXCL);
  if (r < 0)
    {
      char a[INET_ADDRSTRLEN];
      boxer_ipam_format (dst, a);
      if (r == -NLE_EXIST)
        return boxer_error_make (err, BOXER_ERR_INTERNAL,
                                 "the route to %s/%u exists already on this host; does "
                                 "another Boxer use the same sandbox_subnet?",
                                 a, prefix);
      return nl_fail (err, r, "add a route through", name);
    }
  return 0;
}

/* Delete an interface by name; one that is gone is fine.  */
static int
delete_link (struct nl_sock *s, const char *name, struct boxer_error **err)
{
  cleanup_link struct rtnl_link *link = rtnl_link_alloc ();
  int r;

  rtnl_link_set_name (link, name);
  r = rtnl_link_delete (s, link);
  if (r < 0 && r != -NLE_OBJ_NOTFOUND && r != -NLE_NODEV)
    return nl_fail (err, r, "delete interface", name);
  return 0;
}

/* Write value to a file under /proc/sys, as seen from the network
   namespace of the calling thread.  A missing file is fine when
   missing_ok (no IPv6 settings on a kernel booted without IPv6).  */
static int
write_sysctl (const char *path, const char *value, bool missing_ok, struct boxer_error **err)
{
  cleanup_close int fd = open (path, O_WRONLY | O_CLOEXEC);

  if (fd < 0 && errno == ENOENT && missing_ok)
    return 0;
  if (fd < 0)
    return boxer_error_errno (err, errno, "open '%s'", path);
  return boxer_write_all (fd, value, strlen (value), err);
}

/* ---- the namespace ----------------------------------------------------- */

/* Work done on a thread of its own, because unshare () and setns () of a
   network namespace act on the calling thread only: the worker's main
   thread never leaves the host's namespace.  */
struct ns_build
{
  const char *path;     /* file to bind the new namespace onto */
  int host_ns;          /* the host's namespace, where the veth's host end goes */
  const char *veth;
  uint32_t group;
  uint32_t address;
  uint32_t gateway;
  struct boxer_error *err;
};

static int
build_inside (struct ns_build *b)
{
  cleanup_nl_sock struct nl_sock *s = NULL;
  cleanup_link struct rtnl_link *veth = NULL;
  struct rtnl_link *peer;
  int r, peer_index;

  if (unshare (CLONE_NEWNET) < 0)
    return boxer_error_errno (&b->err, errno, "create a network namespace");
  /* The bind mount keeps the namespace alive after this thread ends, and
     gives runsc a path to join.  */
  if (mount ("/proc/thread-self/ns/net", b->path, NULL, MS_BIND, NULL) < 0)
    return boxer_error_errno (&b->err, errno, "bind the network namespace to '%s'", b->path);
  /* Runs get IPv4 only: no IPv6 addresses, not even link-local ones, for
     runsc to copy.  Set before eth0 arrives so it inherits it.  */
  if (write_sysctl ("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1", true, &b->err) < 0
      || write_sysctl ("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1", true, &b->err) < 0)
    return -1;

  s = route_socket (&b->err);
  if (s == NULL)
    return -1;
  /* runsc copies only interfaces that are up; without lo the run would
     have no loopback at all.  */
  if (link_up (s, "lo", NULL, &b->err) < 0)
    return -1;

  /* The pair is made here, so the peer is born in this namespace as eth0;
     the host end is created straight in the host's namespace, already in
     the firewall's interface group.  */
  veth = rtnl_link_veth_alloc ();
  if (veth == NULL)
    abort ();
  rtnl_link_set_name (veth, b->veth);
  rtnl_link_set_group (veth, b->group);
  rtnl_link_set_ns_fd (veth, b->host_ns);
  peer = rtnl_link_veth_get_peer (veth);
  rtnl_link_set_name (peer, PEER_NAME);
  rtnl_link_put (peer);
  r = rtnl_link_add (s, veth, NLM_F_CREATE | NLM_F_EXCL);
  if (r < 0)
    return nl_fail (&b->err, r, "create veth", b->veth);

  peer_index = link_index (s, PEER_NAME, &b->err);
  if (peer_index < 0 || link_up (s, PEER_NAME, NULL, &b->err) < 0
      || add_address (s, peer_index, b->address, 32, PEER_NAME, &b->err) < 0
      || add_route (s, peer_index, b->gateway, 32, 0, 0, PEER_NAME, &b->err) < 0
      || add_route (s, peer_index, 0, 0, b->gateway, 0, PEER_NAME, &b->err) < 0)
    return -1;
  return 0;
}

static void *
build_thread (void *arg)
{
  build_inside (arg);
  return NULL;
}

static int
build_namespace (struct ns_build *b, struct boxer_error **err)
{
  pthread_t t;
  int e = pthread_create (&t, NULL, build_thread, b);

  if (e != 0)
    return boxer_error_errno (err, e, "start a thread");
  pthread_join (t, NULL);
  if (b->err)
    {
      *err = steal_pointer (&b->err);
      return -1;
    }
  return 0;
}

static void
remove_namespace (const char *path)
{
  /* Detach: a process still in the namespace keeps it alive, and that is
     fine; the file must go now.  */
  if (umount2 (path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
    return;
  unlink (path);
}

/* ---- per run ----------------------------------------------------------- */

static void
veth_name (const char *run_id, char out[16])
{
  const char *hex = strchr (run_id, '_');

  hex = hex ? hex + 1 : run_id;
  snprintf (out, 16, VETH_PREFIX "%.*s", VETH_ID_CHARS, hex);
}

const char *
boxer_network_runsc_mode (enum boxer_network mode)
{
  switch (mode)
    {
    case BOXER_NETWORK_SANDBOX:
      return "sandbox";
    case BOXER_NETWORK_HOST:
      return "host";
    case BOXER_NETWORK_NONE:
    default:
      return "none";
    }
}

static int
write_new_file (const char *path, const char *text, struct boxer_error **err)
{
  /* Read by the run's unprivileged user through the gofer.  */
  cleanup_close int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);

  if (fd < 0)
    return boxer_error_errno (err, errno, "create '%s'", path);
  return boxer_write_all (fd, text, strlen (text), err);
}

static int
write_name_files (struct boxer_net *net, struct boxer_net_run *nr, const char *bundle,
                  struct boxer_error **err)
{
  cleanup_free char *resolv = NULL;
  cleanup_free char *hosts = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&resolv, &len);

  if (f == NULL)
    abort ();
  fprintf (f, "# written by Boxer from its dns_servers\n");
  for (char **s = net->cfg->dns_servers; s && *s; s++)
    fprintf (f, "nameserver %s\n", *s);
  if (fclose (f) != 0)
    abort ();
  hosts = xasprintf ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                     "%s\tboxer\n",
                     nr->mode == BOXER_NETWORK_SANDBOX ? nr->address : "127.0.1.1");

  nr->resolv_conf = xasprintf ("%s/resolv.conf", bundle);
  nr->hosts = xasprintf ("%s/hosts", bundle);
  if (write_new_file (nr->resolv_conf, resolv, err) < 0
      || write_new_file (nr->hosts, hosts, err) < 0)
    return -1;
  return 0;
}

static int
setup_sandbox (struct boxer_net *net, struct boxer_net_run *nr, struct boxer_error **err)
{
  cleanup_free char *alias = xasprintf ("%s%s", net->alias_prefix, nr->run_id);
  cleanup_close int host_ns = -1;
  cleanup_close int fd = -1;
  cleanup_nl_sock struct nl_sock *s = NULL;
  cleanup_free char *sysctl = NULL;
  uint32_t index, address, gateway = boxer_ipam_gateway (&net->subnet);
  struct ns_build b = { 0 };
  int ifindex;

  if (nr->lease >= 0)
    index = (uint32_t) nr->lease;
  else if (boxer_ipam_lease_acquire (net->leases_dir, &net->subnet, nr->run_id, &index, err) < 0)
    return -1;
  nr->lease = index;
  if (boxer_ipam_address (&net->subnet, index, &address, err) < 0)
    return -1;
  boxer_ipam_format (address, nr->address);
  veth_name (nr->run_id, nr->veth);

  /* The firewall knows the run before its veth exists; until then the
     interface group's rules drop everything anyway.  */
  if (boxer_firewall_add_run (net->table, nr->veth, nr->address, err) < 0)
    return -1;

  nr->netns_path = xasprintf ("%s/%s", net->netns_dir, nr->run_id);
  fd = open (nr->netns_path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
  if (fd < 0)
    return boxer_error_errno (err, errno, "create '%s'", nr->netns_path);
  host_ns = open ("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (host_ns < 0)
    return boxer_error_errno (err, errno, "open the host's network namespace");

  b.path = nr->netns_path;
  b.host_ns = host_ns;
  b.veth = nr->veth;
  b.group = net->group;
  b.address = address;
  b.gateway = gateway;
  if (build_namespace (&b, err) < 0)
    return -1;

  /* The host end: the gateway as a /32 (the same address on every host
     end) and the route to the run's /32 through it.  No IPv6 on it, so the
     run finds no link-local address of the host to talk to.  */
  sysctl = xasprintf ("/proc/sys/net/ipv6/conf/%s/disable_ipv6", nr->veth);
  if (write_sysctl (sysctl, "1", true, err) < 0)
    return -1;
  s = route_socket (err);
  if (s == NULL)
    return -1;
  ifindex = link_index (s, nr->veth, err);
  if (ifindex < 0 || add_address (s, ifindex, gateway, 32, nr->veth, err) < 0
      || link_up (s, nr->veth, alias, err) < 0
      || add_route (s, ifindex, address, 32, 0, gateway, nr->veth, err) < 0)
    return -1;
  return 0;
}

int
boxer_network_lease (struct boxer_net *net, const char *run_id, int64_t *lease,
                     struct boxer_error **err)
{
  uint32_t index;

  *lease = -1;
  if (boxer_ipam_lease_acquire (net->leases_dir, &net->subnet, run_id, &index, err) < 0)
    return boxer_error_wrap (err, "lease a sandbox address");
  *lease = index;
  return 0;
}

void
boxer_network_release_lease (struct boxer_net *net, const char *run_id, int64_t lease)
{
  if (lease >= 0)
    boxer_ipam_lease_release (net->leases_dir, (uint32_t) lease, run_id, NULL);
}

int
boxer_network_setup (struct boxer_net *net, enum boxer_network mode, const char *run_id,
                     int64_t lease, const char *bundle, struct boxer_net_run *out,
                     struct boxer_error **err)
{
  memset (out, 0, sizeof *out);
  out->mode = mode;
  out->lease = mode == BOXER_NETWORK_SANDBOX ? lease : -1;
  out->run_id = xstrdup (run_id);
  if (mode == BOXER_NETWORK_NONE)
    return 0;
  if (mode == BOXER_NETWORK_SANDBOX && setup_sandbox (net, out, err) < 0)
    return boxer_error_wrap (err, "set up the sandbox network");
  return write_name_files (net, out, bundle, err);
}

struct element
{
  const char *table;
  char veth[16];
  char address[INET_ADDRSTRLEN];
};

static void *
delete_element_thread (void *arg)
{
  struct element *e = arg;
  boxer_firewall_del_run (e->table, e->veth, e->address, NULL);
  return NULL;
}

/* Remove what a sandbox run may have; each step tolerates a missing
   object.  The firewall element and the veth go at the same time: each
   waits for an RCU grace period in the kernel (tens of milliseconds here),
   and the order does not matter once the run is over (a veth without its
   element only has its traffic dropped).  The lease goes last, when
   nothing uses its address any more.  */
static void
release_sandbox (struct boxer_net *net, const char *run_id, int64_t lease)
{
  cleanup_free char *ns = xasprintf ("%s/%s", net->netns_dir, run_id);
  cleanup_nl_sock struct nl_sock *s = route_socket (NULL);
  struct element e = { .table = net->table };
  uint32_t address;
  pthread_t t;
  bool threaded = false;

  veth_name (run_id, e.veth);
  if (lease >= 0 && boxer_ipam_address (&net->subnet, (uint32_t) lease, &address, NULL) == 0)
    {
      boxer_ipam_format (address, e.address);
      threaded = pthread_create (&t, NULL, delete_element_thread, &e) == 0;
      if (!threaded)
        delete_element_thread (&e);
    }
  /* Deleting one end deletes the pair, its address and its route.  */
  if (s)
    delete_link (s, e.veth, NULL);
  remove_namespace (ns);
  if (threaded)
    pthread_join (t, NULL);
  if (lease >= 0)
    boxer_ipam_lease_release (net->leases_dir, (uint32_t) lease, run_id, NULL);
}

void
boxer_network_teardown (struct boxer_net *net, struct boxer_net_run *nr)
{
  if (nr->run_id && nr->mode == BOXER_NETWORK_SANDBOX)
    release_sandbox (net, nr->run_id, nr->lease);
  /* resolv.conf and hosts live in the bundle, which the executor removes.  */
  boxer_network_forget (nr);
}

void
boxer_network_forget (struct boxer_net_run *nr)
{
  free (nr->run_id);
  free (nr->netns_path);
  free (nr->resolv_conf);
  free (nr->hosts);
  memset (nr, 0, sizeof *nr);
  nr->lease = -1;
}

/* ---- sweeping ---------------------------------------------------------- */

/* A run id as Boxer writes them; anything else found in a lease is not
   used to name files.  */
static bool
safe_id (const char *id)
{
  size_t n = strlen (id);
  return n > 0 && n <= 64
         && strspn (id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

static int
sweep_lease (int64_t index, const char *owner, const char *file, void *data)
{
  struct boxer_net *net = data;

  if (*owner && net->is_live (owner, net->live_data))
    return 0;
  if (index < 0 || !safe_id (owner))
    {
      /* A half-made acquisition, or a lease without a valid owner: no run
         can use it, and no run was set up with it (what a run left without
         a lease is found by the sweeps below).  */
      unlink (file);
      return 0;
    }
  release_sandbox (net, owner, index);
  return 0;
}

static int
sweep_netns (struct boxer_net *net, struct boxer_error **err)
{
  cleanup_dir DIR *d = opendir (net->netns_dir);
  struct dirent *de;

  if (d == NULL)
    return errno == ENOENT ? 0 : boxer_error_errno (err, errno, "open '%s'", net->netns_dir);
  while ((de = readdir (d)) != NULL)
    if (de->d_name[0] != '.' && !net->is_live (de->d_name, net->live_data))
      {
        cleanup_free char *path = xasprintf ("%s/%s", net->netns_dir, de->d_name);
        remove_namespace (path);
      }
  return 0;
}

static int
sweep_links (struct boxer_net *net, struct boxer_error **err)
{
  cleanup_nl_sock struct nl_sock *s = route_socket (err);
  cleanup_cache struct nl_cache *cache = NULL;
  size_t plen = strlen (net->alias_prefix);
  int r;

  if (s == NULL)
    return -1;
  r = rtnl_link_alloc_cache (s, AF_UNSPEC, &cache);
  if (r < 0)
    return nl_fail (err, r, "list", "interfaces");
  for (struct nl_object *o = nl_cache_get_first (cache); o; o = nl_cache_get_next (o))
    {
      struct rtnl_link *link = (struct rtnl_link *) o;
      const char *alias = rtnl_link_get_ifalias (link);

      /* Only ours, told by the alias, whatever the name says.  */
      if (alias && strncmp (alias, net->alias_prefix, plen) == 0
          && !net->is_live (alias + plen, net->live_data))
        delete_link (s, rtnl_link_get_name (link), NULL);
    }
  return 0;
}

struct stale_elements
{
  struct boxer_net *net;
  char **veths;
  char **addrs;
  size_t n;
};

static void
collect_stale (const char *veth, const char *addr, void *data)
{
  struct stale_elements *st = data;
  struct in_addr a;
  int64_t index;
  cleanup_free char *lease = NULL;
  cleanup_free char *owner = NULL;
  char expected[16];

  /* An element is alive while a lease of a live run maps its address to
     its veth (setup adds it after the lease, teardown removes it before).  */
  if (inet_pton (AF_INET, addr, &a) == 1
      && (index = boxer_ipam_index (&st->net->subnet, ntohl (a.s_addr))) >= 0)
    {
      lease = xasprintf ("%s/%" PRId64, st->net->leases_dir, index);
      if (boxer_read_file (lease, 128, &owner, NULL, NULL) == 0)
        {
          owner[strcspn (owner, "\n")] = '\0';
          veth_name (owner, expected);
          if (strcmp (expected, veth) == 0 && st->net->is_live (owner, st->net->live_data))
            return;
        }
    }
  st->veths = xrealloc (st->veths, (st->n + 1) * sizeof *st->veths);
  st->addrs = xrealloc (st->addrs, (st->n + 1) * sizeof *st->addrs);
  st->veths[st->n] = xstrdup (veth);
  st->addrs[st->n] = xstrdup (addr);
  st->n++;
}

static int
sweep_elements (struct boxer_net *net, struct boxer_error **err)
{
  struct stale_elements st = { .net = net };
  int r = boxer_firewall_list_runs (net->table, collect_stale, &st, err);

  for (size_t i = 0; i < st.n; i++)
    {
      boxer_firewall_del_run (net->table, st.veths[i], st.addrs[i], NULL);
      free (st.veths[i]);
      free (st.addrs[i]);
    }
  free (st.veths);
  free (st.addrs);
  return r;
}

int
boxer_network_sweep (struct boxer_net *net, struct boxer_error **err)
{
  /* Leases first: they name every other piece of their run.  Then what a
     run may have left without a lease (a lease removed by hand, a crash
     between steps).  */
  if (boxer_ipam_lease_foreach (net->leases_dir, sweep_lease, net, err) < 0
      || sweep_netns (net, err) < 0 || sweep_links (net, err) < 0
      || sweep_elements (net, err) < 0)
    return boxer_error_wrap (err, "sweep sandbox networks");
  return 0;
}

int
boxer_network_shutdown (struct boxer_net *net, struct boxer_error **err)
{
  if (boxer_network_sweep (net, err) < 0)
    return -1;
  return boxer_firewall_remove (net->table, err);
}

/* ---- start-up ---------------------------------------------------------- */

static int
check_config (struct boxer_net *net, struct boxer_error **err)
{
  const struct boxer_config *cfg = net->cfg;
  size_t n = 0;

  if (boxer_ipam_parse_subnet (cfg->sandbox_subnet, &net->subnet, err) < 0)
    return boxer_error_wrap (err, "config: 'sandbox_subnet'");

  for (char **s = cfg->dns_servers; s && *s; s++, n++)
    {
      unsigned char buf[sizeof (struct in6_addr)];
      if (inet_pton (AF_INET, *s, buf) != 1 && inet_pton (AF_INET6, *s, buf) != 1)
        {
          cleanup_free char *q = boxer_quote_str (*s);
          return boxer_error_make (err, BOXER_ERR_INVALID,
                                   "config: 'dns_servers' must hold IP addresses, got '%s'", q);
        }
    }
  if (n > MAX_DNS_SERVERS)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "config: 'dns_servers' holds %zu addresses; resolvers use at "
                             "most %d",
                             n, MAX_DNS_SERVERS);

  net->n_deny = boxer_strv_len (cfg->sandbox_deny_ranges);
  net->deny = xmalloc0 ((net->n_deny + 1) * sizeof *net->deny);
  for (size_t i = 0; i < net->n_deny; i++)
    if (boxer_ipam_parse_range (cfg->sandbox_deny_ranges[i], &net->deny[i], err) < 0)
      return boxer_error_wrap (err, "config: 'sandbox_deny_ranges'");
  return 0;
}

/* A host address inside the pool would be shadowed by the runs' routes.
   The gateway itself may be there: host ends of our runs, or of another
   Boxer's on the same subnet, which route_add () then reports.  */
static int
check_host_addresses (struct boxer_net *net, struct boxer_error **err)
{
  cleanup_nl_sock struct nl_sock *s = route_socket (err);
  cleanup_cache struct nl_cache *cache = NULL;
  int r;

  if (s == NULL)
    return -1;
  r = rtnl_addr_alloc_cache (s, &cache);
  if (r < 0)
    return nl_fail (err, r, "list", "addresses");
  for (struct nl_object *o = nl_cache_get_first (cache); o; o = nl_cache_get_next (o))
    {
      struct rtnl_addr *a = (struct rtnl_addr *) o;
      struct nl_addr *local = rtnl_addr_get_local (a);
      uint32_t v;

      if (rtnl_addr_get_family (a) != AF_INET || local == NULL
          || nl_addr_get_len (local) != sizeof v)
        continue;
      memcpy (&v, nl_addr_get_binary_addr (local), sizeof v);
      v = ntohl (v);
      if (boxer_ipam_contains (&net->subnet, v) && v != boxer_ipam_gateway (&net->subnet))
        {
          char a4[INET_ADDRSTRLEN], name[IF_NAMESIZE] = "?";
          boxer_ipam_format (v, a4);
          if_indextoname ((unsigned) rtnl_addr_get_ifindex (a), name);
          return boxer_error_make (err, BOXER_ERR_INVALID,
                                   "config: 'sandbox_subnet' %s contains the host's address %s "
                                   "on %s; choose a range this host does not use",
                                   net->cfg->sandbox_subnet, a4, name);
        }
    }
  return 0;
}

int
boxer_network_new (struct boxer_net **out, const struct boxer_config *cfg, const char *instance,
                   boxer_net_live_fn is_live, void *live_data, struct boxer_error **err)
{
  struct boxer_net *net = xmalloc0 (sizeof *net);
  struct boxer_firewall fw;

  net->cfg = cfg;
  net->table = xasprintf ("boxer_%s", instance);
  net->alias_prefix = xasprintf (ALIAS_PREFIX "%s:", instance);
  /* The instance id is 8 hex digits: a 32-bit group number of its own.
     Group 0 is every interface's default, so never that.  */
  net->group = (uint32_t) strtoul (instance, NULL, 16);
  if (net->group == 0)
    net->group = 1;
  net->leases_dir = xasprintf ("%s/network/leases", cfg->home);
  net->netns_dir = xasprintf ("%s/netns", cfg->home);
  net->is_live = is_live;
  net->live_data = live_data;

  if (check_config (net, err) < 0 || check_host_addresses (net, err) < 0)
    goto fail;
  if (boxer_mkdir_p (net->leases_dir, 0700, err) < 0 || boxer_mkdir_p (net->netns_dir, 0700, err) < 0)
    goto fail;
  /* Sandbox runs are routed through the host.  */
  if (write_sysctl ("/proc/sys/net/ipv4/ip_forward", "1", false, err) < 0)
    {
      boxer_error_wrap (err, "enable IPv4 forwarding (run as root)");
      goto fail;
    }
  fw = (struct boxer_firewall) {
    .table = net->table,
    .group = net->group,
    .subnet = &net->subnet,
    .deny = net->deny,
    .n_deny = net->n_deny,
    .host_allow = cfg->sandbox_host_allow,
  };
  if (boxer_firewall_install (&fw, err) < 0)
    {
      boxer_error_wrap (err, "install the sandbox firewall");
      goto fail;
    }
  *out = net;
  return 0;

fail:
  boxer_network_free (net);
  return -1;
}

void
boxer_network_free (struct boxer_net *net)
{
  if (net == NULL)
    return;
  free (net->table);
  free (net->alias_prefix);
  free (net->deny);
  free (net->leases_dir);
  free (net->netns_dir);
  free (net);
}
