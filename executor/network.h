/* The network of a run: `none` (runsc's loopback only), `sandbox` (a
   network namespace of its own, wired to the host by a veth pair, NATed
   out, firewalled) or `host` (the host's own network, when the operator
   allows it).

   For a sandbox run Boxer leases an address (ipam.h), creates a network
   namespace bind-mounted at <home>/netns/<run id>, a veth pair whose peer
   is "eth0" inside it (the run's address, default route via the gateway)
   and whose host end "bx<13 hex of the run id>" carries the gateway as a
   /32, a host route to the run's address through it, and the run's element
   in the firewall (firewall.h).  runsc --network=sandbox then moves eth0's
   address and routes into its own network stack.  Every piece is named
   after the run (and the host end's alias is "boxer:<instance>:<run id>"),
   so a sweeper finds what a killed executor left behind and removes it
   unless the run is still alive.

   All of this is done with libnl and libnftables in this process; nothing
   shells out.  */
#ifndef BOXER_EXECUTOR_NETWORK_H
#define BOXER_EXECUTOR_NETWORK_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "executor.h"

struct boxer_net;

/* What one run's network consists of; torn down by
   boxer_network_teardown (), which is safe to call twice.  */
struct boxer_net_run
{
  enum boxer_network mode;
  char *run_id;
  int64_t lease;                  /* -1: none held */
  char veth[16];                  /* host end; "" for none and host */
  char *netns_path;               /* sandbox: the namespace file for the spec */
  char address[INET_ADDRSTRLEN];  /* sandbox: the run's address */
  char *resolv_conf;              /* files to bind at /etc/resolv.conf and /etc/hosts; */
  char *hosts;                    /* NULL for none */
};

/* Whether the run with this id is still in progress (its lock is held).  */
typedef bool (*boxer_net_live_fn) (const char *run_id, void *data);

/* Check the network part of cfg (subnet, DNS servers, deny ranges), turn
   on IPv4 forwarding and install this instance's firewall table.  cfg must
   outlive the result.  */
int boxer_network_new (struct boxer_net **out, const struct boxer_config *cfg,
                       const char *instance, boxer_net_live_fn is_live, void *live_data,
                       struct boxer_error **err);
void boxer_network_free (struct boxer_net *net);

/* The value of runsc's --network for mode.  */
const char *boxer_network_runsc_mode (enum boxer_network mode);

/* Lease a sandbox address for run_id ahead of its setup: a file or two,
   quick enough for the service's loop.  A warm sandbox is claimed by the
   loop and booted and destroyed by other processes, which learn its lease
   from the claim.  */
int boxer_network_lease (struct boxer_net *net, const char *run_id, int64_t *lease,
                         struct boxer_error **err);
/* Give back a lease that no setup took (-1: nothing).  */
void boxer_network_release_lease (struct boxer_net *net, const char *run_id, int64_t lease);

/* Set up the network of run_id in mode with the address of lease (from
   boxer_network_lease (); -1: lease one now); resolv.conf and hosts are
   written into bundle.  On failure *out still holds what was made (the
   lease too): tear it down.  */
int boxer_network_setup (struct boxer_net *net, enum boxer_network mode, const char *run_id,
                         int64_t lease, const char *bundle, struct boxer_net_run *out,
                         struct boxer_error **err);
/* Remove everything of the run's network, ignoring what is already gone.  */
void boxer_network_teardown (struct boxer_net *net, struct boxer_net_run *nr);
/* Free *nr and leave the network it describes in place, for another
   process to tear down.  */
void boxer_network_forget (struct boxer_net_run *nr);

/* Remove the leases, namespaces, veths and firewall elements of runs that
   are no longer alive.  */
int boxer_network_sweep (struct boxer_net *net, struct boxer_error **err);

/* The service is stopping and no run is in progress: sweep and remove the
   firewall table.  */
int boxer_network_shutdown (struct boxer_net *net, struct boxer_error **err);

#endif
