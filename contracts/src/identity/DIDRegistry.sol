// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/**
 * @title DIDRegistry
 * @notice The ERC-1056 lightweight identity registry that `did:ethr` resolvers read: every
 * Ethereum address is an identity without registration; its owner can hand it over, add
 * time-bound delegates and publish attributes (public keys, service endpoints) as events.
 *
 * @dev Functions, storage getters, events and the signed-message layout are exactly
 * ERC-1056's, so existing did:ethr tooling works unchanged. Two deliberate differences from
 * the reference implementation, neither visible to resolvers: reverts use custom errors
 * instead of the strings "bad_actor" and "bad_signature", and signatures are recovered with
 * OpenZeppelin's ECDSA, which also rejects malleable (high-s) signatures.
 */
contract DIDRegistry {
    /// @notice The owner of an identity when it is not the identity itself.
    mapping(address identity => address owner) public owners;
    /// @notice Delegate validity (Unix seconds), keyed by `keccak256(abi.encode(delegateType))`.
    mapping(address identity => mapping(bytes32 delegateTypeHash => mapping(address delegate => uint256 validTo)))
        public delegates;
    /// @notice Block number of the identity's latest change: where resolvers start reading events.
    mapping(address identity => uint256 blockNumber) public changed;
    /// @notice Nonce of signed changes, per signer (the identity's owner at signing time).
    mapping(address signer => uint256) public nonce;

    /// @notice The caller (or signer) is not the identity's current owner.
    error DIDRegistryNotOwner(address identity, address actor);
    /// @notice The signature does not recover to the identity's owner (wrong signer or replayed nonce).
    error DIDRegistryInvalidSignature(address identity, address signer);

    /// @notice The owner of `identity` changed to `owner`.
    event DIDOwnerChanged(address indexed identity, address owner, uint256 previousChange);
    /// @notice A delegate of `identity` was added (validTo in the future) or revoked.
    event DIDDelegateChanged(
        address indexed identity, bytes32 delegateType, address delegate, uint256 validTo, uint256 previousChange
    );
    /// @notice An attribute of `identity` was set (validTo in the future) or revoked (validTo 0).
    event DIDAttributeChanged(
        address indexed identity, bytes32 name, bytes value, uint256 validTo, uint256 previousChange
    );

    modifier onlyOwner(address identity, address actor) {
        if (actor != identityOwner(identity)) revert DIDRegistryNotOwner(identity, actor);
        _;
    }

    /**
     * @notice The current owner of `identity`: the identity itself until it is changed.
     * @param identity The identity's address.
     * @return The owner's address. As in ERC-1056, a hand-over to the zero address (deactivation)
     * reads back as the identity itself: resolvers learn of it from the DIDOwnerChanged event.
     */
    function identityOwner(address identity) public view returns (address) {
        address owner = owners[identity];
        return owner == address(0) ? identity : owner;
    }

    /**
     * @notice Whether `delegate` is a valid delegate of `identity` for `delegateType` now.
     * @param identity The identity's address.
     * @param delegateType The delegate type, e.g. "veriKey" or "sigAuth" as bytes32.
     * @param delegate The delegate's address.
     * @return True while the delegation has not expired or been revoked.
     */
    function validDelegate(address identity, bytes32 delegateType, address delegate) public view returns (bool) {
        return delegates[identity][keccak256(abi.encode(delegateType))][delegate] > block.timestamp;
    }

    /**
     * @notice Hand `identity` over to `newOwner` (the zero address deactivates it).
     * @param identity The identity's address.
     * @param newOwner The new owner.
     */
    function changeOwner(address identity, address newOwner) public {
        _changeOwner(identity, msg.sender, newOwner);
    }

    /**
     * @notice `changeOwner` authorised by the owner's signature, sent by anyone.
     * @param identity The identity's address.
     * @param sigV Signature v.
     * @param sigR Signature r.
     * @param sigS Signature s.
     * @param newOwner The new owner.
     */
    function changeOwnerSigned(address identity, uint8 sigV, bytes32 sigR, bytes32 sigS, address newOwner) public {
        bytes32 hash = keccak256(
            abi.encodePacked(
                bytes1(0x19), bytes1(0), address(this), nonce[identityOwner(identity)], identity, "changeOwner", newOwner
            )
        );
        _changeOwner(identity, _checkSignature(identity, sigV, sigR, sigS, hash), newOwner);
    }

    /**
     * @notice Add `delegate` as a `delegateType` delegate of `identity` for `validity` seconds.
     * @param identity The identity's address.
     * @param delegateType The delegate type ("veriKey", "sigAuth") as bytes32.
     * @param delegate The delegate's address.
     * @param validity Seconds from now until the delegation expires.
     */
    function addDelegate(address identity, bytes32 delegateType, address delegate, uint256 validity) public {
        _addDelegate(identity, msg.sender, delegateType, delegate, validity);
    }

    /**
     * @notice `addDelegate` authorised by the owner's signature, sent by anyone.
     * @param identity The identity's address.
     * @param sigV Signature v.
     * @param sigR Signature r.
     * @param sigS Signature s.
     * @param delegateType The delegate type as bytes32.
     * @param delegate The delegate's address.
     * @param validity Seconds from now until the delegation expires.
     */
    function addDelegateSigned(
        address identity,
        uint8 sigV,
        bytes32 sigR,
        bytes32 sigS,
        bytes32 delegateType,
        address delegate,
        uint256 validity
    ) public {
        bytes32 hash = keccak256(
            abi.encodePacked(
                bytes1(0x19),
                bytes1(0),
                address(this),
                nonce[identityOwner(identity)],
                identity,
                "addDelegate",
                delegateType,
                delegate,
                validity
            )
        );
        _addDelegate(identity, _checkSignature(identity, sigV, sigR, sigS, hash), delegateType, delegate, validity);
    }

    /**
     * @notice Revoke `delegate` as a `delegateType` delegate of `identity`, from now.
     * @param identity The identity's address.
     * @param delegateType The delegate type as bytes32.
     * @param delegate The delegate's address.
     */
    function revokeDelegate(address identity, bytes32 delegateType, address delegate) public {
        _revokeDelegate(identity, msg.sender, delegateType, delegate);
    }

    /**
     * @notice `revokeDelegate` authorised by the owner's signature, sent by anyone.
     * @param identity The identity's address.
     * @param sigV Signature v.
     * @param sigR Signature r.
     * @param sigS Signature s.
     * @param delegateType The delegate type as bytes32.
     * @param delegate The delegate's address.
     */
    function revokeDelegateSigned(
        address identity,
        uint8 sigV,
        bytes32 sigR,
        bytes32 sigS,
        bytes32 delegateType,
        address delegate
    ) public {
        bytes32 hash = keccak256(
            abi.encodePacked(
                bytes1(0x19),
                bytes1(0),
                address(this),
                nonce[identityOwner(identity)],
                identity,
                "revokeDelegate",
                delegateType,
                delegate
            )
        );
        _revokeDelegate(identity, _checkSignature(identity, sigV, sigR, sigS, hash), delegateType, delegate);
    }

    /**
     * @notice Publish attribute `name` = `value` of `identity`, valid for `validity` seconds.
     * @param identity The identity's address.
     * @param name The attribute name, e.g. "did/pub/Secp256k1/veriKey/hex" as bytes32.
     * @param value The attribute value.
     * @param validity Seconds from now until the attribute expires.
     */
    function setAttribute(address identity, bytes32 name, bytes calldata value, uint256 validity) public {
        _setAttribute(identity, msg.sender, name, value, validity);
    }

    /**
     * @notice `setAttribute` authorised by the owner's signature, sent by anyone.
     * @param identity The identity's address.
     * @param sigV Signature v.
     * @param sigR Signature r.
     * @param sigS Signature s.
     * @param name The attribute name as bytes32.
     * @param value The attribute value.
     * @param validity Seconds from now until the attribute expires.
     */
    function setAttributeSigned(
        address identity,
        uint8 sigV,
        bytes32 sigR,
        bytes32 sigS,
        bytes32 name,
        bytes calldata value,
        uint256 validity
    ) public {
        bytes32 hash = keccak256(
            abi.encodePacked(
                bytes1(0x19),
                bytes1(0),
                address(this),
                nonce[identityOwner(identity)],
                identity,
                "setAttribute",
                name,
                value,
                validity
            )
        );
        _setAttribute(identity, _checkSignature(identity, sigV, sigR, sigS, hash), name, value, validity);
    }

    /**
     * @notice Revoke attribute `name` = `value` of `identity`.
     * @param identity The identity's address.
     * @param name The attribute name as bytes32.
     * @param value The attribute value being revoked.
     */
    function revokeAttribute(address identity, bytes32 name, bytes calldata value) public {
        _revokeAttribute(identity, msg.sender, name, value);
    }

    /**
     * @notice `revokeAttribute` authorised by the owner's signature, sent by anyone.
     * @param identity The identity's address.
     * @param sigV Signature v.
     * @param sigR Signature r.
     * @param sigS Signature s.
     * @param name The attribute name as bytes32.
     * @param value The attribute value being revoked.
     */
    function revokeAttributeSigned(
        address identity,
        uint8 sigV,
        bytes32 sigR,
        bytes32 sigS,
        bytes32 name,
        bytes calldata value
    ) public {
        bytes32 hash = keccak256(
            abi.encodePacked(
                bytes1(0x19), bytes1(0), address(this), nonce[identityOwner(identity)], identity, "revokeAttribute", name, value
            )
        );
        _revokeAttribute(identity, _checkSignature(identity, sigV, sigR, sigS, hash), name, value);
    }

    function _checkSignature(address identity, uint8 sigV, bytes32 sigR, bytes32 sigS, bytes32 hash)
        internal
        returns (address)
    {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, sigV, sigR, sigS);
        if (err != ECDSA.RecoverError.NoError || signer != identityOwner(identity)) {
            revert DIDRegistryInvalidSignature(identity, signer);
        }
        nonce[signer]++;
        return signer;
    }

    function _changeOwner(address identity, address actor, address newOwner) internal onlyOwner(identity, actor) {
        owners[identity] = newOwner;
        emit DIDOwnerChanged(identity, newOwner, changed[identity]);
        changed[identity] = block.number;
    }

    function _addDelegate(address identity, address actor, bytes32 delegateType, address delegate, uint256 validity)
        internal
        onlyOwner(identity, actor)
    {
        uint256 validTo = block.timestamp + validity;
        delegates[identity][keccak256(abi.encode(delegateType))][delegate] = validTo;
        emit DIDDelegateChanged(identity, delegateType, delegate, validTo, changed[identity]);
        changed[identity] = block.number;
    }

    function _revokeDelegate(address identity, address actor, bytes32 delegateType, address delegate)
        internal
        onlyOwner(identity, actor)
    {
        delegates[identity][keccak256(abi.encode(delegateType))][delegate] = block.timestamp;
        emit DIDDelegateChanged(identity, delegateType, delegate, block.timestamp, changed[identity]);
        changed[identity] = block.number;
    }

    function _setAttribute(address identity, address actor, bytes32 name, bytes calldata value, uint256 validity)
        internal
        onlyOwner(identity, actor)
    {
        emit DIDAttributeChanged(identity, name, value, block.timestamp + validity, changed[identity]);
        changed[identity] = block.number;
    }

    function _revokeAttribute(address identity, address actor, bytes32 name, bytes calldata value)
        internal
        onlyOwner(identity, actor)
    {
        emit DIDAttributeChanged(identity, name, value, 0, changed[identity]);
        changed[identity] = block.number;
    }
}
