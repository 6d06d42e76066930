"""`flexledger offer`, `request`, `book`, `bond` and `token`: the order book from the command line.

Offers go through three steps that may run on three machines: `offer typed-data` prints the
EIP-712 JSON any wallet signs (`eth_signTypedData_v4`), `offer sign` signs it with a local
keystore, `offer submit` relays signed offers in batches (an aggregator, or the owner itself).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import Progress
from rich.table import Table

from flexledger.cli.context import deployment
from flexledger.cli.options import (
    DayOption,
    JsonOption,
    KeyOption,
    MarketOption,
    StartOption,
    parse_day,
)
from flexledger.cli.output import console, emit_json, market_money, money_format
from flexledger.rules.lights import Direction
from flexledger.times import iso, parse_time

if TYPE_CHECKING:
    from flexledger.book.order_book import SignedOffer
    from flexledger.identity.eip712 import Eip712Domain

offer_app = typer.Typer(help="Prepare, sign and relay flexibility offers (EIP-712, signed in any wallet). A "
                             "COMMITTED baseline's --baseline-hash comes from `flexledger baseline commit`, which "
                             "keeps its values and salt for settlement.",
                        no_args_is_help=True)
request_app = typer.Typer(help="Post and cancel flexibility requests (DSO or TSO), with the money in escrow.",
                          no_args_is_help=True)
book_app = typer.Typer(help="Read a market day's order book from the chain.", no_args_is_help=True)
bond_app = typer.Typer(help="Sellers' bonds, which cover their penalty exposure (DESIGN.md rule 7).",
                       no_args_is_help=True)
token_app = typer.Typer(help="The settlement token: balances, and minting on development chains.", no_args_is_help=True)


def _enum(kind: type[Any], value: str) -> Any:
    try:
        return kind[value.strip().upper()]
    except KeyError:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(m.name for m in kind)}") from None


def _time_option(value: str, name: str) -> int:
    try:
        return parse_time(value)
    except ValueError:
        raise typer.BadParameter(f"{name} {value!r} is not Unix seconds or an ISO 8601 time") from None


# ---------------------------------------------------------------------------------- offers


@offer_app.command("typed-data")
def offer_typed_data(
    start: str = StartOption,
    power: int = typer.Option(..., "--power", help="Power offered per ISP (W)."),
    price: int = typer.Option(..., "--price", help="Price in token base units (euro cents) per MWh."),
    asset: int = typer.Option(0, "--asset", help="The asset offered (its owner signs)."),
    portfolio: int = typer.Option(0, "--portfolio", help="Or the portfolio offered (its aggregator signs)."),
    isps: int = typer.Option(1, "--isps", help="How many ISPs; more than one makes a block offer (all or none)."),
    direction: str = typer.Option("UP", "--direction", help="UP (more injection / less consumption) or DOWN."),
    mode: str = typer.Option("DIVISIBLE", "--mode", help="DIVISIBLE, MIN_QUANTITY or ALL_OR_NOTHING."),
    min_power: int | None = typer.Option(None, "--min-power", help="MIN_QUANTITY: the least accepted (W)."),
    baseline_hash: str | None = typer.Option(None, "--baseline-hash", help="Commitment hash of the baseline (0x..32 bytes), from `flexledger baseline commit`."),
    baseline_method: str = typer.Option("COMMITTED", "--baseline-method", help="COMMITTED (give --baseline-hash) or ROLLING_AVERAGE."),
    valid_for: int = typer.Option(86_400, "--valid-for", help="Seconds until the offer expires."),
    nonce: int | None = typer.Option(None, "--nonce", help="Default: the last accepted nonce of the asset or portfolio, plus one."),
    market: int = MarketOption,
    json_: bool = JsonOption,
) -> None:
    """Print the EIP-712 typed data of an offer, with the domain read from the OrderBook.

    Any wallet signs it with eth_signTypedData_v4; or `flexledger offer sign FILE`.
    """
    from flexledger.book.offers import OfferTerms, OfferTermsError, build_offer
    from flexledger.rules.orders import BaselineMethod, Mode

    chain = deployment(sign=False)
    terms = OfferTerms(market, _time_option(start, "--start"), power, price, asset=asset, portfolio=portfolio,
                       isps=isps, direction=int(_enum(Direction, direction)), mode=_enum(Mode, mode),
                       min_power_w=min_power, baseline_method=_enum(BaselineMethod, baseline_method),
                       baseline_hash=baseline_hash, valid_for=valid_for, nonce=nonce)
    try:
        offer = build_offer(chain, terms)
    except OfferTermsError as exc:
        raise typer.BadParameter(exc.message + (f" ({exc.hint})" if exc.hint else "")) from None
    emit_json(offer.typed(chain.book_domain).to_json())


@offer_app.command("sign")
def offer_sign(
    file: Path = typer.Argument(..., help="Typed data from `flexledger offer typed-data` ('-' for stdin)."),
    out: Path | None = typer.Option(None, "--out", help="Write the signed offer here (default: print it)."),
    key: Path | None = KeyOption,
) -> None:
    """Sign an offer's typed data with a local keystore; prints {typedData, signature}."""
    from flexledger.book.offers import SignedOfferError
    from flexledger.identity.eip712 import TypedDataError, typed_data_from_json

    text = typer.get_text_stream("stdin").read() if str(file) == "-" else file.read_text()
    try:
        typed = typed_data_from_json(json.loads(text))
    except (ValueError, TypedDataError) as exc:
        raise SignedOfferError(f"{file} is not EIP-712 typed data: {exc}") from None
    if typed.primary_type != "Offer":
        raise SignedOfferError(f"{file} holds a {typed.primary_type}, not an Offer")
    signer = deployment(key).signer
    assert signer is not None
    signed = {"typedData": typed.to_json(), "signature": "0x" + typed.sign(signer.account).hex()}
    if out is None:
        emit_json(signed)
    else:
        out.write_text(json.dumps(signed, indent=1) + "\n")
        console.print(f"signed offer written to {out} (signer {signer.address})")


