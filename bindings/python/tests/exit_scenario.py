"""The asyncio scenario of tests/test_lifetime.py, run as its own
interpreter: a store on an SQLite file under a software key, put/get, a
lease manager with an async revoker, an event consumer left running, and
awaitables still in flight when asyncio.run() returns. Nothing is closed:
the process must still exit with status 0.

    python exit_scenario.py DIR
"""

import asyncio
import os
import sys

import strongroom


async def main(d):
    key = os.path.join(d, "root.key")
    strongroom.SoftwareProtector.generate_key_file(key)
    sr = await strongroom.open(os.path.join(d, "store.db"), key_file=key)
    await sr.put_secret("app/db", b"pw-1")
    _, secret = await sr.get_secret("app/db")
    assert secret.reveal() == b"pw-1"

    leases = strongroom.LeaseManager(sr, None)

    async def revoke(lease):
        await asyncio.sleep(0)

    leases.register_revoker("db", revoke)
    events = leases.subscribe()

    async def consume():
        async for _ in events:
            pass

    task = asyncio.create_task(consume())
    lease = await leases.issue("db/creds/app", "db", 60, data=b"role-1")
    await leases.renew(lease.id, 30)
    # Still running when the loop ends: cancelled by asyncio.run, or
    # finishing on the extension's threads while the interpreter exits.
    pending = [asyncio.ensure_future(sr.get_secret("app/db")) for _ in range(5)]
    pending.append(asyncio.ensure_future(leases.issue("db/creds/x", "db", 60)))
    pending.append(asyncio.ensure_future(leases.revoke(lease.id)))
    await asyncio.sleep(0)
    # Kept alive until the interpreter tears its modules down.
    globals()["kept"] = (sr, leases, events, task, pending)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
