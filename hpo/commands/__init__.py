"""One module per `hpo` command, each with ``main(args) -> int``."""
