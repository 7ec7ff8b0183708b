# Expect: fails on both ports. Each call exists in CPython, so a pass would mean CPython's library leaked in.
import os
import time
import uuid

print(time.monotonic(), os.environ, uuid.getnode())
