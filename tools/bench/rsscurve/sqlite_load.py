# SPDX-License-Identifier: MIT
# rsscurve workload: SQLite (its own malloc calls; Python's objects stay in pymalloc) bulk
# load of ~300 MB into a file database with a 1 GB page cache and an index, cache shrunk to
# 2 MB (SQLite frees the pages), idle, small queries, then a second load of half.
import os, random, sqlite3, sys, tempfile, time
def mark(m):
    sys.stdout.write(m + "\n"); sys.stdout.flush()
IDLE = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
N = int(sys.argv[2]) if len(sys.argv) > 2 else 1_500_000
d = tempfile.mkdtemp(prefix="rsscurve-")
db = sqlite3.connect(os.path.join(d, "t.db"))
db.execute("PRAGMA journal_mode=OFF"); db.execute("PRAGMA synchronous=OFF")
db.execute("PRAGMA cache_size=-1000000")
db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB)")
mark("start")
db.execute("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<?) "
           "INSERT INTO t SELECT i, hex(randomblob(12)), randomblob(150) FROM c", (N,))
db.execute("CREATE INDEX tk ON t(k)")
db.commit()
mark("grown")
db.execute("PRAGMA cache_size=-2000")
db.execute("SELECT count(*) FROM t WHERE id < 1000").fetchone()
mark("shrunk")
rnd = random.Random(34)
t0 = time.time()
while time.time() - t0 < IDLE:
    time.sleep(1)
    for _ in range(20):
        db.execute("SELECT v FROM t WHERE id=?", (rnd.randint(1, N),)).fetchone()
mark("idle")
db.execute("PRAGMA cache_size=-1000000")
db.execute("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<?) "
           "INSERT INTO t SELECT i+?, hex(randomblob(12)), randomblob(150) FROM c", (N // 2, N))
db.commit()
mark("regrown")
time.sleep(2)
mark("end")
db.close()
for f in os.listdir(d): os.unlink(os.path.join(d, f))
os.rmdir(d)
