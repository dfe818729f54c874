#!/usr/bin/env python3
"""`tubcar drive` as a script, for those who type the old path: see `tubcar drive --help`."""

import runpy
import sys

sys.path.pop(0)  # this folder: its drive.py would shadow the package of the same name
sys.argv[1:1] = ["drive"]
runpy.run_module("tubcar", run_name="__main__")
