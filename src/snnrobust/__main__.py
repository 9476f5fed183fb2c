import os
import sys

if os.environ.get("SNNROBUST_PRELOAD"):  # a warm server runs the verb in a fork (see snnrobust.preload)
    from snnrobust.preload import delegate

    code = delegate(sys.argv[1:])
    if code is not None:
        raise SystemExit(code)

from snnrobust.cli import main  # noqa: E402

raise SystemExit(main())
