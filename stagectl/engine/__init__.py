"""The stage engine: its server loop, command families, cues, safety, takes, audit, telemetry."""
