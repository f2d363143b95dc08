from coves.cli import main

raise SystemExit(main())
