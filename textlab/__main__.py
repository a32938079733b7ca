"""``python -m textlab train|sample|corpora|serve``"""

from .cli import main

raise SystemExit(main())
