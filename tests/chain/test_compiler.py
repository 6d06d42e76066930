"""The compile step: fresh artifacts, solc's own error messages, staleness detection."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flexledger.chain import compiler, paths
from flexledger.chain.errors import ArtifactError, CompileError
from flexledger.chain.generate import check_generated


def test_committed_artifacts_match_the_sources() -> None:
    # Fails when a contract changed without `flexledger compile` and a commit of contracts/build.
    compiler.check_fresh()
    check_generated()


def test_every_source_contract_has_an_artifact_with_its_source_hash() -> None:
    info = json.loads((paths.build_dir() / compiler.BUILD_INFO).read_text())
    for name in info["contracts"]:
        artifact = json.loads((paths.build_dir() / f"{name}.json").read_text())
        assert artifact["sourceHash"] == info["sourceHash"]
        assert artifact["abi"] is not None


def test_stale_artifacts_are_detected(tmp_path: Path) -> None:
    shutil.copytree(paths.build_dir(), tmp_path / "build")
    info_path = tmp_path / "build" / compiler.BUILD_INFO
    info = json.loads(info_path.read_text())
    info["sourceHash"] = "sha256:" + "0" * 64
    info_path.write_text(json.dumps(info))
    with pytest.raises(ArtifactError, match="stale"):
        compiler.check_fresh(tmp_path / "build")


def test_missing_build_info_says_to_compile(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError) as err:
        compiler.check_fresh(tmp_path)
    assert "flexledger compile" in (err.value.hint or "")


def test_a_compile_error_carries_solcs_message_with_file_and_line(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "Broken.sol").write_text(
        "// SPDX-License-Identifier: Apache-2.0\npragma solidity ^0.8.24;\n"
        "contract Broken {\n    function f() external { uint x = ; }\n}\n"
    )
    with pytest.raises(CompileError) as err:
        compiler.compile_contracts(src)
    text = str(err.value)
    assert "src/Broken.sol:4:" in text
    assert "ParserError" in text


def test_imports_are_gathered_from_openzeppelin(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "lib").mkdir(parents=True)
    (src / "lib" / "Util.sol").write_text(
        "// SPDX-License-Identifier: Apache-2.0\npragma solidity ^0.8.24;\n"
        'import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";\n'
        "library Util { function r(bytes32 h, bytes memory s) internal pure returns (address) "
        "{ return ECDSA.recover(h, s); } }\n"
    )
    (src / "User.sol").write_text(
        "// SPDX-License-Identifier: Apache-2.0\npragma solidity ^0.8.24;\n"
        'import {Util} from "./lib/Util.sol";\n'
        "contract User { function f(bytes32 h, bytes calldata s) external pure returns (address) "
        "{ return Util.r(h, s); } }\n"
    )
    sources = compiler.gather_sources(src)
    assert "src/lib/Util.sol" in sources
    assert "@openzeppelin/contracts/utils/cryptography/ECDSA.sol" in sources
    result = compiler.compile_contracts(src)
    assert result.artifacts["User"]["bytecode"].startswith("0x6")
