#!/usr/bin/env python3
"""Checks the links of README.md and docs/*.md into the source tree.

A link [`name`](path) must point at an existing file; a link [`name`](path#Ln) must point at the
line that defines `name` (`Sgd::step`, `run_backward`, `AccumulateGrad`), so that a walkthrough's
line links stay true as the code moves. `--fix` sets each line number to that line.
    scripts/check_doc_links.py [--fix]
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
LINK = re.compile(r"\[`([^`]+)`\]\(([^)#\s]+)(?:#L(\d+))?\)")


def definition_line(lines, name):
    """The first line that defines `name` (Class::member or a free function), 1-based, or None.
    Comment lines do not count."""
    if not name.endswith("operator()"):
        name = name.rstrip("()")
    qualified = re.escape(name)
    last = re.escape(name.split("::")[-1])
    patterns = [
        rf"^\S.*\b{qualified}\s*\(.*[^;]\s*$",        # out-of-class definition
        rf"^(class|struct)\s+.*\b{last}\b",             # a class
        rf"^\S.*\b{last}\s*\(.*[^;]\s*$",               # a free function at file scope
        rf"^\s+.*\b{last}\s*\(.*\{{",                    # a member defined in its class
        rf"\b{last}\b",                                  # anything else that names it
    ]
    code = [(n, line) for n, line in enumerate(lines, 1) if not re.match(r"\s*(//|/?\*|#)", line)]
    for pattern in patterns:
        for number, line in code:
            if re.search(pattern, line):
                return number
    return None


def main():
    fix = "--fix" in sys.argv[1:]
    problems = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")

        def check(match):
            name, target, line = match.group(1), match.group(2), match.group(3)
            if re.match(r"[a-z]+://", target):
                return match.group(0)
            path = (doc.parent / target).resolve()
            where = f"{doc.relative_to(ROOT)}: [`{name}`]({target}{'#L' + line if line else ''})"
            if not path.is_file():
                problems.append(f"{where}: no such file")
                return match.group(0)
            if line is None:
                return match.group(0)
            lines = path.read_text(encoding="utf-8").splitlines()
            found = definition_line(lines, name)
            if found is None:
                problems.append(f"{where}: `{name}` is not defined in the file")
            elif fix:
                return f"[`{name}`]({target}#L{found})"
            elif int(line) != found:
                problems.append(f"{where}: `{name}` is defined on line {found} "
                                "(scripts/check_doc_links.py --fix)")
            return match.group(0)

        new_text = LINK.sub(check, text)
        if fix and new_text != text:
            doc.write_text(new_text, encoding="utf-8")
    for problem in problems:
        print(problem)
    if problems:
        sys.exit(1)
    print("doc links: every linked file exists and every line link points at its definition")


if __name__ == "__main__":
    main()
