"""The ``lightseg`` command: assembles the command modules and maps errors to one line + exit code."""

from __future__ import annotations

import os
import sys

import typer

from .._version import __version__
from ..errors import EXIT_FAILED, EXIT_SIGINT, LightsegError
from . import bench as bench_cmd
from . import console
from . import data as data_cmd
from . import eval as eval_cmd
from . import export as export_cmd
from . import models as models_cmd
from . import profiles as profiles_cmd
from . import quantize as quantize_cmd
from . import run as run_cmd
from . import train as train_cmd
from . import weights as weights_cmd

app = typer.Typer(
    name="lightseg",
    help="Real-time semantic segmentation (ESPNet, ESPNetv2, LPS-Net) for videos, cameras, streams and images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        console.stdout.print(f"lightseg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Real-time semantic segmentation for videos, cameras, streams and image folders."""


def _register() -> None:
    app.command("run")(run_cmd.run)
    app.command("probe")(run_cmd.probe)
    app.command("models")(models_cmd.models)
    app.add_typer(weights_cmd.app, name="weights")
    app.command("eval")(eval_cmd.eval_)
    app.command("bench")(bench_cmd.bench)
    app.command("export")(export_cmd.export)
    app.command("quantize")(quantize_cmd.quantize)
    app.add_typer(profiles_cmd.app, name="profiles")
    app.command("train")(train_cmd.train)
    app.add_typer(data_cmd.app, name="data")


_register()


def _debug() -> bool:
    return os.environ.get("LIGHTSEG_DEBUG", "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; user mistakes become ``error: ...`` lines, never tracebacks.

    Typer/Click handle usage errors themselves (exit 2); lightseg's own errors carry their exit code.
    """
    hint = "" if _debug() else " (LIGHTSEG_DEBUG=1 for details)"
    try:
        app(args=argv, prog_name="lightseg")
        return 0
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt:
        console.error("interrupted")
        return EXIT_SIGINT
    except LightsegError as e:
        if _debug():
            raise
        console.error(str(e))
        return e.exit_code
    except Exception as e:  # a bug, not a user mistake: still one line unless debugging
        if _debug():
            raise
        console.error(f"internal error: {type(e).__name__}: {e}{hint}")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
