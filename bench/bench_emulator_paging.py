"""Baseline: API calls and time to page N opportunities through simple-salesforce
from the org emulator, by the REST query API (2,000 per page) and by Bulk 2.0.

The emulator runs as its own process (`cosell emulator serve`), as an org would, so
client and server do not share an interpreter. Figures are measured in this run:
    python bench/bench_emulator_paging.py [--records 100000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

from simple_salesforce import Salesforce

from connector.salesforce.http import SalesforceSession

SOQL = ("SELECT Id, Name, AccountId, Amount, CurrencyIsoCode, StageName, CloseDate, Co_Sell_Motion__c, "
        "Portal_Id__c, SystemModstamp FROM Opportunity")


def _usage(sf: Salesforce) -> int:
    """The org's own count of API requests (the /limits call itself is one more, subtracted by callers).

    Read from /limits rather than sf.api_usage: simple-salesforce's Bulk 2.0 handler does not update it."""
    limits = sf.limits()["DailyApiRequests"]
    return limits["Max"] - limits["Remaining"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "connector.cli", "emulator", "serve", "--records",
                               str(args.records), "--seed", str(args.seed), "--daily-limit", "1000000"],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        info = json.loads(server.stdout.readline())
        print(f"emulator ready with {args.records:,} opportunities in {time.perf_counter() - started:.1f} s")
        sf = Salesforce(session_id=info["access_token"], instance_url=info["instance_url"],
                        session=SalesforceSession(ca_cert=info["ca_cert"]), version=info["api_version"])
        total = sf.query("SELECT COUNT() FROM Opportunity")["totalSize"]

        before, t0 = _usage(sf), time.perf_counter()
        count = sum(1 for _ in sf.query_all_iter(SOQL))
        rest_seconds, rest_calls = time.perf_counter() - t0, _usage(sf) - before - 1
        assert count == total, (count, total)

        before, t0 = _usage(sf), time.perf_counter()
        bulk_rows = sum(len(page.splitlines()) - 1 for page in sf.bulk2.Opportunity.query(SOQL, max_records=50_000,
                                                                                           wait=0))
        bulk_seconds, bulk_calls = time.perf_counter() - t0, _usage(sf) - before - 1
        assert bulk_rows == total, (bulk_rows, total)
    finally:
        server.terminate()
        server.wait(timeout=30)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"records: {total:,}")
    print(f"REST query_all_iter: {rest_calls} API calls (ceil(N/2000) = {math.ceil(total / 2000)}), "
          f"{rest_seconds:.2f} s, {total / rest_seconds:,.0f} records/s")
    print(f"Bulk 2.0 query:      {bulk_calls} API calls (create + poll + {math.ceil(total / 50_000)} result pages), "
          f"{bulk_seconds:.2f} s, {total / bulk_seconds:,.0f} records/s")
    print(f"client peak RSS: {peak_mb:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
