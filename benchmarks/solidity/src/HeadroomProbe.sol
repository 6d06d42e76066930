// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {GridZones} from "@flexledger/grid/GridZones.sol";

/// @notice Measures the TSO-headroom view as another contract pays for it, every slot cold.
contract HeadroomProbe {
    GridZones public immutable grid;

    constructor(GridZones registry) {
        grid = registry;
    }

    /// @notice Gas of one `tsoHeadroom` call, and its answer.
    /// @param marketId The market.
    /// @param zoneId The zone.
    /// @param ispStart The ISP.
    /// @param direction UP or DOWN.
    /// @return used Gas of the call.
    /// @return allowed Whether the TSO may use flexibility there.
    /// @return capabilityW The headroom.
    function measure(uint32 marketId, uint32 zoneId, uint64 ispStart, uint8 direction)
        external
        view
        returns (uint256 used, bool allowed, uint256 capabilityW)
    {
        uint256 before = gasleft();
        (allowed, capabilityW) = grid.tsoHeadroom(marketId, zoneId, ispStart, direction);
        used = before - gasleft();
    }
}
