"""`python -m openv_runpod_sim [--host H] [--port P]`: serve the simulator, settings from env."""

import argparse

import uvicorn

from openv_runpod_sim.app import create_app
from openv_runpod_sim.config import SimSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="openv_runpod_sim", description=__doc__)
    parser.add_argument("--host", help="bind address (overrides RUNPOD_SIM_HOST)")
    parser.add_argument("--port", type=int, help="port (overrides RUNPOD_SIM_PORT)")
    args = parser.parse_args(argv)
    settings = SimSettings()
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = settings.model_copy(update=overrides)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
    )


if __name__ == "__main__":
    main()
