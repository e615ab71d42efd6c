# The seed's worker.py without its 10-second sleep: a typical small worker, used by
# hack/bench-agent.sh to compare the agent with amqp-consume on a command that does some work.
import sys

print("Processing " + sys.stdin.readlines()[0])
