"""Stage configuration: one TOML file per stage, validated by pydantic.

A bad file gives one clear :class:`ConfigError` naming the file, the key path, the bad value
and what is expected; the CLI turns it into exit code 2 before anything is started.
"""

from __future__ import annotations

import ipaddress
import tomllib
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from drivers.transport import parse_address

DEFAULT_CONFIG = Path("configs/sim-stage.toml")
STAGE_FRAME_RATES = (23.976, 24.0, 25.0, 29.97, 30.0, 50.0, 59.94, 60.0)


class ConfigError(Exception):
    """A configuration file that cannot be used; ``str()`` is the operator-facing message."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__("\n".join(f"{self.path}: {problem}" for problem in problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_address(value: str) -> str:
    try:
        parse_address(value)
    except ValueError:
        raise ValueError("host:port, such as 127.0.0.1:9000") from None
    return value


class StageSection(_Model):
    """Who and where the stage is."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    site: str = ""
    timezone: str = "Asia/Shanghai"
    frame_rate: float = 25.0

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("an IANA time zone such as Asia/Shanghai or Asia/Hong_Kong") from None
        return value

    @field_validator("frame_rate")
    @classmethod
    def _rate(cls, value: float) -> float:
        for rate in STAGE_FRAME_RATES:
            if abs(value - rate) < 0.001:
                return rate
        raise ValueError("one of " + ", ".join(f"{r:g}" for r in STAGE_FRAME_RATES))


def is_local_endpoint(endpoint: str) -> bool:
    """Whether a ZeroMQ endpoint stays on this machine (loopback, ipc, inproc)."""
    parsed = urlparse(endpoint)
    if parsed.scheme in ("ipc", "inproc"):
        return True
    host = (parsed.hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def curve_required(curve: bool, *endpoints: str) -> bool:
    """CURVE is on when asked for, and always once any endpoint leaves loopback."""
    return curve or not all(is_local_endpoint(e) for e in endpoints)


class EngineSection(_Model):
    """Where the engine listens and how clients authenticate."""

    command: str = "tcp://127.0.0.1:5560"
    state: str = "tcp://127.0.0.1:5561"
    curve: bool = False
    keys_dir: str = "keys"
    # Per-client limits (docs/protocols/engine-zmq.md "Limits"): a larger message drops the
    # sender's connection before it is buffered; requests beyond the in-flight caps are
    # answered ``overloaded`` at once.
    max_message_bytes: int = Field(default=1_000_000, ge=4096, le=256_000_000)
    max_inflight_per_client: int = Field(default=32, ge=1, le=10_000)
    max_queued_total: int = Field(default=1024, ge=1, le=1_000_000)
    max_queued_bytes: int = Field(default=64_000_000, ge=1_000_000, le=4_000_000_000)

    @field_validator("command", "state")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("tcp", "ipc", "inproc") or not (parsed.netloc or parsed.path):
            raise ValueError("a ZeroMQ endpoint such as tcp://127.0.0.1:5560")
        if parsed.scheme == "tcp":
            try:
                port = parsed.port
            except ValueError:
                port = None
            if port is None:
                raise ValueError("a ZeroMQ endpoint with a port, such as tcp://127.0.0.1:5560")
        return value

    @property
    def needs_curve(self) -> bool:
        """CURVE is required as soon as an endpoint leaves loopback."""
        return curve_required(self.curve, self.command, self.state)


class MqttSection(_Model):
    """Telemetry to MQTT: ``embedded`` runs an in-process broker; ``host:port`` uses one."""

    enabled: bool = True
    broker: str = "embedded"
    embedded_bind: str = "127.0.0.1:18830"
    topic_prefix: str = "stagectl"

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str) -> str:
        if value != "embedded":
            try:
                parse_address(value)
            except ValueError:
                raise ValueError("'embedded' or host:port of a broker") from None
        return value

    @field_validator("embedded_bind")
    @classmethod
    def _bind(cls, value: str) -> str:
        return _check_address(value)


