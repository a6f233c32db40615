"""``stagectl tracking ...`` and ``stagectl take ...``: camera tracking from the command line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from drivers.tracking.ingest import TrackingIngest
from drivers.tracking.inspect import InspectError, decode_any
from drivers.tracking.sample import TrackingSample
from drivers.transport import parse_address
from stagectl.cli.main import ConfigOpt, JsonOpt, RoleOpt
from stagectl.cli.main import _call as call
from stagectl.cli.main import _fail as fail
from stagectl.cli.main import _load as load
from stagectl.config import DEFAULT_CONFIG
from stagectl.engine.takes import TakeFormatError, export_csv, export_opentrackio, replay

tracking_app: typer.Typer = typer.Typer(
    help="Camera tracking: decode packets, watch sources, delays.", no_args_is_help=True)
take_app: typer.Typer = typer.Typer(
    help="Record takes of every tracking sample; export and replay them.", no_args_is_help=True)
out = Console()


@tracking_app.command("decode")
def decode(hex_text: Annotated[str, typer.Option("--hex", help="The datagram as hex.")],
           protocol: Annotated[str, typer.Option(help="auto, freed or opentrackio")] = "auto",
           ) -> None:
    """Decode one FreeD or OpenTrackIO datagram and print it as JSON."""
    try:
        data = bytes.fromhex(hex_text.replace(" ", "").replace(":", ""))
    except ValueError:
        fail("--hex is not hexadecimal", 2)
    try:
        result = decode_any(data, protocol)
    except InspectError as exc:
        fail(str(exc), 2)
    print(json.dumps(result, ensure_ascii=False))
    if not result["checksum_ok"]:
        raise typer.Exit(2)


def _inspect_table(rows: dict[str, TrackingSample], ingest: TrackingIngest) -> Table:
    snap = ingest.snapshot()
    table = Table(title=f"{ingest.protocol} on udp port {ingest.port}: {snap.rate_hz:.1f} Hz, "
                        f"jitter {snap.jitter_ms:.2f} ms, lost {snap.lost} "
                        f"({snap.loss_pct:.2f} %), errors {snap.error_count}")
    for col in ("camera", "seq", "x m", "y m", "z m", "pan°", "tilt°", "roll°", "zoom",
                "focus"):
        table.add_column(col, justify="right")
    for key, s in sorted(rows.items()):
        table.add_row(key, str(s.sequence), *(f"{v:.4f}" for v in s.position_m),
                      *(f"{v:.3f}" for v in s.rotation_deg),
                      str(s.zoom_raw if s.zoom_raw is not None else s.zoom_norm),
                      str(s.focus_raw if s.focus_raw is not None else s.focus_norm))
    return table


@tracking_app.command("inspect")
def inspect(port: Annotated[int, typer.Option(help="UDP port to listen on.")],
            protocol: Annotated[str, typer.Option(help="freed, opentrackio or osc")] = "freed",
            host: Annotated[str, typer.Option(help="Local address to bind.")] = "0.0.0.0",
            group: Annotated[str | None, typer.Option(help="Multicast group to join.")] = None,
            json_out: JsonOpt = False,
            duration: Annotated[float | None, typer.Option(help="Stop after SECONDS.")] = None,
            ) -> None:
    """Live decoded table of a tracking stream (no engine needed)."""
    if protocol not in ("freed", "opentrackio", "osc"):
        fail(f"--protocol must be freed, opentrackio or osc, got {protocol!r}", 2)
    rows: dict[str, TrackingSample] = {}

    def on_sample(sample: TrackingSample) -> None:
        rows[str(sample.camera_id or sample.source)] = sample
        if json_out:
            print(json.dumps({"camera_id": sample.camera_id, "sequence": sample.sequence,
                              "position_m": sample.position_m,
                              "rotation_deg": sample.rotation_deg,
                              "zoom_raw": sample.zoom_raw, "focus_raw": sample.focus_raw}),
                  flush=True)

    async def main() -> None:
        ingest = TrackingIngest("inspect", protocol, on_sample, port=port, host=host,  # type: ignore[arg-type]
                                multicast_group=group,
                                interface="127.0.0.1" if host.startswith("127.") else "0.0.0.0")
        try:
            await ingest.start()
        except OSError as exc:
            fail(f"cannot listen on udp port {port}: {exc}", 1)
        deadline = None if duration is None else time.monotonic() + duration
        try:
            if json_out:
                while deadline is None or time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
            else:
                with Live(_inspect_table(rows, ingest), refresh_per_second=10) as live:
                    while deadline is None or time.monotonic() < deadline:
                        await asyncio.sleep(0.1)
                        live.update(_inspect_table(rows, ingest))
        finally:
            await ingest.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


@tracking_app.command("delay")
def delay(source: Annotated[str, typer.Argument(help="Tracking source name.")],
          frames: Annotated[float, typer.Argument(help="0..10 frames, 0.1 steps.")],
          config: ConfigOpt = DEFAULT_CONFIG, role: RoleOpt = None,
          json_out: JsonOpt = False) -> None:
    """Set a source's delay compensation (through the engine)."""
    cfg = load(config)
    result = call(cfg, "tracking.delay", {"device": source, "frames": frames}, role)
    if json_out:
        print(json.dumps(result))
    else:
        out.print(f"{result['device']}: delay {result['delay_frames']:g} frames")


