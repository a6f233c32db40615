"""Camera tracking: wire codecs, UDP ingest, health statistics, simulators.

Engine-independent half of issue 3. The modules here know nothing of the engine;
the engine wires :class:`~drivers.tracking.ingest.TrackingIngest` into its bus.

Modules:
    freed: FreeD D1 codec, vendor profiles, numpy batch decoder.
    opentrackio: OpenTrackIO 1.0.1 transport codec, segmentation, sample builders.
    osc_pose: OSC pose codec for trackers that speak neither protocol.
    sample: the common :class:`~drivers.tracking.sample.TrackingSample` and axis mapping.
    rotation: Euler ZXY, rotation matrices and quaternions (numpy).
    stats: per-source rate, jitter, loss, errors and the silent alarm.
    compensate: per-source delay compensation (interpolating buffer, slerp).
    timecode: stage clock and SMPTE timecode, drop-frame included.
    ingest: asyncio UDP ingest per source, unicast or multicast.
    simulator: a tracking source speaking the real wire protocols, with faults.
"""
