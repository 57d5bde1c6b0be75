"""The command line: parse the options, start a server per provider, write
the ports file and the demo config, say where each provider listens, and
serve until SIGTERM or SIGINT."""

import argparse
import os
import signal
import ssl
import sys
import threading

from .admin import Simulator
from .deployhq import DEPLOYHQ_SEEDED
from .dokploy import DOKPLOY_DEPLOYMENTS, DOKPLOY_FLEET_PER_SERVICE
from .files import write_demo_config, write_ports_file
from .registry import PROVIDER_CLASSES
from .server import SimServer, tls_context


def parse_args(argv):
    titles = [cls.title for cls in PROVIDER_CLASSES]
    modules = [cls.__module__.rpartition(".")[2] + ".py" for cls in PROVIDER_CLASSES]
    parser = argparse.ArgumentParser(
        prog="infrafs-sim",
        description="Simulate the hosting APIs infrafs talks to: "
                    f"{', '.join(titles[:-1])} and {titles[-1]}. Each provider listens "
                    "on its own port, over HTTP (HTTPS with --tls-cert and --tls-key); "
                    "/_sim/ on any port is the admin API (faults, request log, data, "
                    "switches).",
        epilog="The admin API is documented in contrib/infrafs_sim/admin.py, and each "
               "provider's data, admin endpoints and switches at the top of its module "
               f"there ({', '.join(modules)}).")
    parser.add_argument("--bind", default="127.0.0.1",
                        help="address to listen on (default %(default)s)")
    for cls in PROVIDER_CLASSES:
        parser.add_argument(f"--{cls.name}-port", type=int, default=cls.default_port,
                            metavar="N",
                            help=f"{cls.name} port, 0 picks a free one (default %(default)s)")
    parser.add_argument("--free-ports", action="store_true",
                        help="every provider on a free port (tests; see --ports-file)")
    parser.add_argument("--demo-config", metavar="PATH",
                        help="write an infrafs config (mode 0600) with one account per "
                             "provider, pointing at this simulator, once listening")
    parser.add_argument("--token", default="demo-token",
                        help="API token every provider accepts (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed for the generated data (default %(default)s)")
    parser.add_argument("--vps-count", type=int, default=5, metavar="N",
                        help="number of seeded HostUp VPSes (default %(default)s)")
    parser.add_argument("--deployhq-count", type=int, default=len(DEPLOYHQ_SEEDED),
                        metavar="N",
                        help="DeployHQ hosted resources: the seeded ones (VPSes and "
                             "static sites), then generated VPSes (default %(default)s)")
    parser.add_argument("--hostatlas-count", type=int, default=30, metavar="N",
                        help="HostAtlas servers, the default of its server_count "
                             "switch; incidents and heartbeats stay as seeded "
                             "(default %(default)s)")
    parser.add_argument("--dokploy-count", type=int, default=len(DOKPLOY_DEPLOYMENTS),
                        metavar="N",
                        help="Dokploy deployments: the seeded ones, then finished "
                             f"ones, {DOKPLOY_FLEET_PER_SERVICE} per generated service "
                             "of a project 'fleet' (default %(default)s)")
    parser.add_argument("--job-seconds", type=float, default=1.5, metavar="F",
                        help="how long a power operation takes (default %(default)s)")
    parser.add_argument("--deployhq-user", default="demo@example.com", metavar="EMAIL",
                        help="the DeployHQ user (HTTP Basic) the simulator accepts "
                             "(default %(default)s)")
    parser.add_argument("--fault-rate", type=float, default=0.0, metavar="F",
                        help="answer this share (0-1) of provider requests with a random "
                             "fault: 5xx, 429, drop, delay or truncated (default %(default)s; "
                             "see /_sim/chaos)")
    parser.add_argument("--fault-delay-ms", type=int, default=2000, metavar="N",
                        help="how long a random delay fault waits (default %(default)s)")
    parser.add_argument("--ports-file", metavar="PATH",
                        help='write {"provider": port, ...} here once listening')
    parser.add_argument("--tls-cert", metavar="PEM",
                        help="serve HTTPS with this certificate (chain) instead of HTTP; "
                             "needs --tls-key")
    parser.add_argument("--tls-key", metavar="PEM", help="the certificate's private key")
    parser.add_argument("--quiet", action="store_true",
                        help="print nothing on start")
    parser.add_argument("--verbose", action="store_true",
                        help="log every request to stderr")
    args = parser.parse_args(argv)
    for name in ("vps_count", "deployhq_count", "hostatlas_count", "dokploy_count"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0")
    if args.job_seconds < 0:
        parser.error("--job-seconds must be >= 0")
    if not 0 <= args.fault_rate <= 1:
        parser.error("--fault-rate must be from 0 to 1")
    if args.fault_delay_ms < 0:
        parser.error("--fault-delay-ms must be >= 0")
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    return args


def main(argv=None):
    args = parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    sim = Simulator([cls(args) for cls in PROVIDER_CLASSES], args.fault_rate,
                    args.fault_delay_ms)
    servers = []
    try:
        tls = tls_context(args)
        scheme = "https" if tls else "http"
        for provider in sim.providers.values():
            port = 0 if args.free_ports else getattr(args, f"{provider.name}_port")
            server = SimServer((args.bind, port), sim, provider, args.verbose)
            if tls:
                # The handshake happens in the connection's own thread, on
                # its first read: a client that never speaks cannot stall
                # the others' accept.
                server.socket = tls.wrap_socket(server.socket, server_side=True,
                                                do_handshake_on_connect=False)
            servers.append(server)
            sim.ports[provider.name] = server.server_address[1]
    except (OSError, ssl.SSLError) as exc:
        print(f"infrafs-sim: cannot listen on {args.bind}: {exc}", file=sys.stderr)
        return 1
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()

    host = f"[{args.bind}]" if ":" in args.bind else args.bind
    if args.demo_config:
        write_demo_config(args.demo_config, [
            p.demo_section(f"{scheme}://{host}:{sim.ports[p.name]}")
            for p in sim.providers.values()])
    if args.ports_file:
        write_ports_file(args.ports_file, sim.ports)
    if not args.quiet:
        for name, port in sim.ports.items():
            print(f"infrafs-sim: {name} on {scheme}://{host}:{port}", flush=True)

    while not stop.wait(1.0):
        pass
    for server in servers:
        server.shutdown()
        server.server_close()
    if args.ports_file:
        try:
            os.unlink(args.ports_file)   # a stale file would point at nothing
        except OSError:
            pass
    return 0
