"""Omission claims (``OmissionClaims``): holding an oracle to a receipt it signed "accepted".

A gateway keeps the oracle's signed receipt of every reading accepted for its ISP's root
(``flexledger-edge receipts`` prints them). If the reading is not in the root that oracle
anchored, anyone holding the receipt claims it (``file_claim``, posting the contract's bond); the
oracle (or anyone) answers within the market's dispute window with the reading's inclusion proof
from its store (``answer_claims``, which ``oracle run`` does every round); unanswered, anyone
upholds it (``uphold``): the oracle is marked and its stake pays the claimant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak, to_checksum_address
from sqlalchemy.engine import Engine

from flexledger.chain.bindings import MeterOracleClient, OmissionClaimsClient, SettlementTokenClient
from flexledger.chain.client import TxResult
from flexledger.chain.errors import ChainError
from flexledger.chain.structs import ReceiptIn
from flexledger.errors import FlexledgerError
from flexledger.oracle.anchoring import ProofError, anchor_struct, chain_anchor, proof_for
from flexledger.settlement.claim_bonds import approve_bond

OPEN = 1  # OmissionClaims.Status.Open


class OmissionClaimError(FlexledgerError):
    """A receipt that cannot be claimed with (malformed, not accepted, its ISP not anchored)."""


@dataclass(frozen=True)
class SignedReceipt:
    """A receipt as the oracle published it, signed "accepted" for one market."""

    market: int
    meter: str
    isp_start: int
    sequence: int
    import_wh: int
    export_wh: int
    oracle: str
    signature: bytes

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> SignedReceipt:
        """The receipt of ``body`` (one line of ``flexledger-edge receipts``)."""
        try:
            if body.get("accepted") is not True:
                raise OmissionClaimError("the receipt does not say the reading was accepted for its root: it "
                                         "promises nothing (a reading taken late or refused)")
            return cls(int(body["market"]), to_checksum_address(body["meter"]), int(body["ispStart"]),
                       int(body["sequence"]), int(body["importWh"]), int(body["exportWh"]),
                       to_checksum_address(body["oracle"]), bytes.fromhex(str(body["signature"]).removeprefix("0x")))
        except (KeyError, TypeError, ValueError) as exc:
            raise OmissionClaimError(f"not a signed receipt: {exc}") from None

    @classmethod
    def load(cls, text: str) -> SignedReceipt:
        try:
            return cls.from_json(json.loads(text))
        except ValueError as exc:
            raise OmissionClaimError(f"not a signed receipt (JSON): {exc}") from None


def file_claim(claims: OmissionClaimsClient, oracle: MeterOracleClient, token: SettlementTokenClient,
               receipt: SignedReceipt) -> TxResult:
    """Claim that the oracle which anchored the receipt's ISP left the reading out; approves the
    bond first when the allowance is short. The contract judges the rest (revert errors)."""
    anchor = chain_anchor(oracle, receipt.market, receipt.isp_start)
    if anchor is None:
        raise OmissionClaimError(f"the ISP starting at {receipt.isp_start} of market {receipt.market} is not "
                                 "anchored (yet): a claim waits for its root",
                                 hint="the reading can still settle on the meter's signature alone")
    signer = claims.signer
    assert signer is not None
    approve_bond(token, signer.address, claims.address, claims.claim_bond())
    signed = ReceiptIn(receipt.meter, receipt.isp_start, receipt.sequence, receipt.import_wh, receipt.export_wh)
    return claims.claim(receipt.market, signed, receipt.signature, anchor_struct(anchor))


def open_claims_against(claims: OmissionClaimsClient, oracle_account: str, market: int) -> list[dict[str, Any]]:
    """The claims still open against ``oracle_account`` in ``market`` (from ``OmissionClaimed``)."""
    found = []
    for e in claims.events("OmissionClaimed"):
        if int(e.args["market"]) != market or str(e.args["oracleAccount"]).lower() != oracle_account.lower():
            continue
        if claims.claim_of(market, int(e.args["ispStart"]), str(e.args["meter"])).status == OPEN:
            found.append({"ispStart": int(e.args["ispStart"]), "meter": str(e.args["meter"]),
                          "answerBy": int(e.args["answerBy"]), "claimant": str(e.args["claimant"])})
    return found


def answer_claims(engine: Engine, claims: OmissionClaimsClient, market: int) -> list[dict[str, Any]]:
    """Answer every open claim against this oracle (the client's signer) with the reading's
    inclusion proof from its store; a claim whose reading this store cannot prove in the root is
    left (it will be upheld: the oracle did break its receipt). What was answered."""
    signer = claims.signer
    assert signer is not None
    answered = []
    for c in open_claims_against(claims, signer.address, market):
        try:
            proof = proof_for(engine, c["meter"], c["ispStart"])
        except ProofError:
            continue
        if int(proof["anchor"]["leafCount"]) == 0:
            continue  # kept late, in no root: the promise is broken
        try:
            tx = claims.answer(market, c["ispStart"], c["meter"], keccak(bytes.fromhex(proof["signature"][2:])),
                               [bytes.fromhex(p[2:]) for p in proof["proof"]])
        except ChainError:
            continue  # another reading than the receipted one, or the window closed
        answered.append({**c, "txHash": tx.tx_hash, "gasUsed": tx.gas_used})
    return answered


def uphold(claims: OmissionClaimsClient, market: int, isp_start: int, meter: str) -> TxResult:
    """Uphold an unanswered claim after its window (anyone may)."""
    return claims.uphold(market, isp_start, to_checksum_address(meter))
