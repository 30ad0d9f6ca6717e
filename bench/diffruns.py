#!/usr/bin/env python3
# The sectors where two files of one size differ, as "START COUNT" runs
# like `cowutil runs` prints: what uml_mkcow --diff must put in the COW.
#   diffruns.py IMAGE BACKING [SECTORSIZE]
import sys

BLOCK = 1 << 20


def runs(a, b, ss):
    start = last = None
    off = 0
    while True:
        x, y = a.read(BLOCK), b.read(BLOCK)
        if not x and not y:
            break
        if x != y:
            for i in range(0, max(len(x), len(y)), ss):
                if x[i:i + ss] == y[i:i + ss]:
                    continue
                s = (off + i) // ss
                if last is not None and s == last + 1:
                    last = s
                    continue
                if start is not None:
                    yield start, last - start + 1
                start = last = s
        off += BLOCK
    if start is not None:
        yield start, last - start + 1


def main():
    ss = int(sys.argv[3]) if len(sys.argv) > 3 else 512
    with open(sys.argv[1], 'rb') as a, open(sys.argv[2], 'rb') as b:
        for s, n in runs(a, b, ss):
            print(s, n)


main()
