// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SettlementFixture} from "./SettlementFixture.sol";
import {SettlementHandler} from "./SettlementInvariant.t.sol";
import {Settlement} from "../../src/market/Settlement.sol";
import {ReadingDisputes} from "../../src/metering/ReadingDisputes.sol";
import {BondWord} from "../../src/market/BondWord.sol";

/// The settlement handler, with what the money-safety invariants read of its state.
contract MoneySafetyHandler is SettlementHandler {
    constructor(Settlement s, ReadingDisputes j, address[] memory who, uint64[] memory ids)
        SettlementHandler(s, j, who, ids)
    {}

    function saleCount() external view returns (uint256) {
        return inputs.length;
    }

    /// The sale's current record (abi-encoded; empty until settled) and whether it is final.
    function recordOf(uint256 i) external view returns (bytes memory record, bool isFinal) {
        return (records[i], finalised[i]);
    }
}

/// DESIGN "Money safety" as invariants over the settlement fixture's world (three markets, two
/// sellers, its committed sales, the misread ones disputed with what their meters signed), driven
/// at random by the handler: settle, settle in batches, dispute, finalise, withdraw, refund, wait.
/// (i) one meter's payments in an ISP never exceed what its prequalified power allows at the
/// highest price any of its awards may be paid; (ii) the oracle is marked (and slashed) at most
/// once per (market, ISP, meter); (iii) a seller's locked bond covers min(bond, the worst-case
/// penalties of its settlements not yet final). 10,000 sequences of 10 calls each.
contract MoneySafetyInvariantTest is SettlementFixture {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    MoneySafetyHandler internal handler;
    uint256[] internal saleOf; // the fixture's sale behind each handler index
    uint256 internal distinctMisreads; // (market, ISP, meter) triples the handler can dispute
    uint256 internal highestPrice; // the highest request maximum: no award is paid more per MWh

    function setUp() public override {
        super.setUp();
        uint64[] memory touched = new uint64[](book.requestCount());
        for (uint64 r = 1; r <= book.requestCount(); ++r) {
            touched[r - 1] = r;
            uint256 maxPrice = book.request(r).maxPrice;
            if (maxPrice > highestPrice) highestPrice = maxPrice;
        }
        address[] memory receivers = new address[](6);
        (receivers[0], receivers[1], receivers[2], receivers[3], receivers[4], receivers[5]) =
            (owner, owner2, DSO1, DSO2, TSO, buyer);
        handler = new MoneySafetyHandler(settlement, disputes, receivers, touched);
        for (uint256 sale = 0; sale < sales.length; ++sale) {
            if (sale == S_M2) continue; // market2's result is never committed here
            uint256 i = handler.addSale(abi.encode(settleIn(sale)));
            saleOf.push(sale);
            if (sale == S_DISP) {
                handler.addDispute(i, abi.encode(disputeIn(S_DISP, 0)));
                distinctMisreads += 1;
            }
            if (sale == S_DISP2) {
                handler.addDispute(i, abi.encode(disputeIn(S_DISP2, 0)));
                handler.addDispute(i, abi.encode(disputeIn(S_DISP2, 1)));
                distinctMisreads += 2; // one meter, two ISPs
            }
        }
    }

    function targetContracts() public view returns (address[] memory t) {
        t = new address[](1);
        t[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory t) {
        bytes4[] memory actions = new bytes4[](8);
        actions[0] = SettlementHandler.settle.selector;
        actions[1] = SettlementHandler.finalise.selector;
        actions[2] = SettlementHandler.dispute.selector;
        actions[3] = SettlementHandler.withdraw.selector;
        actions[4] = SettlementHandler.refund.selector;
        actions[5] = SettlementHandler.wait.selector;
        actions[6] = SettlementHandler.settleMany.selector;
        actions[7] = SettlementHandler.finaliseMany.selector;
        t = new FuzzSelector[](1);
        t[0] = FuzzSelector({addr: address(handler), selectors: actions});
    }

    /// (i) Per meter and ISP, the payments of every settled record (of any offer, any market) are
    /// at most its prequalified power over the ISP at the highest price a request allows.
    /// forge-config: default.invariant.runs = 10000
    /// forge-config: quick.invariant.runs = 500
    /// forge-config: default.invariant.depth = 10
    function invariant_oneMetersPaymentsPerIspWithinItsPower() public view {
        uint256 n = handler.saleCount();
        bytes32[] memory keys = new bytes32[](64);
        uint256[] memory paid = new uint256[](64);
        uint256 used;
        for (uint256 i = 0; i < n; ++i) {
            (bytes memory raw,) = handler.recordOf(i);
            if (raw.length == 0) continue;
            Settlement.Record memory r = abi.decode(raw, (Settlement.Record));
            address meter = assets.meterOf(sales[saleOf[i]].assetId);
            for (uint256 l = 0; l < r.lines.length; ++l) {
                bytes32 key = keccak256(abi.encode(meter, r.lines[l].ispStart));
                uint256 k = 0;
                while (k < used && keys[k] != key) ++k;
                if (k == used) keys[used++] = key;
                paid[k] += r.lines[l].payment;
            }
        }
        uint256 cap = (uint256(UP_W) * ISP * highestPrice + WS_PER_MWH - 1) / WS_PER_MWH;
        for (uint256 k = 0; k < used; ++k) {
            assertLe(paid[k], cap, "one meter's payments in an ISP within its prequalified power");
        }
    }

    /// (ii) However many offers settled on a wrong anchored reading and however often they are
    /// disputed, its oracle is marked once per (market, ISP, meter).
    /// forge-config: default.invariant.runs = 10000
    /// forge-config: quick.invariant.runs = 500
    /// forge-config: default.invariant.depth = 10
    function invariant_oracleMarkedOncePerMarketIspMeter() public view {
        assertLe(disputes.faultsOf(ORACLE1), distinctMisreads, "at most one fault per (market, ISP, meter)");
    }

    /// (iii) Each seller's locked bond covers min(bond, the uncovered penalties of its settlements
    /// not yet final): what finality will draw is held.
    /// forge-config: default.invariant.runs = 10000
    /// forge-config: quick.invariant.runs = 500
    /// forge-config: default.invariant.depth = 10
    function invariant_lockedBondCoversPendingPenalties() public view {
        uint256 n = handler.saleCount();
        uint256[2] memory pending;
        for (uint256 i = 0; i < n; ++i) {
            (bytes memory raw, bool isFinal) = handler.recordOf(i);
            if (raw.length == 0 || isFinal) continue;
            Settlement.Record memory r = abi.decode(raw, (Settlement.Record));
            for (uint256 l = 0; l < r.lines.length; ++l) {
                pending[r.seller == owner ? 0 : 1] += r.lines[l].uncovered;
            }
        }
        address[2] memory sellers = [owner, owner2];
        for (uint256 s = 0; s < 2; ++s) {
            uint256 w = book.bondWord(sellers[s]);
            uint256 need = pending[s] < BondWord.amount(w) ? pending[s] : BondWord.amount(w);
            assertLe(need, BondWord.locked(w), "locked >= min(bond, pending penalties)");
        }
    }
}
