"""Contract refusals in plain words: the NatSpec notice and hint carried into the generated errors,
their arguments written as people read them (flexledger.refusals)."""

from __future__ import annotations

from pathlib import Path

from cli_runner import run

from flexledger.chain import revert_errors as errors
from flexledger.chain.node import free_port
from flexledger.identity.roles import Role
from flexledger.refusals import GENERIC_HINT, plain
from flexledger.rules.lights import RED, Colour, Light

ACCOUNT = "0x00000000000000000000000000000000000000aB"


def test_a_missing_role_names_the_role_and_the_fix() -> None:
    error = errors.RoleGatedMissingRole(ACCOUNT, Role.AGGREGATOR.id, contract="OrderBook", function="submitOffers")
    message, hint = plain(error)
    assert message.startswith(f"OrderBook.submitOffers refused: {ACCOUNT} holds no valid AGGREGATOR credential now.")
    assert "0x" + Role.AGGREGATOR.id.hex() not in message
    assert "flexledger role grant" in hint


def test_lights_times_and_watts_in_words() -> None:
    yellow = Light(Colour.YELLOW, 5_000).pack()
    error = errors.GridZonesLooserThanStatic(7, 1_767_225_600, 0, yellow, RED.pack())
    message, hint = plain(error)
    assert "YELLOW 5000 W" in message and "static_light=RED" in message
    assert "isp_start=2026-01-01T00:00:00Z" in message
    assert "static light" in hint
    over = errors.AssetPowerAboveZoneLimit(3, 12_000, 10_000)
    assert "power 12,000 W is above its zone's limit 10,000 W" in plain(over)[0]


def test_library_errors_and_errors_without_notice() -> None:
    poor = errors.ERC20InsufficientBalance(ACCOUNT, 5, 100)
    message, hint = plain(poor)
    assert f"{ACCOUNT} holds 5 of the settlement token and needs 100" in message
    assert "flexledger token mint" in hint
    bare = errors.ClearingMalformedGroup(3)  # a notice, no hint: the generic one
    assert plain(bare)[1] == GENERIC_HINT
    assert bare.hint is None and errors.RoleGatedMissingRole.hint


def test_a_refusal_through_the_cli_is_words_and_a_hint(tmp_path: Path) -> None:
    env = {"FLEXLEDGER_NODE_PORT": str(free_port())}
    run("node", "start", data_dir=tmp_path, env=env)
    try:
        run("deploy", data_dir=tmp_path, env=env)
        refused = run("bond", "withdraw", "5", data_dir=tmp_path, env=env, check=False)
        assert refused.returncode == 1, refused
        assert "refused: The bond's withdrawal notice runs until" in refused.stderr
        assert "flexledger bond announce" in refused.stderr and "Traceback" not in refused.stderr
    finally:
        run("node", "stop", data_dir=tmp_path, check=False)
