"""The worker's failures as the bridge sees them: `{"error": "<code>: <message>"}`."""

from openv_contracts.render_job import RenderJobErrorCode


class WorkerError(Exception):
    """A render job that cannot finish, with the code and message its answer carries."""

    def __init__(self, code: RenderJobErrorCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message
