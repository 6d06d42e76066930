// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "../utils/TestBase.sol";
import {MarketAuthority} from "../../src/access/MarketAuthority.sol";
import {SettlementToken} from "../../src/token/SettlementToken.sol";

interface ChainIdCheat {
    function chainId(uint256 newChainId) external;
}

contract SettlementTokenTest is TestBase {
    MarketAuthority internal auth;
    SettlementToken internal token;
    address internal constant ADMIN = address(0xA);
    uint256 internal constant HOLDER_KEY = 0xB0B;

    function setUp() public {
        auth = new MarketAuthority(1 days, ADMIN);
        token = new SettlementToken(auth);
        ChainIdCheat(address(vm)).chainId(31337);
    }

    function test_authorityMintsOnDevChains() public {
        vm.prank(ADMIN);
        token.mint(address(this), 1_000_00);
        assertEq(token.balanceOf(address(this)), 1_000_00, "minted");
        assertEq(token.decimals(), 2, "cents");
    }

    function test_nobodyElseMints() public {
        vm.expectRevert(abi.encodeWithSelector(SettlementToken.SettlementTokenNotAuthority.selector, address(this)));
        token.mint(address(this), 1);
    }

    function test_noMintingOnOtherChains() public {
        ChainIdCheat(address(vm)).chainId(246); // Energy Web Chain
        vm.expectRevert(abi.encodeWithSelector(SettlementToken.SettlementTokenMintingDisabled.selector, uint256(246)));
        vm.prank(ADMIN);
        token.mint(address(this), 1);
    }

    function test_permit() public {
        address holder = vm.addr(HOLDER_KEY);
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"),
                holder,
                address(this),
                500,
                token.nonces(holder),
                deadline
            )
        );
        bytes32 digest = keccak256(abi.encodePacked(hex"1901", token.DOMAIN_SEPARATOR(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(HOLDER_KEY, digest);
        token.permit(holder, address(this), 500, deadline, v, r, s);
        assertEq(token.allowance(holder, address(this)), 500, "allowance by signature");
    }
}