@tracking_app.command("sources")
def sources(config: ConfigOpt = DEFAULT_CONFIG, json_out: JsonOpt = False) -> None:
    """Tracking sources with rate, jitter, loss, errors and last seen."""
    cfg = load(config)
    result = call(cfg, "tracking.sources", {}, "viewer")
    if json_out:
        print(json.dumps(result, ensure_ascii=False))
        return
    table = Table(title="tracking sources")
    for col in ("source", "health", "protocol", "rate Hz", "jitter ms", "loss %", "errors",
                "last seen ms", "delay fr", "timecode"):
        table.add_column(col)
    for dev in result:
        s = dev["state"]
        table.add_row(dev["name"], dev["health"], str(s.get("protocol", "")),
                      str(s.get("rate_hz", "")), str(s.get("jitter_ms", "")),
                      str(s.get("loss_pct", "")), str(sum((s.get("errors") or {}).values())),
                      str(s.get("last_seen_age_ms", "")), str(s.get("delay_frames", "")),
                      str(s.get("timecode", "")))
    out.print(table)


# ---- takes -----------------------------------------------------------------------------------

@take_app.command("start")
def take_start(slate: Annotated[str, typer.Option(help="Slate, e.g. A101.")],
               take: Annotated[int, typer.Option(help="Take number.")],
               config: ConfigOpt = DEFAULT_CONFIG, role: RoleOpt = None,
               json_out: JsonOpt = False) -> None:
    """Start recording every tracking sample to a take file."""
    cfg = load(config)
    result = call(cfg, "take.start", {"slate": slate, "take": take}, role)
    if json_out:
        print(json.dumps(result))
    else:
        out.print(f"recording {result['slate']} take {result['take']} -> {result['path']}")


@take_app.command("stop")
def take_stop(config: ConfigOpt = DEFAULT_CONFIG, role: RoleOpt = None,
              json_out: JsonOpt = False) -> None:
    """Stop the take being recorded."""
    cfg = load(config)
    result = call(cfg, "take.stop", {}, role)
    if json_out:
        print(json.dumps(result))
    else:
        counts = ", ".join(f"{k}: {v}" for k, v in result["samples"].items()) or "no samples"
        out.print(f"{result['slate']} take {result['take']} stopped ({counts}) -> "
                  f"{result['path']}")


@take_app.command("export")
def take_export(file: Annotated[Path, typer.Argument(help="Take file (.take.jsonl).")],
                fmt: Annotated[str, typer.Option("--format", help="csv or opentrackio")] = "csv",
                output: Annotated[Path | None, typer.Option(help="Output file (default "
                                                            "stdout).")] = None,
                source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
                ) -> None:
    """Export a take's samples as CSV or OpenTrackIO JSON lines."""
    exporters: dict[str, Any] = {"csv": export_csv, "opentrackio": export_opentrackio}
    if fmt not in exporters:
        fail(f"--format must be csv or opentrackio, got {fmt!r}", 2)
    try:
        if output is None:
            rows = exporters[fmt](file, sys.stdout, source)
        else:
            with output.open("w", encoding="utf-8", newline="") as handle:
                rows = exporters[fmt](file, handle, source)
    except TakeFormatError as exc:
        fail(str(exc), 2)
    print(f"{rows} samples exported", file=sys.stderr)


@take_app.command("replay")
def take_replay(file: Annotated[Path, typer.Argument(help="Take file (.take.jsonl).")],
                target: Annotated[str, typer.Option(help="host:port to send to.")],
                source: Annotated[str | None, typer.Option(help="Source to replay.")] = None,
                speed: Annotated[float, typer.Option(help="Playback speed.")] = 1.0) -> None:
    """Replay a take's raw datagrams to a UDP target, as the original source sent them."""
    try:
        address = parse_address(target)
    except ValueError as exc:
        fail(str(exc), 2)
    try:
        sent = asyncio.run(replay(file, address, source, speed))
    except (TakeFormatError, ValueError) as exc:
        fail(str(exc), 2)
    print(f"{sent} datagrams sent to {target}", file=sys.stderr)