LED_DRIVERS = ("osc", "tessera", "helios", "novastar")
# The fastest poll each vendor API tolerates (docs/protocols/*-http.md, novastar-coex.md):
# Tessera: never faster than Companion's 1 s whole-tree poll; HELIOS and NovaStar: 0.5 s.
MIN_POLL_INTERVAL_S = {"tessera": 1.0, "helios": 0.5, "novastar": 0.5}
_VENDOR_ONLY = {"websocket": "helios", "screens": "novastar", "brightness_write": "novastar",
                "group_cabinets": "novastar"}


class LedDeviceConfig(_Model):
    """An LED processor: stagectl OSC, or a vendor API (Tessera, HELIOS, NovaStar COEX).

    ``address`` is host:port: the OSC processor's UDP port, or the vendor API's HTTP port
    (Tessera and HELIOS 80, NovaStar 8001 on real processors). Credentials (HELIOS auth) are
    never in this file: ``credentials_file`` or ``credentials_env`` names where the
    ``user:password`` line is.
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["led"]
    driver: Literal["osc", "tessera", "helios", "novastar"] = "osc"
    address: str
    max_brightness_nits: float = Field(default=1500.0, gt=0, le=10000)
    timeout_s: float | None = Field(default=None, gt=0, le=60)
    poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    request_timeout_s: float = Field(default=2.0, gt=0, le=30)
    credentials_file: str | None = None
    credentials_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    auth: Literal["basic", "digest"] = "basic"
    websocket: bool | None = None
    screens: list[str] | None = None
    brightness_write: Literal["screen", "cabinet"] | None = None
    group_cabinets: dict[str, list[int]] | None = None

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return _check_address(value)

    @model_validator(mode="after")
    def _driver_keys(self) -> LedDeviceConfig:
        for key, vendor in _VENDOR_ONLY.items():
            if getattr(self, key) is not None and self.driver != vendor:
                raise ValueError(f"{key} is a {vendor} setting; this device's driver is "
                                 f"{self.driver!r}")
        if self.driver == "osc":
            if self.credentials_file or self.credentials_env:
                raise ValueError("credentials are for the vendor HTTP drivers, not osc")
        else:
            floor = MIN_POLL_INTERVAL_S[self.driver]
            if self.poll_interval_s < floor:
                raise ValueError(f"poll_interval_s {self.poll_interval_s:g} is faster than "
                                 f"the {self.driver} API allows (at least {floor:g} s)")
        if self.credentials_file and self.credentials_env:
            raise ValueError("give credentials_file or credentials_env, not both")
        return self

    @property
    def link_timeout_s(self) -> float:
        """Silence after which the link is lost (OSC 1.5 s; HTTP 3 polls, at least 3 s)."""
        if self.timeout_s is not None:
            return self.timeout_s
        return 1.5 if self.driver == "osc" else max(3.0, 3 * self.poll_interval_s)


class LedSimulatorConfig(_Model):
    """A simulated LED processor that ``stagectl sim`` starts (OSC or a vendor API)."""

    name: str = Field(min_length=1)
    kind: Literal["led"]
    protocol: Literal["osc", "tessera", "helios", "novastar"] = "osc"
    listen: str
    panels: int = Field(default=240, ge=1, le=100000)
    max_brightness_nits: float = Field(default=1500.0, gt=0, le=10000)
    latency_ms: float = Field(default=2.0, ge=0, le=1000)
    ramp_nits_per_s: float = Field(default=3000.0, gt=0)
    groups: int = Field(default=4, ge=0, le=64)
    # vendor simulator knobs (firmware, model, quirk switches): each simulator's module doc
    options: dict[str, str | int | float | bool | list[str]] = Field(default_factory=dict)
    credentials_file: str | None = None
    credentials_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    auth: Literal["basic", "digest"] = "basic"

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return _check_address(value)

    @model_validator(mode="after")
    def _protocol_keys(self) -> LedSimulatorConfig:
        if self.protocol == "osc" and (self.credentials_file or self.credentials_env):
            raise ValueError("credentials are for the vendor HTTP simulators, not osc")
        if self.protocol == "osc" and self.options:
            raise ValueError("options are for the vendor HTTP simulators, not osc")
        if self.credentials_file and self.credentials_env:
            raise ValueError("give credentials_file or credentials_env, not both")
        return self


class TrackingDeviceConfig(_Model):
    """A camera-tracking source the engine ingests (FreeD, OpenTrackIO or OSC over UDP)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["tracking"]
    driver: Literal["freed", "opentrackio", "osc"]
    port: int | None = Field(default=None, ge=1, le=65535)
    host: str = "0.0.0.0"
    multicast_group: str | None = None
    interface: str = "0.0.0.0"
    freed_profile: Literal["generic", "panasonic", "sony", "mosys", "stype", "ncam",
                           "zcam"] = "generic"
    rate_hz: float = Field(default=50.0, ge=23.976, le=240.0)
    delay_frames: float = Field(default=0.0, ge=0.0, le=10.0)

    @field_validator("multicast_group")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            ok = ipaddress.ip_address(value).is_multicast
        except ValueError:
            ok = False
        if not ok:
            raise ValueError("an IPv4 multicast group such as 239.135.1.1")
        return value

    @field_validator("delay_frames")
    @classmethod
    def _tenths(cls, value: float) -> float:
        if abs(value * 10 - round(value * 10)) > 1e-6:
            raise ValueError("a delay in 0.1-frame steps, 0..10")
        return round(value, 1)


