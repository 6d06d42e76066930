// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";

/**
 * @title MarketAuthority
 * @notice Who governs the market: the authority (OpenZeppelin's default admin, handed over in
 * two steps after a delay, as suits a multisig or a body of grid operators) and the issuers it
 * appoints, who may issue and revoke role credentials in the RoleRegistry.
 *
 * @dev Kept apart from the RoleRegistry so that the registry exposes only a handful of functions:
 * every gated call of every flexledger contract asks the registry, and a small dispatcher
 * keeps that question cheap.
 */
contract MarketAuthority is AccessControlDefaultAdminRules {
    /// @notice May issue and revoke market role credentials.
    bytes32 public constant ISSUER_ROLE = keccak256("ISSUER");

    /**
     * @param adminTransferDelay Seconds a handover of the authority waits before it can be accepted.
     * @param initialAdmin The market authority; it is also the first issuer.
     */
    constructor(uint48 adminTransferDelay, address initialAdmin)
        AccessControlDefaultAdminRules(adminTransferDelay, initialAdmin)
    {
        _grantRole(ISSUER_ROLE, initialAdmin);
    }
}
