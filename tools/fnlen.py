#!/usr/bin/env python3
"""Lists functions (outside `#[cfg(test)]`) longer than N lines (default 60) in the given Rust files/dirs.
A function counts from its `fn` line to the closing brace at the same indentation.
Functions whose body contains a comment with 'long:' are reported as justified."""
import os, re, sys
limit = 60
args = sys.argv[1:]
if args and args[0].startswith('--limit='):
    limit = int(args[0].split('=')[1]); args = args[1:]
fn_re = re.compile(r'^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)')
files = []
for a in args:
    if os.path.isdir(a):
        for root, _, names in os.walk(a):
            files += [os.path.join(root, n) for n in names if n.endswith('.rs')]
    else:
        files.append(a)
rows = []
for f in sorted(files):
    lines = open(f).read().split('\n')
    in_tests = False
    for i, line in enumerate(lines):
        if re.match(r'^\s*#\[cfg\(test\)\]', line):
            in_tests = True
        m = fn_re.match(line)
        if not m or in_tests:
            continue
        indent = m.group(1)
        end = None
        for j in range(i, len(lines)):
            if j > i and re.match('^' + indent + r'\}', lines[j]) and not lines[j].startswith(indent + ' '):
                end = j; break
            if j == i and line.rstrip().endswith(';'):
                end = j; break
        if end is None:
            continue
        n = end - i + 1
        if n > limit:
            body = '\n'.join(lines[i:end + 1])
            why = 'justified' if 'long:' in body else ''
            rows.append((n, f, i + 1, m.group(7), why))
for n, f, ln, name, why in sorted(rows, reverse=True):
    print(f'{n:5} {f}:{ln} {name} {why}')
