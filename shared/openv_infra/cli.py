"""`python -m openv_<service> [serve | <task> ...]`: one command-line parser for every service.

`serve` (the default) runs the service (`serve.run_service`); a task (`migrate`, `rebuild`,
`sweep`) runs once with the same settings and logging, and its return value is the exit code.
"""

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fastapi import FastAPI

from openv_infra.logging import configure_logging
from openv_infra.serve import run_service
from openv_infra.settings import BaseServiceSettings

S = TypeVar("S", bound=BaseServiceSettings)


@dataclass(frozen=True)
class Task(Generic[S]):
    """A one-off command: `run(settings, flags)` with the on/off `flags` it was given."""

    help: str
    run: Callable[[S, Mapping[str, bool]], Coroutine[Any, Any, int | None]]
    #: Flag name (without `--`) to its help text; each is off unless given.
    flags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OptionTask(Generic[S]):
    """A one-off command taking values: `run(settings, options)`, each option (`--name
    VALUE`, without `--`, to its help text) given as its string or None when absent."""

    help: str
    run: Callable[[S, Mapping[str, str | None]], Coroutine[Any, Any, int | None]]
    options: Mapping[str, str] = field(default_factory=dict)


def service_main(
    name: str,
    settings_factory: Callable[[], S],
    create_app: Callable[[S], FastAPI],
    tasks: Mapping[str, Task[S] | OptionTask[S]] | None = None,
    *,
    package: str,
    argv: Sequence[str] | None = None,
) -> None:
    """Parse the command line and serve, or run one task and exit with its code."""
    tasks = dict(tasks or {})
    parser = argparse.ArgumentParser(prog=f"python -m {package}")
    commands = parser.add_subparsers(dest="command", metavar="{serve," + ",".join(tasks) + "}")
    commands.add_parser("serve", help="run the service (the default)")
    for command, task in tasks.items():
        sub = commands.add_parser(command, help=task.help)
        if isinstance(task, OptionTask):
            for option, help_text in task.options.items():
                sub.add_argument(f"--{option}", help=help_text)
            continue
        for flag, help_text in task.flags.items():
            sub.add_argument(f"--{flag}", action="store_true", help=help_text)
    args = parser.parse_args(argv)
    settings = settings_factory()
    if args.command in (None, "serve"):
        run_service(name, settings, create_app)
        return
    task = tasks[args.command]
    configure_logging(name, settings.log_level)
    if isinstance(task, OptionTask):
        options = {o: getattr(args, o.replace("-", "_")) for o in task.options}
        code = asyncio.run(task.run(settings, options))
        if code:
            sys.exit(code)
        return
    flags = {flag: bool(getattr(args, flag.replace("-", "_"))) for flag in task.flags}
    code = asyncio.run(task.run(settings, flags))
    if code:
        sys.exit(code)