class TrackingSimulatorConfig(_Model):
    """A simulated tracking source: a camera move sent as FreeD or OpenTrackIO."""

    name: str = Field(min_length=1)
    kind: Literal["tracking"]
    protocol: Literal["freed", "opentrackio"]
    target: str
    rate_hz: float = Field(default=50.0, ge=23.976, le=240.0)
    freed_profile: Literal["generic", "panasonic", "sony", "mosys", "stype", "ncam",
                           "zcam"] = "generic"
    source_number: int = Field(default=1, ge=1, le=200)
    loss_pct: float = Field(default=0.0, ge=0, le=100)
    jitter_ms: float = Field(default=0.0, ge=0, le=1000)
    burst_per_s: float = Field(default=0.0, ge=0)
    bad_checksum_pct: float = Field(default=0.0, ge=0, le=100)
    reorder_pct: float = Field(default=0.0, ge=0, le=100)
    seed: int = 0

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        return _check_address(value)


def _check_zmq_endpoint(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("tcp", "ipc", "inproc") or not (parsed.netloc or parsed.path):
        raise ValueError("a ZeroMQ endpoint such as tcp://127.0.0.1:5570")
    return value


class ArmAxisConfig(_Model):
    """One arm axis: hard range, soft range, caps (deg for joints j1..j6, mm for the track)."""

    name: str = Field(pattern=r"^(j[1-6]|track)$")
    min: float
    max: float
    soft_min: float | None = None
    soft_max: float | None = None
    soft_margin: float = Field(default=5.0, ge=0)
    max_velocity: float = Field(gt=0, le=10000)
    max_acceleration: float = Field(gt=0, le=100000)

    @model_validator(mode="after")
    def _ranges(self) -> ArmAxisConfig:
        lo = self.soft_min if self.soft_min is not None else self.min + self.soft_margin
        hi = self.soft_max if self.soft_max is not None else self.max - self.soft_margin
        if not self.min <= lo < hi <= self.max:
            raise ValueError(f"{self.name}: soft range {lo:g}..{hi:g} inside "
                             f"{self.min:g}..{self.max:g}")
        return self


class DhRowConfig(_Model):
    """Denavit-Hartenberg parameters of one joint (mm, deg)."""

    a_mm: float
    alpha_deg: float
    d_mm: float
    theta_offset_deg: float = 0.0


class ArmDeviceConfig(_Model):
    """A robotic camera arm driven over ZeroMQ (``docs/protocols/arm-zmq.md``).

    ``axes`` and ``dh`` default to the UR10-sized arm of :mod:`drivers.arm`; give all six
    joints (plus ``track`` when ``track = true``) to override.

    CURVE (required as soon as ``command`` or ``telemetry`` leaves loopback): ``server_key``
    is the controller's public certificate, ``client_key`` the engine's secret certificate
    for this link (``stagectl keys generate``); relative paths resolve against the engine's
    working directory. ``lease_ttl_s``: how long the arm's control lease outlives a silent
    engine (a restarted engine waits at most this long to take control).
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["arm"]
    driver: Literal["zmq"] = "zmq"
    command: str
    telemetry: str
    track: bool = False
    heartbeat_s: float = Field(default=0.1, gt=0, le=5)
    watchdog_s: float = Field(default=0.5, ge=0.02, le=10)
    timeout_s: float = Field(default=0.5, gt=0, le=60)
    pipeline_latency_frames: float = Field(default=3.0, ge=0, le=25)
    velocity_scale: float = Field(default=1.0, ge=0.01, le=1.0)
    payload_kg: float = Field(default=2.5, ge=0, le=1000)
    axes: list[ArmAxisConfig] | None = None
    dh: list[DhRowConfig] | None = None
    curve: bool = False
    server_key: str = ""
    client_key: str = ""
    lease_ttl_s: float = Field(default=2.0, ge=0.2, le=60)

    @field_validator("command", "telemetry")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return _check_zmq_endpoint(value)

    @property
    def needs_curve(self) -> bool:
        """CURVE is required as soon as an arm endpoint leaves loopback (as for [engine])."""
        return curve_required(self.curve, self.command, self.telemetry)

    @model_validator(mode="after")
    def _shape(self) -> ArmDeviceConfig:
        if self.needs_curve and not (self.server_key and self.client_key):
            where = self.command if not is_local_endpoint(self.command) else self.telemetry
            raise ValueError(
                f"{where} is not loopback (or curve = true), so the arm link needs CURVE: set "
                "server_key (the controller's public certificate) and client_key (the "
                "engine's secret certificate), e.g. from `stagectl keys generate --name "
                f"{self.name}-controller` and `stagectl keys generate --name {self.name}-engine`")
        if self.heartbeat_s * 2 > self.watchdog_s:
            raise ValueError(f"heartbeat_s ({self.heartbeat_s:g}) must be at most half of "
                             f"watchdog_s ({self.watchdog_s:g})")
        if self.heartbeat_s * 2 > self.lease_ttl_s:
            raise ValueError(f"heartbeat_s ({self.heartbeat_s:g}) must be at most half of "
                             f"lease_ttl_s ({self.lease_ttl_s:g})")
        if self.axes is not None:
            names = [a.name for a in self.axes]
            want = [f"j{i}" for i in range(1, 7)] + (["track"] if self.track else [])
            if names != want:
                raise ValueError(f"axes must be {', '.join(want)} in order, got "
                                 f"{', '.join(names)}")
        if self.dh is not None and len(self.dh) != 6:
            raise ValueError("dh needs exactly 6 rows")
        return self


class ArmSimulatorConfig(_Model):
    """A simulated arm controller that ``stagectl sim`` starts."""

    name: str = Field(min_length=1)
    kind: Literal["arm"]
    command: str
    telemetry: str
    track: bool = False
    rate_hz: float = Field(default=250.0, ge=10, le=2000)
    watchdog_s: float = Field(default=0.5, ge=0.02, le=10)
    payload_kg: float = Field(default=2.5, ge=0, le=12)
    repeatability_deg: float = Field(default=0.005, ge=0, le=1)
    max_message_bytes: int = Field(default=1_000_000, ge=4096, le=64_000_000)
    max_in_flight: int = Field(default=16, ge=1, le=10_000)
    curve: bool = False
    secret_key: str = ""  # the controller's secret certificate (CURVE)
    authorized_dir: str = ""  # client public certificates allowed in (empty: any key)

    @field_validator("command", "telemetry")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return _check_zmq_endpoint(value)

    @property
    def needs_curve(self) -> bool:
        """CURVE is required as soon as an endpoint leaves loopback."""
        return curve_required(self.curve, self.command, self.telemetry)

    @model_validator(mode="after")
    def _keys(self) -> ArmSimulatorConfig:
        if self.needs_curve and not self.secret_key:
            raise ValueError(f"{self.command} / {self.telemetry} is not loopback (or curve = "
                             "true), so the arm controller needs CURVE: set secret_key (its "
                             "secret certificate, `stagectl keys generate --name "
                             f"{self.name}`) and authorized_dir (the engine's public key)")
        return self


# Every device family adds its config class to these unions and its kind to KINDS.
KINDS: frozenset[str] = frozenset({"led", "tracking", "arm"})
DeviceConfig = Annotated[LedDeviceConfig | TrackingDeviceConfig | ArmDeviceConfig,
                         Field(discriminator="kind")]
SimulatorConfig = Annotated[LedSimulatorConfig | TrackingSimulatorConfig | ArmSimulatorConfig,
                            Field(discriminator="kind")]


class TakesSection(_Model):
    """Where take files (recorded tracking) are written."""

    dir: str = "var/takes"


class SafetySection(_Model):
    """Stage safety: what the e-stop does to the LED wall and where the audit log lives.

    ``audit_db`` is relative to the engine's working directory; ``":memory:"`` keeps it in
    memory (tests).
    """

    estop_led_action: Literal["none", "freeze", "blackout"] = "none"
    audit_db: str = "var/audit.sqlite"


class CuesSection(_Model):
    """The stage's cue list file (TOML; ``docs/protocols/arm-zmq.md`` shows the shape)."""

    file: str = ""


class StageConfig(_Model):
    """A whole stage: devices, simulators, engine endpoints, telemetry."""

    stage: StageSection
    engine: EngineSection = EngineSection()
    mqtt: MqttSection = MqttSection()
    takes: TakesSection = TakesSection()
    safety: SafetySection = SafetySection()
    cues: CuesSection = CuesSection()
    devices: list[DeviceConfig] = Field(default_factory=list)
    simulators: list[SimulatorConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> StageConfig:
        seen: set[str] = set()
        for device in self.devices:
            if device.name in seen:
                raise ValueError(f"device name {device.name!r} is used twice")
            seen.add(device.name)
        return self

    def device(self, name: str) -> DeviceConfig:
        """The device config called ``name``."""
        for device in self.devices:
            if device.name == name:
                return device
        raise KeyError(name)


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(previous, int) and part in KINDS:
            pass  # discriminator tag pydantic inserts after a list index
        elif part.startswith("function-after") or part.startswith("function-"):
            pass
        else:
            out += ("." if out else "") + part
        previous = part
    return out or "(top level)"


def format_validation_error(exc: ValidationError) -> list[str]:
    """Turn pydantic errors into ``key.path: got VALUE; expected WHAT`` lines."""
    problems = []
    for err in exc.errors():
        path = _key_path(tuple(err["loc"]))
        msg = str(err["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        if err["type"] == "missing":
            problems.append(f"{path}: missing; this key is required")
        elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            ctx = err.get("ctx", {})
            problems.append(f"{path}.kind: got {ctx.get('tag')!r}; expected one of "
                            f"{ctx.get('expected_tags', '')}")
        elif err["type"] == "extra_forbidden":
            problems.append(f"{path}: unknown key (check the spelling)")
        else:
            value = err.get("input")
            shown = repr(value) if not isinstance(value, dict) else "{...}"
            problems.append(f"{path}: got {shown}; expected {msg}")
    return problems


def parse_config(data: dict[str, Any], source: Path | str = "<config>") -> StageConfig:
    """Validate an already parsed TOML mapping."""
    try:
        return StageConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, format_validation_error(exc)) from None


def read_toml(path: Path | str) -> dict[str, Any]:
    """A TOML file as a mapping, or one :class:`ConfigError` naming the file and what is wrong.

    Raises:
        ConfigError: the file is missing or unreadable, or its TOML does not parse.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [f"cannot read: {exc}"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"TOML syntax error: {exc}"]) from None


def load_config(path: Path | str) -> StageConfig:
    """Read and validate a stage TOML file.

    Raises:
        ConfigError: unreadable file, TOML syntax error, or invalid values.
    """
    return parse_config(read_toml(path), path)
