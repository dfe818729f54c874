"""Judging pilots: open- and closed-loop replay of recorded tubs, closed-loop scoring in the
simulator, error analysis, reference pilots and videos. Desktop only; depends on `sim` and `car`."""
