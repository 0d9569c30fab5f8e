#!/usr/bin/env python3
"""The slowest tests of a ctest run, and a guard against one test growing past a limit.

    tools/slow_tests.py JUNIT_XML [--top N] [--max SECONDS]

Reads the JUnit file that `ctest --output-junit` writes, prints the N slowest tests (default
10) with their wall seconds, and exits 1 naming every test that took more than --max seconds
(default: no limit). tools/test.sh runs it with --max 120 (issue 33): a slow test is seen the day
it is added, not the day CI overflows its 90 minutes. Seconds are ctest's own, measured while
`ctest -j` runs other tests beside it on the same cores.
"""
import argparse
import sys
import xml.etree.ElementTree as ET


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("junit")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--max", type=float, default=0.0)
    args = parser.parse_args()
    try:
        cases = ET.parse(args.junit).getroot().iter("testcase")
        times = sorted(((float(c.get("time", "0")), c.get("name", "?")) for c in cases), reverse=True)
    except (OSError, ET.ParseError, ValueError) as e:
        print(f"slow_tests: cannot read {args.junit}: {e}", file=sys.stderr)
        return 2
    print(f"slowest {min(args.top, len(times))} of {len(times)} tests (wall seconds):")
    for seconds, name in times[: args.top]:
        print(f"  {seconds:7.1f}  {name}")
    over = [(s, n) for s, n in times if args.max > 0 and s > args.max]
    for seconds, name in over:
        print(f"slow_tests: '{name}' took {seconds:.1f} s, over the {args.max:.0f} s a test may take; make it "
              "cheaper (smaller shapes, fewer images, a fixture built once) or split it (docs/ci.md)",
              file=sys.stderr)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
