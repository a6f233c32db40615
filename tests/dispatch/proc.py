"""Start the production controller and agent classes as processes, without the CLI's imports."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["controller", "agent"])
    parser.add_argument("--db")
    parser.add_argument("--bind")
    parser.add_argument("--controller")
    parser.add_argument("--node-id")
    parser.add_argument("--slots", type=int, default=1)
    parser.add_argument("--vram-gb", type=float, default=24.0)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--keys-dir")
    parser.add_argument("--curve", action="store_true")
    parser.add_argument("--register-timeout-s", type=float, default=10.0)
    args = parser.parse_args()
    if args.role == "controller":
        from scheduler.dispatch.config import ControllerConfig
        from scheduler.dispatch.controller import Controller

        cfg = dataclasses.replace(
            ControllerConfig(), bind=args.bind, heartbeat_s=0.3, node_timeout_s=1.5,
            assign_grace_s=1.0, plan_time_limit_s=0.3, replan_min_interval_s=0.5,
            curve=args.curve, keys_dir=args.keys_dir)
        ctl = Controller(Path(args.db), cfg)
        signal.signal(signal.SIGTERM, lambda *_: ctl.stop())
        print("ready", flush=True)
        ctl.serve()
        return 0
    from scheduler.dispatch.agent import Agent, AgentError, describe_node

    spec = describe_node(args.node_id, args.slots, args.vram_gb, args.speed,
                         nvml_module="no_such_nvml")
    agent = Agent(args.controller, spec, Path(args.keys_dir) if args.keys_dir else None,
                  register_timeout_s=args.register_timeout_s)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    try:
        agent.serve()
    except AgentError as exc:
        print(f"agent error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
