import sys

from worker.simulator.serve import main

sys.exit(main())
