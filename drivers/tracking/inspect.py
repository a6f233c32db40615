"""Packet inspection for ``stagectl tracking decode`` (the JSON shapes are a contract)."""

from __future__ import annotations

from typing import Any

from drivers.tracking import freed, opentrackio


class InspectError(ValueError):
    """A packet that cannot be shown at all (wrong length, type or encoding)."""


def detect(data: bytes) -> str:
    """Guess the protocol from the first bytes: ``opentrackio`` or ``freed``."""
    if data[:4] == opentrackio.MAGIC:
        return "opentrackio"
    if data[:1] == bytes([freed.MESSAGE_TYPE_D1]):
        return "freed"
    raise InspectError(f"unknown packet type: starts with {data[:4].hex() or 'nothing'} "
                       "(FreeD D1 starts d1, OpenTrackIO starts 4f54726b 'OTrk')")


def _freed(data: bytes) -> dict[str, Any]:
    ok = True
    try:
        packet = freed.decode(data)
    except freed.FreeDChecksumError as exc:
        packet, ok = exc.packet, False
    except freed.FreeDError as exc:
        raise InspectError(str(exc)) from None
    return {"protocol": "freed", "camera_id": packet.camera_id, "pan_deg": packet.pan_deg,
            "tilt_deg": packet.tilt_deg, "roll_deg": packet.roll_deg, "x_mm": packet.x_mm,
            "y_mm": packet.y_mm, "z_mm": packet.z_mm, "zoom": packet.zoom,
            "focus": packet.focus, "spare": packet.spare, "checksum_ok": ok}


def _opentrackio(data: bytes) -> dict[str, Any]:
    ok = True
    try:
        packet = opentrackio.decode_packet(data)
    except opentrackio.OpenTrackIOChecksumError as exc:
        packet, ok = exc.packet, False
    except opentrackio.OpenTrackIOError as exc:
        raise InspectError(str(exc)) from None
    sample: dict[str, Any] | None = None
    # one segment of a larger sample has no sample of its own: its sequence number is the
    # datagram's, the sample's segments carry consecutive ones (``tracking inspect`` joins)
    segmented = not (packet.segment_offset == 0 and packet.last_segment)
    if not segmented:
        try:
            sample = opentrackio.decode_payload(packet.payload, packet.encoding)
        except opentrackio.OpenTrackIOError as exc:
            if ok:
                raise InspectError(str(exc)) from None
    return {"protocol": "opentrackio", "encoding": opentrackio.ENCODINGS[packet.encoding],
            "sequence": packet.sequence, "segment_offset": packet.segment_offset,
            "last_segment": packet.last_segment, "segmented": segmented,
            "payload_length": packet.payload_length, "checksum_ok": ok, "sample": sample}


def decode_any(data: bytes, protocol: str = "auto") -> dict[str, Any]:
    """Decode one datagram for display; a bad checksum still decodes (``checksum_ok``).

    Raises:
        InspectError: the packet cannot be decoded at all (one-line reason).
    """
    if protocol == "auto":
        protocol = detect(data)
    if protocol == "freed":
        return _freed(data)
    if protocol == "opentrackio":
        return _opentrackio(data)
    raise InspectError(f"unknown protocol {protocol!r}; freed or opentrackio")
