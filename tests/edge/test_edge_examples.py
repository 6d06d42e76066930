"""The example configurations in edge-agent/examples/ load, cover both drivers, and are the ones
the README shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flexledger_edge.config import ModbusDriverConfig, SimulatedDriverConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "edge-agent" / "examples"


@pytest.mark.parametrize(("name", "driver"), [("simulated", SimulatedDriverConfig), ("modbus", ModbusDriverConfig)])
def test_each_example_loads(name: str, driver: type, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_PASSWORD", "from the environment")
    config = load_config(EXAMPLES / f"{name}.toml")
    assert isinstance(config.driver, driver) and config.asset is not None and config.orders is not None


def test_the_readme_shows_the_examples_as_they_are() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    for example in sorted(EXAMPLES.glob("*.toml")):
        assert example.read_text() in blocks, f"README's copy of {example.name} differs from the file"
