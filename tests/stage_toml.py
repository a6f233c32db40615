"""The start of a stage file for tests that run a real engine: its own name, free ports."""

from __future__ import annotations

from pathlib import Path

from stagectl.config import StageConfig
from stagectl.harness import free_port, free_port_config


def write_stage_toml(path: Path, name: str, audit_db: Path | str = ":memory:",
                     more: str = "") -> Path:
    """Write ``path``: ``[stage]`` ``name``, the engine on two free loopback ports, MQTT off,
    the audit log at ``audit_db``, then ``more`` (devices, simulators, cues)."""
    path.write_text(f"""
[stage]
name = "{name}"
[engine]
command = "tcp://127.0.0.1:{free_port()}"
state = "tcp://127.0.0.1:{free_port()}"
[mqtt]
enabled = false
[safety]
audit_db = "{audit_db}"
{more}""", encoding="utf-8")
    return path


# A cue list over an LED wall and an arm (free_port_config's led-main and arm-a): a cue with
# both, an LED-only cue, and one beyond the arm's soft limits.
CUES = """
[[cues]]
number = 1
name = "wide"
led = { preset = 2 }
arm = { joints_deg = [0.0, -60.0, 90.0, -30.0, 0.0, 0.0] }
mark = "sc1 wide"

[[cues]]
number = 2
name = "warm"
led = { brightness_nits = 700.0 }

[[cues]]
number = 5
name = "too far"
arm = { joints_deg = [169.0, 0.0, 0.0, 0.0, 0.0, 0.0] }
"""


def cue_stage_config(tmp_path: Path, stage: str, cues: str = CUES, arms: int = 1) -> StageConfig:
    """A simulated LED wall and ``arms`` arms with the cue list ``cues`` (written to tmp_path)."""
    path = tmp_path / "cues.toml"
    path.write_text(cues, encoding="utf-8")
    return free_port_config(stage=stage, arms=arms, cues_file=str(path))
