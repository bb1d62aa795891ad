"""``python -m watcher.agent run|watch --server URL --api-key KEY [...]``."""

from watcher.agent.cli import main

raise SystemExit(main())
