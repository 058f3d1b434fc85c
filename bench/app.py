"""`eventvault app capture` and `eventvault app restore`, through the CLI, against Django's
own `dumpdata` and `loaddata`, on the test DMS (tests/django_dms) holding N objects, in the
same run.

    python bench/app.py --objects 200000 [--workdir DIR] [--output FILE]

The production database is a SQLite file: `migrate`, `init_dms`, then users, documents,
workflows, backup jobs and restore jobs inserted with plain sqlite3 (building is not what is
measured). Then, each as its own process, with wall time, CPU time (user + system of the
child, resource.getrusage(RUSAGE_CHILDREN)) and the load average before it:

- dumpdata: `python -m django dumpdata auth.user dms` to a file;
- capture: `eventvault app capture` into a SQLite vault that `eventvault app attach` (not
  measured) attached: every object read, named, and appended as a `created` event, the
  vault's tables written, one transaction;
- loaddata: `python -m django loaddata` of that dump into a freshly migrated database (it
  cannot load into an initialised one: its keys collide, the seed's failure);
- restore: `eventvault app restore` from that vault into a freshly migrated and initialised
  database (natural keys matched, everything else inserted, verified by counts and digest,
  the vault told where the application now is).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "tests" / "django_dms"


def eventvault(vault: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "eventvault", "--db", vault, *args]


def django(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "django", *args]


def env_for(url: str) -> dict[str, str]:
    return {**os.environ, "DMS_DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "settings",
            "PYTHONPATH": str(PROJECT), "PYTHONDONTWRITEBYTECODE": "1"}


def timed(name: str, command: list[str], env: dict[str, str]) -> dict[str, object]:
    """Run `command`; its wall and CPU seconds (children's rusage) and the load before it."""
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=PROJECT, capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"{name:10s} wall {wall:7.2f} s  cpu {cpu:7.2f} s  load {load:.1f}", file=sys.stderr)
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "load_before": load,
            "stdout": done.stdout.strip()[-500:], "output": _json_or_none(done.stdout)}


