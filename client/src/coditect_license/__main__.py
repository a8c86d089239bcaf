import sys

from coditect_license.cli import main

sys.exit(main())
