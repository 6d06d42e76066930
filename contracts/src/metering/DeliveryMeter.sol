// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MarketRegistry} from "../market/MarketRegistry.sol";
import {AssetRegistry} from "../grid/AssetRegistry.sol";
import {MeterOracle} from "./MeterOracle.sol";

/**
 * @title DeliveryMeter
 * @notice Measures an aggregator's portfolio in one ISP from its members' anchored readings: its
 * net consumption is the sum of its members' meters, counted as the portfolio was at the market
 * day's gate closure (when its offers for the day became final; a member that left later still
 * counts for that day, one that left earlier does not). For a ROLLING_AVERAGE offer its baseline
 * is the sum of the members' standard baselines the oracle anchored. Every member's reading (and
 * baseline) comes with its Merkle proof against the oracle's roots, as an asset's does.
 *
 * @dev The Settlement hands each ISP's members over as ABI-encoded `MemberReading[]` (in the order
 * the portfolio was founded with) and leaves the proofs to this contract: one more call per
 * portfolio ISP, and none of this code in the Settlement.
 */
contract DeliveryMeter {
    /// @notice One member's anchored reading for the ISP and, for ROLLING_AVERAGE, its standard baseline.
    struct MemberReading {
        uint64 asset;
        MeterOracle.Anchor anchor;
        uint64 sequence;
        uint64 importWh;
        uint64 exportWh;
        bytes signature; // the meter's, over the reading (its hash is in the anchored leaf)
        bytes32[] proof; // against `anchor.root` (none for a reading brought without an anchor)
        int64 baselineWh; // ROLLING_AVERAGE: the oracle's anchored standard baseline of the member's meter
        bytes32[] baselineProof;
    }

    MarketRegistry public immutable markets;
    AssetRegistry public immutable assets;
    MeterOracle public immutable oracle;

    /// @notice The readings presented are not the portfolio's members at the gate closure, in their
    /// order: the one at `index` is missing, extra, or out of place (`expected` is who should be there, 0 for none).
    error PortfolioMembersMismatch(uint32 portfolioId, uint64 ispStart, uint256 index, uint64 expected);
    /// @notice The member's reading is not its meter's anchored reading for that ISP.
    error PortfolioReadingNotAnchored(uint32 portfolioId, uint64 ispStart, uint64 asset);
    /// @notice The member's standard baseline is not the one the oracle anchored for its meter and ISP.
    error PortfolioBaselineNotAnchored(uint32 portfolioId, uint64 ispStart, uint64 asset);
    /// @notice The portfolio's summed net consumption or baseline does not fit an int64.
    error PortfolioOutOfRange(uint32 portfolioId, uint64 ispStart);
    /// @notice The portfolio had no member at the gate closure: no meter measures it (its offer
    /// can only be settled by default, as if nothing were delivered).
    error PortfolioWithoutMembers(uint32 portfolioId, uint64 ispStart);

    /**
     * @param marketRegistry The MarketRegistry (gate closures).
     * @param assetRegistry The AssetRegistry (portfolios' members, meters).
     * @param meterOracle The MeterOracle (anchored readings and standard baselines).
     */
    constructor(MarketRegistry marketRegistry, AssetRegistry assetRegistry, MeterOracle meterOracle) {
        markets = marketRegistry;
        assets = assetRegistry;
        oracle = meterOracle;
    }

    /**
     * @notice The members whose meters make up a portfolio's delivery in an ISP: those it had at
     * the gate closure of the ISP's market day, in the order it was founded with.
     * @param market The market.
     * @param portfolioId The portfolio.
     * @param ispStart The ISP's start.
     * @return The member assets.
     */
    function members(uint32 market, uint32 portfolioId, uint64 ispStart) public view returns (uint64[] memory) {
        return assets.membersAt(portfolioId, markets.gateClosure(market, ispStart));
    }

    /**
     * @notice A portfolio's net consumption (import - export, Wh) in an ISP, summed over its
     * members' anchored readings, each checked against its proof; with `standard`, also its
     * baseline, summed over the members' anchored standard baselines.
     * @param market The market.
     * @param portfolioId The portfolio.
     * @param ispStart The ISP's start.
     * @param standard Whether the offer names the standard (ROLLING_AVERAGE) baseline.
     * @param encoded The members' readings: ABI-encoded `MemberReading[]`, one per member, in order.
     * @return net The portfolio's net consumption.
     * @return baselineWh The portfolio's standard baseline (0 unless `standard`).
     */
    function measure(uint32 market, uint32 portfolioId, uint64 ispStart, bool standard, bytes calldata encoded)
        external
        view
        returns (int256 net, int256 baselineWh)
    {
        MemberReading[] memory readings = abi.decode(encoded, (MemberReading[]));
        uint64[] memory expected = members(market, portfolioId, ispStart);
        if (expected.length == 0) revert PortfolioWithoutMembers(portfolioId, ispStart);
        uint256 n = readings.length > expected.length ? readings.length : expected.length;
        for (uint256 i = 0; i < n; ++i) {
            uint64 want = i < expected.length ? expected[i] : 0;
            if (i >= readings.length || readings[i].asset != want) {
                revert PortfolioMembersMismatch(portfolioId, ispStart, i, want);
            }
            (int256 memberNet, int256 memberBaseline) = _member(market, portfolioId, ispStart, standard, readings[i]);
            net += memberNet;
            baselineWh += memberBaseline;
        }
        if (!_fits(net) || !_fits(baselineWh)) revert PortfolioOutOfRange(portfolioId, ispStart);
    }

    /// @dev One member's anchored net consumption and (with `standard`) baseline, each proven.
    function _member(uint32 market, uint32 portfolioId, uint64 ispStart, bool standard, MemberReading memory r)
        internal
        view
        returns (int256 net, int256 baselineWh)
    {
        address meter = assets.meterOf(r.asset);
        bool anchored = oracle.verifyReading(
            market, ispStart, r.anchor, meter, r.sequence, r.importWh, r.exportWh, r.signature, r.proof
        );
        if (!anchored) revert PortfolioReadingNotAnchored(portfolioId, ispStart, r.asset);
        net = int256(uint256(r.importWh)) - int256(uint256(r.exportWh));
        if (!standard) return (net, 0);
        if (!oracle.verifyBaseline(market, ispStart, meter, r.baselineWh, r.baselineProof)) {
            revert PortfolioBaselineNotAnchored(portfolioId, ispStart, r.asset);
        }
        baselineWh = r.baselineWh;
    }

    function _fits(int256 x) internal pure returns (bool) {
        return x <= type(int64).max && x >= type(int64).min;
    }
}
