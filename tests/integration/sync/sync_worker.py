"""A sync process as production runs one, for test_crash.py to kill: settings from the
COSELL_* environment (the org, the database, the mapping), the connector built by
`connector.bootstrap`, then a few sync cycles.

    python -m tests.integration.sync.sync_worker [CYCLES]
        Imports and builds everything, prints `ready`, waits for a line `go` on stdin,
        then runs CYCLES cycles (default 3), one JSON line each, and prints `done`.

    python -m tests.integration.sync.sync_worker --runner [CYCLES]
        The same, each cycle under the sync lock, as `cosell sync` and `cosell serve` run it.

    python -m tests.integration.sync.sync_worker --fork-server
        Imports once, prints `ready`, then serves commands on stdin, one per line:
        `fork CYCLES` starts a worker process (a fork of this one, so it need not import
        anything again) that builds the connector from the environment and runs CYCLES
        cycles; the server prints `forked PID`, the worker prints `PID cycle {...}` lines
        and `PID done` (or `PID failed`, its traceback on stderr). `reap PID` waits for that worker to be gone (after the test killed
        it) and prints `reaped PID`. End of input ends the server.

A worker touches the database and the org only after its start, so whoever kills it
chooses the instant relative to the work, not to Python's imports."""

from __future__ import annotations

import json
import os
import sys


def run_cycles(cycles: int, prefix: str = "", *, runner: bool = False) -> None:
    from connector.bootstrap import build
    from connector.config import Settings
    from connector.scheduler import SyncRunner

    connector = build(Settings())
    run = SyncRunner(connector).run if runner else connector.sync.run
    for cycle in range(cycles):
        report = run(None, trigger="worker")
        print(f"{prefix}cycle " + json.dumps({"cycle": cycle, "status": report.status, "error": report.error}),
              flush=True)
    print(f"{prefix}done", flush=True)


def warm_up() -> None:
    """Import what a run imports lazily (database drivers, auth, YAML) without any I/O."""
    import connector.salesforce.auth  # noqa: F401
    from connector.bootstrap import build
    from connector.config import Settings

    built = build(Settings())
    built.mapping, built.engine, built.sync  # noqa: B018 - building them is the point
    built.engine.dispose()


def fork_server() -> int:
    warm_up()
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "fork":
            pid = os.fork()
            if pid == 0:
                status = 0
                try:
                    sys.stdin.close()
                    run_cycles(int(argument), prefix=f"{os.getpid()} ")
                except BaseException:  # a worker that failed says so; the traceback goes to stderr
                    import traceback

                    traceback.print_exc()
                    print(f"{os.getpid()} failed", flush=True)
                    status = 1
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(status)
            print(f"forked {pid}", flush=True)
        elif command == "reap":
            os.waitpid(int(argument), 0)
            print(f"reaped {argument}", flush=True)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) > 1 and argv[1] == "--fork-server":
        return fork_server()
    runner = len(argv) > 1 and argv[1] == "--runner"
    argv = argv[1:] if runner else argv
    cycles = int(argv[1]) if len(argv) > 1 else 3
    warm_up()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 2
    run_cycles(cycles, runner=runner)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
