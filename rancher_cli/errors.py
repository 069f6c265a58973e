"""The CLI's one error type: a message that says what is wrong and what to do, and an exit code."""

from __future__ import annotations

from rancher_cli.constants import EXIT_SERVER_ERROR


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_SERVER_ERROR, status: int = 0,
                 detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status  # the server's HTTP status, when it answered
        self.detail = detail  # the server's own message, when it answered with one
