"""The `cosell` command line: thin entry points that build objects in one place
and call the same functions the admin API and scheduler use."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Salesforce co-sell sync connector.", no_args_is_help=True, add_completion=False)
emulator_app = typer.Typer(help="The built-in Salesforce org emulator.", no_args_is_help=True)
app.add_typer(emulator_app, name="emulator")


@emulator_app.command("serve")
def emulator_serve(
    org: str = typer.Option("cosell_demo", help="A shipped org name, an org YAML file, or a folder of "
                                                "describe payloads."),
    records: int = typer.Option(100, min=0, help="Opportunities (or records per object) to generate."),
    seed: int = typer.Option(42, help="Seed of the data generator; the same seed gives the same data."),
    port: int = typer.Option(0, min=0, max=65535, help="Port on 127.0.0.1; 0 picks a free one."),
    latency: float = typer.Option(0.0, min=0.0, help="Seconds added to every call."),
    daily_limit: int = typer.Option(15000, min=1, help="The org's daily API request limit."),
    state_dir: Optional[Path] = typer.Option(None, help="Where to write the certificate and keys "
                                                        "(default: a temporary folder)."),
) -> None:
    """Serve an emulated org over HTTPS until interrupted.

    The first line of standard output is one JSON object with what a client needs
    to connect (instance_url, login_url, access_token, ca_cert, username,
    consumer_key, private_key, ...)."""
    from connector.emulator import Emulator, OrgDefinitionError

    try:
        emulator = Emulator(org, records=records, seed=seed, port=port, latency=latency,
                            daily_limit=daily_limit, state_dir=state_dir)
    except OrgDefinitionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    emulator.start()
    sys.stdout.write(json.dumps(emulator.connection_info()) + "\n")
    sys.stdout.flush()
    counts = ", ".join(f"{n} {obj}" for obj, n in emulator.generated.items()) or "seed records only"
    typer.echo(f"Org emulator '{emulator.org.name}' serving {emulator.instance_url} ({counts}). "
               "Ctrl-C to stop.", err=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


@emulator_app.command("orgs")
def emulator_orgs() -> None:
    """List the org definitions shipped with the package."""
    from connector.emulator import shipped_orgs

    for name in shipped_orgs():
        typer.echo(name)


@app.command()
def demo(
    records: int = typer.Option(200, min=1, help="Opportunities the demo org starts with."),
    seed: int = typer.Option(42, help="Seed of the data generator."),
) -> None:
    """Start the built-in org emulator and show what the connector sees in it."""
    from connector.demo import run_demo

    raise typer.Exit(run_demo(records=records, seed=seed))


def main() -> None:  # pragma: no cover - console script shim
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
