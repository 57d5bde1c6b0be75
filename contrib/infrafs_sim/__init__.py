"""infrafs_sim: a local simulator of the hosting APIs that infrafs talks to.

It serves each provider on its own port (its own origin) with the same paths
as the real API, so an infrafs account only needs `url = http://127.0.0.1:PORT`
(HTTPS with --tls-cert and --tls-key: then `cacert =` names their CA).
It is the target of a new user's first (demo) mount and of the integration
tests, which steer it through an admin API under /_sim/ on every port:
fault injection, a request log, data editing and behaviour switches.

Provider behaviour follows the vendors' API documentation, as doc/SEMANTICS.md §10 and man infrafs (HEO SYSTEMS, DOKPLOY, HOSTATLAS) describe what infrafs uses of it,
not any client: where the reference says a client must "accept" several forms,
a switch makes the simulator answer in each of them.

contrib/infrafs-sim is the program: it puts this package's directory on
sys.path and runs cli.main(). The modules, each with one job:

  cli.py          the command line; starts the servers, writes the files
                  below, runs until SIGTERM or SIGINT
  registry.py     PROVIDER_CLASSES: every simulated provider, in order
  server.py       the HTTP layer: one server per provider (TLS optional);
                  reads requests, acts out faults, sends answers
  admin.py        the Simulator (providers, request log, faults) and the
                  shared admin API under /_sim/, documented there
  faults.py       fault rules (/_sim/faults) and random faults (/_sim/chaos)
  requestlog.py   the log of provider requests (/_sim/requests)
  provider.py     the Provider base class: switches, rate limiting, auth
                  and routing hooks; InFlight counts requests under way
  ratelimit.py    token buckets, one per credential
  switches.py     the validators of behaviour switches (/_sim/config)
  messages.py     Request, Response and SimError; admin bodies, credentials
  data.py         time stamps, ULID-like ids and deep merges of the data
  files.py        the ports file and the demo config, written atomically
  hostup.py, heo.py, dokploy.py, deployhq.py, hostatlas.py
                  one simulated API each: its data, routes, native errors
                  and rate-limit headers, its /_sim/<name>/ endpoints and
                  switches (documented at the top of each)

A new provider is one more module: a Provider subclass, listed in
registry.py.

Standard library only; runs on Python 3.11.
"""
