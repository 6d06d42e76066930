// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice A test ERC-20 whose `transfer` can be made to fail: return false without moving
/// anything (as some tokens do), or revert. `transferFrom` always works, so escrows and bonds can
/// be posted before the failure is switched on. Anyone may mint.
contract FailingToken is ERC20 {
    enum Mode {
        WORKS,
        RETURN_FALSE,
        REVERT
    }

    Mode public mode;

    error FailingTokenTransferRefused();

    constructor() ERC20("Failing token", "FAIL") {}

    function setMode(Mode m) external {
        mode = m;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function transfer(address to, uint256 amount) public override returns (bool) {
        if (mode == Mode.RETURN_FALSE) return false;
        if (mode == Mode.REVERT) revert FailingTokenTransferRefused();
        return super.transfer(to, amount);
    }
}
