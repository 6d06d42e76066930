// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SettlementFixture} from "./SettlementFixture.sol";
import {Settlement} from "../../src/market/Settlement.sol";

contract SettlementSmokeTest is SettlementFixture {
    function test_smoke() public {
        checkMoney();
        Settlement.Record memory r = settleSale(S_FULL);
        assertEq(r.lines.length, 1, "one line");
        assertEq(r.lines[0].claim, 125_000, "claim");
        r = settleSale(S_SPLIT);
        assertEq(r.lines[0].claim, 57_500, "split up");
        assertEq(r.lines[1].claim, 28_750, "split tso");
        r = settleSale(S_GAS);
        r = settleSale(S_BLOCK);
        r = settleSale(S_PC1);
        assertEq(r.lines[0].claim, 125_000, "pc1");
    }
}
