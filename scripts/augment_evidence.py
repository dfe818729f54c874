#!/usr/bin/env python3
"""`tubcar augment-evidence` for those who type the old path: see `tubcar augment-evidence --help`."""

import runpy
import sys

sys.path.pop(0)  # this folder: its augment_evidence.py would shadow the package of the same name
sys.argv[1:1] = ["augment-evidence"]
runpy.run_module("tubcar", run_name="__main__")
