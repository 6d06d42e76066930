// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IRoleRegistry} from "@flexledger/access/IRoleRegistry.sol";
import {RoleGated} from "@flexledger/access/RoleGated.sol";

/// @notice A test contract gated as every flexledger contract is: only a DSO may `act`.
contract GatedExample is RoleGated {
    /// @notice How often a DSO acted.
    uint256 public calls;

    constructor(IRoleRegistry registry) RoleGated(registry) {}

    /// @notice Count one call; reverts with RoleGatedMissingRole for anyone without the DSO role.
    function act() external onlyMarketRole(keccak256("DSO")) {
        calls++;
    }
}
