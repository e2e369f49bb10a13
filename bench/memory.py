"""Show where a worker of `ivr serve` stands in memory: after start-up and after each flow.

    .venv/bin/python -m bench.memory [--database-url URL] [--workers N] [--reads]

Starts the real `ivr serve` (gunicorn, gevent workers) on a freshly seeded bench database,
like `python -m bench.run` does, then places one whole call of each of the bench's plans, one
after the other, and prints every worker's resident memory (VmRSS, and the peak VmHWM) after
start-up and after each call. `--reads` also signs in to the dashboard and reads the support
lists and the API. The figures are the same /proc figures `bench.run` reports per worker.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time

from bench.flows import HttpTransport, Twilio, place_call
from bench.run import DEFAULT_DATABASE_URL, MIB, Bench, parse_args
from bench.servers import memory_kib


def worker_line(bench: Bench, label: str) -> str:
    """Return one line: the label and VmRSS (peak VmHWM) of each worker in MiB."""
    figures = []
    for pid in sorted(bench.service.workers()):
        values = memory_kib(pid)
        figures.append(
            f"{values.get('VmRSS', 0) / MIB:6.1f} (peak {values.get('VmHWM', 0) / MIB:6.1f})"
        )
    return f"{label:38s} " + "   ".join(figures)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (config)")
    parser.add_argument("--reads", action="store_true", help="also read the dashboard and API")
    options = parser.parse_args(argv)
    argv = ["--database-url", options.database_url, "--callers", "50", "--reads", "1"]
    if options.workers:
        argv += ["--workers", str(options.workers)]
    bench = Bench(parse_args(argv))
    try:
        bench.prepare_database()
        bench.start_servers()
        time.sleep(1.0)  # let the workers' start-up threads settle
        print("worker VmRSS (peak VmHWM), MiB, one column per worker")
        print(worker_line(bench, "after start-up (create_app)"))
        transport = HttpTransport("127.0.0.1", bench.service_port)
        twilio = Twilio(transport, public_url=bench.public_url, auth_token=bench.auth_token)
        try:
            for name, plan in bench.plans.items():
                result = place_call(
                    twilio, plan, caller=bench.caller_for(plan), alarms=bench.alarms
                )
                if result.error:
                    print(f"{name}: {result.error}", file=sys.stderr)
                print(worker_line(bench, f"after one call '{name}'"))
        finally:
            transport.close()
        bench.wait_for_outbox(timeout=10.0)
        print(worker_line(bench, "after the pages were sent"))
        if options.reads:
            bench.time_reads("memory")
            print(worker_line(bench, "after the support reads"))
    finally:
        bench.stop_servers()
        shutil.rmtree(bench.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
