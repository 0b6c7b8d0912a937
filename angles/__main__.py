from angles.cli import main

raise SystemExit(main())
