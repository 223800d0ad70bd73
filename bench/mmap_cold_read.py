#!/usr/bin/python3
"""Reading 825 MB of a model file through mmap (every cache line, as the tied Q6_K head of the 12B
is read once per logits row), warm and after 9 s of other memory work: what the first head of a
streamed window pays on a live feed (docs/performance.md, 2026-12-08). Usage:
    /usr/bin/python3 bench/mmap_cold_read.py MODEL.gguf
"""
import numpy as np, time, sys
m = np.memmap(sys.argv[1], dtype=np.uint8, mode='r')
head = m[:825_000_000]  # some 825 MB of the file
def rd():
    t=time.perf_counter(); s=int(head[::64].sum()); return (time.perf_counter()-t)*1e3
print("warm-up", rd()); print("warm", rd(), rd())
other = np.ones(740_000_000//8)
for rep in range(3):
    t=time.perf_counter()
    while time.perf_counter()-t < 9: other.sum()
    print("after 9 s of other work:", rd(), "then", rd())
