"""A production database with history, then the story's data (seed-report.md).

History first: accounts created and deleted before the system's init, and backup jobs pruned
later, so the primary keys here differ from those of a freshly initialised database, as they
did in the seed's production system.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from dms.models import (
    BackupConfig,
    BackupJob,
    Document,
    Placeholder,
    RestoreJob,
    Workflow,
    WorkflowState,
)

T0 = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)


class Command(BaseCommand):
    help = "Build the story's production database (after migrate)."

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        for name in ("setup1", "setup2", "setup3"):  # accounts of the installation, removed
            User.objects.create_user(name)
        User.objects.filter(username__startswith="setup").delete()
        call_command("init_dms")
        users = {}
        for name in ("author01", "author02", "author03", "reviewer01", "reviewer02",
                     "temp01", "viewer01", "viewer02", "auditor01"):
            users[name] = User.objects.create_user(
                name, f"{name}@example.org", first_name=name.capitalize(),
                date_joined=T0 + timedelta(days=len(users), microseconds=7))
        users.pop("temp01").delete()
        admin = User.objects.get(username="admin")
        admin.email = "root@dms.example.org"  # customised after init
        admin.save()
        states = {s.name: s for s in WorkflowState.objects.all()}
        configs = list(BackupConfig.objects.order_by("name"))
        jobs = [BackupJob.objects.create(
            config=configs[n % 3], started_at=T0 + timedelta(hours=n, microseconds=n),
            finished_at=T0 + timedelta(hours=n, minutes=5), succeeded=n % 2 == 0,
            size_bytes=(1 << 40) + n) for n in range(8)]
        BackupJob.objects.filter(pk__in=[j.pk for j in jobs[:5]]).delete()  # pruned
        RestoreJob.objects.create(requested_by=admin, backup_job=jobs[6],
                                  requested_at=T0 + timedelta(days=3, microseconds=999999),
                                  outcome="ok")
        RestoreJob.objects.create(requested_by=users["reviewer01"], backup_job=jobs[7],
                                  requested_at=T0 + timedelta(days=4, microseconds=1))
        documents = []
        for n in range(5):
            documents.append(Document.objects.create(
                title=f"Document {n + 1}", body=f"Body of document {n + 1}\nline two ✓",
                status=["draft", "review", "approved", "published", "review"][n],
                author=users[f"author0{n % 3 + 1}"],
                reviewer=users[f"reviewer0{n % 2 + 1}"] if n != 2 else None,
                created_at=T0 + timedelta(days=n, microseconds=100001 * (n + 1)),
                due=date(2026, 4, n + 1) if n % 2 else None, pages=10 * n + 1,
                fee=Decimal("12.50") * n, signature=bytes([n, 0, 255, n]) if n < 3 else None))
        for n in range(4):
            Workflow.objects.create(
                document=documents[n], current_state=states[["review", "approved", "published",
                                                             "review"][n]],
                started_at=T0 + timedelta(days=n, hours=1, microseconds=5 + n),
                note="" if n else "urgent")
        for number in (3, 17, 32):
            Placeholder.objects.filter(key=f"placeholder_{number:02d}").update(
                value=f"customised {number}")
        BackupConfig.objects.filter(name="config_05").update(retention_days=90, enabled=False,
                                                             max_size_gb=Decimal("12.125"))
        # a float with more digits than a decimal read of it keeps (ten places)
        BackupConfig.objects.filter(name="config_14").update(schedule="every 6 hours",
                                                             weight=1 / 3)
