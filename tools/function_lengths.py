#!/usr/bin/env python3
"""Lists the longest functions of C++ sources, in lines from the signature to the closing brace.

  tools/function_lengths.py [--top N] [--max LINES] PATH...

A function is a brace body opened at namespace or class scope after a parameter list; lambdas
and local classes count toward the function they are in. With --max, exits 1 when a function is
longer (the code-health rule of docs/architecture.md: no function in core/ beyond about 80 lines).
"""
import argparse
import pathlib
import re
import sys

CONTROL = re.compile(r"\b(if|for|while|switch|catch|do|else)\s*(\(|$)")


def strip(text):
    """Blanks comments, string and character literals, keeping newlines (line numbers hold)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif text.startswith('R"', i):
            m = re.match(r'R"([^(]*)\(', text[i:])
            end = text.find(")" + m.group(1) + '"', i) if m else -1
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append('""' + re.sub(r"[^\n]", " ", text[i + 2:j])); i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (j - i - 1) + c); i = j + 1
        else:
            out.append(c); i += 1
    return "".join(out)


def functions(path):
    text = strip(path.read_text(errors="replace"))
    stack = []  # per open brace: "scope" (namespace, class, extern) or "body"
    start = 0   # index after the last ; { or } at scope level
    found = []
    line_of = lambda idx: text.count("\n", 0, idx) + 1
    for i, c in enumerate(text):
        if c == "{":
            head = text[start:i]
            in_scope = all(s == "scope" for s in stack)
            if in_scope and re.search(r"\b(namespace|class|struct|union|enum)\b[^()]*$", head) or re.search(r'extern\s+"', head):
                stack.append("scope")
            elif in_scope and ")" in head and "=" not in head.split(")")[-1] and not CONTROL.search(head.strip()):
                name = re.findall(r"([~\w:]+(?:<[^<>]*>)?|operator\S+)\s*\(", head)
                stack.append(("body", name[0] if name else "?", line_of(start + len(head) - len(head.lstrip()))))
            else:
                stack.append("other")
            start = i + 1
        elif c == "}":
            if stack:
                top = stack.pop()
                if isinstance(top, tuple):
                    found.append((line_of(i) - top[2] + 1, f"{path}:{top[2]}", top[1]))
            start = i + 1
        elif c == ";" and all(s == "scope" for s in stack):
            start = i + 1
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--max", type=int, default=0)
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()
    files = []
    for p in map(pathlib.Path, args.paths):
        files += sorted(p.rglob("*.[ch]pp")) if p.is_dir() else [p]
    all_found = sorted((f for path in files for f in functions(path)), reverse=True)
    for length, where, name in all_found[: args.top]:
        print(f"{length:5d}  {name:40s} {where}")
    if args.max and all_found and all_found[0][0] > args.max:
        print(f"longest function: {all_found[0][0]} lines, over {args.max}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
