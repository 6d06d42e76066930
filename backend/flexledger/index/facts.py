"""The rows one decoded log makes: its ``events`` row, and its typed rows (one per log, or one per
entry of a packed log)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import fields, is_dataclass
from typing import Any

from sqlalchemy import Table

from flexledger.chain.events import DecodedEvent
from flexledger.clearing.commitment import unpack_awards
from flexledger.rules.lights import HOUR_ISPS, LIGHT_ISP_SECONDS, unpack_hour
from flexledger.rules.orders import Offer, unpack_accepted

from .tables import EVENT_TABLES, EventTable, awards, events, lights, offers, settlements

Row = dict[str, Any]
HOURS = 24
OFFER_FIELDS = tuple(f.name for f in fields(Offer))  # the offers table's columns of the same names


def jsonable(value: Any) -> Any:
    """An argument as JSON holds it: bytes in hex, a struct as an object of its fields."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _column_value(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return jsonable(value)
    return value


def _typed_row(spec: EventTable, event: DecodedEvent) -> Row:
    row: Row = {}
    for column, argument, field in spec.columns:
        value = event.args[argument]
        row[column] = _column_value(value if field is None else getattr(value, field))
    return row


def _offers(event: DecodedEvent, separator: bytes) -> Iterator[Row]:
    day_start = event.args["dayStart"]
    for seller, offer in unpack_accepted(bytes(event.args["offers"])):
        yield {"digest": "0x" + offer.digest(separator).hex(), "seller": seller, "day_start": day_start,
               **{name: getattr(offer, name) for name in OFFER_FIELDS}, "baseline": "0x" + offer.baseline.hex()}


def _awards(event: DecodedEvent, _separator: bytes) -> Iterator[Row]:
    common = {"result_id": event.args["resultId"], "seller": event.args["seller"],
              "offer_digest": "0x" + bytes(event.args["offerDigest"]).hex()}
    for request_id, isp_start, power_w in unpack_awards(bytes(event.args["awards"])):
        yield {**common, "request_id": request_id, "isp_start": isp_start, "power_w": power_w}


def _static_light(event: DecodedEvent, _separator: bytes) -> Iterator[Row]:
    yield {"market_id": 0, "zone_id": event.args["zoneId"], "isp_start": 0, "direction": event.args["direction"],
           "colour": event.args["colour"], "capability_w": event.args["capabilityW"]}


def _dynamic_light(event: DecodedEvent, _separator: bytes) -> Iterator[Row]:
    yield {"market_id": event.args["marketId"], "zone_id": event.args["zoneId"], "isp_start": event.args["ispStart"],
           "direction": event.args["direction"], "colour": event.args["colour"],
           "capability_w": event.args["capabilityW"]}


def _day_lights(event: DecodedEvent, _separator: bytes) -> Iterator[Row]:
    """``words[24 * i + h]`` is hour ``h`` of zone ``i`` (GridZones.publishDay); an unset lane leaves
    the static light in force and makes no row."""
    market, day_start, words = event.args["marketId"], event.args["dayStart"], event.args["words"]
    for i, zone in enumerate(event.args["zones"]):
        for hour in range(HOURS):
            for direction, row in unpack_hour(words[HOURS * i + hour]).items():
                for k, light in enumerate(row):
                    if light is not None:
                        yield {"market_id": market, "zone_id": zone, "direction": int(direction),
                               "isp_start": day_start + (hour * HOUR_ISPS + k) * LIGHT_ISP_SECONDS,
                               "colour": int(light.colour), "capability_w": light.capability_w}


def _settlement_lines(event: DecodedEvent, _separator: bytes) -> Iterator[Row]:
    record = event.args["record"]
    common = {"offer_digest": "0x" + bytes(record.offer_digest).hex(), "result_id": record.result_id,
              "seller": record.seller, "settled_at": record.settled_at}
    for line in record.lines:
        yield {**common, "request_id": line.request_id, "isp_start": line.isp_start, "payment": line.payment,
               "claim": line.claim, "uncovered": line.uncovered}


# (contract, event) -> the packed or nested event's table and the rows of one log
ENTRY_TABLES: dict[tuple[str, str], tuple[Table, Callable[[DecodedEvent, bytes], Iterator[Row]]]] = {
    ("OrderBook", "OffersAccepted"): (offers, _offers),
    ("ClearingCommitment", "OfferAwarded"): (awards, _awards),
    ("GridZones", "StaticLightSet"): (lights, _static_light),
    ("GridZones", "DynamicLightSet"): (lights, _dynamic_light),
    ("GridZones", "DayLightsPublished"): (lights, _day_lights),
    ("Settlement", "OfferSettled"): (settlements, _settlement_lines),
}
BY_EVENT = {(t.contract, t.event): t for t in EVENT_TABLES}


def rows_of(decoded: list[tuple[DecodedEvent, str]], offer_separator: bytes) -> dict[Table, list[Row]]:
    """Every row the logs make, by table; each log comes with its block's hash.
    ``offer_separator`` is the OrderBook's EIP-712 domain separator, for the offers' digests."""
    out: dict[Table, list[Row]] = defaultdict(list)
    for event, block_hash in decoded:
        where = {"block_number": event.block_number, "block_hash": block_hash, "tx_hash": event.tx_hash,
                 "log_index": event.log_index}
        out[events].append({**where, "contract": event.contract, "address": event.address, "name": event.name,
                            "args": jsonable(event.args)})
        key = (event.contract, event.name)
        spec = BY_EVENT.get(key)
        if spec is not None:
            out[spec.table].append({**where, **_typed_row(spec, event)})
        packed = ENTRY_TABLES.get(key)
        if packed is not None:
            table, entries = packed
            out[table].extend({**where, "entry": k, **row} for k, row in enumerate(entries(event, offer_separator)))
    return out
