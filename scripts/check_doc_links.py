#!/usr/bin/env python3
"""Fails on a broken internal link in the book (docs/src/*.md) or in README.md's links into it.

Every relative link's target file must exist, and every `#anchor` must be a heading id of the
target page, computed as mdBook does: the heading's text, lowercased, whitespace to `-`, every
character other than letters, digits, `-` and `_` dropped; a repeated id gets `-1`, `-2`, ...
Links inside code spans and fenced blocks are not links and are skipped.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "docs" / "src"

LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def prose_lines(text):
    """(line number, line) outside fenced blocks, with code spans blanked."""
    fence = None
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.lstrip()
        marker = re.match(r"(```+|~~~+)", stripped)
        if marker:
            if fence is None:
                fence = marker.group(1)[0] * 3
            elif stripped.startswith(fence):
                fence = None
            continue
        if fence is None:
            yield number, re.sub(r"`[^`]*`", lambda m: " " * len(m.group(0)), line)


def heading_id(text):
    text = re.sub(r"<[^>]*>", "", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    out = []
    for ch in text:
        if ch.isalnum() or ch in "-_":
            out.append(ch.lower())
        elif ch.isspace():
            out.append("-")
    return "".join(out)


def anchors(path, cache={}):
    if path not in cache:
        ids, seen = set(), {}
        fence = None
        for line in path.read_text(encoding="utf-8").split("\n"):
            stripped = line.lstrip()
            marker = re.match(r"(```+|~~~+)", stripped)
            if marker:
                fence = None if fence else marker.group(1)[0] * 3
                continue
            if fence:
                continue
            m = HEADING.match(line)
            if m:
                base = heading_id(m.group(2).replace("`", ""))
                n = seen.get(base, 0)
                ids.add(base if n == 0 else f"{base}-{n}")
                seen[base] = n + 1
        cache[path] = ids
    return cache[path]


def check(md, problems, only_into=None):
    text = md.read_text(encoding="utf-8")
    for number, line in prose_lines(text):
        for m in LINK.finditer(line):
            target = m.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                continue  # http:, https:, mailto:
            path, _, anchor = target.partition("#")
            dest = (md.parent / path).resolve() if path else md.resolve()
            if only_into and only_into not in dest.parents:
                continue
            where = f"{md.relative_to(ROOT)}:{number}: {target}"
            if not dest.exists():
                problems.append(f"{where}: no such file")
            elif anchor:
                if dest.suffix != ".md":
                    problems.append(f"{where}: an anchor into a non-markdown file")
                elif anchor not in anchors(dest):
                    problems.append(f"{where}: no heading with id '{anchor}' in {dest.name}")


def main():
    problems = []
    pages = sorted(SRC.rglob("*.md"))
    for md in pages:
        check(md, problems)
    check(ROOT / "README.md", problems, only_into=SRC.resolve())
    # Every page is in SUMMARY.md (mdBook leaves unlisted pages out of the book).
    summary = (SRC / "SUMMARY.md").read_text(encoding="utf-8")
    listed = {m.group(1) for m in LINK.finditer(summary)}
    for md in pages:
        name = md.relative_to(SRC).as_posix()
        if name != "SUMMARY.md" and name not in listed:
            problems.append(f"docs/src/{name}: not listed in SUMMARY.md")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"check_doc_links: {len(problems)} broken link(s)", file=sys.stderr)
        return 1
    print(f"check_doc_links: ok, {len(pages)} pages and README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
