import sys

from queue_manager.cli import main

sys.exit(main())
