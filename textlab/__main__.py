"""``python -m textlab train|sample|corpora``"""

from .cli import main

raise SystemExit(main())