def _json_or_none(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return None


def build(path: Path, objects: int, seed: int) -> dict[str, int]:
    """The production database: Django's migrate and init, then N objects by plain SQL."""
    url = f"sqlite:///{path}"
    env = env_for(url)
    for args in (("migrate", "-v0"), ("init_dms",)):
        subprocess.run(django(url, *args), env=env, cwd=PROJECT, check=True)
    rng = random.Random(seed)
    mix = {"users": 0.05, "documents": 0.4, "workflows": 0.3, "jobs": 0.15, "restores": 0.1}
    n = {k: max(1, int(objects * v)) for k, v in mix.items()}
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def moment(i: int) -> str:
        return (t0 + timedelta(seconds=i * 7, microseconds=i % 999983)).strftime(
            "%Y-%m-%d %H:%M:%S.%f")

    db = sqlite3.connect(path)
    with db:
        db.executemany(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, "
            "email, is_staff, is_active, date_joined) VALUES (?, 0, ?, ?, '', ?, 0, 1, ?)",
            ((f"md5$x${i:032x}", f"user{i:07d}", f"User {i}", f"user{i}@example.org",
              moment(i)) for i in range(n["users"])))
        users = [r[0] for r in db.execute("SELECT id FROM auth_user")]
        states = [r[0] for r in db.execute("SELECT id FROM dms_workflowstate")]
        configs = [r[0] for r in db.execute("SELECT id FROM dms_backupconfig")]
        db.executemany(
            "INSERT INTO dms_document (title, body, status, author_id, reviewer_id, created_at,"
            " due, pages, fee, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((f"Document {i}", f"Body {i} " * 8, rng.choice(["draft", "review", "approved"]),
              rng.choice(users), rng.choice(users) if i % 10 else None, moment(i),
              f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}" if i % 3 else None, i % 400,
              f"{i % 10000}.{i % 100:02d}", bytes([i % 256]) * 4 if i % 5 == 0 else None)
             for i in range(n["documents"])))
        documents = [r[0] for r in db.execute("SELECT id FROM dms_document")]
        db.executemany(
            "INSERT INTO dms_workflow (document_id, current_state_id, started_at, note) "
            "VALUES (?, ?, ?, ?)",
            ((rng.choice(documents), rng.choice(states), moment(i), "" if i % 4 else "note")
             for i in range(n["workflows"])))
        db.executemany(
            "INSERT INTO dms_backupjob (config_id, started_at, finished_at, succeeded, "
            "size_bytes) VALUES (?, ?, ?, ?, ?)",
            ((rng.choice(configs), moment(i), moment(i + 40), i % 7 != 0, (1 << 33) + i)
             for i in range(n["jobs"])))
        jobs = [r[0] for r in db.execute("SELECT id FROM dms_backupjob")]
        db.executemany(
            "INSERT INTO dms_restorejob (requested_by_id, backup_job_id, requested_at, outcome)"
            " VALUES (?, ?, ?, ?)",
            ((rng.choice(users), rng.choice(jobs), moment(i), "ok" if i % 3 else "")
             for i in range(n["restores"])))
    counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in (
        "auth_user", "dms_document", "dms_workflow", "dms_backupjob", "dms_restorejob",
        "dms_placeholder", "dms_backupconfig", "dms_workflowstate")}
    db.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--workdir")
    parser.add_argument("--output")
    options = parser.parse_args()
    work = Path(options.workdir or tempfile.mkdtemp(prefix="evapp-"))
    work.mkdir(parents=True, exist_ok=True)
    source = work / "production.db"
    for stale in work.glob("*.db"):
        stale.unlink()
    counts = build(source, options.objects, options.seed)
    total = sum(counts.values())
    print(f"built {total} objects: {counts}", file=sys.stderr)
    url = f"sqlite:///{source}"
    results: dict[str, object] = {"objects": total, "counts": counts}
    dump = work / "dump.json"
    results["dumpdata"] = timed("dumpdata", django(url, "dumpdata", "auth.user", "dms",
                                                    "--output", str(dump)), env_for(url))
    vault = f"sqlite:///{work / 'vault.db'}"
    subprocess.run(eventvault(vault, "app", "attach", url), env=env_for(url), cwd=PROJECT,
                   check=True, capture_output=True)
    results["capture"] = timed("capture", eventvault(vault, "app", "capture", "--json"),
                               env_for(url))
    loaded = f"sqlite:///{work / 'loaddata.db'}"
    subprocess.run(django(loaded, "migrate", "-v0"), env=env_for(loaded), cwd=PROJECT,
                   check=True)
    results["loaddata"] = timed("loaddata", django(loaded, "loaddata", str(dump)),
                                env_for(loaded))
    restored = f"sqlite:///{work / 'restored.db'}"
    for args in (("migrate", "-v0"), ("init_dms",)):
        subprocess.run(django(restored, *args), env=env_for(restored), cwd=PROJECT, check=True)
    results["restore"] = timed("restore", eventvault(vault, "app", "restore", restored,
                                                     "--json"), env_for(restored))
    for verb in ("dumpdata", "capture", "loaddata", "restore"):
        figure = results[verb]
        assert isinstance(figure, dict)
        figure["objects_per_cpu_s"] = round(total / figure["cpu_s"])
    results["capture_vs_dumpdata_cpu"] = round(
        results["dumpdata"]["cpu_s"] / results["capture"]["cpu_s"], 2)  # type: ignore[index]
    results["restore_vs_loaddata_cpu"] = round(
        results["loaddata"]["cpu_s"] / results["restore"]["cpu_s"], 2)  # type: ignore[index]
    results["nproc"] = os.cpu_count()
    text = json.dumps(results, indent=1)
    print(text)
    if options.output:
        Path(options.output).write_text(text)


if __name__ == "__main__":
    main()
