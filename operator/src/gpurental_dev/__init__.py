"""Development harness: an emulated GPU cluster running the real operator (tests, demo, bench)."""
