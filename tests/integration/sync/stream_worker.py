"""A streaming process as `cosell serve` runs one, for test_streaming_kill.py to SIGKILL: settings
from the COSELL_* environment, the connector built by `connector.bootstrap`, the StreamingService
under a SyncRunner. Prints `streaming` once every stream stands and had its catch-up, then runs
until killed.

    python -m tests.integration.sync.stream_worker"""

from __future__ import annotations

import time


def main() -> None:
    import faulthandler
    import sys

    faulthandler.dump_traceback_later(40, exit=False, file=sys.stderr)   # a stuck start says where
    from connector.bootstrap import build
    from connector.config import Settings
    from connector.scheduler import SyncRunner
    from connector.sync.streaming import StreamingService

    connector = build(Settings())
    service = StreamingService(connector, SyncRunner(connector)).start()
    while service.caught_up != set(service.streams):
        time.sleep(0.02)
    faulthandler.cancel_dump_traceback_later()
    print("streaming", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
