#!/usr/bin/env python3

# The seed's example worker (shared/seed/examples/worker.py), ported to
# Python 3: amqp-consume pipes one message body to stdin; print it and sleep
# to simulate work. WORKER_SLEEP (seconds, default 10 as in the seed) lets
# tests run fast.
import os
import sys
import time

print("Processing " + sys.stdin.readlines()[0])
sys.stdout.flush()
time.sleep(float(os.environ.get("WORKER_SLEEP", "10")))
