// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SettlementFixture} from "./SettlementFixture.sol";
import {Vm} from "../utils/Vm.sol";
import {Settlement} from "../../src/market/Settlement.sol";
import {ReadingDisputes} from "../../src/metering/ReadingDisputes.sol";
import {OrderBook} from "../../src/market/OrderBook.sol";

/// Drives the settlement fixture's world at random: settles its committed sales, one at a time or
/// in batches (the inputs are encoded once, so a call stays cheap), disputes the two misread ones with what their meters
/// signed, finalises, withdraws, refunds, and moves the clock. It keeps the records it got and
/// what each account withdrew, for the invariants.
contract SettlementHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    Settlement internal immutable settlement;
    OrderBook internal immutable book;
    address internal immutable deployer;
    bytes[] internal inputs; // abi.encode(SettleIn), per sale
    ReadingDisputes internal immutable judge;
    bytes[] internal disputes; // abi.encode(DisputeIn)
    uint256[] internal disputeSale; // the sale (index in `inputs`) each dispute is of
    bytes[] internal records; // abi.encode(Record) of each settled sale, "" until settled
    bool[] internal finalised;
    address[] internal accounts;
    uint64[] internal requestIds;

    mapping(address account => uint256) public withdrawn;

    constructor(Settlement s, ReadingDisputes j, address[] memory who, uint64[] memory ids) {
        (settlement, judge, book, deployer) = (s, j, s.book(), msg.sender);
        accounts = who;
        requestIds = ids;
    }

    /// Set-up only (the invariant test targets the actions below).
    function addSale(bytes memory input) external returns (uint256 index) {
        require(msg.sender == deployer, "set-up only");
        index = inputs.length;
        inputs.push(input);
        records.push("");
        finalised.push(false);
    }

    function addDispute(uint256 sale, bytes memory d) external {
        require(msg.sender == deployer, "set-up only");
        disputes.push(d);
        disputeSale.push(sale);
    }

    // ------------------------------------------------------------------------------- actions

    /// Settles the first sale not settled yet, from `seed` on.
    function settle(uint256 seed) external {
        (uint256 i, bool found) = next(seed, inputs.length, Want.UNSETTLED);
        if (!found) return;
        Settlement.SettleIn memory s = abi.decode(inputs[i], (Settlement.SettleIn));
        try settlement.settle(s) returns (Settlement.Record memory r) {
            records[i] = abi.encode(r);
        } catch {}
    }

    /// Settles up to three sales not settled yet, from `seed` on, in one `settleMany` (one the
    /// contract refuses reverts them all).
    function settleMany(uint256 seed) external {
        uint256[] memory picked = _pick(seed, Want.UNSETTLED);
        Settlement.SettleIn[] memory batch = new Settlement.SettleIn[](picked.length);
        for (uint256 k = 0; k < picked.length; ++k) {
            batch[k] = abi.decode(inputs[picked[k]], (Settlement.SettleIn));
        }
        try settlement.settleMany(batch) returns (Settlement.Record[] memory rs) {
            for (uint256 k = 0; k < picked.length; ++k) {
                records[picked[k]] = abi.encode(rs[k]);
            }
        } catch {}
    }

    /// Finalises up to three settled sales not final yet, from `seed` on, in one `finaliseMany`.
    function finaliseMany(uint256 seed) external {
        uint256[] memory picked = _pick(seed, Want.PENDING);
        Settlement.Record[] memory rs = new Settlement.Record[](picked.length);
        for (uint256 k = 0; k < picked.length; ++k) {
            rs[k] = abi.decode(records[picked[k]], (Settlement.Record));
        }
        try settlement.finaliseMany(rs) {
            for (uint256 k = 0; k < picked.length; ++k) {
                finalised[picked[k]] = true;
            }
        } catch {}
    }

    function _pick(uint256 seed, Want want) internal view returns (uint256[] memory picked) {
        uint256 want3 = 1 + seed % 3;
        uint256[] memory out = new uint256[](want3);
        uint256 n;
        for (uint256 k = 0; k < inputs.length && n < want3; ++k) {
            uint256 i = (seed % inputs.length + k) % inputs.length;
            bool settled = records[i].length != 0;
            if (want == Want.UNSETTLED ? !settled : settled && !finalised[i]) out[n++] = i;
        }
        picked = new uint256[](n);
        for (uint256 k = 0; k < n; ++k) {
            picked[k] = out[k];
        }
    }

    /// Finalises the first settled sale not final yet, from `seed` on (too early: it reverts).
    function finalise(uint256 seed) external {
        (uint256 i, bool found) = next(seed, inputs.length, Want.PENDING);
        if (!found) return;
        Settlement.Record memory r = abi.decode(records[i], (Settlement.Record));
        try settlement.finalise(r) {
            finalised[i] = true;
        } catch {}
    }

    /// Disputes a settled, not final sale with what its meter signed (too late: it reverts).
    function dispute(uint256 seed) external {
        for (uint256 n = 0; n < disputes.length; ++n) {
            uint256 j = (seed % disputes.length + n) % disputes.length;
            uint256 i = disputeSale[j];
            if (records[i].length == 0 || finalised[i]) continue;
            Settlement.SettleIn memory s = abi.decode(inputs[i], (Settlement.SettleIn));
            Settlement.Record memory r = abi.decode(records[i], (Settlement.Record));
            ReadingDisputes.DisputeIn memory d = abi.decode(disputes[j], (ReadingDisputes.DisputeIn));
            try judge.dispute(s, r, d) returns (Settlement.Record memory c) {
                records[i] = abi.encode(c);
            } catch {}
            return;
        }
    }

    /// The first account with something to withdraw, from `seed` on, withdraws it.
    function withdraw(uint256 seed) external {
        for (uint256 n = 0; n < accounts.length; ++n) {
            address who = accounts[(seed % accounts.length + n) % accounts.length];
            uint256 amount = settlement.claimable(who);
            if (amount == 0) continue;
            vm.prank(who);
            settlement.withdraw();
            withdrawn[who] += amount;
            return;
        }
    }

    /// Refunds the first request not refunded yet, from `seed` on (not due: it reverts).
    function refund(uint256 seed) external {
        for (uint256 n = 0; n < requestIds.length; ++n) {
            uint64 id = requestIds[(seed % requestIds.length + n) % requestIds.length];
            if (settlement.refunded(id)) continue;
            try settlement.refund(id) {} catch {}
            return;
        }
    }

    enum Want {
        UNSETTLED,
        PENDING
    }

    function next(uint256 seed, uint256 count, Want want) internal view returns (uint256 i, bool found) {
        for (uint256 n = 0; n < count; ++n) {
            i = (seed % count + n) % count;
            bool settled = records[i].length != 0;
            if (want == Want.UNSETTLED ? !settled : settled && !finalised[i]) return (i, true);
        }
    }

    /// Moves the clock by an hour, a day, just over the dispute window (2 days) or three days,
    /// plus up to an hour: a few calls cross the dispute windows and the day's settlement window
    /// (it closes at DAY0 + 3 days; the clock starts at DAY0 10:00).
    function wait(uint256 seed) external {
        uint256 pick = seed % 4;
        uint256 step = pick == 0 ? 1 hours : pick == 1 ? 1 days : pick == 2 ? 2 days + 1 : 3 days;
        vm.warp(block.timestamp + step + (seed >> 8) % 1 hours);
    }
}

