from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from scheduler.dispatch.render import decode_png, encode_png, frame_path, render_plate
from stagectl.cli.farm import app


def test_plate_is_deterministic_per_frame() -> None:
    a, b = render_plate(64, 36, 7), render_plate(64, 36, 7)
    assert a.shape == (36, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, render_plate(64, 36, 300))
    assert encode_png(a) == encode_png(b)


def test_png_round_trip_known_pixels() -> None:
    img = np.zeros((2, 3, 3), np.uint8)
    img[0, 0] = (255, 0, 0)
    img[1, 2] = (1, 2, 3)
    assert np.array_equal(decode_png(encode_png(img)), img)
    plate = render_plate(50, 20, 3)
    assert np.array_equal(decode_png(encode_png(plate)), plate)


def test_frame_path_pads_hash_runs() -> None:
    assert frame_path("a/plate.####.png", 12) == "a/plate.0012.png"
    assert frame_path("plate.png", 12) == "plate.png"


def test_render_plate_cli_writes_identical_files(tmp_path: Path) -> None:
    runner = CliRunner()
    for name in ("a.png", "b.png"):
        result = runner.invoke(app, ["render-plate", "--width", "64", "--height", "36",
                                     "--frame", "5", "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert decode_png((tmp_path / "a.png").read_bytes()).shape == (36, 64, 3)
