"""One module per `tubcar` subcommand, each with `main(argv) -> exit code`."""