/// The settlement's money invariants over the fixture's world: every committed sale may be
/// settled (S_DISP and S_DISP2 disputed), finalised, withdrawn and refunded, in any order, at any
/// time. Each invariant: 10,000 sequences of 10 calls, checked after every call (the checks read
/// as little as they can: an external read costs the fuzzer's inspectors more than the EVM).
contract SettlementInvariantTest is SettlementFixture {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    SettlementHandler internal handler;
    uint64[] internal touched; // the requests the handler's sales are awarded to
    mapping(uint64 requestId => uint256) internal escrow;
    uint256 internal untouchedEscrows; // R_M2's (its market's result is never committed here)
    address[] internal receivers; // who may be credited: the sellers and the awarded buyers
    address[] internal sellers;
    mapping(address seller => uint256) internal worth; // its awards at their prices, in full
    address[] internal buyers;
    mapping(address buyer => uint256) internal buyerStart; // its balance once its escrows were posted
    mapping(address buyer => uint256) internal buyerEscrow;

    function setUp() public override {
        super.setUp();
        for (uint64 r = 1; r <= book.requestCount(); ++r) {
            escrow[r] = escrowOf(r);
            if (r == R_M2) untouchedEscrows += escrow[r];
            else touched.push(r);
            buyerEscrow[book.request(r).buyer] += escrow[r];
        }
        sellers = [owner, owner2];
        buyers = [DSO1, DSO2, TSO, buyer];
        receivers = [owner, owner2, DSO1, DSO2, TSO, buyer];
        for (uint256 i = 0; i < buyers.length; ++i) {
            buyerStart[buyers[i]] = token.balanceOf(buyers[i]);
        }
        handler = new SettlementHandler(settlement, disputes, receivers, touched);
        for (uint256 sale = 0; sale < sales.length; ++sale) {
            if (sale == S_M2) continue;
            uint256 i = handler.addSale(abi.encode(settleIn(sale)));
            if (sale == S_DISP) handler.addDispute(i, abi.encode(disputeIn(S_DISP, 0)));
            if (sale == S_DISP2) {
                handler.addDispute(i, abi.encode(disputeIn(S_DISP2, 0)));
                handler.addDispute(i, abi.encode(disputeIn(S_DISP2, 1)));
            }
            // R_PC's cell clears at PRICE (market3 pays as cleared); the other markets pay as bid
            uint256 price = sales[sale].marketId == market3 ? PRICE : saleOffer[sale].price;
            Aw[] storage a = saleAwards[sale];
            for (uint256 k = 0; k < a.length; ++k) {
                worth[sellerOf(sale)] += uint256(a[k].powerW) * ISP * price / WS_PER_MWH;
            }
        }
        checkMoney();
    }

    function targetContracts() public view returns (address[] memory t) {
        t = new address[](1);
        t[0] = address(handler);
    }

    /// The handler's actions (not its set-up functions).
    function targetSelectors() public view returns (FuzzSelector[] memory t) {
        bytes4[] memory actions = new bytes4[](8);
        actions[0] = SettlementHandler.settle.selector;
        actions[1] = SettlementHandler.finalise.selector;
        actions[2] = SettlementHandler.dispute.selector;
        actions[3] = SettlementHandler.withdraw.selector;
        actions[4] = SettlementHandler.refund.selector;
        actions[5] = SettlementHandler.wait.selector;
        actions[6] = SettlementHandler.settleMany.selector;
        actions[7] = SettlementHandler.finaliseMany.selector;
        t = new FuzzSelector[](1);
        t[0] = FuzzSelector({addr: address(handler), selectors: actions});
    }

    /// (1) The book and the settlement hold exactly the open escrows' rest (`escrowLeft`: the
    /// escrow less what was paid out, every request here being open), the unpaid claims and the bonds.
    /// forge-config: default.invariant.runs = 10000
    /// forge-config: quick.invariant.runs = 500
    /// forge-config: default.invariant.depth = 10
    function invariant_heldIsEscrowsLeftPlusClaimsPlusBonds() public view {
        uint256 held = token.balanceOf(address(book)) + token.balanceOf(address(settlement));
        uint256 owed = untouchedEscrows;
        for (uint256 i = 0; i < touched.length; ++i) {
            owed += escrow[touched[i]] - book.escrowPaid(touched[i]);
        }
        for (uint256 i = 0; i < receivers.length; ++i) {
            owed += settlement.claimable(receivers[i]);
        }
        for (uint256 i = 0; i < sellers.length; ++i) {
            owed += book.bondOf(sellers[i]);
        }
        assertEq(held, owed, "held == escrows left + claims + bonds");
    }

    /// (2) What a seller was credited (claimable now, plus withdrawn) is at most its awards' worth
    /// at their prices (every award delivered in full).
    /// forge-config: default.invariant.runs = 10000
    /// forge-config: quick.invariant.runs = 500
    /// forge-config: default.invariant.depth = 10
    function invariant_noSellerCreditedMoreThanItsAwardsAreWorth() public view {
        for (uint256 i = 0; i < sellers.length; ++i) {
            address s = sellers[i];
            assertLe(settlement.claimable(s) + handler.withdrawn(s), worth[s], "credited <= awards at their prices");
        }
    }

    /// (3) No request pays out more than its escrow, no buyer more than its escrows, and a buyer's
    /// balance never falls below what it had once its escrows were posted (it only receives).
    /// forge-config: default.invariant.runs = 10000
    /// forge-config: quick.invariant.runs = 500
    /// forge-config: default.invariant.depth = 10
    function invariant_noBuyerPaysMoreThanItsEscrow() public view {
        uint256[4] memory paid;
        for (uint256 i = 0; i < touched.length; ++i) {
            uint64 r = touched[i];
            uint256 out = book.escrowPaid(r);
            assertLe(out, escrow[r], "a request pays out at most its escrow");
            uint256 b = r == R_SMALL3 ? 1 : r == R_TSO1 ? 2 : r == R_IDLE ? 3 : 0; // buyers' order
            paid[b] += out;
        }
        for (uint256 i = 0; i < buyers.length; ++i) {
            assertLe(paid[i], buyerEscrow[buyers[i]], "a buyer pays out at most its escrows");
            assertLe(buyerStart[buyers[i]], token.balanceOf(buyers[i]), "a buyer never pays beyond its escrows");
        }
    }
}
