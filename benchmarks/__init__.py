"""One module per benchmark subject of scripts/bench.py."""
