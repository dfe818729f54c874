#!/usr/bin/env python3
"""`tubcar replay-validation` for those who type the old path: see `tubcar replay-validation --help`."""

import runpy
import sys

sys.path.pop(0)  # this folder: its replay_validation.py would shadow the package of the same name
sys.argv[1:1] = ["replay-validation"]
runpy.run_module("tubcar", run_name="__main__")
