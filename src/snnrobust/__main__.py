from snnrobust.cli import main

raise SystemExit(main())
