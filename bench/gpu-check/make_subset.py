#!/usr/bin/env python3
"""Writes a CIFAR-10 subset for the GPU check, in the binary format both readers take (the
service's src/datasets/cifar10.ts and pytorch_reference.py): OUT/data_batch_1..5.bin with the first
N records of each of the five real training batches, OUT/test_batch.bin with the first N test
records, and batches.meta.txt. Equal counts per file because the service's reader wants them so.

  python3 make_subset.py ARCHIVE.tar.gz OUT_DIR N
"""
import os, sys, tarfile

RECORD = 3073
archive, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
wanted = [f'data_batch_{i}.bin' for i in range(1, 6)] + ['test_batch.bin', 'batches.meta.txt']
os.makedirs(out, exist_ok=True)
found = set()
with tarfile.open(archive) as tar:
    for member in tar:
        name = os.path.basename(member.name)
        if name not in wanted:
            continue
        data = tar.extractfile(member).read()
        if name.endswith('.bin'):
            if len(data) < n * RECORD:
                sys.exit(f'{member.name} holds {len(data) // RECORD} records, fewer than {n}')
            data = data[:n * RECORD]
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)
        found.add(name)
missing = sorted(set(wanted) - found)
if missing:
    sys.exit(f'{archive} lacks {", ".join(missing)}')
print(f'{out}: {5 * n} training and {n} test images')
