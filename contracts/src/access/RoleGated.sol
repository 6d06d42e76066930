// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IRoleRegistry} from "./IRoleRegistry.sol";

/**
 * @title RoleGated
 * @notice The base of every flexledger contract whose calls need a market role: the check
 * asks the RoleRegistry, so an expired, not yet valid or revoked credential is refused at once.
 */
abstract contract RoleGated {
    /// @notice The registry of market role credentials this contract trusts.
    IRoleRegistry public immutable roleRegistry;

    /// @notice `account` holds no valid `role` credential now.
    error RoleGatedMissingRole(address account, bytes32 role);

    constructor(IRoleRegistry registry) {
        roleRegistry = registry;
    }

    modifier onlyMarketRole(bytes32 role) {
        _checkMarketRole(msg.sender, role);
        _;
    }

    function _checkMarketRole(address account, bytes32 role) internal view {
        if (!roleRegistry.hasMarketRole(account, role)) revert RoleGatedMissingRole(account, role);
    }
}
