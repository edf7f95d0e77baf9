import sys

from caravan.cli import main

sys.exit(main())
