from uglspot.cli import main

raise SystemExit(main())
