"""The `tubcar` command: one installed entry point whose subcommands drive, record, train,
export, score and inspect (see `tubcar --help`). The library lives in car/, sim/,
evaluation/, training/, augment/ and experiments/; this package only parses arguments."""
