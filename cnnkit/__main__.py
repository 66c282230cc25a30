"""`python -m cnnkit ...`: the `cnnkit` command of this interpreter's cnnkit (where several
environments each have their own, or the `cnnkit` script is not on PATH)."""
import sys

from cnnkit.cli import main

sys.exit(main())
