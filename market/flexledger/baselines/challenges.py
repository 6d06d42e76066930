"""Challenging an input day of a standard baseline that has no anchored reading at all (dispute
(d), ``BaselineDisputes.challengeInput``): the sorted-pair tree proves no absence, so a challenge
says "the oracle invented this day" and posts a bond; the oracle (or anyone) answers with the
day's anchored reading carrying the input's value within the market's dispute window
(``answer_challenges``, which ``oracle run`` does every round, and the bond pays the answerer);
unanswered, anyone upholds it (``uphold_challenge``): the contract puts in force the rule without
that day and slashes the oracle once per (market, ISP, meter)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import decode
from eth_utils import to_checksum_address
from sqlalchemy import Engine

from flexledger.audit.baselines import DAY
from flexledger.chain.bindings import (
    BaselineDisputesClient,
    MeterOracleClient,
    SettlementTokenClient,
)
from flexledger.chain.client import TxResult
from flexledger.chain.errors import ChainError
from flexledger.chain.structs import BaselineIn
from flexledger.errors import FlexledgerError
from flexledger.oracle.anchoring import proof_for
from flexledger.rules.baselines import BaselineInputs, apply_rule
from flexledger.settlement.claim_bonds import approve_bond
from flexledger.settlement.records import is_anchored, reading_in

OPEN = 1  # BaselineDisputes.ChallengeStatus.Open


class ChallengeError(FlexledgerError):
    """An input day that cannot be challenged (not used, the baseline not in force, no bond)."""


def baseline_in(baseline: dict[str, Any]) -> BaselineIn:
    """``BaselineDisputes.BaselineIn`` of the baseline in force (``revealed_inputs``'s answer)."""
    inputs = BaselineInputs(int(baseline["daysBack"]), tuple(int(v) for v in baseline["nets"]))
    return BaselineIn(int(baseline["baselineWh"]), inputs.days_back, tuple(inputs.padded()),
                      tuple(bytes.fromhex(h[2:]) for h in baseline.get("proof", [])))


def unanchored_days(isp_start: int, inputs: BaselineInputs, anchored_at: int,
                    served: Any) -> list[int]:
    """The used days (as days before the ISP) for which ``served`` (ISP start -> ``proof_for``'s
    answer or None) holds no reading anchored by ``anchored_at``: what a challenge names."""
    out = []
    for k in inputs.days()[:len(inputs.nets)]:
        answer = served(isp_start - k * DAY)
        if answer is None or not is_anchored(reading_in(answer)) or int(answer["anchor"]["anchoredAt"]) > anchored_at:
            out.append(k)
    return out


def file_challenge(disputes: BaselineDisputesClient, token: SettlementTokenClient, market: int, isp_start: int,
                   meter: str, baseline: dict[str, Any], days_back: int) -> TxResult:
    """Challenge the day ``days_back`` of the baseline in force ``baseline``; approves the bond
    first when the allowance is short. The contract judges the rest (revert errors)."""
    signer = disputes.signer
    assert signer is not None
    approve_bond(token, signer.address, disputes.address, disputes.challenge_bond())
    return disputes.challenge_input(market, isp_start, to_checksum_address(meter), baseline_in(baseline), days_back)


def open_challenges_against(disputes: BaselineDisputesClient, oracle: MeterOracleClient, oracle_account: str,
                            market: int) -> list[dict[str, Any]]:
    """The challenges still open in ``market`` against baselines ``oracle_account`` anchored."""
    found = []
    anchors: dict[int, str] = {}
    for e in disputes.events("BaselineInputChallenged"):
        if int(e.args["market"]) != market:
            continue
        isp_start, meter, k = int(e.args["ispStart"]), str(e.args["meter"]), int(e.args["daysBack"])
        if isp_start not in anchors:
            anchors[isp_start] = str(oracle.baseline_anchor(market, isp_start).oracle_account)
        if anchors[isp_start].lower() != oracle_account.lower():
            continue
        if disputes.challenge_of(market, isp_start, meter, k).status == OPEN:
            found.append({"ispStart": isp_start, "meter": meter, "daysBack": k, "net": int(e.args["net"]),
                          "answerBy": int(e.args["answerBy"]), "challenger": str(e.args["challenger"])})
    return found


def answer_challenges(engine: Engine, disputes: BaselineDisputesClient, oracle: MeterOracleClient,
                      market: int) -> list[dict[str, Any]]:
    """Answer every open challenge against baselines this oracle (the client's signer) anchored with
    the day's anchored reading from its store; one its store cannot prove (no such reading, another
    value, anchored too late) is left: it will be upheld, rightly. What was answered."""
    signer = disputes.signer
    assert signer is not None
    answered = []
    for c in open_challenges_against(disputes, oracle, signer.address, market):
        try:
            proof = proof_for(engine, c["meter"], c["ispStart"] - c["daysBack"] * DAY)
        except FlexledgerError:
            continue
        reading = reading_in(proof)
        if not is_anchored(reading) or reading.import_wh - reading.export_wh != c["net"]:
            continue
        try:
            tx = disputes.answer_input(market, c["ispStart"], c["meter"], c["daysBack"], reading)
        except ChainError:
            continue  # the window closed, or the contract judged the proof otherwise
        answered.append({**c, "txHash": tx.tx_hash, "gasUsed": tx.gas_used})
    return answered


@dataclass(frozen=True)
class UpheldChallenge:
    """An upheld challenge: the correction it put in force (None: no baseline left) and the slash."""

    tx_hash: str
    lapsed: bool
    baseline_wh: int | None
    inputs_hash: bytes
    slashed: int


def uphold_challenge(disputes: BaselineDisputesClient, market: int, isp_start: int, meter: str, days_back: int,
                     baseline: dict[str, Any]) -> UpheldChallenge:
    """Uphold an unanswered challenge after its window (anyone may), with the baseline in force now."""
    tx = disputes.uphold_input(market, isp_start, to_checksum_address(meter), days_back, baseline_in(baseline))
    upheld = [e for e in tx.events if e.name == "BaselineInputUpheld"]
    if not upheld:
        return UpheldChallenge(tx.tx_hash, True, None, bytes(32), 0)
    a = upheld[0].args
    none = bytes(a["inputsHash"]) == bytes(32)
    return UpheldChallenge(tx.tx_hash, False, None if none else int(a["baselineWh"]), bytes(a["inputsHash"]),
                           int(a["slashed"]))


UPHOLD_ARGS = ["uint32", "uint64", "address", "uint256", "(int64,uint64,int64[10],bytes32[])"]


def kept_after_uphold(calldata: bytes) -> tuple[int, BaselineInputs, int | None]:
    """From an ``upholdInput`` call's calldata: the ISP, and what the rule keeps of the revealed
    inputs without the challenged day (and its value, None for no baseline): the correction it put in
    force, rebuilt by anyone (the chain judged it already)."""
    _market, isp_start, _meter, k, (_value, days_back, nets, _proof) = decode(UPHOLD_ARGS, calldata[4:])
    days = BaselineInputs(int(days_back), tuple(int(v) for v in nets)).days()
    pairs = [(d, int(v)) for d, v in zip(days, nets, strict=False) if d != int(k)]
    value, kept = apply_rule(int(isp_start), BaselineInputs.of(pairs))
    return int(isp_start), kept, value
