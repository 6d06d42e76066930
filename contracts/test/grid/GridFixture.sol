// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "../utils/TestBase.sol";
import {MarketAuthority} from "../../src/access/MarketAuthority.sol";
import {RoleRegistry} from "../../src/access/RoleRegistry.sol";
import {MarketRegistry} from "../../src/market/MarketRegistry.sol";
import {GridRegistry} from "../../src/grid/GridRegistry.sol";

/// A market authority, roles for a TSO and two DSOs, one market (15-minute ISPs, gate closure one
/// hour ahead) and an empty grid.
abstract contract GridFixture is TestBase {
    address internal constant ADMIN = address(0xA);
    address internal constant TSO = address(0x750);
    address internal constant DSO1 = address(0xD51);
    address internal constant DSO2 = address(0xD52);
    address internal constant NOBODY = address(0xBAD);
    uint64 internal constant DAY0 = 1_800_000_000 - (1_800_000_000 % 86_400); // a UTC midnight

    MarketAuthority internal auth;
    RoleRegistry internal roles;
    MarketRegistry internal markets;
    GridRegistry internal grid;
    uint32 internal market;

    function setUp() public virtual {
        vm.warp(DAY0 - 1 days);
        auth = new MarketAuthority(1 days, ADMIN);
        roles = new RoleRegistry(auth);
        markets = new MarketRegistry(auth);
        grid = new GridRegistry(roles, markets);
        vm.startPrank(ADMIN);
        roles.issueCredential(TSO, keccak256("TSO"), 0, type(uint64).max, 0);
        roles.issueCredential(DSO1, keccak256("DSO"), 0, type(uint64).max, 0);
        roles.issueCredential(DSO2, keccak256("DSO"), 0, type(uint64).max, 0);
        market = markets.createMarket(defaultParams());
        vm.stopPrank();
    }

    function defaultParams() internal pure returns (MarketRegistry.MarketParams memory) {
        return MarketRegistry.MarketParams({
            ispSeconds: 900,
            gateClosureSeconds: 3600,
            dayOffsetSeconds: 0,
            toleranceBps: 500,
            penaltyFactorBps: 15_000,
            pricingRule: MarketRegistry.PricingRule.PAY_AS_BID,
            challengeWindowSeconds: 3600,
            disputeWindowSeconds: 2 days
        });
    }

    /// TSO area 1 > DSO perimeters 2 (DSO1) and 3 (DSO2) > substation 4 (under 2) > feeder 5.
    function buildTree() internal {
        vm.prank(TSO);
        grid.addZone(0, TSO, 0);
        vm.prank(TSO);
        grid.addZone(1, DSO1, 1_000_000);
        vm.prank(TSO);
        grid.addZone(1, DSO2, 1_000_000);
        vm.prank(DSO1);
        grid.addZone(2, DSO1, 500_000);
        vm.prank(DSO1);
        grid.addZone(4, DSO1, 100_000);
    }

    function light(uint8 colour, uint32 capability) internal pure returns (uint32) {
        return (uint32(colour) << 30) | capability;
    }

    /// One zone's day: every ISP of both directions set to `up` and `down`.
    function dayWords(uint32 up, uint32 down) internal pure returns (uint256[] memory words) {
        words = new uint256[](24);
        for (uint256 w = 0; w < 24; ++w) {
            uint256 word;
            for (uint256 j = 0; j < 8; ++j) {
                word |= uint256(w < 12 ? up : down) << (32 * j);
            }
            words[w] = word;
        }
    }
}
