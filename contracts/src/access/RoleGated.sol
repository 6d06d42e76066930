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
    /// @custom:hint ask the market's authority for that credential (`flexledger role grant SUBJECT ROLE`, by an issuer), or renew an expired one; `flexledger role check SUBJECT ROLE` says whether it holds one
    error RoleGatedMissingRole(address account, bytes32 role);

    constructor(IRoleRegistry registry) {
        roleRegistry = registry;
    }

    modifier onlyMarketRole(bytes32 role) {
        _checkMarketRole(msg.sender, role);
        _;
    }

    function _checkMarketRole(address account, bytes32 role) internal view {
        if (!_hasMarketRole(account, role)) revert RoleGatedMissingRole(account, role);
    }

    /// @dev The registry is asked with a bare STATICCALL through the scratch space: every gated
    /// call pays for this check, so it avoids the ABI encoder's memory work. A registry that
    /// reverts or answers anything but a 32-byte `true` counts as "no role". The call's arguments
    /// run past the scratch space over the free memory pointer, which is put back after (`FreeMemory`).
    function _hasMarketRole(address account, bytes32 role) internal view returns (bool held) {
        IRoleRegistry registry = roleRegistry;
        bytes4 selector = IRoleRegistry.hasMarketRole.selector;
        assembly ("memory-safe") {
            let free := mload(0x40) // `FreeMemory`'s save and restore, inline: every gated call pays it
            mstore(0x00, selector)
            mstore(0x04, and(account, 0xffffffffffffffffffffffffffffffffffffffff)) // a value may reach assembly dirty
            mstore(0x24, role)
            let ok := staticcall(gas(), registry, 0x00, 0x44, 0x00, 0x20)
            held := and(and(ok, eq(returndatasize(), 0x20)), eq(mload(0x00), 1))
            mstore(0x40, free)
        }
    }
}
