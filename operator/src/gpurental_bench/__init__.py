"""`make bench`: the operator's performance figures on the emulated cluster.

Owns the benchmark only: it starts its own emulator, simulated GPU nodes and the real operator
process (gpurental_dev.cluster), drives them over HTTP like users would, and reads the answers
from the emulator's request record. Never imported by the operator or the emulator.
"""
