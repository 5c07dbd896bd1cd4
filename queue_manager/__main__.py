import sys

from queue_manager.cli.main import main

sys.exit(main())
