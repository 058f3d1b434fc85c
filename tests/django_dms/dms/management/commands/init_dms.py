"""The application's own initialisation, as the seed's reinit ran it (seed-report.md):
2 users (admin, system), the workflow states, 32 placeholders, 14 backup configs."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.db import transaction

from dms.models import BackupConfig, Placeholder, WorkflowState

STATES = ["draft", "review", "approved", "published", "archived"]
SCHEDULES = ["hourly", "daily", "weekly", "monthly"]


class Command(BaseCommand):
    help = "Create the users, workflow states, placeholders and backup configs."

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        User.objects.create_superuser("admin", "admin@example.org", "admin-password")
        User.objects.create_user("system", "system@example.org", is_staff=True)
        for position, name in enumerate(STATES):
            WorkflowState.objects.create(name=name, position=position,
                                         final=name in ("published", "archived"))
        for number in range(1, 33):
            Placeholder.objects.create(key=f"placeholder_{number:02d}",
                                       value=f"default {number}",
                                       description=f"Placeholder number {number}")
        for number in range(1, 15):
            BackupConfig.objects.create(
                name=f"config_{number:02d}", schedule=SCHEDULES[number % len(SCHEDULES)],
                retention_days=7 * number, max_size_gb=Decimal(number) / 4)
