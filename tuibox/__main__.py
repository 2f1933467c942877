from tuibox.cli import main

raise SystemExit(main())
