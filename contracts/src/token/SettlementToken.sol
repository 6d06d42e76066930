// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

/**
 * @title SettlementToken
 * @notice The market's money for demos and development chains: an OpenZeppelin ERC-20 with
 * ERC-2612 permit, in euro cents (2 decimals). The market authority may mint it, and only on a
 * development chain (chain id 31337 or 1337): a production market settles in an existing
 * e-money or stable token, given to the market contracts by address instead.
 */
contract SettlementToken is ERC20, ERC20Permit {
    /// @notice The MarketAuthority whose default admin may mint on development chains.
    IAccessControl public immutable authority;

    /// @notice Minting was attempted on a chain that is not a development chain.
    error SettlementTokenMintingDisabled(uint256 chainId);
    /// @notice `account` is not the market authority.
    error SettlementTokenNotAuthority(address account);

    /// @param marketAuthority The MarketAuthority.
    constructor(IAccessControl marketAuthority) ERC20("flexledger euro", "fEUR") ERC20Permit("flexledger euro") {
        authority = marketAuthority;
    }

    /// @notice Euro cents.
    /// @return 2.
    function decimals() public pure override returns (uint8) {
        return 2;
    }

    /**
     * @notice Create `amount` tokens for `to`: the market authority only, on a development chain only.
     * @param to The receiver.
     * @param amount The amount in cents.
     */
    function mint(address to, uint256 amount) external {
        if (block.chainid != 31337 && block.chainid != 1337) revert SettlementTokenMintingDisabled(block.chainid);
        if (!authority.hasRole(0x00, msg.sender)) revert SettlementTokenNotAuthority(msg.sender);
        _mint(to, amount);
    }
}