def _read_signed(path: Path, domain: Eip712Domain) -> list[SignedOffer]:
    from flexledger.book.offers import SignedOfferError, read_signed

    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SignedOfferError(f"cannot read {path}: {exc}") from None
    return [read_signed(item, domain, f"{path} offer {i}") for i, item in enumerate(raw if isinstance(raw, list) else [raw])]


@offer_app.command("submit")
def offer_submit(
    files: list[Path] = typer.Argument(..., help="Signed offer files (one offer or a JSON list each)."),
    batch: int = typer.Option(200, "--batch", help="Offers per transaction."),
    strict: bool = typer.Option(False, "--strict", help="Reject a whole batch on its first bad offer."),
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Relay signed offers in batches: prints which were accepted, and why the others were skipped."""
    from flexledger.book.order_book import relay_offers
    chain = deployment(key)
    book, domain = chain.order_book, chain.book_domain
    offers = [s for f in files for s in _read_signed(f, domain)]
    with Progress(console=console, transient=True, disable=json_) as progress:
        task = progress.add_task(f"relaying {len(offers)} offers", total=len(offers))
        report = relay_offers(book, offers, batch_size=batch, strict=strict,
                              progress=lambda n: progress.advance(task, n))
    rows = [{"asset": o.offer.asset, "portfolio": o.offer.portfolio, "start": o.offer.start, "nonce": o.offer.nonce,
             "accepted": o.accepted, "reason": None if o.reason is None else o.reason.message, "tx_hash": o.tx_hash}
            for o in report.outcomes]
    if json_:
        emit_json({"accepted": report.accepted, "skipped": len(report.skipped), "gas_used": report.gas_used,
                   "transactions": report.transactions, "offers": rows})
        return
    console.print(f"[green]{report.accepted} accepted[/], {len(report.skipped)} skipped "
                  f"in {report.transactions} transactions ({report.gas_used:,} gas)")
    for o in report.skipped:
        subject = f"asset {o.offer.asset}" if o.offer.asset else f"portfolio {o.offer.portfolio}"
        console.print(f"  skipped {subject} nonce {o.offer.nonce}: {o.reason.message if o.reason else '?'}")


# -------------------------------------------------------------------------------- requests


@request_app.command("post")
def request_post(
    zone: int = typer.Option(..., "--zone", help="The zone the flexibility is needed in (you operate it or an ancestor)."),
    start: str = StartOption,
    power: int = typer.Option(..., "--power", help="Power needed per ISP (W)."),
    max_price: int = typer.Option(..., "--max-price", help="Most you pay, token base units (euro cents) per MWh."),
    isps: int = typer.Option(1, "--isps", help="How many ISPs."),
    direction: str = typer.Option("UP", "--direction", help="UP or DOWN."),
    product: str = typer.Option("ACTIVATION", "--product", help="ACTIVATION (energy) or AVAILABILITY (capacity)."),
    purpose: str = typer.Option("CONGESTION", "--purpose", help="CONGESTION, BALANCING or VOLTAGE."),
    market: int = MarketOption,
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Post a request; its maximum exposure moves into escrow through an ERC-2612 permit (one transaction)."""
    from flexledger.book.escrow import post_request
    from flexledger.rules.orders import Product, Purpose, RequestParams

    chain = deployment(key)
    params = RequestParams(market, zone, _time_option(start, "--start"), isps, int(_enum(Direction, direction)), power,
                           max_price, int(_enum(Product, product)), int(_enum(Purpose, purpose)))
    posted = post_request(chain, params)
    if json_:
        emit_json({"request": posted.request_id, "escrow": posted.escrow, "tx_hash": posted.tx_hash,
                   "gas_used": posted.gas_used})
    else:
        console.print(f"[green]request {posted.request_id} posted[/]: {market_money(chain)(posted.escrow)} in escrow "
                      f"({posted.gas_used:,} gas)")


@request_app.command("cancel")
def request_cancel(
    request_id: int = typer.Argument(..., help="The request id."),
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Cancel your request before its gate closure; the escrow comes back."""
    chain = deployment(key)
    tx = chain.order_book.cancel_request(request_id)
    refund = tx.event("RequestCancelled").args["refund"]
    if json_:
        emit_json({"request": request_id, "refund": refund, "tx_hash": tx.tx_hash})
    else:
        console.print(f"request {request_id} cancelled: {market_money(chain)(refund)} refunded")


# ------------------------------------------------------------------------------------ book


@book_app.command("show")
def book_show(
    day: str = DayOption,
    market: int = MarketOption,
    json_: bool = JsonOption,
) -> None:
    """Requests and offers of a market day, per zone, ISP and direction, checked against the on-chain digest."""
    from flexledger.book.summary import summarise_book

    chain = deployment(sign=False)
    date = parse_day(day)
    summary = summarise_book(chain, market, chain.day_start(market, date))
    if json_:
        emit_json(summary.to_json())
        return
    console.print(f"market {market}, day {date} (UTC): {summary.requests} open requests "
                  f"({summary.cancelled} cancelled), {summary.offers} offers ({summary.replaced} replaced); "
                  f"digest matches the chain")
    table = Table(title="requested and offered power (W) per zone, direction and hour")
    for column in ("zone", "dir", "hour", "requested W", "offered W", "offers"):
        table.add_column(column, justify="right" if column not in ("dir", "hour") else "left")
    for (z, d, t), v in sorted(summary.hourly().items()):
        table.add_row(str(z), d, iso(t)[11:16], f"{v['requested_w']:,}", f"{v['offered_w']:,}", str(v["offers"]))
    console.print(table)
    console.print("(per hour: the largest of its ISPs)")


# ----------------------------------------------------------------------------------- bonds


@bond_app.command("post")
def bond_post(
    amount: int = typer.Argument(..., help="Token base units (euro cents)."),
    seller: str | None = typer.Option(None, "--seller", help="Whose bond (default: yours)."),
    key: Path | None = KeyOption,
) -> None:
    """Add to a seller's bond (paid by you, through a permit)."""
    from flexledger.book.escrow import post_bond

    chain = deployment(key)
    who = post_bond(chain, amount, seller)
    console.print(f"bond of {who}: {market_money(chain)(chain.order_book.bond_of(who))}")


@bond_app.command("announce")
def bond_announce(amount: int = typer.Argument(..., help="Token base units to withdraw (0 withdraws the announcement)."),
                  key: Path | None = KeyOption) -> None:
    """Announce a bond withdrawal: it may leave once the notice is over; you sell nothing meanwhile."""
    from flexledger.rules.orders import BondState

    chain = deployment(key)
    book = chain.order_book
    assert book.signer is not None
    book.announce_bond_withdrawal(amount)
    bond = BondState.from_word(book.bond_word(book.signer.address))
    if amount == 0:
        console.print("announcement withdrawn: you may sell again")
    else:
        console.print(f"{market_money(chain)(amount)} may leave from {iso(bond.notice_ends)} (the notice outlasts every "
                      "settlement of your earlier offers); until then it still pays penalties")


@bond_app.command("withdraw")
def bond_withdraw(amount: int = typer.Argument(..., help="Token base units."), key: Path | None = KeyOption) -> None:
    """Withdraw announced bond once its notice is over, as far as settlements not yet final do not lock it."""
    chain = deployment(key)
    book = chain.order_book
    book.withdraw_bond(amount)
    assert book.signer is not None
    console.print(f"withdrawn; bond now {market_money(chain)(book.bond_of(book.signer.address))}")


@bond_app.command("show")
def bond_show(seller: str = typer.Argument(..., help="The seller's address."), json_: bool = JsonOption) -> None:
    """A seller's bond: the part locked for settlements not yet final, a withdrawal notice, and its
    debts per buyer (penalties the bond could not cover)."""
    from flexledger.rules.orders import BondState, bond_problem
    from flexledger.settlement.debts import seller_debts

    chain = deployment(sign=False)
    book = chain.order_book
    seller = _address(seller, "SELLER")
    bond = BondState.from_word(book.bond_word(seller))
    sells = bond_problem(bond) is None
    debts = seller_debts(chain.settlement, book, seller)
    if json_:
        emit_json({"seller": seller, "bond": bond.amount, "locked": bond.locked, "withdrawing": bond.withdrawing,
                   "notice_ends": bond.notice_ends, "indebted": bond.indebted, "may_sell": sells,
                   "debt": debts.debt, "held_for_creditors": debts.held, "owed_to": debts.owed_to})
        return
    money = market_money(chain)
    notice = f", {money(bond.withdrawing)} announced to leave from {iso(bond.notice_ends)}" if bond.notice_ends else ""
    console.print(f"bond {money(bond.amount)}, locked {money(bond.locked)}{notice}"
                  f"{', owes penalties' if bond.indebted else ''}; {'may sell' if sells else 'may not sell'}")
    if debts.debt or debts.held or debts.owed_to:
        console.print(f"debt {money(debts.debt)} not yet repaid; {money(debts.held)} repaid and held for its "
                      "creditors (each takes its part with `bond collect-debt`, first come first served)")
        table = Table("buyer", "owed (not yet collected)")
        for buyer, owed in debts.owed_to.items():
            table.add_row(buyer, money(owed))
        console.print(table)


@bond_app.command("pay-debt")
def bond_pay_debt(
    seller: str = typer.Argument(..., help="The indebted seller's address."),
    amount: int = typer.Argument(..., help="Token base units (euro cents); at most the debt is taken."),
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Repay a seller's debt (anyone may; paid by you, through a permit): held for its creditors, and
    once it is all repaid the seller may sell again."""
    from flexledger.chain.bindings import SettlementTokenClient
    from flexledger.settlement.debts import pay_debt

    chain = deployment(key)
    signer, settlement = chain.signer, chain.settlement
    assert signer is not None
    token = chain.at(SettlementTokenClient, settlement.token())  # the token Settlement takes the debt in
    paid = pay_debt(settlement, token, signer, _address(seller, "SELLER"), amount)
    if json_:
        emit_json({"seller": paid.seller, "paid": paid.paid, "left": paid.left, "tx": paid.tx_hash})
    else:
        money = money_format(token)
        console.print(f"repaid {money(paid.paid)} of {paid.seller}'s debt; {money(paid.left)} left"
                      + ("" if paid.left else ": it may sell again"))


@bond_app.command("collect-debt")
def bond_collect_debt(
    seller: str = typer.Argument(..., help="The indebted seller's address."),
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Collect (a buyer) what a seller repaid of the penalties it owes you, as far as its repayments
    held for its creditors reach; then `flexledger claim` is not needed: the tokens come at once."""
    from flexledger.settlement.debts import collect_debt

    chain = deployment(key)
    signer, settlement = chain.signer, chain.settlement
    assert signer is not None
    seller = _address(seller, "SELLER")
    collected = collect_debt(settlement, signer, seller)
    left = int(settlement.owed_to(seller, signer.address))
    if json_:
        emit_json({"seller": seller, "buyer": signer.address, "collected": collected, "still_owed": left})
    else:
        money = market_money(chain)
        console.print(f"collected {money(collected)} from {seller}; it still owes you {money(left)}")


def _address(value: str, name: str) -> str:
    from web3 import Web3

    if not Web3.is_address(value):
        raise typer.BadParameter(f"{name} {value!r} is not an address (0x and 40 hex digits)")
    return str(Web3.to_checksum_address(value))


# ----------------------------------------------------------------------------------- token


@token_app.command("mint")
def token_mint(
    to: str = typer.Argument(..., help="The receiving address."),
    amount: int = typer.Argument(..., help="Token base units (euro cents)."),
    key: Path | None = KeyOption,
) -> None:
    """Mint settlement tokens (the market authority, on development chains only)."""
    token = deployment(key).token
    token.mint(to, amount)
    console.print(f"balance of {to}: {money_format(token)(token.balance_of(to))}")


@token_app.command("balance")
def token_balance(account: str = typer.Argument(..., help="The address."), json_: bool = JsonOption) -> None:
    """A token balance."""
    token = deployment(sign=False).token
    balance = token.balance_of(account)
    if json_:
        emit_json({"account": account, "balance": balance})
    else:
        console.print(money_format(token)(balance))
