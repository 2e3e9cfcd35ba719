"""python3 -m prefork [OPTIONS] MODULE:CALLABLE: serve a WSGI application."""
import sys

from .cli import main

sys.exit(main())
