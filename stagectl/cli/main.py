"""The ``stagectl`` command line (typer + rich).

Exit codes: 0 ok, 1 failure (engine unreachable, device refused), 2 bad input (bad config,
invalid value, unknown device).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import typer.main
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from stagectl.cli.lifecycle import ChildGroup, StopSignals, die_with_parent, serve_until_signal
from stagectl.cli.logpump import LogPump, raw_stderr
from stagectl.client import (
    ClientIdentity,
    EngineClient,
    EngineError,
    EngineUnavailable,
    StateSubscriber,
)
from stagectl.config import DEFAULT_CONFIG, ConfigError, StageConfig, load_config


class _LazyGroup(TyperGroup):
    """Loads the planning command groups (OR-Tools: slow to import) only when used."""

    LAZY = {"book": "stagectl.cli.book", "farm": "stagectl.cli.farm", "desk": "stagectl.cli.desk"}

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.LAZY))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.LAZY:
            module = importlib.import_module(self.LAZY[cmd_name])
            module.app._add_completion = False  # completion belongs to the root command only
            command = typer.main.get_command(module.app)
            command.name = cmd_name
            return command
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    cls=_LazyGroup,
    help="stagectl: run an LED virtual-production stage and its render farm.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
led_app = typer.Typer(help="Drive an LED processor through the engine.", no_args_is_help=True)
keys_app = typer.Typer(help="CURVE keys for non-loopback engines.", no_args_is_help=True)
app.add_typer(led_app, name="led")
app.add_typer(keys_app, name="keys")



class _StderrConsole(Console):
    """stderr that survives a closed reader (a dead parent, ``| head``).

    rich's default raises SystemExit on a broken pipe: inside a log call in the engine that
    aborted the process between two device shutdowns. Here the console just goes quiet.
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True


out = Console()
err = _StderrConsole(stderr=True)

ConfigOpt = Annotated[Path, typer.Option(
    "--config", "-c", envvar="STAGECTL_CONFIG", help="Stage TOML file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
RoleOpt = Annotated[str | None, typer.Option(
    "--role", envvar="STAGECTL_ROLE", help="operator, engineer, producer or viewer.")]
DeviceOpt = Annotated[str | None, typer.Option(
    "--device", "-d", help="Device name (default: the stage's first LED).")]


def _fail(message: str, code: int) -> NoReturn:
    _error_line(message)
    raise typer.Exit(code)


def _load(path: Path) -> StageConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            err.print(f"[bold red]config error:[/] {escape(line)}", highlight=False, markup=True)
        raise typer.Exit(2) from None


# Third-party loggers whose INFO lines (a broker's state machine, client sessions) drown the
# stage's own: warnings only, unless --verbose.
THIRD_PARTY_LOGGERS = ("amqtt", "transitions", "aiomqtt", "asyncio")
LOG_DRAIN_S = 0.5  # at exit: time for the log writer to catch up (it may be stuck)


def _logging(verbose: bool = False) -> LogPump:
    """Log to stderr through a :class:`LogPump`: a stuck stderr never blocks the loop."""
    handler = RichHandler(console=_StderrConsole(file=raw_stderr()), show_path=False)
    pump = LogPump(handler)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[pump.queue_handler], force=True)
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    return pump


BAD_INPUT_CODES = {"invalid_value", "bad_request", "unknown_device", "wrong_kind",
                   "unknown_command"}


def _call(config: StageConfig, cmd: str, args: dict[str, Any] | None = None,
          role: str | None = None) -> Any:
    try:
        with EngineClient(config, ClientIdentity.from_env(role)) as client:
            return client.call(cmd, args)
    except EngineUnavailable as exc:
        _fail(str(exc), 1)
    except EngineError as exc:
        _fail(f"{exc} [{exc.code}]{_hints(exc.details.get('problems'))}",
              2 if exc.code in BAD_INPUT_CODES else 1)


# The command that clears an interlock, for CLI users (consoles get their own buttons).
CLI_HINTS = {"interlock_not_armed": "stagectl arm arm", "interlock_estop": "stagectl arm reset",
             "interlock_talent": "stagectl arm talent off"}


def _hints(problems: object) -> str:
    """`` (to clear: ...)`` naming the CLI commands for the interlocks in ``problems``."""
    if not isinstance(problems, list):
        return ""
    hints = [CLI_HINTS[str(p.get("code"))] for p in problems
             if isinstance(p, dict) and str(p.get("code")) in CLI_HINTS]
    return f" (to clear: {'; '.join(dict.fromkeys(hints))})" if hints else ""


def _error_line(message: str) -> None:
    """One red ``error:`` line.

    The message is text, never rich markup: a path or a log tail holding ``[/x]`` would
    raise, and a ``[code]`` would vanish.
    """
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True,
              soft_wrap=True)


