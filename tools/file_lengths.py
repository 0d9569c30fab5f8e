#!/usr/bin/env python3
"""Fails when a C++ source under the given folders is longer than --max lines (docs/architecture.md:
files of a few hundred lines, one concern each).

  tools/file_lengths.py [--max LINES] [--allow FILE] PATH...

--allow names a file of "path lines" pairs: files not yet split, each held to its current
length (a ratchet: it may shrink, never grow; lower or remove the entry when it does).
"""
import argparse
import pathlib
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--max", type=int, default=400)
    parser.add_argument("--allow", type=pathlib.Path)
    parser.add_argument("paths", nargs="+", type=pathlib.Path)
    args = parser.parse_args()
    allowed = {}
    if args.allow:
        for line in args.allow.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            path, limit = line.split()
            allowed[path] = int(limit)
    failed = False
    seen = set()
    for root in args.paths:
        for source in sorted(root.rglob("*")):
            if source.suffix not in (".cpp", ".hpp"):
                continue
            lines = len(source.read_text().splitlines())
            key = source.as_posix()
            limit = allowed.get(key, args.max)
            seen.add(key)
            if lines > limit:
                failed = True
                note = f"its allowance in {args.allow} is {limit}" if key in allowed else f"the limit is {args.max}"
                print(f"{key}: {lines} lines; {note}: split it by concern")
    for key in sorted(set(allowed) - seen):
        print(f"{args.allow}: {key} does not exist any more: remove its line")
        failed = True
    if not failed:
        print(f"file lengths: every source under {', '.join(map(str, args.paths))} within its limit")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
