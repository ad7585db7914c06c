"""``python -m tradepulse`` runs the command line."""

from tradepulse.cli import main

main()
