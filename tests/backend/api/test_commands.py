"""`flexledger api` joins the CLI through the flexledger.commands entry point, with its commands."""

from __future__ import annotations

from typer.testing import CliRunner

from flexledger.cli.app import app
from flexledger.errors import ConfigurationError


def test_the_api_commands_are_mounted() -> None:
    result = CliRunner().invoke(app, ["api", "--help"])
    assert result.exit_code == 0, result.output
    assert "serve" in result.output and "relay" in result.output


def test_bad_api_settings_are_named() -> None:
    result = CliRunner().invoke(app, ["api", "serve"], env={"FLEXLEDGER_API_TOKEN_SECONDS": "-5"})
    assert isinstance(result.exception, ConfigurationError)  # flexledger's main prints it with its hint
    assert "token_seconds" in result.exception.message
