#!/usr/bin/env python3
"""`tubcar export` as a script, for those who type the old path: see `tubcar export --help`."""

import runpy
import sys

sys.path.pop(0)  # this folder: its export.py would shadow the package of the same name
sys.argv[1:1] = ["export"]
runpy.run_module("tubcar", run_name="__main__")
