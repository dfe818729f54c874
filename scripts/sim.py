#!/usr/bin/env python3
"""`tubcar sim` as a script, for those who type the old path: see `tubcar sim --help`."""

import runpy
import sys

sys.path.pop(0)  # this folder: its sim.py would shadow the package of the same name
sys.argv[1:1] = ["sim"]
runpy.run_module("tubcar", run_name="__main__")
