"""Stage booking: model, greedy baseline, CP-SAT optimiser, checker, storage, ICS."""
