#!/usr/bin/env python3
"""Split a .NET server's resident memory by where it lives, from /proc/PID/smaps snapshots.

    python3 bench/smaps_split.py DIR        # DIR holds smaps.SECONDS files (bench/soak.sh SOAK_SMAPS_DIR=DIR)

One line per snapshot, in MB of resident memory (Rss):
  total   every mapping;
  gc      the managed heap: the GC's one address-space reservation of GCRegionRange bytes (by default
          twice physical memory, rounded down to the 4 MB region size); it ends where the largest
          anonymous mapping (its uncommitted tail) ends;
  nongc   total less gc, which is what `tessera_process_native_memory` approximates (RSS less the
          managed heap's committed bytes);
  jit     JIT-compiled code and stubs (the runtime's /memfd:doublemapper mappings);
  heap    the C library's main heap ([heap], grown with brk);
  arenas  glibc's thread arenas: anonymous mappings outside the managed heap that start on a 64 MB
          boundary and are at most 64 MB long;
  other   other anonymous memory (thread stacks, the GC's bookkeeping, native buffers such as weights);
  files   file-backed mappings (assemblies, native libraries, the model file).
Set GC_REGION_RANGE (bytes) when the server ran with a GCRegionRange of its own.
"""
import glob
import os
import re
import sys

MB = 1024.0
HEADER = re.compile(r'^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$')


def region_range():
    if os.environ.get('GC_REGION_RANGE'):
        return int(os.environ['GC_REGION_RANGE'], 0)
    with open('/proc/meminfo') as f:
        total = int(f.readline().split()[1]) * 1024
    region = 4 << 20
    return 2 * total // region * region


def mappings(path):
    """(start, end, name, rss_kb) for every mapping in one smaps file."""
    out = []
    with open(path) as f:
        for line in f:
            m = HEADER.match(line)
            if m:
                out.append([int(m.group(1), 16), int(m.group(2), 16), m.group(3).strip(), 0])
            elif line.startswith('Rss:') and out:
                out[-1][3] = int(line.split()[1])
    return out


def split(maps, reserve):
    anon = [m for m in maps if m[2] == '']
    largest = max(anon, key=lambda m: m[1] - m[0])
    hi = largest[1]
    lo = hi - reserve
    in_gc = lambda m: m[0] >= lo and m[1] <= hi
    gc = sum(m[3] for m in anon if in_gc(m))
    outside = [m for m in anon if not in_gc(m)]
    arenas = sum(m[3] for m in outside if m[0] % (64 << 20) == 0 and m[1] - m[0] <= (64 << 20))
    total = sum(m[3] for m in maps)
    return {
        'total': total, 'gc': gc, 'nongc': total - gc,
        'jit': sum(m[3] for m in maps if 'doublemapper' in m[2]),
        'heap': sum(m[3] for m in maps if m[2] == '[heap]'),
        'arenas': arenas,
        'other': sum(m[3] for m in outside) - arenas,
        'files': sum(m[3] for m in maps if m[2] not in ('', '[heap]') and 'doublemapper' not in m[2]),
    }


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    files = sorted(glob.glob(os.path.join(sys.argv[1], 'smaps.*')), key=lambda p: int(p.rsplit('.', 1)[1]))
    if not files:
        sys.exit(f'no smaps.SECONDS files in {sys.argv[1]}')
    reserve = region_range()
    cols = ['total', 'gc', 'nongc', 'jit', 'heap', 'arenas', 'other', 'files']
    print('seconds ' + ' '.join(f'{c:>7}' for c in cols) + '   (MB resident)')
    for path in files:
        maps = mappings(path)
        if not maps:
            continue
        s = split(maps, reserve)
        print(f'{path.rsplit(".", 1)[1]:>7} ' + ' '.join(f'{s[c] / MB:7.1f}' for c in cols))


if __name__ == '__main__':
    main()
