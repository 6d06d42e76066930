// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IRoleRegistry} from "./IRoleRegistry.sol";

/**
 * @title RoleRegistry
 * @notice Role credentials of the market's parties (DSO, TSO, AGGREGATOR, PROSUMER, ORACLE,
 * AUDITOR, METER, CLEARING), issued by the market authority's issuers with a validity period and the hash
 * of the off-chain W3C credential document, and revocable. Every state-changing call of the
 * other flexledger contracts asks `hasMarketRole`.
 *
 * @dev Issuers are appointed in the MarketAuthority (OpenZeppelin's AccessControl with a
 * delayed, two-step handover of the authority itself). This contract keeps only the credentials
 * and few functions, and each credential's validity and revocation share one storage slot, so
 * `hasMarketRole` costs a single cold read and a short dispatch.
 * The contract is also the EIP-712 domain ("flexledger RoleRegistry", "1") in which the
 * authority signs the off-chain credentials; wallets read it with ERC-5267 `eip712Domain()`.
 */
contract RoleRegistry is IRoleRegistry, EIP712 {
    // Role ids are keccak256 of the names; internal, so that the dispatcher stays short.
    bytes32 internal constant ISSUER_ROLE = keccak256("ISSUER");
    bytes32 internal constant DSO_ROLE = keccak256("DSO");
    bytes32 internal constant TSO_ROLE = keccak256("TSO");
    bytes32 internal constant AGGREGATOR_ROLE = keccak256("AGGREGATOR");
    bytes32 internal constant PROSUMER_ROLE = keccak256("PROSUMER");
    bytes32 internal constant ORACLE_ROLE = keccak256("ORACLE");
    bytes32 internal constant AUDITOR_ROLE = keccak256("AUDITOR");
    bytes32 internal constant METER_ROLE = keccak256("METER");
    bytes32 internal constant CLEARING_ROLE = keccak256("CLEARING");

    /// @dev Credentials live at `keccak256(subject, role) ^ CREDENTIALS_NAMESPACE`: one keccak
    /// where a nested mapping needs two, because every gated call of every flexledger contract
    /// pays for this lookup. Meeting one of Solidity's own mapping slots would take a keccak
    /// preimage, and this contract has no other mappings.
    bytes32 private constant CREDENTIALS_NAMESPACE = keccak256("flexledger.RoleRegistry.credentials");

    /// @notice The MarketAuthority whose issuers may issue and revoke credentials.
    IAccessControl public immutable authority;

    /// @dev The first slot (validity and revocation) is all `hasMarketRole` reads. The revocation
    /// keeps its time, so that a credential can be judged at a past time (`hasMarketRoleAt`).
    struct Credential {
        uint64 validFrom;
        uint64 validUntil;
        uint64 revokedAt; // 0 while not revoked
        bytes32 credentialHash;
    }

    /// @notice `role` is not one of the seven market roles.
    error RoleRegistryUnknownRole(bytes32 role);
    /// @notice The validity period is empty or reversed.
    error RoleRegistryInvalidValidity(uint64 validFrom, uint64 validUntil);
    /// @notice No credential for (`subject`, `role`) has been issued, or it is already revoked.
    error RoleRegistryNotIssued(address subject, bytes32 role);
    /// @notice The arrays of a batch have different lengths.
    error RoleRegistryArrayLengthMismatch();
    /// @notice `account` is not an issuer of the MarketAuthority.
    error RoleRegistryNotIssuer(address account);

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

    /// @param marketAuthority The MarketAuthority that appoints issuers.
    constructor(IAccessControl marketAuthority) EIP712("flexledger RoleRegistry", "1") {
        authority = marketAuthority;
    }

    modifier onlyIssuer() {
        if (!authority.hasRole(ISSUER_ROLE, msg.sender)) revert RoleRegistryNotIssuer(msg.sender);
        _;
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
    ) external onlyIssuer {
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
    ) external onlyIssuer {
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
    function revokeCredential(address subject, bytes32 role) external onlyIssuer {
        Credential storage c = _credential(subject, role);
        if (c.validUntil == 0 || c.revokedAt != 0) revert RoleRegistryNotIssued(subject, role);
        c.revokedAt = uint64(block.timestamp);
        emit CredentialRevoked(subject, role, msg.sender);
    }

    /// @inheritdoc IRoleRegistry
    function hasMarketRole(address subject, bytes32 role) external view returns (bool held) {
        Credential storage c = _credential(subject, role);
        assembly ("memory-safe") {
            // One slot: validFrom in bits 0-63, validUntil in 64-127, revokedAt in 128-191.
            // held = revokedAt == 0 && validFrom <= now && now <= validUntil, without branches
            // (a revocation is at or before now).
            let packed := sload(c.slot)
            let now_ := timestamp()
            let mask := 0xffffffffffffffff
            held :=
                and(
                    iszero(shr(128, packed)),
                    and(iszero(gt(and(packed, mask), now_)), iszero(gt(now_, and(shr(64, packed), mask))))
                )
        }
    }

    /// @inheritdoc IRoleRegistry
    function hasMarketRoleAt(address subject, bytes32 role, uint64 t) external view returns (bool) {
        Credential storage c = _credential(subject, role);
        (uint64 validFrom, uint64 validUntil, uint64 revoked) = (c.validFrom, c.validUntil, c.revokedAt);
        return validFrom <= t && t <= validUntil && (revoked == 0 || t < revoked);
    }

    /**
     * @notice When the credential of `subject` in `role` was revoked (0 if it is not).
     * @param subject The account.
     * @param role The role id.
     * @return The revocation's time (Unix seconds), 0 when not revoked.
     */
    function revokedAt(address subject, bytes32 role) external view returns (uint64) {
        return _credential(subject, role).revokedAt;
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
        return (c.validFrom, c.validUntil, c.revokedAt != 0, c.credentialHash);
    }

    function _credential(address subject, bytes32 role) private pure returns (Credential storage c) {
        bytes32 namespace = CREDENTIALS_NAMESPACE;
        assembly ("memory-safe") {
            mstore(0x00, subject) // the scratch space: no memory to expand
            mstore(0x20, role)
            c.slot := xor(keccak256(0x00, 0x40), namespace)
        }
    }

    /// @dev The seven market roles; anything else is refused at issue.
    function _isMarketRole(bytes32 role) private pure returns (bool) {
        return role == DSO_ROLE || role == TSO_ROLE || role == AGGREGATOR_ROLE || role == PROSUMER_ROLE
            || role == ORACLE_ROLE || role == AUDITOR_ROLE || role == METER_ROLE
            || role == CLEARING_ROLE;
    }

    function _issue(address subject, bytes32 role, uint64 validFrom, uint64 validUntil, bytes32 credentialHash)
        private
    {
        if (!_isMarketRole(role)) revert RoleRegistryUnknownRole(role);
        if (validUntil == 0 || validUntil < validFrom) revert RoleRegistryInvalidValidity(validFrom, validUntil);
        Credential storage c = _credential(subject, role);
        // A renewal of a credential held now, starting at once, continues it: its past validity
        // stays (a day's gate closure before the renewal still finds it held).
        bool heldNow = c.revokedAt == 0 && c.validFrom <= block.timestamp && block.timestamp <= c.validUntil;
        if (heldNow && validFrom <= block.timestamp && c.validFrom < validFrom) validFrom = c.validFrom;
        (c.validFrom, c.validUntil, c.revokedAt, c.credentialHash) = (validFrom, validUntil, 0, credentialHash);
        emit CredentialIssued(subject, role, validFrom, validUntil, credentialHash, msg.sender);
    }
}
