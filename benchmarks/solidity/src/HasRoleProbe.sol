// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

interface IMarketRoles {
    function hasMarketRole(address subject, bytes32 role) external view returns (bool);
}

/// @notice Measures what a role check costs another contract: the call, with the registry
/// account and the credential slot both cold, as in a fresh transaction.
contract HasRoleProbe {
    /// @notice Gas used by one `hasMarketRole` call from this contract, and its answer.
    /// @param registry The RoleRegistry to ask.
    /// @param subject The account whose role is checked.
    /// @param role The role id.
    /// @return used Gas between just before and just after the call.
    /// @return held The registry's answer.
    function measure(address registry, address subject, bytes32 role) external view returns (uint256 used, bool held) {
        uint256 before = gasleft();
        held = IMarketRoles(registry).hasMarketRole(subject, role);
        used = before - gasleft();
    }
}
