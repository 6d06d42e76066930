// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IRoleRegistry} from "./IRoleRegistry.sol";

/**
 * @title RoleRegistry
 * @notice Role credentials of the market's parties (DSO, TSO, AGGREGATOR, PROSUMER, ORACLE,
 * AUDITOR, METER), issued by the market authority with a validity period and the hash of the
 * off-chain W3C credential document, and revocable. Every state-changing call of the other
 * flexledger contracts asks `hasMarketRole`.
 *
 * @dev The market authority is OpenZeppelin's default admin with delayed, two-step handover
 * (a production market is run by a multisig or a body of grid operators, and a handover should
 * give them time to notice); it appoints issuers (`ISSUER_ROLE`). Each credential's validity
 * and revocation share one storage slot, so `hasMarketRole` costs a single cold read.
 * The contract is also the EIP-712 domain ("flexledger RoleRegistry", "1") in which the
 * authority signs the off-chain credentials; wallets read it with ERC-5267 `eip712Domain()`.
 */
contract RoleRegistry is IRoleRegistry, AccessControlDefaultAdminRules, EIP712 {
    /// @notice May issue and revoke market role credentials.
    bytes32 public constant ISSUER_ROLE = keccak256("ISSUER");

    bytes32 public constant DSO_ROLE = keccak256("DSO");
    bytes32 public constant TSO_ROLE = keccak256("TSO");
    bytes32 public constant AGGREGATOR_ROLE = keccak256("AGGREGATOR");
    bytes32 public constant PROSUMER_ROLE = keccak256("PROSUMER");
    bytes32 public constant ORACLE_ROLE = keccak256("ORACLE");
    bytes32 public constant AUDITOR_ROLE = keccak256("AUDITOR");
    bytes32 public constant METER_ROLE = keccak256("METER");

    /// @dev The first slot (validity and revocation) is all `hasMarketRole` reads.
    struct Credential {
        uint64 validFrom;
        uint64 validUntil;
        bool revoked;
        bytes32 credentialHash;
    }

    /// @dev Credentials live at `keccak256(subject, role, CREDENTIALS_NAMESPACE)`: one keccak
    /// where a nested mapping needs two, because every gated call of every flexledger contract
    /// pays for this lookup. A 96-byte preimage cannot meet Solidity's own 64-byte mapping slots.
    bytes32 private constant CREDENTIALS_NAMESPACE = keccak256("flexledger.RoleRegistry.credentials");

    /// @notice `role` is not one of the seven market roles.
    error RoleRegistryUnknownRole(bytes32 role);
    /// @notice The validity period is empty or reversed.
    error RoleRegistryInvalidValidity(uint64 validFrom, uint64 validUntil);
    /// @notice No credential for (`subject`, `role`) has been issued, or it is already revoked.
    error RoleRegistryNotIssued(address subject, bytes32 role);
    /// @notice The arrays of a batch have different lengths.
    error RoleRegistryArrayLengthMismatch();

    /// @notice A credential was issued (or renewed) for `subject` in `role`.
    event CredentialIssued(
        address indexed subject,
        bytes32 indexed role,
        uint64 validFrom,
        uint64 validUntil,
        bytes32 credentialHash,
        address indexed issuer
    );
    /// @notice The credential of `subject` in `role` was revoked.
    event CredentialRevoked(address indexed subject, bytes32 indexed role, address indexed issuer);

    /**
     * @param adminTransferDelay Seconds a handover of the market authority waits before it can be accepted.
     * @param initialAdmin The market authority; it is also the first issuer.
     */
    constructor(uint48 adminTransferDelay, address initialAdmin)
        AccessControlDefaultAdminRules(adminTransferDelay, initialAdmin)
        EIP712("flexledger RoleRegistry", "1")
    {
        _grantRole(ISSUER_ROLE, initialAdmin);
    }

    /**
     * @notice Issue (or renew) the `role` credential of `subject`, valid from `validFrom` until `validUntil`.
     * @param subject The account the credential is about.
     * @param role One of the seven market role ids.
     * @param validFrom First second of validity (Unix).
     * @param validUntil Last second of validity (Unix); `type(uint64).max` for no expiry.
     * @param credentialHash The EIP-712 hash of the off-chain credential document.
     */
    function issueCredential(
        address subject,
        bytes32 role,
        uint64 validFrom,
        uint64 validUntil,
        bytes32 credentialHash
    ) external onlyRole(ISSUER_ROLE) {
        _issue(subject, role, validFrom, validUntil, credentialHash);
    }

    /**
     * @notice Issue many credentials in one transaction (for example the METER role of a thousand meters).
     * @param subjects The accounts, one per credential.
     * @param roles The role ids.
     * @param validFrom The starts of validity.
     * @param validUntil The ends of validity.
     * @param credentialHashes The credential documents' hashes.
     */
    function issueCredentials(
        address[] calldata subjects,
        bytes32[] calldata roles,
        uint64[] calldata validFrom,
        uint64[] calldata validUntil,
        bytes32[] calldata credentialHashes
    ) external onlyRole(ISSUER_ROLE) {
        uint256 n = subjects.length;
        if (roles.length != n || validFrom.length != n || validUntil.length != n || credentialHashes.length != n) {
            revert RoleRegistryArrayLengthMismatch();
        }
        for (uint256 i = 0; i < n; ++i) {
            _issue(subjects[i], roles[i], validFrom[i], validUntil[i], credentialHashes[i]);
        }
    }

    /**
     * @notice Revoke the `role` credential of `subject` from now on.
     * @param subject The account whose credential is revoked.
     * @param role The role id.
     */
    function revokeCredential(address subject, bytes32 role) external onlyRole(ISSUER_ROLE) {
        Credential storage c = _credential(subject, role);
        if (c.validUntil == 0 || c.revoked) revert RoleRegistryNotIssued(subject, role);
        c.revoked = true;
        emit CredentialRevoked(subject, role, msg.sender);
    }

    /// @inheritdoc IRoleRegistry
    function hasMarketRole(address subject, bytes32 role) external view returns (bool) {
        Credential storage c = _credential(subject, role);
        uint256 packed;
        assembly ("memory-safe") {
            packed := sload(c.slot) // validFrom: bits 0-63, validUntil: 64-127, revoked: 128-135
        }
        return packed >> 128 == 0 && uint64(packed) <= block.timestamp && block.timestamp <= uint64(packed >> 64);
    }

    /**
     * @notice The credential of `subject` in `role`, as issued (all zero when never issued).
     * @param subject The account.
     * @param role The role id.
     * @return validFrom First second of validity.
     * @return validUntil Last second of validity.
     * @return revoked Whether it was revoked.
     * @return credentialHash The hash of the off-chain credential document.
     */
    function credentialOf(address subject, bytes32 role)
        external
        view
        returns (uint64 validFrom, uint64 validUntil, bool revoked, bytes32 credentialHash)
    {
        Credential storage c = _credential(subject, role);
        return (c.validFrom, c.validUntil, c.revoked, c.credentialHash);
    }

    /**
     * @notice Whether `role` is one of the seven market roles.
     * @param role The role id.
     * @return True for DSO, TSO, AGGREGATOR, PROSUMER, ORACLE, AUDITOR and METER.
     */
    function isMarketRole(bytes32 role) public pure returns (bool) {
        return role == DSO_ROLE || role == TSO_ROLE || role == AGGREGATOR_ROLE || role == PROSUMER_ROLE
            || role == ORACLE_ROLE || role == AUDITOR_ROLE || role == METER_ROLE;
    }

    function _credential(address subject, bytes32 role) private pure returns (Credential storage c) {
        bytes32 namespace = CREDENTIALS_NAMESPACE;
        assembly ("memory-safe") {
            let free := mload(0x40) // scratch above the free pointer, not claimed
            mstore(free, subject)
            mstore(add(free, 0x20), role)
            mstore(add(free, 0x40), namespace)
            c.slot := keccak256(free, 0x60)
        }
    }

    function _issue(address subject, bytes32 role, uint64 validFrom, uint64 validUntil, bytes32 credentialHash)
        private
    {
        if (!isMarketRole(role)) revert RoleRegistryUnknownRole(role);
        if (validUntil == 0 || validUntil < validFrom) revert RoleRegistryInvalidValidity(validFrom, validUntil);
        Credential storage c = _credential(subject, role);
        (c.validFrom, c.validUntil, c.revoked, c.credentialHash) = (validFrom, validUntil, false, credentialHash);
        emit CredentialIssued(subject, role, validFrom, validUntil, credentialHash, msg.sender);
    }
}
