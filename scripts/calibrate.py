#!/usr/bin/env python3
"""`tubcar calibrate` as a script, for those who type the old path: see `tubcar calibrate --help`."""

import runpy
import sys

sys.path.pop(0)  # this folder: its calibrate.py would shadow the package of the same name
sys.argv[1:1] = ["calibrate"]
runpy.run_module("tubcar", run_name="__main__")
