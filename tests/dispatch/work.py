"""A test task: optionally sleep, optionally fail on one node, then write tiny plates."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from scheduler.dispatch.render import frame_path, write_plate


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frame", type=int, required=True)
    parser.add_argument("--to-frame", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--fail-on", default="")
    parser.add_argument("--no-output", action="store_true")
    args = parser.parse_args()
    node = os.environ.get("STAGECTL_NODE_ID", "")
    print(f"node {node} slot {os.environ.get('CUDA_VISIBLE_DEVICES')}", flush=True)
    if args.fail_on and node in args.fail_on.split(","):
        print("simulated failure", flush=True)
        return 7
    count = args.to_frame - args.frame + 1
    for i, frame in enumerate(range(args.frame, args.to_frame + 1)):
        time.sleep(args.sleep / count)
        if not args.no_output:
            write_plate(64, 36, frame, Path(frame_path(args.out, frame)))
        print(f"PROGRESS {(i + 1) / count:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
