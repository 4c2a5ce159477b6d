"""``python -m actidose`` runs the command line."""

from .cli import main

main()
