"""Damaged take files: `take export` and `take replay` give one line naming the file and
line, exit 2 (a take file is the command's input), never a traceback; the file is untouched.

Issue 11, "Files never turn into tracebacks". A take cut short by a crash still exports what
is complete (that is what the JSON-lines format is for, docs/decisions/0034-take-files.md).
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stagectl.cli.main import app
from stagectl.engine.takes import FORMAT

runner = CliRunner()


def _take(path: Path, samples: int = 5) -> Path:
    lines = [{"type": "header", "format": FORMAT, "stage": "t", "slate": "A1", "take": 1,
              "started_utc": "2031-05-04T00:00:00+00:00", "frame_rate": 25,
              "timezone": "Asia/Shanghai", "mono_to_wall_s": 0.0,
              "sources": {"cam-a": {"protocol": "freed", "port": 40000}}}]
    for i in range(samples):
        lines.append({"type": "raw", "source": "cam-a", "arrival_s": 0.01 * i,
                      "hex": "d1ff" + f"{i:02x}" * 8})
        lines.append({"type": "sample", "source": "cam-a", "protocol": "freed",
                      "sequence": i, "arrival_s": 0.01 * i, "timecode": f"00:00:00:{i:02d}",
                      "position_m": [1.0, 2.0, 3.0], "rotation_deg": [10.0, 5.0, 0.0]})
    lines.append({"type": "footer", "stopped_utc": "2031-05-04T00:00:01+00:00",
                  "samples": {"cam-a": samples}, "raw": {"cam-a": samples}})
    path.write_text("".join(json.dumps(rec) + "\n" for rec in lines), encoding="utf-8")
    return path


def _line(path: Path, number: int, change: Callable[[bytes], bytes]) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[number - 1] = change(lines[number - 1])
    path.write_bytes(b"\n".join(lines))


DAMAGE: dict[str, Callable[[Path], object]] = {
    "not_utf8": lambda p: _line(p, 4, lambda b: b[:10] + b"\xff\xfe" + b[12:]),
    "broken_json": lambda p: _line(p, 4, lambda b: b[: len(b) // 2]),
    "missing_field": lambda p: _line(p, 3, lambda b: b.replace(b'"position_m"', b'"positio_m"')),
    "wrong_type": lambda p: _line(p, 3, lambda b: b.replace(b'[1.0, 2.0, 3.0]', b'"here"')),
    "bad_hex": lambda p: _line(p, 2, lambda b: b.replace(b'"d1ff', b'"zz')),
    "bad_header": lambda p: _line(p, 1, lambda b: b.replace(b'"frame_rate": 25',
                                                            b'"frame_rate": "fast"')),
    "header_flipped": lambda p: _line(p, 1, lambda b: b"\xc3(" + b[2:]),
    "empty": lambda p: p.write_text(""),
}


def _hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line(stderr: str, path: Path) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert str(path) in lines[0] and lines[0].startswith("error:"), lines[0]
    return lines[0]


# exit code of (csv export, opentrackio export, replay) per damage: 0 where that command
# never reads the damaged part (exports read samples, replay raw datagrams; csv no header
# fields)
EXPECTED = {
    "not_utf8": (2, 2, 2), "broken_json": (2, 2, 2), "missing_field": (2, 2, 0),
    "wrong_type": (2, 2, 0), "bad_hex": (0, 0, 2), "bad_header": (0, 2, 0),
    "header_flipped": (2, 2, 2), "empty": (2, 2, 2),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damaged_take_is_one_line(tmp_path: Path, kind: str) -> None:
    take = _take(tmp_path / "A1_T001.take.jsonl")
    DAMAGE[kind](take)
    before = _hash(take), sorted(p.name for p in tmp_path.iterdir())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        commands = [["take", "export", str(take), "--format", "csv"],
                    ["take", "export", str(take), "--format", "opentrackio"],
                    ["take", "replay", str(take), "--target", f"127.0.0.1:{port}",
                     "--speed", "100"]]
        for args, code in zip(commands, EXPECTED[kind], strict=True):
            result = runner.invoke(app, args)
            assert result.exception is None or isinstance(result.exception, SystemExit), (
                args, repr(result.exception))
            assert result.exit_code == code, (args, result.output)
            if code:
                _one_line(result.stderr, take)
    assert (_hash(take), sorted(p.name for p in tmp_path.iterdir())) == before


def test_line_numbers_are_named(tmp_path: Path) -> None:
    take = _take(tmp_path / "t.take.jsonl")
    DAMAGE["missing_field"](take)
    result = runner.invoke(app, ["take", "export", str(take)])
    assert result.exit_code == 2
    assert f"{take}:3: missing 'position_m'" in _one_line(result.stderr, take)


def test_take_cut_short_keeps_what_is_complete(tmp_path: Path) -> None:
    take = _take(tmp_path / "t.take.jsonl")
    data = take.read_bytes()
    take.write_bytes(data[: len(data) - 40])  # the footer line is torn
    result = runner.invoke(app, ["take", "export", str(take)])
    assert result.exit_code == 0, result.output
    assert "5 samples exported" in result.stderr


def test_a_folder_is_not_a_take(tmp_path: Path) -> None:
    result = runner.invoke(app, ["take", "export", str(tmp_path)])
    assert result.exit_code == 2
    assert "cannot open" in _one_line(result.stderr, tmp_path)