async def _serve_until_signal(start: Any, stop: Any, what: str) -> int:
    return await serve_until_signal(start, stop, what, _error_line)


def _refuse_busy(lines: list[str], config: Path) -> None:
    """Exit 1 with one line per busy port (nothing is started)."""
    if not lines:
        return
    for line in lines:
        _error_line(line)
    err.print(f"another stack is running on {config}'s ports: stop it, or give this one "
              "other ports", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


# ---- sim / serve ---------------------------------------------------------------------------

@app.command()
def sim(config: ConfigOpt = DEFAULT_CONFIG, verbose: bool = False) -> None:
    """Run the simulators declared in the stage config until Ctrl-C."""
    from stagectl.cli.ports import busy, simulator_endpoints
    from stagectl.simulate import SimulatorSet

    cfg = _load(config)
    pump = _logging(verbose)
    if not cfg.simulators:
        _fail(f"{config}: no [[simulators]] declared", 2)
    _refuse_busy(busy(simulator_endpoints(cfg)), config)
    sims = SimulatorSet(cfg)
    for s in sims.simulators:
        err.print(f"simulator {s.name} ({type(s).__name__})")
    code = asyncio.run(_serve_until_signal(sims.start, sims.stop, "simulators"))
    pump.drain(LOG_DRAIN_S)
    raise typer.Exit(code)


@app.command()
def serve(config: ConfigOpt = DEFAULT_CONFIG, verbose: bool = False) -> None:
    """Run the stage engine: own the devices, serve clients over ZeroMQ."""
    from stagectl.cli.ports import busy, engine_endpoints
    from stagectl.engine.engine import Engine

    cfg = _load(config)
    pump = _logging(verbose)
    _refuse_busy(busy(engine_endpoints(cfg)), config)

    async def main() -> int:
        try:
            engine = Engine(cfg)  # relative keys_dir resolves against the working directory
        except (ValueError, OSError) as exc:  # e.g. a damaged audit log: one line
            _error_line(str(exc))
            return 1
        err.print(f"engine for stage [bold]{cfg.stage.name}[/]: commands "
                  f"{cfg.engine.command}, state {cfg.engine.state}"
                  + (" (CURVE)" if cfg.engine.needs_curve else ""))
        return await _serve_until_signal(engine.start, engine.stop, "engine")

    code = asyncio.run(main())
    pump.drain(LOG_DRAIN_S)
    raise typer.Exit(code)


# ---- status / watch ------------------------------------------------------------------------

LED_GROUP_PREFIX = "group_brightness."  # drivers.led.model.GROUP_PREFIX
LED_BRIEF_GROUPS = 8  # group values shown per LED wall in the table (all of them in --json)


def _brief_state(dev: dict[str, Any]) -> str:
    state = dev.get("state", {})
    if dev.get("kind") == "led":
        led_keys = ("brightness_nits", "colour_temperature_k", "blackout", "freeze",
                    "test_pattern", "input", "preset")
        brief = "  ".join(f"{k}={state[k]}" for k in led_keys if k in state)
        groups = [f"{k[len(LED_GROUP_PREFIX):]}:{v}" for k, v in state.items()
                  if isinstance(k, str) and k.startswith(LED_GROUP_PREFIX)]
        if groups:
            more = f" (+{len(groups) - LED_BRIEF_GROUPS})" if len(groups) > LED_BRIEF_GROUPS \
                else ""
            brief += f"  groups={','.join(groups[:LED_BRIEF_GROUPS])}{more}"
        return brief
    if dev.get("kind") == "arm":
        joints = " ".join(f"{v:.1f}" for v in state.get("joints_deg") or [])
        fault = f"  fault={state['fault']}" if state.get("fault") else ""
        return f"state={state.get('state')}  joints_deg=[{joints}]{fault}"
    if dev.get("kind") == "tracking":
        keys = ("protocol", "rate_hz", "jitter_ms", "loss_pct", "delay_frames", "timecode")
        return "  ".join(f"{k}={state[k]}" for k in keys if k in state)
    return ", ".join(f"{k}={v}" for k, v in list(state.items())[:6])


@app.command()
def status(config: ConfigOpt = DEFAULT_CONFIG, json_out: JsonOpt = False,
           role: RoleOpt = None) -> None:
    """Devices, health and key state from the running engine."""
    cfg = _load(config)
    result = _call(cfg, "status", role=role or "viewer")
    devices = []
    for d in result["devices"]:
        entry = {"name": d["name"], "kind": d["kind"], "health": d["health"],
                 "health_reason": d.get("health_reason", ""), "state": d["state"],
                 "desired": d.get("desired", {})}
        if isinstance(d.get("capabilities"), dict):  # LED walls: what the processor can do
            entry["capabilities"] = d["capabilities"]
        devices.append(entry)
    if json_out:
        out.print_json(json.dumps({"stage": result.get("stage"), "devices": devices}))
        return
    table = Table(title=f"stage {cfg.stage.name} ({cfg.stage.site})")
    for col in ("device", "kind", "health", "reason", "state"):
        table.add_column(col)
    colours = {"online": "green", "degraded": "yellow", "offline": "red"}
    for d in devices:
        lines = [escape(_brief_state(d))]
        if d["kind"] == "led":
            lines = [escape(line) for line in _led_lines(d)] + lines
            unsupported = _led_unsupported(d)
            if unsupported:
                lines.append(f"[dim]{escape(unsupported)}[/]")
        table.add_row(escape(str(d["name"])), escape(str(d["kind"])),
                      f"[{colours.get(d['health'], '')}]{escape(str(d['health']))}[/]",
                      escape(str(d["health_reason"])), "\n".join(lines))
    out.print(table)


def _led_lines(dev: dict[str, Any]) -> list[str]:
    """``vendor: Brompton Tessera (tessera)`` and the processor's identity, when known."""
    caps = dev.get("capabilities")
    lines: list[str] = []
    if isinstance(caps, dict):
        vendor, protocol = str(caps.get("vendor") or ""), str(caps.get("protocol") or "")
        lines.append(f"vendor: {vendor} ({protocol})" if vendor and vendor != protocol
                     else f"vendor: {protocol or '?'}")
    identity = (dev.get("state") or {}).get("processor")
    if isinstance(identity, dict):
        fields = [f"{k} {identity[k]}" for k in ("model", "firmware", "serial", "name")
                  if identity.get(k) not in (None, "")]
        if fields:
            lines.append("processor: " + ", ".join(str(f) for f in fields))
    return lines


def _led_unsupported(dev: dict[str, Any]) -> str:
    """``unsupported: input, group_brightness`` (empty when the processor lacks nothing)."""
    caps = dev.get("capabilities")
    unsupported = caps.get("unsupported") if isinstance(caps, dict) else None
    if not isinstance(unsupported, dict) or not unsupported:
        return ""
    return "unsupported: " + ", ".join(str(k) for k in unsupported)


@app.command()
def watch(config: ConfigOpt = DEFAULT_CONFIG, json_out: JsonOpt = False,
          duration: Annotated[float | None, typer.Option(help="Stop after SECONDS.")] = None,
          ) -> None:
    """Live view of the engine's state stream (JSON lines with --json)."""
    cfg = _load(config)
    if not json_out:
        from stagectl.cli.dashboard import run_dashboard

        raise typer.Exit(run_dashboard(cfg, duration))
    sub = StateSubscriber(cfg)
    deadline = None if duration is None else time.monotonic() + duration
    try:
        while deadline is None or time.monotonic() < deadline:
            message = sub.recv(0.2)
            if message is not None:
                print(json.dumps({"topic": message[0], **message[1]}, ensure_ascii=False),
                      flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()


# ---- led -----------------------------------------------------------------------------------
#
# Every wall (stagectl OSC, Brompton Tessera, Megapixel HELIOS, NovaStar COEX) takes the same
# commands; what its processor cannot do is refused by the engine before anything is sent
# (code ``unsupported``) and printed as such, and ``stagectl status`` lists it per wall.

LED_KEYS = {
    "brightness": "brightness_nits", "brightness_nits": "brightness_nits",
    "colour_temperature": "colour_temperature_k", "color_temperature": "colour_temperature_k",
    "colour_temperature_k": "colour_temperature_k", "cct": "colour_temperature_k",
    "gamma": "gamma", "blackout": "blackout", "freeze": "freeze",
    "test_pattern": "test_pattern", "pattern": "test_pattern",
    "frame_rate": "output_frame_rate_hz", "output_frame_rate_hz": "output_frame_rate_hz",
    "genlock_source": "genlock_source", "genlock_phase": "genlock_phase_deg",
    "genlock_phase_deg": "genlock_phase_deg", "input": "input",
}
# keys whose value is the processor's own words: never read as a number or a flag
LED_TEXT_KEYS = {"input", "test_pattern", "genlock_source"}
# The faults the stagectl simulators know (each simulator refuses a name it does not have).
LED_FAULTS: dict[str, tuple[str, ...]] = {
    "every simulator": ("panels_offline", "mute", "temperature_offset"),
    "vendor simulators": ("html", "redirect", "malformed", "http_error", "restart"),
    "Tessera": ("ip_control_disabled", "no_project", "failover", "panel_errors"),
    "HELIOS": ("websocket_off", "alert"),
    "NovaStar": ("locked", "busy"),
}
LED_FAULT_HELP = "Fault name: " + "; ".join(
    f"{who}: {', '.join(names)}" for who, names in LED_FAULTS.items()) + \
    " (a simulator refuses a name it does not know)."


def _parse_value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("on", "true"):
        return True
    if lowered in ("off", "false"):
        return False
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _led_key(key: str) -> str:
    """The desired-state key for what the operator typed (exit 2 for an unknown one)."""
    if key.lower().startswith(LED_GROUP_PREFIX):
        group = key[len(LED_GROUP_PREFIX):]  # the processor's group id, as typed
        if not group:
            _fail("group_brightness needs a group: group_brightness.<group id>, "
                  "e.g. group_brightness.2", 2)
        return LED_GROUP_PREFIX + group
    canonical = LED_KEYS.get(key.lower())
    if canonical is None:
        _fail(f"unknown LED parameter {key!r}; one of "
              f"{', '.join(sorted(set(LED_KEYS)))}, {LED_GROUP_PREFIX}<group>", 2)
    return canonical


def _led_call(cfg: StageConfig, cmd: str, args: dict[str, Any], role: str | None) -> Any:
    """:func:`_call` for LED commands; a feature the processor lacks is said as such (exit 1).

    The engine refuses it before anything is sent; that is the processor's limit, not a fault
    of the wall or of the input, so it exits 1 like any other refusal.
    """
    try:
        with EngineClient(cfg, ClientIdentity.from_env(role)) as client:
            return client.call(cmd, args)
    except EngineUnavailable as exc:
        _fail(str(exc), 1)
    except EngineError as exc:
        if exc.code == "unsupported":
            vendor = exc.details.get("vendor") or "this processor"
            feature = exc.details.get("feature") or args.get("key") or cmd
            _fail(f"{exc} [unsupported]\n{vendor} cannot do {feature}: nothing was sent "
                  "(the processor is not faulty; `stagectl status` lists what each wall "
                  "cannot do)", 1)
        _fail(f"{exc} [{exc.code}]{_hints(exc.details.get('problems'))}",
              2 if exc.code in BAD_INPUT_CODES else 1)


def _led_set(config: Path, device: str | None, key: str, value: Any, json_out: bool,
             role: str | None) -> None:
    cfg = _load(config)
    args: dict[str, Any] = {"key": key, "value": value}
    if device:
        args["device"] = device
    result = _led_call(cfg, "led.set", args, role)
    if json_out:
        out.print_json(json.dumps(result))
    else:
        note = f" ({result['note']})" if result.get("note") else ""
        out.print(f"{result['device']}: {result['key']} = {result['value']}{note}",
                  markup=False, highlight=False)


@led_app.command("set")
def led_set(key: Annotated[str, typer.Argument(help="brightness (nits), colour_temperature "
                                               "(K), gamma, blackout, freeze, test_pattern, "
                                               "frame_rate, genlock_source, genlock_phase, "
                                               "input, group_brightness.<group> (nits)")],
            value: Annotated[str, typer.Argument(help="New value.")],
            config: ConfigOpt = DEFAULT_CONFIG, device: DeviceOpt = None,
            json_out: JsonOpt = False, role: RoleOpt = None) -> None:
    """Set one LED parameter, e.g. `stagectl led set brightness 1200`."""
    canonical = _led_key(key)
    parsed: Any = value if canonical in LED_TEXT_KEYS else _parse_value(value)
    _led_set(config, device, canonical, parsed, json_out, role)


def _on_off(value: str) -> bool:
    if value.lower() not in ("on", "off", "1", "0", "true", "false"):
        _fail(f"expected on or off, got {value!r}", 2)
    return value.lower() in ("on", "1", "true")


@led_app.command("blackout")
def led_blackout(state: Annotated[str, typer.Argument(help="on or off")],
                 config: ConfigOpt = DEFAULT_CONFIG, device: DeviceOpt = None,
                 json_out: JsonOpt = False, role: RoleOpt = None) -> None:
    """Black the wall out (on) or restore it (off)."""
    _led_set(config, device, "blackout", _on_off(state), json_out, role)


@led_app.command("freeze")
def led_freeze(state: Annotated[str, typer.Argument(help="on or off")],
               config: ConfigOpt = DEFAULT_CONFIG, device: DeviceOpt = None,
               json_out: JsonOpt = False, role: RoleOpt = None) -> None:
    """Freeze the wall's current frame (on) or run live (off)."""
    _led_set(config, device, "freeze", _on_off(state), json_out, role)


@led_app.command("pattern")
def led_pattern(name: Annotated[str, typer.Argument(help="Test pattern, or off.")],
                config: ConfigOpt = DEFAULT_CONFIG, device: DeviceOpt = None,
                json_out: JsonOpt = False, role: RoleOpt = None) -> None:
    """Show a named test pattern (`off` ends it); `stagectl status --json` lists each wall's."""
    _led_set(config, device, "test_pattern", name, json_out, role)


@led_app.command("input")
def led_input(name: Annotated[str, typer.Argument(
                  help="The processor's input in its own words: sdi:1 (Tessera), sdi1 "
                       "(HELIOS), an input name (NovaStar).")],
              config: ConfigOpt = DEFAULT_CONFIG, device: DeviceOpt = None,
              json_out: JsonOpt = False, role: RoleOpt = None) -> None:
    """Switch the processor's input, e.g. `stagectl led input sdi:1`."""
    _led_set(config, device, "input", name, json_out, role)


@led_app.command("group")
def led_group(group: Annotated[str, typer.Argument(help="The processor's group id.")],
              nits: Annotated[float, typer.Argument(help="Brightness in nits.")],
              config: ConfigOpt = DEFAULT_CONFIG, device: DeviceOpt = None,
              json_out: JsonOpt = False, role: RoleOpt = None) -> None:
    """Set one group's brightness, e.g. `stagectl led group 2 800`."""
    _led_set(config, device, LED_GROUP_PREFIX + group, nits, json_out, role)


@led_app.command("preset")
def led_preset(number: Annotated[int, typer.Argument(help="Preset 1..128.")],
               config: ConfigOpt = DEFAULT_CONFIG, device: DeviceOpt = None,
               json_out: JsonOpt = False, role: RoleOpt = None) -> None:
    """Recall a processor preset."""
    cfg = _load(config)
    args: dict[str, Any] = {"number": number}
    if device:
        args["device"] = device
    result = _led_call(cfg, "led.preset", args, role)
    if json_out:
        out.print_json(json.dumps(result))
    else:
        out.print(f"{result['device']}: recalled preset {result['preset']}")


@led_app.command("adopt")
def led_adopt(config: ConfigOpt = DEFAULT_CONFIG, device: DeviceOpt = None,
              json_out: JsonOpt = False, role: RoleOpt = None) -> None:
    """Accept changes made by another controller as the engine's desired state."""
    cfg = _load(config)
    result = _led_call(cfg, "led.adopt", {"device": device} if device else {}, role)
    if json_out:
        out.print_json(json.dumps(result))
    else:
        out.print(f"{result['device']}: desired state now {result['desired']}",
                  markup=False, highlight=False)


@led_app.command("fault")
def led_fault(fault: Annotated[str, typer.Argument(help=LED_FAULT_HELP)],
              value: Annotated[float, typer.Argument(
                  help="Fault value (0 clears; http_error takes a status code).")],
              config: ConfigOpt = DEFAULT_CONFIG, device: DeviceOpt = None,
              role: RoleOpt = "engineer") -> None:
    """Inject a fault into a simulated processor (engineer role)."""
    cfg = _load(config)
    args: dict[str, Any] = {"fault": fault, "value": value}
    if device:
        args["device"] = device
    result = _led_call(cfg, "sim.fault", args, role)
    out.print(f"{result['device']}: fault {result['fault']} = {result['value']:g}",
              markup=False, highlight=False)


# ---- keys ----------------------------------------------------------------------------------

@keys_app.command("generate")
def keys_generate(
        name: Annotated[str, typer.Option(help="'server' for the engine, else a user name.")],
        role: Annotated[str | None, typer.Option(help="Client role (clients only).")] = None,
        directory: Annotated[Path, typer.Option("--dir", help="Keys directory.")] = Path("keys"),
) -> None:
    """Create a CURVE certificate (the engine's, or an authorised client's)."""
    from stagectl.keys import generate

    if name != "server" and role is None:
        _fail("a client key needs --role (operator, engineer, producer or viewer)", 2)
    try:
        public, secret = generate(directory, name, None if name == "server" else role)
    except ValueError as exc:
        _fail(str(exc), 2)
    out.print(f"public key {public}\nsecret key {secret} (keep it private)")


# ---- console / demo ------------------------------------------------------------------------

def _console_entry() -> Any:
    found = entry_points(group="stagectl.console")
    for ep in found:
        return ep.load()
    return None


def has_display() -> bool:
    """Whether a GUI can open: a display server, or an explicit Qt platform."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and platform not in ("xcb", "wayland"):
        return platform != "offscreen"
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or \
        sys.platform in ("darwin", "win32")


@app.command()
def gui(config: ConfigOpt = DEFAULT_CONFIG,
        duration: Annotated[float | None, typer.Option(help="Close after SECONDS.")] = None,
        ) -> None:
    """Open the operator console (PySide6) on a running engine."""
    cfg = _load(config)
    run_console = _console_entry()
    if run_console is None:
        _fail("the console is not installed (pip install stagectl with PySide6)", 1)
    raise typer.Exit(run_console(cfg, config, duration))


def _demo_script(cfg: StageConfig, stop: threading.Event) -> None:
    """Drive the stage through the engine like an operator would, so there is something to see.

    The LED steps through looks; when the stage has an arm and a cue list, the stage is armed
    (no talent on the simulated stage) and the cues run, moving the arm.
    """
    kinds = {d.kind for d in cfg.devices}
    cues = "arm" in kinds and cfg.cues.file is not None
    looks: list[tuple[str, dict[str, Any]]] = [
        ("led.set", {"key": "brightness_nits", "value": 800.0}),
        ("led.set", {"key": "colour_temperature_k", "value": 3200}),
        ("led.set", {"key": "test_pattern", "value": "grid"}),
        ("led.set", {"key": "test_pattern", "value": "off"}),
        ("led.set", {"key": "brightness_nits", "value": 1200.0}),
        ("led.set", {"key": "colour_temperature_k", "value": 5600}),
        ("led.preset", {"number": 3}),
        ("led.set", {"key": "freeze", "value": True}),
        ("led.set", {"key": "freeze", "value": False}),
    ]
    # every wall takes the same looks, whatever its processor (OSC, Tessera, HELIOS, NovaStar)
    walls = [d.name for d in cfg.devices if d.kind == "led"]
    led_steps = [(cmd, {**args, "device": wall}) for cmd, args in looks for wall in walls]
    cue_steps: list[tuple[str, dict[str, Any]]] = [
        ("cue.jump", {"number": 1}), ("cue.go", {}), ("cue.go", {}), ("cue.go", {}),
    ] if cues else []
    steps: list[tuple[str, dict[str, Any]]] = []
    for i in range(max(len(led_steps), len(cue_steps))):
        if i < len(led_steps):
            steps.append(led_steps[i])
        if i < len(cue_steps):
            steps.append(cue_steps[i])
    if not steps:
        return
    with EngineClient(cfg, ClientIdentity("demo", "operator"), timeout_s=3.0) as client:
        if cues:
            with contextlib.suppress(EngineError, EngineUnavailable):
                client.call("safety.arm", {})
        i = 0
        while not stop.wait(2.5):
            cmd, args = steps[i % len(steps)]
            with contextlib.suppress(EngineError, EngineUnavailable):
                client.call(cmd, args)
            i += 1


def _wait_for_engine(cfg: StageConfig, group: ChildGroup) -> None:
    """Until the engine answers a ping; fails (exit 1) if a child exits or 20 s pass."""
    with EngineClient(cfg, ClientIdentity("demo", "viewer"), timeout_s=0.5) as client:
        deadline = time.monotonic() + 20
        while True:
            dead = group.exited()
            if dead is not None:
                _fail(f"the demo's {dead.name} exited early ({dead.reason()}); its output "
                      f"({dead.log_path}):\n{dead.tail()}", 1)
            try:
                client.call("ping")
                return
            except EngineUnavailable:
                if time.monotonic() > deadline:
                    _fail("the engine did not answer within 20 s", 1)


def _run_console_child(group: ChildGroup, config: Path, duration: float | None) -> int:
    """The console as a child process (a Qt abort cannot take the demo down with it).

    Returns its exit code; fails (exit 1) when the engine or a simulator exits meanwhile.
    """
    args = ["gui", "--config", str(config)]
    if duration is not None:
        args += ["--duration", f"{duration:g}"]
    console = group.spawn("console", args, stop_wait_s=0.5)
    end = None if duration is None else time.monotonic() + duration + 15
    while console.proc.poll() is None:
        for child in group.children:
            if child is not console and child.proc.poll() is not None:
                _fail(f"the demo's {child.name} exited ({child.reason()}); stopping the demo",
                      1)
        if end is not None and time.monotonic() > end:
            return 0  # it did not close on time: the teardown stops it
        time.sleep(0.2)
    return console.proc.returncode


@app.command()
def demo(config: ConfigOpt = DEFAULT_CONFIG,
         headless: Annotated[bool, typer.Option(help="Terminal dashboard, no window.")] = False,
         duration: Annotated[float | None, typer.Option(
             help="Exit 0 after SECONDS.")] = None,
         script: Annotated[bool, typer.Option(
             help="Drive the LED with a demo sequence.")] = True,
         desk: Annotated[bool, typer.Option(
             help="Also serve the producer desk on a seeded month (make demo does).")
             ] = False) -> None:
    """Simulators + engine + console (or terminal dashboard), stopped together on any exit.

    The producer desk (``stagectl desk serve``) runs beside them on a seeded month in SQLite;
    its URL and a login are printed.

    Refuses to start while another stack holds the config's ports. The simulators, the
    engine and the console are child processes that stop with the demo (signals, a console
    that crashes, errors, even SIGKILL of the demo on Linux).
    """
    from stagectl.cli.ports import busy, engine_endpoints, simulator_endpoints

    cfg = _load(config)
    _refuse_busy(busy(engine_endpoints(cfg) + simulator_endpoints(cfg)), config)
    group = ChildGroup(Path(tempfile.mkdtemp(prefix="stagectl-demo-")))
    stop = threading.Event()
    code, finished = 0, False
    with StopSignals() as signals:
        try:
            err.print(f"[bold]stagectl demo[/]: stage {cfg.stage.name}; starting simulators "
                      f"(logs in {group.log_dir}) ...", highlight=False)
            if cfg.simulators:
                group.spawn("sim", ["sim", "--config", str(config)], stop_wait_s=0.8)
                time.sleep(0.3)
            err.print(f"starting engine on {cfg.engine.command} ...", highlight=False)
            group.spawn("engine", ["serve", "--config", str(config)], stop_wait_s=3.2)
            _wait_for_engine(cfg, group)
            if desk:
                from stagectl.cli import desk_demo

                err.print("starting the producer desk on a seeded month ...")
                url, password = desk_demo.start(group)
                err.print(f"[bold]producer desk[/]: {url}   (log in as "
                          f"{desk_demo.DEMO_USER} / {password})", highlight=False,
                          soft_wrap=True)
            if script:
                threading.Thread(target=_demo_script, args=(cfg, stop), daemon=True,
                                 name="demo-script").start()
            started = time.monotonic()
            fallback = ""
            if headless:
                pass
            elif not has_display():
                fallback = "no display"
            elif not entry_points(group="stagectl.console"):
                fallback = "the console is not installed (pip install stagectl with PySide6)"
            else:
                err.print("opening the console (Ctrl-C or close the window to stop) ...")
                code = _run_console_child(group, config, duration)
                if code != 0:
                    console = group.children[-1]
                    fallback = f"the console could not run ({console.reason()})"
                    code = 0
                else:
                    fallback = "-"  # the window was closed: the demo is over
            if fallback != "-":
                if fallback:
                    err.print(f"{fallback}: showing the terminal dashboard instead",
                              highlight=False, soft_wrap=True)
                err.print("try in another terminal: [bold].venv/bin/stagectl led set "
                          "brightness 600[/]   (Ctrl-C stops the demo)")
                from stagectl.cli.dashboard import run_dashboard

                left = None if duration is None else max(0.0,
                                                         duration - (time.monotonic() - started))
                code = run_dashboard(cfg, left)
            finished = True
        except KeyboardInterrupt:
            code, finished = 0, True
        finally:
            signals.shield()
            stop.set()
            err.print("stopping: engine leaves devices safe, then simulators stop ...")
            if group.stop() and code == 0 and finished:
                group.remove_logs()
            else:
                err.print(f"the demo's logs: {group.log_dir}", highlight=False)
    raise typer.Exit(code)


# ---- arm, safety, cues (stagectl/cli/arm.py reuses the helpers above) ---------------------

from stagectl.cli import arm as cli_arm  # noqa: E402

app.add_typer(cli_arm.arm_app, name="arm")
app.add_typer(cli_arm.cue_app, name="cue")
app.command("estop")(cli_arm.estop)


def main() -> None:
    """Entry point of the ``stagectl`` console script."""
    die_with_parent()  # a child of `stagectl demo` stops when the demo does
    app()

# ---- camera tracking and takes (stagectl/cli/tracking.py) ------------------------------------

from stagectl.cli import tracking as cli_tracking  # noqa: E402

app.add_typer(cli_tracking.tracking_app, name="tracking")
app.add_typer(cli_tracking.take_app, name="take")
