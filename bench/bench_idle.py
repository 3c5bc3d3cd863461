"""What an idle `cosell sync` costs, start-up included: CPU (user + system) and wall time of the
whole process, beside baselines measured in the same run (`python -c pass`, `cosell --help`).

    python bench/bench_idle.py [--runs 5] [--records 100] [--database-url URL]

The org is `cosell emulator serve` in its own process. The database is mirrored (`cosell mirror`)
and synced once, then `cosell sync` runs --runs times with nothing changed on either side; each
command is a fresh process, as cron or an admin starts it, and its CPU is the kernel's count for
that child (os.wait4). Medians are printed. SQLite (a temporary file) by default; --database-url
takes a PostgreSQL URL, and a fresh schema in it is used and dropped afterwards."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COSELL = [sys.executable, "-c", "import sys; from connector.cli import main; sys.argv[0] = 'cosell'; main()"]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "COLUMNS": "200", **(extra or {})}


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """CPU seconds (user + system) and wall seconds of one process, which must exit 0."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[3:]) or argv} failed ({proc.returncode}):\n{output.decode()}")
    return usage.ru_utime + usage.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--records", type=int, default=100)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    org = subprocess.Popen([*COSELL, "emulator", "serve", "--records", str(args.records), "--seed", "3"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env(), cwd=ROOT)
    info = json.loads(org.stdout.readline())
    schema = None
    engine = None
    with tempfile.TemporaryDirectory() as folder:
        env = {"COSELL_LOGIN_URL": info["login_url"], "COSELL_AUTH": "jwt", "COSELL_USERNAME": info["username"],
               "COSELL_CONSUMER_KEY": info["consumer_key"], "COSELL_PRIVATE_KEY": info["private_key"],
               "COSELL_CA_CERT": info["ca_cert"], "COSELL_CONFIG": f"{folder}/none.yaml",
               "COSELL_DATABASE_URL": args.database_url or f"sqlite:///{folder}/portal.db"}
        if args.database_url:
            from sqlalchemy import create_engine, text

            schema = f"bench_{uuid.uuid4().hex[:10]}"
            engine = create_engine(args.database_url)
            with engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            mapping = yaml.safe_load((ROOT / "connector/mappings/cosell.yaml").read_text())
            mapping["database"]["schema"] = schema
            (Path(folder) / "mapping.yaml").write_text(yaml.safe_dump(mapping))
            env["COSELL_MAPPING"] = f"{folder}/mapping.yaml"
        env = _env(env)
        try:
            measure([*COSELL, "mirror"], env)
            measure([*COSELL, "sync"], env)          # the first sync after the mirror: not idle yet
            commands = {"python -c pass": [sys.executable, "-c", "pass"],
                        "cosell --help": [*COSELL, "--help"],
                        "cosell sync (idle)": [*COSELL, "sync"]}
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
            for _ in range(args.runs):              # interleaved, so a noisy moment hits every command alike
                for name, argv in commands.items():
                    results[name].append(measure(argv, env))
        finally:
            org.terminate()
            org.wait(timeout=30)
            if engine is not None:
                with engine.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                engine.dispose()
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"idle `cosell sync` on {database}, {args.records} opportunities; median of {args.runs} runs")
    print(f"{'command':<22}{'CPU s':>8}{'wall s':>8}")
    for name, values in results.items():
        cpu = statistics.median(v[0] for v in values)
        wall = statistics.median(v[1] for v in values)
        print(f"{name:<22}{cpu:>8.3f}{wall:>8.3f}")


if __name__ == "__main__":
    main()
