/* A supervised pool of processes: a master forks N children that share
   what it set up (boxer-fcgi's workers accept on the socket spawn-fcgi
   bound; boxer-executor's one server on the executor socket), restarts any
   that dies, and on SIGTERM or SIGINT stops them all, letting work in
   progress finish.  */
#ifndef BOXER_COMMON_POOL_H
#define BOXER_COMMON_POOL_H

/* Run worker_main (data) in n child processes until a stop signal; returns
   the master's exit code.  stop_grace_secs bounds how long workers may take
   to finish their current request before they are killed; after_stop (data)
   then runs in the master to clean up after workers that had to be killed.  */
int boxer_pool_run (int n, int (*worker_main) (void *data), void (*after_stop) (void *data),
                    void *data, int stop_grace_secs);

#endif
