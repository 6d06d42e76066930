// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IRoleRegistry
/// @notice The one question every flexledger contract asks of the role registry.
interface IRoleRegistry {
    /// @notice Whether `subject` holds a valid (issued, started, unexpired, unrevoked) `role` credential now.
    /// @param subject The account (the DID's identity address).
    /// @param role The role id, `keccak256` of its name ("DSO", "TSO", ...).
    /// @return True when the credential is valid at this block's timestamp.
    function hasMarketRole(address subject, bytes32 role) external view returns (bool);

    /// @notice Whether `subject` held a valid `role` credential at time `t` (issued validity
    /// around `t`, not revoked at or before `t`); a credential re-issued after a revocation
    /// answers from its new validity only.
    /// @param subject The account.
    /// @param role The role id.
    /// @param t A Unix time.
    /// @return True when the credential was valid at `t`.
    function hasMarketRoleAt(address subject, bytes32 role, uint64 t) external view returns (bool);
}
