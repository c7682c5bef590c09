"""`python -m worker.group DRAMATIQ-ARGS`: a worker group with a metrics port, as `campaign worker
--metrics-port N` runs it: dramatiq's CLI in this process, with the directory every process of the group
writes its metrics to (made here, removed when the group ends) and the monitor (`worker.monitor`) forked
beside the worker processes."""

from __future__ import annotations

import sys

from dramatiq import cli

from worker.metrics_dir import metrics_directory

MONITOR = "worker.monitor:serve"
_DRAMATIQ_DIR = "dramatiq_prom_db"  # where dramatiq's Prometheus middleware writes (read as it is imported)


def main(argv: list[str]) -> int:
    args = cli.make_argument_parser().parse_args(argv)
    args.forks.append(MONITOR)
    with metrics_directory("campaign-worker-metrics-", _DRAMATIQ_DIR) as directory:
        # Only now: prometheus_client picks its multiprocess mode as it is imported, for every process forked.
        from worker.liveness import expect

        expect(directory, args.processes)
        # What dramatiq runs again on SIGHUP (a reload): this module, not `python -m dramatiq`.
        sys.argv = [sys.executable, "-m", "worker.group", *argv]
        return int(cli.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
