// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IRoleRegistry} from "@flexledger/access/IRoleRegistry.sol";
import {RoleGated} from "@flexledger/access/RoleGated.sol";

/// @notice Measures what a role check costs another contract, with the registry account and the
/// credential slot both cold, as in a fresh transaction: through RoleGated (the path every
/// flexledger contract takes) and through a plain Solidity interface call.
contract HasRoleProbe is RoleGated {
    constructor(IRoleRegistry registry) RoleGated(registry) {}

    /// @notice Gas of one role check through RoleGated, and its answer.
    /// @param subject The account whose role is checked.
    /// @param role The role id.
    /// @return used Gas between just before and just after the check.
    /// @return held The registry's answer.
    function measureGated(address subject, bytes32 role) external view returns (uint256 used, bool held) {
        uint256 before = gasleft();
        held = _hasMarketRole(subject, role);
        used = before - gasleft();
    }

    /// @notice Gas of one `hasMarketRole` call through the Solidity ABI encoder, and its answer.
    /// @param subject The account whose role is checked.
    /// @param role The role id.
    /// @return used Gas between just before and just after the call.
    /// @return held The registry's answer.
    function measureInterface(address subject, bytes32 role) external view returns (uint256 used, bool held) {
        uint256 before = gasleft();
        held = roleRegistry.hasMarketRole(subject, role);
        used = before - gasleft();
    }
}
