"""Driver choice for the cluster store (docs/cluster.md): psycopg 3 (sync in threads, async) against asyncpg on
one insert+select loop, 8 concurrent workers, on the private PostgreSQL of tests/pgcluster.py.

    pip install asyncpg; python tests/cluster/measure_driver.py
"""
import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg  # not a dependency: `pip install asyncpg` to run this comparison
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.pgcluster import shared  # noqa: E402

pg = shared()
dsn = pg.new_database()
N = 2000
with psycopg.connect(dsn, autocommit=True) as c:
    c.execute("CREATE TABLE t (id bigserial primary key, a text, b bytea)")
body = b"x" * 4000
def ps_worker(n):
    with psycopg.connect(dsn, autocommit=True) as c:
        for _i in range(n):
            c.execute("INSERT INTO t (a, b) VALUES (%s, %s) RETURNING id", ("hello", body)).fetchone()
            c.execute("SELECT a, b FROM t WHERE id = (SELECT max(id) FROM t)").fetchone()
t = time.time()
with ThreadPoolExecutor(8) as ex:
    list(ex.map(ps_worker, [N // 8] * 8))
print(f"psycopg3 sync, 8 threads: {N / (time.time() - t):.0f} insert+select/s")
async def ap():
    pool = await asyncpg.create_pool(dsn, min_size=8, max_size=8)
    async def w(n):
        async with pool.acquire() as c:
            for _i in range(n):
                await c.fetchval("INSERT INTO t (a, b) VALUES ($1, $2) RETURNING id", "hello", body)
                await c.fetchrow("SELECT a, b FROM t WHERE id = (SELECT max(id) FROM t)")
    t = time.time()
    await asyncio.gather(*(w(N // 8) for _ in range(8)))
    print(f"asyncpg, 8 tasks: {N / (time.time() - t):.0f} insert+select/s")
    await pool.close()
asyncio.run(ap())
async def pa():
    async def w(n):
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as c:
            for _i in range(n):
                await (await c.execute("INSERT INTO t (a, b) VALUES (%s, %s) RETURNING id", ("hello", body))).fetchone()
                await (await c.execute("SELECT a, b FROM t WHERE id = (SELECT max(id) FROM t)")).fetchone()
    t = time.time()
    await asyncio.gather(*(w(N // 8) for _ in range(8)))
    print(f"psycopg3 async, 8 tasks: {N / (time.time() - t):.0f} insert+select/s")
asyncio.run(pa())
