#!/usr/bin/env python3
"""`tubcar train` as a script, for those who type the old path: see `tubcar train --help`."""

import runpy
import sys

sys.path.pop(0)  # this folder: its train.py would shadow the package of the same name
sys.argv[1:1] = ["train"]
runpy.run_module("tubcar", run_name="__main__")
