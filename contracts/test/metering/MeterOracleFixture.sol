// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "../utils/TestBase.sol";
import {MarketAuthority} from "../../src/access/MarketAuthority.sol";
import {RoleRegistry} from "../../src/access/RoleRegistry.sol";
import {MarketRegistry} from "../../src/market/MarketRegistry.sol";
import {MeterOracle} from "../../src/metering/MeterOracle.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// The deployed stack in deploy order (MarketAuthority, RoleRegistry, MarketRegistry, MeterOracle),
/// two oracles, one market (15-minute ISPs, days at 00:00 UTC), the clock at the market day's start.
abstract contract MeterOracleFixture is TestBase {
    event log_named_uint(string key, uint256 val);
    event RootAnchored(
        uint32 indexed market,
        uint64 indexed ispStart,
        address indexed oracle,
        bytes32 root,
        uint32 leafCount,
        uint64 anchoredAt
    );

    address internal constant ADMIN = address(0xA);
    address internal constant ORACLE1 = address(0x0A1);
    address internal constant ORACLE2 = address(0x0A2);
    address internal constant NOBODY = address(0xBAD);
    uint64 internal constant DAY0 = 1_800_000_000 - (1_800_000_000 % 86_400); // a UTC midnight
    uint32 internal constant ISP = 900;
    /// The fifth ISP of the day (01:00-01:15 UTC); the clock starts before it.
    uint64 internal constant ISP4 = DAY0 + 4 * ISP;

    bytes32 internal constant ORACLE_ROLE = keccak256("ORACLE");

    MarketAuthority internal auth;
    RoleRegistry internal roles;
    MarketRegistry internal markets;
    MeterOracle internal oracle;
    uint32 internal market;

    function setUp() public virtual {
        vm.warp(DAY0);
        auth = new MarketAuthority(1 days, ADMIN);
        roles = new RoleRegistry(auth);
        markets = new MarketRegistry(auth);
        oracle = new MeterOracle(roles, markets, IERC20(address(0))); // stakes: tested in the settlement world
        grant(ORACLE1, ORACLE_ROLE);
        grant(ORACLE2, ORACLE_ROLE);
        vm.prank(ADMIN);
        market = markets.createMarket(marketParams(ISP));
    }

    function grant(address who, bytes32 role) internal {
        grantUntil(who, role, type(uint64).max);
    }

    function grantUntil(address who, bytes32 role, uint64 validUntil) internal {
        vm.prank(ADMIN);
        roles.issueCredential(who, role, 0, validUntil, keccak256(abi.encode(who, role)));
    }

    function marketParams(uint32 isp) internal pure returns (MarketRegistry.MarketParams memory) {
        return MarketRegistry.MarketParams({
            ispSeconds: isp,
            gateClosureSeconds: 3600,
            dayOffsetSeconds: 0,
            toleranceBps: 500,
            penaltyFactorBps: 15_000,
            pricingRule: MarketRegistry.PricingRule.PAY_AS_BID,
            challengeWindowSeconds: 3600,
            disputeWindowSeconds: 2 days
        });
    }

    /// Anchor `root` over `leafCount` readings for `ispStart` as `who`, and return the anchor it stored.
    function anchor(address who, uint64 ispStart, bytes32 root, uint32 leafCount)
        internal
        returns (MeterOracle.Anchor memory a)
    {
        vm.prank(who);
        oracle.anchorRoot(market, ispStart, root, leafCount);
        a = MeterOracle.Anchor({root: root, oracle: who, leafCount: leafCount, anchoredAt: uint64(block.timestamp)});
    }

    function hashOf(MeterOracle.Anchor memory a) internal pure returns (bytes32) {
        return keccak256(abi.encode(a.root, a.oracle, a.leafCount, a.anchoredAt));
    }
}
